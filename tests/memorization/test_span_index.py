"""SpanIndex: hand-computed spans, tie rules, offsets, and a property test against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.errors import DataError
from evalkit.memorization.span_index import (
    VERBATIM_MIN_TOKENS,
    SpanIndex,
    _prefix_order,
    _token_offsets,
    brute_force_longest_span,
    to_memorization,
)
from evalkit.metrics.tokenize import token_spans, tokens

ANSWER = ("Cooking for a crowd out of habit is really common once the house empties. Try Zero food "
          "waste week: plan four dinners, cook as usual, and freeze single portions straight away.")
OTHER = "Put the laptop charger, speaker and TV on one power strip near the door."


def test_default_threshold_and_min_detectable():
    index = SpanIndex.build([("a", ANSWER)])
    assert VERBATIM_MIN_TOKENS == 13
    assert index.min_detectable == index.k + index.stride - 1 == 13
    assert index.k >= index.stride  # needed for merging hits on one diagonal


def test_hand_computed_span_with_original_offsets():
    answers = [("other", OTHER), ("c1-002", ANSWER)]
    copied = "TRY ZERO food-waste week... plan four DINNERS; cook as usual, and freeze single portions"
    pred = "Honestly? " + copied + " then relax."
    m = SpanIndex.build(answers).longest_span(pred)
    assert m is not None
    assert (m.train_id, m.train_index) == ("c1-002", 1)
    assert m.n_tokens == 15  # try zero food waste week plan four dinners cook as usual and freeze single portions
    assert m.pred_token_start == 1  # after "honestly"
    assert m.train_token_start == tokens(ANSWER).index("try")
    assert m.text == copied == pred[m.pred_char_start : m.pred_char_end]
    assert ANSWER[m.train_char_start : m.train_char_end] == (
        "Try Zero food waste week: plan four dinners, cook as usual, and freeze single portions")
    assert m.span_fraction == pytest.approx(15 / 18)  # "honestly" + 15 + "then relax"
    assert m == brute_force_longest_span(pred, answers)


def test_span_below_min_detectable_is_not_reported_by_default():
    index = SpanIndex.build([("a", ANSWER)])
    pred = " ".join(tokens(ANSWER)[:12]) + " and nothing else"  # exactly 12 shared tokens
    assert index.longest_span(pred) is None
    short = index.longest_span(pred, min_tokens=1)  # best effort below min_detectable
    assert short is None or (1 <= short.n_tokens <= 12 and tokens(short.text) == tokens(ANSWER)[
        short.train_token_start : short.train_token_start + short.n_tokens])
    assert index.longest_span(" ".join(tokens(ANSWER)[:13])).n_tokens == 13


def test_ties_lowest_answer_then_earliest_positions():
    body = " ".join(f"w{i}" for i in range(20))
    answers = [("x", "nothing shared here at all"), ("first", body), ("dup", body)]
    m = SpanIndex.build(answers, min_detectable=4).longest_span("zz " + body)
    assert (m.train_id, m.n_tokens) == ("first", 20)
    # two equal spans in one prediction: the earlier one wins
    a = "a1 a2 a3 a4 a5 a6"
    b = "b1 b2 b3 b4 b5 b6"
    idx = SpanIndex.build([("ab", a + " q " + b)], min_detectable=4)
    m = idx.longest_span(b + " x " + a)
    assert (m.pred_token_start, m.train_token_start, m.text) == (0, 7, b)
    # one span twice in the training answer: the earlier training position wins
    m = SpanIndex.build([("aa", a + " q " + a)], min_detectable=4).longest_span(a)
    assert (m.n_tokens, m.train_token_start) == (6, 0)


def test_unicode_offsets_refer_to_original_text():
    # 'İ' lowercases to two characters, so token_spans' offsets drift; ours must not.
    train = "İstanbul 팀은 텀블러를 매일 씁니다 and RECYCLES every single bottle"
    pred = "Note: 텀블러를 매일 씁니다 and recycles EVERY single bottle!"
    m = SpanIndex.build([("ko", train)], min_detectable=4).longest_span(pred)
    assert m.n_tokens == len(tokens("텀블러를 매일 씁니다 and recycles every single bottle"))
    assert train[m.train_char_start : m.train_char_end] == "텀블러를 매일 씁니다 and RECYCLES every single bottle"
    assert pred[m.pred_char_start : m.pred_char_end] == m.text == "텀블러를 매일 씁니다 and recycles EVERY single bottle"
    assert m == brute_force_longest_span(pred, [("ko", train)])


def test_generator_input_keeps_texts_and_matches_list_input():
    answers = [(f"id{i}", f"{OTHER} variant {i} " + ANSWER) for i in range(5)]
    from_list = SpanIndex.build(answers)
    from_gen = SpanIndex.build(a for a in answers)
    pred = "so " + ANSWER[:120]
    assert from_gen.longest_span(pred) == from_list.longest_span(pred)
    assert from_list.text_nbytes == 0 and from_gen.text_nbytes > len(ANSWER) * 5
    assert from_gen.answer(3) == answers[3]
    assert len(from_gen) == 5 and from_gen.n_tokens == sum(len(tokens(t)) for _, t in answers)


def test_memory_per_token_under_budget():
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(5000)], dtype=object)
    words = vocab[rng.integers(0, len(vocab), 1_000_000)]
    answers = [(str(i), " ".join(words[i * 100 : (i + 1) * 100])) for i in range(10_000)]
    index = SpanIndex.build(answers)
    assert index.n_tokens == 1_000_000
    # 4 B token ids + 8/6 B strided k-grams + answer starts + vocabulary table
    assert index.nbytes / index.n_tokens <= 8.0
    assert index.nbytes >= 4 * index.n_tokens + 8 * (index.n_tokens // index.stride) * 0.9


def test_hash_collisions_never_change_results(monkeypatch):
    # With multiplier 0 a k-gram's hash is just its last token id: nearly every lookup hits
    # k-grams that differ, and only token-by-token verification keeps the result right.
    from evalkit.memorization import span_index

    monkeypatch.setattr(span_index, "_KGRAM_BASE", np.uint64(0))
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(6)]
    answers = [(f"a{i}", " ".join(rng.choice(words, 40))) for i in range(20)]
    index = SpanIndex.build(answers, min_detectable=5)
    for _ in range(20):
        src = tokens(answers[int(rng.integers(20))][1])
        s = int(rng.integers(0, 30))
        query = " ".join(rng.choice(words, 10)) + " " + " ".join(src[s : s + 9])
        want = brute_force_longest_span(query, answers)
        assert index.longest_span(query) == (want if want and want.n_tokens >= 5 else None)


def test_tiny_chunks_segments_and_batches_give_the_same_results(monkeypatch):
    # Force every multi-part path at small scale: several tokenizer chunks (worker thread, array
    # growth), several k-gram segments, several query batches and hit blocks.
    from evalkit.memorization import span_index

    rng = np.random.default_rng(6)
    words = [f"w{i}" for i in range(8)] + ["Environmental", "플라스틱"]
    answers = [(f"a{i}", " ".join(rng.choice(words, int(rng.integers(0, 60))))) for i in range(60)]
    queries = []
    for _ in range(25):
        src = tokens(answers[int(rng.integers(60))][1])
        s = int(rng.integers(0, max(1, len(src))))
        queries.append(" ".join(rng.choice(words, 8)) + " " + " ".join(src[s : s + 20]))
    want = SpanIndex.build(answers, min_detectable=4).longest_spans(queries)
    for name, value in [("_CHUNK_BYTES", 64), ("_SEGMENT", 5), ("_QUERY_BATCH", 3), ("_HIT_BLOCK", 4)]:
        monkeypatch.setattr(span_index, name, value)
    small = SpanIndex.build(iter(answers), min_detectable=4)
    assert small.longest_spans(queries) == want
    assert want == [b if b and b.n_tokens >= 4 else None
                    for b in (brute_force_longest_span(q, answers) for q in queries)]
    assert sum(w is not None for w in want) >= 20


def test_bad_input_is_reported():
    with pytest.raises(DataError, match="#1"):
        SpanIndex.build([("a", "text"), ("b",)])
    with pytest.raises(DataError, match="strings"):
        SpanIndex.build([("a", None)])
    with pytest.raises(ValueError, match="min_detectable"):
        SpanIndex.build([], min_detectable=0)
    with pytest.raises(TypeError, match="texts\\[0\\]"):
        SpanIndex.build([("a", "b")]).longest_spans([None])


def test_empty_index_and_empty_query():
    assert SpanIndex.build([]).longest_span(ANSWER) is None
    assert SpanIndex.build([("a", ANSWER)]).longest_spans(["", "!!!", ANSWER])[:2] == [None, None]


def test_to_memorization_uses_span_fields():
    m = SpanIndex.build([("c1", ANSWER)]).longest_span(ANSWER)
    memo = to_memorization(m, ANSWER, nearest_id="c1", nearest_answer=ANSWER, edit_distance=0.0)
    assert (memo.train_id, memo.span_tokens, memo.span) == ("c1", len(tokens(ANSWER)), ANSWER[:-1])
    assert (memo.pred_start, memo.train_start, memo.edit_distance) == (0, 0, 0.0)


# ---------------------------------------------------------------- properties

WORDS = ["a", "b", "c", "Dd", "eee", "environmental", "recyclingprograms", "텀블러", "İx", "7"]
SEPS = [" ", ", ", "  ", "\n", "-", "... "]


@st.composite
def texts(draw, max_words=30):
    n = draw(st.integers(0, max_words))
    ws = draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n))
    seps = draw(st.lists(st.sampled_from(SEPS), min_size=n, max_size=n))
    return "".join(w + s for w, s in zip(ws, seps))


@st.composite
def corpus_and_query(draw):
    answers = [(f"id{i}", t) for i, t in enumerate(draw(st.lists(texts(), max_size=6)))]
    query = draw(texts())
    if answers and draw(st.booleans()):  # splice in a run of some answer's tokens
        src = tokens(draw(st.sampled_from(answers))[1])
        s = draw(st.integers(0, len(src)))
        e = draw(st.integers(s, len(src)))
        query = query + " " + " ".join(src[s:e]).upper() + ". " + draw(texts(8))
    return answers, query


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus_and_query(), st.sampled_from([1, 2, 3, 4, 5, 6, 13]))
def test_matches_brute_force(case, min_detectable):
    answers, query = case
    index = SpanIndex.build(answers, min_detectable=min_detectable)
    got = index.longest_span(query)
    want = brute_force_longest_span(query, answers)
    if want is not None and want.n_tokens >= min_detectable:
        assert got == want
    else:
        assert got is None
    loose = index.longest_span(query, min_tokens=1)
    if loose is not None:  # below min_detectable: a real shared span, never longer than the longest
        assert want is not None and loose.n_tokens <= want.n_tokens
        train = tokens(answers[loose.train_index][1])
        assert tokens(loose.text) == train[loose.train_token_start : loose.train_token_start + loose.n_tokens]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus_and_query(), st.sampled_from([2, 3, 5, 13]))
def test_exact_short_matches_brute_force_at_every_length(case, min_detectable):
    answers, query = case
    index = SpanIndex.build(answers, min_detectable=min_detectable, exact_short=True)
    assert index.exact_from == 1
    want = brute_force_longest_span(query, answers)
    assert index.longest_span(query, min_tokens=1) == want
    assert index.longest_span(query) == (want if want and want.n_tokens >= min_detectable else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=40), st.integers(1, 9))
def test_prefix_order_sorts_positions_by_their_next_tokens(values, depth):
    tok = np.array([0xFFFFFFFF] + values + [0xFFFFFFFF], dtype=np.uint32)
    order = _prefix_order(tok, depth)
    assert sorted(order.tolist()) == list(range(len(tok)))
    prefix = [tuple(int(tok[min(i + j, len(tok) - 1)]) for j in range(depth)) for i in order.tolist()]
    assert prefix == sorted(prefix)


def test_exact_short_costs_a_position_array():
    answers = [(str(i), f"{OTHER} number {i}") for i in range(50)]
    plain, exact = SpanIndex.build(answers), SpanIndex.build(answers, exact_short=True)
    assert exact.nbytes - plain.nbytes == 4 * (plain.n_tokens + plain.n_answers + 1)  # uint32 per token and SEP
    assert (plain.exact_from, exact.exact_from) == (13, 1)
    m = exact.longest_span("the DOOR, please: put the laptop charger away", min_tokens=1)
    assert (m.n_tokens, m.train_index, m.text) == (4, 0, "put the laptop charger")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=60))
def test_byte_tokenizer_equals_shared_tokenizer_on_ascii(text):
    assert _token_offsets(text).tolist() == [[s.start, s.end] for s in token_spans(text)]
    # build-side tokens: an answer is fully matched by its own normalized tokens
    n = len(tokens(text))
    if n:
        m = SpanIndex.build([("t", text)], min_detectable=1).longest_span(" ".join(tokens(text)))
        assert m.n_tokens == n
        assert tokens(text[m.train_char_start : m.train_char_end]) == tokens(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_unicode_text_matches_itself(text):
    n = len(tokens(text))
    m = SpanIndex.build([("t", text)], min_detectable=1).longest_span(text)
    if n == 0:
        assert m is None
    else:
        assert (m.n_tokens, m.pred_token_start, m.train_token_start) == (n, 0, 0)
        assert tokens(text[m.train_char_start : m.train_char_end]) == tokens(text)
