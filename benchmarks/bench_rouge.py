"""rouge_vs_rouge_score: evalkit's ROUGE vs rouge-score on 10,000 English pairs — same values, time ratio.

Pairs are built from the bundled English answers (eco train/val answers and held-out references):
the reference is one answer; the prediction mixes its sentences with another answer's, drops and
repeats words (seeded), so the pairs span low to high overlap as real generations do. Pairs with any
non-ASCII character are left out (rouge-score's tokenizer drops such characters; evalkit keeps them).

    evalkit:     evalkit.metrics.rouge.rouge_batch(predictions, references)      (sentence split inside)
    rouge-score: RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"]).score(ref, pred) per pair,
                 on the same one-sentence-per-line text (prepared before timing)

Values must be equal (all four F1 values of every pair, compared as floats); time is alternated.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .runner import Context, alternate, row, timed

NAME = "rouge_vs_rouge_score"
TARGET = "ratio ≤ 1.0, values equal"
LIMIT = 1.0
SIZES = {"tiny": dict(pairs=200, repeats=1), "small": dict(pairs=10_000, repeats=3),
         "large": dict(pairs=10_000, repeats=5)}
SIZES["realistic"] = SIZES["small"]  # the default size of the runner; this benchmark has no model work
ROOT = Path(__file__).resolve().parent.parent


def english_answers() -> list[str]:
    texts = []
    for p in (ROOT / "benchmarks/eco/train.jsonl", ROOT / "benchmarks/eco/val.jsonl",
              ROOT / "prompts/eco_heldout_en.jsonl"):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                t = d.get("reference") or d["messages"][-1]["content"]
                if t.isascii():
                    texts.append(t)
    return texts


def make_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    from evalkit.metrics.tokenize import sentences

    rng = random.Random(seed)
    texts = english_answers()
    preds, refs = [], []
    for _ in range(n):
        ref, other = rng.choice(texts), rng.choice(texts)
        sents = sentences(ref) + rng.sample(sentences(other), k=min(2, len(sentences(other))))
        rng.shuffle(sents)
        sents = sents[:rng.randint(1, len(sents))]
        words = " ".join(sents).split(" ")
        keep = rng.uniform(0.5, 1.0)
        out = []
        for w in words:
            r = rng.random()
            if r < keep:
                out.append(w)
            elif r < keep + (1 - keep) / 2:
                out.extend([w, w])
        preds.append(" ".join(out))
        refs.append(ref)
    return preds, refs


def run(ctx: Context) -> dict:
    from rouge_score.rouge_scorer import RougeScorer

    from evalkit.metrics.rouge import ROUGE_TYPES, rouge_batch, rouge_input

    cfg = SIZES[ctx.size]
    preds, refs = make_pairs(cfg["pairs"])
    scorer = RougeScorer(list(ROUGE_TYPES))
    split_p = [rouge_input(p) for p in preds]
    split_r = [rouge_input(r) for r in refs]
    out: dict = {}

    def a(i: int) -> float:
        t, out["evalkit"] = timed(lambda: rouge_batch(preds, refs))
        return t

    def b(i: int) -> float:
        t, out["rouge_score"] = timed(lambda: [scorer.score(r, p) for p, r in zip(split_p, split_r)])
        return t

    res = alternate(a, b, ctx.reps(SIZES), ctx.log, NAME)
    mismatches = []
    for k, (e, s) in enumerate(zip(out["evalkit"], out["rouge_score"])):
        for t in ROUGE_TYPES:
            if e[t] != s[t].fmeasure:
                mismatches.append({"pair": k, "type": t, "evalkit": e[t], "rouge_score": s[t].fmeasure})
    equal = not mismatches
    detail = {
        "summary": (f"{len(preds):,} pairs: {res['a_median_s']:.2f} s vs {res['b_median_s']:.2f} s; "
                    f"values {'equal' if equal else f'DIFFER in {len(mismatches)} cases'} (4 types × every pair)"),
        "pairs": len(preds), "evalkit_s": [round(x, 3) for x in res["a_s"]],
        "rouge_score_s": [round(x, 3) for x in res["b_s"]], "ratios": [round(x, 4) for x in res["ratios"]],
        "values_equal": equal, "mismatches": mismatches[:5],
    }
    return row(NAME, ratio=res["ratio"], target=TARGET, met=bool(res["ratio"] <= LIMIT and equal), detail=detail)
