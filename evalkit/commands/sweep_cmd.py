"""`evalkit sweep FILE`: train a grid of LoRA adapters (the seed's plan), resumable.

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

Examples:
  evalkit sweep configs/sweep_seed_plan.yaml --dry-run
  evalkit sweep configs/sweep_seed_plan.yaml --set max_steps=20 --out reports/sweeps/quick
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub):
    p = sub.add_parser("sweep", help="train a grid of adapters (module ladder x LR x r/alpha), resumable",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, metavar="FILE", help="sweep file (YAML or TOML)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: the file's 'out')")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a base setting for every variant, e.g. --set max_steps=20; repeatable")
    p.add_argument("--dry-run", action="store_true", help="list the variants and which are done; train nothing")
    p.add_argument("--overwrite", action="store_true",
                   help="replace variant folders that hold a different adapter (e.g. after editing base_config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (loss tables are still printed)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import redrawn_bars
    from ..sweep import INDEX_NAME, load_sweep, run_sweep

    plan = load_sweep(args.file, out=args.out, overrides=args.overrides)
    if not args.dry_run:
        from ..outputs import check_out_dir

        check_out_dir(plan.out, "--out" if args.out is not None else f"{args.file}: out")
    result = run_sweep(plan, dry_run=args.dry_run, overwrite=args.overwrite, progress=redrawn_bars())
    if args.dry_run:
        return 0
    print(f"sweep done: {len(result.trained)} trained, {len(result.skipped)} already up to date "
          f"({len(plan.variants)} variants)")
    print(f"  adapters in {result.out}/<variant>; index: {result.out / INDEX_NAME}")
    return 0
