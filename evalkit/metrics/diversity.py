"""Diversity of a model's outputs across prompts: distinct-n and mode collapse.

* ``distinct_n`` (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
  Conversation Models"): distinct n-grams / all n-grams, pooled over all outputs, on the word
  tokens of :func:`evalkit.metrics.tokenize.tokens` (Hangul/CJK syllables are tokens).
* ``mode_collapse``: the share of outputs that are identical, or nearly so, to the output for
  a *different* prompt -- an over-fitted adapter answers many prompts with the same text.

Normalization for mode collapse: lowercase (``str.lower``), every run of whitespace becomes
one space, leading/trailing whitespace dropped. Nothing else (punctuation and digits count).
Similarity: rapidfuzz ``Levenshtein.normalized_similarity`` = 1 - edit distance / length of the
longer text, the same normalized edit distance as the memorization near-verbatim check
(``near_verbatim``: distance <= 0.10, i.e. similarity >= 0.90, the default threshold here).

Empty outputs (nothing left after normalization) never count as collapse, not even with each
other: they stay in the denominator, and the ``empty`` defect flag reports them. Counting them
here too would report one failure twice and make two blank answers look like a collapsed mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

__all__ = ["distinct_n", "normalize", "ModeCollapse", "mode_collapse"]

_BLOCK = 512  # rows of the similarity matrix computed at a time (bounds memory to 512 x n floats)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / total n-grams over all texts (n-grams never cross texts); 0.0 when there are none.

    Vectorized for 10^5 texts: each token becomes a 64-bit key and each n-gram a 64-bit hash of its keys
    (``memorization.span_index.token_keys``), counted by sorting; two distinct n-grams share a hash with
    probability ~2^-64 per pair (~10^-6 for 10^7 n-grams), the only way the count can differ from exact.

    >>> distinct_n(["the cat", "the dog"], 1)   # {the, cat, dog} / 4 tokens
    0.75
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"The 'n' parameter must be a positive int. Got {n!r} instead.")
    from ..memorization.span_index import ngram_hashes, token_keys  # lazy: memorization imports metrics

    keys, bounds = token_keys(list(texts))
    h = ngram_hashes(keys, n)
    # an n-gram starting at p stays inside its text when p + n <= the end of the text holding p
    ends = np.repeat(bounds[1:], np.diff(bounds))[: len(h)]
    grams = h[np.arange(len(h)) + n <= ends]
    if not len(grams):
        return 0.0
    grams.sort()
    return float(1 + np.count_nonzero(grams[1:] != grams[:-1])) / len(grams)


def normalize(text: str) -> str:
    """Lowercase and collapse whitespace (the form compared by :func:`mode_collapse`)."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class ModeCollapse:
    rate: float  # share of all outputs (empty ones included) that collapse with another prompt's output
    groups: tuple[tuple[str, ...], ...]  # ids (prompts) whose outputs are linked by (near-)identity
    n_outputs: int
    n_collapsed: int


class _DisjointSet:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _similar_pairs(texts: list[str], threshold: float) -> list[tuple[int, int]]:
    """Index pairs (i < j) of texts with normalized Levenshtein similarity >= threshold."""
    pairs: list[tuple[int, int]] = []
    for lo in range(0, len(texts), _BLOCK):
        block = process.cdist(texts[lo:lo + _BLOCK], texts, scorer=Levenshtein.normalized_similarity,
                              score_cutoff=threshold, dtype=np.float64, workers=-1)
        rows, cols = np.nonzero(block >= threshold)
        pairs.extend((lo + int(r), int(c)) for r, c in zip(rows, cols) if lo + r < c)
    return pairs


def mode_collapse(texts: Sequence[str], ids: Optional[Sequence[str]] = None, threshold: float = 0.9) -> ModeCollapse:
    """Outputs that are (near-)identical to the output for a different prompt.

    ``ids`` name the prompt of each output (default: its position); outputs with the same id
    (several samples of one prompt) never count against each other. An output is collapsed when
    some output with another id has normalized similarity >= ``threshold`` to it. ``groups`` are
    the connected clusters of such links, as ids in order of first appearance.

    >>> mode_collapse(["Use a tumbler.", "use a  TUMBLER.", "Cycle to work."]).rate   # 2 of 3
    0.6666666666666666
    """
    texts = list(texts)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"The 'threshold' parameter must be a float in [0, 1]. Got {threshold!r} instead.")
    ids = [str(i) for i in range(len(texts))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(texts):
        raise ValueError(f"The 'ids' parameter must name one prompt per text: got {len(ids)} ids "
                         f"for {len(texts)} texts.")
    if not texts:
        return ModeCollapse(rate=0.0, groups=(), n_outputs=0, n_collapsed=0)

    # Nodes are distinct (normalized text, id) pairs: repeated samples of one prompt collapse to
    # one node, and the similarity matrix is computed once per distinct text.
    uniq: dict[str, int] = {}
    node_of: dict[tuple[int, str], int] = {}
    output_node: list[Optional[int]] = []
    nodes_of_text: list[list[int]] = []
    node_id: list[str] = []
    for text, pid in zip(texts, ids):
        norm = normalize(text)
        if not norm:
            output_node.append(None)  # empty outputs never collapse (module docstring)
            continue
        u = uniq.setdefault(norm, len(uniq))
        if u == len(nodes_of_text):
            nodes_of_text.append([])
        key = (u, pid)
        if key not in node_of:
            node_of[key] = len(node_id)
            node_id.append(pid)
            nodes_of_text[u].append(node_of[key])
        output_node.append(node_of[key])

    # Two nodes are linked when their ids differ and their texts are the same or similar. Within a
    # text, or across two similar texts, the nodes form one connected cluster as soon as they
    # carry at least two different ids (each id occurs once per text), so one union pass suffices.
    ds = _DisjointSet(len(node_id))

    def link(members: list[int]) -> None:
        if len({node_id[k] for k in members}) >= 2:
            for k in members[1:]:
                ds.union(members[0], k)

    for members in nodes_of_text:
        link(members)
    for a, b in _similar_pairs(list(uniq), threshold):
        link(nodes_of_text[a] + nodes_of_text[b])

    size: dict[int, int] = {}
    for k in range(len(node_id)):
        root = ds.find(k)
        size[root] = size.get(root, 0) + 1
    collapsed = [k is not None and size[ds.find(k)] >= 2 for k in output_node]

    groups: dict[int, list[str]] = {}
    for k, pid in zip(output_node, ids):
        if k is not None and size[ds.find(k)] >= 2:
            members = groups.setdefault(ds.find(k), [])
            if pid not in members:
                members.append(pid)
    n_collapsed = sum(collapsed)
    return ModeCollapse(rate=n_collapsed / len(texts), groups=tuple(tuple(g) for g in groups.values()),
                        n_outputs=len(texts), n_collapsed=n_collapsed)
