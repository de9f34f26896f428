"""audit_1e5: the whole data audit (``evalkit.audit.audit_data``) of 10^5 training answers against 10^4 validation rows.

Synthetic chat data, seeded: English-like answers (the Zipf vocabulary of ``bench_memo_index``,
30-70 words, ~300 characters) with one in four filled into the templated split's answer frames
(``benchmarks/templated/generate.py``), prompts of 8-25 words. The validation split mixes fresh
answers, fresh templated answers and copies of training answers with a share of their characters
edited that straddles the 0.10 near-duplicate threshold (0 to 0.16), so every branch of the search
is exercised. One held-out suite of 128 prompts with references.

Measured: the audit's wall time (one call of ``audit_data``, the data already in memory) and
``DataAudit.runtime_s``; correctness: the near-duplicate decision of the planted copies nearest the
threshold and of as many other validation rows, against brute force (rapidfuzz computes every
training answer's distance, bounded by the threshold; no candidate filter).

Sizes: tiny 2,000 × 200; small 2·10^4 × 2·10^3; realistic and large 10^5 × 10^4 (the issue's scale).
Target: 10^5 × 10^4 in ≤ 10 s wall on the 2-core CPU.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from .bench_memo_index import vocabulary
from .runner import Context, row

NAME = "audit_1e5"
TARGET = "audit of 10^5 training answers × 10^4 validation rows ≤ 10 s wall on 2 cores, equal to brute force"
SIZES = {"tiny": dict(train=2_000, val=200, brute=50), "small": dict(train=20_000, val=2_000, brute=100),
         "realistic": dict(train=100_000, val=10_000, brute=100)}
SIZES["large"] = SIZES["realistic"]
SUITE = 128

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz "))


class _Writer:
    """Seeded text source: Zipf word runs (the cdf computed once; ``zipf_ids`` recomputes it per call)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.vocab = vocabulary(seed)
        p = np.arange(1, len(self.vocab) + 1, dtype=np.float64) ** -1.1
        self.cdf = np.cumsum(p / p.sum())

    def words(self, lo: int, hi: int) -> str:
        ids = np.searchsorted(self.cdf, self.rng.random(int(self.rng.integers(lo, hi + 1))))
        return " ".join(self.vocab[np.minimum(ids, len(self.vocab) - 1)])

    def templated(self) -> str:
        from .templated.generate import ANSWERS

        frame = ANSWERS[int(self.rng.integers(len(ANSWERS)))]
        return frame.format(challenge=self.words(1, 3).title(), goal=self.words(1, 3), n=int(self.rng.integers(2, 10)))

    def answer(self, templated_share: float) -> str:
        return self.templated() if self.rng.random() < templated_share else self.words(30, 70) + "."


def edited(text: str, share: float, rng: np.random.Generator) -> str:
    """``text`` with about ``share`` of its characters substituted (random positions and letters)."""
    chars = np.array(list(text))
    k = int(round(share * len(chars)))
    if k:
        at = rng.choice(len(chars), size=k, replace=False)
        chars[at] = rng.choice(_LETTERS, size=k)
    return "".join(chars)


def make_data(n_train: int, n_val: int, seed: int = 0):
    """(train, val, suite, planted): Conversations, Conversations, PromptItems, {val index: edit share}."""
    from evalkit.data import Conversation, PromptItem

    w = _Writer(seed)
    rng = w.rng

    def conv(cid: str, user: str, answer: str) -> Conversation:
        return Conversation(id=cid, messages=({"role": "user", "content": user},
                                              {"role": "assistant", "content": answer}))

    train = [conv(f"t{i}", w.words(8, 25) + "?", w.answer(0.25)) for i in range(n_train)]
    val, planted = [], {}
    for i in range(n_val):
        user = w.words(8, 25) + "?"
        if i % 5 == 0:  # a copy of a training answer with 0-16% of its characters edited
            share = float(rng.uniform(0.0, 0.16))
            planted[i] = share
            answer = edited(train[int(rng.integers(n_train))].answer, share, rng)
            if i % 10 == 0:
                user = edited(train[int(rng.integers(n_train))].user, share, rng)
        else:
            answer = w.answer(0.4)
        val.append(conv(f"v{i}", user, answer))
    suite = [PromptItem(id=f"h{i}", suite="synthetic", messages=({"role": "user", "content": w.words(8, 25)},),
                        reference=w.answer(0.0)) for i in range(SUITE)]
    return train, val, suite, planted


def check_against_brute_force(train, val, rows: list[int]) -> dict:
    """The near-duplicate decision (distance <= 0.10) of ``within_many`` for the given validation rows
    against brute force: rapidfuzz computes every training answer's distance (bounded by the threshold with
    ``score_cutoff``: the same decision, ~40x cheaper than unbounded distances), no candidate filter."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    from evalkit.memorization.near_copy import NEAR_VERBATIM_MAX_DISTANCE, NearCopyIndex, normalize_text

    index = NearCopyIndex.build([(c.id, c.answer) for c in train])
    texts = [normalize_text(c.answer) for c in train]
    got = index.within_many([val[i].answer for i in rows])
    unequal = []
    for i, m in zip(rows, got):
        q = normalize_text(val[i].answer)
        d = process.cdist([q], texts, scorer=Levenshtein.normalized_distance, dtype=np.float64, workers=-1,
                          score_cutoff=NEAR_VERBATIM_MAX_DISTANCE + 1e-6)[0]
        want = bool(d.min() <= NEAR_VERBATIM_MAX_DISTANCE)
        if (m is not None) != want or (m is not None and m.distance != Levenshtein.normalized_distance(
                q, texts[m.train_index])):
            unequal.append(val[i].id)
    return {"checked": len(rows), "near": sum(m is not None for m in got), "unequal": unequal}


def run(ctx: Context) -> dict:
    from evalkit.audit import audit_data, catalog_names

    cfg = SIZES[ctx.size]
    t0 = time.perf_counter()
    train, val, suite, planted = make_data(cfg["train"], cfg["val"])
    gen_s = time.perf_counter() - t0
    gc.collect()
    t0 = time.perf_counter()
    audit = audit_data(train, val, [suite], catalog=catalog_names())
    wall_s = time.perf_counter() - t0
    ctx.log(f"  {NAME}: {len(train):,} × {len(val):,} in {wall_s:.2f} s")
    rng = np.random.default_rng(1)
    near_threshold = sorted(planted, key=lambda i: abs(planted[i] - 0.10))[: cfg["brute"] // 2]
    others = rng.choice([i for i in range(len(val)) if i not in planted], size=cfg["brute"] // 2, replace=False)
    brute = check_against_brute_force(train, val, sorted(near_threshold) + sorted(int(i) for i in others))
    met = (wall_s <= 10 and not brute["unequal"]) if cfg["train"] >= 100_000 else None
    detail = {"summary": f"{len(train):,} × {len(val):,}: {wall_s:.1f} s wall; brute-force equal on "
                         f"{brute['checked']} rows: {'yes' if not brute['unequal'] else 'NO'}",
              "train": len(train), "val": len(val), "suite": len(suite), "wall_s": round(wall_s, 2),
              "runtime_s": audit.runtime_s, "data_gen_s": round(gen_s, 1), "summary_values": audit.summary,
              "warnings": [w.code for w in audit.warnings], "brute_force": brute}
    return row(NAME, value=wall_s, unit=f"s at {len(train):,} × {len(val):,}", target=TARGET, met=met, detail=detail)
