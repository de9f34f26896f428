"""Re-judge a stored comparison.json against a gate file -- no model, no GPU, seconds.

  evalkit gate reports/run1/comparison.json                       # the default gate
  evalkit gate comparison.json --gate ci/gate.toml --junit junit.xml --summary summary.md
  evalkit gate comparison.json --threshold verbatim_rate_overfit=0.1   # re-derive verdicts and gate limits

The gate's rules are checked for every candidate (every target except the baseline, the first
one) using the summaries and paired deltas stored in the comparison. A gate file is TOML:

  significance = 0.05
  rules = ["verbatim_rate <= 0.02", "rougeL >= baseline.rougeL - 0.01",
           { rule = "mia_auc <= 0.75", optional = true }]

See docs/gate.md for the rule grammar and the default gate (evalkit/gates/default.toml).

Exit codes:
  0  every rule passed for every candidate
  1  at least one rule failed (the table says which)
  2  bad input: unreadable / newer-schema comparison.json, malformed gate file, unknown metric
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..gate import default_gate, evaluate_gate, load_gate
from ..outputs import check_out_file, write_file
from ..records import GateResult, load_comparison
from ._options import add_threshold_options, rejudged

__all__ = ["register", "run", "format_table"]


def register(sub):
    p = sub.add_parser(
        "gate",
        help="re-judge a stored comparison.json against a gate file (exit 0 pass, 1 fail, 2 bad input)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("comparison", metavar="COMPARISON.json", type=Path,
                   help="a comparison.json written by `evalkit compare`")
    p.add_argument("--gate", metavar="FILE", type=Path, default=None,
                   help="gate file (TOML); default: evalkit's built-in gate (evalkit/gates/default.toml)")
    p.add_argument("--junit", metavar="PATH", type=Path, default=None,
                   help="also write the result as JUnit XML (one testcase per rule and candidate)")
    p.add_argument("--summary", metavar="PATH", type=Path, default=None,
                   help="also write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    add_threshold_options(p, rejudge=True)
    p.set_defaults(func=run)
    return p


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(result: GateResult) -> str:
    """Plain-text table: status, candidate, rule, message; then the overall line."""
    rows = []
    for r in result.rules:
        status = "FAIL" if not r.passed else ("SKIP" if r.message.startswith("skipped:") else "pass")
        rows.append((status, _cut(r.candidate, 24), _cut(r.rule, 44), " ".join(r.message.split())))
    w_cand = max([len("candidate")] + [len(r[1]) for r in rows])
    w_rule = max([len("rule")] + [len(r[2]) for r in rows])
    lines = [f"{'':4}  {'candidate':<{w_cand}}  {'rule':<{w_rule}}  detail"]
    lines += [f"{s:4}  {c:<{w_cand}}  {ru:<{w_rule}}  {m}" for s, c, ru, m in rows]
    n_fail = sum(1 for r in result.rules if not r.passed)
    verdict = "PASSED" if result.passed else f"FAILED ({n_fail} of {len(result.rules)} checks failed)"
    lines.append(f"gate {result.source or 'default'}: {verdict}")
    return "\n".join(lines)


def run(args) -> int:
    comparison = load_comparison(args.comparison)  # RecordError (exit 2) when unreadable or newer
    comparison, th = rejudged(args, comparison)  # other thresholds / rules: verdicts re-derived, gate limits too
    spec = load_gate(args.gate, th) if args.gate is not None else default_gate(th)  # GateError (exit 2)
    for path, option in ((args.junit, "--junit"), (args.summary, "--summary")):
        if path is not None:
            check_out_file(path, option)
    result = evaluate_gate(spec, comparison)
    judged = dataclasses.replace(comparison, gate=result)
    if args.junit is not None:
        from ..junit import to_junit_xml

        write_file(args.junit, to_junit_xml(judged), "--junit")
    if args.summary is not None:
        from ..summary_md import to_summary_md

        write_file(args.summary, to_summary_md(judged), "--summary")
    print(format_table(result), file=sys.stdout)
    return 0 if result.passed else 1
