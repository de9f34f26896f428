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

from ._options import (add_model_options, engine_kwargs_from, lm_eval_from, report_comparison, settings_from,
                       thresholds_from)


def register(sub):
    p = sub.add_parser("compare", help="compare adapters with paired statistics; HTML report; CI gate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="+", help="baseline first, then candidates")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--gate", type=Path, metavar="FILE", help="gate rules (TOML); default: evalkit's default gate")
    p.add_argument("--no-gate", action="store_true", help="do not evaluate any gate (exit 0 unless bad input)")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import info
    from ..gate import default_gate, load_gate
    from ..outputs import check_out_dir, write_comparison
    from ..pipeline import compare_targets, engine_for, parse_targets
    from ._preflight import check_limit, fit_to_model, limit_settings, read_inputs, read_stored

    # preflight: every target, record, input file and the output folder, before any model is loaded
    check_limit(args.limit)
    settings, thresholds = limit_settings(settings_from(args), args.limit), thresholds_from(args)
    lm_eval = lm_eval_from(args)
    specs = parse_targets(args.targets, minimum=2)
    stored = read_stored(specs)  # a corrupt or newer results.json fails now, not after the first evaluation
    inputs = read_inputs(specs, args)
    # the gate names verdict thresholds (one limit per metric): --threshold moves both
    gate = None if args.no_gate else (load_gate(args.gate, thresholds) if args.gate else default_gate(thresholds))
    check_out_dir(args.out)
    engine = None
    if inputs:
        engine = engine_for(specs, args.base, **engine_kwargs_from(args))
        settings = fit_to_model(engine, list(inputs.values()), settings,
                                max_new_tokens_given=args.max_new_tokens is not None)

    comparison = compare_targets(args.targets, gate=gate, settings=settings, thresholds=thresholds,
                                 allow_pickle=args.allow_pickle, stored=stored, inputs=inputs, engine=engine,
                                 lm_eval=lm_eval)
    from ..runtime.data_parallel import is_main_process

    if not is_main_process():  # data parallel: this rank computed its shards; rank 0 writes
        return 0
    paths = write_comparison(comparison, args.out)
    if engine is not None and engine.cache is not None:
        info(engine.cache.summary())
    return report_comparison(comparison, paths, as_json=args.json)
