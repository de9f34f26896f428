"""`evalkit eval TARGET --out DIR`: generate on held-out prompts and measure one target.

TARGET is an adapter folder (from `evalkit train` or any peft LoRA) or `base` (no adapter).
Writes DIR/results.json (docs/results.md) and DIR/report.html, and prints a summary.

Examples:
  evalkit eval reports/demo/seedlike --out reports/eval-seedlike
  evalkit eval base --base ~/models/Mistral-7B-Instruct --suite my_prompts.jsonl --out reports/base
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_model_options, engine_kwargs_from, settings_from, thresholds_from, write_run_outputs


def register(sub):
    p = sub.add_parser("eval", help="measure one adapter (or the base) on held-out prompts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="adapter folder or 'base'")
    p.add_argument("--out", type=Path, required=True, help="output folder for results.json and report.html")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import print_run
    from ..evaluate import evaluate_target
    from ..pipeline import engine_for, parse_targets

    settings, thresholds = settings_from(args), thresholds_from(args)
    spec = parse_targets([args.target])[0]
    if spec.kind == "results":
        from ..errors import ConfigError
        raise ConfigError(f"{args.target} already holds results.json; use `evalkit report {args.target}` "
                          "to re-render it, or pass an adapter folder or 'base'")
    engine = engine_for([spec], args.base, **engine_kwargs_from(args))
    record = evaluate_target(engine, "base" if spec.kind == "base" else spec.path, suites=args.suite,
                             train_data=args.train_data, val_data=args.val_data, settings=settings,
                             thresholds=thresholds, allow_pickle=args.allow_pickle, name=spec.name)
    write_run_outputs(record, args.out)
    print_run(record)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report.html'}")
    return 0
