"""Turn a run's summary, intervals and n into ok / warn / overfit, every reason spelled out.

The rules live in evalkit/policies/verdict.toml (rule, level, message), in the language of evalkit/policy.py;
thresholds in its ``[thresholds]`` table (evalkit/thresholds.py). Reads only record fields, so `evalkit gate`
and `evalkit report` re-derive verdicts from stored records with other thresholds or rules. docs/verdict.md.

Judging one rule on its metric m (value v, 95% interval [lo, hi], n):

* m absent or non-finite: a key metric (registry) of a record that can have it is listed ``not_measured``
  (warn); any other metric's rules are skipped.
* n known and below m's minimum (registry ``min_n``): ``not_enough_data`` (warn), the value is not judged.
* an ``overfit`` rule: holds at lo, v and hi (the interval clears the threshold) -> overfit, ``crossed``;
  holds at some of them (the interval straddles it) -> warn, ``inconclusive``.
* a ``warn`` rule: holds at v -> warn, ``crossed`` when it holds at lo and hi too, else ``inconclusive``.
* without an interval, v alone decides (``crossed``).

Per-suite variants ``m@suite`` are judged like m; each ``code`` (default: the rule's metric) keeps the first
rule, in file order, that gives a reason, on its worst variant.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .errors import ConfigError, did_you_mean
from .io import parse_toml
from .metrics.registry import METRICS, key_metrics
from .numbers import finite_or_none
from .numbers import fmt_sig as fmt
from .policy import (NEGATED, BinOp, Expr, MetricRef, Num, RuleSyntaxError, evaluate, metrics_in, parse_expr,
                     unknown_name)
from .records import Comparison, Reason, RunRecord, Verdict
from .thresholds import POLICY_FILE, Thresholds

__all__ = ["VerdictRule", "judge", "rejudge", "rejudge_record", "load_rules", "default_rules", "required_metrics"]

_RULE_KEYS = ("rule", "level", "message", "code", "optional")
_ORDER = {"overfit": 0, "warn": 1}


@dataclass(frozen=True)
class VerdictRule:
    text: str
    expr: Expr
    metric: str  # the metric judged with its interval and n
    level: str  # warn | overfit
    message: str
    code: str
    optional: bool = True  # absent metric: skipped (key metrics are required whatever this says)


def _rules_from(data: Mapping[str, Any], source: str, th: Mapping[str, float]) -> tuple[VerdictRule, ...]:
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        raise ConfigError(f"{source}: needs [[rules]] tables with rule, level and message (see docs/verdict.md)")
    out = []
    for i, item in enumerate(rules, start=1):
        where = f"{source}: rule {i}"
        bad = [k for k in (item if isinstance(item, dict) else {}) if k not in _RULE_KEYS]
        if not isinstance(item, dict) or bad or not isinstance(item.get("rule"), str) \
                or item.get("level") not in _ORDER or not isinstance(item.get("message"), str):
            hint = f" unknown key '{bad[0]}'.{did_you_mean(bad[0], _RULE_KEYS)}" if bad else ""
            raise ConfigError(f"{where}: needs rule = \"...\", level = \"warn\" | \"overfit\" and message = "
                              f"\"...\".{hint}")
        expr = parse_verdict_rule(item["rule"], th, where)
        metric = next(r.name for r in metrics_in(expr))
        out.append(VerdictRule(item["rule"].strip(), expr, metric, item["level"], item["message"],
                               str(item.get("code", metric)), bool(item.get("optional", True))))
    return tuple(out)


def parse_verdict_rule(text: str, th: Mapping[str, float], where: str = "verdict rule") -> Expr:
    def resolve(name: str, baseline: bool, col: int) -> Expr:
        if baseline:
            raise RuleSyntaxError(f"baseline.{name} at column {col}: a verdict judges one run (no baseline)", None)
        if name in th:
            return Num(th[name])
        if name in METRICS or name.startswith("lm_eval."):
            return MetricRef(name)
        raise unknown_name(name, col, {**METRICS, **th})

    try:
        expr = parse_expr(text.strip(), resolve, boolean=True)
    except RuleSyntaxError as e:
        message, col = e.args
        raise ConfigError(f"{where} \"{text.strip()}\": {message}" + (f" at column {col}" if col else "")) from None
    if not metrics_in(expr):
        raise ConfigError(f"{where} \"{text.strip()}\": names no metric")
    return expr


@functools.lru_cache(maxsize=8)
def _cached_default(th_items: tuple) -> tuple[VerdictRule, ...]:
    raw = resources.files("evalkit").joinpath(POLICY_FILE).read_text(encoding="utf-8")
    return _rules_from(parse_toml(raw, f"evalkit/{POLICY_FILE}", ConfigError), f"evalkit/{POLICY_FILE}",
                       dict(th_items))


def default_rules(th: Optional[Mapping[str, float]] = None) -> tuple[VerdictRule, ...]:
    return _cached_default(tuple(sorted((th or Thresholds()).items())))


def load_rules(path: Path, th: Optional[Mapping[str, float]] = None) -> tuple[VerdictRule, ...]:
    """A verdict rules file (``[[rules]]`` tables, optional ``[thresholds]`` defaults under ``th``)."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{path}: no such verdict rules file (or not readable UTF-8 text)") from None
    data = parse_toml(raw, str(path), ConfigError)
    merged = {**dict(data.get("thresholds", {})), **dict(th or Thresholds())}
    return _rules_from(data, str(path), merged)


def required_metrics(kind: str) -> tuple[str, ...]:
    """Key metrics a record of this kind must hold: an `evalkit score` run has no model (no loss, no MIA)."""
    return tuple(m for m in key_metrics() if kind == "eval" or not METRICS[m].needs_model)


_finite = finite_or_none


def _comparisons(node: Expr) -> list[BinOp]:
    if isinstance(node, BinOp) and node.op in NEGATED:
        return [node]
    return [c for child in getattr(node, "values", ()) for c in _comparisons(child)]


def _threshold(expr: Expr, metric: str) -> tuple[Optional[str], Optional[float]]:
    """(operator as seen from the metric, value of the other side) of the first comparison naming ``metric``."""
    for cmp in _comparisons(expr):
        sides = [any(r.name == metric for r in metrics_in(s)) for s in (cmp.left, cmp.right)]
        if any(sides):
            op = cmp.op if sides[0] else {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(cmp.op, cmp.op)
            try:
                return op, float(evaluate(cmp.right if sides[0] else cmp.left, lambda ref: math.nan))
            except ZeroDivisionError:
                return op, None
    return None, None


def _figure(name: str, summary: Mapping[str, float], intervals: Mapping[str, Sequence[float]]) -> str:
    """"name = v [lo, hi]" (the interval when recorded), or "name not measured"."""
    v, ci = _finite(summary.get(name)), intervals.get(name)
    if v is None:
        return f"{name} not measured"
    return f"{name} = {fmt(v)}" + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci and len(ci) == 2 else "")


def _fill(message: str, summary: Mapping[str, float], intervals: Mapping[str, Sequence[float]]) -> str:
    """A rule's message with each ``{metric}`` replaced by that metric's figure (evidence named in the message)."""
    return re.sub(r"\{(\w+)\}", lambda m: _figure(m.group(1), summary, intervals), message)


def _judge_one(rule: VerdictRule, name: str, summary: Mapping[str, float],
               intervals: Mapping[str, Sequence[float]], n: Mapping[str, int]) -> Optional[Reason]:
    value, base = _finite(summary.get(name)), rule.metric
    lo_hi = intervals.get(name)
    lo, hi = (_finite(lo_hi[0]), _finite(lo_hi[1])) if lo_hi and len(lo_hi) == 2 else (None, None)
    count = n.get(name)
    fields = dict(metric=name, value=value, ci_low=lo, ci_high=hi, n=count)
    need = METRICS[base].min_n if base in METRICS else 0
    if count is not None and count < need:
        if name != base:  # a per-suite variant too small to judge: the pooled figure speaks for it
            return None
        return Reason(rule.code, "warn", f"{name}: n = {count} is below the {need} it needs to be judged "
                                         f"(docs/verdict.md); not enough data", **fields, status="not_enough_data")

    def at(x: float) -> bool:
        def lookup(ref: MetricRef) -> float:
            v = x if ref.name == base else _finite(summary.get(ref.name))
            if v is None:
                raise KeyError(ref.name)
            return v
        try:
            return bool(evaluate(rule.expr, lookup))
        except (KeyError, ZeroDivisionError):
            return False

    point = at(value)
    both = lo is not None and hi is not None
    bounds = [at(lo), at(hi)] if both else [point, point]
    if rule.level == "overfit":
        level, status = ("overfit", "crossed") if point and all(bounds) else ("warn", "inconclusive")
        if not (point or any(bounds)):
            return None
    elif not point:
        return None
    else:
        level, status = "warn", "crossed" if all(bounds) else "inconclusive"
    op, threshold = _threshold(rule.expr, base)
    shown = f"{_fill(rule.message, summary, intervals)}: {_figure(name, summary, intervals)}"
    shown += f" (n={count})" if count is not None else ""
    shown += f" ({rule.level} when {op} {fmt(threshold)})" if op and math.isfinite(threshold or math.nan) \
        else f" ({rule.level} when {rule.text})"
    shown += "; the interval straddles the threshold: inconclusive" if status == "inconclusive" else ""
    return Reason(rule.code, level, shown, threshold=threshold, **fields, status=status)


def judge(summary: Mapping[str, float], th: Optional[Mapping[str, float]] = None,
          intervals: Optional[Mapping[str, Sequence[float]]] = None, n: Optional[Mapping[str, int]] = None, *,
          kind: str = "eval", rules: Optional[Sequence[VerdictRule]] = None) -> Verdict:
    """The verdict of one run (``kind`` "eval" or "score" decides which key metrics must be present)."""
    rules = default_rules(th) if rules is None else rules
    intervals, n = intervals or {}, n or {}
    reasons: dict[str, Reason] = {}
    for m in required_metrics(kind):
        if _finite(summary.get(m)) is None:
            reasons[m] = Reason(m, "warn", f"{m} was not measured (absent or not a finite number); the verdict "
                                           f"cannot rule out what it measures", metric=m, status="not_measured")
    for rule in rules:
        if rule.code in reasons:
            continue
        variants = [k for k in summary if k == rule.metric or k.startswith(rule.metric + "@")]
        found = [r for r in (_judge_one(rule, k, summary, intervals, n) for k in variants) if r is not None]
        if found:  # the worst variant: overfit before warn, crossed before inconclusive
            reasons[rule.code] = min(found, key=lambda r: (_ORDER[r.level], r.status != "crossed"))
    ordered = sorted(reasons.values(), key=lambda r: _ORDER[r.level])
    level = "overfit" if any(r.level == "overfit" for r in ordered) else "warn" if ordered else "ok"
    return Verdict(level, tuple(ordered))


def rejudge_record(record: Union[RunRecord, Comparison], th: Optional[Mapping[str, float]] = None,
                   rules: Optional[Sequence[VerdictRule]] = None) -> Union[RunRecord, Comparison]:
    """A run, or every run of a comparison, with verdicts re-derived (`evalkit gate` / `evalkit report`)."""
    if isinstance(record, RunRecord):
        return rejudge(record, th, rules)
    from .retention import with_retention_verdict  # lm-eval losses are judged from the comparison's deltas

    return replace(record, runs={name: with_retention_verdict(rejudge(run, th, rules), record.deltas, name)
                                 for name, run in record.runs.items()})


def rejudge(run: RunRecord, th: Optional[Mapping[str, float]] = None,
            rules: Optional[Sequence[VerdictRule]] = None) -> RunRecord:
    """The record with its verdict re-derived from its own summary, intervals and n."""
    verdict = judge(run.summary, th, run.intervals, run.n, kind=run.kind, rules=rules)
    settings = {**run.settings, "thresholds": dict(th)} if th is not None else run.settings
    return replace(run, verdict=verdict, settings=settings)
