"""eval_full_bf16_vs_lm_eval: eval_full_vs_lm_eval with `--score-dtype bfloat16` (see bench_eval_bf16_vs_lm_eval)."""

from __future__ import annotations

from evalkit.runtime.models import cpu_bf16_flags

from . import bench_eval_full_vs_lm_eval as full
from .bench_eval_bf16_vs_lm_eval import BF16, note
from .runner import Context

NAME = "eval_full_bf16_vs_lm_eval"
TARGET = full.TARGET


def run(ctx: Context) -> dict:
    out = full.run_full(ctx, NAME, extra=BF16, note=note())
    out.setdefault("detail", {})["cpu_bf16"] = cpu_bf16_flags()
    return out
