"""Word-level differences between two answers, for the report's side-by-side section.

Pure functions over strings; nothing here knows about HTML. The view turns the tokens into
segments and the template wraps them in ``<ins>`` / ``<del>`` (escaped by Jinja2).

Tokens are words (``\\w+``, Hangul and other scripts included), single punctuation marks and the
two-character escape artifacts ``\\n`` / ``\\r`` / ``\\t`` (a backslash followed by a letter, as a model
trained on wrongly escaped JSON emits them), each with the whitespace that follows it; so an
artifact is one token and can be marked as a whole. Whitespace rides on the token before it because
a bare " " token would be the most common element of every text and make difflib quadratic.
Joining the tokens gives back the input exactly.
"""

from __future__ import annotations

import difflib
import re
from typing import NamedTuple

__all__ = ["DiffToken", "tokenize", "word_diff", "ESCAPE_ARTIFACT"]

# A literal backslash + n/r/t left in a generation (not a real newline): the seed's \n bug.
ESCAPE_ARTIFACT = re.compile(r"\\[nrt]")
_TOKEN = re.compile(r"\\[nrt]\s*|\w+\s*|[^\w\s]\s*|\s+", re.UNICODE)

# SequenceMatcher is quadratic in the worst case; beyond this many tokens per side the diff
# falls back to "everything changed" rather than stall the report on a runaway generation.
MAX_DIFF_TOKENS = 4000


class DiffToken(NamedTuple):
    op: str  # "same" | "ins" (only in the candidate) | "del" (only in the baseline)
    text: str


def tokenize(text: str) -> list[str]:
    """Split into words, punctuation, whitespace runs and escape artifacts; ``"".join`` restores it."""
    return _TOKEN.findall(text or "")


def _append(out: list[DiffToken], op: str, text: str) -> None:
    if not text:
        return
    if out and out[-1].op == op:
        out[-1] = DiffToken(op, out[-1].text + text)
    else:
        out.append(DiffToken(op, text))


def _is_minor(tokens: list[str]) -> bool:
    """An equal run too small to read as "unchanged" between two edits: whitespace, punctuation or
    one short word ("a", "the", "of"). Left alone, difflib anchors on such words and a rewritten
    sentence comes out as confetti of alternating deletions and insertions."""
    words = [t.strip() for t in tokens if not t.isspace()]
    return len(words) == 0 or (len(words) == 1 and len(words[0]) <= 3)


def word_diff(baseline: str, candidate: str) -> list[DiffToken]:
    """Tokens that turn ``baseline`` into ``candidate``; adjacent tokens of one kind are merged.

    Joining the "same" and "ins" texts gives the candidate; "same" and "del" give the baseline.
    In a replacement the deleted text comes before the inserted text. Minor equal runs between two
    edits (see ``_is_minor``) are folded into the edit, so changes read as whole phrases.
    """
    a, b = tokenize(baseline), tokenize(candidate)
    out: list[DiffToken] = []
    if len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS:
        if baseline == candidate:
            return [DiffToken("same", candidate)] if candidate else []
        _append(out, "del", baseline or "")
        _append(out, "ins", candidate or "")
        return out
    # chunks: (equal?, baseline tokens, candidate tokens)
    # Match on the tokens without their trailing whitespace ("bulbs" at the end of one text equals
    # "bulbs " inside the other); a whitespace difference inside a match is emitted as del/ins below.
    ka, kb = [t.rstrip() for t in a], [t.rstrip() for t in b]
    chunks = [(tag == "equal", a[i1:i2], b[j1:j2])
              for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes()]
    for k in range(1, len(chunks) - 1):
        eq, ta, tb = chunks[k]
        if eq and not chunks[k - 1][0] and not chunks[k + 1][0] and _is_minor(ta):
            chunks[k] = (False, ta, tb)
    pending_del: list[str] = []
    pending_ins: list[str] = []
    for eq, ta, tb in chunks + [(True, [], [])]:
        if not eq:
            pending_del.extend(ta)
            pending_ins.extend(tb)
            continue
        _append(out, "del", "".join(pending_del))
        _append(out, "ins", "".join(pending_ins))
        pending_del, pending_ins = [], []
        for x, y in zip(ta, tb):
            word = y.rstrip()
            _append(out, "same", word)
            ws_a, ws_b = x[len(word):], y[len(word):]
            if ws_a == ws_b:
                _append(out, "same", ws_b)
            else:
                _append(out, "del", ws_a)
                _append(out, "ins", ws_b)
    return out
