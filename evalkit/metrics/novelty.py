"""RAVEN-style n-gram novelty (McCoy et al. 2023, "How much do language models copy from their training data?").

novelty_n of a text = the share of its n-grams (every occurrence counts) that appear in no
training answer. Computed for n in ``NOVELTY_NS`` (1..8) over the word tokens of
:func:`evalkit.metrics.tokenize.tokens` (Hangul/CJK syllables are tokens). The same curve for the
human reference answers is the baseline: people reuse short n-grams too, so only the *gap*
between model and reference curves says "copies more than people" (``novelty_gap_4``).

The index keeps, per n, the sorted unique 64-bit hashes of every training n-gram; n-grams never
cross the boundary between two answers. Hashes are deterministic across processes and machines
(blake2b per token, then a splitmix64-mixed chain per n-gram; Python's ``hash`` is salted per
process), so novelty values are reproducible. Two different n-grams share a hash with probability
about 2**-64 per pair -- negligible next to the sizes of fine-tuning sets.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np

from .spec import NOVELTY_NS
from .tokenize import tokens

__all__ = ["NoveltyIndex", "novelty_summary", "NOVELTY_GAP_N"]

NOVELTY_GAP_N = 4  # novelty_gap_4: 4-grams are the shortest n at which people rarely repeat training text

_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier (2**64 / golden ratio) chaining tokens into an n-gram hash
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finalizer constants (Steele et al. 2014)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@lru_cache(maxsize=1 << 18)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64's finalizer: makes the chained hash non-linear, so structured token sequences
    # (e.g. Thue-Morse-like repeats that break plain polynomial hashes mod 2**64) do not collide.
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def _encode(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token hashes of all texts concatenated, tokens left in each position's text, and text lengths."""
    toks = [tokens(t) for t in texts]
    lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
    ids = np.fromiter((_token_hash(w) for t in toks for w in t), dtype=np.uint64, count=int(lengths.sum()))
    ends = np.cumsum(lengths)
    left = np.repeat(ends, lengths) - np.arange(ends[-1] if len(ends) else 0)
    return ids, left, lengths


def _ngram_hashes(ids: np.ndarray, left: np.ndarray, ns: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per n: (hash of each n-gram that stays inside its text, its start position)."""
    out = {}
    h = ids
    with np.errstate(over="ignore"):  # uint64 arithmetic is meant to wrap
        for n in range(1, max(ns) + 1):
            if n > 1:
                h = _mix(h[:-1] * _P + ids[n - 1:])
            if n in ns:
                starts = np.flatnonzero(left[: len(h)] >= n)
                out[n] = (h[starts], starts)
    return out


class NoveltyIndex:
    """Hashed n-gram sets of the training answers, for n in ``ns``; build once, query many times.

    >>> idx = NoveltyIndex(["carry a reusable cup"])
    >>> idx.novelty("carry a reusable bottle")[2]   # bigrams: carry a, a reusable (seen), reusable bottle (new)
    0.3333333333333333
    """

    def __init__(self, answers: Iterable[str], ns: Sequence[int] = NOVELTY_NS):
        ns = tuple(ns)
        if not ns or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in ns):
            raise ValueError(f"The 'ns' parameter must be a non-empty sequence of positive ints. Got {ns!r} instead.")
        self.ns = tuple(sorted(set(ns)))
        ids, left, lengths = _encode(answers)
        self.n_answers = len(lengths)
        self._sets = {n: np.unique(h) for n, (h, _) in _ngram_hashes(ids, left, self.ns).items()}

    def __len__(self) -> int:
        return self.n_answers

    def _counts(self, texts: Sequence[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per n: (novel n-grams, all n-grams) of each text."""
        ids, left, lengths = _encode(texts)
        text_of = np.repeat(np.arange(len(lengths)), lengths)
        out = {}
        for n, (h, starts) in _ngram_hashes(ids, left, self.ns).items():
            known = self._sets[n]
            seen = np.zeros(len(h), dtype=bool)
            if len(known):
                pos = np.minimum(np.searchsorted(known, h), len(known) - 1)
                seen = known[pos] == h
            owner = text_of[starts]
            total = np.bincount(owner, minlength=len(lengths))
            novel = np.bincount(owner[~seen], minlength=len(lengths))
            out[n] = (novel, total)
        return out

    def counts(self, texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        """(novel n-grams, all n-grams) of each text, for pooled shares over resampled texts."""
        if n not in self.ns:
            raise ValueError(f"The 'n' parameter must be one of {list(self.ns)}. Got {n!r} instead.")
        return self._counts(list(texts))[n]

    def novelty_many(self, texts: Sequence[str]) -> list[dict[int, Optional[float]]]:
        """:meth:`novelty` of each text, computed in one vectorized pass."""
        texts = list(texts)
        counts = self._counts(texts)
        return [{n: (int(counts[n][0][i]) / int(counts[n][1][i]) if counts[n][1][i] else None) for n in self.ns}
                for i in range(len(texts))]

    def novelty(self, text: str) -> dict[int, Optional[float]]:
        """Per n: share of the text's n-grams (occurrences) in no training answer; None if it has none."""
        return self.novelty_many([text])[0]

    def corpus_novelty(self, texts: Iterable[str]) -> dict[int, Optional[float]]:
        """Per n: the same share pooled over all n-grams of all texts (the summary value)."""
        counts = self._counts(list(texts))
        out: dict[int, Optional[float]] = {}
        for n in self.ns:
            novel, total = int(counts[n][0].sum()), int(counts[n][1].sum())
            out[n] = novel / total if total else None
        return out


def novelty_summary(index: NoveltyIndex, predictions: Iterable[str],
                    references: Optional[Iterable[str]] = None) -> dict[str, float]:
    """Summary metrics ``novelty_<n>``, ``reference_novelty_<n>`` and ``novelty_gap_4``.

    Pooled (:meth:`NoveltyIndex.corpus_novelty`) over the predictions and over the references.
    A metric whose value is undefined (no n-grams of that size, no references) is left out.
    """
    out: dict[str, float] = {}
    model = index.corpus_novelty(predictions)
    out.update({f"novelty_{n}": v for n, v in model.items() if v is not None})
    if references is not None:
        human = index.corpus_novelty(references)
        out.update({f"reference_novelty_{n}": v for n, v in human.items() if v is not None})
        m, h = model.get(NOVELTY_GAP_N), human.get(NOVELTY_GAP_N)
        if m is not None and h is not None:
            out[f"novelty_gap_{NOVELTY_GAP_N}"] = m - h
    return out
