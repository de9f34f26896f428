"""CI gate: TOML rules over summary metrics, judged per candidate; never ``eval``.

A gate file::

    description = "what this gate protects"          # optional
    significance = 0.05                               # optional, see below
    rules = [
      "verbatim_rate <= 0.02",                        # absolute rule
      "rougeL >= baseline.rougeL - 0.01",             # relative rule (references baseline.X)
      { rule = "mia_auc <= 0.75", optional = true },  # optional: skipped when mia_auc is absent
    ]

Grammar (one comparison per rule; docs/gate.md has the full description)::

    rule    := expr CMP expr
    CMP     := "<=" | ">=" | "<" | ">" | "==" | "!="
    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | atom
    atom    := NUMBER | METRIC | "baseline" "." METRIC | "(" expr ")"

Decisions:

* Metric names are checked against evalkit/metrics/registry.py when the gate is loaded
  ("Did you mean ...?"), so a typo fails the build at once instead of passing silently.
* A metric missing from a run's summary (e.g. ``mia_auc`` of a ``score`` run, which has no model)
  makes the rule FAIL with a message saying so -- a skipped rule would let a gate pass without
  checking anything. A rule written as ``{ rule = "...", optional = true }`` is instead reported
  as passed with a message starting "skipped:".
* ``significance`` applies to relative rules only: when the comparison fails, the rule still
  passes unless the change is significant, i.e. the p-value of the paired test (Delta.p_value of
  a metric referenced as ``baseline.X``) is below ``significance``. A metric with no paired test
  (corpus-level, p_value None) is judged on its point estimate. Without ``significance`` in the
  file, relative rules are judged on the point estimate only. Absolute rules ignore it.
* Comparisons allow a 1e-9 relative / 1e-12 absolute tolerance, so ``x >= baseline.x - 0.02``
  does not fail on floating-point rounding when the change is exactly -0.02.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

from .errors import GateError, RecordError, did_you_mean
from .metrics.registry import METRICS
from .records import Comparison, Delta, GateResult, RuleResult, RunRecord

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Num",
    "MetricRef",
    "BinOp",
    "Neg",
    "Rule",
    "GateSpec",
    "parse_rule",
    "parse_gate",
    "load_gate",
    "default_gate",
    "evaluate_gate",
    "DEFAULT_GATE_SOURCE",
]

DEFAULT_GATE_SOURCE = "default"
_TOP_KEYS = ("rules", "significance", "description")
_RULE_KEYS = ("rule", "optional")
_REL_TOL, _ABS_TOL = 1e-9, 1e-12


# ---------------------------------------------------------------- expression tree


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class MetricRef:
    name: str
    baseline: bool = False  # True for ``baseline.<name>``


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * /
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Neg:
    operand: "Expr"


Expr = Union[Num, MetricRef, BinOp, Neg]


def _metrics_in(node: Expr) -> list[MetricRef]:
    if isinstance(node, MetricRef):
        return [node]
    if isinstance(node, BinOp):
        return _metrics_in(node.left) + _metrics_in(node.right)
    if isinstance(node, Neg):
        return _metrics_in(node.operand)
    return []


def _eval(node: Expr, lookup: Callable[[MetricRef], float]) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, MetricRef):
        return lookup(node)
    if isinstance(node, Neg):
        return -_eval(node.operand, lookup)
    left, right = _eval(node.left, lookup), _eval(node.right, lookup)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if right == 0:
        raise ZeroDivisionError
    return left / right


# ---------------------------------------------------------------- rules and specs


@dataclass(frozen=True)
class Rule:
    text: str  # the rule as written (stripped)
    left: Expr
    op: str
    right: Expr
    index: int = 1  # 1-based position in the file's ``rules``
    optional: bool = False

    @property
    def metrics(self) -> tuple[str, ...]:
        """Candidate-side metric names, in order of appearance."""
        refs = _metrics_in(self.left) + _metrics_in(self.right)
        return tuple(dict.fromkeys(r.name for r in refs if not r.baseline))

    @property
    def baseline_metrics(self) -> tuple[str, ...]:
        refs = _metrics_in(self.left) + _metrics_in(self.right)
        return tuple(dict.fromkeys(r.name for r in refs if r.baseline))

    @property
    def relative(self) -> bool:
        return bool(self.baseline_metrics)


@dataclass(frozen=True)
class GateSpec:
    rules: tuple[Rule, ...]
    significance: Optional[float] = None  # relative rules fail only when p < significance
    source: str = DEFAULT_GATE_SOURCE  # file path or "default"
    description: str = ""


# ---------------------------------------------------------------- tokenizer + parser

_TOKEN_RE = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<cmp><=|>=|==|!=|<|>)"
    r"|(?P<op>[-+*/().])"
    r")"
)
_CMP_OPS = ("<=", ">=", "<", ">", "==", "!=")
_NEGATED = {"<=": ">", ">=": "<", "<": ">=", ">": "<=", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class _Tok:
    kind: str  # num | name | cmp | op | end
    text: str
    col: int  # 1-based column in the stripped rule


class _RuleSyntaxError(Exception):
    def __init__(self, message: str, col: Optional[int]):
        super().__init__(message)
        self.message, self.col = message, col  # col None: the message already says where


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            hint = ""
            if text.startswith(("=>", "=<"), pos):
                hint = f" (write '{text[pos + 1]}=')"
            elif text[pos] in "≤≥≠":
                hint = f" (write '{ {'≤': '<=', '≥': '>=', '≠': '!='}[text[pos]] }')"
            elif text[pos] == "=":
                hint = " (write '==' to test equality, or '<=' / '>=')"
            raise _RuleSyntaxError(f"unexpected character {text[pos]!r}{hint}", pos + 1)
        kind = m.lastgroup or "op"
        start = m.start(kind)
        toks.append(_Tok(kind, m.group(kind), start + 1))
        pos = m.end()
    toks.append(_Tok("end", "", len(text) + 1))
    return toks


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _describe(self, tok: _Tok) -> str:
        return "the end of the rule" if tok.kind == "end" else repr(tok.text)

    def expect_operand(self) -> _RuleSyntaxError:
        found = "" if self.tok.kind == "end" else f", found {self._describe(self.tok)}"
        return _RuleSyntaxError(f"expected a number or metric name{found}", self.tok.col)

    def rule(self) -> tuple[Expr, str, Expr]:
        left = self.expr()
        if self.tok.kind != "cmp":
            if self.tok.kind == "end":
                raise _RuleSyntaxError("expected a comparison (<=, >=, <, >, ==, !=)", self.tok.col)
            raise _RuleSyntaxError(f"expected an operator or a comparison, found {self._describe(self.tok)}",
                                   self.tok.col)
        op = self.tok.text
        self.i += 1
        right = self.expr()
        if self.tok.kind == "cmp":
            raise _RuleSyntaxError(f"only one comparison per rule, found a second {self.tok.text!r}",
                                   self.tok.col)
        if self.tok.kind != "end":
            raise _RuleSyntaxError(f"expected an operator or the end of the rule, found "
                                   f"{self._describe(self.tok)}", self.tok.col)
        return left, op, right

    def expr(self) -> Expr:
        node = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.tok.text
            self.i += 1
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.tok.text
            self.i += 1
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.tok.kind == "op" and self.tok.text in "+-":
            op = self.tok.text
            self.i += 1
            operand = self.unary()
            return Neg(operand) if op == "-" else operand
        return self.atom()

    def atom(self) -> Expr:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return Num(float(tok.text))
        if tok.kind == "name":
            self.i += 1
            if tok.text == "baseline":
                if not (self.tok.kind == "op" and self.tok.text == "."):
                    raise _RuleSyntaxError("expected '.' and a metric name after 'baseline' "
                                           "(write baseline.<metric>)", self.tok.col)
                self.i += 1
                if self.tok.kind != "name":
                    raise _RuleSyntaxError("expected a metric name after 'baseline.'", self.tok.col)
                name_tok = self.tok
                self.i += 1
                return self._metric(name_tok, baseline=True)
            if self.tok.kind == "op" and self.tok.text == ".":
                raise _RuleSyntaxError(f"unexpected '.' after {tok.text!r} (only baseline.<metric> "
                                       f"has a dot)", self.tok.col)
            return self._metric(tok, baseline=False)
        if tok.kind == "op" and tok.text == "(":
            self.i += 1
            node = self.expr()
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                found = "" if self.tok.kind == "end" else f", found {self._describe(self.tok)}"
                raise _RuleSyntaxError(f"expected ')' to close the '(' at column {tok.col}{found}", self.tok.col)
            self.i += 1
            return node
        raise self.expect_operand()

    @staticmethod
    def _metric(tok: _Tok, baseline: bool) -> MetricRef:
        if tok.text not in METRICS:
            raise _RuleSyntaxError(f"unknown metric '{tok.text}' at column {tok.col}."
                                   f"{did_you_mean(tok.text, METRICS)} Known metrics are listed in "
                                   f"docs/metrics.md", None)
        return MetricRef(tok.text, baseline)


def _where(source: str, line: Optional[int]) -> str:
    return f"{source}:{line}" if line else source


def parse_rule(text: str, *, index: int = 1, optional: bool = False, source: str = "gate",
               line: Optional[int] = None) -> Rule:
    """Parse one rule. GateError names the file, rule number, the rule and the column."""
    if not isinstance(text, str):
        raise GateError(f"{_where(source, line)}: rule {index} must be a string like \"verbatim_rate <= 0.05\", "
                        f"got {type(text).__name__}")
    stripped = text.strip()
    where = f"{_where(source, line)}: rule {index} \"{stripped}\""
    if not stripped:
        raise GateError(f"{where}: empty rule; write a comparison such as \"verbatim_rate <= 0.05\"")
    try:
        left, op, right = _Parser(stripped).rule()
    except _RuleSyntaxError as e:
        if e.col is None:
            raise GateError(f"{where}: {e.message}") from None
        raise GateError(f"{where}: {e.message} at column {e.col}") from None
    rule = Rule(text=stripped, left=left, op=op, right=right, index=index, optional=optional)
    if not rule.metrics:
        raise GateError(f"{where}: names no candidate metric; a rule compares a metric of each candidate, "
                        f"e.g. \"rougeL >= baseline.rougeL - 0.01\"")
    return rule


def _line_of(raw: str, needle: str) -> Optional[int]:
    """1-based line of the first occurrence of ``needle`` in the TOML text (best effort)."""
    if not needle:
        return None
    pos = raw.find(needle)
    return raw.count("\n", 0, pos) + 1 if pos >= 0 else None


def parse_gate(raw: str, source: str = "gate.toml") -> GateSpec:
    """Parse the text of a gate file (TOML)."""
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            msg = msg[:m.start()].strip() + f" (column {m.group(2)})"
            raise GateError(f"{source}:{m.group(1)}: not valid TOML: {msg}") from None
        if "(at end of document)" in msg:
            last = raw.rstrip("\n").count("\n") + 1
            msg = msg.replace("(at end of document)", "(at the end of the file)").strip()
            raise GateError(f"{source}:{last}: not valid TOML: {msg}") from None
        raise GateError(f"{source}: not valid TOML: {msg}") from None
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
        rules.append(parse_rule(item, index=i, optional=optional, source=source, line=line))
    return GateSpec(rules=tuple(rules), significance=significance, source=source, description=description)


def load_gate(path: Union[str, Path]) -> GateSpec:
    """Read and check a gate file; every problem is a one-line GateError."""
    path = Path(path)
    if not path.is_file():
        raise GateError(f"{path}: no such gate file; see docs/gate.md for the format, or leave --gate out "
                        f"to use the default gate")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GateError(f"{path}: cannot read the gate file ({e})") from None
    return parse_gate(raw, source=str(path))


def default_gate() -> GateSpec:
    """The gate shipped in evalkit/gates/default.toml (used when no --gate is given)."""
    raw = resources.files("evalkit").joinpath("gates/default.toml").read_text(encoding="utf-8")
    spec = parse_gate(raw, source="evalkit/gates/default.toml")
    return dataclasses.replace(spec, source=DEFAULT_GATE_SOURCE)


# ---------------------------------------------------------------- evaluation


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.4g}"


def _show(node: Expr) -> str:
    """Source-like text of an expression (for messages), with only the parentheses it needs."""
    if isinstance(node, Num):
        return _fmt(node.value)
    if isinstance(node, MetricRef):
        return f"baseline.{node.name}" if node.baseline else node.name
    if isinstance(node, Neg):
        inner = _show(node.operand)
        return f"-({inner})" if isinstance(node.operand, BinOp) else f"-{inner}"
    left, right = _show(node.left), _show(node.right)
    if isinstance(node.left, BinOp) and node.left.op in "+-" and node.op in "*/":
        left = f"({left})"
    if isinstance(node.right, BinOp) and (node.right.op in "+-" and node.op != "+" or node.op == "/"):
        right = f"({right})"
    return f"{left} {node.op} {right}"


def _holds(left: float, op: str, right: float) -> bool:
    close = math.isclose(left, right, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    return {
        "<=": left < right or close,
        ">=": left > right or close,
        "<": left < right and not close,
        ">": left > right and not close,
        "==": close,
        "!=": not close,
    }[op]


def _value(summary: Mapping[str, float], name: str) -> Optional[float]:
    v = summary.get(name)
    if v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class _Missing(Exception):
    def __init__(self, ref: MetricRef, target: str):
        self.ref, self.target = ref, target


def _judge(rule: Rule, spec: GateSpec, name: str, run: RunRecord, baseline_name: str, baseline: RunRecord,
           deltas: Mapping[tuple[str, str], Delta]) -> RuleResult:
    def lookup(ref: MetricRef) -> float:
        tgt_name, tgt = (baseline_name, baseline) if ref.baseline else (name, run)
        v = _value(tgt.summary, ref.name)
        if v is None:
            raise _Missing(ref, tgt_name)
        return v

    # value = the side holding candidate metrics; threshold = the other side
    swap = not _metrics_in_candidate(rule.left) and _metrics_in_candidate(rule.right)
    val_node, thr_node = (rule.right, rule.left) if swap else (rule.left, rule.right)
    try:
        left, right = _eval(rule.left, lookup), _eval(rule.right, lookup)
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
    holds = _holds(left, rule.op, right)
    op = rule.op if holds else _NEGATED[rule.op]
    if swap:  # show "<value side> op <threshold side>"
        op = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}.get(op, op)
    thr_text = _show(thr_node)
    thr_show = _fmt(threshold) if isinstance(thr_node, Num) else f"{_fmt(threshold)} ({thr_text})"
    val_text = _show(val_node)
    text = f"{val_text} = {_fmt(value)} {op} {thr_show} for '{name}'"
    passed = holds
    if not holds and rule.relative and spec.significance is not None:
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
        return True, f", but the change is not significant (p = {_fmt(min(ps.values()))} >= {_fmt(alpha)})"
    note = f" (significant: p = {_fmt(min(significant))} < {_fmt(alpha)})" if significant else ""
    if untested:
        note += f" (no paired test for {', '.join(untested)}: judged on the point estimate)"
    return False, note


def _metrics_in_candidate(node: Expr) -> bool:
    return any(not r.baseline for r in _metrics_in(node))


def _check_comparison(comparison: Comparison) -> None:
    missing = [t for t in comparison.targets if t not in comparison.runs]
    if comparison.baseline not in comparison.targets:
        raise RecordError(f"comparison: baseline '{comparison.baseline}' is not one of its targets "
                          f"{list(comparison.targets)}; re-create it with `evalkit compare`")
    if missing:
        raise RecordError(f"comparison: target '{missing[0]}' has no run record; re-create it with `evalkit compare`")


def evaluate_gate(spec: GateSpec, comparison_or_runs: Union[Comparison, Sequence[RunRecord]]) -> GateResult:
    """One RuleResult per rule x candidate (every target but the baseline), in rule order.

    Given a list of RunRecords instead of a Comparison, compares them first (first = baseline).
    """
    comparison = comparison_or_runs
    if not isinstance(comparison, Comparison):
        from .comparison import compare_runs  # lazy: reading a gate file needs no numpy/scipy

        comparison = compare_runs(list(comparison_or_runs))
    _check_comparison(comparison)
    baseline = comparison.runs[comparison.baseline]
    deltas = {(d.candidate, d.metric): d for d in comparison.deltas}
    results = []
    for rule in spec.rules:
        for name in comparison.targets:
            if name == comparison.baseline:
                continue
            results.append(_judge(rule, spec, name, comparison.runs[name], comparison.baseline, baseline, deltas))
    return GateResult(passed=all(r.passed for r in results), rules=tuple(results), source=spec.source)
