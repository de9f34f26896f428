"""peak_rss_vs_lm_eval: evalkit's peak RSS against lm-eval's on the eval_vs_lm_eval runs (same work).

Taken from the eval_vs_lm_eval runs of the same invocation when there are any (not paid twice);
otherwise eval_vs_lm_eval is run here. Peak RSS: ``ru_maxrss`` of each child process (os.wait4).
"""

from __future__ import annotations

import statistics

from . import bench_eval_vs_lm_eval as ev
from .runner import Context, row

NAME = "peak_rss_vs_lm_eval"
TARGET = "ratio ≤ 1.0"
LIMIT = 1.0


def shared_eval_runs(ctx: Context) -> dict | None:
    """eval_vs_lm_eval's measured runs; runs it when this invocation has none. None when lm-eval is missing."""
    if ev.NAME not in ctx.shared:
        if ev.lm_eval_available():
            return None
        ev.run(ctx)
    return ctx.shared[ev.NAME]


def run(ctx: Context) -> dict:
    runs = shared_eval_runs(ctx)
    if runs is None:
        why = ev.lm_eval_available()
        return row(NAME, target=TARGET, met=None, detail={"skipped": why, "summary": f"skipped: {why}"})
    ek = [m.peak_rss_mb for m in runs["evalkit"]]
    lm = [m.peak_rss_mb for m in runs["lm_eval"]]
    ratio = statistics.median(ek) / statistics.median(lm)
    st = runs["settings"]
    return row(NAME, ratio=ratio, target=TARGET, met=ratio <= LIMIT, detail={
        "summary": (f"peak RSS {statistics.median(ek):.0f} vs {statistics.median(lm):.0f} MB (medians of "
                    f"{len(ek)}; evalkit {min(ek):.0f}–{max(ek):.0f}, lm-eval {min(lm):.0f}–{max(lm):.0f}); the "
                    f"eval_vs_lm_eval runs: {st['prompts']} prompts × {st['max_new_tokens']} new tokens, batch "
                    f"{st['batch_size']}"),
        "evalkit_mb": ek, "lm_eval_mb": lm, "settings": st})
