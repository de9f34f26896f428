"""greedy_identical: share of prompts on which evalkit's greedy answer equals lm-eval's, character for
character (both stripped), on the eval_vs_lm_eval runs (same base, adapter, prompts, template, batch).

Every difference is listed in the row's detail (id, both texts, the length of their common prefix).
"""

from __future__ import annotations

from .bench_peak_rss import shared_eval_runs
from .bench_eval_vs_lm_eval import lm_eval_available
from .runner import Context, row

NAME = "greedy_identical"
TARGET = "≥ 95% of prompts"
LIMIT = 0.95


def run(ctx: Context) -> dict:
    runs = shared_eval_runs(ctx)
    if runs is None:
        why = lm_eval_available()
        return row(NAME, target=TARGET, met=None, detail={"skipped": why, "summary": f"skipped: {why}"})
    same = runs["identical"]
    share = same["share"] or 0.0
    st = runs["settings"]
    return row(NAME, value=share, unit="of prompts", target=TARGET, met=share >= LIMIT, detail={
        "summary": (f"{same['identical']}/{same['compared']} identical ({100 * share:.1f}%); "
                    f"{st['prompts']} prompts × {st['max_new_tokens']} new tokens, batch {st['batch_size']}, greedy, "
                    "fp32"), **same})
