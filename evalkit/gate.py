"""CI gate: TOML rules over summary metrics, judged per candidate; never ``eval``. docs/gate.md is the manual.

    significance = 0.05     # optional: a failed relative rule (naming baseline.X) passes unless p < 0.05
    rules = ["verbatim_rate <= verbatim_rate_overfit", "rougeL >= baseline.rougeL - 0.01",
             { rule = "mia_auc <= 0.75", optional = true }]  # optional: "skipped" when mia_auc is absent

Rules are in the language of evalkit/policy.py (the verdict's), one comparison each; unknown names fail when the
gate is read ("Did you mean ...?"); a metric missing from a run FAILS its rule unless the rule is optional.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Optional, Union

from .errors import GateError, did_you_mean
from .io import parse_toml
from .metrics.registry import METRICS
from .numbers import fmt_sig as fmt
from .policy import NEGATED, BinOp, Expr, MetricRef, Neg, Num, RuleSyntaxError, evaluate, holds, \
    metrics_in, parse_expr, sides, unknown_name
from .records import Comparison, Delta, GateResult, RuleResult, RunRecord
from .thresholds import Thresholds

__all__ = ["Num", "MetricRef", "BinOp", "Neg", "Rule", "GateSpec", "parse_rule", "parse_gate", "load_gate",
           "default_gate", "evaluate_gate", "DEFAULT_GATE_SOURCE"]

DEFAULT_GATE_SOURCE = "default"
_TOP_KEYS = ("rules", "significance", "description")
_RULE_KEYS = ("rule", "optional")


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as written (stripped)
    left: Expr
    op: str
    right: Expr
    index: int = 1  # 1-based position in the file's ``rules``
    optional: bool = False
    source: tuple[str, str] = ("", "")  # left and right side as written (shown in messages)

    def _names(self, baseline: bool) -> tuple[str, ...]:
        refs = metrics_in(self.left) + metrics_in(self.right)
        return tuple(dict.fromkeys(r.name for r in refs if r.baseline == baseline))

    @property
    def metrics(self) -> tuple[str, ...]:
        """Candidate-side metric names, in order of appearance."""
        return self._names(False)

    @property
    def baseline_metrics(self) -> tuple[str, ...]:
        return self._names(True)

    @property
    def relative(self) -> bool:
        return bool(self.baseline_metrics)


@dataclass(frozen=True)
class GateSpec:
    rules: tuple[Rule, ...]
    significance: Optional[float] = None  # relative rules fail only when p < significance
    source: str = DEFAULT_GATE_SOURCE  # file path or "default"
    description: str = ""


def _where(source: str, line: Optional[int]) -> str:
    return f"{source}:{line}" if line else source


def parse_rule(text: str, *, index: int = 1, optional: bool = False, source: str = "gate",
               line: Optional[int] = None, thresholds: Optional[Mapping[str, float]] = None) -> Rule:
    """Parse one rule. GateError names the file, rule number, the rule and the column."""
    if not isinstance(text, str):
        raise GateError(f"{_where(source, line)}: rule {index} must be a string like \"verbatim_rate <= 0.05\", "
                        f"got {type(text).__name__}")
    stripped = text.strip()
    where = f"{_where(source, line)}: rule {index} \"{stripped}\""
    if not stripped:
        raise GateError(f"{where}: empty rule; write a comparison such as \"verbatim_rate <= 0.05\"")
    th = Thresholds() if thresholds is None else thresholds

    def resolve(name: str, baseline: bool, col: int) -> Expr:
        if name in METRICS or name.startswith("lm_eval."):
            return MetricRef(name, baseline)
        if name in th and not baseline:
            return Num(th[name])
        raise unknown_name(name, col, METRICS)

    try:
        node = parse_expr(stripped, resolve)
    except RuleSyntaxError as e:
        message, col = e.args
        raise GateError(f"{where}: {message}" + ("" if col is None else f" at column {col}")) from None
    rule = Rule(stripped, node.left, node.op, node.right, index, optional, sides(stripped))
    if not rule.metrics:
        raise GateError(f"{where}: names no candidate metric; a rule compares a metric of each candidate, "
                        f"e.g. \"rougeL >= baseline.rougeL - 0.01\"")
    return rule


def parse_gate(raw: str, source: str = "gate.toml", thresholds: Optional[Mapping[str, float]] = None) -> GateSpec:
    """Parse the text of a gate file (TOML); threshold names in rules take their value from ``thresholds``."""
    def line_of(needle: str) -> Optional[int]:  # of its first occurrence (best effort)
        pos = raw.find(needle) if needle else -1
        return raw.count("\n", 0, pos) + 1 if pos >= 0 else None

    def at(needle: str) -> str:
        return _where(source, line_of(needle))

    data = parse_toml(raw, source, GateError)
    for key in (k for k in data if k not in _TOP_KEYS):
        raise GateError(f"{at(key)}: unknown key '{key}'.{did_you_mean(key, _TOP_KEYS)} Allowed keys: "
                        f"{', '.join(_TOP_KEYS)}")
    if "rules" not in data:
        raise GateError(f"{source}: no 'rules'; add e.g. rules = [\"verbatim_rate <= 0.05\"]")
    items, significance, description = data["rules"], data.get("significance"), data.get("description", "")
    if not isinstance(items, list) or not items:
        raise GateError(f"{at('rules')}: 'rules' must be a non-empty list of strings such as \"verbatim_rate <= "
                        f"0.05\"")
    if significance is not None and (isinstance(significance, bool) or not isinstance(significance, (int, float))
                                     or not 0 < significance < 1):
        raise GateError(f"{at('significance')}: 'significance' must be a number between 0 and 1, e.g. 0.05. Got "
                        f"{significance!r} instead.")
    if not isinstance(description, str):
        raise GateError(f"{at('description')}: 'description' must be a string")
    rules = []
    for i, item in enumerate(items, start=1):
        table = item if isinstance(item, dict) else {"rule": item}
        for key in (k for k in table if k not in _RULE_KEYS):
            raise GateError(f"{at(key)}: rule {i}: unknown key '{key}'.{did_you_mean(key, _RULE_KEYS)} Allowed keys: "
                            f"{', '.join(_RULE_KEYS)}")
        if "rule" not in table:
            raise GateError(f"{source}: rule {i}: a table needs rule = \"...\" (and optionally optional = true)")
        optional = table.get("optional", False)
        if not isinstance(optional, bool):
            raise GateError(f"{source}: rule {i}: 'optional' must be true or false. Got {optional!r} instead.")
        text = table["rule"]
        line = line_of(text) if isinstance(text, str) else None
        rules.append(parse_rule(text, index=i, optional=optional, source=source, line=line, thresholds=thresholds))
    sig = None if significance is None else float(significance)
    return GateSpec(rules=tuple(rules), significance=sig, source=source, description=description)


def load_gate(path: Union[str, Path], thresholds: Optional[Mapping[str, float]] = None) -> GateSpec:
    """Read and check a gate file; every problem is a one-line GateError."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        missing = isinstance(e, (FileNotFoundError, IsADirectoryError))
        raise GateError(f"{path}: " + ("no such gate file; see docs/gate.md for the format, or leave --gate out to "
                                       "use the default gate" if missing else f"cannot read the gate file ({e})")) \
            from None
    return parse_gate(raw, source=str(path), thresholds=thresholds)


def default_gate(thresholds: Optional[Mapping[str, float]] = None) -> GateSpec:
    """The gate shipped in evalkit/gates/default.toml (used when no --gate is given)."""
    raw = resources.files("evalkit").joinpath("gates/default.toml").read_text(encoding="utf-8")
    spec = parse_gate(raw, source="evalkit/gates/default.toml", thresholds=thresholds)
    return dataclasses.replace(spec, source=DEFAULT_GATE_SOURCE)


# ---------------------------------------------------------------- evaluation


class _Missing(Exception):
    """(the MetricRef, the target's name) of a metric a run does not have."""


def _judge(rule: Rule, spec: GateSpec, name: str, run: RunRecord, baseline_name: str, baseline: RunRecord,
           deltas: Mapping[tuple[str, str], Delta]) -> RuleResult:
    def lookup(ref: MetricRef) -> float:
        tgt_name, tgt = (baseline_name, baseline) if ref.baseline else (name, run)
        v = tgt.value(ref.name)
        if v is None:
            raise _Missing(ref, tgt_name)
        return v

    # value = the side holding candidate metrics; threshold = the other side
    has_candidate = [any(not r.baseline for r in metrics_in(side)) for side in (rule.left, rule.right)]
    swap = not has_candidate[0] and has_candidate[1]
    thr_node = rule.left if swap else rule.right
    try:
        left, right = evaluate(rule.left, lookup), evaluate(rule.right, lookup)
    except _Missing as m:
        ref, target = m.args
        absent = f"{'baseline.' if ref.baseline else ''}{ref.name} is not in the results of '{target}' " \
                 f"(a `{run.kind if target == name else baseline.kind}` run)"
        message = f"skipped: {absent}; the rule is optional" if rule.optional else \
            f"{absent}, so the rule cannot be checked; measure it (evalkit eval) or mark the rule optional"
        return RuleResult(rule=rule.text, candidate=name, passed=rule.optional, message=message)
    except ZeroDivisionError:
        return RuleResult(rule=rule.text, candidate=name, passed=False,
                          message=f"division by zero while evaluating the rule for '{name}'")
    value, threshold = (right, left) if swap else (left, right)
    passed = holds(left, rule.op, right)
    op = rule.op if passed else NEGATED[rule.op]
    if swap:  # show "<value side> op <threshold side>"
        op = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}.get(op, op)
    val_text, thr_text = rule.source[::-1] if swap else rule.source
    thr_show = fmt(threshold) if isinstance(thr_node, Num) else f"{fmt(threshold)} ({thr_text})"
    text = f"{val_text} = {fmt(value)} {op} {thr_show} for '{name}'"
    if not passed and rule.relative and spec.significance is not None:
        passed, note = _significance(rule, name, spec.significance, deltas)
        text += note
    return RuleResult(rule=rule.text, candidate=name, passed=passed, value=value, threshold=threshold, message=text)


def _significance(rule: Rule, name: str, alpha: float, deltas: Mapping[tuple[str, str], Delta]) -> tuple[bool, str]:
    """A failed relative rule passes only when every baseline.X has a p-value and none is below ``alpha``."""
    ps = {m: (deltas[(name, m)].p_value if (name, m) in deltas else None) for m in rule.baseline_metrics}
    untested = [m for m, p in ps.items() if p is None]
    significant = [p for p in ps.values() if p is not None and p < alpha]
    if not untested and not significant:
        return True, f", but the change is not significant (p = {fmt(min(ps.values()))} >= {fmt(alpha)})"
    note = f" (significant: p = {fmt(min(significant))} < {fmt(alpha)})" if significant else ""
    if untested:
        note += f" (no paired test for {', '.join(untested)}: judged on the point estimate)"
    return False, note


def evaluate_gate(spec: GateSpec, comparison: Comparison) -> GateResult:
    """One RuleResult per rule x candidate (every target but the baseline), in rule order."""
    comparison.check()  # RecordError when its baseline or a target has no run
    baseline = comparison.runs[comparison.baseline]
    deltas = {(d.candidate, d.metric): d for d in comparison.deltas}
    results = [_judge(rule, spec, name, comparison.runs[name], comparison.baseline, baseline, deltas)
               for rule in spec.rules for name in comparison.targets if name != comparison.baseline]
    return GateResult(passed=all(r.passed for r in results), rules=tuple(results), source=spec.source)
