"""Answer skeletons: the frame an answer keeps once its slot values are masked.

Templated chat data ("I recommend the {item} for your {goal}. ... Good luck!") puts the same frame
around different words. Neither the verbatim span index (needs 13 shared tokens in a row) nor the
10% edit-distance test (the slot words differ) sees a model that answers a *new* prompt with a
training frame around new words. The skeleton does:

1. the text is split into word tokens (``metrics.tokenize.tokens``: lowercased, no punctuation);
2. catalog names (the challenge names of the data's catalog), matched as whole token sequences, longest
   first, become a slot;
3. a token stays when it is a *frame word* -- an English stop word (scikit-learn's list) or a word
   found in at least ``FRAME_MIN_SHARE`` of the training answers (and in ``FRAME_MIN_COUNT`` of
   them): a template's fixed words are exactly those that recur across answers; everything else
   (content words, numbers: any token with a digit) becomes the slot ``_``;
4. consecutive slots collapse into one (slot fillers vary in length: "the internet" vs "AirBnB").

A skeleton with fewer than ``MIN_FRAME_WORDS`` frame words is ``None``: too short to be evidence
of a shared template (and a one-sentence answer in a script without stop words would otherwise
collapse into "_").

A *template* is a skeleton that at least ``MIN_TEMPLATE_COUNT`` = 2 training answers share (one
answer's frame is no template). A text *matches* when its skeleton is within normalized edit distance
``MATCH_MAX_DISTANCE`` = 0.10 of a template's, the near-copy threshold applied to the frame instead of
the text; the search is the near-copy index over the distinct templates (near_copy.py), exact within
the threshold.

Vectorized for 10^5 answers: tokens are 64-bit keys (``span_index.token_keys``, the same tokenizer),
frame words and catalog names are looked up as keys with numpy, and a skeleton string is built only
once per text from arrays; word-frequency counts sort keys instead of filling Counters.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ..metrics.tokenize import tokens
from .near_copy import NearCopyIndex, NearestMatch
from .span_index import ngram_hashes, token_keys

__all__ = ["SLOT", "FRAME_MIN_SHARE", "FRAME_MIN_COUNT", "MIN_FRAME_WORDS", "MATCH_MAX_DISTANCE",
           "MIN_TEMPLATE_COUNT", "SkeletonMasker", "SkeletonIndex"]

SLOT = "_"
FRAME_MIN_SHARE = 0.10
FRAME_MIN_COUNT = 3
MIN_FRAME_WORDS = 6
MATCH_MAX_DISTANCE = 0.10
MIN_TEMPLATE_COUNT = 2


def _has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _single_token_keys(words: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The words that are one token each, and their keys."""
    kept = [w for w in words if tokens(w) == [w]]
    keys, _ = token_keys(kept)
    return kept, keys


class SkeletonMasker:
    """Turns texts into their skeletons (see the module docstring)."""

    def __init__(self, frame_words: Iterable[str], catalog_names: Sequence[str] = ()):
        # a frame word is one lowercase token without digits (numbers are always slots)
        words, keys = _single_token_keys(sorted({w for w in frame_words if not _has_digit(w)}))
        self.frame_words = frozenset(words)
        order = np.argsort(keys)
        self._frame_keys = keys[order]
        self._frame_text = np.array([SLOT] + [words[i] for i in order], dtype=object)  # 0 = slot
        names = sorted({n.strip() for n in catalog_names if n and n.strip()})
        self.catalog_names = tuple(names)
        # catalog names as token-key sequences, grouped by length (matched longest first)
        self._names: dict[int, np.ndarray] = {}  # token count -> sorted hashes of the names that long
        self._name_first = np.zeros(0, np.uint64)  # sorted keys of the names' first tokens
        if names:
            keys, bounds = token_keys(list(names))
            by_len: dict[int, list] = {}
            for i in range(len(names)):
                if bounds[i + 1] > bounds[i]:
                    n = int(bounds[i + 1] - bounds[i])
                    by_len.setdefault(n, []).append(ngram_hashes(keys, n, np.array([bounds[i]]))[0])
            self._names = {n: np.unique(np.array(h, dtype=np.uint64)) for n, h in by_len.items()}
            self._name_first = np.unique(keys[bounds[:-1][np.diff(bounds) > 0]])

    @classmethod
    def fit(cls, answers: Sequence[str], catalog_names: Sequence[str] = (),
            _keys: Optional[tuple[np.ndarray, np.ndarray]] = None) -> "SkeletonMasker":
        """Frame words = stop words + words in >= FRAME_MIN_SHARE (and >= FRAME_MIN_COUNT) of ``answers``.
        (``_keys``: their ``token_keys``, when the caller has them.)"""
        keys, bounds = _keys if _keys is not None else token_keys(list(answers))
        if not len(keys):
            return cls(ENGLISH_STOP_WORDS, catalog_names)
        doc = np.repeat(np.arange(len(answers)), np.diff(bounds))
        # sorts, not np.unique: numpy 2's hash-based unique is ~10x slower on 10^6-10^7 keys
        order = np.argsort(keys)
        new = np.concatenate([[True], keys[order][1:] != keys[order][:-1]])
        first = np.minimum.reduceat(order, np.flatnonzero(new))  # first occurrence of each distinct word
        word = np.empty(len(keys), np.int64)
        word[order] = np.cumsum(new) - 1
        pairs = np.sort((doc.astype(np.int64) << 32) | word)
        pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]  # (answer, word) once each
        df = np.bincount(pairs & 0xFFFFFFFF, minlength=len(first))
        need = max(FRAME_MIN_COUNT, FRAME_MIN_SHARE * len(answers))
        frequent = np.flatnonzero(df >= need)
        texts = []  # the text of each frequent word: tokenize the answer holding its first occurrence
        for w in frequent:
            at = int(first[w])
            d = int(doc[at])
            texts.append(tokens(answers[d])[at - int(bounds[d])])
        return cls(ENGLISH_STOP_WORDS | {t for t in texts if not _has_digit(t)}, catalog_names)

    def skeleton(self, text: str) -> Optional[str]:
        """The skeleton of ``text``; None with < MIN_FRAME_WORDS frame words."""
        return self.skeletons([text])[0]

    def skeletons(self, texts: Sequence[str],
                  _keys: Optional[tuple[np.ndarray, np.ndarray]] = None) -> list[Optional[str]]:
        """The skeleton of every text (one vectorized pass; ``_keys``: their ``token_keys`` if known)."""
        keys, bounds = _keys if _keys is not None else token_keys(list(texts))
        out: list[Optional[str]] = [None] * len(texts)
        if not len(keys):
            return out
        ids = np.zeros(len(keys), np.int64)  # 0: slot, i > 0: frame word _frame_text[i]
        if len(self._frame_keys):
            pos = np.minimum(np.searchsorted(self._frame_keys, keys), len(self._frame_keys) - 1)
            hit = self._frame_keys[pos] == keys
            ids[hit] = pos[hit] + 1
        ids[self._in_names(keys, bounds)] = 0
        is_slot = ids == 0
        prev_slot = np.concatenate([[False], is_slot[:-1]])
        starts = bounds[:-1]
        prev_slot[starts[starts < len(keys)]] = False  # a text's first token follows nothing
        emit = ~is_slot | ~prev_slot  # a slot right after a slot collapses into it
        doc = np.repeat(np.arange(len(texts)), np.diff(bounds))
        kept = np.bincount(doc[~is_slot], minlength=len(texts))
        words = self._frame_text[ids[emit]].tolist()
        cuts = np.searchsorted(doc[emit], np.arange(len(texts) + 1))
        for i in np.flatnonzero(kept >= MIN_FRAME_WORDS).tolist():
            out[i] = " ".join(words[cuts[i] : cuts[i + 1]])
        return out

    def _in_names(self, keys: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Tokens inside a catalog name (whole token runs inside one text; longest names first)."""
        mark = np.zeros(len(keys), dtype=bool)
        if not self._names or not len(keys):
            return mark
        # only runs starting with some name's first token can be a name
        at = np.minimum(np.searchsorted(self._name_first, keys), len(self._name_first) - 1)
        cand = np.flatnonzero(self._name_first[at] == keys)
        end_of = np.repeat(bounds[1:], np.diff(bounds))[cand]  # end of the text holding each candidate
        for n in sorted(self._names, reverse=True):
            p = cand[cand + n <= end_of]
            h = ngram_hashes(keys, n, p)
            names = self._names[n]
            hit = names[np.minimum(np.searchsorted(names, h), len(names) - 1)] == h
            p = p[hit]
            covered = np.concatenate([[0], np.cumsum(mark)])
            p = p[covered[p + n] == covered[p]]  # not overlapping a longer name already cut
            for j in range(n):
                mark[p + j] = True
        return mark


class SkeletonIndex:
    """The skeletons of a set of training answers; its templates searchable by edit distance."""

    def __init__(self, masker: SkeletonMasker, ids: list[str], skeletons: list[Optional[str]]):
        # Use SkeletonIndex.build().
        self.masker = masker
        self.ids = ids
        self.skeletons = skeletons
        self.counts = Counter(s for s in skeletons if s is not None)
        first: dict[str, int] = {}
        for j, s in enumerate(skeletons):
            if s is not None and self.counts[s] >= MIN_TEMPLATE_COUNT:
                first.setdefault(s, j)
        self._rep = list(first.values())  # each template -> the first answer with it
        self._near = NearCopyIndex.build([(ids[j], s) for s, j in first.items()], max_distance=MATCH_MAX_DISTANCE)

    @classmethod
    def build(cls, answers: Sequence[tuple[str, str]], catalog_names: Sequence[str] = (),
              masker: Optional[SkeletonMasker] = None) -> "SkeletonIndex":
        """Index (id, text) training answers; the frame words are fitted on them unless ``masker`` is given."""
        texts = [t for _, t in answers]
        keys = token_keys(texts)  # tokenized once for fitting and masking
        masker = masker or SkeletonMasker.fit(texts, catalog_names, _keys=keys)
        return cls(masker, [i for i, _ in answers], masker.skeletons(texts, _keys=keys))

    def top_share(self, k: int = 10, min_count: int = MIN_TEMPLATE_COUNT) -> float:
        """Share of the indexed answers whose skeleton is one of the ``k`` most common, counting only
        skeletons shared by at least ``min_count`` answers (a skeleton used once is no template)."""
        if not self.ids:
            return 0.0
        top = [c for _, c in self.counts.most_common(k) if c >= min_count]
        return sum(top) / len(self.ids)

    def matches(self, texts: Sequence[str], nearest: bool = True) -> list[Optional[NearestMatch]]:
        """For each text, the first training answer with the template nearest its skeleton, if within
        MATCH_MAX_DISTANCE (None: the text has no skeleton, or no template is that close).
        ``nearest=False``: some template that close, not necessarily the nearest (faster)."""
        sk = self.masker.skeletons(texts)
        todo = [j for j, s in enumerate(sk) if s is not None]
        out: list[Optional[NearestMatch]] = [None] * len(texts)
        if not todo or not len(self._near):
            return out
        for j, m in zip(todo, self._near.within_many([sk[j] for j in todo], nearest=nearest)):
            out[j] = m if m is None else m._replace(train_index=self._rep[m.train_index])
        return out
