"""Capability retention: lm-evaluation-harness tasks on every target, paired per document in ``compare``.

Did the adapter break the model? ``evalkit eval|compare ... --lm-eval-tasks T1,T2`` runs lm-eval tasks
through the engine's already loaded model (evalkit/runtime/lm_eval_runner.py) and stores each task as
a :class:`~evalkit.records.LmEvalTask` in ``RunRecord.lm_eval``. This module is the model-free half:

* :class:`LmEvalSpec` -- which tasks, from where, how many documents (``default`` = the bundled
  ``evalkit_retention`` task, evalkit/data/lm_eval_tasks/);
* :func:`tasks_from_results` -- lm-eval's ``simple_evaluate`` output -> LmEvalTask records;
* :func:`summary_entries` -- ``lm_eval.<task>.<metric>`` summary values, 95% intervals and n, the
  names gate rules use (``lm_eval.evalkit_retention.acc >= baseline.lm_eval.evalkit_retention.acc - 0.02``);
* :func:`paired_deltas` -- candidate minus baseline per task and metric, paired per document (exact
  McNemar for 0/1 outcomes, Wilcoxon otherwise, percentile bootstrap interval: evalkit/stats.py), with the
  minimum detectable effect at that n (:func:`mde_paired_binary`, :func:`mde_paired_continuous`);
* :func:`retention_reasons` -- a ``warn`` for a candidate that loses significantly on a task.

docs/lm-eval.md explains the choices; docs/results.md the record fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from .errors import ConfigError
from .records import Delta, LmEvalDoc, LmEvalTask, Reason, RunRecord, Verdict
from .stats import bootstrap_ci, is_binary, paired_bootstrap

__all__ = ["DEFAULT_TASK", "BUNDLED_TASKS_DIR", "INSTALL_HINT", "PREFIX", "ALPHA", "POWER", "LmEvalSpec",
           "require_lm_eval", "summary_key", "tasks_from_results", "summary_entries", "paired_deltas",
           "mde_paired_binary", "mde_paired_continuous", "retention_reasons", "with_retention_verdict",
           "retention_table"]

DEFAULT_TASK = "evalkit_retention"
BUNDLED_TASKS_DIR = Path(__file__).resolve().parent / "data" / "lm_eval_tasks"
INSTALL_HINT = "pip install 'evalkit[lm-eval]'"
PREFIX = "lm_eval."
ALPHA, POWER = 0.05, 0.8  # the significance level and power the MDE is stated at
_MEAN_TOL = 1e-9  # |task value - mean of per-document values| below this: the metric pairs per document


def require_lm_eval() -> None:
    """ConfigError (one line, how to install) when lm-eval is not importable."""
    if importlib.util.find_spec("lm_eval") is None:
        raise ConfigError(f"--lm-eval-tasks needs lm-evaluation-harness, which is not installed; "
                          f"install it with: {INSTALL_HINT}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def summary_key(task: str, metric: str) -> str:
    """The summary / gate name of one task metric: ``lm_eval.<task>.<metric>`` (non-identifier characters -> _)."""
    return f"{PREFIX}{_safe(task)}.{_safe(metric)}"


def _dir_sha256(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for root in paths:
        for f in sorted(p for p in Path(root).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(f.relative_to(root)).encode("utf-8"))
            h.update(f.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class LmEvalSpec:
    """What to run: lm-eval task names, extra task folders (``--lm-eval-include-path``), a document limit."""

    tasks: tuple[str, ...]
    include_path: Optional[Path] = None
    limit: Optional[int] = None
    apply_chat_template: bool = False

    @classmethod
    def from_options(cls, tasks: Optional[str], include_path: Optional[Path] = None, limit: Optional[int] = None,
                     apply_chat_template: bool = False) -> Optional["LmEvalSpec"]:
        """None when no task is asked for; ConfigError for a bad option or a missing lm-eval."""
        if tasks is None:
            if include_path is not None or limit is not None:
                raise ConfigError("--lm-eval-include-path and --lm-eval-limit need --lm-eval-tasks; add "
                                  "--lm-eval-tasks default (evalkit's retention task) or name tasks")
            return None
        names = [t.strip() for t in tasks.split(",")]
        if not names or any(not t for t in names):
            raise ConfigError(f"--lm-eval-tasks {tasks!r}: empty task name; give comma-separated names, "
                              "e.g. --lm-eval-tasks default or --lm-eval-tasks evalkit_retention,arc_easy")
        names = [DEFAULT_TASK if t == "default" else t for t in names]
        if include_path is not None and not Path(include_path).is_dir():
            raise ConfigError(f"--lm-eval-include-path {include_path}: no such folder; pass a folder of lm-eval "
                              "task YAML files")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise ConfigError(f"--lm-eval-limit must be a positive whole number of documents per task. "
                              f"Got {limit!r} instead.")
        require_lm_eval()
        return cls(tuple(dict.fromkeys(names)), Path(include_path) if include_path else None, limit,
                   apply_chat_template)

    @property
    def include_paths(self) -> list[Path]:
        """The bundled task folder, then the user's (lm-eval lets later paths override earlier names)."""
        return [BUNDLED_TASKS_DIR] + ([Path(self.include_path)] if self.include_path else [])

    def settings(self) -> dict[str, Any]:
        """For run records and cache keys; ``task_files_sha256`` changes when any task file changes."""
        return {"tasks": list(self.tasks), "include_path": str(self.include_path) if self.include_path else None,
                "limit": self.limit, "apply_chat_template": self.apply_chat_template,
                "task_files_sha256": _dir_sha256(self.include_paths)}


# ---------------------------------------------------------------- lm-eval output -> records


def _metric_name(key: str) -> Optional[tuple[str, str]]:
    """'acc,none' -> ('acc', 'acc'); 'exact_match,strict-match' -> ('exact_match_strict_match', ...); stderr/other -> None."""
    if "," not in key:
        return None
    metric, filt = key.split(",", 1)
    if metric.endswith("_stderr"):
        return None
    name = metric if filt == "none" else f"{metric}_{filt}"
    return _safe(name), metric


def _finite(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _choice_text(arguments: Sequence, i: Any) -> Optional[str]:
    if isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= int(i) < len(arguments):
        arg = arguments[int(i)]
        if isinstance(arg, (list, tuple)) and len(arg) >= 2 and isinstance(arg[1], str):
            return arg[1].strip()
    return None


def _doc(samples: list[dict], output_type: Optional[str]) -> LmEvalDoc:
    """One LmEvalDoc from the sample(s) of one document (one sample per filter)."""
    first = samples[0]
    metrics: dict[str, float] = {}
    for s in samples:
        filt = s.get("filter", "none")
        for m in s.get("metrics", ()):
            v = _finite(s.get(m))
            if v is not None:
                metrics[_safe(m if filt == "none" else f"{m}_{filt}")] = v
    args = first.get("arguments") or []
    resps = first.get("filtered_resps") or []
    target, prediction = first.get("target"), ""
    if output_type == "multiple_choice":
        lls = [r[0] if isinstance(r, (list, tuple)) else r for r in resps]
        if lls and all(_finite(x) is not None for x in lls):
            prediction = _choice_text(args, int(np.argmax(lls))) or ""
        target = _choice_text(args, target) or target
    elif resps:
        prediction = resps[0] if isinstance(resps[0], str) else str(resps[0])
    return LmEvalDoc(doc_id=int(first["doc_id"]), doc_hash=str(first.get("doc_hash", "")),
                     target=target if isinstance(target, str) else str(target), prediction=prediction,
                     metrics=metrics)


def tasks_from_results(results: Mapping[str, Any]) -> dict[str, LmEvalTask]:
    """LmEvalTask per task of a ``simple_evaluate(..., log_samples=True)`` result (groups: no documents)."""
    out: dict[str, LmEvalTask] = {}
    samples = results.get("samples") or {}
    for task, row in (results.get("results") or {}).items():
        cfg = (results.get("configs") or {}).get(task) or {}
        output_type = cfg.get("output_type")
        metrics, stderr = {}, {}
        for key, value in row.items():
            named = _metric_name(key)
            v = _finite(value)
            if named is None or v is None:
                continue
            metrics[named[0]] = v
            se = _finite(row.get(key.replace(",", "_stderr,", 1)))
            if se is not None:
                stderr[named[0]] = se
        hib_raw = (results.get("higher_is_better") or {}).get(task) or {}  # keyed by lm-eval's metric name
        hib = {}
        for key in row:
            named = _metric_name(key)
            if named is not None and named[0] in metrics and hib_raw.get(named[1]) is not None:
                hib[named[0]] = bool(hib_raw[named[1]])
        by_doc: dict[int, list[dict]] = {}
        for s in samples.get(task) or ():
            by_doc.setdefault(int(s["doc_id"]), []).append(s)
        docs = tuple(_doc(by_doc[i], output_type) for i in sorted(by_doc))
        paired = tuple(m for m, v in metrics.items()
                       if docs and all(m in d.metrics for d in docs)
                       and abs(float(np.mean([d.metrics[m] for d in docs])) - v) <= _MEAN_TOL * max(1.0, abs(v)))
        counts = (results.get("n-samples") or {}).get(task) or {}
        version = (results.get("versions") or {}).get(task)
        fewshot = (results.get("n-shot") or {}).get(task)
        out[task] = LmEvalTask(metrics=metrics, stderr=stderr, higher_is_better=hib,
                               n=int(counts.get("effective", len(docs))), n_total=counts.get("original"),
                               version=None if version is None else str(version),
                               num_fewshot=fewshot if isinstance(fewshot, int) else None,
                               output_type=output_type, paired_metrics=paired, docs=docs)
    return out


def summary_entries(tasks: Mapping[str, LmEvalTask], *, n_boot: int = 1000, seed: int = 0):
    """(summary, intervals, n) keyed by ``lm_eval.<task>.<metric>``.

    The interval is the 95% percentile bootstrap over documents (like every evalkit interval) for metrics
    that are a mean over documents; value +- 1.96 stderr (lm-eval's own standard error) for the others.
    """
    summary: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    n: dict[str, int] = {}
    for task, t in tasks.items():
        for metric, value in t.metrics.items():
            key = summary_key(task, metric)
            summary[key] = value
            n[key] = t.n
            if metric in t.paired_metrics:
                intervals[key] = bootstrap_ci([d.metrics[metric] for d in t.docs], n_boot=n_boot, seed=seed)
            elif metric in t.stderr:
                intervals[key] = (value - 1.96 * t.stderr[metric], value + 1.96 * t.stderr[metric])
    return summary, intervals, n


# ---------------------------------------------------------------- pairing and the minimum detectable effect


def _z(alpha: float, power: float) -> tuple[float, float]:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))


def mde_paired_binary(n: int, discordant_rate: float, *, alpha: float = ALPHA, power: float = POWER) -> Optional[float]:
    """Smallest |p(candidate right) - p(baseline right)| a two-sided McNemar test detects with ``power``.

    Connor (1987), the normal approximation behind McNemar sample-size tables: with psi the share of
    discordant documents (one target right, the other wrong) and delta the difference,
    ``n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2``; solved here for delta at the
    observed n and psi. None when psi is 0 (the targets agree on every document: no basis for an estimate)
    or n is too small for any effect (sqrt(n) <= z_{1-alpha/2}).
    """
    from scipy.optimize import brentq

    if n <= 0 or not discordant_rate > 0:
        return None
    za, zb = _z(alpha, power)
    psi = float(min(discordant_rate, 1.0))
    if math.sqrt(n) <= za:
        return None

    def f(d: float) -> float:
        return math.sqrt(n) * d - za * math.sqrt(psi) - zb * math.sqrt(max(psi - d * d, 0.0))

    return float(brentq(f, 0.0, math.sqrt(psi), xtol=1e-12))


def mde_paired_continuous(diffs: Sequence[float], *, alpha: float = ALPHA, power: float = POWER) -> Optional[float]:
    """``(z_{1-alpha/2} + z_{power}) * sd(d) / sqrt(n)``: the paired-design MDE of a mean difference (None: n < 2)."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return None
    za, zb = _z(alpha, power)
    return float((za + zb) * np.std(d, ddof=1) / math.sqrt(d.size))


def _pairs(a: LmEvalTask, b: LmEvalTask, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-document values of both targets, paired by doc_id where the documents are the same (doc_hash)."""
    a_docs = {d.doc_id: d for d in a.docs}
    xs, ys = [], []
    for d in b.docs:
        other = a_docs.get(d.doc_id)
        if other is not None and other.doc_hash == d.doc_hash and metric in d.metrics and metric in other.metrics:
            xs.append(other.metrics[metric])
            ys.append(d.metrics[metric])
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def paired_deltas(baseline: RunRecord, candidate: RunRecord, candidate_name: str, *, n_boot: int = 2000,
                  seed: int = 0) -> list[Delta]:
    """One Delta per task metric both runs have, named ``lm_eval.<task>.<metric>``.

    Metrics that are a mean over documents are paired per document: ``delta`` = mean(candidate - baseline)
    over the shared documents, percentile-bootstrap interval, exact McNemar p-value for 0/1 outcomes
    (accuracy) and Wilcoxon otherwise, and ``mde`` at that n. Other metrics (corpus-level BLEU, groups)
    get the plain difference of the task values.
    """
    deltas: list[Delta] = []
    for task in sorted(baseline.lm_eval.keys() & candidate.lm_eval.keys()):
        a, b = baseline.lm_eval[task], candidate.lm_eval[task]
        for metric in sorted(a.metrics.keys() & b.metrics.keys()):
            hib = b.higher_is_better.get(metric, a.higher_is_better.get(metric))
            fields: dict[str, Any] = dict(delta=b.metrics[metric] - a.metrics[metric])
            if metric in a.paired_metrics and metric in b.paired_metrics:
                x, y = _pairs(a, b, metric)
                fields["n_pairs"] = int(x.size)
                if x.size >= 2:
                    res = paired_bootstrap(x, y, n_boot=n_boot, seed=seed)
                    binary = is_binary(x, y)
                    mde = (mde_paired_binary(x.size, float(np.mean(x != y))) if binary
                           else mde_paired_continuous(y - x))
                    fields.update(delta=res.delta, ci_low=res.ci_low, ci_high=res.ci_high, p_value=res.p_value,
                                  test=f"paired_bootstrap+{res.test}", mde=mde)
            d = fields["delta"]
            better = None if hib is None or not d else (d > 0) == hib
            deltas.append(Delta(metric=summary_key(task, metric), candidate=candidate_name,
                                baseline_value=a.metrics[metric], candidate_value=b.metrics[metric],
                                higher_is_better=hib, better=better, **fields))
    return deltas


def retention_reasons(deltas: Iterable[Delta], candidate: str, *, alpha: float = ALPHA) -> list[Reason]:
    """``warn`` per task metric the candidate loses significantly (paired p < alpha, moved the bad way)."""
    reasons = []
    for d in deltas:
        if (d.candidate != candidate or not d.metric.startswith(PREFIX) or d.better is not False
                or d.p_value is None or d.p_value >= alpha):
            continue
        interval = f" [{d.ci_low:+.3f}, {d.ci_high:+.3f}]" if d.ci_low is not None and d.ci_high is not None else ""
        reasons.append(Reason(
            code="retention_loss", level="warn", metric=d.metric, value=d.delta, threshold=0.0,
            ci_low=d.ci_low, ci_high=d.ci_high, n=d.n_pairs, status="crossed",
            message=(f"lost general ability on an lm-eval task: {d.metric} changed by {d.delta:+.3f}{interval} "
                     f"against the baseline (paired {d.test.split('+')[-1] if d.test else 'test'} p = "
                     f"{d.p_value:.2g}, n = {d.n_pairs})")))
    return reasons


def with_retention_verdict(run: RunRecord, deltas: Iterable[Delta], candidate: str) -> RunRecord:
    """``run`` with a ``warn`` (kept ``overfit``) and one reason per task metric it lost significantly."""
    reasons = retention_reasons(deltas, candidate)
    if not reasons:
        return run
    level = "overfit" if run.verdict.level == "overfit" else "warn"
    return dataclasses.replace(run, verdict=Verdict(level, run.verdict.reasons + tuple(reasons)))


def retention_table(comparison) -> list[str]:
    """Plain-text lines of every lm_eval.* delta (printed by `compare`; the HTML report has its own section)."""
    rows = [d for d in comparison.deltas if d.metric.startswith(PREFIX)]
    if not rows:
        return []

    def num(v: Optional[float], fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    head = ("candidate", "metric", comparison.baseline, "candidate value", "delta [95% CI]", "p", "n", "MDE")
    body = [(d.candidate, d.metric[len(PREFIX):], num(d.baseline_value, ".3f"), num(d.candidate_value, ".3f"),
             num(d.delta, "+.3f") + (f" [{d.ci_low:+.3f}, {d.ci_high:+.3f}]" if d.ci_low is not None
                                     and d.ci_high is not None else ""),
             num(d.p_value, ".2g"), str(d.n_pairs or "-"), num(d.mde, ".3f")) for d in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return ["capability retention (lm-eval; paired per document, MDE at alpha 0.05 / power 0.8):"] + [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *body]]
