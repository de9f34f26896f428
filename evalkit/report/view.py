"""Build the report's view model from a Comparison or a RunRecord. No HTML here.

Everything the template shows is decided here, as frozen dataclasses of plain strings and numbers:
which metrics go in which group, how a delta is coloured, where the copied span sits in a
generation, which words changed against the baseline, and the pixel geometry of every chart.
The template (templates/report.html.j2) only lays these out; Jinja2 escapes every string.

Class names and CSS hooks (``cls`` fields) come from fixed sets in this module, never from data.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from ..metrics.registry import METRICS
from ..metrics.registry import metric_group as registry_group
from ..numbers import finite_or_none
from ..records import Comparison, Delta, RunRecord, Sample, Target
from .diff import ESCAPE_ARTIFACT, word_diff

__all__ = [
    "Seg", "TargetHead", "ReportView", "build_view",
    "text_segments", "diff_segments", "locate_span", "span_segments",
    "delta_class", "is_significant", "metric_group", "fmt_num", "fmt_plain", "fmt_signed", "fmt_p", "nice_ticks", "line_chart",
    "ALPHA", "MEMO_FLAGS",
]

ALPHA = 0.05  # significance level for colouring a delta "significant" (the 95% interval's complement)
MEMO_FLAGS = ("verbatim", "near_verbatim")  # flags listed in the memorization section
GROUPS = ("quality", "memorization", "loss", "diversity", "defects", "other")
N_COLOURS = 8  # palette size in report.css (.c0 .. .c7)
MAX_CHART_POINTS = 800  # per series; longer training logs / ROC curves are thinned evenly


# ---------------------------------------------------------------- text segments


@dataclass(frozen=True)
class Seg:
    """A run of text with one look: op "" (plain), "ins", "del", "copy" (copied span); esc: a literal \\n."""

    text: str
    op: str = ""
    esc: bool = False


def text_segments(text: Optional[str], op: str = "") -> tuple[Seg, ...]:
    """Split ``text`` so each literal backslash-n/r/t artifact is its own segment with ``esc=True``."""
    out: list[Seg] = []
    pos = 0
    text = text or ""
    for m in ESCAPE_ARTIFACT.finditer(text):
        if m.start() > pos:
            out.append(Seg(text[pos:m.start()], op))
        out.append(Seg(m.group(), op, True))
        pos = m.end()
    if pos < len(text):
        out.append(Seg(text[pos:], op))
    return tuple(out)


REWRITE_SHARE = 0.25  # below this share of the candidate's text kept from the baseline, mark it all new


def diff_segments(baseline: str, candidate: str) -> tuple[Seg, ...]:
    """The candidate's text with words not in the baseline as "ins" and removed words as "del".

    When less than REWRITE_SHARE of the candidate is unchanged text, the answer is a rewrite: it is
    shown whole as "ins" with no deletions (the baseline's answer sits in the next column).
    """
    tokens = word_diff(baseline or "", candidate or "")
    kept = sum(len(t.text) for t in tokens if t.op == "same" and not t.text.isspace())
    if candidate and baseline and kept < REWRITE_SHARE * len(candidate.strip()):
        return text_segments(candidate, "ins")
    out: list[Seg] = []
    for tok in tokens:
        out.extend(text_segments(tok.text, "" if tok.op == "same" else tok.op))
    return tuple(out)


def locate_span(text: str, start: Optional[int], span: str) -> Optional[int]:
    """Where ``span`` sits in ``text``: ``start`` when it matches there, else the first occurrence, else None."""
    if not span or not text:
        return None
    if start is not None and 0 <= start <= len(text) - len(span) and text[start:start + len(span)] == span:
        return start
    found = text.find(span)
    return found if found >= 0 else None


def span_segments(text: str, start: Optional[int], span: str) -> tuple[tuple[Seg, ...], bool]:
    """``text`` with the copied span marked "copy"; (segments, whether the span was found)."""
    at = locate_span(text or "", start, span)
    if at is None:
        return text_segments(text), False
    end = at + len(span)
    return text_segments(text[:at]) + text_segments(text[at:end], "copy") + text_segments(text[end:]), True


_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def lang_of(text: Optional[str]) -> Optional[str]:
    """A BCP 47 tag for text in a CJK script (so the browser picks the right glyphs), else None."""
    if not text:
        return None
    if _HANGUL.search(text):
        return "ko"
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return None


# ---------------------------------------------------------------- numbers


_finite = finite_or_none  # one definition, shared with the comparison


def fmt_num(v: Any) -> str:
    """Compact display: integers as integers, otherwise 3-4 significant digits; missing as an em dash."""
    f = _finite(v)
    if f is None:
        return "—"
    if f == int(f) and abs(f) < 1e9:
        return str(int(f))
    a = abs(f)
    if a >= 100:
        return f"{f:.1f}"
    if a >= 1:
        return f"{f:.3f}"
    if a >= 0.001:
        return f"{f:.4f}"
    return f"{f:.2e}"


def fmt_plain(v: Any) -> str:
    """Up to 4 significant digits, no padding (thresholds, tick labels): 0.05, 1.5, 2e-05."""
    f = _finite(v)
    return "—" if f is None else f"{f:.4g}"


def fmt_signed(v: Any) -> str:
    f = _finite(v)
    if f is None:
        return "—"
    s = fmt_num(f)
    return s if f <= 0 else f"+{s}"


def fmt_p(p: Any) -> str:
    f = _finite(p)
    if f is None:
        return ""
    return "p<0.001" if f < 0.001 else f"p={f:.3f}"


def _sort_key(v: Any) -> str:
    """data-sort value: a number as text, or "" (sorted last)."""
    f = _finite(v)
    return "" if f is None else repr(f)


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class TargetHead:
    name: str
    idx: int  # position; picks the colour class c{idx % 8}
    kind: str
    level: str  # verdict: "ok" | "warn" | "overfit" | "unknown"
    is_baseline: bool = False

    @property
    def cls(self) -> str:
        return f"c{self.idx % N_COLOURS}"


def _level(level: Any) -> str:
    return level if level in ("ok", "warn", "overfit") else "unknown"


# ---------------------------------------------------------------- banner


@dataclass(frozen=True)
class RuleView:
    rule: str
    candidate: str
    passed: bool
    value: str
    threshold: str
    message: str


@dataclass(frozen=True)
class GateView:
    passed: bool
    source: str
    rules: tuple[RuleView, ...]
    n_failed: int

    @property
    def failed_rules(self) -> tuple[RuleView, ...]:
        return tuple(r for r in self.rules if not r.passed)

    @property
    def passed_rules(self) -> tuple[RuleView, ...]:
        return tuple(r for r in self.rules if r.passed)


@dataclass(frozen=True)
class ReasonView:
    level: str
    message: str


@dataclass(frozen=True)
class VerdictView:
    target: TargetHead
    level: str
    reasons: tuple[ReasonView, ...]


@dataclass(frozen=True)
class Banner:
    gate: Optional[GateView]
    verdicts: tuple[VerdictView, ...]
    level: str  # overall look of the banner: "ok" | "warn" | "overfit"
    headline: str


def _banner(comp: Optional[Comparison], heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Banner:
    gate = None
    if comp is not None and comp.gate is not None:
        g = comp.gate
        rules = tuple(RuleView(r.rule, r.candidate, bool(r.passed), fmt_plain(r.value) if r.value is not None else "",
                               fmt_plain(r.threshold) if r.threshold is not None else "", r.message)
                      for r in g.rules)
        gate = GateView(bool(g.passed), g.source or "default", rules, sum(not r.passed for r in rules))
    verdicts = []
    for h in heads:
        v = runs[h.name].verdict
        verdicts.append(VerdictView(h, _level(v.level), tuple(ReasonView(_level(r.level), r.message)
                                                               for r in v.reasons)))
    levels = [v.level for v in verdicts]
    worst = "overfit" if "overfit" in levels else "warn" if "warn" in levels else "ok"
    parts = []
    if gate is not None:
        parts.append("Gate passed" if gate.passed else f"Gate failed ({gate.n_failed} of {len(gate.rules)} rule checks)")
        if not gate.passed:
            worst = "overfit"
    counts = {lv: levels.count(lv) for lv in ("overfit", "warn", "ok") if levels.count(lv)}
    word = "target" if len(levels) == 1 else "targets"
    parts.append(", ".join(f"{n} {lv}" for lv, n in counts.items()) + f" ({len(levels)} {word})")
    return Banner(gate, tuple(verdicts), worst, " · ".join(parts))


# ---------------------------------------------------------------- metric table


def metric_group(name: str) -> str:
    """Which table group a summary metric belongs to: the registry's (per-suite ``m@suite`` as m)."""
    return registry_group(name.split("@", 1)[0])


def is_significant(d: Delta, alpha: float = ALPHA) -> bool:
    """p-value below alpha; without a p-value, a 95% interval that excludes 0; otherwise not significant."""
    if d.p_value is not None:
        return _finite(d.p_value) is not None and d.p_value < alpha
    lo, hi = _finite(d.ci_low), _finite(d.ci_high)
    if lo is not None and hi is not None:
        return lo > 0 or hi < 0
    return False


def delta_class(d: Delta, alpha: float = ALPHA) -> str:
    """CSS class of a delta cell: better-sig, better, worse-sig, worse, neutral (no direction / 0) or na."""
    value = _finite(d.delta)
    if value is None:
        return "na"
    better = d.better
    if better is None:
        hib = d.higher_is_better
        if hib is None and d.metric in METRICS:
            hib = METRICS[d.metric].higher_is_better
        if hib is not None and value != 0:
            better = (value > 0) == hib
    if better is None:
        return "neutral"
    return ("better" if better else "worse") + ("-sig" if is_significant(d, alpha) else "")


@dataclass(frozen=True)
class ValueCell:
    text: str
    sort: str
    interval: str  # "[lo, hi]" from RunRecord.intervals, or ""


@dataclass(frozen=True)
class DeltaCell:
    text: str
    ci: str
    p: str
    cls: str
    sort: str
    title: str


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
    candidates: tuple[TargetHead, ...]
    groups: tuple[MetricGroup, ...]
    baseline: Optional[str]


def _ordered_metrics(names: Iterable[str]) -> list[str]:
    present = set(names)
    return [m for m in METRICS if m in present] + sorted(present - set(METRICS))


def _delta_cell(d: Optional[Delta], baseline: str) -> DeltaCell:
    if d is None:
        return DeltaCell("—", "", "", "na", "", "not in both runs")
    ci = ""
    if _finite(d.ci_low) is not None and _finite(d.ci_high) is not None:
        ci = f"[{fmt_signed(d.ci_low)}, {fmt_signed(d.ci_high)}]"
    cls = delta_class(d)
    meaning = {"better-sig": "better, significant", "better": "better, not significant",
               "worse-sig": "worse, significant", "worse": "worse, not significant",
               "neutral": "no direction or no change", "na": "no value"}[cls]
    test = f"{d.test}, {d.n_pairs} pairs" if d.test else "unpaired: difference of the summaries, no test"
    title = f"{d.candidate} minus {baseline}: {meaning} ({test})"
    return DeltaCell(fmt_signed(d.delta), ci, fmt_p(d.p_value), cls, _sort_key(d.delta), title)


def _metric_table(comp: Optional[Comparison], heads: Sequence[TargetHead],
                  runs: Mapping[str, RunRecord]) -> MetricTable:
    candidates = tuple(h for h in heads if not h.is_baseline) if comp is not None else ()
    deltas = {(d.metric, d.candidate): d for d in (comp.deltas if comp is not None else ())}
    names = _ordered_metrics(m for r in runs.values() for m in r.summary)
    grouped: dict[str, list[MetricRow]] = {g: [] for g in GROUPS}
    for name in names:
        spec = METRICS.get(name)
        hib = spec.higher_is_better if spec else None
        values = []
        for h in heads:
            run = runs[h.name]
            iv = run.intervals.get(name)
            interval = ""
            if iv and len(iv) == 2 and _finite(iv[0]) is not None and _finite(iv[1]) is not None:
                interval = f"[{fmt_num(iv[0])}, {fmt_num(iv[1])}]"
            v = run.summary.get(name)
            values.append(ValueCell(fmt_num(v), _sort_key(v), interval))
        cells = tuple(_delta_cell(deltas.get((name, c.name)), comp.baseline) for c in candidates)
        grouped[metric_group(name)].append(MetricRow(
            name, spec.description if spec else "not in evalkit's metric registry",
            {True: "higher is better", False: "lower is better"}.get(hib, "informational"),
            {True: "↑", False: "↓"}.get(hib, ""), spec.unit if spec else "", tuple(values), cells))
    groups = tuple(MetricGroup(g, tuple(rows)) for g, rows in grouped.items() if rows)
    return MetricTable(tuple(heads), candidates, groups, comp.baseline if comp is not None else None)


# ---------------------------------------------------------------- charts


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
class LineChart:
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
    series: tuple[Series, ...]
    diagonal: str = ""  # path of the chance line (ROC)


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


def _thin(points: list[tuple[float, Optional[float]]], limit: int = MAX_CHART_POINTS):
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    kept = points[::stride]
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


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
        pts = [(_finite(x), _finite(y)) for x, y in zip(xs, ys)]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if pts:
            cleaned.append((label, colour, dashed, _thin(pts)))
    if not cleaned:
        return None
    all_x = [x for *_, pts in cleaned for x, _ in pts]
    all_y = [y for *_, pts in cleaned for _, y in pts if y is not None]
    x0, x1 = x_range or (min(all_x), max(all_x))
    y0, y1 = y_range or (min(all_y), max(all_y))
    if y_range is None:  # pad so lines do not sit on the frame; losses start at 0 when close to it
        pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
        y0 = 0.0 if 0 <= y0 <= (y1 - y0) else y0 - pad
        y1 = y1 + pad
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    left, top, right, bottom = 56, 28, width - 16, height - 40

    def px(x: float) -> float:
        return round(left + (x - x0) / (x1 - x0) * (right - left), 1)

    def py(y: float) -> float:
        return round(bottom - (y - y0) / (y1 - y0) * (bottom - top), 1)

    out_series = []
    for label, colour, dashed, pts in cleaned:
        path = " ".join(f"{'L' if k else 'M'}{px(x)} {py(y)}" for k, (x, y) in enumerate(pts))
        dots = tuple((px(x), py(y)) for x, y in pts) if len(pts) <= 12 else ()
        out_series.append(Series(label, f"c{colour % N_COLOURS}", dashed, path, dots))
    if integer_x and x1 - x0 <= 12:
        xt = [float(t) for t in range(math.ceil(x0), math.floor(x1) + 1)]
    else:
        xt = [t for t in nice_ticks(x0, x1, 6) if not integer_x or t == int(t)]
    x_ticks = tuple(Tick(px(t), fmt_plain(t)) for t in xt if x0 <= t <= x1)
    y_ticks = tuple(Tick(py(t), fmt_plain(t)) for t in nice_ticks(y0, y1, 5) if y0 <= t <= y1)
    diag = f"M{px(x0)} {py(y0)} L{px(x1)} {py(y1)}" if diagonal else ""
    return LineChart(title, x_label, y_label, width, height, left, top, right, bottom, x_ticks, y_ticks,
                     tuple(out_series), diag)


# ---------------------------------------------------------------- training curves


@dataclass(frozen=True)
class TrainingView:
    chart: Optional[LineChart]
    adapters: tuple[TargetHead, ...]  # those with a training log, in table column order
    rows: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (step, ((train, val) per adapter))


def _training(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Optional[TrainingView]:
    logged = [(h, runs[h.name].target.training_log) for h in heads if runs[h.name].target.training_log]
    if not logged:
        return None
    series = []
    by_step: dict[float, dict[int, tuple[Any, Any]]] = {}
    for h, log in logged:
        rows = sorted((r for r in log if _finite(r.get("step")) is not None), key=lambda r: float(r["step"]))
        steps = [r["step"] for r in rows]
        series.append((f"{h.name} train", h.idx, False, steps, [r.get("train_loss") for r in rows]))
        series.append((f"{h.name} val", h.idx, True, steps, [r.get("val_loss") for r in rows]))
        for r in rows:
            by_step.setdefault(float(r["step"]), {})[h.idx] = (r.get("train_loss"), r.get("val_loss"))
    chart = line_chart("Training loss per step: train (solid), validation (dashed)", series,
                       x_label="step", y_label="loss (nats/token)")
    table = tuple(
        (fmt_num(step), tuple((fmt_num(cols.get(h.idx, (None, None))[0]), fmt_num(cols.get(h.idx, (None, None))[1]))
                              for h, _ in logged))
        for step, cols in sorted(by_step.items()))
    return TrainingView(chart, tuple(h for h, _ in logged), table)


# ---------------------------------------------------------------- memorization


@dataclass(frozen=True)
class FlaggedItem:
    sample_id: str
    suite: str
    flags: tuple[str, ...]
    prompt: tuple[Seg, ...]
    prompt_lang: Optional[str]
    prediction: tuple[Seg, ...]
    pred_lang: Optional[str]
    train_id: str
    train: tuple[Seg, ...]
    train_lang: Optional[str]
    span_tokens: str
    located: bool  # the span was found in both texts (else shown unhighlighted, with a note)
    nearest_id: str
    nearest: tuple[Seg, ...]  # the nearest training answer when it differs from the span's source
    edit_distance: str


@dataclass(frozen=True)
class FlaggedGroup:
    target: TargetHead
    items: tuple[FlaggedItem, ...]
    n_samples: int


@dataclass(frozen=True)
class ExtractionRow:
    id: str
    prompt: str
    prediction: tuple[Seg, ...]
    reference: tuple[Seg, ...]
    exact: bool
    edit_distance: str
    lang: Optional[str]


@dataclass(frozen=True)
class ExtractionView:
    target: TargetHead
    n_train: int
    n_train_exact: int
    train_mean_ed: str
    n_heldout: int
    n_heldout_exact: int
    heldout_mean_ed: str
    closest: tuple[ExtractionRow, ...]  # training prompts whose answers came back closest


@dataclass(frozen=True)
class MemorizationView:
    roc: tuple[tuple[TargetHead, LineChart], ...]
    novelty: Optional[LineChart]
    flagged: tuple[FlaggedGroup, ...]
    extraction: tuple[ExtractionView, ...]

    @property
    def empty(self) -> bool:
        return not (self.roc or self.novelty or any(g.items for g in self.flagged) or self.extraction)


def _auc(fpr: Sequence[float], tpr: Sequence[float]) -> Optional[float]:
    pts = sorted((x, y) for x, y in zip(fpr, tpr) if _finite(x) is not None and _finite(y) is not None)
    if len(pts) < 2:
        return None
    return sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in zip(pts, pts[1:]))


def _roc_chart(h: TargetHead, run: RunRecord) -> Optional[LineChart]:
    roc = run.curves.get("roc") if isinstance(run.curves, Mapping) else None
    if not isinstance(roc, Mapping):
        return None
    series = []
    for i, (score, pts) in enumerate(roc.items()):
        if not isinstance(pts, Mapping):
            continue
        fpr, tpr = list(pts.get("fpr") or []), list(pts.get("tpr") or [])
        auc = _finite(run.summary.get(f"mia_auc_{score}"))
        if auc is None:
            auc = _auc(fpr, tpr)
        label = f"{score} (AUC {fmt_num(auc)})" if auc is not None else str(score)
        series.append((label, i, False, fpr, tpr))
    return line_chart(f"{h.name}: membership-inference ROC", series, x_label="false positive rate",
                      y_label="true positive rate", x_range=(0, 1), y_range=(0, 1), diagonal=True,
                      width=360, height=320)


def _novelty_chart(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Optional[LineChart]:
    series, refs = [], []
    for h in heads:
        nov = runs[h.name].curves.get("novelty") if isinstance(runs[h.name].curves, Mapping) else None
        if not isinstance(nov, Mapping) or not nov.get("n"):
            continue
        ns = list(nov["n"])
        series.append((h.name, h.idx, False, ns, list(nov.get("prediction") or [])))
        ref = [_finite(v) for v in (nov.get("reference") or [])]
        if ref and all(ref != r for _, r, _ in refs):
            refs.append((h, ref, ns))
    if not series:
        return None
    for k, (h, ref, ns) in enumerate(refs):
        label = "human references" if len(refs) == 1 else f"human references ({h.name})"
        series.append((label, N_COLOURS - 1 if len(refs) == 1 else h.idx, True, ns, ref))
    return line_chart("Novelty: share of n-grams found in no training answer", series, x_label="n (n-gram length)",
                      y_label="novel share", y_range=(0, 1), integer_x=True, width=520, height=300)


def _flagged(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> tuple[FlaggedGroup, ...]:
    groups = []
    for h in heads:
        run = runs[h.name]
        items = []
        for s in run.samples:
            flags = tuple(f for f in s.flags if f in MEMO_FLAGS)
            if not flags:
                continue
            m = s.memorization
            if m is None:
                items.append(FlaggedItem(s.id, s.suite, flags, text_segments(s.prompt), lang_of(s.prompt),
                                         text_segments(s.prediction), lang_of(s.prediction), "", (), None, "",
                                         False, "", (), ""))
                continue
            pred, ok_pred = span_segments(s.prediction, m.pred_start, m.span)
            train, ok_train = span_segments(m.train_answer, m.train_start, m.span)
            nearest: tuple[Seg, ...] = ()
            if m.nearest_answer and m.nearest_id != m.train_id:
                nearest = text_segments(m.nearest_answer)
            items.append(FlaggedItem(
                s.id, s.suite, flags, text_segments(s.prompt), lang_of(s.prompt), pred, lang_of(s.prediction),
                m.train_id, train, lang_of(m.train_answer), fmt_num(m.span_tokens), ok_pred and ok_train,
                m.nearest_id or "", nearest, fmt_num(m.edit_distance) if m.edit_distance is not None else ""))
        groups.append(FlaggedGroup(h, tuple(items), len(run.samples)))
    return tuple(groups)


def _extraction(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> tuple[ExtractionView, ...]:
    out = []
    for h in heads:
        ex = runs[h.name].extraction
        if not ex:
            continue
        train = [e for e in ex if e.split == "train"]
        held = [e for e in ex if e.split != "train"]

        def mean_ed(rows):
            vals = [_finite(e.edit_distance) for e in rows]
            vals = [v for v in vals if v is not None]
            return fmt_num(sum(vals) / len(vals)) if vals else "—"

        closest = sorted(train, key=lambda e: (_finite(e.edit_distance) if _finite(e.edit_distance) is not None
                                               else math.inf))[:5]
        out.append(ExtractionView(
            h, len(train), sum(e.exact for e in train), mean_ed(train), len(held), sum(e.exact for e in held),
            mean_ed(held),
            tuple(ExtractionRow(e.id, e.prompt, text_segments(e.prediction), text_segments(e.reference), e.exact,
                                fmt_num(e.edit_distance), lang_of(e.prediction + e.reference)) for e in closest)))
    return tuple(out)


def _memorization(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> MemorizationView:
    roc = tuple((h, c) for h in heads if (c := _roc_chart(h, runs[h.name])) is not None)
    return MemorizationView(roc, _novelty_chart(heads, runs), _flagged(heads, runs), _extraction(heads, runs))


# ---------------------------------------------------------------- side by side

# Per-sample metrics worth a glance; the rest of Sample.metrics (rouge1/2/Lsum, other novelty_n)
# are in results.json.
SAMPLE_METRICS_FIRST = ("rougeL", "novelty_4", "longest_span", "heldout_nll")
_SAMPLE_METRICS_HIDDEN = re.compile(r"^(rouge1|rouge2|rougeLsum|novelty_[1-35-9])$")


@dataclass(frozen=True)
class AnswerCell:
    target: TargetHead
    present: bool
    segs: tuple[Seg, ...]
    lang: Optional[str]
    flags: tuple[str, ...]
    metrics: tuple[tuple[str, str], ...]
    delta: str  # rougeL delta vs baseline ("" for the baseline / no pair)
    delta_cls: str
    n_tokens: str
    same_as_baseline: bool


@dataclass(frozen=True)
class SampleRow:
    idx: int
    id: str
    suite: str
    prompt: tuple[Seg, ...]
    prompt_lang: Optional[str]
    reference: Optional[tuple[Seg, ...]]
    reference_lang: Optional[str]
    answers: tuple[AnswerCell, ...]
    differ: bool
    flagged: bool
    regression: str  # data-reg: the most negative rougeL delta over candidates ("" when none)


@dataclass(frozen=True)
class SamplesView:
    targets: tuple[TargetHead, ...]
    rows: tuple[SampleRow, ...]
    has_candidates: bool
    has_reference: bool
    n_differ: int
    n_flagged: int


def _sample_metrics(s: Sample) -> tuple[tuple[str, str], ...]:
    keys = [k for k in SAMPLE_METRICS_FIRST if k in s.metrics]
    keys += sorted(k for k in s.metrics if k not in keys and not _SAMPLE_METRICS_HIDDEN.match(k))
    return tuple((k, fmt_num(s.metrics[k])) for k in keys)


def _samples(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord], comparing: bool) -> Optional[SamplesView]:
    per_target: list[dict[tuple[str, str], Sample]] = []
    order: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for h in heads:
        by_key = {}
        for s in runs[h.name].samples:
            key = (s.suite, s.id)
            by_key.setdefault(key, s)
            if key not in seen:
                seen.add(key)
                order.append(key)
        per_target.append(by_key)
    if not order:
        return None
    base = per_target[0] if comparing else {}
    rows = []
    for idx, key in enumerate(order):
        first = next(t[key] for t in per_target if key in t)
        b = base.get(key)
        answers, deltas = [], []
        for h, by_key in zip(heads, per_target):
            s = by_key.get(key)
            if s is None:
                answers.append(AnswerCell(h, False, (), None, (), (), "", "", "", False))
                continue
            delta, dcls, same = "", "", False
            if comparing and not h.is_baseline and b is not None:
                segs = diff_segments(b.prediction, s.prediction)
                same = s.prediction == b.prediction
                d = None
                if _finite(s.metrics.get("rougeL")) is not None and _finite(b.metrics.get("rougeL")) is not None:
                    d = float(s.metrics["rougeL"]) - float(b.metrics["rougeL"])
                    deltas.append(d)
                    delta = fmt_signed(d)
                    dcls = "better" if d > 0 else "worse" if d < 0 else "neutral"
            else:
                segs = text_segments(s.prediction)
            answers.append(AnswerCell(h, True, segs, lang_of(s.prediction), tuple(s.flags), _sample_metrics(s),
                                      delta, dcls, fmt_num(s.n_tokens) if s.n_tokens is not None else "", same))
        preds = [by_key[key].prediction for by_key in per_target if key in by_key]
        differ = comparing and len(set(preds)) > 1
        flagged = any(a.flags for a in answers)
        reference = first.reference if first.reference is not None else None
        rows.append(SampleRow(
            idx, first.id, first.suite, text_segments(first.prompt), lang_of(first.prompt),
            text_segments(reference) if reference is not None else None, lang_of(reference),
            tuple(answers), differ, flagged, _sort_key(min(deltas)) if deltas else ""))
    return SamplesView(tuple(heads), tuple(rows), comparing and len(heads) > 1,
                       any(r.reference is not None for r in rows), sum(r.differ for r in rows),
                       sum(r.flagged for r in rows))


# ---------------------------------------------------------------- configs and provenance

# Shown first, in this order, when present (matched on the last part of a dotted key).
CONFIG_FIRST = ("r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "lr", "num_epochs",
                "num_train_epochs", "epochs", "max_steps", "batch_size", "per_device_train_batch_size",
                "gradient_accumulation_steps", "effective_batch_size", "train_subset", "max_seq_len", "seed")


@dataclass(frozen=True)
class KVRow:
    key: str
    values: tuple[str, ...]  # one per target ("" when absent)
    differs: bool  # the targets that have this field disagree (an absent field alone is no difference)
    mono: bool  # hashes, paths, command lines: shown in monospace


@dataclass(frozen=True)
class KVTable:
    title: str
    rows: tuple[KVRow, ...]


@dataclass(frozen=True)
class ConfigView:
    targets: tuple[TargetHead, ...]
    tables: tuple[KVTable, ...]
    comparison: tuple[tuple[str, str], ...]  # Comparison.provenance, flattened


def _display(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (str, int, float, bool)) or x is None for x in v):
            return ", ".join(_display(x) for x in v)
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, Mapping):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and v:
                out.update(_flatten(v, key + "."))
            else:
                out[key] = _display(v)
    elif d is not None:
        out[prefix.rstrip(".") or "value"] = _display(d)
    return out


def _config_rank(key: str) -> tuple[int, str]:
    last = key.rsplit(".", 1)[-1]
    return (CONFIG_FIRST.index(last) if last in CONFIG_FIRST else len(CONFIG_FIRST), key)


_MONO = re.compile(r"(hash|sha|path|command|argv|cmd|file|dir|id)$|_modules$")


def _kv_table(title: str, per_target: Sequence[Mapping[str, str]], keys: Optional[Sequence[str]] = None) -> KVTable:
    if keys is None:
        keys = []
        for m in per_target:
            keys.extend(k for k in m if k not in keys)
    rows = []
    for k in keys:
        values = tuple(m.get(k, "") for m in per_target)
        present = {m[k] for m in per_target if k in m}
        rows.append(KVRow(k, values, len(present) > 1, bool(_MONO.search(k.rsplit(".", 1)[-1]))))
    return KVTable(title, tuple(rows))


def _configs(comp: Optional[Comparison], heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> ConfigView:
    configs, data, target_info, prov = [], [], [], []
    for h in heads:
        run = runs[h.name]
        t: Target = run.target
        training = t.training if isinstance(t.training, Mapping) else {}
        configs.append(_flatten(training.get("config")))
        data.append(_flatten({k: v for k, v in training.items() if k != "config"}))
        target_info.append({k: v for k, v in (("run kind", run.kind), ("target kind", t.kind), ("path", t.path),
                                              ("base_model", t.base_model), ("base_hash", t.base_hash),
                                              ("adapter_hash", t.adapter_hash)) if v})
        p = _flatten(run.provenance)
        p.update(_flatten(run.settings, "settings."))
        prov.append(p)
    keys = sorted({k for m in configs for k in m}, key=_config_rank)
    tables = [_kv_table("Training configuration", configs, keys), _kv_table("Training data and run", data),
              _kv_table("Model identity", target_info), _kv_table("Provenance and settings", prov)]
    comp_prov = tuple(_flatten(comp.provenance).items()) if comp is not None else ()
    return ConfigView(tuple(heads), tuple(t for t in tables if t.rows), comp_prov)


# ---------------------------------------------------------------- the whole report


@dataclass(frozen=True)
class ReportView:
    title: str
    kind: str  # "comparison" | "run"
    created_at: str
    baseline: Optional[str]
    targets: tuple[TargetHead, ...]
    banner: Banner
    metrics: MetricTable
    training: Optional[TrainingView]
    memorization: MemorizationView
    samples: Optional[SamplesView]
    configs: ConfigView
    data: dict[str, Any] = field(default_factory=dict)  # the small JSON block the page's script reads


def build_view(record: Union[Comparison, RunRecord]) -> ReportView:
    """The whole report as a view model. A RunRecord gives a single-target report (no deltas)."""
    if isinstance(record, Comparison):
        comp: Optional[Comparison] = record
        names = list(record.targets) or list(record.runs)
        runs = {n: record.runs[n] for n in names if n in record.runs}
        names = [n for n in names if n in runs]
        baseline = record.baseline if record.baseline in runs else (names[0] if names else None)
        if baseline is not None and names and names[0] != baseline:
            names.remove(baseline)
            names.insert(0, baseline)
        created = str(record.provenance.get("created_at", "")) if isinstance(record.provenance, Mapping) else ""
    elif isinstance(record, RunRecord):
        comp, baseline = None, None
        names = [record.target.name]
        runs = {record.target.name: record}
        created = str(record.provenance.get("created_at", "")) if isinstance(record.provenance, Mapping) else ""
    else:
        raise TypeError(f"build_view needs a Comparison or a RunRecord, got {type(record).__name__}")
    heads = tuple(TargetHead(n, i, runs[n].target.kind, _level(runs[n].verdict.level), n == baseline)
                  for i, n in enumerate(names))
    if comp is not None:
        title = f"evalkit: {', '.join(names[1:])} vs {baseline}" if len(names) > 1 else f"evalkit: {baseline}"
    else:
        title = f"evalkit: {names[0]} ({record.kind})"
    samples = _samples(heads, runs, comp is not None)
    data = {
        "kind": "comparison" if comp is not None else "run",
        "baseline": baseline,
        "targets": names,
        "candidates": names[1:] if comp is not None else [],
        "n_samples": len(samples.rows) if samples else 0,
        "schema_version": record.schema_version,
    }
    return ReportView(title, data["kind"], created, baseline, heads, _banner(comp, heads, runs),
                      _metric_table(comp, heads, runs), _training(heads, runs), _memorization(heads, runs),
                      samples, _configs(comp, heads, runs), data)
