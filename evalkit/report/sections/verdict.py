"""Section 1: the verdict banner: each target's level, every reason with its value, 95% interval, n and
status, the record's notices (warnings a person must see), and the CI gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from ...records import Comparison, Reason, RunRecord
from ..formatting import fmt_interval, fmt_num
from .common import TargetHead, level_of

__all__ = ["RuleView", "GateView", "ReasonView", "NoticeView", "VerdictView", "Banner", "build_banner",
           "STATUS_TEXT"]

# Reason.status -> what the report says (docs/verdict.md defines the statuses)
STATUS_TEXT = {
    "crossed": "threshold crossed",
    "inconclusive": "inconclusive: the interval straddles the threshold",
    "not_enough_data": "not enough data to judge",
    "not_measured": "not measured",
}


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
    code: str
    message: str
    metric: str
    value: str  # "" when the reason has no value
    interval: str  # "[lo, hi]" (95%) or ""
    n: str
    threshold: str
    status: str  # Reason.status when known, else "unknown" (a CSS hook: st-<status>)
    status_text: str


@dataclass(frozen=True)
class NoticeView:
    code: str
    message: str


@dataclass(frozen=True)
class VerdictView:
    target: TargetHead
    level: str
    reasons: tuple[ReasonView, ...]
    notices: tuple[NoticeView, ...]


@dataclass(frozen=True)
class Banner:
    gate: Optional[GateView]
    verdicts: tuple[VerdictView, ...]
    level: str  # overall look of the banner: "ok" | "warn" | "overfit"
    headline: str
    compact: bool  # many targets: each card's reasons are one click away


def _reason(r: Reason) -> ReasonView:
    status = r.status if r.status in STATUS_TEXT else "unknown"
    return ReasonView(
        level_of(r.level), r.code, r.message, r.metric or "",
        fmt_num(r.value) if r.value is not None else "", fmt_interval(r.ci_low, r.ci_high),
        fmt_num(r.n) if r.n is not None else "", fmt_num(r.threshold, plain=True) if r.threshold is not None else "",
        status, STATUS_TEXT.get(status, f"status {r.status}"))


def _gate(comp: Optional[Comparison]) -> Optional[GateView]:
    if comp is None or comp.gate is None:
        return None
    g = comp.gate
    rules = tuple(RuleView(r.rule, r.candidate, bool(r.passed),
                           fmt_num(r.value, plain=True) if r.value is not None else "",
                           fmt_num(r.threshold, plain=True) if r.threshold is not None else "", r.message)
                  for r in g.rules)
    return GateView(bool(g.passed), g.source or "default", rules, sum(not r.passed for r in rules))


def build_banner(comp: Optional[Comparison], heads: Sequence[TargetHead], runs: Mapping[str, RunRecord],
                 compact: bool = False) -> Banner:
    gate = _gate(comp)
    verdicts = tuple(
        VerdictView(h, level_of(runs[h.name].verdict.level), tuple(_reason(r) for r in runs[h.name].verdict.reasons),
                    tuple(NoticeView(n.code, n.message) for n in runs[h.name].notices))
        for h in heads)
    levels = [v.level for v in verdicts]
    worst = "overfit" if "overfit" in levels else "warn" if "warn" in levels else "ok"
    parts = []
    if gate is not None:
        parts.append("Gate passed" if gate.passed else f"Gate failed ({gate.n_failed} of {len(gate.rules)} rule checks)")
        if not gate.passed:
            worst = "overfit"
    counts = {lv: levels.count(lv) for lv in ("overfit", "warn", "ok", "unknown") if levels.count(lv)}
    word = "target" if len(levels) == 1 else "targets"
    parts.append(", ".join(f"{n} {lv}" for lv, n in counts.items()) + f" ({len(levels)} {word})")
    n_notices = sum(len(v.notices) for v in verdicts)
    if n_notices:
        parts.append(f"{n_notices} warning{'s' if n_notices > 1 else ''} about the data or the run")
    return Banner(gate, verdicts, worst, " · ".join(parts), compact)
