"""`evalkit sweep FILE`: train a grid of LoRA adapters (the seed's plan), resumable, then compare them.

FILE (YAML or TOML) holds `base_config` (TrainConfig settings shared by all variants, see
docs/config.md) or `config` (a train config file), a `grid` of lists whose cartesian product is trained,
and `out`. Grid keys are any config setting, plus `r_alpha` for (r, lora_alpha) pairs:

  base_config: {num_epochs: 1, lora_dropout: 0.05}
  grid:
    target_modules: [[q_proj, v_proj], [q_proj, k_proj, v_proj, o_proj], all7]
    learning_rate: [5e-5, 2e-5, 1e-5]
    r_alpha: [[16, 32], [8, 16]]
  out: reports/sweeps/seed-plan

Each variant trains into OUT/<name> (e.g. OUT/qv_lr5e-05_r16a32); OUT/index.json records every
variant's overrides, folder, status and final losses after each one. Rerunning skips finished
variants, so an interrupted sweep resumes where it stopped.

Then the sweep ends as `evalkit compare base OUT/<variant> ... --out OUT/compare --no-gate` does: one
evaluation per variant (cached, so a rerun reuses them), the sweep view with its recommendation (the
best-quality variant whose verdict is ok, or why none is) in OUT/compare/report.html, and the
recommendation printed. The model, data and evaluation options below are the compare's; --no-compare
only trains.

Examples:
  evalkit sweep configs/sweep_seed_plan.yaml --dry-run
  evalkit sweep configs/sweep_seed_plan.yaml --set max_steps=20 --out reports/sweeps/quick
  evalkit sweep configs/sweep_seed_plan.yaml --limit 16        # a quicker compare: 16 prompts per suite
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_model_options

COMPARE_DIR = "compare"  # OUT/compare: the comparison of base and every variant


def register(sub):
    p = sub.add_parser("sweep", help="train a grid of adapters (module ladder x LR x r/alpha), resumable; compare them",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, metavar="FILE", help="sweep file (YAML or TOML)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: the file's 'out')")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a base setting for every variant, e.g. --set max_steps=20; repeatable")
    p.add_argument("--dry-run", action="store_true", help="list the variants and which are done; train nothing")
    p.add_argument("--overwrite", action="store_true",
                   help="replace variant folders that hold a different adapter (e.g. after editing base_config)")
    p.add_argument("--no-compare", action="store_true",
                   help="only train: do not compare base and the variants at the end")
    add_model_options(p)  # the closing compare's options (its --no-progress also quiets the training bars)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import redrawn_bars
    from ..sweep import INDEX_NAME, load_sweep, run_sweep

    plan = load_sweep(args.file, out=args.out, overrides=args.overrides)
    if not args.dry_run:
        from ..outputs import check_out_dir

        check_out_dir(plan.out, "--out" if args.out is not None else f"{args.file}: out")
        if not args.no_compare:
            from ._preflight import check_limit

            check_limit(args.limit)  # bad compare options fail now, not after hours of training
            check_out_dir(plan.out / COMPARE_DIR)
    result = run_sweep(plan, dry_run=args.dry_run, overwrite=args.overwrite,
                       progress=False if args.no_progress else redrawn_bars())
    if args.dry_run:
        return 0
    print(f"sweep done: {len(result.trained)} trained, {len(result.skipped)} already up to date "
          f"({len(plan.variants)} variants)")
    print(f"  adapters in {result.out}/<variant>; index: {result.out / INDEX_NAME}")
    if args.no_compare:
        return 0
    return _compare(args, [str(v.folder) for v in plan.variants], plan.out / COMPARE_DIR)


def _compare(args, folders: list[str], out: Path) -> int:
    """`evalkit compare base FOLDER ... --out OUT --no-gate` with this command's options (the same code)."""
    from ._compare import run_compare

    print(f"comparing base and the {len(folders)} variants into {out}")
    compare_args = argparse.Namespace(**vars(args))
    compare_args.targets, compare_args.out = ["base", *folders], out
    compare_args.gate, compare_args.no_gate = None, True
    return run_compare(compare_args)
