"""Compare several runs against the first (the baseline): paired deltas, then the gate.

``compare_runs`` builds a :class:`~evalkit.records.Comparison` from RunRecords only (no model);
evalkit.outputs writes it (comparison.json, summary.md, junit.xml, report.html). docs/comparison.md describes every field and which test is used for which metric.

For each candidate and each metric in both summaries, one Delta:

* metrics whose registry entry has ``paired`` ("sample:key", "flag:name", "loss:split") are paired
  per sample id / loss-example id over the ids both runs have (``n_pairs``); ``delta`` is the mean
  paired difference (equal to candidate_value - baseline_value whenever every id pairs and the
  summary is the plain mean), with a paired-bootstrap interval and a Wilcoxon (continuous) or
  exact McNemar (0/1 flags) p-value -- see evalkit/stats.py;
* the membership-inference AUCs (``mia_auc``, ``mia_auc_<score>``) and the loss gaps are corpus figures,
  but both runs scored the same training / validation examples: they are paired per example id
  (``paired_auc_delta`` / ``paired_gap_delta``: ids resampled within each class, the figure of both runs
  recomputed on the same resample; test "paired_bootstrap_ids");
* every other metric gets the plain difference of the summary values, no interval, no p-value.

``p_adjusted``: Holm's step-down adjustment over every p-valued delta of the comparison (all
candidates, all metrics), so significance colouring is family-wise at the stated alpha.

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
from .retention import PREFIX, paired_deltas, with_retention_verdict
from .stats import holm, paired_auc_delta, paired_bootstrap, paired_gap_delta, unpaired_delta

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


_GAP_SPLITS = {"loss_gap": "val", "loss_gap_val": "val", "loss_gap_heldout": "heldout", "loss_gap_calibrated": "val"}
_MIN_PER_CLASS = 2


def _mia_score(run: RunRecord, metric: str) -> Optional[str]:
    if metric == "mia_auc":
        return ((run.settings or {}).get("membership_inference") or {}).get("primary")
    return metric[len("mia_auc_"):] if metric.startswith("mia_auc_") and metric != "mia_auc_base_null" else None


def _paired_by_id(baseline: RunRecord, candidate: RunRecord, metric: str, n_boot: int, seed: int):
    """PairedResult of a corpus figure paired per example id, or None when it is not one / too few ids."""
    if metric in _GAP_SPLITS:
        other = _GAP_SPLITS[metric]
        calibrated = metric == "loss_gap_calibrated"

        def per_id(run, split):
            out = {}
            for ex in run.losses:
                v = _finite(ex.nll - ex.base_nll if calibrated and ex.base_nll is not None else
                            (None if calibrated else ex.nll))
                if ex.split == split and v is not None:
                    out[ex.id] = (v, ex.n_tokens)
            return out

        cols = []
        for split in ("train", other):
            a, b = per_id(baseline, split), per_id(candidate, split)
            ids = sorted(a.keys() & b.keys())
            if len(ids) < _MIN_PER_CLASS:
                return None
            cols.append(([a[i][0] for i in ids], [b[i][0] for i in ids],
                         [(a[i][1] + b[i][1]) / 2 or 1.0 for i in ids]))
        return paired_gap_delta(*cols[0], *cols[1], n_boot=n_boot, seed=seed)
    sa, sb = _mia_score(baseline, metric), _mia_score(candidate, metric)
    if sa is None or sb is None:
        return None

    def per_id(run, score):
        return {(e.id, e.member): v for e in run.membership if (v := _finite(e.scores.get(score))) is not None}

    a, b = per_id(baseline, sa), per_id(candidate, sb)
    keys = a.keys() & b.keys()
    mem, non = sorted(k for k in keys if k[1]), sorted(k for k in keys if not k[1])
    if len(mem) < _MIN_PER_CLASS or len(non) < _MIN_PER_CLASS:
        return None
    return paired_auc_delta([a[k] for k in mem], [a[k] for k in non], [b[k] for k in mem], [b[k] for k in non],
                            n_boot=n_boot, seed=seed)


def _better(delta: Optional[float], higher_is_better: Optional[bool]) -> Optional[bool]:
    if delta is None or higher_is_better is None or delta == 0:
        return None
    return (delta > 0) == higher_is_better


def compute_deltas(baseline: RunRecord, candidate: RunRecord, candidate_name: str, *, n_boot: int = 2000,
                   seed: int = 0) -> list[Delta]:
    """One Delta per metric present in both summaries (see the module docstring)."""
    # lm_eval.<task>.<metric>: paired per lm-eval document by evalkit/retention.py
    both = [m for m in candidate.summary if m in baseline.summary and not m.startswith(PREFIX)]
    deltas = paired_deltas(baseline, candidate, candidate_name, n_boot=n_boot, seed=seed)
    for metric in ordered_metrics(both):
        spec = METRICS.get(metric)
        hib = spec.higher_is_better if spec else None
        b_val, c_val = _finite(baseline.summary[metric]), _finite(candidate.summary[metric])
        fields: dict[str, Any] = dict(delta=unpaired_delta(b_val, c_val))
        by_id = _paired_by_id(baseline, candidate, metric, n_boot, seed) if b_val is not None and c_val is not None \
            else None
        if by_id is not None:
            fields.update(delta=by_id.delta, ci_low=by_id.ci_low, ci_high=by_id.ci_high, p_value=by_id.p_value,
                          n_pairs=by_id.n, test=by_id.test)
        elif spec is not None and spec.paired:
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
    for i, (name, run) in enumerate(zip(names[1:], runs[1:], strict=True), start=1):
        run_deltas = compute_deltas(runs[0], run, name, n_boot=n_boot, seed=seed)
        deltas.extend(run_deltas)
        runs[i] = with_retention_verdict(run, run_deltas, name)
    adjusted = holm([d.p_value for d in deltas])
    deltas = [dataclasses.replace(d, p_adjusted=p) for d, p in zip(deltas, adjusted)]
    prov = {**build_provenance(), "n_boot": n_boot, "seed": seed, "alpha": 0.05, **dict(provenance or {})}
    prov["versions"] = {**dict(prov.get("versions") or {}), **build_provenance()["versions"]}  # scipy: p-values
    comparison = Comparison(schema_version=SCHEMA_VERSION, baseline=names[0], targets=tuple(names),
                            runs=dict(zip(names, runs, strict=True)), deltas=tuple(deltas), provenance=prov)
    if gate is not None:
        from .gate import evaluate_gate

        comparison = dataclasses.replace(comparison, gate=evaluate_gate(gate, comparison))
    return comparison
