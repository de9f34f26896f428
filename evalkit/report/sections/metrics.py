"""Section 2: the metric table: one row per summary metric, grouped; a value column per target and a
delta column per candidate (or, for a sweep, the delta inside each candidate's value cell).

Colours come from the record: ``Delta.better`` (direction of the point delta, set by the comparison)
and the delta's p-value / interval for "significant".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from ...comparison import ordered_metrics
from ...metrics.registry import METRICS
from ...records import Comparison, Delta, RunRecord
from ...numbers import fmt_p_shown
from ..formatting import finite, fmt_interval, fmt_num, sort_key
from .common import TargetHead

__all__ = ["ALPHA", "GROUPS", "ValueCell", "DeltaCell", "MetricRow", "MetricGroup", "MetricTable",
           "metric_group", "is_significant", "delta_class", "build_metric_table"]

ALPHA = 0.05  # significance level for colouring a delta "significant" (the 95% interval's complement)
GROUPS = ("quality", "memorization", "loss", "diversity", "defects", "other")


def metric_group(name: str) -> str:
    """Which table group a summary metric belongs to (quality, memorization, loss, diversity, defects, other)."""
    if name.startswith("rouge"):
        return "quality"
    if name.startswith(("verbatim", "near_verbatim", "longest_span", "extraction", "heldout_extraction", "mia_",
                        "canary_")):
        return "memorization"
    if name.endswith(("_loss", "_ppl", "loss_gap", "loss_rise", "loss_step")) or name.startswith("loss_gap"):
        return "loss"
    if name.startswith(("novelty", "reference_novelty", "distinct", "mode_collapse")):
        return "diversity"
    if name in ("mean_new_tokens",) or (name.endswith("_rate") and name[:-5] in
                                         ("escaped_newline", "template_leak", "empty", "truncated", "repetition")):
        return "defects"
    return "other"


def is_significant(d: Delta, alpha: float = ALPHA) -> bool:
    """Holm-adjusted p-value (else the raw one) below alpha; without a p-value, a 95% interval that
    excludes 0; otherwise not significant."""
    raw = d.p_adjusted if d.p_adjusted is not None else d.p_value
    if raw is not None:
        p = finite(raw)
        return p is not None and p < alpha
    lo, hi = finite(d.ci_low), finite(d.ci_high)
    if lo is not None and hi is not None:
        return lo > 0 or hi < 0
    return False


def delta_class(d: Delta, alpha: float = ALPHA) -> str:
    """CSS class of a delta cell: better-sig, better, worse-sig, worse, neutral (no direction / 0) or na."""
    if finite(d.delta) is None:
        return "na"
    if d.better is None:
        return "neutral"
    return ("better" if d.better else "worse") + ("-sig" if is_significant(d, alpha) else "")


_MEANING = {"better-sig": "better, significant", "better": "better, not significant",
            "worse-sig": "worse, significant", "worse": "worse, not significant",
            "neutral": "no direction or no change", "na": "no value"}


@dataclass(frozen=True)
class DeltaCell:
    text: str
    ci: str
    p: str
    cls: str
    sort: str
    title: str


@dataclass(frozen=True)
class ValueCell:
    text: str
    sort: str
    interval: str  # "[lo, hi]" from RunRecord.intervals, or ""
    n: str  # RunRecord.n[metric], or ""
    delta: Optional[DeltaCell] = None  # sweep tables only: the candidate's delta inside its value cell


@dataclass(frozen=True)
class MetricRow:
    name: str
    description: str
    direction: str  # "higher is better" | "lower is better" | "informational"
    arrow: str  # "↑" | "↓" | ""
    unit: str
    values: tuple[ValueCell, ...]
    deltas: tuple[DeltaCell, ...]


@dataclass(frozen=True)
class MetricGroup:
    name: str
    rows: tuple[MetricRow, ...]


@dataclass(frozen=True)
class MetricTable:
    targets: tuple[TargetHead, ...]
    candidates: tuple[TargetHead, ...]  # those with a delta column (none in a compact table)
    groups: tuple[MetricGroup, ...]
    baseline: Optional[str]
    compact: bool  # deltas inside the value cells (sweeps: one column per target, not two)


def _delta_cell(d: Optional[Delta], baseline: str) -> DeltaCell:
    if d is None:
        return DeltaCell("—", "", "", "na", "", "not in both runs")
    cls = delta_class(d)
    test = f"{d.test}, {d.n_pairs} pairs" if d.test else "unpaired: difference of the summaries, no test"
    shown, raw = fmt_p_shown(d.p_value, d.p_adjusted)
    title = f"{d.candidate} minus {baseline}: {_MEANING[cls]} ({test}{'; ' + raw if raw else ''})"
    return DeltaCell(fmt_num(d.delta, signed=True), fmt_interval(d.ci_low, d.ci_high, signed=True), shown,
                     cls, sort_key(d.delta), title)


def build_metric_table(comp: Optional[Comparison], heads: Sequence[TargetHead], runs: Mapping[str, RunRecord],
                       compact: bool = False) -> MetricTable:
    others = tuple(h for h in heads if not h.is_baseline) if comp is not None else ()
    deltas = {(d.metric, d.candidate): d for d in (comp.deltas if comp is not None else ())}
    names: Iterable[str] = ordered_metrics([m for r in runs.values() for m in r.summary])
    grouped: dict[str, list[MetricRow]] = {g: [] for g in GROUPS}
    for name in dict.fromkeys(names):
        spec = METRICS.get(name)
        hib = spec.higher_is_better if spec else None
        values = []
        for h in heads:
            run = runs[h.name]
            iv = run.intervals.get(name)
            v = run.summary.get(name)
            inner = None
            if compact and comp is not None and not h.is_baseline:
                inner = _delta_cell(deltas.get((name, h.name)), comp.baseline)
            values.append(ValueCell(fmt_num(v), sort_key(v), fmt_interval(*iv) if iv and len(iv) == 2 else "",
                                    fmt_num(run.n[name]) if name in run.n else "", inner))
        cells = () if compact else tuple(_delta_cell(deltas.get((name, c.name)), comp.baseline) for c in others)
        grouped[metric_group(name)].append(MetricRow(
            name, spec.description if spec else "not in evalkit's metric registry",
            {True: "higher is better", False: "lower is better"}.get(hib, "informational"),
            {True: "↑", False: "↓"}.get(hib, ""), spec.unit if spec else "", tuple(values), cells))
    groups = tuple(MetricGroup(g, tuple(rows)) for g, rows in grouped.items() if rows)
    return MetricTable(tuple(heads), () if compact else others, groups,
                       comp.baseline if comp is not None else None, compact)
