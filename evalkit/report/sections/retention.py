"""Capability retention: lm-evaluation-harness tasks run on every target (``RunRecord.lm_eval``:
task -> ``metrics`` and their ``stderr``, ``n``), and each candidate's paired change against the
baseline (``Comparison.deltas`` named ``lm_eval.<task>.<metric>``) with its 95% interval and the
minimum detectable effect at that n. docs/lm-eval.md describes the fields. Hidden without lm_eval data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ...records import Comparison, Delta, LmEvalTask, RunRecord
from ...retention import summary_key
from ...numbers import fmt_p_shown
from ..formatting import fmt_interval, fmt_num
from .common import TargetHead
from .metrics import delta_class

__all__ = ["RetentionCell", "RetentionDelta", "RetentionRow", "RetentionView", "build_retention", "PREFIX"]

PREFIX = "lm_eval."  # Delta.metric of a retention delta: lm_eval.<task>.<metric>


@dataclass(frozen=True)
class RetentionCell:
    value: str
    stderr: str  # "± se" or ""
    n: str


@dataclass(frozen=True)
class RetentionDelta:
    text: str
    ci: str
    p: str
    mde: str  # minimum detectable effect at this n, "" when the record has none
    cls: str


@dataclass(frozen=True)
class RetentionRow:
    task: str
    metric: str
    values: tuple[RetentionCell, ...]  # one per target
    deltas: tuple[RetentionDelta, ...]  # one per candidate


@dataclass(frozen=True)
class RetentionView:
    targets: tuple[TargetHead, ...]
    candidates: tuple[TargetHead, ...]
    rows: tuple[RetentionRow, ...]


def _task_metrics(entry: Any) -> tuple[Mapping[str, Any], Mapping[str, Any], Any]:
    if isinstance(entry, LmEvalTask):
        return entry.metrics, entry.stderr, entry.n
    if not isinstance(entry, Mapping):
        return {}, {}, None
    return entry.get("metrics") or {}, entry.get("stderr") or {}, entry.get("n")


def _delta(d: Optional[Delta]) -> RetentionDelta:
    if d is None:
        return RetentionDelta("—", "", "", "", "na")
    mde = getattr(d, "mde", None)
    return RetentionDelta(fmt_num(d.delta, signed=True), fmt_interval(d.ci_low, d.ci_high, signed=True),
                          fmt_p_shown(d.p_value, d.p_adjusted)[0], fmt_num(mde) if mde is not None else "",
                          delta_class(d))


def build_retention(comp: Optional[Comparison], heads: Sequence[TargetHead],
                    runs: Mapping[str, RunRecord]) -> Optional[RetentionView]:
    keys: dict[tuple[str, str], None] = {}
    for h in heads:
        for task, entry in runs[h.name].lm_eval.items():
            for metric in _task_metrics(entry)[0]:
                keys.setdefault((str(task), str(metric)))
    if not keys:
        return None
    candidates = tuple(h for h in heads if not h.is_baseline) if comp is not None else ()
    deltas = {(d.metric, d.candidate): d for d in (comp.deltas if comp else ()) if d.metric.startswith(PREFIX)}
    rows = []
    for task, metric in keys:
        cells = []
        for h in heads:
            metrics, stderr, n = _task_metrics(runs[h.name].lm_eval.get(task))
            se = stderr.get(metric)
            cells.append(RetentionCell(fmt_num(metrics.get(metric)), f"± {fmt_num(se)}" if se is not None else "",
                                       fmt_num(n) if n is not None else ""))
        rows.append(RetentionRow(task, metric, tuple(cells),
                                 tuple(_delta(deltas.get((summary_key(task, metric), c.name))) for c in candidates)))
    return RetentionView(tuple(heads), candidates, tuple(rows))
