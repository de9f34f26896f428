"""Text as segments with one look each (plain, inserted, deleted, copied span, literal escape).

The template wraps segments in ``<ins>`` / ``<del>`` / ``<mark>``; the text inside is escaped like
any other. Nothing here produces markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .diff import ESCAPE_ARTIFACT, word_diff

__all__ = ["Seg", "text_segments", "diff_segments", "locate_span", "span_segments", "lang_of", "REWRITE_SHARE"]

REWRITE_SHARE = 0.25  # below this share of the candidate's text kept from the baseline, mark it all new


@dataclass(frozen=True)
class Seg:
    """A run of text with one look: op "" (plain), "ins", "del", "copy" (copied span); esc: a literal \\n."""

    text: str
    op: str = ""
    esc: bool = False


def text_segments(text: Optional[str], op: str = "") -> tuple[Seg, ...]:
    """Split ``text`` so each literal backslash-n/r/t artifact is its own segment with ``esc=True``."""
    out: list[Seg] = []
    pos = 0
    text = text or ""
    for m in ESCAPE_ARTIFACT.finditer(text):
        if m.start() > pos:
            out.append(Seg(text[pos:m.start()], op))
        out.append(Seg(m.group(), op, True))
        pos = m.end()
    if pos < len(text):
        out.append(Seg(text[pos:], op))
    return tuple(out)


def diff_segments(baseline: str, candidate: str) -> tuple[Seg, ...]:
    """The candidate's text with words not in the baseline as "ins" and removed words as "del".

    When less than REWRITE_SHARE of the candidate is unchanged text, the answer is a rewrite: it is
    shown whole as "ins" with no deletions (the baseline's answer sits in the next column).
    """
    tokens = word_diff(baseline or "", candidate or "")
    kept = sum(len(t.text) for t in tokens if t.op == "same" and not t.text.isspace())
    if candidate and baseline and kept < REWRITE_SHARE * len(candidate.strip()):
        return text_segments(candidate, "ins")
    out: list[Seg] = []
    for tok in tokens:
        out.extend(text_segments(tok.text, "" if tok.op == "same" else tok.op))
    return tuple(out)


def locate_span(text: str, start: Optional[int], span: str) -> Optional[int]:
    """Where ``span`` sits in ``text``: ``start`` when it matches there, else the first occurrence, else None."""
    if not span or not text:
        return None
    if start is not None and 0 <= start <= len(text) - len(span) and text[start:start + len(span)] == span:
        return start
    found = text.find(span)
    return found if found >= 0 else None


def span_segments(text: str, start: Optional[int], span: str) -> tuple[tuple[Seg, ...], bool]:
    """``text`` with the copied span marked "copy"; (segments, whether the span was found)."""
    at = locate_span(text or "", start, span)
    if at is None:
        return text_segments(text), False
    end = at + len(span)
    return text_segments(text[:at]) + text_segments(text[at:end], "copy") + text_segments(text[end:]), True


_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def lang_of(text: Optional[str]) -> Optional[str]:
    """A BCP 47 tag for text in a CJK script (so the browser picks the right glyphs), else None."""
    if not text:
        return None
    if _HANGUL.search(text):
        return "ko"
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return None
