"""The one word tokenizer behind ROUGE, novelty, distinct-n and memorization spans.

Why our own: rouge-score's default tokenizer lowercases and replaces everything outside
[a-z0-9] with spaces, so Korean (or any non-Latin) text has no tokens and two identical
Korean sentences score 0.0. We keep its behaviour exactly on ASCII text and extend it:

* text is lowercased (``str.lower``, as rouge-score does);
* a token is a maximal run of Unicode letters/digits (underscore excluded, like rouge-score,
  whose regex treats ``_`` as a separator) -- on ASCII this is exactly ``[a-z0-9]+``;
* Hangul, CJK ideographs, kana and Thai are split into single characters (syllables), because
  these scripts either have no spaces (Chinese, Japanese, Thai) or glue particles to words
  (Korean: 텀블러를 / 텀블러는 / 텀블러), so whole space-separated words rarely match;
  character n-grams are the usual unit for ROUGE in these languages.

No stemming (rouge-score's default is ``use_stemmer=False``), no stopword removal and no
Unicode normalization (decomposed NFD Hangul is split into jamo and will not match composed
syllables; model outputs and JSON data are NFC in practice).

A newline is never part of a token, so ``tokens(text)`` equals the concatenation of
``tokens(line)`` over ``text.split("\\n")`` -- ROUGE relies on that to tokenize each sentence once.

:func:`sentences` is the sentence splitter behind rougeLsum and the repetition flag.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["tokens", "token_spans", "TokenSpan", "MultilingualTokenizer", "sentences"]

_SPLIT_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
)
_TOKEN_RE = re.compile(rf"[{_SPLIT_SCRIPTS}]|[^\W_{_SPLIT_SCRIPTS}]+")


class TokenSpan(NamedTuple):
    text: str
    start: int  # character offset in the original string
    end: int


def tokens(text: str) -> list[str]:
    """Lowercased word tokens of ``text`` (see module docstring)."""
    return _TOKEN_RE.findall(text.lower())


def token_spans(text: str) -> list[TokenSpan]:
    """Tokens with their character offsets in ``text`` (for highlighting copied spans).

    Offsets refer to the original string; ``str.lower`` keeps the length of every character
    except a handful (e.g. 'İ'), for which offsets may drift by one.
    """
    return [TokenSpan(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text.lower())]


class MultilingualTokenizer:
    """Adapter for ``rouge_score.rouge_scorer.RougeScorer(..., tokenizer=MultilingualTokenizer())``."""

    def tokenize(self, text: str) -> list[str]:
        return tokens(text)


# ---------------------------------------------------------------- sentences

# Why our own splitter: rouge-score users newline-separate sentences with nltk.sent_tokenize
# (Punkt) before computing rougeLsum, but Punkt needs a data download (evalkit runs offline)
# and knows no Korean. This rule-based splitter makes the same cuts on ordinary prose:
#   * every newline ends a sentence;
#   * . ! ? … (plus closing quotes/brackets) followed by whitespace end a sentence, unless the
#     next character is a lowercase Latin letter ("e.g. the"), or the word before the period is
#     a single letter ("J. K.", "U.S.") or a title abbreviation ("Dr.", "Mr.");
#   * the CJK full stops 。！？ end a sentence even without a following space.
# A cut is only ever made at whitespace or right after punctuation, never inside a token, so
# the tokens of the sentences are exactly the tokens of the text.
_LATIN_END_RE = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*\s+")
_CJK_END_RE = re.compile(r"[\u3002\uff01\uff1f]+[\"'\u201d\u2019\u300d\u300f)\]\uff09]*\s*")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "no", "approx", "fig"})


def _is_latin_boundary(line: str, m: re.Match) -> bool:
    nxt = line[m.end():m.end() + 1]
    if "a" <= nxt <= "z":
        return False
    if line[m.start()] == ".":
        start = m.start()
        while start > 0 and line[start - 1].isalnum():
            start -= 1
        word = line[start:m.start()]
        if (len(word) == 1 and word.isascii() and word.isalpha()) or word.lower() in _ABBREVIATIONS:
            return False
    return True


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (stripped, non-empty, no newline inside); see the rules above.

    >>> sentences("Try it. It works!\\n텀블러를 쓰세요. 컵을 줄여요.")
    ['Try it.', 'It works!', '텀블러를 쓰세요.', '컵을 줄여요.']
    """
    out: list[str] = []
    for line in text.split("\n"):
        cuts = [m.end() for m in _LATIN_END_RE.finditer(line) if _is_latin_boundary(line, m)]
        cuts += [m.end() for m in _CJK_END_RE.finditer(line)]
        start = 0
        for cut in sorted(set(cuts)):
            piece = line[start:cut].strip()
            if piece:
                out.append(piece)
            start = cut
        piece = line[start:].strip()
        if piece:
            out.append(piece)
    return out
