"""`evalkit demo [--out DIR]`: train two contrasting adapters on the bundled data and compare them.

What `make demo` runs. `cautious` (q,v, r=8) against `seedlike` (all seven modules, r=16, a high
learning rate, six epochs on 24 conversations — built to overfit like the seed's adapter).
Re-running reuses finished adapters and cached evaluations. Ends with reports/demo/compare/report.html.
Exit code 0 when the demo ran (whatever the gate says about the overfitting adapter), 2 on bad input.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub):
    p = sub.add_parser("demo", help="train two adapters on the bundled data and compare them",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("reports/demo"), help="output folder (default: reports/demo)")
    p.add_argument("--base", help="base model (default: the bundled SmolLM2-135M-Instruct)")
    p.add_argument("--fast", action="store_true", help="tiny step counts (for smoke tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--engine", choices=["hf", "vllm"], default="hf",
                   help="engine that evaluates the trained adapters (vllm needs the vLLM extra, docs/engines.md)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import redrawn_bars
    from ..demo import run_demo
    from ._options import report_comparison

    t0 = time.time()
    comparison = run_demo(args.out, base=args.base, fast=args.fast, progress=redrawn_bars(),
                          engine_kwargs={"engine": args.engine})
    compare = args.out / "compare"
    report_comparison(comparison, {n: compare / n for n in ("comparison.json", "report.html", "summary.md",
                                                            "junit.xml")})
    seedlike = comparison.runs.get("seedlike")
    if seedlike is not None:
        print(f"seedlike verdict: {seedlike.verdict.level}; cautious verdict: {comparison.runs['cautious'].verdict.level}")
    print(f"demo finished in {time.time() - t0:.0f} s")
    return 0
