"""Approximate copying: the training answer nearest to a generation by normalized edit distance.

``normalized_edit_distance(a, b)`` is the Levenshtein distance between the normalized texts
(lowercased, whitespace runs collapsed to one space, ends stripped) divided by the longer one's
length: 0 = identical, 1 = nothing in common; two empty texts are at distance 0.

A generation is flagged ``near_verbatim`` when some training answer is within
``NEAR_VERBATIM_MAX_DISTANCE = 0.10`` -- the "approximate memorization" threshold of the Gemma and
Gemini reports (10% edit distance, after Ippolito et al. 2022, "Preventing verbatim memorization
in language models gives a false sense of privacy"). It catches copies with a few words swapped,
which the verbatim span (span_index.py) misses when the swaps fall every dozen words.

Two queries, both exact within the threshold (the same decision and distance as brute force):

* ``within_many(texts)`` (the data audit): for each text *a* training answer within the threshold,
  or None. It stops at the first candidate within the threshold (candidates are tried most shared
  q-grams first), so the answer it names is near but not necessarily the nearest
  (``nearest=True``: the nearest within the threshold).
* ``nearest_many(texts)`` (per-sample copying and the report's pager): the nearest training answer;
  exact within the threshold, and above it too while the index holds at most ``EXACT_NEAREST_MAX``
  answers (then every distance is computed, bounded by the best candidate's); beyond that, above the
  threshold it is the nearest among the best-ranked candidates (``exact=False``).
  ``exhaustive=True`` computes every distance instead (~10 us per 300-character pair).

Ties: the lowest training-answer index (``within_many``: among the candidates tried together).

The search (why it is exact: ``_prefix_bound``). Answers are indexed by the hash buckets of their
character 4-grams. For a query, exact duplicates (after normalization) come from a dict. Otherwise
the candidates are the answers in the query's length window that share enough of the query's
*rarest* buckets (a prefix of them, rarest first), then those whose character counts allow the
distance (``_histogram_bound``); their distances are computed with rapidfuzz's Levenshtein with
``score_cutoff`` (a bounded, banded computation). ``within_many`` first tries the
answers sharing the query's rare buckets only (cheap), and reads the long posting lists of common
buckets only when that finds nothing. Why not MinHash/LSH: it misses pairs by design; the audit's
rates must equal brute force.
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np
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
_BUCKET_BITS = 20  # q-grams are hashed into at most 2^20 buckets (a bucket clash only weakens the filter)
_MIN_BUCKET_BITS = 10  # small indexes use fewer buckets (about two per q-gram occurrence): cheaper to build
_RARE_DF = 64  # within_many's first stage reads only buckets in at most this many answers
_FALLBACK = 16  # answers ranked by shared q-grams whose distance bounds the exact search above the threshold
_HIST_CLASSES = 64  # character classes of the frequency-distance bound checked before each edit distance
_VERIFY_CHUNK = 64  # within_many: candidates whose distances are computed together before it may stop
_BATCH = 256  # queries whose q-grams are hashed together
_EPS = 1e-9  # float slack of the length bounds
_SLACK = 1e-6  # of rapidfuzz's score_cutoff, which can drop a distance equal to it (exact checks follow)
EXACT_NEAREST_MAX = 20_000  # nearest_many is exact above the threshold up to this many answers


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


def _prefix_bound(la: int, ga: int, n_prefix: int, lb: np.ndarray, gb: np.ndarray, hits: np.ndarray,
                  tau: float) -> np.ndarray:
    """True for every answer b that could be within normalized distance tau of a (and some others).

    ``hits``: how many of the ``n_prefix`` buckets of a's prefix (any subset of G(a)) b holds.
    Proof that an answer within tau always passes. Let e = ED(a, b) <= e_b = floor(tau * max(|a|, |b|)).
    (1) Each edit changes a length by at most one: ||a| - |b|| <= e.
    (2) Let G(x) be the set of hash buckets of the q-grams of x. In an optimal alignment a
        substitution or deletion at position p touches only the q windows of a that start in
        [p - q + 1, p], an insertion only q - 1 of them, so at most q*e of a's q-gram occurrences are
        touched; every untouched occurrence appears unchanged in b. A bucket of G(a) can be missing
        from G(b) only if all its occurrences were touched, and distinct missing buckets need
        distinct touched occurrences, so at most q*e buckets of G(a) -- and so of any subset of it
        -- are missing from G(b): hits >= n_prefix - q*e (Ukkonen's q-gram lemma, on sets of
        buckets; hashing into buckets only loses information, both sides see the same buckets).
        When the prefix is all of G(a), the same holds with a and b swapped: hits >= |G(b)| - q*e.
    So with a prefix of q * e_max + 1 buckets (e_max the largest e_b in a's length window) every
    answer within tau shares at least one of them: only the answers in the prefix buckets' posting
    lists can pass, and the query reads no other list.
    """
    e = _max_edits(la, lb, tau)
    need = n_prefix - _Q * e
    if n_prefix >= ga:
        need = np.maximum(ga, gb) - _Q * e
    return (np.abs(lb - la) <= e) & (hits >= need)


def _gram_buckets(texts: Sequence[str], bits: int = _BUCKET_BITS) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) of every q-gram occurrence of every text (repeats kept), one numpy pass over all texts."""
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
    return rows, (hh >> np.uint64(64 - bits)).astype(np.int64)


def _char_histograms(texts: Sequence[str]) -> np.ndarray:
    """Per text, how many of its characters fall in each of _HIST_CLASSES classes (code point mod the
    class count; uint16, saturating only beyond 65535 characters per class)."""
    out = np.zeros((len(texts), _HIST_CLASSES), dtype=np.uint16)
    lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    if lens.sum():
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
        rows = np.repeat(np.arange(len(texts)), lens)
        counts = np.bincount(rows * _HIST_CLASSES + codes % _HIST_CLASSES, minlength=len(texts) * _HIST_CLASSES)
        out[:] = np.minimum(counts, np.iinfo(np.uint16).max).reshape(len(texts), _HIST_CLASSES)
    return out


def _histogram_bound(ha: np.ndarray, la: int, hb: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """A lower bound on the edit distance from the character counts (the frequency distance): an edit
    adds at most one character and removes at most one, so with P (N) the characters a has more (fewer)
    of than b, ED >= max(P, N) = (L1 + |la - lb|) / 2. Merging characters into classes only lowers
    L1, so the bound stays a bound; saturated counts (> 65535 of a class) can only lower it too."""
    l1 = np.abs(hb.astype(np.int32) - ha.astype(np.int32)).sum(axis=1)
    return (l1 + np.abs(lb - la)) // 2


def _distinct(major: np.ndarray, minor: np.ndarray, minor_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (major, minor) pairs sorted by major then minor (sort + drop repeats: numpy 2's
    hash-based np.unique is ~10x slower on 10^6-10^7 int64)."""
    packed = np.sort((major << minor_bits) | minor)
    packed = packed[np.concatenate([[True], packed[1:] != packed[:-1]])] if len(packed) else packed
    return packed >> minor_bits, packed & ((1 << minor_bits) - 1)


def _gather(indptr: np.ndarray, postings: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """The posting lists of ``buckets``, concatenated (one vectorized gather)."""
    starts, lens = indptr[buckets], indptr[buckets + 1] - indptr[buckets]
    total = int(lens.sum())
    if not total:
        return np.zeros(0, postings.dtype)
    offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return postings[np.arange(total) + offsets]


class NearCopyIndex:
    """Training answers prepared for nearest-neighbour search by normalized edit distance."""

    def __init__(self, ids: list[str], texts: list[str], rows: np.ndarray, buckets: np.ndarray, bits: int,
                 max_distance: float):
        # Use NearCopyIndex.build(). rows/buckets: the distinct (answer, bucket) pairs, sorted by bucket;
        # bits: 2^bits buckets.
        self._ids, self._texts = ids, texts
        self._text_arr = np.array(texts, dtype=object)
        self._lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        self._by_len = np.argsort(self._lens, kind="stable")
        self._sorted_lens = self._lens[self._by_len]
        rank = np.empty(len(texts), np.int64)
        rank[self._by_len] = np.arange(len(texts))
        # Posting lists hold length ranks (positions in _by_len): a length window is a range of ranks.
        self._bits = bits
        self._df = np.bincount(buckets, minlength=1 << bits)
        self._indptr = np.concatenate([[0], np.cumsum(self._df)])
        self._postings = rank[rows].astype(np.int32)
        self._n_grams = np.bincount(rows, minlength=len(texts))[self._by_len]  # by length rank
        self._hists = _char_histograms(texts)[self._by_len]  # by length rank
        self._first: dict[str, int] = {}
        for i, t in enumerate(texts):
            self._first.setdefault(t, i)
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
        grams = sum(max(len(t) - _Q + 1, 0) for t in texts)
        bits = min(_BUCKET_BITS, max(_MIN_BUCKET_BITS, (2 * grams).bit_length()))
        rows, buckets = _gram_buckets(texts, bits)
        buckets, rows = _distinct(buckets, rows, 32)
        return cls(ids, texts, rows, buckets, bits, max_distance)

    def __len__(self) -> int:
        return len(self._ids)

    def answer(self, index: int) -> tuple[str, str]:
        """(id, normalized text) of training answer ``index``."""
        return self._ids[index], self._texts[index]

    def nearest(self, text: str, exhaustive: bool = False) -> Optional[NearestMatch]:
        """Nearest training answer to ``text``; None only when the index is empty."""
        return self.nearest_many([text], exhaustive=exhaustive)[0]

    def nearest_many(self, texts: Sequence[str], exhaustive: bool = False) -> list[Optional[NearestMatch]]:
        """``nearest`` for many texts (see the module docstring)."""
        norm = self._check(texts)
        if not self._ids:
            return [None] * len(texts)
        if exhaustive:
            return [self._exhaustive(a) for a in norm]
        return [m if m is not None else self._above(a, g, d) for a, g, d, m in self._searched(norm, first=False)]

    def within_many(self, texts: Sequence[str], nearest: bool = False) -> list[Optional[NearestMatch]]:
        """For each text a training answer within ``max_distance``, or None: the first one found (not
        necessarily the nearest), or with ``nearest`` the nearest (every candidate's distance computed)."""
        norm = self._check(texts)
        if not self._ids:
            return [None] * len(texts)
        return [m for _, _, _, m in self._searched(norm, first=not nearest)]

    @staticmethod
    def _check(texts: Sequence[str]) -> list[str]:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str. Got {type(t).__name__} instead.")
        return [normalize_text(t) for t in texts]

    def _searched(self, norm: list[str], first: bool) -> list[tuple]:
        """(text, its buckets rarest first, their df, match within the threshold or None) per text."""
        return [row for b in range(0, len(norm), _BATCH) for row in self._search_batch(norm[b : b + _BATCH], first)]

    def _search_batch(self, batch: list[str], first: bool) -> list[tuple]:
        rows, buckets = _distinct(*_gram_buckets(batch, self._bits), self._bits)
        df = self._df[buckets]
        order = np.lexsort((buckets, df, rows))
        rows, buckets, df = rows[order], buckets[order], df[order]
        bounds = np.searchsorted(rows, np.arange(len(batch) + 1))
        out = []
        for i, a in enumerate(batch):
            g, d = buckets[bounds[i] : bounds[i + 1]], df[bounds[i] : bounds[i + 1]]
            at = self._first.get(a)
            out.append((a, g, d, self._match(at, 0.0) if at is not None else self._search(a, g, d, first)))
        return out

    def _match(self, index: int, distance: float, exact: bool = True) -> NearestMatch:
        return NearestMatch(self._ids[index], int(index), float(distance), exact)

    def _window(self, la: int, tau: float) -> tuple[int, int]:
        """Length ranks [w0, w1) of the answers whose length allows a distance <= tau."""
        lo_len = math.floor(la * (1 - tau) - _EPS)
        hi_len = math.ceil(la / (1 - tau) + _EPS) if tau < 1 else np.iinfo(np.int64).max
        return (int(np.searchsorted(self._sorted_lens, lo_len, side="left")),
                int(np.searchsorted(self._sorted_lens, hi_len, side="right")))

    def _search(self, a: str, g: np.ndarray, d: np.ndarray, first: bool) -> Optional[NearestMatch]:
        """The answer within the threshold (the nearest, or with ``first`` the first found), or None."""
        tau, la, ga = self.max_distance, len(a), len(g)
        w0, w1 = self._window(la, tau)
        if w0 >= w1:
            return None
        e_max = int(_max_edits(la, self._sorted_lens[w1 - 1], tau))
        n_prefix = min(ga, _Q * e_max + 1)
        tried = np.zeros(0, np.int64)
        if first:
            # Stage 1: the rare part of the prefix. Its bound (hits >= k - q*e) holds for any subset
            # of G(a), so it only prunes answers that cannot be within tau; finding one ends the search.
            k = int(np.searchsorted(d[:n_prefix], _RARE_DF, side="right"))
            if 0 < k < n_prefix:
                ranks, hits = np.unique(_gather(self._indptr, self._postings, g[:k]), return_counts=True)
                inside = (ranks >= w0) & (ranks < w1)
                ranks, hits = ranks[inside], hits[inside]
                ok = _prefix_bound(la, ga, k, self._sorted_lens[ranks], self._n_grams[ranks], hits, tau)
                tried = ranks[ok]
                m = self._verify(a, tried, hits[ok], first=True)
                if m is not None:
                    return m
        # Stage 2: the whole prefix, every answer of the length window.
        hits = np.bincount(_gather(self._indptr, self._postings, g[:n_prefix]), minlength=len(self))[w0:w1]
        ok = _prefix_bound(la, ga, n_prefix, self._sorted_lens[w0:w1], self._n_grams[w0:w1], hits, tau)
        ranks = np.flatnonzero(ok) + w0
        if len(tried):
            keep = ~np.isin(ranks, tried)
            ranks = ranks[keep]
        return self._verify(a, ranks, hits[ranks - w0], first=first)

    def _verify(self, a: str, ranks: np.ndarray, hits: np.ndarray, first: bool) -> Optional[NearestMatch]:
        """Exact distances of the candidates (length ranks); the nearest within the threshold (ties: lowest
        index), or with ``first`` the nearest of the first chunk (most shared buckets first) holding one."""
        if not len(ranks):
            return None
        la = len(a)
        lb = self._sorted_lens[ranks]
        near = _histogram_bound(_char_histograms([a])[0], la, self._hists[ranks], lb) <= _max_edits(la, lb, self.max_distance)
        ranks, hits = ranks[near], hits[near]
        idx = self._by_len[ranks]
        if first:
            order = np.lexsort((idx, -hits))
            chunks = [idx[order][s : s + _VERIFY_CHUNK] for s in range(0, len(idx), _VERIFY_CHUNK)]
        else:
            chunks = [np.sort(idx)]
        for c in chunks:
            dist = process.cdist([a], self._text_arr[c], scorer=Levenshtein.normalized_distance,
                                 score_cutoff=self.max_distance + _SLACK, dtype=np.float64)[0]
            inside = dist <= self.max_distance
            if inside.any():
                best = min(zip(dist[inside], c[inside]))  # nearest, then lowest index
                return self._match(best[1], best[0])
        return None

    def _above(self, a: str, g: np.ndarray, d: np.ndarray) -> NearestMatch:
        """Nearest answer when none is within the threshold: bounded by the best-ranked candidates'
        distance, then (up to EXACT_NEAREST_MAX answers) every distance under that bound."""
        at = int(np.searchsorted(self._sorted_lens, len(a)))
        top = np.arange(max(0, at - _FALLBACK), min(len(self), at + _FALLBACK))  # closest in length
        if len(self._ids) > EXACT_NEAREST_MAX:  # and the answers sharing most of the rarest buckets
            n = int(np.searchsorted(np.cumsum(d), 1 << 16, side="right")) + 1  # bounded posting reads
            ranks, hits = np.unique(_gather(self._indptr, self._postings, g[:n]), return_counts=True)
            top = np.concatenate([top, ranks[np.argsort(-hits, kind="stable")[:_FALLBACK]]])
        top = self._by_len[np.unique(top)]
        dist = process.cdist([a], self._text_arr[top], scorer=Levenshtein.normalized_distance, dtype=np.float64)[0]
        best = min(zip(dist, top))
        if len(self._ids) > EXACT_NEAREST_MAX:
            return self._match(best[1], best[0], exact=False)
        return self._exhaustive(a, bound=float(best[0]))

    def _exhaustive(self, a: str, bound: Optional[float] = None) -> NearestMatch:
        d = process.cdist([a], self._texts, scorer=Levenshtein.normalized_distance, dtype=np.float64, workers=-1,
                          score_cutoff=None if bound is None else min(1.0, bound + _SLACK))[0]
        best = int(np.argmin(d))
        return self._match(best, d[best])


def brute_force_nearest(text: str, answers: Iterable[tuple[str, str]]) -> Optional[NearestMatch]:
    """Reference for tests: every distance with ``normalized_edit_distance``, lowest index on ties."""
    best = None
    for i, (answer_id, answer) in enumerate(answers):
        d = normalized_edit_distance(text, answer)
        if best is None or d < best.distance:
            best = NearestMatch(answer_id, i, d, True)
    return best
