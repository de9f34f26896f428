"""Compare several runs against the first (the baseline): paired deltas, then the gate.

``compare_runs`` builds a :class:`~evalkit.records.Comparison` from RunRecords only (no model);
evalkit.outputs writes it (comparison.json, summary.md, junit.xml, report.html). docs/comparison.md describes every field and which test is used for which metric.

For each candidate and each metric in both summaries, one Delta:

* metrics whose registry entry has ``paired`` ("sample:key", "flag:name", "loss:split") are paired
  per sample id / loss-example id over the ids both runs have (``n_pairs``); ``delta`` is the mean
  paired difference (equal to candidate_value - baseline_value whenever every id pairs and the
  summary is the plain mean), with a paired-bootstrap interval and a Wilcoxon (continuous) or
  exact McNemar (0/1 flags) p-value -- see evalkit/stats.py;
* every other metric gets the plain difference of the summary values, no interval, no p-value.

``better`` reflects the direction of the point delta only (True = moved the good way per the
registry's higher_is_better; None when the metric has no direction or the delta is 0 / missing).
Whether the move is real is ``p_value``'s job, not ``better``'s.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from .errors import ConfigError, ModelError
from .metrics.registry import METRICS
from .numbers import finite_or_none
from .provenance import provenance as build_provenance
from .records import SCHEMA_VERSION, Comparison, Delta, RunRecord
from .stats import paired_bootstrap, unpaired_delta

if TYPE_CHECKING:  # pragma: no cover
    from .gate import GateSpec

__all__ = ["compare_runs", "compute_deltas", "paired_values", "ordered_metrics", "MODEL_KINDS"]

MODEL_KINDS = ("adapter", "base")  # targets that ran a model (predictions files did not)


_finite = finite_or_none


def paired_values(run: RunRecord, source: str) -> dict[str, float]:
    """Per-id values of a registry ``paired`` source: "sample:key", "flag:name" or "loss:split".

    Samples are keyed by id, or by "suite/id" when ids repeat across suites in this run.
    Missing / non-finite values are left out (they cannot pair).
    """
    kind, _, key = source.partition(":")
    out: dict[str, float] = {}
    if kind in ("sample", "flag"):
        ids = [s.id for s in run.samples]
        by_suite = len(set(ids)) != len(ids)
        for s in run.samples:
            sid = f"{s.suite}/{s.id}" if by_suite else s.id
            if kind == "sample":
                v = _finite(s.metrics.get(key))
                if v is not None:
                    out[sid] = v
            else:
                out[sid] = 1.0 if key in s.flags else 0.0
    elif kind == "loss":
        for ex in run.losses:
            if ex.split == key:
                v = _finite(ex.nll)
                if v is not None:
                    out[ex.id] = v
    else:
        raise ValueError(f"unknown paired source {source!r}; expected sample:, flag: or loss:")
    return out


def ordered_metrics(names: Sequence[str]) -> list[str]:
    """Registry order first, then unregistered names alphabetically (stable output order)."""
    present = set(names)
    known = [m for m in METRICS if m in present]
    return known + sorted(present - set(METRICS))


def _better(delta: Optional[float], higher_is_better: Optional[bool]) -> Optional[bool]:
    if delta is None or higher_is_better is None or delta == 0:
        return None
    return (delta > 0) == higher_is_better


def compute_deltas(baseline: RunRecord, candidate: RunRecord, candidate_name: str, *, n_boot: int = 2000,
                   seed: int = 0) -> list[Delta]:
    """One Delta per metric present in both summaries (see the module docstring)."""
    both = [m for m in candidate.summary if m in baseline.summary]
    deltas = []
    for metric in ordered_metrics(both):
        spec = METRICS.get(metric)
        hib = spec.higher_is_better if spec else None
        b_val, c_val = _finite(baseline.summary[metric]), _finite(candidate.summary[metric])
        fields: dict[str, Any] = dict(delta=unpaired_delta(b_val, c_val))
        if spec is not None and spec.paired:
            a_map, b_map = paired_values(baseline, spec.paired), paired_values(candidate, spec.paired)
            ids = sorted(a_map.keys() & b_map.keys())
            fields["n_pairs"] = len(ids)
            if len(ids) >= 2:
                a = np.array([a_map[i] for i in ids])
                b = np.array([b_map[i] for i in ids])
                test = "mcnemar" if spec.paired.startswith("flag:") else "wilcoxon"
                res = paired_bootstrap(a, b, n_boot=n_boot, seed=seed, test=test)
                fields.update(delta=res.delta, ci_low=res.ci_low, ci_high=res.ci_high, p_value=res.p_value,
                              test=f"paired_bootstrap+{res.test}")
                if spec.paired.startswith("sample:"):  # the report's per-prompt deltas read these
                    fields["per_id"] = {i: float(y - x) for i, x, y in zip(ids, a, b)}
        fields = {k: (_finite(v) if k in ("delta", "ci_low", "ci_high", "p_value") else v)
                  for k, v in fields.items()}
        deltas.append(Delta(metric=metric, candidate=candidate_name, baseline_value=b_val, candidate_value=c_val,
                            higher_is_better=hib, better=_better(fields["delta"], hib), **fields))
    return deltas


def _check_names(runs: Sequence[RunRecord], names: Optional[Sequence[str]]) -> list[str]:
    if len(runs) < 2:
        raise ConfigError(f"compare needs at least two runs (a baseline and a candidate), got {len(runs)}")
    if names is None:
        names = [r.target.name for r in runs]
    names = [str(n) for n in names]
    if len(names) != len(runs):
        raise ConfigError(f"got {len(names)} names for {len(runs)} runs; give one name per run")
    if any(not n.strip() for n in names):
        raise ConfigError("target names must not be empty")
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise ConfigError(f"target name '{dup[0]}' is used by {Counter(names)[dup[0]]} runs; names must be "
                          f"unique (rename the adapter folders or pass distinct names)")
    return names


def _check_base_models(runs: Sequence[RunRecord], names: Sequence[str]) -> None:
    first: Optional[tuple[str, RunRecord]] = None
    for name, run in zip(names, runs, strict=True):
        t = run.target
        if t.kind not in MODEL_KINDS or not t.base_hash:
            continue
        if first is None:
            first = (name, run)
            continue
        f = first[1].target
        if t.base_hash != f.base_hash:
            raise ModelError(
                f"'{first[0]}' and '{name}' were made with different base models "
                f"({f.base_model or '?'} [{f.base_hash[:12]}] vs {t.base_model or '?'} [{t.base_hash[:12]}]); "
                f"compare adapters of the same base model only")


def compare_runs(runs: Sequence[RunRecord], *, names: Optional[Sequence[str]] = None,
                 gate: Optional["GateSpec"] = None, n_boot: int = 2000, seed: int = 0,
                 provenance: Optional[Mapping[str, Any]] = None) -> Comparison:
    """Compare ``runs[1:]`` against ``runs[0]`` and evaluate ``gate`` when given.

    ``names`` default to each run's target name and must be unique (ConfigError otherwise).
    Model targets made with different base models (both base_hash set) raise ModelError.
    ``provenance`` is merged over created_at / versions / n_boot / seed.
    """
    runs = list(runs)
    names = _check_names(runs, names)
    _check_base_models(runs, names)
    deltas: list[Delta] = []
    for name, run in zip(names[1:], runs[1:], strict=True):
        deltas.extend(compute_deltas(runs[0], run, name, n_boot=n_boot, seed=seed))
    prov = {**build_provenance(), "n_boot": n_boot, "seed": seed, "alpha": 0.05, **dict(provenance or {})}
    prov["versions"] = {**dict(prov.get("versions") or {}), **build_provenance()["versions"]}  # scipy: p-values
    comparison = Comparison(schema_version=SCHEMA_VERSION, baseline=names[0], targets=tuple(names),
                            runs=dict(zip(names, runs, strict=True)), deltas=tuple(deltas), provenance=prov)
    if gate is not None:
        from .gate import evaluate_gate

        comparison = dataclasses.replace(comparison, gate=evaluate_gate(gate, comparison))
    return comparison
