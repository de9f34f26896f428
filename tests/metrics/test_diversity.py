"""distinct-n and mode collapse (evalkit/metrics/diversity.py)."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from evalkit.metrics.diversity import ModeCollapse, distinct_n, mode_collapse, normalize


def test_distinct_n_hand_computed():
    texts = ["The cat sat.", "the cat ran"]
    # unigrams: the cat sat the cat ran = 6; distinct {the, cat, sat, ran} = 4 -> 4/6
    assert distinct_n(texts, 1) == 4 / 6
    # bigrams (never across texts): the cat, cat sat | the cat, cat ran = 4; distinct 3 -> 3/4
    assert distinct_n(texts, 2) == 3 / 4
    # Korean by syllable: 컵 컵 컵 -> 1 distinct of 3
    assert distinct_n(["컵컵컵"], 1) == 1 / 3
    assert distinct_n([], 1) == 0.0 and distinct_n(["", "one"], 2) == 0.0
    with pytest.raises(ValueError, match="'n' parameter"):
        distinct_n(["a"], 0)


def test_normalization():
    assert normalize("  Use a\n\tTUMBLER. ") == "use a tumbler."


def test_identical_and_near_identical_across_prompts():
    out = mode_collapse(["Use a tumbler.", "use a  TUMBLER.", "Cycle to work.", "Use a tumbler!"],
                        ids=["p1", "p2", "p3", "p4"])
    # p1 == p2 after normalization; p4 differs by 1 edit in 14 chars: similarity 13/14 = 0.93 >= 0.9
    assert out == ModeCollapse(rate=3 / 4, groups=(("p1", "p2", "p4"),), n_outputs=4, n_collapsed=3)
    # near-miss: at threshold 0.95, 0.93 is not enough; the identical pair still is
    assert mode_collapse(["Use a tumbler.", "use a  TUMBLER.", "Use a tumbler!"], threshold=0.95).rate == 2 / 3


def test_same_prompt_does_not_count_and_empty_never_collapses():
    # Two samples of one prompt giving the same answer are not a collapse across prompts.
    assert mode_collapse(["Cycle.", "Cycle."], ids=["p", "p"]).rate == 0.0
    # ... but a third prompt with that answer links all three outputs (2 prompts in the group).
    out = mode_collapse(["Cycle.", "Cycle.", "cycle."], ids=["p", "p", "q"])
    assert out.rate == 1.0 and out.groups == (("p", "q"),)
    # Empty / whitespace outputs: kept in the denominator, never collapsed (the `empty` flag reports them).
    out = mode_collapse(["", "  ", "Cycle.", "Cycle."])
    assert out.rate == 2 / 4 and out.groups == (("2", "3"),)
    assert mode_collapse([]) == ModeCollapse(0.0, (), 0, 0)


def test_korean_collapse():
    out = mode_collapse(["텀블러를 사용해 보세요.", "텀블러를 사용해 보세요!", "자전거로 출근해 보세요."])
    # 1 edit in 13 characters: similarity 12/13 = 0.92
    assert out.rate == 2 / 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="'threshold' parameter"):
        mode_collapse(["a"], threshold=90)
    with pytest.raises(ValueError, match="'ids' parameter"):
        mode_collapse(["a", "b"], ids=["x"])


def brute_force(texts, ids, threshold):
    """Every pair of outputs, linked when ids differ, neither is empty and similarity >= threshold."""
    norm = [normalize(t) for t in texts]
    adj = {i: set() for i in range(len(texts))}
    for i, j in itertools.combinations(range(len(texts)), 2):
        if ids[i] != ids[j] and norm[i] and norm[j] and Levenshtein.normalized_similarity(norm[i], norm[j]) >= threshold:
            adj[i].add(j)
            adj[j].add(i)
    comps, done = [], set()
    for i in range(len(texts)):
        if adj[i] and i not in done:
            stack, comp = [i], set()
            while stack:
                k = stack.pop()
                if k not in comp:
                    comp.add(k)
                    stack.extend(adj[k])
            done |= comp
            comps.append(frozenset(ids[k] for k in comp))
    return sum(bool(adj[i]) for i in adj) / len(texts), set(comps)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ab", "abc", "Ab ", "", "xyz", "abd", "xy"]), st.sampled_from("pqrs")),
                min_size=1, max_size=10),
       st.sampled_from([0.5, 0.6, 0.9, 1.0]))
def test_matches_brute_force(rows, threshold):
    texts, ids = [r[0] for r in rows], [r[1] for r in rows]
    out = mode_collapse(texts, ids, threshold)
    rate, comps = brute_force(texts, ids, threshold)
    assert out.rate == rate
    assert {frozenset(g) for g in out.groups} == comps


def _distinct_brute(texts, n):
    from evalkit.metrics.tokenize import tokens

    grams = [tuple(t[i:i + n]) for text in texts for t in [tokens(text)] for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["the", "Cat", "cat!", "sat", "컵", "a1", "", "x_y", "  "]), max_size=12)
                .map(" ".join), max_size=8), st.integers(1, 5))
def test_distinct_n_equals_the_set_of_tuples(texts, n):
    # the hashed, vectorized count against the definition: a set of token tuples, never across texts
    assert distinct_n(texts, n) == pytest.approx(_distinct_brute(texts, n), abs=1e-12)
