"""Approximate copying: the training answer nearest to a generation by normalized edit distance.

``normalized_edit_distance(a, b)`` is the Levenshtein distance between the normalized texts
(lowercased, whitespace runs collapsed to one space, ends stripped) divided by the longer one's
length: 0 = identical, 1 = nothing in common; two empty texts are at distance 0.

A generation is flagged ``near_verbatim`` when some training answer is within
``NEAR_VERBATIM_MAX_DISTANCE = 0.10`` -- the "approximate memorization" threshold of the Gemma and
Gemini reports (10% edit distance, after Ippolito et al. 2022, "Preventing verbatim memorization
in language models gives a false sense of privacy"). It catches copies with a few words swapped,
which the verbatim span (span_index.py) misses when the swaps fall every dozen words.

``NearCopyIndex.nearest(text)`` is exact whenever the nearest answer is within the threshold: it
filters candidates with a length bound and a q-gram count bound that no answer within the
threshold can fail (proof in ``_may_be_within``), then computes exact distances with rapidfuzz.
Above the threshold it reports the nearest among the best-ranked candidates (``exact=False``);
``exhaustive=True`` computes every distance instead (~10 us per 300-character pair).
Ties: the lowest training-answer index.
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np
import scipy.sparse as sp
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .span_index import _check_pair  # the same (id, text) validation and messages

__all__ = [
    "NEAR_VERBATIM_MAX_DISTANCE",
    "normalize_text",
    "normalized_edit_distance",
    "NearestMatch",
    "NearCopyIndex",
    "brute_force_nearest",
]

NEAR_VERBATIM_MAX_DISTANCE = 0.10

_Q = 4  # character q-gram length of the filter
_BUCKET_BITS = 20  # q-grams are hashed into 2^20 buckets (a bucket clash only weakens the filter)
_STOP_FRACTION = 0.05  # buckets in more than 5% of answers (and > _STOP_MIN_DF) are not indexed
_STOP_MIN_DF = 50
_FALLBACK = 16  # answers ranked by shared q-grams whose exact distance is computed above the threshold
_BATCH = 256  # queries per sparse product
_EPS = 1e-9


def normalize_text(text: str) -> str:
    """Lowercase and collapse whitespace: the text edit distance is computed on."""
    return " ".join(text.lower().split())


def normalized_edit_distance(a: str, b: str) -> float:
    """Levenshtein(normalize(a), normalize(b)) / max(len); 0 identical, 1 disjoint, both empty -> 0."""
    return Levenshtein.normalized_distance(normalize_text(a), normalize_text(b))


class NearestMatch(NamedTuple):
    train_id: str
    train_index: int  # position of the answer in the order build() saw them
    distance: float  # normalized edit distance
    exact: bool  # True: no training answer is nearer (always so when distance <= the threshold)


def _max_edits(la: np.ndarray | int, lb: np.ndarray | int, tau: float):
    """Largest edit count e with e / max(la, lb) <= tau (a little generous against float rounding)."""
    return np.floor(tau * np.maximum(la, lb) + _EPS).astype(np.int64)


def _may_be_within(la: int, ga: int, lb: np.ndarray, gb: np.ndarray, shared: np.ndarray, tau: float) -> np.ndarray:
    """True for every answer b that could be within normalized distance tau of a (and some others).

    Proof that an answer within tau always passes. Let e = ED(a, b) <= tau * max(|a|, |b|).
    (1) Each edit changes a length by at most one: ||a| - |b|| <= e.
    (2) Let G(x) be the set of hash buckets of the q-grams of x (without stop buckets). In an
        optimal alignment a substitution or deletion at position p touches only the q windows of
        a that start in [p - q + 1, p], an insertion only q - 1 of them, so at most q*e of a's q-gram
        occurrences are touched; every untouched occurrence appears unchanged in b. A bucket of
        G(a) can be missing from G(b) only if all its occurrences were touched, and distinct
        missing buckets need distinct touched occurrences, so |G(a) & G(b)| >= |G(a)| - q*e.
        The same holds with a and b swapped (Ukkonen's q-gram lemma, on sets of buckets). Hashing
        q-grams into buckets and dropping stop buckets only loses information, never makes a
        true pair fail: both sides see the same buckets.
    Hence shared >= max(|G(a)|, |G(b)|) - q * e_max with e_max = floor(tau * max(|a|, |b|)).
    """
    e = _max_edits(la, lb, tau)
    return (np.abs(lb - la) <= e) & (shared >= np.maximum(ga, gb) - _Q * e)


def _gram_pairs(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) of every distinct q-gram bucket of every text, one numpy pass over all texts."""
    lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    n_grams = np.maximum(lens - _Q + 1, 0)
    if not n_grams.sum():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    h = np.zeros(len(codes) - _Q + 1, dtype=np.uint64)
    for j in range(_Q):  # polynomial hash of the q code points starting at each position
        h *= np.uint64(0x100000001B3)
        h += codes[j : len(codes) - _Q + 1 + j]
    rows = np.repeat(np.arange(len(texts)), n_grams)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(n_grams) - n_grams - starts, n_grams)
    hh = h[pos]
    hh ^= hh >> np.uint64(31)
    hh *= np.uint64(0x9E3779B97F4A7C15)
    buckets = (hh >> np.uint64(64 - _BUCKET_BITS)).astype(np.int64)
    # sort + drop repeats: numpy 2's hash-based np.unique is ~10x slower on 10^6-10^7 int64
    packed = np.sort((rows << _BUCKET_BITS) | buckets)
    packed = packed[np.concatenate([[True], packed[1:] != packed[:-1]])]
    return packed >> _BUCKET_BITS, packed & ((1 << _BUCKET_BITS) - 1)


class NearCopyIndex:
    """Training answers prepared for nearest-neighbour search by normalized edit distance."""

    def __init__(self, ids: list[str], texts: list[str], grams: sp.csr_matrix, n_grams: np.ndarray,
                 stop: np.ndarray, max_distance: float):
        # Use NearCopyIndex.build().
        self._ids, self._texts = ids, texts
        self._lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        self._by_len = np.argsort(self._lens, kind="stable")
        self._sorted_lens = self._lens[self._by_len]
        self._grams_t = grams  # buckets x answers (CSR), for query @ grams_t
        self._n_grams = n_grams
        self._stop = stop
        self.max_distance = max_distance

    @classmethod
    def build(cls, answers: Iterable[tuple[str, str]], *,
              max_distance: float = NEAR_VERBATIM_MAX_DISTANCE) -> "NearCopyIndex":
        """Index (id, text) pairs. ``max_distance``: the flag threshold the search is exact for."""
        if not 0.0 <= max_distance < 1.0:
            raise ValueError(f"The 'max_distance' parameter must be in [0, 1). Got {max_distance!r} instead.")
        ids, texts = [], []
        for i, item in enumerate(answers):
            answer_id, text = _check_pair(i, item)
            ids.append(answer_id)
            texts.append(normalize_text(text))
        rows, cols = _gram_pairs(texts)
        df = np.bincount(cols, minlength=1 << _BUCKET_BITS)
        stop = df > max(_STOP_MIN_DF, _STOP_FRACTION * len(texts))
        keep = ~stop[cols]
        rows, cols = rows[keep], cols[keep]
        grams_t = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (cols, rows)),
                                shape=(1 << _BUCKET_BITS, len(texts)))
        n_grams = np.bincount(rows, minlength=len(texts))
        return cls(ids, texts, grams_t, n_grams, stop, max_distance)

    def __len__(self) -> int:
        return len(self._ids)

    def answer(self, index: int) -> tuple[str, str]:
        """(id, normalized text) of training answer ``index``."""
        return self._ids[index], self._texts[index]

    def nearest(self, text: str, exhaustive: bool = False) -> Optional[NearestMatch]:
        """Nearest training answer to ``text``; None only when the index is empty."""
        return self.nearest_many([text], exhaustive=exhaustive)[0]

    def nearest_many(self, texts: Sequence[str], exhaustive: bool = False) -> list[Optional[NearestMatch]]:
        """``nearest`` for many texts (one sparse product per batch of queries)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str. Got {type(t).__name__} instead.")
        if not self._ids:
            return [None] * len(texts)
        norm = [normalize_text(t) for t in texts]
        if exhaustive:
            return [self._exhaustive(a) for a in norm]
        out: list[Optional[NearestMatch]] = []
        for b in range(0, len(norm), _BATCH):
            batch = norm[b : b + _BATCH]
            rows, cols = _gram_pairs(batch)
            keep = ~self._stop[cols]
            rows, cols = rows[keep], cols[keep]
            q = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(batch), 1 << _BUCKET_BITS))
            shared = (q @ self._grams_t).tocsr()  # queries x answers: shared bucket counts
            g_q = np.bincount(rows, minlength=len(batch))
            for i, a in enumerate(batch):
                lo, hi = shared.indptr[i], shared.indptr[i + 1]
                out.append(self._search(a, int(g_q[i]), shared.indices[lo:hi], shared.data[lo:hi]))
        return out

    def _search(self, a: str, ga: int, cols: np.ndarray, counts: np.ndarray) -> NearestMatch:
        tau, la = self.max_distance, len(a)
        cand = cols[_may_be_within(la, ga, self._lens[cols], self._n_grams[cols], counts, tau)]
        # Answers sharing no bucket at all pass only if max(ga, gb) <= q * e_max: look for them in
        # the length window, but only when that is possible at all.
        lo_len = math.floor(la * (1 - tau) - _EPS)
        hi_len = math.ceil(la / (1 - tau) + _EPS)
        if ga <= _Q * _max_edits(la, hi_len, tau):
            w0 = np.searchsorted(self._sorted_lens, lo_len, side="left")
            w1 = np.searchsorted(self._sorted_lens, hi_len, side="right")
            win = self._by_len[w0:w1]
            zero = _may_be_within(la, ga, self._lens[win], self._n_grams[win], np.zeros(len(win), np.int64), tau)
            cand = np.union1d(cand, win[zero])
        cand = np.unique(cand)  # sorted: the first minimum below is the lowest index
        if len(cand):
            d = process.cdist([a], [self._texts[j] for j in cand], scorer=Levenshtein.normalized_distance,
                              score_cutoff=tau, dtype=np.float64)[0]
            best = int(np.argmin(d))  # first minimum = lowest index (cand is sorted)
            if d[best] <= tau:
                return NearestMatch(self._ids[cand[best]], int(cand[best]), float(d[best]), True)
        # Nothing within the threshold: rank the answers sharing buckets by the share they have
        # in common, pad with the answers closest in length, and compute exact distances for the
        # best few (cost independent of the number of answers).
        if len(self._ids) <= _FALLBACK:
            return self._exhaustive(a)
        share = counts / np.maximum(np.maximum(ga, self._n_grams[cols]), 1)
        top = cols[np.argsort(-share, kind="stable")[:_FALLBACK]]
        if len(top) < _FALLBACK:
            at = int(np.searchsorted(self._sorted_lens, la))
            top = np.concatenate([top, self._by_len[max(0, at - _FALLBACK) : at + _FALLBACK]])
        top = np.unique(top)
        d = process.cdist([a], [self._texts[j] for j in top], scorer=Levenshtein.normalized_distance,
                          dtype=np.float64)[0]
        best = int(np.argmin(d))
        return NearestMatch(self._ids[top[best]], int(top[best]), float(d[best]), False)

    def _exhaustive(self, a: str) -> NearestMatch:
        d = process.cdist([a], self._texts, scorer=Levenshtein.normalized_distance, dtype=np.float64, workers=-1)[0]
        best = int(np.argmin(d))
        return NearestMatch(self._ids[best], best, float(d[best]), True)


def brute_force_nearest(text: str, answers: Iterable[tuple[str, str]]) -> Optional[NearestMatch]:
    """Reference for tests: every distance with ``normalized_edit_distance``, lowest index on ties."""
    best = None
    for i, (answer_id, answer) in enumerate(answers):
        d = normalized_edit_distance(text, answer)
        if best is None or d < best.distance:
            best = NearestMatch(answer_id, i, d, True)
    return best
