"""eval_full_vs_lm_eval: evalkit's default `evalkit eval` of one adapter (every signal) vs lm-eval's
generation-only run of the same suites.

    evalkit: python -m evalkit eval ADAPTER --out OUT --cache-dir <fresh> --base BASE --device cpu
             (the defaults: both bundled suites, 96 new tokens, batch 16, 100 training + 100 validation
             examples scored under the adapter and the base, MIA, extraction on 32 + 32 prompts)
    lm-eval: python -m lm_eval run ... --tasks EN,KO (both suites exported by `evalkit export lm-eval`,
             max_gen_toks 96, --batch_size 16): generations and ROUGE-L only

The token budget is 96 on both sides (`--max-new-tokens 96`, `max_gen_toks` 96). Without it evalkit fits
the budget to the data (the longest reference + a quarter + 16: 354 tokens for the bundled suites, whose
Korean references tokenize long) and generates up to 3.7× more than lm-eval: not the same work (a run
made that way on 2026-12-02 spent 580 s generating the 128 prompts).

The question this answers: what does evalkit's memorization analysis cost on top of the generation
that any harness does? The adapter is the random q/v LoRA of eval_vs_lm_eval; it has no evalkit.json,
so no canaries are planted in it (the canary test is skipped: it needs an adapter trained with
`--canaries`).
"""

from __future__ import annotations

from pathlib import Path

from .bench_eval_vs_lm_eval import (evalkit_generations, fresh, identical, lm_eval_available, lm_eval_generations,
                                    make_adapter, base_folder, summarize)
from .runner import Context, Measured, alternate, measure, row

NAME = "eval_full_vs_lm_eval"
TARGET = "ratio ≤ 1.0"
LIMIT = 1.0
SUITES = ("prompts/eco_heldout_en.jsonl", "prompts/eco_heldout_ko.jsonl")
ROOT = Path(__file__).resolve().parent.parent
# tiny: a few prompts and examples so the tests run in seconds; otherwise evalkit's defaults
SIZES = {
    "tiny": dict(prompts=2, repeats=1, flags=["--max-new-tokens", "4", "--batch-size", "2", "--train-sample", "2",
                                             "--extraction-n", "1"], max_new_tokens=4, batch_size=2),
    "small": dict(prompts=None, repeats=1, flags=["--max-new-tokens", "96"], max_new_tokens=96, batch_size=16),
    "realistic": dict(prompts=None, repeats=1, flags=["--max-new-tokens", "96"], max_new_tokens=96, batch_size=16),
    "large": dict(prompts=None, repeats=3, flags=["--max-new-tokens", "96"], max_new_tokens=96, batch_size=16),
}


def _workspace(ctx: Context) -> dict:
    from evalkit.export_lm_eval import export_lm_eval_task

    cfg = SIZES[ctx.size]
    spec, folder = base_folder(ctx)
    ws = ctx.work / "lm_eval_full" / f"{ctx.size}-{Path(folder).name}"
    ws.mkdir(parents=True, exist_ok=True)
    suites, tasks = [], []
    for rel in SUITES:
        lines = [ln for ln in (ROOT / rel).read_text(encoding="utf-8").splitlines() if ln.strip()]
        suite = ws / Path(rel).name
        suite.write_text("\n".join(lines[:cfg["prompts"]] if cfg["prompts"] else lines) + "\n", encoding="utf-8")
        suites.append(suite)
        tasks.append(export_lm_eval_task(suite, ws / "task", max_gen_toks=cfg["max_new_tokens"]))
    adapter = make_adapter(folder, ctx.work / "lm_eval" / "adapters-full" / "lora1", seed=1)
    return {"dir": ws, "suites": suites, "task_dir": tasks[0].parent, "tasks": [t.stem for t in tasks],
            "adapter": adapter, "base_spec": spec, "base_folder": folder, **cfg}


def evalkit_cmd(ctx: Context, ws: dict, out: Path, cache: Path, extra: tuple[str, ...] = ()) -> list[str]:
    suites = [a for s in ws["suites"] for a in ("--suite", str(s))] if ws["prompts"] else []
    return [ctx.python, "-m", "evalkit", "eval", str(ws["adapter"]), "--out", str(out), "--cache-dir", str(cache),
            "--base", ws["base_spec"], "--device", "cpu", *suites, *ws["flags"], *extra]


def lm_eval_cmd(ctx: Context, ws: dict, out: Path) -> list[str]:
    return [ctx.python, "-m", "lm_eval", "run", "--model", "hf",
            "--model_args", f"pretrained={ws['base_folder']},peft={ws['adapter']}", "--apply_chat_template",
            "--include_path", str(ws["task_dir"]), "--tasks", ",".join(ws["tasks"]),
            "--batch_size", str(ws["batch_size"]), "--device", "cpu", "--log_samples", "--output_path", str(out)]


def run(ctx: Context) -> dict:
    return run_full(ctx, NAME)


def run_full(ctx: Context, name: str, extra: tuple[str, ...] = (), note: str = "") -> dict:
    """evalkit's default eval (``extra``: added options) alternated with lm-eval on both suites."""
    why = lm_eval_available()
    if why:
        return row(name, target=TARGET, met=None, detail={"skipped": why, "summary": f"skipped: {why}"})
    ws = _workspace(ctx)
    env = ctx.env()
    runs = ws["dir"] / "runs" / name
    ek: list[Measured] = []
    lm: list[Measured] = []

    def a(i: int) -> float:
        m = measure(evalkit_cmd(ctx, ws, fresh(runs / f"ek{i}"), fresh(runs / f"cache{i}"), extra), env=env,
                    log_file=runs / f"ek{i}.log")
        ek.append(m)
        return m.wall_s

    def b(i: int) -> float:
        m = measure(lm_eval_cmd(ctx, ws, fresh(runs / f"lm{i}")), env=env, log_file=runs / f"lm{i}.log")
        lm.append(m)
        return m.wall_s

    runs.mkdir(parents=True, exist_ok=True)
    res = alternate(a, b, ctx.reps(SIZES), ctx.log, name)
    same = identical(evalkit_generations(runs / "ek0" / "results.json"), lm_eval_generations(runs / "lm0"))
    n_prompts = same["compared"]
    detail = {
        "summary": (f"{note}wall {res['a_median_s']:.1f} s vs {res['b_median_s']:.1f} s ({len(ek)} alternated repeat(s); "
                    f"evalkit {min(m.wall_s for m in ek):.1f}–{max(m.wall_s for m in ek):.1f} s); CPU "
                    f"{sum(m.cpu_s for m in ek) / len(ek):.0f} vs {sum(m.cpu_s for m in lm) / len(lm):.0f} s; peak RSS "
                    f"{max(m.peak_rss_mb for m in ek):.0f} vs {max(m.peak_rss_mb for m in lm):.0f} MB; identical "
                    f"generations {same['identical']}/{n_prompts}; both bundled suites ({n_prompts} prompts), "
                    f"{ws['max_new_tokens']} new tokens, batch {ws['batch_size']}; evalkit's defaults otherwise "
                    "(no canaries in this adapter)"),
        "evalkit": summarize(ek), "lm_eval": summarize(lm), "ratios": [round(x, 4) for x in res["ratios"]],
        "identical_generations": same,
        "commands": {"evalkit": " ".join(evalkit_cmd(ctx, ws, Path("OUT"), Path("CACHE"), extra)[1:]),
                     "lm_eval": " ".join(lm_eval_cmd(ctx, ws, Path("OUT"))[1:])},
    }
    return row(name, ratio=res["ratio"], target=TARGET, met=res["ratio"] <= LIMIT, detail=detail)
