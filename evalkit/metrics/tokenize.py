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

No stemming (rouge-score's default is ``use_stemmer=False``) and no stopword removal.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["tokens", "token_spans", "TokenSpan", "MultilingualTokenizer"]

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
