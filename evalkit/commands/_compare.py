"""The body of `evalkit compare`, shared with `evalkit sweep` (which ends with the compare of its variants)."""

from __future__ import annotations

from ._options import engine_kwargs_from, lm_eval_from, report_comparison, settings_from, thresholds_from

__all__ = ["run_compare"]


def run_compare(args) -> int:
    """Preflight, evaluate every target, write the comparison files, print it; the gate's exit code."""
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
