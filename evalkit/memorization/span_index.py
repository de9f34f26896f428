"""Verbatim span search: the longest word-token span a generation shares with any training answer.

``SpanIndex.build(answers)`` indexes every training answer once; ``index.longest_span(text)`` then
finds, without scanning the answers, the longest run of consecutive word tokens (the shared
tokenizer, ``evalkit.metrics.tokenize``) that the text shares with any *single* training answer.

Design: a strided k-gram index, not a suffix array
--------------------------------------------------
The scale target is 10^6 answers (~10^8 word tokens) in <= 8 bytes per training token and
build + 10^4 queries in ~30 s on 2 cores.

* A suffix array finds spans of any length, but the array alone costs 4 B/token on top of the
  4 B/token token-id array (the whole budget, nothing left for document bounds or a vocabulary),
  and building one in numpy needs log(n) rounds of sorting 10^8 keys -- minutes, not seconds.
* Instead we keep the token ids (uint32, 4 B/token) and index only the k-grams that *start at
  positions that are multiples of a stride s*: one sorted uint64 per k-gram packing the high bits
  of its hash with its position / s, 8/s B/token. Any shared span of length L >= k + s - 1
  contains an aligned k-gram (among its first s start positions one is a multiple of s, and the
  k-gram starting there still fits), so looking up *every* k-gram of the query finds every such
  span; extending each hit left and right over the token-id arrays gives its exact maximal
  length. ``min_detectable = k + s - 1``. Shorter spans are found only when they happen to
  contain an aligned k-gram.
* For ``min_detectable = 13`` (the default, = VERBATIM_MIN_TOKENS) we use k = 8, s = 6:
  4 + 8/6 = 5.33 B/token, plus 4 B per answer (its start) and the vocabulary table
  (12 B per slot, <= 2 slots per distinct word). Longer k makes hits on common phrases rarer;
  the stride keeps k >= s, so two verified hits on one diagonal less than k apart always belong
  to the same span and only the first of them is extended.
* Hash collisions never change a result: every hit is verified token by token before it counts.

Cost: build is linear (tokenizing dominates, see ``_token_keys``); a query costs one binary search
per query token plus work proportional to the number of verified hits, i.e. to how often the
query's k-grams occur in training answers (a phrase repeated in 10^4 answers is extended 10^4
times). That is also why min_detectable must not be tiny: with k = 1 every "the" is a hit.

Shorter spans, exactly (``exact_short=True``)
----------------------------------------------
For fine-tuning-sized sets (up to ~10^7 tokens) ``build(..., exact_short=True)`` adds a suffix
array truncated at min_detectable - 1 tokens (positions sorted by their next 12 tokens, 4 B/token,
prefix doubling in numpy). A query without a long span then gets its exact longest span by
matching statistics: one vectorized binary search per query token, independent of how common its
words are. ``exact_from`` says from which length results are exact (1 or min_detectable).

Results
-------
``longest_span`` returns the longest span of >= ``min_tokens`` tokens (default: ``min_detectable``)
or None. Ties, in order: the lowest training-answer index (the order ``build`` saw them), then the
earliest start in the prediction, then the earliest start in the training answer. With
``min_tokens < exact_from`` a result is a real shared span but may not be the longest.

Character offsets are offsets in the original strings (prediction and training answer), so a
report can highlight ``prediction[pred_char_start:pred_char_end]``.

Verbatim threshold
------------------
``VERBATIM_MIN_TOKENS = 13``: a generation is flagged verbatim when it shares >= 13 consecutive
word tokens with one training answer. 13 is the n-gram length of the GPT-3 paper's
contamination analysis (Brown et al. 2020, App. C: 13-grams of words ignoring case and
punctuation, which is what our tokenizer produces) and of lm-evaluation-harness's
decontamination (``lm_eval/decontamination/janitor.py``: ``Janitor(ngram_n=13)``). Carlini et al.
(2021, 2022) use 50-token extraction, but that is for long web documents; our chat answers are
~50 words, so a 50-token threshold would only catch copies of a whole answer. 13 words are a full
sentence: chance overlaps of natural English on one narrow topic are rare at that length (they
are common below ~8 words -- set phrases, which novelty_n for n <= 8 measures instead), while
copying one memorised sentence is caught.

Script-aware threshold (``span_words``): the word tokenizer splits Hangul, CJK and Thai into single
characters (the right unit for n-gram overlap), but 13 Hangul syllables are ~5 Korean words, a stock
phrase. The verbatim flag therefore counts *word equivalents* of the shared span: each run of
Latin/other letters or digits is one word; each whitespace-separated chunk containing Hangul is one
word for its Hangul (Korean puts spaces between words, eojeol); each 2 characters of Han, kana or
Thai (scripts without spaces) count as one word (ceil), the usual ~1.5-2 characters per
Chinese/Japanese word. A span is verbatim when it has >= VERBATIM_MIN_TOKENS = 13 word equivalents:
13 words in every script.
"""

from __future__ import annotations

import re

from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from ..errors import DataError
from ..metrics.tokenize import token_spans, tokens
from ..records import Memorization

__all__ = [
    "VERBATIM_MIN_TOKENS",
    "span_words",
    "SpanMatch",
    "SpanIndex",
    "brute_force_longest_span",
    "to_memorization",
    "token_keys",
    "ngram_hashes",
]

VERBATIM_MIN_TOKENS = 13  # words (word equivalents, see span_words); see the module docstring

_HANGUL_RE = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_NOSPACE_RE = re.compile("[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_OTHER_WORD_RE = re.compile("[^\\W_\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf"
                            "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def span_words(text: str) -> int:
    """Word equivalents of a text (module docstring): Latin words 1 each, a Hangul eojeol 1, 2 Han/kana/Thai chars 1."""
    words = 0
    for chunk in text.split():
        words += len(_OTHER_WORD_RE.findall(chunk)) + (1 if _HANGUL_RE.search(chunk) else 0)
        words += -(-len(_NOSPACE_RE.findall(chunk)) // 2)
    return words

# Token ids at the top of the uint32 range never come from the vocabulary. SEP ends every
# training answer, QSEP every query, UNK is a query word no training answer contains. Because
# the three differ and the training array holds only SEP, a comparison of a query token with a
# training token is False at any boundary: extensions stop there without bounds checks.
_SEP = np.uint32(0xFFFFFFFF)
_QSEP = np.uint32(0xFFFFFFFE)
_UNK = np.uint32(0xFFFFFFFD)
_RESERVED = 0xFFFFFFFD  # ids >= this are sentinels; the vocabulary stays below

_U64 = np.uint64
_KGRAM_BASE = _U64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial k-gram hash
_QUERY_BATCH = 2048  # queries processed together (bounds the hit arrays)
_HIT_BLOCK = 1 << 22  # candidate hits verified at once (bounds memory on repetitive corpora)
_CHUNK_BYTES = 1 << 22  # training text tokenized per numpy pass
_SEGMENT = 1 << 22  # aligned k-grams hashed per numpy pass


# ---------------------------------------------------------------- tokens -> uint64 keys


def _byte_table() -> bytes:
    # bytes.translate table: ASCII letters/digits kept (A-Z lowercased), UTF-8 bytes >= 0x80
    # kept, every other ASCII byte becomes a space. On ASCII text this *is* the shared tokenizer
    # (its tokens are maximal [a-z0-9] runs of the lowercased text); see _normalize for the rest.
    t = bytearray(b" " * 256)
    for c in b"0123456789abcdefghijklmnopqrstuvwxyz":
        t[c] = c
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        t[c] = c + 32
    for c in range(0x80, 0x100):
        t[c] = c
    return bytes(t)


_TABLE = _byte_table()
_DOC_MARK = b" \xff "  # 0xFF never occurs in UTF-8, so this token only ever marks a boundary


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a bijection of uint64 that spreads every input bit (in place)."""
    z ^= z >> _U64(30)
    z *= _U64(0xBF58476D1CE4E5B9)
    z ^= z >> _U64(27)
    z *= _U64(0x94D049BB133111EB)
    z ^= z >> _U64(31)
    return z


_LOW_BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [0xFFFFFFFFFFFFFFFF], dtype=_U64)  # [i]: low i bytes


_SEP_KEY = int(_mix(np.array([0xFF], dtype=_U64))[0])


def _normalize(text: str) -> bytes:
    """UTF-8 bytes whose byte-level tokens (see _token_keys) are exactly ``tokens(text)``.

    ASCII text (the common case) goes through as is: the byte table tokenizes it. Other text is
    tokenized by the shared regex and re-joined with spaces; its tokens are letters/digits, so
    the byte table leaves them intact.
    """
    if text.isascii():
        return text.encode("ascii")
    return " ".join(tokens(text)).encode("utf-8")


def _token_keys(buf: bytes) -> np.ndarray:
    """One uint64 key per token of ``buf`` (tokens = maximal runs of non-space translated bytes).

    Why not ``str.split`` + a dict: at 10^8 tokens a Python object and a dict lookup per token
    cost ~200 ns each (20 s); this does a few numpy passes over the bytes instead (~50 ns/token).
    A token of <= 8 bytes is packed into a uint64 (its bytes are non-zero, so the packing is
    injective) and mixed by a bijection: such keys never collide. Longer tokens XOR in the mix of
    each further 8-byte word (salted by its index): a collision needs a 2^-64 accident.
    """
    tr = buf.translate(_TABLE)
    n = len(tr)
    padded = np.frombuffer(tr + bytes(16), dtype=np.uint8)
    is_tok = np.zeros(n + 2, dtype=bool)  # framed by non-token bytes on both sides
    np.not_equal(padded[:n], 32, out=is_tok[1:-1])
    edges = np.flatnonzero(is_tok[1:] != is_tok[:-1])
    starts = edges[0::2]  # token starts and ends alternate
    lens = edges[1::2] - starts
    # words[i] = the 8 bytes starting at byte i (an overlapping, unaligned little-endian view)
    words = np.ndarray((n + 9,), dtype="<u8", buffer=padded, strides=(1,))
    keys = words[starts]
    keys &= _LOW_BYTES.take(np.minimum(lens, 8))
    keys = _mix(keys)
    j = 1
    longer = np.flatnonzero(lens > 8)
    while longer.size:
        rest = lens[longer] - 8 * j
        w = words[starts[longer] + 8 * j] & _LOW_BYTES.take(np.minimum(rest, 8))
        keys[longer] ^= _mix(w ^ _U64((j * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF))
        longer = longer[rest > 8]
        j += 1
    keys[keys == 0] = 1  # 0 marks an empty slot in _KeyTable
    return keys


def token_keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, bounds): one uint64 key per word token of every text (the shared tokenizer,
    ``metrics.tokenize.tokens``; equal tokens, equal keys; distinct tokens collide with probability
    ~2^-64), text i's keys are keys[bounds[i]:bounds[i + 1]]. Vectorized (``_token_keys``)."""
    keys = _token_keys(_DOC_MARK + _DOC_MARK.join(map(_normalize, texts)) + _DOC_MARK)
    seps = np.flatnonzero(keys == _SEP_KEY)  # one before every text and one after the last
    bounds = seps - np.arange(len(seps))  # positions once the separators are dropped
    return keys[keys != _SEP_KEY], bounds


def ngram_hashes(keys: np.ndarray, n: int, starts: Optional[np.ndarray] = None) -> np.ndarray:
    """One uint64 hash per run of ``n`` consecutive token keys (keys[p:p + n] for every p, or for the given
    ``starts``, which must leave n keys); order-dependent, distinct runs collide with probability ~2^-64."""
    if starts is None:
        starts = np.arange(max(len(keys) - n + 1, 0))
    h = keys[starts]
    for j in range(1, n):  # order-dependent combination; the finalizer spreads the bits
        h = (h ^ (h >> _U64(29))) * _U64(0xBF58476D1CE4E5B9) + keys[starts + j]
    return _mix(h)


class _KeyTable:
    """Open-addressing hash table uint64 key -> uint32 id, probed with numpy arrays.

    Why hand-written: a Python dict needs one interpreted lookup per token (~130 ns); a
    vectorized linear-probing table needs a few numpy passes per batch. Keys are already mixed,
    so their top bits are the slot. Load factor <= 1/2.
    """

    def __init__(self, bits: int = 10):
        self.keys = np.zeros(1 << bits, dtype=_U64)
        self.ids = np.zeros(1 << bits, dtype=np.uint32)
        self.size = 0  # vocabulary ids handed out
        # The answer-boundary token maps to the SEP sentinel, so tokenized chunks need no fix-up.
        self._place(np.array([_SEP_KEY], dtype=_U64), np.array([_SEP], dtype=np.uint32))

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.ids.nbytes

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        bits = len(self.keys).bit_length() - 1
        return (keys >> _U64(64 - bits)).astype(np.intp)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Ids of ``keys`` (int64), -1 where absent."""
        mask = len(self.keys) - 1
        slot = self._slots(keys)
        # First probe for all keys at once (most keys sit in their home slot) ...
        found = self.keys.take(slot)
        out = self.ids.take(slot).astype(np.int64)
        hit = found == keys
        out[~hit] = -1
        # ... then walk the probe sequence of the few others.
        todo = np.flatnonzero(~hit & (found != 0))
        slot = (slot[todo] + 1) & mask
        while todo.size:
            found = self.keys.take(slot)
            hit = found == keys[todo]
            out[todo[hit]] = self.ids.take(slot[hit])
            probe = ~hit & (found != 0)  # slot taken by another key: try the next one
            todo, slot = todo[probe], (slot[probe] + 1) & mask
        return out

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Ids of ``keys``, giving new keys the next free ids (in sorted-key order)."""
        out = self.lookup(keys)
        missing = out < 0
        if missing.any():
            new = np.sort(keys[missing])  # sort + drop repeats (numpy 2's hash np.unique is slower)
            new = new[np.concatenate([[True], new[1:] != new[:-1]])]
            if self.size + len(new) > _RESERVED:
                raise DataError(f"training answers have more than {_RESERVED} distinct words; split them")
            first = self.size
            self._grow(self.size + len(new))
            self._place(new, np.arange(first, first + len(new), dtype=np.uint32))
            self.size += len(new)
            out[missing] = first + np.searchsorted(new, keys[missing])
        return out

    def _grow(self, needed: int) -> None:
        cap = len(self.keys)
        if 2 * needed <= cap:
            return
        while 2 * needed > cap:
            cap *= 2
        used = self.keys != 0
        old_keys, old_ids = self.keys[used], self.ids[used]
        self.keys = np.zeros(cap, dtype=_U64)
        self.ids = np.zeros(cap, dtype=np.uint32)
        self._place(old_keys, old_ids)

    def _place(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Insert distinct keys known to be absent."""
        mask = len(self.keys) - 1
        slot = self._slots(keys)
        todo = np.arange(len(keys))
        while todo.size:
            s = slot[todo]
            free = self.keys[s] == 0
            busy = todo[~free]
            slot[busy] = (slot[busy] + 1) & mask
            cand = todo[free]
            placed = np.zeros(0, dtype=np.intp)
            if cand.size:
                # several keys may want one free slot: the first takes it, the rest probe on
                _, first = np.unique(slot[cand], return_index=True)
                placed = cand[first]
                self.keys[slot[placed]] = keys[placed]
                self.ids[slot[placed]] = ids[placed]
            todo = np.setdiff1d(todo, placed, assume_unique=True)


# ---------------------------------------------------------------- k-gram hashing and matching


def _kgram_hashes(tok: np.ndarray, k: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial hashes of the k-grams of ``tok`` starting at 0, stride, 2*stride, ...

    Returns (hashes, valid): a k-gram holding a sentinel (boundary or unknown word) is invalid.
    """
    count = (len(tok) - k) // stride + 1 if len(tok) >= k else 0
    h = np.zeros(count, dtype=_U64)
    valid = np.ones(count, dtype=bool)
    for j in range(k):
        col = tok[j : j + stride * (count - 1) + 1 : stride] if count else tok[:0]
        h *= _KGRAM_BASE
        h += col
        valid &= col < _RESERVED
    return h, valid


def _kgram_index(tok: np.ndarray, k: int, stride: int) -> tuple[np.ndarray, int]:
    """The sorted packed k-gram entries of ``tok`` (see the module docstring) and pos_bits.

    One uint64 per valid aligned k-gram: the high 64 - pos_bits bits of its hash | its position /
    stride. Packing lets np.sort (SIMD, ~10x faster than argsort at 10^7 keys) order hashes and
    positions together, in 8 bytes instead of 8 + 4. The hash keeps 39 bits at 10^8 tokens; a clash
    in the dropped bits only adds a hit that fails verification. Built in segments so the
    temporaries stay small next to the token array.
    """
    count = (len(tok) - k) // stride + 1 if len(tok) >= k else 0
    pos_bits = max(1, count.bit_length())
    high = ~_U64((1 << pos_bits) - 1)
    out = np.empty(count, dtype=_U64)
    n = 0
    for b0 in range(0, count, _SEGMENT):
        b1 = min(count, b0 + _SEGMENT)
        h, valid = _kgram_hashes(tok[b0 * stride : (b1 - 1) * stride + k], k, stride)
        where = np.flatnonzero(valid)
        h = h[where]
        h &= high
        h |= (where + b0).view(_U64)
        out[n : n + len(h)] = h
        n += len(h)
    out.resize(n, refcheck=False)
    out.sort()
    return out, pos_bits


def _run_lengths(q: np.ndarray, t: np.ndarray, qi: np.ndarray, ti: np.ndarray, step: int) -> np.ndarray:
    """For each pair, how many steps q[qi + m*step] == t[ti + m*step] holds for m = 0, 1, ...

    Both arrays are framed by sentinels that never compare equal across them, so every run stops
    inside the arrays.
    """
    n = np.zeros(len(qi), dtype=np.int64)
    qi, ti = qi.copy(), ti.copy()
    act = np.arange(len(qi))
    while act.size:
        act = act[q.take(qi[act]) == t.take(ti[act])]
        n[act] += 1
        qi[act] += step
        ti[act] += step
    return n


def _prefix_order(tok: np.ndarray, depth: int) -> np.ndarray:
    """Positions of ``tok`` sorted by their next ``depth`` tokens (a suffix array truncated at depth).

    Prefix doubling (Manber-Myers with Larsson-Sadakane's refinement): sort by the first token,
    then repeatedly re-sort only the groups whose first h tokens still tie, by (rank of the
    first h tokens, rank of the next h), doubling h until h >= depth. A rank is the index where
    the position's group starts in the current order. Tokens past the end read as the last token
    (SEP), the convention ``take(mode="clip")`` uses when searching.
    """
    n = len(tok)
    idx = np.int32 if n < 2**31 else np.int64  # half the memory traffic of int64 gathers/scatters
    # first pass: one SIMD sort of (token, position) packed into uint64
    packed = np.sort((tok.astype(np.uint64) << _U64(32)) | np.arange(n, dtype=np.uint64))
    order = (packed & _U64(0xFFFFFFFF)).astype(idx)
    keys = packed >> _U64(32)
    del packed
    rank = np.empty(n, dtype=idx)
    h = 1
    span = np.arange(n, dtype=idx)  # slots of `order` still being refined (all of them, at first)
    while True:
        # group starts among the refined slots; settle the singletons
        new_group = np.ones(len(span), dtype=bool)
        new_group[1:] = (keys[1:] != keys[:-1]) | (span[1:] != span[:-1] + 1)
        start = np.maximum.accumulate(np.where(new_group, span, idx(0)))
        rank[order[span]] = start
        if h >= depth:
            break
        last = np.ones(len(span), dtype=bool)
        last[:-1] = new_group[1:]
        tied = ~(new_group & last)  # slot belongs to a group of >= 2 positions
        span = span[tied]
        if not span.size:
            break
        pos = order[span]
        key = (rank[pos].astype(np.uint64) << _U64(32)) | rank[np.minimum(pos + h, n - 1)].astype(np.uint64)
        sub = np.argsort(key)
        order[span] = pos[sub]
        keys = key[sub]
        h *= 2
    return order.astype(np.uint32 if n < 2**32 else np.uint64)


def _compare(q: np.ndarray, qi: np.ndarray, t: np.ndarray, ti: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sign of (q[qi : qi + length] - t[ti : ti + length]) compared lexicographically, per pair."""
    res = np.zeros(len(qi), dtype=np.int8)
    todo = np.arange(len(qi))
    j = 0
    while todo.size:
        todo = todo[length[todo] > j]
        a = q.take(qi[todo] + j, mode="clip")
        b = t.take(ti[todo] + j, mode="clip")
        ne = a != b
        res[todo[ne]] = np.where(a[ne] < b[ne], -1, 1)
        todo = todo[~ne]
        j += 1
    return res


def _lcp(q: np.ndarray, qi: np.ndarray, t: np.ndarray, ti: np.ndarray, cap: int) -> np.ndarray:
    """Length of the common prefix of q[qi:] and t[ti:], at most ``cap``."""
    n = np.zeros(len(qi), dtype=np.int64)
    todo = np.arange(len(qi))
    for j in range(cap):
        todo = todo[q.take(qi[todo] + j, mode="clip") == t.take(ti[todo] + j, mode="clip")]
        if not todo.size:
            break
        n[todo] += 1
    return n


def _token_offsets(text: str) -> np.ndarray:
    """(start, end) character offsets in ``text`` itself of each of its tokens, shape (n, 2).

    ASCII text: the byte-level tokenizer's boundaries are character offsets (one byte per
    character), ~50x cheaper than creating a TokenSpan per token. Other text: token_spans, whose
    offsets refer to ``text.lower()``; a few characters (e.g. 'İ') lower to two, so when the
    lengths differ we map lowered offsets back to original ones.
    """
    if text.isascii():
        is_tok = np.zeros(len(text) + 2, dtype=bool)
        np.not_equal(np.frombuffer(text.encode("ascii").translate(_TABLE), dtype=np.uint8), 32, out=is_tok[1:-1])
        return np.flatnonzero(is_tok[1:] != is_tok[:-1]).reshape(-1, 2)
    spans = token_spans(text)
    off = np.array([(sp.start, sp.end) for sp in spans], dtype=np.int64).reshape(-1, 2)
    if len(text.lower()) != len(text):
        orig_of = []  # lowered offset -> original offset
        for i, ch in enumerate(text):
            orig_of.extend([i] * len(ch.lower()))
        orig_of = np.array(orig_of, dtype=np.int64)
        off = np.stack([orig_of[off[:, 0]], orig_of[off[:, 1] - 1] + 1], axis=1).reshape(-1, 2)
    return off


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class SpanMatch:
    """The longest span a prediction shares with one training answer."""

    train_id: str
    train_index: int  # position of the answer in the order build() saw them
    n_tokens: int  # span length in word tokens
    pred_token_start: int  # index of the span's first token in the prediction's tokens
    train_token_start: int  # ... and in the training answer's tokens
    pred_char_start: int  # character offsets of the span in the original prediction
    pred_char_end: int
    train_char_start: int  # character offsets in the original training answer
    train_char_end: int
    text: str  # prediction[pred_char_start:pred_char_end]
    span_fraction: float  # n_tokens / number of tokens in the prediction


def _make_match(pred: str, train_index: int, train_id: str, train_text: str, n: int, pstart: int,
                tstart: int) -> SpanMatch:
    p_off = _token_offsets(pred)
    t_off = _token_offsets(train_text)
    ps, pe = int(p_off[pstart, 0]), int(p_off[pstart + n - 1, 1])
    return SpanMatch(
        train_id=train_id,
        train_index=train_index,
        n_tokens=n,
        pred_token_start=pstart,
        train_token_start=tstart,
        pred_char_start=ps,
        pred_char_end=pe,
        train_char_start=int(t_off[tstart, 0]),
        train_char_end=int(t_off[tstart + n - 1, 1]),
        text=pred[ps:pe],
        span_fraction=n / len(p_off),
    )


def _check_pair(i: int, item) -> tuple[str, str]:
    try:
        answer_id, text = item
    except (TypeError, ValueError):
        raise DataError(f"training answer #{i}: expected an (id, text) pair, got {type(item).__name__}") from None
    if not isinstance(answer_id, str) or not isinstance(text, str):
        raise DataError(f"training answer #{i}: id and text must be strings, got "
                        f"({type(answer_id).__name__}, {type(text).__name__})")
    return answer_id, text


def _check_min(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"The '{name}' parameter must be a positive int. Got {value!r} instead.")
    return value


# ---------------------------------------------------------------- the index


class SpanIndex:
    """Strided k-gram index over the word tokens of every training answer (see module docstring)."""

    def __init__(self, *, k: int, stride: int, tok: np.ndarray, doc_starts: np.ndarray, kgrams: np.ndarray,
                 pos_bits: int, table: _KeyTable, answers: Optional[Sequence] = None,
                 ids: Optional[list[str]] = None, blob: bytes = b"", blob_offsets: Optional[np.ndarray] = None,
                 short: Optional[np.ndarray] = None):
        # Use SpanIndex.build(); the constructor only stores the parts.
        self.k, self.stride = k, stride
        self._short = short  # positions sorted by their next min_detectable - 1 tokens, or None
        self._tok, self._doc_starts = tok, doc_starts
        # sorted uint64: high (64 - pos_bits) bits of a k-gram's hash | its start position / stride
        self._kgrams, self._pos_bits = kgrams, pos_bits
        self._table = table
        self._answers, self._ids, self._blob, self._blob_offsets = answers, ids, blob, blob_offsets

    # -- construction

    @classmethod
    def build(cls, answers: Iterable[tuple[str, str]], *, min_detectable: int = VERBATIM_MIN_TOKENS,
              exact_short: bool = False) -> "SpanIndex":
        """Index ``answers``, an iterable of (id, text) pairs, read once.

        A Sequence (e.g. a list) is kept by reference, not copied: the winning answer's id and
        text are read back from it, so do not mutate it while the index is in use. Any other
        iterable (e.g. a generator over a large file) is consumed once and its ids and texts are
        kept compactly (one UTF-8 blob; ``text_nbytes``).

        ``min_detectable``: spans of at least this many tokens are found exactly. k and the
        stride s follow from it (s = max(1, m // 2), k = m + 1 - s); memory is 4 + 8/s B/token.

        ``exact_short``: also make spans shorter than ``min_detectable`` exact (for
        ``longest_span(text, min_tokens=1)``), with a suffix array truncated at
        ``min_detectable - 1`` tokens: +4 B/token, and at build time a few sorts of the token
        array (~0.5 s per 10^6 tokens, ~70 B/token of temporaries).
        Meant for fine-tuning-sized sets (up to ~10^7 tokens);
        do not use ``min_detectable=1`` for that, which turns every common word into a hit.
        """
        m = _check_min("min_detectable", min_detectable)
        stride = max(1, m // 2)
        k = m + 1 - stride
        keep = isinstance(answers, Sequence)
        ids: Optional[list[str]] = None if keep else []
        blob_parts: list[bytes] = []
        table = _KeyTable()
        tok = np.full(1 << 16, _SEP, dtype=np.uint32)  # tok[0] = SEP frames the first answer
        n_tok = 1
        pending: list[bytes] = []
        pending_bytes = 0

        def encode(parts: list[bytes]) -> np.ndarray:
            # doc1 SEP doc2 SEP ... docN SEP: one numpy pass over the whole chunk
            return table.add(_token_keys(_DOC_MARK.join(parts) + _DOC_MARK)).astype(np.uint32)

        def append(ids_chunk: np.ndarray) -> None:
            nonlocal tok, n_tok
            if n_tok + len(ids_chunk) > len(tok):
                # ndarray.resize reallocates in place (mremap for large blocks on Linux): unlike
                # collecting chunks and concatenating, the token array never exists twice.
                tok.resize(max(n_tok + len(ids_chunk), len(tok) * 3 // 2), refcheck=False)
            tok[n_tok : n_tok + len(ids_chunk)] = ids_chunk
            n_tok += len(ids_chunk)

        # One worker thread tokenizes chunk i (numpy, which releases the GIL) while this thread
        # reads and normalizes chunk i+1 (Python): a second core cuts build time by about a
        # third. A single worker keeps chunks, and so vocabulary ids, in input order. Small
        # inputs (one chunk) never start the thread.
        pool: Optional[ThreadPoolExecutor] = None
        running: deque = deque()
        try:
            for i, item in enumerate(answers):
                answer_id, text = _check_pair(i, item)
                norm = _normalize(text)
                if not keep:
                    ids.append(answer_id)
                    blob_parts.append(norm if text.isascii() else text.encode("utf-8"))
                pending.append(norm)
                pending_bytes += len(norm)
                if pending_bytes >= _CHUNK_BYTES:
                    pool = pool or ThreadPoolExecutor(max_workers=1)
                    running.append(pool.submit(encode, pending))
                    pending, pending_bytes = [], 0
                    if len(running) > 2:  # bound the text held in flight
                        append(running.popleft().result())
            while running:
                append(running.popleft().result())
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        if pending:
            append(encode(pending))
        tok.resize(n_tok, refcheck=False)

        seps = np.flatnonzero(tok == _SEP)
        pos_dtype = np.uint32 if len(tok) < 2**32 else np.uint64
        doc_starts = (seps[:-1] + 1).astype(pos_dtype)
        kgrams, pos_bits = _kgram_index(tok, k, stride)
        short = _prefix_order(tok, m - 1) if exact_short and m > 1 else None
        blob, offsets = b"", None
        if not keep:
            offsets = np.zeros(len(blob_parts) + 1, dtype=np.int64)
            np.cumsum([len(b) for b in blob_parts], out=offsets[1:])
            blob = b"".join(blob_parts)
        return cls(k=k, stride=stride, tok=tok, doc_starts=doc_starts, kgrams=kgrams, pos_bits=pos_bits,
                   table=table, answers=answers if keep else None, ids=ids, blob=blob, blob_offsets=offsets,
                   short=short)

    # -- facts

    @property
    def min_detectable(self) -> int:
        """Shared spans at least this long are always found (k + stride - 1)."""
        return self.k + self.stride - 1

    @property
    def exact_from(self) -> int:
        """Shared spans at least this long are found with their exact length and tie rules:
        ``min_detectable``, or 1 with ``exact_short``."""
        return 1 if self._short is not None or self.min_detectable == 1 else self.min_detectable

    @property
    def n_answers(self) -> int:
        return len(self._doc_starts)

    def __len__(self) -> int:
        return self.n_answers

    @property
    def n_tokens(self) -> int:
        """Word tokens over all training answers."""
        return len(self._tok) - len(self._doc_starts) - 1

    @property
    def nbytes(self) -> int:
        """Memory of the search structures: token ids, packed k-gram hashes/positions, answer
        starts, vocabulary table. Kept texts (``text_nbytes``) are not included."""
        return (self._tok.nbytes + self._kgrams.nbytes + self._doc_starts.nbytes
                + (self._short.nbytes if self._short is not None else 0)
                + self._table.nbytes)

    @property
    def text_nbytes(self) -> int:
        """Bytes held for answer texts and ids (0 when build() got a Sequence it keeps by reference)."""
        if self._answers is not None:
            return 0
        return len(self._blob) + self._blob_offsets.nbytes + sum(len(i) + 49 for i in self._ids)

    def answer(self, index: int) -> tuple[str, str]:
        """(id, text) of training answer ``index``."""
        if self._answers is not None:
            return _check_pair(index, self._answers[index])
        lo, hi = self._blob_offsets[index], self._blob_offsets[index + 1]
        return self._ids[index], self._blob[lo:hi].decode("utf-8")

    # -- queries

    def longest_span(self, text: str, min_tokens: Optional[int] = None) -> Optional[SpanMatch]:
        """The longest span of ``text`` shared with one training answer, or None (see module docstring)."""
        return self.longest_spans([text], min_tokens=min_tokens)[0]

    def longest_spans(self, texts: Sequence[str], min_tokens: Optional[int] = None) -> list[Optional[SpanMatch]]:
        """``longest_span`` for many texts at once (vectorized: use this for a whole eval set)."""
        min_tokens = self.min_detectable if min_tokens is None else _check_min("min_tokens", min_tokens)
        out: list[Optional[SpanMatch]] = []
        for b in range(0, len(texts), _QUERY_BATCH):
            out.extend(self._query_batch(texts[b : b + _QUERY_BATCH], min_tokens))
        return out

    def _query_batch(self, texts: Sequence[str], min_tokens: int) -> list[Optional[SpanMatch]]:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str. Got {type(t).__name__} instead.")
        # Queries go through the same byte-level tokenizer as training answers; character
        # offsets are computed only for texts that have a match.
        keys = _token_keys(_DOC_MARK + _DOC_MARK.join(map(_normalize, texts)) + _DOC_MARK)
        found = self._table.lookup(keys)
        q = np.where(found < 0, _UNK, found).astype(np.uint32)
        is_sep = q == _SEP
        q[is_sep] = _QSEP
        q_starts = np.flatnonzero(is_sep)[:-1] + 1

        best = self._best_spans(q, q_starts)
        if self._short is not None:
            best = self._with_short_spans(q, q_starts, best)
        results: list[Optional[SpanMatch]] = [None] * len(texts)
        for qi, n, doc, poff, toff in best.tolist():
            if n >= min_tokens:
                train_id, train_text = self.answer(doc)
                results[qi] = _make_match(texts[qi], doc, train_id, train_text, n, poff, toff)
        return results

    def _with_short_spans(self, q: np.ndarray, q_starts: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Replace the rows of queries without a span >= min_detectable by their exact shorter span.

        Matching statistics on the truncated suffix array: for each query position, a binary search
        finds where its next D = min_detectable - 1 tokens would sort; the longer common prefix
        with the two neighbours there is the longest training span starting at that position
        (capped at D, enough: longer spans were found by the k-gram index). The query's span length
        L is the maximum. For the tie rules, each position reaching L gets the range of suffixes
        starting with its L tokens; the smallest position in that range is the lowest answer and,
        in it, the earliest start.
        """
        t, sa, depth = self._tok, self._short, self.min_detectable - 1
        n_q = len(q_starts)
        q_ends = np.append(q_starts[1:] - 1, len(q) - 1)  # each query's closing QSEP
        long_enough = np.zeros(n_q, dtype=bool)
        long_enough[best[best[:, 1] >= self.min_detectable, 0]] = True
        todo = np.flatnonzero(~long_enough & (q_ends > q_starts))
        if not todo.size or not len(sa):
            return best
        lens = q_ends[todo] - q_starts[todo]
        pos = np.repeat(q_starts[todo] - np.cumsum(np.r_[0, lens[:-1]]), lens) + np.arange(lens.sum())
        owner = np.repeat(todo, lens)
        at = self._sa_search(q, pos, np.full(len(pos), depth), right=False)
        ms = np.maximum(_lcp(q, pos, t, sa.take(np.minimum(at, len(sa) - 1)).astype(np.int64), depth),
                        _lcp(q, pos, t, sa.take(np.maximum(at - 1, 0)).astype(np.int64), depth))
        top = np.maximum.reduceat(ms, np.cumsum(np.r_[0, lens[:-1]]))  # L per query in todo
        keep = (ms == np.repeat(top, lens)) & (ms > 0)
        pos, owner, length = pos[keep], owner[keep], ms[keep]
        if not len(pos):
            return best
        lo = self._sa_search(q, pos, length, right=False)
        hi = self._sa_search(q, pos, length, right=True)
        # min of sa[lo:hi] for every range at once: reduceat over ranges sorted by start (the
        # gaps between them are reduced too, so sorting keeps that extra work <= len(sa))
        # (an index must be < len(sa): a range ending at len(sa) stops one short, and its last
        # element is added back below)
        order = np.argsort(lo, kind="stable")
        bounds = np.stack([lo[order], np.minimum(hi[order], len(sa) - 1)], axis=1).ravel()
        first = np.empty(len(pos), dtype=np.int64)
        first[order] = np.minimum.reduceat(sa, bounds)[0::2]
        at_end = hi == len(sa)
        first[at_end] = np.minimum(first[at_end], int(sa[-1]))
        doc = np.searchsorted(self._doc_starts, first, side="right") - 1
        short = np.stack([owner, length, doc, pos - q_starts[owner], first - self._doc_starts[doc].astype(np.int64)],
                         axis=1).astype(np.int64)
        kept = best[long_enough[best[:, 0]]]
        rows = np.concatenate([kept, _best_per_query(short)])
        return rows[np.argsort(rows[:, 0], kind="stable")]

    def _sa_search(self, q: np.ndarray, pos: np.ndarray, length: np.ndarray, right: bool) -> np.ndarray:
        """First index of the truncated suffix array whose suffix's first ``length`` tokens are
        >= (``right=False``) or > (``right=True``) those of q[pos:], per position."""
        t, sa = self._tok, self._short
        lo = np.zeros(len(pos), dtype=np.int64)
        hi = np.full(len(pos), len(sa), dtype=np.int64)
        act = np.arange(len(pos))
        while act.size:
            mid = (lo[act] + hi[act]) // 2
            c = _compare(q, pos[act], t, sa.take(mid).astype(np.int64), length[act])
            go = c >= 0 if right else c > 0
            lo[act[go]] = mid[go] + 1
            hi[act[~go]] = mid[~go]
            act = act[lo[act] < hi[act]]
        return lo

    def _best_spans(self, q: np.ndarray, q_starts: np.ndarray) -> np.ndarray:
        """Best maximal shared span per query, as int64 rows (query, length, doc, q offset, t offset)."""
        hq, valid = _kgram_hashes(q, self.k, 1)
        qpos = np.flatnonzero(valid)
        # Sorted lookups: binary searches for increasing keys walk the same cache lines, ~30x
        # faster than random order on a 10^7-entry array.
        order = np.argsort(hq[qpos])
        qpos = qpos[order]
        hq = hq.take(qpos)
        low = _U64((1 << self._pos_bits) - 1)
        hq &= ~low  # compare the hash bits the index keeps
        lo = np.searchsorted(self._kgrams, hq, side="left")
        has = (self._kgrams.take(lo, mode="clip") & ~low) == hq if len(self._kgrams) else lo < 0
        qpos, lo, hq = qpos[has], lo[has], hq[has]
        cnt = np.searchsorted(self._kgrams, hq | low, side="right") - lo
        rows = [np.zeros((0, 5), dtype=np.int64)]
        # Hits are expanded in blocks so a query full of very common k-grams cannot exhaust memory.
        cum = np.cumsum(cnt)
        begin = 0
        while begin < len(cnt):
            base = cum[begin - 1] if begin else 0
            end = max(begin + 1, int(np.searchsorted(cum, base + _HIT_BLOCK, side="right")))
            c = cnt[begin:end]
            hit_q = np.repeat(qpos[begin:end], c)
            first = np.cumsum(c) - c
            entry = np.arange(len(hit_q)) - np.repeat(first - lo[begin:end], c)
            hit_t = (self._kgrams.take(entry) & low).astype(np.int64) * self.stride
            rows.append(self._extend(q, self._tok, hit_q, hit_t, q_starts))
            begin = end
        cand = np.concatenate(rows)
        return _best_per_query(cand) if len(cand) else cand

    def _extend(self, q, t, hit_q, hit_t, q_starts) -> np.ndarray:
        k = self.k
        ok = np.ones(len(hit_q), dtype=bool)  # verify: equal hashes are not proof of equal k-grams
        for j in range(k):
            ok &= q.take(hit_q + j) == t.take(hit_t + j)
        hit_q, hit_t = hit_q[ok], hit_t[ok]
        # Verified hits on one diagonal (t - q) less than k apart overlap or touch: one span.
        diag = hit_t - hit_q
        order = np.lexsort((hit_q, diag))
        hit_q, hit_t, diag = hit_q[order], hit_t[order], diag[order]
        lead = np.ones(len(hit_q), dtype=bool)
        lead[1:] = (diag[1:] != diag[:-1]) | (hit_q[1:] - hit_q[:-1] > k)
        q0, t0 = hit_q[lead], hit_t[lead]
        left = _run_lengths(q, t, q0 - 1, t0 - 1, -1)
        right = k + _run_lengths(q, t, q0 + k, t0 + k, 1)
        qs, ts = q0 - left, t0 - left
        qdoc = np.searchsorted(q_starts, qs, side="right") - 1
        tdoc = np.searchsorted(self._doc_starts, ts, side="right") - 1
        cand = np.stack([qdoc, left + right, tdoc, qs - q_starts[qdoc], ts - self._doc_starts[tdoc].astype(np.int64)],
                        axis=1).astype(np.int64)
        return _best_per_query(cand) if len(cand) else cand


def _best_per_query(cand: np.ndarray) -> np.ndarray:
    """Keep one row per query: longest, then lowest doc, earliest q offset, earliest t offset."""
    order = np.lexsort((cand[:, 4], cand[:, 3], cand[:, 2], -cand[:, 1], cand[:, 0]))
    cand = cand[order]
    first = np.ones(len(cand), dtype=bool)
    first[1:] = cand[1:, 0] != cand[:-1, 0]
    return cand[first]


# ---------------------------------------------------------------- reference implementation


def brute_force_longest_span(text: str, answers: Iterable[tuple[str, str]], min_tokens: int = 1) -> Optional[SpanMatch]:
    """Reference for tests: dynamic programming against every answer, same result and tie rules
    as ``SpanIndex.longest_span`` (exact at every length). O(len(text) * total tokens)."""
    _check_min("min_tokens", min_tokens)
    p = tokens(text)
    best = None  # (length, doc, p start, t start, id, text)
    for doc, item in enumerate(answers):
        answer_id, answer_text = _check_pair(doc, item)
        a = tokens(answer_text)
        top = (0, 0, 0)  # (length, p start, t start) of this answer's best
        prev = [0] * (len(a) + 1)
        for i in range(1, len(p) + 1):
            cur = [0] * (len(a) + 1)
            for j in range(1, len(a) + 1):
                if p[i - 1] == a[j - 1]:
                    n = cur[j] = prev[j - 1] + 1
                    if n > top[0] or (n == top[0] and (i - n, j - n) < top[1:]):
                        top = (n, i - n, j - n)
            prev = cur
        if top[0] > 0 and (best is None or top[0] > best[0]):
            best = (top[0], doc, top[1], top[2], answer_id, answer_text)
    if best is None or best[0] < min_tokens:
        return None
    n, doc, ps, ts, answer_id, answer_text = best
    return _make_match(text, doc, answer_id, answer_text, n, ps, ts)


def to_memorization(match: SpanMatch, train_answer: str, nearest_id: Optional[str] = None,
                    nearest_answer: Optional[str] = None, edit_distance: Optional[float] = None) -> Memorization:
    """The record a flagged sample carries (``Sample.memorization``)."""
    return Memorization(train_id=match.train_id, span=match.text, span_tokens=match.n_tokens,
                        pred_start=match.pred_char_start, train_start=match.train_char_start, train_answer=train_answer,
                        nearest_id=nearest_id, nearest_answer=nearest_answer, edit_distance=edit_distance)
