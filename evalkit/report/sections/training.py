"""Section 3: training curves from each adapter's training_log.jsonl: train (solid) and validation
(dashed) loss per step, overlaid for a few adapters or one small chart each (same axes) for a sweep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ...records import RunRecord
from ..charts import LineChart, line_chart
from ..formatting import finite, fmt_num
from .common import TargetHead

__all__ = ["TrainingView", "build_training", "OVERLAY_MAX"]

OVERLAY_MAX = 4  # adapters drawn in one chart; more get one small chart each


@dataclass(frozen=True)
class TrainingView:
    charts: tuple[LineChart, ...]  # one overlay chart, or one small chart per adapter
    small: bool
    adapters: tuple[TargetHead, ...]  # those with a training log, in table column order
    rows: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (step, ((train, val) per adapter))


def build_training(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Optional[TrainingView]:
    logged = [(h, runs[h.name].target.training_log) for h in heads if runs[h.name].target.training_log]
    if not logged:
        return None
    per_adapter = []
    by_step: dict[float, dict[int, tuple[Any, Any]]] = {}
    for h, log in logged:
        rows = sorted((r for r in log if finite(r.get("step")) is not None), key=lambda r: float(r["step"]))
        steps = [r["step"] for r in rows]
        per_adapter.append((h, [(f"{h.name} train", h.idx, False, steps, [r.get("train_loss") for r in rows]),
                                (f"{h.name} val", h.idx, True, steps, [r.get("val_loss") for r in rows])]))
        for r in rows:
            by_step.setdefault(float(r["step"]), {})[h.idx] = (r.get("train_loss"), r.get("val_loss"))
    small = len(logged) > OVERLAY_MAX
    if small:  # the chart's title names the adapter; the legend only says which line is which
        per_adapter = [(h, [(label.rsplit(" ", 1)[-1], *rest) for label, *rest in ss]) for h, ss in per_adapter]
        ys = [finite(y) for _, ss in per_adapter for s in ss for y in s[4]]
        ys = [y for y in ys if y is not None]
        xs = [finite(x) for _, ss in per_adapter for s in ss for x in s[3]]
        xs = [x for x in xs if x is not None]
        y_range = (0.0 if ys and min(ys) >= 0 else min(ys, default=0.0), max(ys, default=1.0) * 1.05 or 1.0)
        x_range = (min(xs, default=0.0), max(xs, default=1.0))
        charts = tuple(c for h, ss in per_adapter if (c := line_chart(
            h.name, ss, x_label="step", y_label="loss", x_range=x_range, y_range=y_range,
            width=300, height=190)) is not None)
    else:
        chart = line_chart("Training loss per step: train (solid), validation (dashed)",
                           [s for _, ss in per_adapter for s in ss], x_label="step", y_label="loss (nats/token)")
        charts = (chart,) if chart is not None else ()
    table = tuple(
        (fmt_num(step), tuple((fmt_num(cols.get(h.idx, (None, None))[0]), fmt_num(cols.get(h.idx, (None, None))[1]))
                              for h, _ in logged))
        for step, cols in sorted(by_step.items()))
    return TrainingView(charts, small, tuple(h for h, _ in logged), table)
