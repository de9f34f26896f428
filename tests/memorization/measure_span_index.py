"""Measure SpanIndex build + query time and memory on synthetic data (not a test; not collected).

    PYTHONPATH=. .venv/bin/python tests/memorization/measure_span_index.py --answers 100000 --queries 10000

Answers: Zipf-distributed pseudo-words (50k vocabulary, 50-150 tokens, capitalised, punctuated).
Queries: ~100-token generations; a third of them copy a 20-token run of some training answer.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from evalkit.memorization.span_index import SpanIndex


def synth(n_docs: int, rng: np.random.Generator, words: np.ndarray, p: np.ndarray, mean_len: int = 100) -> list[str]:
    out = []
    for b in range(0, n_docs, 10_000):  # in batches: keep the generator's own memory peak small
        lens = rng.integers(mean_len // 2, mean_len * 3 // 2, min(10_000, n_docs - b))
        ids = rng.choice(len(words), size=int(lens.sum()), p=p)
        pos = 0
        for n in lens:
            w = words[ids[pos : pos + n]]
            pos += n
            out.append(", ".join(" ".join(w[i : i + 9]) for i in range(0, n, 9)).capitalize() + ".")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact-short", action="store_true", help="also build the short-span suffix array")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(rng.choice(letters, n)) for n in rng.integers(2, 10, 50_000)], dtype=object)
    p = 1.0 / np.arange(1, len(words) + 1) ** 1.05
    p /= p.sum()
    answers = [(f"a{i}", t) for i, t in enumerate(synth(args.answers, rng, words, p))]
    queries = synth(args.queries, rng, words, p)
    for i in range(0, len(queries), 3):  # plant a 20-token copy
        src = answers[int(rng.integers(len(answers)))][1].split()
        s = int(rng.integers(0, max(1, len(src) - 20)))
        queries[i] = queries[i][:200] + " " + " ".join(src[s : s + 20]) + " " + queries[i][200:]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak so far (data generation)
    t0, c0 = time.perf_counter(), time.process_time()
    index = SpanIndex.build(answers, exact_short=args.exact_short)
    t1, c1 = time.perf_counter(), time.process_time()
    found = index.longest_spans(queries, min_tokens=1 if args.exact_short else None)
    t2, c2 = time.perf_counter(), time.process_time()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_found = sum(m is not None and m.n_tokens >= index.min_detectable for m in found)
    print(f"answers={index.n_answers} tokens={index.n_tokens} k={index.k} stride={index.stride} "
          f"min_detectable={index.min_detectable}")
    print(f"wall: build {t1 - t0:.2f} s  query {len(queries)} texts {t2 - t1:.2f} s  total {t2 - t0:.2f} s")
    print(f"cpu:  build {c1 - c0:.2f} s  query {len(queries)} texts {c2 - c1:.2f} s  total {c2 - c0:.2f} s "
          f"(process CPU time, all threads)")
    print(f"index nbytes {index.nbytes / 1e6:.1f} MB = {index.nbytes / index.n_tokens:.2f} B/token "
          f"(text kept by reference: text_nbytes={index.text_nbytes})")
    print(f"peak RSS growth during build+query {(rss1 - rss0) / 1e3:.0f} MB "
          f"({(rss1 - rss0) * 1e3 / index.n_tokens:.2f} B/token, transients included); spans >= {index.min_detectable} "
          f"found for {n_found} of {len(queries)} queries (planted: {len(range(0, len(queries), 3))})")


if __name__ == "__main__":
    main()
