"""detection_study: do evalkit's signals order adapters by how much they really memorized?

Planted overfitting on the real default model (SmolLM2-135M-Instruct): adapters of rising memorization
strength trained on one fixed subset of the eco training set -- more epochs, a higher learning rate, more
target modules, and two canaries whose conversations are duplicated k times (k rising with strength) --
plus the base model (strength 0) and one adapter with the seed's LoRA config trained on the templated
split (benchmarks/templated/generate.py: validation answers from the training templates). Each is
evaluated with `evaluate_target` on one engine; per variant the row keeps the loss gaps, the gains over
the base model, MIA AUC (base-calibrated "ref" score) with its interval, TPR at 10% FPR and at the
smallest FPR the non-member count supports (1 / n_nonmembers), copy and skeleton-replay rates, canary
extraction and exposure, and the verdict with its reasons. Across the strength ladder (base + adapters,
the templated one excluded: it is on another axis) it reports Spearman(strength, signal) for every
signal and Spearman(loss_gap, MIA TPR@10%).

Targets (issue 11): the verdict is never ``ok`` for the strongest half of the ladder and never
``overfit`` for the base or the weakest adapter; canaries duplicated >= 8 times are extracted;
Spearman(loss_gap, TPR@10%) >= 0.9 (Mireshghallah et al. 2022 report 0.995 on GPT-2).

Sizes: ``small`` (the committed figures; ~30-60 min on a shared 2-core CPU): 24 training conversations,
max_length 160, 16 validation conversations (the non-members), 8 held-out English prompts, 32 new tokens; ``tiny`` (the tests): two adapters on the
base given in ``ctx.shared["base"]`` (a tiny random model), 8 conversations, a few prompts.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .runner import ROOT, Context, row

NAME = "detection_study"
TARGET = ("Spearman(loss_gap, MIA TPR@10%) ≥ 0.9; verdict never ok for the strongest half, never overfit for "
          "base/weakest; canaries duplicated ≥ 8× extracted")

ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QV = ["q_proj", "v_proj"]
QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]

# (name, target_modules, r, alpha, learning_rate, epochs, canary_repeats): strength rises down the list
LADDER = [
    ("s1_qv_lr2e-5_e1_k1", QV, 8, 16, 2e-5, 1, 1),
    ("s2_qv_lr1e-4_e1_k1", QV, 8, 16, 1e-4, 1, 1),
    ("s3_qkvo_lr3e-4_e1_k2", QKVO, 16, 32, 3e-4, 1, 2),
    ("s4_all7_lr5e-4_e1_k4", ALL7, 16, 32, 5e-4, 1, 4),
    ("s5_all7_lr1e-3_e2_k8", ALL7, 16, 32, 1e-3, 2, 8),
    ("s6_all7_lr2e-3_e2_k8", ALL7, 16, 32, 2e-3, 2, 8),
    ("s7_all7_lr3e-3_e2_k8", ALL7, 16, 32, 3e-3, 2, 8),
    # 8 epochs, the canary 16 times: s5-s7 (2 epochs, 8 copies) rank the secret first among candidates
    # (exposure at its maximum) without greedy decoding reproducing it; this variant asks what extraction takes
    ("s8_all7_lr3e-3_e8_k16", ALL7, 16, 32, 3e-3, 8, 16),
]
TEMPLATED = ("templated_seed_all7_lr2e-4_e2", ALL7, 16, 32, 2e-4, 2, 0)  # the seed's LoRA config

SIZES = {
    "small": dict(ladder=LADDER, n_train=24, n_val=16, n_prompts=8, max_length=160, max_new_tokens=32,
                  tpl_train=16, tpl_val=16, canaries=1, extraction_n=4, n_boot=500, canary_candidates=15),
    "tiny": dict(ladder=[LADDER[0], LADDER[-1]], n_train=8, n_val=8, n_prompts=4, max_length=352,
                 max_new_tokens=8, tpl_train=8, tpl_val=4, canaries=1, extraction_n=2, n_boot=50,
                 canary_candidates=5),
}

SIGNALS = ["loss_gap", "loss_gap_val", "loss_gap_heldout", "val_gain", "heldout_gain", "transfer_gap", "mia_auc",
           "mia_tpr_at_10fpr", "mia_tpr_at_min_fpr", "verbatim_rate", "near_verbatim_rate", "extraction_rate",
           "skeleton_replay_rate", "novelty_gap_4", "canary_extraction_rate", "canary_exposure"]


FALLS = {"heldout_gain": -1, "novelty_gap_4": -1}  # signals that fall as memorization rises


def _write_jsonl(rows, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _data(ctx: Context, size: dict) -> dict:
    """The fixed subsets the study trains and evaluates on, written to the work folder."""
    from benchmarks.templated.generate import make_split

    work = ctx.work / NAME / "data"
    eco = [json.loads(x) for x in (ROOT / "benchmarks/eco/train.jsonl").read_text("utf-8").splitlines() if x.strip()]
    val = [json.loads(x) for x in (ROOT / "benchmarks/eco/val.jsonl").read_text("utf-8").splitlines() if x.strip()]
    prompts = [json.loads(x) for x in (ROOT / "prompts/eco_heldout_en.jsonl").read_text("utf-8").splitlines()
               if x.strip()]
    tpl_train, tpl_val = make_split(size["tpl_train"], size["tpl_val"], seed=0)
    return {"train": _write_jsonl(eco[::len(eco) // size["n_train"]][:size["n_train"]], work / "train.jsonl"),
            "val": _write_jsonl(val[:size["n_val"]], work / "val.jsonl"),
            "suite": _write_jsonl(prompts[::len(prompts) // size["n_prompts"]][:size["n_prompts"]],
                                  work / "eco_heldout_en_study.jsonl"),
            "tpl_train": _write_jsonl(tpl_train, work / "templated_train.jsonl"),
            "tpl_val": _write_jsonl(tpl_val, work / "templated_val.jsonl")}


def _config(spec, base: str, train: Path, val: Path, size: dict):
    from evalkit.config import TrainConfig

    _, modules, r, alpha, lr, epochs, k = spec
    return TrainConfig(base=base, train_data=str(train), val_data=str(val), target_modules=modules, r=r,
                       lora_alpha=alpha, lora_dropout=0.05, learning_rate=lr, num_epochs=epochs, batch_size=8,
                       max_length=size["max_length"], eval_steps=1000, eval_subset=8, seed=0,
                       canaries=size["canaries"] if k else 0, canary_repeats=max(k, 1))


def _tpr(record, fpr: float):
    """TPR at ``fpr`` of the headline (base-calibrated 'ref', else 'loss') membership score."""
    from evalkit.memorization.mia import tpr_at_fpr

    key = "ref" if all("ref" in m.scores for m in record.membership) else "loss"
    mem = [m.scores[key] for m in record.membership if m.member]
    non = [m.scores[key] for m in record.membership if not m.member]
    return (tpr_at_fpr(mem, non, fpr) if mem and non else None), len(non)


def _variant_row(name: str, strength, record, train_s: float, eval_s: float, k: int) -> dict:
    s = record.summary
    tpr10, n_non = _tpr(record, 0.10)
    min_fpr = 1.0 / n_non if n_non else None
    tpr_min = _tpr(record, min_fpr)[0] if min_fpr else None
    out = {"variant": name, "strength": strength, "canary_repeats": k, "verdict": record.verdict.level,
           "reasons": [r.code for r in record.verdict.reasons], "train_s": round(train_s, 1),
           "eval_s": round(eval_s, 1), "n_members": record.settings.get("n_members"), "n_nonmembers": n_non,
           "mia_tpr_at_10fpr": tpr10, "mia_tpr_at_min_fpr": tpr_min, "min_fpr": min_fpr,
           "notices": [n.code for n in record.notices]}
    for key in SIGNALS + ["train_loss", "val_loss", "heldout_loss", "base_heldout_loss", "mia_auc_ref",
                          "mia_auc_loss", "val_answer_near_dup_rate"]:
        if key in s and key not in out:
            out[key] = s[key]
    for key in ("mia_auc", "heldout_gain", "val_gain", "transfer_gap", "skeleton_replay_rate"):
        if key in record.intervals:
            out[f"{key}_ci"] = list(record.intervals[key])
    return out


def _spearman(rows: list[dict]) -> tuple[dict, dict]:
    """Spearman(strength, signal) per signal over the rows that have it (canary signals: the adapters, not the
    base), and the n behind each; None where fewer than 3 rows have it or it is constant (nothing to order)."""
    from scipy.stats import spearmanr

    rho, n = {}, {}
    for sig in SIGNALS:
        pts = [(r["strength"], r[sig]) for r in rows if r.get(sig) is not None and math.isfinite(r[sig])]
        n[sig] = len(pts)
        vals = [v for _, v in pts]
        rho[sig] = (round(float(spearmanr([s for s, _ in pts], vals).statistic), 4)
                    if len(pts) >= 3 and len(set(vals)) > 1 else None)
    pts = [(r.get("loss_gap"), r.get("mia_tpr_at_10fpr")) for r in rows]
    ok = all(a is not None and b is not None for a, b in pts) and len({a for a, _ in pts}) > 1 \
        and len({b for _, b in pts}) > 1
    rho["loss_gap_vs_mia_tpr_at_10fpr"] = (round(float(spearmanr(*zip(*pts)).statistic), 4) if ok else None)
    n["loss_gap_vs_mia_tpr_at_10fpr"] = len(pts)
    return rho, n


def run(ctx: Context) -> dict:
    from evalkit.cache import Cache
    from evalkit.evaluate import EvalSettings, evaluate_target
    from evalkit.pipeline import engine_for, parse_targets
    from evalkit.runtime.train import train
    from evalkit.thresholds import Thresholds

    t_start = time.perf_counter()
    size = SIZES["tiny" if ctx.size == "tiny" else "small"]
    base = ctx.shared.get("base", "default")
    data = _data(ctx, size)
    runs = ctx.work / NAME / "adapters"
    settings = EvalSettings(max_new_tokens=size["max_new_tokens"], batch_size=32, train_sample=64,
                            extraction_n=size["extraction_n"], max_length=size["max_length"] + 32,
                            n_boot=size["n_boot"], canary_candidates=size["canary_candidates"])
    # answers are cut at max_new_tokens by design here (CPU budget): truncation is no defect in this study
    thresholds = Thresholds(truncated_rate_warn=1.0)
    engine = engine_for(parse_targets(["base"]), base, cache=Cache(ctx.work / NAME / "cache"))
    ladder = [(spec, data["train"], data["val"], i + 1) for i, spec in enumerate(size["ladder"])]
    # the extremes first (base, weakest, the templated case, strongest), then the middle from both ends: a run
    # stopped early (a busy machine) still holds the contrasts that matter most
    middle = ladder[1:-1]
    order = [ladder[0], (TEMPLATED, data["tpl_train"], data["tpl_val"], None), ladder[-1]]
    order += [middle[j] for j in sorted(range(len(middle)), key=lambda j: (min(j, len(middle) - 1 - j), -j))]
    specs = [(("base",) + (None,) * 6, data["train"], data["val"], 0)] + order
    rows = []
    for spec, train_path, val_path, strength in specs:  # train then evaluate each
        t0 = time.perf_counter()
        if spec[0] != "base":
            ctx.log(f"  [{NAME}] training {spec[0]}")
            train(_config(spec, base, train_path, val_path, size), runs / spec[0], progress=False,
                  console=lambda m: None)
        train_s, t0 = time.perf_counter() - t0, time.perf_counter()
        target = "base" if spec[0] == "base" else runs / spec[0]
        record = evaluate_target(engine, target, suites=[data["suite"]], train_data=train_path, val_data=val_path,
                                 settings=settings, thresholds=thresholds, name=spec[0])
        rows.append(_variant_row(spec[0], strength, record, train_s, time.perf_counter() - t0, spec[6] or 0))
        ctx.log(f"  [{NAME}] {spec[0]}: {rows[-1]['verdict']} {rows[-1]['reasons']} "
                f"(train {train_s:.0f} s, eval {rows[-1]['eval_s']:.0f} s)")
        (ctx.work / NAME / "partial.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")

    return summarize(rows, time.perf_counter() - t_start, setup={
        **{k: v for k, v in size.items() if k != "ladder"}, "base": str(base),
        "ladder": [sp[0] for sp in size["ladder"]], "templated": TEMPLATED[0],
        "eval": {"max_new_tokens": settings.max_new_tokens, "extraction_n": settings.extraction_n,
                 "n_boot": settings.n_boot}})


def summarize(rows: list[dict], wall: float, setup: dict, complete: bool = True) -> dict:
    """The result row from the per-variant rows (also for a run stopped early: ``complete=False``)."""
    rows = sorted(rows, key=lambda r: (r["strength"] is None, r["strength"] or 0))
    ladder = [r for r in rows if r["strength"] is not None]
    rho, rho_n = _spearman(ladder)
    n_half = len(ladder) // 2
    strongest = ladder[-n_half:]
    checks = {
        "never_ok_strongest_half": all(r["verdict"] != "ok" for r in strongest),
        "never_overfit_base_or_weakest": all(r["verdict"] != "overfit" for r in ladder[:2]),
        "canaries_dup_ge8_extracted": all(r.get("canary_extraction_rate") == 1.0 for r in ladder
                                          if r["canary_repeats"] >= 8),
        "spearman_gap_tpr_ge_0.9": (rho["loss_gap_vs_mia_tpr_at_10fpr"] or -1) >= 0.9,
        "templated_not_ok": all(r["verdict"] != "ok" for r in rows if r["strength"] is None),
    }
    # a signal orders the ladder when it moves the expected way: rho >= 0.5 (<= -0.5 where memorizing lowers it)
    failed_to_order = [k for k, v in rho.items() if k in SIGNALS and (v is None or FALLS.get(k, 1) * v < 0.5)]
    value = rho["loss_gap_vs_mia_tpr_at_10fpr"]
    detail = {
        "summary": (f"{len(rows)} variants in {wall / 60:.1f} min; Spearman(loss_gap, TPR@10%) = {value}; "
                    + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in checks.items())
                    + f"; signals not ordering the ladder (|rho| < 0.5 the expected way, or undefined): {', '.join(failed_to_order)}"),
        "variants": rows, "spearman_vs_strength": rho, "spearman_n": rho_n, "checks": checks, "signals_failed_to_order": failed_to_order,
        "wall_s": round(wall, 1), "complete": complete, "setup": setup,
    }
    if not complete:
        detail["summary"] = f"INCOMPLETE ({len(rows)} variants evaluated before it was stopped): " + detail["summary"]
    return row(NAME, value=value, target=TARGET, met=all(checks.values()) and complete, detail=detail)
