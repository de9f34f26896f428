"""eval_full_bf16_vs_lm_eval: eval_full_vs_lm_eval with `--score-dtype bfloat16` (bench_eval_bf16_vs_lm_eval)."""

from __future__ import annotations

from . import bench_eval_full_vs_lm_eval as full
from .bench_eval_bf16_vs_lm_eval import run_full as run

NAME = "eval_full_bf16_vs_lm_eval"
TARGET = full.TARGET

__all__ = ["NAME", "TARGET", "run"]
