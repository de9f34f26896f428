"""Normalized edit distance and NearCopyIndex: hand-computed cases and brute-force properties."""

from __future__ import annotations

import random

import numpy as np

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.errors import DataError
from evalkit.memorization.near_copy import (
    NEAR_VERBATIM_MAX_DISTANCE,
    NearCopyIndex,
    brute_force_nearest,
    normalize_text,
    normalized_edit_distance,
)

ANSWER = ("With late shifts, the trick is cooking ahead rather than cooking every night. Give Cook from "
          "scratch a go for one week: make a big pot of chili or curry on Sunday.")


@pytest.mark.parametrize(
    "a, b, want",
    [
        ("Hello   World\n", "hello world", 0.0),  # case and whitespace are normalized away
        ("abc", "abd", 1 / 3),
        ("kitten", "sitting", 3 / 7),
        ("", "", 0.0),
        ("", "abc", 1.0),
        ("abc", "xyz", 1.0),
        ("텀블러", "텀블러를", 1 / 4),
    ],
)
def test_normalized_edit_distance(a, b, want):
    assert normalized_edit_distance(a, b) == pytest.approx(want)
    assert normalized_edit_distance(b, a) == pytest.approx(want)


def test_normalize_text():
    assert normalize_text("  Two\tSPACES  here\n") == "two spaces here"


def test_threshold_value():
    assert NEAR_VERBATIM_MAX_DISTANCE == 0.10


def test_finds_light_edit_among_distractors():
    edited = ANSWER.replace("chili", "chilli").replace("Sunday", "Saturday").upper()
    answers = [("d1", "Put the laptop charger on a power strip."), ("target", ANSWER),
               ("d2", ANSWER[:60]), ("d3", "Cooking for a crowd out of habit is common.")]
    m = NearCopyIndex.build(answers).nearest(edited)
    want = normalized_edit_distance(edited, ANSWER)
    assert 0 < want <= NEAR_VERBATIM_MAX_DISTANCE
    assert (m.train_id, m.train_index, m.exact) == ("target", 1, True)
    assert m.distance == pytest.approx(want)


def test_reports_nearest_above_threshold_and_ties_take_lowest_index():
    answers = [("a", "the cat sat on the mat"), ("b", "the cat sat on the mat"), ("c", "dogs bark loudly")]
    index = NearCopyIndex.build(answers)
    m = index.nearest("the cat sat")
    assert (m.train_id, m.train_index) == ("a", 0)
    assert m.distance == pytest.approx(normalized_edit_distance("the cat sat", answers[0][1]))
    assert m.distance > NEAR_VERBATIM_MAX_DISTANCE
    assert index.nearest("THE CAT SAT ON THE MAT") == (("a", 0, 0.0, True))


def test_empty_index_and_bad_input():
    assert NearCopyIndex.build([]).nearest("anything") is None
    with pytest.raises(DataError, match="#0"):
        NearCopyIndex.build([("only-id",)])
    with pytest.raises(ValueError, match="max_distance"):
        NearCopyIndex.build([], max_distance=1.5)


def _mutate(rng: random.Random, s: str, n_edits: int) -> str:
    chars = list(s)
    for _ in range(n_edits):
        p = rng.randrange(len(chars) + 1)
        op = rng.random()
        if op < 1 / 3 and chars:
            chars.pop(min(p, len(chars) - 1))
        elif op < 2 / 3:
            chars.insert(p, rng.choice("xyz "))
        elif chars:
            chars[min(p, len(chars) - 1)] = rng.choice("xyz")
    return "".join(chars)


def test_exact_within_threshold_when_stop_buckets_are_dropped():
    # 400 templated answers: many q-gram buckets are in > 50 answers and get dropped from the
    # filter, which must stay exact for every near copy.
    rng = random.Random(3)
    frames = ["Try {} for a week and {}.", "Swap {} for {} on weekdays.", "Skip {} and plan {} instead."]
    things = ["cycling", "the bus", "leftovers", "a tumbler", "cold washes", "line drying", "batch cooking"]
    answers = [(f"t{i}", rng.choice(frames).format(rng.choice(things), rng.choice(things)) + f" Note {i}.")
               for i in range(400)]
    index = NearCopyIndex.build(answers)
    queries = [_mutate(rng, rng.choice(answers)[1], rng.randint(0, 3)) for _ in range(40)]
    for q, got, within in zip(queries, index.nearest_many(queries), index.within_many(queries)):
        want = brute_force_nearest(q, answers)
        assert got == want
        assert (within is not None) == (want.distance <= NEAR_VERBATIM_MAX_DISTANCE)


WORDS = ["the", "cat", "sat", "on", "mat", "a", "Dog", "ran", "x", "플라스틱", "recycling"]


@st.composite
def corpus_and_query(draw):
    n = draw(st.integers(1, 70))
    rng = random.Random(draw(st.integers(0, 2**32)))
    answers = [(f"i{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 25)))) for i in range(n)]
    if draw(st.booleans()):
        src = rng.choice(answers)[1]
        query = _mutate(rng, src, rng.randint(0, max(1, len(src) // 8)))
    else:
        query = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 25)))
    return answers, query


@settings(max_examples=150, deadline=None)
@given(corpus_and_query())
def test_matches_brute_force(case):
    answers, query = case
    index = NearCopyIndex.build(answers)
    want = brute_force_nearest(query, answers)
    got = index.nearest(query)
    # exact at every distance at this size (<= EXACT_NEAREST_MAX answers): same answer (lowest index on
    # ties), same distance -- the nearest training answer the report's pager shows
    assert got == want
    assert index.nearest(query, exhaustive=True) == want
    within = index.within_many([query])[0]
    if want.distance <= NEAR_VERBATIM_MAX_DISTANCE:  # some answer within the threshold, its true distance
        assert within is not None and within.distance <= NEAR_VERBATIM_MAX_DISTANCE
        assert within.distance == normalized_edit_distance(query, answers[within.train_index][1])
        assert index.within_many([query], nearest=True)[0] == want
    else:
        assert within is None and index.within_many([query], nearest=True)[0] is None


def test_within_many_decides_like_brute_force_at_the_threshold():
    # 300 random answers of 40-80 characters; queries are copies with k substitutions, k chosen so the
    # distance falls just below, at and just above 0.10, plus unrelated texts: the decision must be
    # brute force's, on every one of them
    rng = random.Random(11)
    letters = "abcdefghij "
    answers = [(f"a{i}", "".join(rng.choice(letters) for _ in range(rng.randint(40, 80)))) for i in range(300)]
    index = NearCopyIndex.build(answers)
    queries = []
    for _ in range(120):
        src = rng.choice(answers)[1]
        k = round(NEAR_VERBATIM_MAX_DISTANCE * len(src)) + rng.choice([-1, 0, 1])
        chars = list(src)
        for p in rng.sample(range(len(chars)), max(k, 0)):
            chars[p] = "xyz"[rng.randrange(3)]
        queries.append("".join(chars))
    queries += ["".join(rng.choice(letters) for _ in range(60)) for _ in range(20)]
    wants = [brute_force_nearest(q, answers) for q in queries]
    near = [w.distance <= NEAR_VERBATIM_MAX_DISTANCE for w in wants]
    assert 20 < sum(near) < len(queries) - 20  # both sides of the threshold are exercised
    for q, w, got, best in zip(queries, wants, index.within_many(queries), index.within_many(queries, nearest=True)):
        assert (got is not None) == (w.distance <= NEAR_VERBATIM_MAX_DISTANCE)
        assert best == (w if w.distance <= NEAR_VERBATIM_MAX_DISTANCE else None)
        if got is not None:
            assert got.distance == normalized_edit_distance(q, answers[got.train_index][1])


def test_many_batches_answer_as_one_query_at_a_time():
    # > 2 batches of 256 queries hashed together; the order and every answer must be unchanged
    rng = random.Random(4)
    answers = [(f"a{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20)))) for i in range(150)]
    index = NearCopyIndex.build(answers)
    queries = [_mutate(rng, rng.choice(answers)[1], rng.randint(0, 4)) for _ in range(600)]
    assert index.within_many(queries, nearest=True) == [index.within_many([q], nearest=True)[0] for q in queries]
    assert index.nearest_many(queries) == [brute_force_nearest(q, answers) for q in queries]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcxyz 텀블러é!", max_size=40), st.text(alphabet="abcxyz 텀블러é!", max_size=40))
def test_character_count_bound_never_exceeds_the_edit_distance(a, b):
    # the filter before each edit distance may only drop answers that are truly too far
    from rapidfuzz.distance import Levenshtein

    from evalkit.memorization.near_copy import _char_histograms, _histogram_bound

    h = _char_histograms([a, b])
    bound = int(_histogram_bound(h[0], len(a), h[1:], np.array([len(b)]))[0])
    assert bound <= Levenshtein.distance(a, b)
    if len(set(a + b)) == 1:  # one character: the edit distance is the length gap, and so is the bound
        assert bound == abs(len(a) - len(b))
