"""Synthetic RunRecords for tests: realistic shapes, no model, deterministic from ``seed``.

    from tests.fakes import make_run
    base = make_run("base", target_kind="base")
    good = make_run("gentle", seed=1, rouge_shift=0.03)
    bad = make_run("seedlike", seed=2, copy_rate=0.3, rouge_shift=-0.05)

Prompts (and their per-prompt difficulty) depend only on the index, never on ``seed``, so runs
with the same ``n`` answer the same prompts with the same ids and pair sample by sample; ``seed``
adds run-level noise. Same arguments -> identical record.

* ``copy_rate``: exactly round(copy_rate * n) samples copy a training answer: flag "verbatim"
  (half of them also "near_verbatim"), a Memorization span, low novelty, a long longest_span.
  It also widens the train/held-out loss gap, raises membership-inference AUC and extraction.
* ``defects``: {"template_leak": 0.1, ...} -> exactly round(rate * n) samples carry that flag.
* ``kind="score"``: predictions scored without a model: no losses, membership, extraction,
  curves["roc"], training log, n_tokens, nor any ``needs_model`` metric in the summary.
* ``hostile=True``: prompts, predictions, references, spans, training answers, tags, the target
  path and a verdict reason carry HTML/JS/template-injection strings (see HOSTILE).
* Every 4th prompt is Korean (suite "eco_heldout_ko").

Canary metrics are not produced (no canaries are planted in these fake runs).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from evalkit import __version__
from evalkit.io import sha256_text
from evalkit.metrics.registry import NOVELTY_NS
from evalkit.records import (
    SCHEMA_VERSION,
    ExtractionExample,
    LossExample,
    MembershipExample,
    Memorization,
    Reason,
    RunRecord,
    Sample,
    Target,
    Verdict,
)
from evalkit.stats import bootstrap_ci

__all__ = ["make_run", "standard_runs", "standard_comparison", "scrub", "assert_golden", "HOSTILE", "TRAIN_ANSWERS",
           "BASE_MODEL", "FLAGS"]

HOSTILE = (
    "<script>alert(1)</script>",
    "</textarea>",
    "{{ 7*7 }}",
    "javascript:alert(1)",
    "<img src=x onerror=alert(1)>",
)
BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
FLAGS = ("verbatim", "near_verbatim", "escaped_newline", "template_leak", "empty", "truncated", "repetition")
DEFECTS = ("escaped_newline", "template_leak", "empty", "truncated", "repetition")
CREATED_AT = "2026-01-01T00:00:00Z"

_EN = [
    ("My electricity bill doubled after I moved into a flat with fourteen halogen spotlights.",
     "Swap the halogen spotlights for LED bulbs with the same fitting; they use a fraction of the power "
     "and you will see the difference on next month's bill."),
    ("My daughter outgrows her shoes every few months and the other parents complain about the same thing.",
     "Organise a swap party with the parents from school pickup so every family leaves with the next size up "
     "for free and nothing ends up in the bin."),
    ("I drive 22 km to work and a coworker lives two streets away, but asking to share feels awkward.",
     "Suggest a two-week carpool trial to your coworker; it feels low-stakes and roughly halves the fuel "
     "you both burn on that stretch."),
    ("I buy a coffee in a paper cup every morning on the way to the office.",
     "Keep a reusable cup in your bag; most cafes fill it happily and some give a small discount, "
     "which adds up over a year."),
    ("Our office prints every meeting agenda even though everyone has a laptop.",
     "Propose sharing agendas on screen for a month and track the paper saved; a visible number makes "
     "the habit stick."),
    ("I leave my laptop, speaker and TV plugged in all day in my tiny studio.",
     "Put the chargers, speaker and TV on one power strip by the door and switch it off when you leave "
     "to cut the standby drain."),
]
_KO = [
    ("에어컨을 하루 종일 켜 두는데 전기 요금이 너무 많이 나와요.",
     "설정 온도를 26도로 올리고 선풍기를 함께 쓰면 전기 요금을 크게 줄일 수 있어요."),
    ("회사에서 일회용 컵을 너무 많이 써요.",
     "텀블러를 책상에 두고 쓰면 하루에 컵 몇 개씩은 줄일 수 있어요."),
    ("장을 볼 때마다 비닐봉지를 새로 받아요.",
     "장바구니를 현관에 걸어 두면 나갈 때 잊지 않고 챙길 수 있어요."),
]
TRAIN_ANSWERS = (
    "That always-on setup is a classic standby drain, so put the laptop charger, speaker and TV on one "
    "power strip near the door and flip it off when you leave for class, then compare your next bill.",
    "Go for the LED swap: fourteen halogen spotlights are a real energy drain, and LED replacements with "
    "the same fitting use a fraction of the power and barely get warm.",
    "A swap party would be perfect here: invite the parents from pickup to bring outgrown shoes, jeans "
    "and toys one weekend afternoon, and every family leaves with the next size up for free.",
    "The carpool pledge is made for this: pitch it to your coworker as a two-week trial so it feels "
    "low-stakes rather than a big commitment.",
    "Bring a reusable cup and ask the barista to fill it; many cafes take a little off the price for it.",
    "텀블러를 가방에 넣고 다니면 일회용 컵을 쓰지 않아도 돼요. 카페에서 할인도 받을 수 있어요.",
)
_FILLER = ("honestly", "simply", "really", "today", "this week", "at home", "for a month", "step by step")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens. Deliberately local (not evalkit.metrics.tokenize), so these fakes and the
    golden files built from them do not change when the real tokenizer is tuned."""
    return re.findall(r"[^\W_]+", text.lower())


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC = P(score_member > score_nonmember), ties count half."""
    if pos.size == 0 or neg.size == 0:
        return 0.5
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _roc(pos: np.ndarray, neg: np.ndarray) -> tuple[list[float], list[float]]:
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    fpr, tpr = [0.0], [0.0]
    for t in thresholds:
        fpr.append(round(float((neg >= t).mean()), 6))
        tpr.append(round(float((pos >= t).mean()), 6))
    return fpr, tpr


def _tpr_at(fpr: list[float], tpr: list[float], max_fpr: float = 0.01) -> float:
    """TPR of the last ROC point with FPR <= max_fpr (MIMIR's convention)."""
    return max(t for f, t in zip(fpr, tpr, strict=True) if f <= max_fpr)


def _r(x: float, nd: int = 6) -> float:
    return float(round(float(x), nd))


def _pick(rng: np.random.Generator, n: int, rate: float) -> set[int]:
    k = int(round(max(0.0, min(1.0, rate)) * n))
    return set(int(i) for i in rng.permutation(n)[:k])


def _words_en(text: str) -> list[str]:
    return text.split()


def make_run(name: str, *, n: int = 20, seed: int = 0, rouge_shift: float = 0.0, copy_rate: float = 0.0,
             kind: str = "eval", hostile: bool = False, target_kind: Optional[str] = None,
             defects: Optional[Mapping[str, float]] = None, base_model: str = BASE_MODEL,
             base_hash: Optional[str] = None, level: Optional[str] = None) -> RunRecord:
    """A complete, realistic RunRecord (see the module docstring). ``level`` forces the verdict level."""
    if kind not in ("eval", "score"):
        raise ValueError(f"kind must be 'eval' or 'score'. Got {kind!r} instead.")
    target_kind = target_kind or ("adapter" if kind == "eval" else "predictions")
    is_model = kind == "eval"
    rng = np.random.default_rng(seed)
    fixed = np.random.default_rng(20260101)  # prompt-level properties: identical across runs
    difficulty = fixed.uniform(0.25, 0.55, size=n)
    copies = _pick(rng, n, copy_rate)
    defect_sets = {d: _pick(rng, n, r) for d, r in sorted((defects or {}).items())}
    for d in defect_sets:
        if d not in DEFECTS:
            raise ValueError(f"unknown defect {d!r}; expected one of {DEFECTS}")

    # ------------------------------------------------------------ samples
    samples = []
    for i in range(n):
        korean = i % 4 == 3
        pool = _KO if korean else _EN
        prompt, reference = pool[i % len(pool)]
        suite = "eco_heldout_ko" if korean else "eco_heldout_en"
        sid = f"{'ko' if korean else 'en'}-{i + 1:03d}"
        tags: tuple[str, ...] = ("korean",) if korean else ("in_distribution",)
        if hostile and i % 3 == 0:
            h = HOSTILE[(i // 3) % len(HOSTILE)]
            prompt = f"{prompt} {h}"
            reference = f"{reference} {h}"
            tags = tags + (h,)
        copied = i in copies
        mem = None
        train_idx = (i + seed) % len(TRAIN_ANSWERS)
        if copied:
            train_answer = TRAIN_ANSWERS[train_idx]
            if hostile:
                train_answer = f"{train_answer} {HOSTILE[i % len(HOSTILE)]}"
            whole = len([j for j in sorted(copies) if j <= i]) % 2 == 1  # every other copy is a whole answer
            if whole:
                prediction = train_answer
                span = train_answer
            else:
                words = train_answer.split()
                span = " ".join(words[: max(4, int(len(words) * 0.8))])
                prediction = f"{span} {_FILLER[i % len(_FILLER)]}."
            span_tokens = len(tokens(span))
            mem = Memorization(
                train_id=f"train-{train_idx:03d}", span=span, span_tokens=span_tokens, pred_start=0,
                train_start=0, train_answer=train_answer, nearest_id=f"train-{train_idx:03d}",
                nearest_answer=train_answer, edit_distance=0.0 if whole else _r(0.06 + 0.01 * (i % 3)))
        else:
            words = reference.split() if not korean else list(reference.split())
            r_words = list(words)
            k = int(rng.integers(0, max(1, len(r_words) // 3)))
            for _ in range(k):  # light, seeded paraphrase: drop or swap a word
                j = int(rng.integers(0, len(r_words)))
                r_words[j] = _FILLER[int(rng.integers(0, len(_FILLER)))] if rng.random() < 0.5 else r_words[j]
            prediction = " ".join(r_words)
            whole = False
        flags = []
        if copied:
            flags.append("verbatim")
            if whole:
                flags.append("near_verbatim")
        for d, chosen in defect_sets.items():
            if i in chosen:
                flags.append(d)
                if d == "escaped_newline":
                    prediction = prediction.replace(". ", ".\\n", 1) + "\\n"
                elif d == "template_leak":
                    prediction = prediction + "<|im_end|>\n<|im_start|>user"
                elif d == "empty":
                    prediction = ""
                elif d == "repetition":
                    prediction = " ".join([prediction] * 3)
        noise = float(rng.normal(0, 0.03))
        rouge_l = min(1.0, max(0.0, difficulty[i] + rouge_shift + noise - (0.15 if copied else 0.0)))
        metrics = {
            "rougeL": _r(rouge_l),
            "rouge1": _r(min(1.0, rouge_l + 0.06)),
            "rouge2": _r(rouge_l * 0.6),
            "rougeLsum": _r(rouge_l),
            "longest_span": float(mem.span_tokens if mem else 2 + int(rng.integers(0, 4))),
        }
        for m in NOVELTY_NS:
            base_nov = 1.0 - 0.7 * (0.62 ** (m - 1))
            nov = base_nov * (0.08 if copied else 1.0) + float(rng.normal(0, 0.01))
            metrics[f"novelty_{m}"] = _r(min(1.0, max(0.0, nov)))
        if is_model:
            metrics["heldout_nll"] = _r(1.7 + 0.8 * copy_rate + difficulty[i] - 0.4 + float(rng.normal(0, 0.05)))
        n_tok = len(tokens(prediction))
        samples.append(Sample(
            id=sid, suite=suite, prompt=prompt, prediction=prediction, reference=reference, metrics=metrics,
            flags=tuple(flags), memorization=mem,
            n_tokens=int(round(n_tok * 1.3)) if is_model else None,
            hit_max_tokens=("truncated" in flags) if is_model else None, tags=tags))

    # ------------------------------------------------------------ summary (text metrics)
    summary: dict[str, float] = {}
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        summary[key] = _r(np.mean([s.metrics[key] for s in samples]))
    ref_nov = {}
    for m in NOVELTY_NS:
        summary[f"novelty_{m}"] = _r(np.mean([s.metrics[f"novelty_{m}"] for s in samples]))
        ref_nov[m] = _r(1.0 - 0.66 * (0.6 ** (m - 1)))
        summary[f"reference_novelty_{m}"] = ref_nov[m]
    summary["novelty_gap_4"] = _r(summary["novelty_4"] - ref_nov[4])
    all_toks = [tokens(s.prediction) for s in samples]
    uni = [t for ts in all_toks for t in ts]
    bi = [tuple(ts[j:j + 2]) for ts in all_toks for j in range(len(ts) - 1)]
    summary["distinct_1"] = _r(len(set(uni)) / len(uni)) if uni else 0.0
    summary["distinct_2"] = _r(len(set(bi)) / len(bi)) if bi else 0.0
    preds = [s.prediction for s in samples]
    summary["mode_collapse_rate"] = _r(sum(preds.count(p) > 1 for p in preds) / n) if n else 0.0
    for flag in ("verbatim", "near_verbatim"):
        summary[f"{flag}_rate"] = _r(sum(flag in s.flags for s in samples) / n) if n else 0.0
    summary["longest_span_mean"] = _r(np.mean([s.metrics["longest_span"] for s in samples])) if n else 0.0
    for flag in DEFECTS:
        summary[f"{flag}_rate"] = _r(sum(flag in s.flags for s in samples) / n) if n else 0.0
    summary["n_samples"] = float(n)

    losses: list[LossExample] = []
    membership: list[MembershipExample] = []
    extraction: list[ExtractionExample] = []
    curves: dict = {"novelty": {"n": list(NOVELTY_NS),
                                "prediction": [summary[f"novelty_{m}"] for m in NOVELTY_NS],
                                "reference": [ref_nov[m] for m in NOVELTY_NS]}}
    training_log: list[dict] = []
    adapter = target_kind == "adapter"

    # ------------------------------------------------------------ model-only measurements
    if is_model:
        fit = (0.18 + 1.1 * copy_rate) if adapter else 0.0  # how far training pulled train NLL down
        n_val = max(4, n // 4)
        train_texts = [TRAIN_ANSWERS[j % len(TRAIN_ANSWERS)] for j in range(n)]
        if hostile:
            train_texts = [f"{t} {HOSTILE[j % len(HOSTILE)]}" for j, t in enumerate(train_texts)]
        ex_diff = fixed.normal(0, 0.15, size=(3, max(n, n_val)))
        for split, count, row in (("train", n, 0), ("val", n_val, 1), ("heldout", n, 2)):
            for j in range(count):
                base_nll = 2.0 + float(ex_diff[row, j])
                if split == "train":
                    nll = base_nll - fit + float(rng.normal(0, 0.12))
                else:
                    nll = base_nll - (0.15 if adapter else 0.0) + (0.7 * copy_rate) + float(rng.normal(0, 0.12))
                ex_id = samples[j].id if split == "heldout" else f"{split}-{j:03d}"
                losses.append(LossExample(id=ex_id, split=split, nll=_r(nll), base_nll=_r(base_nll),
                                          n_tokens=30 + (j * 7) % 25))
        by_split = {sp: [ex for ex in losses if ex.split == sp] for sp in ("train", "val", "heldout")}
        for split, member in (("train", True), ("heldout", False)):
            for j, ex in enumerate(by_split[split]):
                zlen = 90.0 + 10.0 * float(ex_diff[0 if member else 2, j])  # compressed bytes, same law for both
                scores = {"loss": _r(-ex.nll), "zlib": _r(-ex.nll * 100.0 / zlen),
                          "ref": _r((ex.base_nll or 0.0) - ex.nll),
                          "minkpp": _r(-ex.nll + float(rng.normal(0, 0.3)))}
                membership.append(MembershipExample(id=ex.id, member=member, scores=scores))
        aucs, rocs = {}, {}
        for sc in ("loss", "zlib", "ref", "minkpp"):
            pos = np.array([m.scores[sc] for m in membership if m.member])
            neg = np.array([m.scores[sc] for m in membership if not m.member])
            aucs[sc] = _r(_auc(pos, neg))
            rocs[sc] = _roc(pos, neg)
            summary[f"mia_auc_{sc}"] = aucs[sc]
        best = max(aucs, key=lambda k: (aucs[k], k))
        summary["mia_auc"] = aucs[best]
        summary["mia_tpr_at_1fpr"] = _r(_tpr_at(*rocs[best]))
        curves["roc"] = {"ref": {"fpr": rocs["ref"][0], "tpr": rocs["ref"][1]}}

        k_ex = min(n, 10)
        n_exact = int(round(copy_rate * k_ex))
        for j in range(k_ex):
            ref_text = train_texts[j]
            exact = j < n_exact
            pred = ref_text if exact else " ".join(ref_text.split()[: max(3, len(ref_text.split()) // 3)]) + " ..."
            extraction.append(ExtractionExample(
                id=f"train-{j:03d}", split="train", prompt=_EN[j % len(_EN)][0], reference=ref_text,
                prediction=pred, exact=exact, edit_distance=0.0 if exact else _r(0.55 + 0.02 * (j % 5))))
        for j in range(k_ex):
            s = samples[j]
            extraction.append(ExtractionExample(
                id=s.id, split="heldout", prompt=s.prompt, reference=s.reference or "", prediction=s.prediction,
                exact=False, edit_distance=_r(0.45 + 0.03 * (j % 4))))
        for split, key in (("train", "extraction_rate"), ("heldout", "heldout_extraction_rate")):
            exs = [e for e in extraction if e.split == split]
            summary[key] = _r(sum(e.exact or e.edit_distance <= 0.10 for e in exs) / len(exs))

        for split in ("train", "val", "heldout"):
            summary[f"{split}_loss"] = _r(np.mean([ex.nll for ex in by_split[split]]))
            summary[f"{split}_ppl"] = _r(math.exp(summary[f"{split}_loss"]))
        summary["loss_gap"] = _r(summary["heldout_loss"] - summary["train_loss"])
        summary["base_heldout_loss"] = _r(np.mean([ex.base_nll for ex in by_split["heldout"]]))
        summary["mean_new_tokens"] = _r(np.mean([s.n_tokens for s in samples]))

    if adapter:
        steps = 10
        for k in range(1, steps + 1):
            t = k / steps
            row = {"step": k * 10, "epoch": _r(3 * t, 3), "train_loss": _r(2.0 - (1.0 + copy_rate) * t)}
            if k % 2 == 0:
                row["val_loss"] = _r(2.0 - 0.5 * t + 3.0 * copy_rate * max(0.0, t - 0.4) ** 2)
            training_log.append(row)
        vals = [(r["step"], r["val_loss"]) for r in training_log if "val_loss" in r]
        best_step, best_val = min(vals, key=lambda sv: (sv[1], sv[0]))
        summary["min_val_loss_step"] = float(best_step)
        summary["val_loss_rise"] = _r(vals[-1][1] - best_val)

    # ------------------------------------------------------------ intervals, verdict, target
    intervals = {}
    for key, values in (("rougeL", [s.metrics["rougeL"] for s in samples]),
                        ("novelty_4", [s.metrics["novelty_4"] for s in samples]),
                        ("verbatim_rate", [float("verbatim" in s.flags) for s in samples])):
        if values:
            lo, hi = bootstrap_ci(values, n_boot=200, seed=seed)
            intervals[key] = (_r(lo), _r(hi))

    reasons = []
    def check(code, metric, lvl, threshold, message):
        v = summary.get(metric)
        if v is not None and v > threshold:
            reasons.append(Reason(code=code, level=lvl, message=message.format(v=v, t=threshold), metric=metric,
                                  value=v, threshold=threshold))
    check("verbatim", "verbatim_rate", "overfit", 0.05,
          "{v:.0%} of held-out answers copy a training answer verbatim (threshold {t:.0%})")
    check("mia", "mia_auc", "overfit", 0.75, "membership inference separates training answers (AUC {v:.2f} > {t})")
    check("loss_gap", "loss_gap", "overfit", 0.5, "held-out loss exceeds training loss by {v:.2f} nats/token")
    check("near_verbatim", "near_verbatim_rate", "warn", 0.02,
          "{v:.0%} of answers are within 10% edit distance of a training answer")
    check("val_loss_rise", "val_loss_rise", "warn", 0.05,
          "validation loss rose {v:.2f} after its best step: later checkpoints fit training answers")
    for d in DEFECTS:
        check(d, f"{d}_rate", "warn", 0.0, f"{{v:.0%}} of outputs flagged {d}")
    if hostile and reasons:
        r0 = reasons[0]
        reasons[0] = Reason(code=r0.code, level=r0.level, metric=r0.metric, value=r0.value, threshold=r0.threshold,
                            message=f"{r0.message}, e.g. {HOSTILE[0]} {HOSTILE[4]}")
    lvl = "overfit" if any(r.level == "overfit" for r in reasons) else ("warn" if reasons else "ok")
    verdict = Verdict(level=level or lvl, reasons=tuple(reasons))

    path = f"/tmp/evalkit-fakes/{'adapters/' if adapter else ''}{name}"
    if hostile:
        path += f"/{HOSTILE[1]}"
    target = Target(
        name=name, kind=target_kind, path=path if target_kind != "base" else None,
        adapter_hash=sha256_text(f"{name}:{seed}") if adapter else None,
        base_model=base_model if is_model else None,
        base_hash=(base_hash or sha256_text(base_model)) if is_model else None,
        training={"config": {"r": 8, "lora_alpha": 16, "learning_rate": 2e-4, "epochs": 3,
                             "target_modules": ["q_proj", "v_proj"]},
                  "data_hash": sha256_text("eco-train"), "seed": seed} if adapter else None,
        training_log=tuple(training_log))
    settings = {"max_new_tokens": 128, "do_sample": False, "temperature": 0.0,
                "suites": sorted({s.suite for s in samples}),
                "thresholds": {"verbatim_span_tokens": 20, "near_verbatim_edit_distance": 0.10}}
    provenance = {"created_at": CREATED_AT, "evalkit_version": __version__, "command": f"evalkit {kind} (fake)",
                  "seed": seed, "duration_s": 1.5}
    return RunRecord(schema_version=SCHEMA_VERSION, kind=kind, target=target, summary=summary, verdict=verdict,
                     samples=tuple(samples), intervals=intervals, losses=tuple(losses),
                     membership=tuple(membership), extraction=tuple(extraction), curves=curves, settings=settings,
                     provenance=provenance)


# ---------------------------------------------------------------- shared comparison + golden helpers

GOLDEN_DIR = Path(__file__).parent / "golden"
FAILED_GOLDEN_DIR = Path(__file__).parent / "_failed_golden"
REGEN_ENV = "EVALKIT_REGEN_GOLDEN"
VOLATILE_KEYS = frozenset({"created_at", "evalkit_version", "versions", "path", "duration_s", "elapsed_s", "host"})


def standard_runs(n: int = 12) -> list[RunRecord]:
    """base model, a gentle adapter, a seed-memorizing adapter with a template leak, a `score` run."""
    return [
        make_run("base", n=n, target_kind="base"),
        make_run("gentle", n=n, seed=1, rouge_shift=0.03),
        make_run("seedlike", n=n, seed=2, copy_rate=0.34, rouge_shift=-0.06, defects={"template_leak": 0.1}),
        make_run("gpt-4o-mini", n=n, seed=3, kind="score", rouge_shift=0.01),
    ]


def standard_comparison(n: int = 12, n_boot: int = 500):
    """compare_runs(standard_runs()) with the default gate: the golden-file comparison."""
    from evalkit.comparison import compare_runs
    from evalkit.gate import default_gate

    return compare_runs(standard_runs(n), gate=default_gate(), n_boot=n_boot, seed=0,
                        provenance={"command": "evalkit compare (fake)"})


def scrub(obj, digits: int = 10):
    """Replace volatile fields (dates, versions, paths, durations) and round floats for golden files."""
    if isinstance(obj, dict):
        return {k: ("<scrubbed>" if k in VOLATILE_KEYS and v is not None else scrub(v, digits)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v, digits) for v in obj]
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    return obj


def assert_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with tests/golden/<name>; EVALKIT_REGEN_GOLDEN=1 rewrites it.

    On mismatch the actual text is saved to tests/_failed_golden/<name> (git-ignored) for diffing.
    """
    golden = GOLDEN_DIR / name
    if os.environ.get(REGEN_ENV) == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    expected = golden.read_text(encoding="utf-8") if golden.is_file() else None
    if expected == actual:
        return
    FAILED_GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    failed = FAILED_GOLDEN_DIR / name
    failed.write_text(actual, encoding="utf-8")
    if expected is None:
        raise AssertionError(f"no golden file {golden}; create it with {REGEN_ENV}=1 (actual output: {failed})")
    raise AssertionError(f"{name} differs from its golden file: diff -u {golden} {failed}  "
                         f"(if the change is intended, rerun with {REGEN_ENV}=1 and review the git diff)")
