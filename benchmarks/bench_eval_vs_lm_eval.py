"""eval_vs_lm_eval: `evalkit eval` of one adapter vs `lm_eval` on the same held-out prompts.

Both commands run as fresh processes, alternately, and are timed whole (imports, model load,
generation, scoring, writing results) with their peak RSS:

    evalkit: python -m evalkit eval ADAPTER --suite SUITE --max-new-tokens N --batch-size B
             --cache-dir <fresh per repeat>   (cold: nothing cached; the converted base model is reused)
             --train-sample T --extraction-n 0
    lm-eval: python -m lm_eval run --model hf --model_args pretrained=BASE,peft=ADAPTER --apply_chat_template
             --include_path TASKS --tasks TASK --batch_size B --device cpu --log_samples --output_path OUT

Same base (the folder evalkit converted SmolLM2-135M-Instruct into), same adapter, same prompts
(the suite exported by `evalkit export lm-eval`, with max_gen_toks N), same batch size, greedy.
evalkit still does work lm-eval does not (ROUGE/novelty/defects, the loss gap and membership
inference on T training + T validation examples, target and base); its extraction test, which
generates on training prompts, is off so both generate the same answers. The share of identical
generations compares evalkit's results.json predictions with lm-eval's logged samples (both stripped).

The adapters are random peft LoRAs (q_proj, v_proj, r=8, lora_B ~ N(0, 0.02)): training one on this
machine takes minutes and changes nothing about the timing.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Optional

from .runner import Context, Measured, alternate, measure, row

NAME = "eval_vs_lm_eval"
TARGET = "ratio ≤ 0.5"
LIMIT = 0.5

# (prompts, max_new_tokens, batch_size, train_sample, repeats) per size. "realistic" (the default) is
# what a user runs; "small" measures mostly imports and model loading (a smoke size), "tiny" the tests.
SIZES = {
    "tiny": dict(prompts=2, max_new_tokens=4, batch_size=2, train_sample=2, repeats=1),
    "small": dict(prompts=8, max_new_tokens=32, batch_size=8, train_sample=8, repeats=3),
    "realistic": dict(prompts=32, max_new_tokens=96, batch_size=16, train_sample=8, repeats=3),
    "large": dict(prompts=84, max_new_tokens=96, batch_size=16, train_sample=16, repeats=3),
}
SUITE = Path(__file__).resolve().parent.parent / "prompts" / "eco_heldout_en.jsonl"


def lm_eval_available() -> Optional[str]:
    """None when lm_eval can be imported, else why not (the bench extra is not installed)."""
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        return "lm_eval is not installed (pip install -e '.[bench]')"
    return None


# ------------------------------------------------------------------ workspace


def base_folder(ctx: Context) -> tuple[str, str]:
    """(spec for evalkit --base, folder for lm-eval pretrained=)."""
    spec = ctx.shared.get("base") or "default"
    if spec == "default":
        from evalkit.runtime.models import resolve_base

        return "default", str(resolve_base("default").path)
    return str(spec), str(spec)


def make_adapter(base: str, out: Path, seed: int, r: int = 8) -> Path:
    """A random peft LoRA on q_proj/v_proj (lora_B non-zero so the answers differ from the base's)."""
    if (out / "adapter_config.json").is_file():
        return out
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.0, task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(str(tmp))
    tmp.rename(out)
    return out


def workspace(ctx: Context, n_adapters: int) -> dict:
    """Suite subset, its lm-eval task, random adapters; built once per size and reused."""
    from evalkit.export_lm_eval import export_lm_eval_task

    cfg = SIZES[ctx.size]
    spec, folder = base_folder(ctx)
    ws = ctx.work / "lm_eval" / f"{ctx.size}-{Path(folder).name}"
    ws.mkdir(parents=True, exist_ok=True)
    lines = [ln for ln in SUITE.read_text(encoding="utf-8").splitlines() if ln.strip()][:cfg["prompts"]]
    suite = ws / f"heldout_en_{cfg['prompts']}.jsonl"
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    yaml = export_lm_eval_task(suite, ws / "task", max_gen_toks=cfg["max_new_tokens"])
    adapters = [make_adapter(folder, ws / "adapters" / f"lora{i + 1}", seed=i + 1) for i in range(n_adapters)]
    return {"dir": ws, "suite": suite, "task_dir": yaml.parent, "task": yaml.stem, "adapters": adapters,
            "base_spec": spec, "base_folder": folder, **cfg}


def evalkit_args(ws: dict) -> list[str]:
    return ["--base", ws["base_spec"], "--suite", str(ws["suite"]), "--max-new-tokens", str(ws["max_new_tokens"]),
            "--batch-size", str(ws["batch_size"]), "--train-sample", str(ws["train_sample"]), "--extraction-n", "0",
            "--device", "cpu"]


def evalkit_eval_cmd(ctx: Context, ws: dict, adapter: Path, out: Path, cache: Path,
                     extra: tuple[str, ...] = ()) -> list[str]:
    return [ctx.python, "-m", "evalkit", "eval", str(adapter), "--out", str(out), "--cache-dir", str(cache),
            *evalkit_args(ws), *extra]


def lm_eval_cmd(ctx: Context, ws: dict, adapter: Path, out: Path) -> list[str]:
    return [ctx.python, "-m", "lm_eval", "run", "--model", "hf",
            "--model_args", f"pretrained={ws['base_folder']},peft={adapter}", "--apply_chat_template",
            "--include_path", str(ws["task_dir"]), "--tasks", ws["task"], "--batch_size", str(ws["batch_size"]),
            "--device", "cpu", "--log_samples", "--output_path", str(out)]


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


# ------------------------------------------------------------------ identical generations


def lm_eval_generations(out: Path) -> dict[str, str]:
    """id -> generation from lm-eval's --log_samples files under ``out`` (one per task; ``out`` is fresh)."""
    files = sorted(out.rglob("samples_*.jsonl"))
    if not files:
        raise RuntimeError(f"no lm-eval samples file under {out}")
    gens = {}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                s = json.loads(line)
                resp = s["resps"][0][0] if isinstance(s["resps"][0], list) else s["resps"][0]
                gens[str(s["doc"]["id"])] = resp
    return gens


def evalkit_generations(results_json: Path) -> dict[str, str]:
    data = json.loads(results_json.read_text(encoding="utf-8"))
    return {str(s["id"]): s["prediction"] for s in data["samples"]}


def identical(a: dict[str, str], b: dict[str, str]) -> dict:
    ids = sorted(set(a) & set(b))
    same = [i for i in ids if a[i].strip() == b[i].strip()]
    diff = [i for i in ids if a[i].strip() != b[i].strip()]
    out = {"compared": len(ids), "identical": len(same), "share": (len(same) / len(ids)) if ids else None}
    # An answer cut at max_new_tokens inside a multi-byte character: lm-eval keeps the partial character as
    # U+FFFD, evalkit drops it (runtime/generate.py decode_answer). Same tokens; counted apart.
    cut = [i for i in diff if a[i].strip() == b[i].rstrip("\ufffd").strip()]
    out["identical_once_the_cut_character_is_removed"] = len(same) + len(cut)
    if diff:
        out["differences"] = [{"id": i, "evalkit": a[i][:300], "lm_eval": b[i][:300],
                               "common_prefix_chars": len(_common_prefix(a[i].strip(), b[i].strip()))}
                              for i in diff]
    return out


def _common_prefix(x: str, y: str) -> str:
    n = 0
    while n < min(len(x), len(y)) and x[n] == y[n]:
        n += 1
    return x[:n]


def summarize(runs: list[Measured]) -> dict:
    return {"wall_s_median": round(statistics.median(m.wall_s for m in runs), 2),
            "cpu_s_median": round(statistics.median(m.cpu_s for m in runs), 2), "cpu_s": [round(m.cpu_s, 2) for m in runs],
            "peak_rss_mb_median": round(statistics.median(m.peak_rss_mb for m in runs), 1),
            "wall_s": [round(m.wall_s, 2) for m in runs], "peak_rss_mb": [round(m.peak_rss_mb, 1) for m in runs]}


# ------------------------------------------------------------------ the benchmark


def run(ctx: Context) -> dict:
    return run_against_lm_eval(ctx, NAME, TARGET, LIMIT)


def run_against_lm_eval(ctx: Context, name: str, target: str, limit: float, extra: tuple[str, ...] = (),
                        note: str = "") -> dict:
    """One evalkit eval command (``extra``: its added options) alternated with lm-eval on the same work."""
    why = lm_eval_available()
    if why:
        return row(name, target=target, met=None, ratio=None, detail={"skipped": why, "summary": f"skipped: {why}"})
    ws = workspace(ctx, 1)
    adapter = ws["adapters"][0]
    env = ctx.env()
    ek: list[Measured] = []
    lm: list[Measured] = []
    runs = ws["dir"] / "runs" / name

    def a(i: int) -> float:
        m = measure(evalkit_eval_cmd(ctx, ws, adapter, fresh(runs / f"ek{i}"), fresh(runs / f"cache{i}"), extra),
                    env=env, log_file=runs / f"ek{i}.log")
        ek.append(m)
        return m.wall_s

    def b(i: int) -> float:
        m = measure(lm_eval_cmd(ctx, ws, adapter, fresh(runs / f"lm{i}")), env=env, log_file=runs / f"lm{i}.log")
        lm.append(m)
        return m.wall_s

    runs.mkdir(parents=True, exist_ok=True)
    res = alternate(a, b, ctx.reps(SIZES), ctx.log, name)
    same = identical(evalkit_generations(runs / "ek0" / "results.json"), lm_eval_generations(runs / "lm0"))
    ctx.shared[name] = {"evalkit": ek, "lm_eval": lm, "identical": same, "settings": {
        k: ws[k] for k in ("prompts", "max_new_tokens", "batch_size", "train_sample")}, "repeats": len(ek)}
    rss_ratio = statistics.median(e.peak_rss_mb for e in ek) / statistics.median(m.peak_rss_mb for m in lm)
    spread = f"evalkit {min(m.wall_s for m in ek):.1f}–{max(m.wall_s for m in ek):.1f} s, lm-eval " \
             f"{min(m.wall_s for m in lm):.1f}–{max(m.wall_s for m in lm):.1f} s"
    detail = {
        "summary": (f"{note}wall {res['a_median_s']:.1f} s vs {res['b_median_s']:.1f} s (median of {len(ek)} alternated "
                    f"repeats; range {spread}); peak RSS "
                    f"{statistics.median(e.peak_rss_mb for e in ek):.0f} vs "
                    f"{statistics.median(m.peak_rss_mb for m in lm):.0f} MB (ratio {rss_ratio:.2f}); identical "
                    f"generations {same['identical']}/{same['compared']}; CPU-time ratio "
                    f"{statistics.median(e.cpu_s for e in ek) / max(statistics.median(m.cpu_s for m in lm), 1e-9):.2f}; "
                    f"{ws['prompts']} prompts × "
                    f"{ws['max_new_tokens']} new tokens, batch {ws['batch_size']}"),
        "evalkit": summarize(ek), "lm_eval": summarize(lm), "ratios": [round(x, 4) for x in res["ratios"]],
        "peak_rss_ratio": round(rss_ratio, 4), "identical_generations": same,
        "cpu_time_ratio": round(statistics.median(e.cpu_s for e in ek) / max(statistics.median(m.cpu_s for m in lm), 1e-9), 4),
        "settings": {k: ws[k] for k in ("prompts", "max_new_tokens", "batch_size", "train_sample")},
        "commands": {"evalkit": " ".join(evalkit_eval_cmd(ctx, ws, adapter, Path("OUT"), Path("CACHE"), extra)[1:]),
                     "lm_eval": " ".join(lm_eval_cmd(ctx, ws, adapter, Path("OUT"))[1:])},
    }
    return row(name, ratio=res["ratio"], target=target, met=res["ratio"] <= limit, detail=detail)
