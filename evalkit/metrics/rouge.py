"""ROUGE F1 of a prediction against its reference: rouge1, rouge2, rougeL, rougeLsum.

The values are rouge-score's (google-research ``rouge/rouge_scorer.py``, ``use_stemmer=False``)
with evalkit's multilingual tokenizer (:mod:`evalkit.metrics.tokenize`): on ASCII text they are
bit-identical to ``RougeScorer(ROUGE_TYPES).score(reference, prediction)``; Korean and other
non-Latin text gets tokens instead of scoring 0.

rougeLsum is the summary-level LCS over sentences, and rouge-score reads sentences as the lines
of the text. Like rouge-score users (Hugging Face's summarization examples join
``nltk.sent_tokenize(text)`` with "\\n"), we put every sentence on its own line first:
``"\\n".join(sentences(text))`` (see :func:`evalkit.metrics.tokenize.sentences`). Splitting
changes only rougeLsum; ``sentence_split=False`` scores the text's own lines instead.

Why not simply call ``RougeScorer.score``: it fills a pure-Python O(m*n) LCS table for rougeL
and again for every sentence pair in rougeLsum, which is most of its run time. We compute the
same integers faster and then the same floating-point expressions in the same order, so every
value is bit-identical (tests/metrics/test_rouge.py checks this against ``RougeScorer`` itself):
  * rouge1/rouge2: ``collections.Counter`` intersection, as rouge-score;
  * rougeL: the LCS length from rapidfuzz (C++, bit-parallel) on token-id strings, exact;
  * rougeLsum: rouge-score's union-LCS algorithm line by line, but each sentence pair's LCS
    table is kept as bit-parallel rows (Hyyrö 2004) and backtracked with rouge-score's own
    tie-breaking, so the same LCS -- not just one of the same length -- is found.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain
from typing import Sequence

from functools import lru_cache

from rapidfuzz.distance import LCSseq

from .tokenize import MultilingualTokenizer, sentences, tokens

__all__ = ["ROUGE_TYPES", "rouge_scores", "rouge_batch", "rouge_input", "reference_scorer"]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@lru_cache(maxsize=1)
def reference_scorer():
    """rouge-score's ``RougeScorer(ROUGE_TYPES, tokenizer=MultilingualTokenizer())`` (slow twin), built once.

    Imported on first use only: rouge_score imports nltk, which pulls in scikit-learn and pandas (seconds
    of start-up that no evaluation needs; the fast path below does not use rouge-score).
    """
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(list(ROUGE_TYPES), tokenizer=MultilingualTokenizer())


def rouge_input(text: str, sentence_split: bool = True) -> str:
    """The text as rouge-score sees it: one sentence per line when ``sentence_split``.

    ``RougeScorer(ROUGE_TYPES).score(rouge_input(ref), rouge_input(pred))`` gives exactly our values.
    """
    return "\n".join(sentences(text)) if sentence_split else text


def _lines(text: str, sentence_split: bool) -> list[str]:
    # rouge-score's get_sents: split on "\n" and drop empty lines.
    if sentence_split:
        return sentences(text)
    return [line for line in text.split("\n") if line]


def _fmeasure(precision: float, recall: float) -> float:
    # rouge_score.scoring.fmeasure, inlined (same expression, same float result).
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _ngram_f1(target: list[str], prediction: list[str], n: int) -> float:
    """rouge_scorer._create_ngrams + _score_ngrams (the ``max(count, 1)`` guards included)."""
    if n == 1:
        t_grams, p_grams = Counter(target), Counter(prediction)
    else:
        t_grams = Counter(zip(*(target[i:] for i in range(n))))
        p_grams = Counter(zip(*(prediction[i:] for i in range(n))))
    overlap = sum((t_grams & p_grams).values())
    precision = overlap / max(len(prediction) - n + 1, 1)
    recall = overlap / max(len(target) - n + 1, 1)
    return _fmeasure(precision, recall)


def _lcs_f1(target: list[str], prediction: list[str]) -> float:
    """rouge_scorer._score_lcs; the LCS length comes from rapidfuzz instead of a Python table."""
    if not target or not prediction:
        return 0.0
    # One character per distinct token, so rapidfuzz compares tokens exactly (no hashing).
    ids: dict[str, str] = {}
    t = "".join([ids.setdefault(w, chr(len(ids))) for w in target])
    p = "".join([ids.setdefault(w, chr(len(ids))) for w in prediction])
    lcs = LCSseq.similarity(t, p)
    return _fmeasure(lcs / len(prediction), lcs / len(target))


def _lcs_ref_indices(ref: list[str], can: list[str], masks: dict[str, int]) -> list[int]:
    """rouge_scorer.lcs_ind: indices into ``ref`` of the LCS that rouge-score's backtrack reads out.

    ``masks[w]`` has bit j set where ``can[j] == w``. Row i of the LCS table (after ref[:i]) is
    the bit vector V_i of Hyyrö's algorithm, with table[i][j] = j - popcount(V_i & (2**j - 1)).
    The walk below is ``_backtrack_norec`` verbatim on those table entries.
    """
    n = len(can)
    full = (1 << n) - 1
    v = full
    rows = [v]
    for w in ref:
        u = v & masks.get(w, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    if v == full:  # no common token
        return []
    out: list[int] = []
    i, j = len(ref), n
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        else:
            left = (j - 1) - (rows[i] & ((1 << (j - 1)) - 1)).bit_count()  # table[i][j-1]
            up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()  # table[i-1][j]
            if left > up:
                j -= 1
            else:
                i -= 1
    out.reverse()
    return out


def _lsum_f1(ref_sents: list[list[str]], can_sents: list[list[str]]) -> float:
    """rouge_scorer._summary_level_lcs (union LCS per reference sentence, clipped token counts)."""
    if not ref_sents or not can_sents:
        return 0.0
    m = sum(map(len, ref_sents))
    n = sum(map(len, can_sents))
    if not n or not m:
        return 0.0
    if len(ref_sents) == 1 and len(can_sents) == 1:
        # One sentence each: the union LCS is the LCS and no token is clipped, so hits = LCS
        # length and the expressions below reduce to rougeL's exactly.
        return _lcs_f1(ref_sents[0], can_sents[0])
    token_cnts_r = Counter(chain.from_iterable(ref_sents))
    token_cnts_c = Counter(chain.from_iterable(can_sents))
    cans = []
    for can in can_sents:
        masks: dict[str, int] = {}
        for j, w in enumerate(can):
            masks[w] = masks.get(w, 0) | (1 << j)
        cans.append((can, masks))
    hits = 0
    for ref in ref_sents:
        union: set[int] = set()
        for can, masks in cans:
            if can:
                union.update(_lcs_ref_indices(ref, can, masks))
        for i in sorted(union):
            t = ref[i]
            if token_cnts_c[t] > 0 and token_cnts_r[t] > 0:
                hits += 1
                token_cnts_c[t] -= 1
                token_cnts_r[t] -= 1
    return _fmeasure(hits / n, hits / m)


def rouge_scores(prediction: str, reference: str, *, sentence_split: bool = True) -> dict[str, float]:
    """ROUGE F1 per type in :data:`ROUGE_TYPES`; 0.0 when either side has no tokens.

    >>> rouge_scores("the cat sat", "the cat sat down")["rouge1"]   # P 3/3, R 3/4
    0.8571428571428571
    """
    pred_sents = [tokens(s) for s in _lines(prediction, sentence_split)]
    ref_sents = [tokens(s) for s in _lines(reference, sentence_split)]
    # A newline is never inside a token, so the text's tokens are its lines' tokens in order.
    pred = list(chain.from_iterable(pred_sents))
    ref = list(chain.from_iterable(ref_sents))
    return {
        "rouge1": _ngram_f1(ref, pred, 1),
        "rouge2": _ngram_f1(ref, pred, 2),
        "rougeL": _lcs_f1(ref, pred),
        "rougeLsum": _lsum_f1(ref_sents, pred_sents),
    }


def rouge_batch(predictions: Sequence[str], references: Sequence[str], *,
                sentence_split: bool = True) -> list[dict[str, float]]:
    """:func:`rouge_scores` of each (prediction, reference) pair, in order."""
    if len(predictions) != len(references):
        raise ValueError(f"rouge_batch needs one reference per prediction; got {len(predictions)} "
                         f"predictions and {len(references)} references")
    return [rouge_scores(p, r, sentence_split=sentence_split) for p, r in zip(predictions, references)]
