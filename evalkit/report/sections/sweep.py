"""The sweep view (a comparison of more than ``SWEEP_MIN`` targets): one sortable row per target with its
verdict, held-out quality and memorization figures; a scatter of quality against memorization with
the Pareto front marked; and a recommendation: the best-quality variant whose verdict is ok, or why
there is none.

Every figure is the record's (summary value, its 95% interval from ``RunRecord.intervals``, its n from
``RunRecord.n``), under the name the record gives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from ...metrics.registry import METRICS
from ...records import RunRecord
from ..charts import ScatterChart, scatter_chart
from ..formatting import finite, fmt_interval, fmt_num, sort_key
from .common import LEVEL_RANK, TargetHead

__all__ = ["SWEEP_MIN", "QUALITY", "MEMORIZATION", "SweepColumn", "SweepCell", "SweepRow", "SweepView",
           "pareto_front", "recommend", "build_sweep"]

SWEEP_MIN = 4  # a comparison of more targets than this gets the sweep view
# Columns, in order, shown when some record has them. Quality: held-out figures (references the
# adapter never saw). Memorization: loss gaps, membership inference, copying.
QUALITY = ("rougeL", "heldout_loss")
MEMORIZATION = ("loss_gap_val", "loss_gap_heldout", "loss_gap", "mia_auc", "mia_tpr_at_1fpr", "mia_tpr_at_0fp",
                "verbatim_rate", "near_verbatim_rate", "extraction_rate")
# The scatter's memorization axis: the first of these the records carry.
MEMO_AXIS = ("mia_auc", "loss_gap_val", "loss_gap", "verbatim_rate")


@dataclass(frozen=True)
class SweepColumn:
    metric: str
    group: str  # "quality" | "memorization"
    arrow: str  # "↑" | "↓" | ""
    description: str


@dataclass(frozen=True)
class SweepCell:
    text: str
    interval: str
    sort: str
    title: str


@dataclass(frozen=True)
class SweepRow:
    target: TargetHead
    level: str
    level_sort: str
    n_reasons: int
    top_reason: str
    n_notices: int
    cells: tuple[SweepCell, ...]
    front: bool  # on the Pareto front of quality vs memorization
    recommended: bool


@dataclass(frozen=True)
class SweepView:
    columns: tuple[SweepColumn, ...]
    rows: tuple[SweepRow, ...]
    scatter: Optional[ScatterChart]
    quality_metric: Optional[str]
    memo_metric: Optional[str]
    recommendation: str
    recommended: Optional[str]  # target name


def _higher_is_better(metric: str) -> Optional[bool]:
    spec = METRICS.get(metric)
    return spec.higher_is_better if spec else None


def pareto_front(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """Names whose (quality, memorization) no other point dominates: quality higher-or-equal and
    memorization lower-or-equal, one of them strictly."""
    front = set()
    for name, (q, m) in points.items():
        dominated = any(q2 >= q and m2 <= m and (q2 > q or m2 < m)
                        for other, (q2, m2) in points.items() if other != name)
        if not dominated:
            front.add(name)
    return front


def _quality(run: RunRecord, metric: str) -> str:
    v = run.summary.get(metric)
    iv = run.intervals.get(metric)
    n = run.n.get(metric)
    parts = [f"{metric} {fmt_num(v)}"]
    if iv:
        parts.append(fmt_interval(*iv))
    if n is not None:
        parts.append(f"n={fmt_num(n)}")
    return " ".join(p for p in parts if p)


def recommend(candidates: Sequence[TargetHead], runs: Mapping[str, RunRecord],
              metric: Optional[str]) -> tuple[Optional[str], str]:
    """(recommended target or None, the sentence saying which and why, or why none)."""
    if not candidates:
        return None, "No candidate variants to choose from."
    levels = {h.name: h.level for h in candidates}
    ok = [h for h in candidates if levels[h.name] == "ok"]
    if metric is None:
        return None, ("No recommendation: the records carry no held-out quality figure "
                      f"({' or '.join(QUALITY)}) to rank the {len(ok)} variants whose verdict is ok.")
    hib = _higher_is_better(metric) is not False
    sign = 1.0 if hib else -1.0

    def score(h: TargetHead) -> Optional[float]:
        v = finite(runs[h.name].summary.get(metric))
        return None if v is None else sign * v

    if not ok:
        counts = {lv: list(levels.values()).count(lv) for lv in ("overfit", "warn", "unknown")}
        tally = ", ".join(f"{n} {lv}" for lv, n in counts.items() if n)
        ranked = sorted((h for h in candidates if levels[h.name] == "warn" and score(h) is not None),
                        key=lambda h: -score(h))
        line = f"No recommendation: no variant's verdict is ok ({tally})."
        if ranked:
            best = ranked[0]
            reasons = runs[best.name].verdict.reasons
            why = "; ".join(r.message for r in reasons[:2])
            line += (f" The best-quality warn variant is {best.name} ({_quality(runs[best.name], metric)})"
                     + (f": {why}" if why else "") + ".")
        return None, line
    scored = sorted((h for h in ok if score(h) is not None), key=lambda h: -score(h))
    if not scored:
        return None, f"No recommendation: none of the {len(ok)} ok variants has a {metric} figure."
    best = scored[0]
    line = (f"Recommended: {best.name}, the best held-out quality ({_quality(runs[best.name], metric)}) "
            f"of the {len(ok)} variant{'s' if len(ok) > 1 else ''} whose verdict is ok.")
    iv = runs[best.name].intervals.get(metric)
    if len(scored) > 1 and iv:
        close = [h.name for h in scored[1:] if (v := finite(runs[h.name].summary.get(metric))) is not None
                 and min(iv) <= v <= max(iv)]
        if close:
            line += (f" {', '.join(close[:3])}{' and others' if len(close) > 3 else ''} "
                     f"{'lies' if len(close) == 1 else 'lie'} within its 95% interval: the data cannot rank them.")
    return best.name, line


def build_sweep(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> SweepView:
    have = {m for r in runs.values() for m in r.summary if finite(r.summary[m]) is not None}
    tpr = sorted(m for m in have if m.startswith("mia_tpr") and m not in MEMORIZATION)  # as the record names it
    columns = tuple(
        SweepColumn(m, group, {True: "↑", False: "↓"}.get(_higher_is_better(m), ""),
                    METRICS[m].description if m in METRICS else "not in evalkit's metric registry")
        for group, names in (("quality", QUALITY), ("memorization", MEMORIZATION + tuple(tpr)))
        for m in names if m in have)
    quality_metric = next((m for m in QUALITY if m in have), None)
    memo_metric = next((m for m in MEMO_AXIS if m in have), None)
    candidates = [h for h in heads if not h.is_baseline]
    recommended, line = recommend(candidates, runs, quality_metric)
    points: dict[str, tuple[float, float]] = {}
    if quality_metric and memo_metric:
        sign = -1.0 if _higher_is_better(quality_metric) is False else 1.0
        for h in candidates:
            q, m = finite(runs[h.name].summary.get(quality_metric)), finite(runs[h.name].summary.get(memo_metric))
            if q is not None and m is not None:
                points[h.name] = (sign * q, m)
    front = pareto_front(points)
    rows = []
    for h in heads:
        run = runs[h.name]
        cells = []
        for c in columns:
            v = run.summary.get(c.metric)
            iv = run.intervals.get(c.metric)
            n = run.n.get(c.metric)
            cells.append(SweepCell(fmt_num(v), fmt_interval(*iv) if iv else "", sort_key(v),
                                   f"{c.metric} of {h.name}" + (f", n={n}" if n is not None else "")))
        reasons = run.verdict.reasons
        rows.append(SweepRow(h, h.level, str(LEVEL_RANK.get(h.level, 3)), len(reasons),
                             reasons[0].message if reasons else "", len(run.notices), tuple(cells),
                             h.name in front, h.name == recommended))
    scatter = None
    if quality_metric and memo_metric:
        pts = []
        for h in heads:
            run = runs[h.name]
            q, m = run.summary.get(quality_metric), run.summary.get(memo_metric)
            tip = (f"#{h.number} {h.name}: {h.level}, {quality_metric} {fmt_num(q)}, {memo_metric} {fmt_num(m)}"
                   + (" (baseline)" if h.is_baseline else "") + (" · Pareto front" if h.name in front else ""))
            cls = "lvl-base" if h.is_baseline else f"lvl-{h.level}"
            pts.append((h.number, tip, m, q, cls, h.name in front))
        arrow_q = "higher is better" if _higher_is_better(quality_metric) is not False else "lower is better"
        scatter = scatter_chart(f"Held-out quality against memorization ({len(pts)} targets)", pts,
                                x_label=f"{memo_metric} (memorization, lower is better)",
                                y_label=f"{quality_metric} ({arrow_q})", width=620, height=420)
    return SweepView(columns, tuple(rows), scatter, quality_metric, memo_metric, line, recommended)
