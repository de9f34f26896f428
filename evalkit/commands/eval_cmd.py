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

from ._options import add_model_options, engine_kwargs_from, lm_eval_from, settings_from, thresholds_from


def register(sub):
    p = sub.add_parser("eval", help="measure one adapter (or the base) on held-out prompts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="adapter folder, 'base', or openai:NAME (a model served at --endpoint)")
    p.add_argument("--out", type=Path, required=True, help="output folder for results.json and report.html")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import info, print_run, print_summary_json, target_label
    from ..errors import ConfigError
    from ..evaluate import evaluate_target
    from ..outputs import check_out_dir, write_run
    from ..pipeline import engine_for, parse_targets
    from ._preflight import check_limit, fit_to_model, limit_settings, read_inputs

    # preflight: everything that can be wrong is found before the model loads
    check_limit(args.limit)
    settings, thresholds = limit_settings(settings_from(args), args.limit), thresholds_from(args)
    lm_eval = lm_eval_from(args)
    spec = parse_targets([args.target])[0]
    if spec.kind == "results":
        raise ConfigError(f"{args.target} already holds results.json; use `evalkit report {args.target}` "
                          "to re-render it, or pass an adapter folder or 'base'")
    inputs = read_inputs([spec], args)[spec.raw]
    check_out_dir(args.out)
    engine = engine_for([spec], args.base, **engine_kwargs_from(args))
    settings = fit_to_model(engine, [inputs], settings, max_new_tokens_given=args.max_new_tokens is not None)
    engine.progress_label = target_label(spec.name, 1, 1)

    target = {"base": "base", "endpoint": spec.raw}.get(spec.kind, spec.path)
    record = evaluate_target(engine, target, settings=settings, thresholds=thresholds,
                             allow_pickle=args.allow_pickle, name=spec.name, inputs=inputs, lm_eval=lm_eval)
    from ..runtime.data_parallel import is_main_process

    if not is_main_process():  # data parallel: this rank computed its shard; rank 0 writes
        return 0
    paths = write_run(record, args.out)
    if engine.cache is not None:
        info(engine.cache.summary())
    if args.json:
        print_run(record, to_stderr=True)
        print_summary_json(record, paths)
    else:
        print_run(record)
        print(f"wrote {paths['results.json']} and {paths['report.html']}")
    return 0
