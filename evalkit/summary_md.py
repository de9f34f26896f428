"""summary.md: a short Markdown verdict of a comparison, for CI job summaries and PR comments.

Gate line, each target's verdict with its top reasons (with the value, 95% interval and n each was
judged on), a key-metric table (value, delta vs the baseline with its 95% interval and p-value) or,
for a sweep of more than four targets, one row per target and the recommendation, and pointers to
report.html. Names and messages come
from user data, so Markdown/HTML-significant characters are backslash-escaped and newlines removed.
"""

from __future__ import annotations

import re
from typing import Optional

from .metrics.registry import METRICS, key_metrics
from .numbers import fmt_fixed, fmt_p_shown
from .records import Comparison, Delta, Reason
from .report.formatting import fmt_interval, fmt_num
from .report.sections.common import TargetHead, level_of
from .report.sections.sweep import SWEEP_MIN, build_sweep

__all__ = ["to_summary_md", "md_escape", "reason_text", "KEY_METRICS"]

KEY_METRICS = key_metrics()  # the registry's headline figures, in their order
MAX_REASONS = 3  # per target in the verdict table
MAX_FAILED_RULES = 10  # listed under the gate line

# Backslash-escaped everywhere: emphasis, code, links/images ("[" blocks "](...)" and "!["), table
# cells, strikethrough, GitHub math, entities. "<" only where it could open an HTML tag or an autolink
# (followed by a letter, "/", "!" or "?"), so "<=" and "< 0.05" stay readable. Names never start a
# line, so "#", "+", "-", ">" and "1." cannot become headings, lists or quotes.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$&])|<(?=[A-Za-z/!?])")


def md_escape(text: object) -> str:
    """One line, safe inside a Markdown table cell: newlines -> spaces, specials backslash-escaped."""
    one_line = " ".join(str(text).split())
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), one_line)


def _num(v: Optional[float], signed: bool = False) -> str:
    return fmt_fixed(v, signed=signed, missing="–", minus="−")



def reason_text(r: Reason) -> str:
    """The reason's sentence with the figures it was judged on: value, 95% interval, n, and the status
    when the threshold was not plainly crossed."""
    parts = []
    if r.value is not None:
        parts.append(f"{r.metric or r.code} {fmt_num(r.value)}")
    if r.ci_low is not None and r.ci_high is not None:
        parts.append(f"95% CI {fmt_interval(r.ci_low, r.ci_high)}")
    if r.n is not None:
        parts.append(f"n={r.n}")
    if r.status != "crossed":
        parts.append(r.status.replace("_", " "))
    return r.message + (f" ({', '.join(parts)})" if parts and (r.ci_low is not None or r.n is not None
                                                              or r.status != "crossed") else "")


def _sweep_lines(comparison: Comparison) -> list[str]:
    """One row per target (verdict, quality, memorization) and the recommendation, for a sweep."""
    runs = comparison.runs
    heads = [TargetHead(n, i, runs[n].target.kind, level_of(runs[n].verdict.level), n == comparison.baseline)
             for i, n in enumerate(comparison.targets)]
    sw = build_sweep(heads, runs)
    lines = ["", "## Sweep", "", f"**{md_escape(sw.recommendation)}**", ""]
    lines.append("| # | target | verdict | " + " | ".join(md_escape(c.metric) + f" {c.arrow}".rstrip()
                                                       for c in sw.columns) + " |")
    lines.append("|" + "---|" * (3 + len(sw.columns)))
    for r in sw.rows:
        name = md_escape(r.target.name) + (" (baseline)" if r.target.is_baseline else "")
        level = f"**{r.level}**" if r.level != "ok" else r.level
        cells = [c.text + (f" {md_escape(c.interval)}" if c.interval else "") for c in r.cells]
        lines.append(f"| {r.target.number} | {name} | {level} | " + " | ".join(cells) + " |")
    return lines


def _cell(d: Optional[Delta], value: Optional[float]) -> str:
    text = _num(value)
    if d is None or d.delta is None:
        return text
    parts = [f"Δ {_num(d.delta, signed=True)}"]
    if d.ci_low is not None and d.ci_high is not None:
        parts.append(f"\\[{_num(d.ci_low, signed=True)}, {_num(d.ci_high, signed=True)}\\]")
    shown, raw = fmt_p_shown(d.p_value, d.p_adjusted)
    parts += [x for x in (shown, raw) if x]
    if d.better is not None:
        parts.append("better" if d.better else "worse")
    return f"{text} ({', '.join(parts)})"


def to_summary_md(comparison: Comparison, *, report: str = "report.html") -> str:
    """The Markdown text (ends with a newline)."""
    lines: list[str] = ["# evalkit comparison", ""]
    base = comparison.baseline
    gate = comparison.gate
    if gate is None:
        lines.append("**Gate: not evaluated** (no gate given)")
    else:
        failed = [r for r in gate.rules if not r.passed]
        skipped = [r for r in gate.rules if r.passed and r.message.startswith("skipped:")]
        status = "PASS" if gate.passed else "FAIL"
        counts = f"{len(gate.rules) - len(failed)} of {len(gate.rules)} checks passed"
        if skipped:
            counts += f", {len(skipped)} skipped"
        lines.append(f"**Gate: {status}** — {counts} (gate: {md_escape(gate.source or 'default')})")
        for r in failed[:MAX_FAILED_RULES]:
            lines.append(f"- ✗ {md_escape(r.rule)} — {md_escape(r.message)}")
        if len(failed) > MAX_FAILED_RULES:
            lines.append(f"- … and {len(failed) - MAX_FAILED_RULES} more (see junit.xml)")
    lines += ["", "## Verdicts", "", "| target | role | level | top reasons |", "|---|---|---|---|"]
    for name in comparison.targets:
        run = comparison.runs[name]
        level = run.verdict.level
        level_md = f"**{level}**" if level != "ok" else level
        order = {"overfit": 0, "warn": 1}
        reasons = sorted(run.verdict.reasons, key=lambda r: order.get(r.level, 2))[:MAX_REASONS]
        why = "; ".join(md_escape(reason_text(r)) for r in reasons) or "—"
        role = "baseline" if name == base else "candidate"
        lines.append(f"| {md_escape(name)} | {role} | {level_md} | {why} |")

    present = [m for m in KEY_METRICS if any(m in comparison.runs[t].summary for t in comparison.targets)]
    if len(comparison.targets) > SWEEP_MIN:  # a key-metric column per target would not fit: a row each
        lines += _sweep_lines(comparison)
    elif present:
        deltas = {(d.candidate, d.metric): d for d in comparison.deltas}
        lines += ["", "## Key metrics", "",
                  "Δ = candidate − baseline, paired per prompt where possible; \\[95% CI\\]; "
                  "p from Wilcoxon (scores) or McNemar (flags).", ""]
        header = ["metric"] + [f"{md_escape(t)}{' (baseline)' if t == base else ''}" for t in comparison.targets]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for m in present:
            spec = METRICS.get(m)
            arrow = "" if spec is None or spec.higher_is_better is None else (" ↑" if spec.higher_is_better else " ↓")
            row = [f"{md_escape(m)}{arrow}"]
            for t in comparison.targets:
                value = comparison.runs[t].summary.get(m)
                row.append(_cell(None if t == base else deltas.get((t, m)), value))
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", "↑ higher is better, ↓ lower is better."]
    lines += ["", f"Full report: [{md_escape(report)}]({report}) · data: comparison.json · CI: junit.xml", ""]
    return "\n".join(lines)
