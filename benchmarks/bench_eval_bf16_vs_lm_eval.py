"""eval_bf16_vs_lm_eval: eval_vs_lm_eval with evalkit's scoring in bfloat16 (`--score-dtype bfloat16`).

The same two commands, alternated, on the same work; evalkit adds ``--score-dtype bfloat16``: the decoder
body of its teacher-forced scoring (losses and membership inference under adapter and base, the half of
its work lm-eval does not do) runs with bf16 matmuls, generation stays float32 (so the answers stay
identical to lm-eval's). It pays only on CPUs with native bf16 dot products (avx512_bf16 or AMX: the
row records which this machine has); elsewhere bf16 matmuls are emulated and slower. Log-prob tolerance:
docs/speed.md. The eval_full twin: bench_eval_full_bf16_vs_lm_eval.
"""

from __future__ import annotations

from evalkit.runtime.models import cpu_bf16_flags

from . import bench_eval_vs_lm_eval as ev
from .runner import Context

NAME = "eval_bf16_vs_lm_eval"
TARGET = ev.TARGET
LIMIT = ev.LIMIT
BF16 = ("--score-dtype", "bfloat16")


def note() -> str:
    """The summary's prefix: the option and whether this CPU runs bf16 natively."""
    return f"--score-dtype bfloat16 (CPU bf16: {', '.join(cpu_bf16_flags()) or 'none, emulated'}); "


def run(ctx: Context) -> dict:
    out = ev.run_against_lm_eval(ctx, NAME, TARGET, LIMIT, extra=BF16, note=note())
    out.setdefault("detail", {})["cpu_bf16"] = cpu_bf16_flags()
    return out
