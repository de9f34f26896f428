"""Output defects of a generation, as flags: the failure modes seen in the seed adapter's outputs.

``defect_flags(text, hit_max_tokens)`` returns the flags that apply, in ``DEFECT_FLAGS`` order:

escaped_newline
    The two characters backslash + ``n`` (or backslash + ``r``) appear in the text: what a model
    emits after training on JSON whose newlines were escaped twice. (A real newline is fine.)
template_leak
    A chat-template token appears verbatim (``TEMPLATE_MARKERS``: ``[INST]``, ``<|im_end|>``,
    ``<|eot_id|>``, ...), or a line consisting of nothing but a role name (``user``,
    ``assistant``, ``system``) follows a newline -- what ChatML/Llama-3 turns look like after
    the special tokens are stripped in decoding (``...bill.\\nuser\\nAnd what about...``). The
    role must be lowercase and alone on its line, so prose such as "Tell the user\\nthat..."
    or "User: ..." is not flagged; a role name on the first line is not flagged either.
empty
    Nothing but whitespace.
truncated
    Generation stopped at max_new_tokens (``hit_max_tokens is True``); unknown (None) is not flagged.
repetition
    Degenerate looping, on the word tokens of :func:`evalkit.metrics.tokenize.tokens` (Hangul
    syllables are tokens). Any one of:

    1. seq-rep-4 >= 0.5 (Welleck et al. 2020, "Neural Text Generation with Unlikelihood
       Training": 1 - distinct 4-grams / all 4-grams) and some 4-gram occurs >= 3 times.
       Human text scores about 0.01 there, greedy-decoded GPT-2 about 0.4. Two copies of any
       passage stay below 0.5 ((L-3)/(2L-3) for L tokens), so it takes a third copy or a loop.
    2. A tandem loop: a block of k tokens repeated back to back >= 3 times, covering >= 12
       tokens ("go to the shop go to the shop go to the shop"). The 12-token floor spares
       emphasis ("very, very, very") and short Korean laughter.
    3. The same sentence (as its token sequence, >= 4 tokens) occurs >= 3 times in the text,
       even with other sentences between the copies. Real answers do not say the same
       4-word-plus sentence three times.

These rules flag none of the English and Korean prompts and answers in benchmarks/eco/ and
prompts/ (tests/metrics/test_defects.py checks that, and keeps realistic near-misses).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np

from .tokenize import sentences, tokens

__all__ = ["DEFECT_FLAGS", "TEMPLATE_MARKERS", "defect_flags", "defect_rates", "is_repetitive"]

DEFECT_FLAGS = ("escaped_newline", "template_leak", "empty", "truncated", "repetition")

TEMPLATE_MARKERS = (
    "[INST]", "[/INST]", "<s>", "</s>",  # Llama-2 / Mistral
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",  # ChatML (SmolLM2, Qwen), GPT-2
    "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",  # Llama-3
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",  # Phi-3, Zephyr
    "<start_of_turn>", "<end_of_turn>",  # Gemma
)

_ESCAPED_NEWLINE_RE = re.compile(r"\\[nr]")
# A bare lowercase role name alone on a line that follows a newline (not the first line).
_ROLE_LINE_RE = re.compile(r"(?<=\n)[ \t]*(?:user|assistant|system)[ \t]*(?=\n|$)")

REPETITION_SEQ_REP = 0.5  # seq-rep-4 threshold (rule 1)
REPETITION_MIN_COUNT = 3  # copies needed by every rule
REPETITION_LOOP_TOKENS = 12  # minimum tokens covered by a tandem loop (rule 2)
REPETITION_SENTENCE_TOKENS = 4  # minimum tokens of a repeated sentence (rule 3)


def _seq_rep_4(toks: Sequence[str]) -> tuple[float, int]:
    """seq-rep-4 of the tokens (0.0 without 4-grams) and the count of the most frequent 4-gram."""
    grams = Counter(zip(toks, toks[1:], toks[2:], toks[3:]))
    if not grams:
        return 0.0, 0
    return 1 - len(grams) / (len(toks) - 3), max(grams.values())


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a boolean array."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if len(starts) else 0


def _tandem_loop(toks: Sequence[str]) -> bool:
    # For period k, a run of r consecutive positions with toks[i] == toks[i + k] is a block of
    # k tokens followed by r more that copy it: 1 + r // k copies covering k + r tokens. Rule 2
    # asks for r >= 2k (3 copies) and k + r >= 12. Every period is tried (numpy, one pass each).
    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(t, len(vocab)) for t in toks], dtype=np.int64)
    for k in range(1, len(ids) // REPETITION_MIN_COUNT + 1):
        need = max((REPETITION_MIN_COUNT - 1) * k, REPETITION_LOOP_TOKENS - k)
        if need <= len(ids) - k and _longest_run(ids[:-k] == ids[k:]) >= need:
            return True
    return False


def _repeated_sentence(text: str) -> bool:
    counts = Counter(tuple(t) for t in map(tokens, sentences(text)) if len(t) >= REPETITION_SENTENCE_TOKENS)
    return bool(counts) and max(counts.values()) >= REPETITION_MIN_COUNT


def is_repetitive(text: str) -> bool:
    """The ``repetition`` rule (module docstring): seq-rep-4, a tandem loop, or a sentence said 3 times."""
    toks = tokens(text)
    seq_rep, top = _seq_rep_4(toks)
    if top >= REPETITION_MIN_COUNT:
        # Rule 1 needs a 4-gram seen 3 times. So does rule 2 -- three copies of a k-token block
        # covering >= 12 tokens hold the 4-gram at the block's start 3 times (k >= 4: 3k >= 2k + 4;
        # k < 4: 12 >= 2k + 4) -- so ordinary prose skips the period scan.
        if seq_rep >= REPETITION_SEQ_REP or _tandem_loop(toks):
            return True
    return _repeated_sentence(text)


def defect_flags(text: str, hit_max_tokens: Optional[bool] = None,
                 markers: Iterable[str] = TEMPLATE_MARKERS) -> tuple[str, ...]:
    """The defect flags of one output, in ``DEFECT_FLAGS`` order (see the module docstring).

    >>> defect_flags("Try it.\\\\nThen<|im_end|>", hit_max_tokens=True)
    ('escaped_newline', 'template_leak', 'truncated')
    """
    flags = []
    if _ESCAPED_NEWLINE_RE.search(text):
        flags.append("escaped_newline")
    if any(m in text for m in markers) or _ROLE_LINE_RE.search(text):
        flags.append("template_leak")
    if not text.strip():
        flags.append("empty")
    if hit_max_tokens is True:
        flags.append("truncated")
    if text.strip() and is_repetitive(text):
        flags.append("repetition")
    return tuple(flags)


def defect_rates(flags: Sequence[Iterable[str]], truncation_known: bool = True) -> dict[str, float]:
    """``<flag>_rate`` for every flag in ``DEFECT_FLAGS``: share of outputs carrying it.

    ``flags`` holds each output's flags (e.g. ``Sample.flags``; other flags are ignored). With no
    outputs the rates are undefined and the result is empty; ``truncation_known=False`` (scoring a
    predictions file, no generation) leaves ``truncated_rate`` out.
    """
    sets = [set(f) for f in flags]
    if not sets:
        return {}
    return {f"{name}_rate": sum(name in s for s in sets) / len(sets)
            for name in DEFECT_FLAGS if truncation_known or name != "truncated"}
