"""CI gate: TOML rules over summary metrics, judged per candidate; never ``eval``. docs/gate.md is the manual.

    significance = 0.05                               # optional: relative rules fail only when p < 0.05
    rules = ["verbatim_rate <= verbatim_rate_overfit", "rougeL >= baseline.rougeL - 0.01",
             { rule = "mia_auc <= 0.75", optional = true }]  # optional: skipped when mia_auc is absent

Rules are in the language of evalkit/policy.py (shared with the verdict), one comparison each. Unknown metric
names fail when the gate is read ("Did you mean ...?"). A metric missing from a run FAILS its rule unless the
rule is optional (then "skipped:"): a skipped rule would let a gate pass without checking anything.
``significance`` applies to relative rules (naming baseline.X) only: a failed one still passes unless the
paired test's p-value (Delta.p_value) is below it; a metric without a paired test is judged on its point.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from .errors import GateError, RecordError, did_you_mean
from .io import parse_toml
from .metrics.registry import METRICS
from .policy import NEGATED, BinOp, Cmp, Expr, MetricRef, Neg, Num, RuleSyntaxError, evaluate, fmt, holds, \
    metrics_in, parse_expr, show, unknown_name
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
        raise GateError(f"{where}: {e.message}" + ("" if e.col is None else f" at column {e.col}")) from None
    assert isinstance(node, Cmp)  # the token check allows exactly one comparison, no and/or
    rule = Rule(text=stripped, left=node.left, op=node.op, right=node.right, index=index, optional=optional)
    if not rule.metrics:
        raise GateError(f"{where}: names no candidate metric; a rule compares a metric of each candidate, "
                        f"e.g. \"rougeL >= baseline.rougeL - 0.01\"")
    return rule


def _line_of(raw: str, needle: str) -> Optional[int]:
    """1-based line of the first occurrence of ``needle`` in the TOML text (best effort)."""
    pos = raw.find(needle) if needle else -1
    return raw.count("\n", 0, pos) + 1 if pos >= 0 else None


def parse_gate(raw: str, source: str = "gate.toml", thresholds: Optional[Mapping[str, float]] = None) -> GateSpec:
    """Parse the text of a gate file (TOML); threshold names in rules take their value from ``thresholds``."""
    data = parse_toml(raw, source, GateError)
    for key in data:
        if key not in _TOP_KEYS:
            raise GateError(f"{_where(source, _line_of(raw, key))}: unknown key '{key}'."
                            f"{did_you_mean(key, _TOP_KEYS)} Allowed keys: {', '.join(_TOP_KEYS)}")
    if "rules" not in data:
        raise GateError(f"{source}: no 'rules'; add e.g. rules = [\"verbatim_rate <= 0.05\"]")
    items = data["rules"]
    if not isinstance(items, list) or not items:
        raise GateError(f"{_where(source, _line_of(raw, 'rules'))}: 'rules' must be a non-empty list of "
                        f"strings such as \"verbatim_rate <= 0.05\"")
    significance = data.get("significance")
    if significance is not None:
        if isinstance(significance, bool) or not isinstance(significance, (int, float)) \
                or not 0 < significance < 1:
            raise GateError(f"{_where(source, _line_of(raw, 'significance'))}: 'significance' must be a number "
                            f"between 0 and 1, e.g. 0.05. Got {significance!r} instead.")
        significance = float(significance)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise GateError(f"{_where(source, _line_of(raw, 'description'))}: 'description' must be a string")
    rules = []
    for i, item in enumerate(items, start=1):
        optional = False
        if isinstance(item, dict):
            for key in item:
                if key not in _RULE_KEYS:
                    raise GateError(f"{_where(source, _line_of(raw, key))}: rule {i}: unknown key '{key}'."
                                    f"{did_you_mean(key, _RULE_KEYS)} Allowed keys: {', '.join(_RULE_KEYS)}")
            if "rule" not in item:
                raise GateError(f"{source}: rule {i}: a table needs rule = \"...\" (and optionally "
                                f"optional = true)")
            optional = item.get("optional", False)
            if not isinstance(optional, bool):
                raise GateError(f"{source}: rule {i}: 'optional' must be true or false. Got {optional!r} instead.")
            item = item["rule"]
        line = _line_of(raw, item) if isinstance(item, str) else None
        rules.append(parse_rule(item, index=i, optional=optional, source=source, line=line, thresholds=thresholds))
    return GateSpec(rules=tuple(rules), significance=significance, source=source, description=description)


def load_gate(path: Union[str, Path], thresholds: Optional[Mapping[str, float]] = None) -> GateSpec:
    """Read and check a gate file; every problem is a one-line GateError."""
    path = Path(path)
    if not path.is_file():
        raise GateError(f"{path}: no such gate file; see docs/gate.md for the format, or leave --gate out "
                        f"to use the default gate")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GateError(f"{path}: cannot read the gate file ({e})") from None
    return parse_gate(raw, source=str(path), thresholds=thresholds)


def default_gate(thresholds: Optional[Mapping[str, float]] = None) -> GateSpec:
    """The gate shipped in evalkit/gates/default.toml (used when no --gate is given)."""
    raw = resources.files("evalkit").joinpath("gates/default.toml").read_text(encoding="utf-8")
    spec = parse_gate(raw, source="evalkit/gates/default.toml", thresholds=thresholds)
    return dataclasses.replace(spec, source=DEFAULT_GATE_SOURCE)


# ---------------------------------------------------------------- evaluation


def value_of(run: RunRecord, name: str) -> Optional[float]:
    """A finite summary value, or ``lm_eval.<task>.<metric>`` from RunRecord.lm_eval; None when absent."""
    v: Any = run.summary.get(name)
    if v is None and name.startswith("lm_eval."):
        _, task, metric = (name.split(".", 2) + ["", ""])[:3]
        t = run.lm_eval.get(task)
        metrics = getattr(t, "metrics", None) if not isinstance(t, Mapping) else t.get("metrics", t)
        v = metrics.get(metric) if isinstance(metrics, Mapping) else None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
    return float(v) if ok else None


class _Missing(Exception):
    def __init__(self, ref: MetricRef, target: str):
        self.ref, self.target = ref, target


def _judge(rule: Rule, spec: GateSpec, name: str, run: RunRecord, baseline_name: str, baseline: RunRecord,
           deltas: Mapping[tuple[str, str], Delta]) -> RuleResult:
    def lookup(ref: MetricRef) -> float:
        tgt_name, tgt = (baseline_name, baseline) if ref.baseline else (name, run)
        v = value_of(tgt, ref.name)
        if v is None:
            raise _Missing(ref, tgt_name)
        return v

    # value = the side holding candidate metrics; threshold = the other side
    swap = not _candidate_side(rule.left) and _candidate_side(rule.right)
    thr_node = rule.left if swap else rule.right
    try:
        left, right = evaluate(rule.left, lookup), evaluate(rule.right, lookup)
    except _Missing as m:
        kind = f" (a `{run.kind if m.target == name else baseline.kind}` run)"
        what = f"{'baseline.' if m.ref.baseline else ''}{m.ref.name}"
        if rule.optional:
            return RuleResult(rule=rule.text, candidate=name, passed=True,
                              message=f"skipped: {what} is not in the results of '{m.target}'{kind}; "
                                      f"the rule is optional")
        return RuleResult(rule=rule.text, candidate=name, passed=False,
                          message=f"{what} is not in the results of '{m.target}'{kind}, so the rule cannot "
                                  f"be checked; measure it (evalkit eval) or mark the rule optional")
    except ZeroDivisionError:
        return RuleResult(rule=rule.text, candidate=name, passed=False,
                          message=f"division by zero while evaluating the rule for '{name}'")
    value, threshold = (right, left) if swap else (left, right)
    passed = holds(left, rule.op, right)
    op = rule.op if passed else NEGATED[rule.op]
    if swap:  # show "<value side> op <threshold side>"
        op = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}.get(op, op)
    thr_show = fmt(threshold) if isinstance(thr_node, Num) else f"{fmt(threshold)} ({show(thr_node)})"
    text = f"{show(rule.right if swap else rule.left)} = {fmt(value)} {op} {thr_show} for '{name}'"
    if not passed and rule.relative and spec.significance is not None:
        passed, note = _significance(rule, name, spec.significance, deltas)
        text += note
    return RuleResult(rule=rule.text, candidate=name, passed=passed, value=value, threshold=threshold, message=text)


def _significance(rule: Rule, name: str, alpha: float, deltas: Mapping[tuple[str, str], Delta]) -> tuple[bool, str]:
    """A failed relative rule: (passed, message suffix) after consulting the paired tests.

    It passes only when every metric named as baseline.X has a p-value and none is below ``alpha``;
    a metric without a paired test (p None) is judged on the point estimate.
    """
    ps = {m: (deltas[(name, m)].p_value if (name, m) in deltas else None) for m in rule.baseline_metrics}
    untested = [m for m, p in ps.items() if p is None]
    significant = [p for p in ps.values() if p is not None and p < alpha]
    if not untested and not significant:
        return True, f", but the change is not significant (p = {fmt(min(ps.values()))} >= {fmt(alpha)})"
    note = f" (significant: p = {fmt(min(significant))} < {fmt(alpha)})" if significant else ""
    if untested:
        note += f" (no paired test for {', '.join(untested)}: judged on the point estimate)"
    return False, note


def _candidate_side(node: Expr) -> bool:
    return any(not r.baseline for r in metrics_in(node))


def _check_comparison(comparison: Comparison) -> None:
    missing = [t for t in comparison.targets if t not in comparison.runs]
    if comparison.baseline not in comparison.targets:
        raise RecordError(f"comparison: baseline '{comparison.baseline}' is not one of its targets "
                          f"{list(comparison.targets)}; re-create it with `evalkit compare`")
    if missing:
        raise RecordError(f"comparison: target '{missing[0]}' has no run record; re-create it with `evalkit compare`")


def evaluate_gate(spec: GateSpec, comparison: Comparison) -> GateResult:
    """One RuleResult per rule x candidate (every target but the baseline), in rule order."""
    _check_comparison(comparison)
    baseline = comparison.runs[comparison.baseline]
    deltas = {(d.candidate, d.metric): d for d in comparison.deltas}
    results = [_judge(rule, spec, name, comparison.runs[name], comparison.baseline, baseline, deltas)
               for rule in spec.rules for name in comparison.targets if name != comparison.baseline]
    return GateResult(passed=all(r.passed for r in results), rules=tuple(results), source=spec.source)
