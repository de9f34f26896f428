"""warm_cache: the compare3 `evalkit compare` re-run unchanged (same cache, same output) vs its cold run.

A warm run finds every generation and score in the cache (keyed by base hash, adapter hash, settings
and item) and recomputes only the statistics and the report. When compare3_vs_lm_eval ran in the same
invocation its (cold, warm) pairs are used; otherwise they are measured here. The pairs cannot
alternate (warm needs cold first); each pair is one repeat and the median ratio is reported.
"""

from __future__ import annotations

import statistics

from .bench_compare3_vs_lm_eval import REPEATS, compare_cmd
from .bench_eval_vs_lm_eval import fresh, summarize, workspace
from .runner import Context, measure, row

NAME = "warm_cache"
TARGET = "ratio ≤ 0.05"
LIMIT = 0.05


def run(ctx: Context) -> dict:
    shared = ctx.shared.get("warm_cache")
    if not shared:
        ws = workspace(ctx, 3)
        env = ctx.env()
        runs = ws["dir"] / "warm"
        cold, warm = [], []
        for i in range(ctx.reps(REPEATS)):
            out, cache = fresh(runs / f"cmp{i}"), fresh(runs / f"cache{i}")
            cold.append(measure(compare_cmd(ctx, ws, out, cache), env=env, log_file=runs / f"cold{i}.log"))
            warm.append(measure(compare_cmd(ctx, ws, out, cache), env=env, log_file=runs / f"warm{i}.log"))
            ctx.log(f"  {NAME} repeat {i + 1}: {warm[-1].wall_s:.2f} / {cold[-1].wall_s:.2f}")
        shared = {"cold": cold, "warm": warm, "command": " ".join(compare_cmd(ctx, ws, runs / "OUT",
                                                                             runs / "CACHE")[1:])}
    ratios = [w.wall_s / c.wall_s for c, w in zip(shared["cold"], shared["warm"])]
    ratio = statistics.median(ratios)
    detail = {
        "summary": (f"warm {statistics.median(w.wall_s for w in shared['warm']):.1f} s vs cold "
                    f"{statistics.median(c.wall_s for c in shared['cold']):.1f} s (the compare3 command)"),
        "cold": summarize(shared["cold"]), "warm": summarize(shared["warm"]),
        "ratios": [round(x, 4) for x in ratios], "command": shared["command"],
    }
    return row(NAME, ratio=ratio, target=TARGET, met=ratio <= LIMIT, detail=detail)
