"""Answer skeletons: the frame an answer keeps once its slot values are masked.

Templated chat data ("I recommend the {item} for your {goal}. ... Good luck!") puts the same frame
around different words. Neither the verbatim span index (needs 13 shared tokens in a row) nor the
10% edit-distance test (the slot words differ) sees a model that answers a *new* prompt with a
training frame around new words. The skeleton does:

1. catalog names (the challenge names of the data's catalog) are cut out and become a slot;
2. the rest is split into word tokens (``metrics.tokenize.tokens``: lowercased, no punctuation);
3. a token stays when it is a *frame word* -- an English stop word (scikit-learn's list) or a word
   found in at least ``FRAME_MIN_SHARE`` of the training answers (and in ``FRAME_MIN_COUNT`` of
   them): a template's fixed words are exactly those that recur across answers; everything else
   (content words, numbers: any token with a digit) becomes the slot ``_``;
4. consecutive slots collapse into one (slot fillers vary in length: "the internet" vs "AirBnB").

A skeleton with fewer than ``MIN_FRAME_WORDS`` frame words is ``None``: too short to be evidence
of a shared template (and a one-sentence answer in a script without stop words would otherwise
collapse into "_"). Two skeletons *match* when their normalized edit distance is at most
``MATCH_MAX_DISTANCE`` = 0.10, the near-copy threshold applied to the frame instead of the text;
the search is the near-copy index itself (near_copy.py), so it is exact within the threshold and
fast at 10^5 training answers.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Optional, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ..metrics.tokenize import tokens
from .near_copy import NearCopyIndex, NearestMatch

__all__ = ["SLOT", "FRAME_MIN_SHARE", "FRAME_MIN_COUNT", "MIN_FRAME_WORDS", "MATCH_MAX_DISTANCE",
           "SkeletonMasker", "SkeletonIndex"]

SLOT = "_"
FRAME_MIN_SHARE = 0.10
FRAME_MIN_COUNT = 3
MIN_FRAME_WORDS = 6
MATCH_MAX_DISTANCE = 0.10


class SkeletonMasker:
    """Turns a text into its skeleton (see the module docstring)."""

    def __init__(self, frame_words: Iterable[str], catalog_names: Sequence[str] = ()):
        self.frame_words = frozenset(frame_words)
        names = sorted({n.strip() for n in catalog_names if n and n.strip()}, key=len, reverse=True)
        self.catalog_names = tuple(names)
        # longest first, so "Zero food waste week" wins over a shorter name inside it
        self._names = re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE) if names else None

    @classmethod
    def fit(cls, answers: Sequence[str], catalog_names: Sequence[str] = ()) -> "SkeletonMasker":
        """Frame words = stop words + words in >= FRAME_MIN_SHARE (and >= FRAME_MIN_COUNT) of ``answers``."""
        masker = cls((), catalog_names)
        return masker.fitted([masker.pieces(t) for t in answers])

    def fitted(self, pieces: Sequence[list[list[str]]]) -> "SkeletonMasker":
        """``fit`` on answers already split by :meth:`pieces` (each answer tokenized once)."""
        df: Counter = Counter()
        for p in pieces:
            df.update({tok for piece in p for tok in piece})
        need = max(FRAME_MIN_COUNT, FRAME_MIN_SHARE * len(pieces))
        frequent = {w for w, c in df.items() if c >= need and not any(ch.isdigit() for ch in w)}
        return SkeletonMasker(ENGLISH_STOP_WORDS | frequent, self.catalog_names)

    def pieces(self, text: str) -> list[list[str]]:
        """The word tokens of ``text`` between catalog names (one list per stretch)."""
        return [tokens(p) for p in (self._names.split(text) if self._names is not None else [text])]

    def skeleton(self, text: str, pieces: Optional[list[list[str]]] = None) -> Optional[str]:
        """The skeleton of ``text`` (or of its precomputed ``pieces``); None with < MIN_FRAME_WORDS frame words."""
        out: list[str] = []
        kept = 0
        for i, piece in enumerate(pieces if pieces is not None else self.pieces(text)):
            if i:
                out.append(SLOT)  # a catalog name stood here
            for tok in piece:
                if tok in self.frame_words and not any(ch.isdigit() for ch in tok):
                    out.append(tok)
                    kept += 1
                else:
                    out.append(SLOT)
        if kept < MIN_FRAME_WORDS:
            return None
        collapsed = [t for j, t in enumerate(out) if not (t == SLOT and j and out[j - 1] == SLOT)]
        return " ".join(collapsed)


class SkeletonIndex:
    """The skeletons of a set of training answers, searchable by edit distance (near_copy's index)."""

    def __init__(self, masker: SkeletonMasker, ids: list[str], skeletons: list[Optional[str]]):
        # Use SkeletonIndex.build().
        self.masker = masker
        self.ids = ids
        self.skeletons = skeletons
        self.counts = Counter(s for s in skeletons if s is not None)
        # Templated answers share skeletons: index each distinct skeleton once (its first answer).
        first: dict[str, int] = {}
        for j, s in enumerate(skeletons):
            if s is not None:
                first.setdefault(s, j)
        self._rep = list(first.values())  # distinct skeleton -> the answer it stands for
        self._near = NearCopyIndex.build([(ids[j], s) for s, j in first.items()], max_distance=MATCH_MAX_DISTANCE)

    @classmethod
    def build(cls, answers: Sequence[tuple[str, str]], catalog_names: Sequence[str] = (),
              masker: Optional[SkeletonMasker] = None) -> "SkeletonIndex":
        """Index (id, text) training answers; the frame words are fitted on them unless ``masker`` is given."""
        splitter = masker or SkeletonMasker((), catalog_names)
        pieces = [splitter.pieces(t) for _, t in answers]
        masker = masker or splitter.fitted(pieces)
        return cls(masker, [i for i, _ in answers], [masker.skeleton("", p) for p in pieces])

    def top_share(self, k: int = 10, min_count: int = 2) -> float:
        """Share of the indexed answers whose skeleton is one of the ``k`` most common, counting only
        skeletons shared by at least ``min_count`` answers (a skeleton used once is no template)."""
        if not self.ids:
            return 0.0
        top = [c for _, c in self.counts.most_common(k) if c >= min_count]
        return sum(top) / len(self.ids)

    def matches(self, texts: Sequence[str], nearest: bool = True) -> list[Optional[NearestMatch]]:
        """For each text, the training answer whose skeleton is nearest its own if within MATCH_MAX_DISTANCE
        (the first answer with that skeleton; None: the text has no skeleton, or no training skeleton is that
        close). ``nearest=False``: some training skeleton that close, not necessarily the nearest (faster)."""
        sk = [self.masker.skeleton(t) for t in texts]
        todo = [j for j, s in enumerate(sk) if s is not None]
        out: list[Optional[NearestMatch]] = [None] * len(texts)
        if not todo or not len(self._near):
            return out
        for j, m in zip(todo, self._near.within_many([sk[j] for j in todo], nearest=nearest)):
            out[j] = m if m is None else m._replace(train_index=self._rep[m.train_index])
        return out
