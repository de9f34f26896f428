"""`evalkit compare A B [C ...] --out DIR`: paired comparison, HTML report and CI gate.

A is the baseline; every other target is a candidate. A target is an adapter folder, `base`,
or a folder holding results.json from `evalkit eval` / `score` (reused, nothing recomputed).
Model targets share ONE base-model load and the evaluation cache.

Writes DIR/comparison.json, DIR/report.html, DIR/summary.md and DIR/junit.xml.
Exit codes: 0 every gate rule passes, 1 a rule failed, 2 bad input or usage.

Examples:
  evalkit compare reports/demo/cautious reports/demo/seedlike --out reports/demo/compare
  evalkit compare base runs/qv runs/qkvo runs/all7 --gate gate.toml --out reports/ladder
  evalkit compare base runs/qv --lm-eval-tasks default --out reports/retention   # did the adapter break the model?
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._compare import run_compare
from ._options import add_model_options


def register(sub):
    p = sub.add_parser("compare", help="compare adapters with paired statistics; HTML report; CI gate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="+", help="baseline first, then candidates")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--gate", type=Path, metavar="FILE", help="gate rules (TOML); default: evalkit's default gate")
    p.add_argument("--no-gate", action="store_true", help="do not evaluate any gate (exit 0 unless bad input)")
    add_model_options(p)
    p.set_defaults(func=run_compare)  # commands/_compare.py: shared with `evalkit sweep`
    return p
