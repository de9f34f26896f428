"""compare3_vs_lm_eval: one `evalkit compare` of three adapters vs three `lm_eval` runs.

    evalkit: python -m evalkit compare LORA1 LORA2 LORA3 --out OUT --cache-dir <fresh> --no-gate <same settings>
    lm-eval: the eval_vs_lm_eval command once per adapter (three processes, their wall times summed)

evalkit loads the base model once and switches adapters (lm-eval #3744 asks for exactly this); lm-eval
loads base + adapter in each process. The settings, adapters and prompts are those of eval_vs_lm_eval.
Right after each cold compare the same compare is re-run unchanged (same cache, same output folder):
those pairs are the warm_cache benchmark's figures, measured here so the cold runs are not paid twice.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .bench_eval_vs_lm_eval import (evalkit_args, fresh, lm_eval_available, lm_eval_cmd, summarize,
                                    workspace)
from .runner import Context, Measured, alternate, measure, row

NAME = "compare3_vs_lm_eval"
TARGET = "ratio ≤ 0.33"
LIMIT = 0.33
REPEATS = {"tiny": 1, "small": 2, "realistic": 2, "large": 3}


def compare_cmd(ctx: Context, ws: dict, out: Path, cache: Path) -> list[str]:
    return [ctx.python, "-m", "evalkit", "compare", *map(str, ws["adapters"]), "--out", str(out),
            "--cache-dir", str(cache), "--no-gate", *evalkit_args(ws)]


def run(ctx: Context) -> dict:
    why = lm_eval_available()
    if why:
        return row(NAME, target=TARGET, met=None, detail={"skipped": why, "summary": f"skipped: {why}"})
    ws = workspace(ctx, 3)
    env = ctx.env()
    runs = ws["dir"] / "runs3"
    cold: list[Measured] = []
    warm: list[Measured] = []
    lm: list[list[Measured]] = []

    def a(i: int) -> float:
        out, cache = fresh(runs / f"cmp{i}"), fresh(runs / f"cache{i}")
        m = measure(compare_cmd(ctx, ws, out, cache), env=env, log_file=runs / f"cmp{i}.log")
        cold.append(m)
        warm.append(measure(compare_cmd(ctx, ws, out, cache), env=env, log_file=runs / f"cmp{i}-warm.log"))
        ctx.log(f"  warm re-run {i + 1}: {warm[-1].wall_s:.2f} s (cold {m.wall_s:.2f} s)")
        return m.wall_s

    def b(i: int) -> float:
        ms = [measure(lm_eval_cmd(ctx, ws, ad, fresh(runs / f"lm{i}-{k}")), env=env, log_file=runs / f"lm{i}-{k}.log")
              for k, ad in enumerate(ws["adapters"])]
        lm.append(ms)
        return sum(m.wall_s for m in ms)

    res = alternate(a, b, ctx.reps(REPEATS), ctx.log, NAME)
    ctx.shared["warm_cache"] = {"cold": cold, "warm": warm, "command": " ".join(compare_cmd(ctx, ws, Path("OUT"),
                                                                                         Path("CACHE"))[1:])}
    lm_rss = statistics.median(max(m.peak_rss_mb for m in ms) for ms in lm)
    ek_rss = statistics.median(m.peak_rss_mb for m in cold)
    detail = {
        "summary": (f"wall {res['a_median_s']:.1f} s vs 3 runs {res['b_median_s']:.1f} s; peak RSS {ek_rss:.0f} vs "
                    f"{lm_rss:.0f} MB (largest of the three); {ws['prompts']} prompts × {ws['max_new_tokens']} new "
                    f"tokens, batch {ws['batch_size']}"),
        "evalkit_compare": summarize(cold), "lm_eval_runs": [summarize(ms) for ms in lm],
        "lm_eval_sum_s": [round(sum(m.wall_s for m in ms), 2) for ms in lm],
        "cpu_time_ratio": round(statistics.median(m.cpu_s for m in cold)
                                / max(statistics.median(sum(m.cpu_s for m in ms) for ms in lm), 1e-9), 4),
        "ratios": [round(x, 4) for x in res["ratios"]],
        "commands": {"evalkit": ctx.shared["warm_cache"]["command"],
                     "lm_eval": " ".join(lm_eval_cmd(ctx, ws, Path("ADAPTER"), Path("OUT"))[1:]) + "  (×3)"},
    }
    return row(NAME, ratio=res["ratio"], target=TARGET, met=res["ratio"] <= LIMIT, detail=detail)
