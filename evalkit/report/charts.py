"""Pixel geometry of the report's SVG charts (line charts and scatter plots). No markup here.

Every coordinate is a rounded number; SVG path data holds only "M", "L", digits, "." and spaces,
so the template can place it in a ``d`` attribute without any data reaching markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .formatting import finite, fmt_num

__all__ = ["Tick", "Series", "LineChart", "Point", "ScatterChart", "nice_ticks", "line_chart", "scatter_chart",
           "N_COLOURS", "MAX_CHART_POINTS"]

N_COLOURS = 8  # palette size in report.css (.c0 .. .c7)
MAX_CHART_POINTS = 800  # per series; longer training logs / ROC curves are thinned evenly


@dataclass(frozen=True)
class Tick:
    pos: float  # pixel position along the axis
    label: str


@dataclass(frozen=True)
class Series:
    label: str
    cls: str  # colour class c0..c7
    dashed: bool
    path: str  # SVG path data: only "M", "L", digits, "." and spaces
    dots: tuple[tuple[float, float], ...] = ()  # markers for short series


@dataclass(frozen=True)
class Frame:
    """The plot area and its ticks, shared by both chart kinds."""

    title: str
    x_label: str
    y_label: str
    width: int
    height: int
    left: int
    top: int
    right: int  # x pixel of the plot's right edge
    bottom: int  # y pixel of the plot's bottom edge
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]


@dataclass(frozen=True)
class LineChart(Frame):
    series: tuple[Series, ...] = ()
    diagonal: str = ""  # path of the chance line (ROC)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # short text drawn beside the point (the target's number in the table)
    title: str  # tooltip: name and values
    cls: str  # look: "lvl-ok" | "lvl-warn" | "lvl-overfit" | "lvl-unknown"
    front: bool  # on the Pareto front (drawn ringed)


@dataclass(frozen=True)
class ScatterChart(Frame):
    points: tuple[Point, ...] = ()
    front_path: str = ""  # the Pareto front as a step-free polyline through its points


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        out.append(round(first + k * step, 12))
        k += 1
    return out


def _thin(points: list[tuple[float, float]], limit: int = MAX_CHART_POINTS) -> list[tuple[float, float]]:
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    kept = points[::stride]
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def _padded(lo: float, hi: float, zero_floor: bool) -> tuple[float, float]:
    """Pad a data range by 5% so marks do not sit on the frame; start at 0 when the data is close to it."""
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    lo = 0.0 if zero_floor and 0 <= lo <= (hi - lo) else lo - pad
    return lo, hi + pad


def _frame(title: str, x_label: str, y_label: str, x_range: tuple[float, float], y_range: tuple[float, float],
           width: int, height: int, integer_x: bool) -> tuple[Frame, Callable[[float], float], Callable[[float], float]]:
    x0, x1 = x_range
    y0, y1 = y_range
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    left, top, right, bottom = 56, 28, width - 16, height - 40

    def px(x: float) -> float:
        return round(left + (x - x0) / (x1 - x0) * (right - left), 1)

    def py(y: float) -> float:
        return round(bottom - (y - y0) / (y1 - y0) * (bottom - top), 1)

    if integer_x and x1 - x0 <= 12:
        xt = [float(t) for t in range(math.ceil(x0), math.floor(x1) + 1)]
    else:
        xt = [t for t in nice_ticks(x0, x1, 6) if not integer_x or t == int(t)]
    x_ticks = tuple(Tick(px(t), fmt_num(t, plain=True)) for t in xt if x0 <= t <= x1)
    y_ticks = tuple(Tick(py(t), fmt_num(t, plain=True)) for t in nice_ticks(y0, y1, 5) if y0 <= t <= y1)
    frame = Frame(title, x_label, y_label, width, height, left, top, right, bottom, x_ticks, y_ticks)
    return frame, px, py


def _frame_fields(f: Frame) -> dict[str, Any]:
    return {k: getattr(f, k) for k in Frame.__dataclass_fields__}


def line_chart(title: str, series: Sequence[tuple[str, int, bool, Sequence[Any], Sequence[Any]]], *,
               x_label: str, y_label: str, x_range: Optional[tuple[float, float]] = None,
               y_range: Optional[tuple[float, float]] = None, diagonal: bool = False, integer_x: bool = False,
               width: int = 640, height: int = 300) -> Optional[LineChart]:
    """Pixel geometry of a line chart. ``series`` items: (label, colour index, dashed, xs, ys).

    Points with a missing / non-finite coordinate are skipped (a training log has val_loss on some
    steps only; the line joins the steps that have it). Returns None when no series has a point.
    """
    cleaned = []
    for label, colour, dashed, xs, ys in series:
        pts = [(finite(x), finite(y)) for x, y in zip(xs, ys)]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if pts:
            cleaned.append((label, colour, dashed, _thin(pts)))
    if not cleaned:
        return None
    all_x = [x for *_, pts in cleaned for x, _ in pts]
    all_y = [y for *_, pts in cleaned for _, y in pts]
    xr = x_range or (min(all_x), max(all_x))
    yr = y_range or _padded(min(all_y), max(all_y), zero_floor=True)
    frame, px, py = _frame(title, x_label, y_label, xr, yr, width, height, integer_x)
    out_series = []
    for label, colour, dashed, pts in cleaned:
        path = " ".join(f"{'L' if k else 'M'}{px(x)} {py(y)}" for k, (x, y) in enumerate(pts))
        dots = tuple((px(x), py(y)) for x, y in pts) if len(pts) <= 12 else ()
        out_series.append(Series(label, f"c{colour % N_COLOURS}", dashed, path, dots))
    diag = f"M{px(xr[0])} {py(yr[0])} L{px(xr[1])} {py(yr[1])}" if diagonal else ""
    return LineChart(**_frame_fields(frame), series=tuple(out_series), diagonal=diag)


def scatter_chart(title: str, points: Sequence[tuple[str, str, Any, Any, str, bool]], *, x_label: str,
                  y_label: str, width: int = 640, height: int = 400) -> Optional[ScatterChart]:
    """Pixel geometry of a scatter plot. ``points`` items: (label, tooltip, x, y, look class, on the front).

    Points with a missing coordinate are left out. The front's points are joined left to right.
    Returns None when fewer than two points have both coordinates.
    """
    kept = [(label, tip, finite(x), finite(y), cls, front) for label, tip, x, y, cls, front in points]
    kept = [p for p in kept if p[2] is not None and p[3] is not None]
    if len(kept) < 2:
        return None
    xs, ys = [p[2] for p in kept], [p[3] for p in kept]
    frame, px, py = _frame(title, x_label, y_label, _padded(min(xs), max(xs), False),
                           _padded(min(ys), max(ys), False), width, height, False)
    out = tuple(Point(px(x), py(y), label, tip, cls, front) for label, tip, x, y, cls, front in kept)
    front = sorted((p for p in out if p.front), key=lambda p: (p.x, p.y))
    path = " ".join(f"{'L' if k else 'M'}{p.x} {p.y}" for k, p in enumerate(front)) if len(front) > 1 else ""
    return ScatterChart(**_frame_fields(frame), points=out, front_path=path)
