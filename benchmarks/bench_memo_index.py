"""memo_index_1e6: verbatim-span search of 10,000 generations against 10^4, 10^5 and 10^6 training answers.

Synthetic English-like data, seeded: a vocabulary of 50,000 made-up lowercase words drawn with a
Zipf(1.1) law (a few very common words, a long tail, like English), answers of 60-140 words
(~100 on average: 10^6 answers ≈ 10^8 tokens), generations of 30-90 words of which one in five
carries a span of 13-40 words copied from a random training answer.

Measured per training-set size: ``SpanIndex.build`` time, the time of ``longest_spans`` for the 10,000
generations, bytes per training token (``index.nbytes / index.n_tokens``). Correctness: every planted
copy is found with at least its planted length, and on a sample the index equals
``brute_force_longest_span`` exactly -- against a 300-answer subset of each set (the pure-Python
brute force is O(query × all tokens): seconds per query at 300 answers, hours at 10^6).

Sizes: tiny 10^3; small 10^4 and 10^5; large 10^4, 10^5 and 10^6 (needs ~6 GiB and a few minutes).
Target: 10^6 answers built and queried in ≤ 30 s on 2 cores, ≤ 8 bytes per training token.
"""

from __future__ import annotations

import gc
import json
import time

import numpy as np

from .runner import Context, row

NAME = "memo_index_1e6"
TARGET = "10^6 answers: build + 10^4 queries ≤ 30 s on 2 cores, ≤ 8 B/token"
SIZES = {"tiny": dict(answers=[1_000], queries=500, brute=3), "small": dict(answers=[10_000, 100_000],
                                                                            queries=10_000, brute=10),
         "large": dict(answers=[10_000, 100_000, 1_000_000], queries=10_000, brute=10)}
SIZES["realistic"] = SIZES["small"]  # the default size of the runner; this benchmark has no model work
VOCAB = 50_000
SUBSET = 300


def vocabulary(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words, seen = [], set()
    while len(words) < VOCAB:
        w = "".join(rng.choice(letters, size=int(rng.integers(2, 10))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return np.array(words, dtype=object)


def zipf_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    ranks = np.arange(1, VOCAB + 1, dtype=np.float64)
    p = ranks ** -1.1
    cdf = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n)), VOCAB - 1)


def make_answers(n: int, vocab: np.ndarray, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(60, 141, size=n)
    ids = zipf_ids(rng, int(lengths.sum()))
    words = vocab[ids]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [(f"t{i}", " ".join(words[bounds[i]:bounds[i + 1]])) for i in range(n)]


def make_queries(n: int, answers: list[tuple[str, str]], vocab: np.ndarray, seed: int,
                 pool: int | None = None) -> tuple[list[str], list[tuple[int, int]]]:
    """Generations; every fifth carries a copied span: returns texts and (query index, planted length)."""
    rng = np.random.default_rng(seed)
    out, planted = [], []
    pool = pool or len(answers)
    for q in range(n):
        words = list(vocab[zipf_ids(rng, int(rng.integers(30, 91)))])
        if q % 5 == 0:
            src = answers[int(rng.integers(0, pool))][1].split(" ")
            length = int(rng.integers(13, 41))
            length = min(length, len(src))
            start = int(rng.integers(0, len(src) - length + 1))
            at = int(rng.integers(0, len(words) + 1))
            words[at:at] = src[start:start + length]
            planted.append((q, length))
        out.append(" ".join(words))
    return out, planted


def _key(m):
    return None if m is None else (m.n_tokens, m.train_index, m.pred_token_start, m.train_token_start)


def one_size(n: int, cfg: dict, vocab: np.ndarray, log) -> dict:
    from evalkit.memorization.span_index import SpanIndex, brute_force_longest_span

    t0 = time.perf_counter()
    answers = make_answers(n, vocab, seed=n)
    queries, planted = make_queries(cfg["queries"], answers, vocab, seed=n + 1)
    gen_s = time.perf_counter() - t0
    gc.collect()
    t0 = time.perf_counter()
    index = SpanIndex.build(answers)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = index.longest_spans(queries)
    query_s = time.perf_counter() - t0
    missed = [q for q, length in planted if found[q] is None or found[q].n_tokens < length]
    flagged = sum(m is not None for m in found)
    # exact equality with brute force on a subset index (see module docstring)
    subset = answers[:SUBSET]
    sub_index = SpanIndex.build(subset)
    sq, _ = make_queries(cfg["brute"], subset, vocab, seed=n + 2)
    t0 = time.perf_counter()
    unequal = [i for i, q in enumerate(sq)
               if _key(sub_index.longest_span(q)) != _key(brute_force_longest_span(q, subset, sub_index.min_detectable))]
    brute_s = time.perf_counter() - t0
    out = {"answers": n, "tokens": index.n_tokens, "build_s": round(build_s, 2), "query_s": round(query_s, 2),
           "total_s": round(build_s + query_s, 2), "bytes_per_token": round(index.nbytes / index.n_tokens, 3),
           "index_mb": round(index.nbytes / 2**20, 1), "queries": len(queries), "flagged": flagged,
           "planted": len(planted), "planted_missed": len(missed), "brute_force_checked": len(sq),
           "brute_force_unequal": len(unequal), "brute_force_s": round(brute_s, 1), "data_gen_s": round(gen_s, 1)}
    log(f"  {NAME} {n:,} answers: {json.dumps(out)}")
    del index, answers, found
    gc.collect()
    return out


def run(ctx: Context) -> dict:
    cfg = SIZES[ctx.size]
    vocab = vocabulary()
    sizes = [one_size(n, cfg, vocab, ctx.log) for n in cfg["answers"]]
    big = sizes[-1]
    correct = all(s["planted_missed"] == 0 and s["brute_force_unequal"] == 0 for s in sizes)
    at_target = big["answers"] >= 1_000_000
    met = (big["total_s"] <= 30 and big["bytes_per_token"] <= 8 and correct) if at_target else None
    summary = "; ".join(f"10^{len(str(s['answers'])) - 1}: build {s['build_s']:.1f} s + query {s['query_s']:.1f} s, "
                        f"{s['bytes_per_token']:.2f} B/token" for s in sizes)
    summary += f"; brute-force equal: {'yes' if correct else 'NO'}"
    if not at_target:
        summary += " (10^6 runs with --size large)"
    return row(NAME, value=big["total_s"], unit=f"s at {big['answers']:,} answers", target=TARGET, met=met,
               detail={"summary": summary, "sizes": sizes, "correct": correct})



