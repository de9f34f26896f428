"""The one rule language of the verdict (evalkit/policies/verdict.toml) and the CI gate (evalkit/gates/*.toml).

A rule is Python arithmetic, read with :mod:`ast` and a whitelist (nothing is ever ``eval``-ed)::

    rule  := expr CMP expr  |  rule "and" rule  |  rule "or" rule  |  "not" rule  |  "(" rule ")"
    CMP   := "<=" | ">=" | "<" | ">" | "==" | "!="     (one per comparison; no chains)
    expr  := numbers, names, + - * /, unary -, parentheses (Python precedence)
    name  := a summary metric (evalkit/metrics/registry.py)  |  a threshold (verdict.toml [thresholds])
           |  baseline.<metric> (gate only)  |  lm_eval.<task>.<metric>

A threshold name becomes its value when the rule is read (``--threshold`` moves verdict and gate alike). A token
check before :func:`ast.parse` gives each syntax error its column and a hint (pinned by tests/test_gate.py).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from .errors import did_you_mean

__all__ = ["Num", "MetricRef", "BinOp", "Neg", "BoolOp", "Expr", "RuleSyntaxError", "parse_expr", "evaluate",
           "sides", "metrics_in", "holds", "NEGATED"]


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class MetricRef:
    name: str  # a summary metric, or "lm_eval.<task>.<metric>"
    baseline: bool = False  # True for ``baseline.<name>``


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * /, or a comparison <= >= < > == !=
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Neg:
    operand: "Expr"


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or | not (one value)
    values: tuple["Expr", ...]


Expr = Union[Num, MetricRef, BinOp, Neg, BoolOp]
NEGATED = {"<=": ">", ">=": "<", "<": ">=", ">": "<=", "==": "!=", "!=": "=="}


class RuleSyntaxError(Exception):
    """args: (message, column); column None when the message already says where."""


# ---------------------------------------------------------------- token check (messages with columns)

_TOKEN_RE = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                       r"|(?P<cmp><=|>=|==|!=|<|>)|(?P<op>[-+*/().]))")
_HINTS = {"=>": " (write '>=')", "=<": " (write '<=')", "≤": " (write '<=')", "≥": " (write '>=')",
          "≠": " (write '!=')", "=": " (write '==' to test equality, or '<=' / '>=')"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    toks, pos = [], len(text) - len(text.lstrip())
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            hint = next((h for k, h in _HINTS.items() if text.startswith(k, pos)), "")
            raise RuleSyntaxError(f"unexpected character {text[pos]!r}{hint}", pos + 1)
        toks.append((m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup) + 1))
        pos = m.end()
    return toks + [("end", "", len(text) + 1)]


def _check_tokens(text: str, boolean: bool) -> None:
    """Walk the tokens expecting operand / operator in turn; raise at the first one out of place."""
    toks, i, operand, parens, compared = _tokens(text), 0, True, [], False
    while True:
        kind, tok, col = toks[i]
        found = "" if kind == "end" else f", found {tok!r}"
        if operand:
            if kind == "num":
                operand = False
            elif kind == "name" and not (boolean and tok in ("and", "or")):
                if not (boolean and tok == "not"):
                    while toks[i + 1][1] == ".":
                        if toks[i + 2][0] != "name":
                            raise RuleSyntaxError(f"expected a metric name after '{tok}.'", toks[i + 2][2])
                        tok, i = f"{tok}.{toks[i + 2][1]}", i + 2
                    operand = False
            elif tok == "(":
                parens.append(col)
            elif tok not in ("+", "-"):
                raise RuleSyntaxError(f"expected a number or metric name{found}", col)
        elif kind == "end":
            if parens:
                raise RuleSyntaxError(f"expected ')' to close the '(' at column {parens[-1]}", col)
            if not compared:
                raise RuleSyntaxError("expected a comparison (<=, >=, <, >, ==, !=)", col)
            return
        elif kind == "cmp":
            if compared and not boolean:
                raise RuleSyntaxError(f"only one comparison per rule, found a second {tok!r}", col)
            compared, operand = True, True
        elif tok in ("+", "-", "*", "/") or (boolean and tok in ("and", "or")):
            operand = True
        elif tok == ")" and parens:
            parens.pop()
        else:
            end = "the end of the rule" if compared else "a comparison"
            raise RuleSyntaxError(f"expected an operator or {end}{found}", col)
        i += 1


# ---------------------------------------------------------------- ast -> whitelisted tree

_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMP = {ast.LtE: "<=", ast.GtE: ">=", ast.Lt: "<", ast.Gt: ">", ast.Eq: "==", ast.NotEq: "!="}


def parse_expr(text: str, resolve: Callable[[str, bool, int], Expr], *, boolean: bool = False) -> Expr:
    """Parse one rule. ``resolve(name, baseline, column)`` turns a name into a MetricRef or Num (or raises)."""
    _check_tokens(text, boolean)
    tree = ast.parse(text, mode="eval").body

    def conv(node: ast.AST) -> Expr:
        col = getattr(node, "col_offset", 0) + 1
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Num(float(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return BinOp(_BIN[type(node.op)], conv(node.left), conv(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return Neg(conv(node.operand)) if isinstance(node.op, ast.USub) else conv(node.operand)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            return BinOp(_CMP[type(node.ops[0])], conv(node.left), conv(node.comparators[0]))
        if isinstance(node, ast.Compare) and type(node.ops[1]) in _CMP:
            op = _CMP[type(node.ops[1])]
            raise RuleSyntaxError(f"one comparison at a time (write 'a < b and b < c'), found a second {op!r}",
                                  text.index(op, node.comparators[0].end_col_offset) + 1)
        if boolean and isinstance(node, ast.BoolOp):
            return BoolOp("and" if isinstance(node.op, ast.And) else "or", tuple(conv(v) for v in node.values))
        if boolean and isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return BoolOp("not", (conv(node.operand),))
        name = ast.unparse(node) if isinstance(node, (ast.Name, ast.Attribute)) else None  # a.b.c (token-checked)
        if name == "baseline":
            raise RuleSyntaxError("expected '.' and a metric name after 'baseline' (write baseline.<metric>)",
                                  node.end_col_offset + 1)
        if name is not None:
            baseline = name.startswith("baseline.")
            short = name[len("baseline."):] if baseline else name
            return resolve(short, baseline, node.end_col_offset - len(short) + 1)
        raise RuleSyntaxError(f"{ast.get_source_segment(text, node)!r} is not allowed in a rule", col)

    return conv(tree)


def unknown_name(name: str, col: int, known: Mapping[str, Any]) -> RuleSyntaxError:
    return RuleSyntaxError(f"unknown metric '{name}' at column {col}.{did_you_mean(name, known)} Known metrics are "
                           f"listed in docs/metrics.md", None)


def metrics_in(node: Expr) -> list[MetricRef]:
    if isinstance(node, MetricRef):
        return [node]
    children = (node.left, node.right) if isinstance(node, BinOp) else (node.operand,) if isinstance(node, Neg) \
        else getattr(node, "values", ())
    return [r for c in children for r in metrics_in(c)]


def holds(left: float, op: str, right: float) -> bool:
    """A comparison with a 1e-9 relative / 1e-12 absolute tolerance (``x >= y - 0.02`` survives rounding)."""
    close = math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    return {"<=": left < right or close, ">=": left > right or close, "<": left < right and not close,
            ">": left > right and not close, "==": close, "!=": not close}[op]


def evaluate(node: Expr, lookup: Callable[[MetricRef], float]) -> Any:
    """A float for arithmetic, a bool for a comparison; ZeroDivisionError on x / 0; lookup may raise."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, MetricRef):
        return lookup(node)
    if isinstance(node, Neg):
        return -evaluate(node.operand, lookup)
    if isinstance(node, BoolOp):
        values = (evaluate(v, lookup) for v in node.values)
        return not next(values) if node.op == "not" else all(values) if node.op == "and" else any(values)
    left, right = evaluate(node.left, lookup), evaluate(node.right, lookup)
    if node.op in NEGATED:
        return holds(left, node.op, right)
    if node.op == "/":
        if right == 0:
            raise ZeroDivisionError
        return left / right
    return left + right if node.op == "+" else left - right if node.op == "-" else left * right


def sides(text: str) -> tuple[str, str]:
    """The two sides of a (valid) single-comparison rule as written, for messages."""
    node = ast.parse(text, mode="eval").body
    return ast.get_source_segment(text, node.left) or "", ast.get_source_segment(text, node.comparators[0]) or ""
