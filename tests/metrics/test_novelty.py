"""RAVEN-style novelty (evalkit/metrics/novelty.py), against hand counts and a brute-force twin."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.metrics.novelty import NoveltyIndex, novelty_summary
from evalkit.metrics.registry import NOVELTY_NS
from evalkit.metrics.tokenize import tokens


def brute_force(train, texts, ns=NOVELTY_NS):
    """Sets of token tuples per n; share of the texts' n-gram occurrences in none of them."""
    seen = {n: set() for n in ns}
    for t in train:
        toks = tokens(t)
        for n in ns:
            seen[n].update(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    out = {}
    for n in ns:
        grams = [tuple(toks[i:i + n]) for toks in map(tokens, texts) for i in range(len(toks) - n + 1)]
        out[n] = sum(g not in seen[n] for g in grams) / len(grams) if grams else None
    return out


def test_hand_computed():
    idx = NoveltyIndex(["Carry a reusable cup.", "Cycle to work"])
    got = idx.novelty("carry a reusable bottle to work")
    # unigrams: carry a reusable (seen) bottle (new) to work (seen)      -> 1/6
    # bigrams: carry a, a reusable (seen); reusable bottle, bottle to (new); to work (seen) -> 2/5
    # trigrams: carry a reusable (seen); 3 others new                      -> 3/4
    # 4-grams: 3, all new (the only training 4-gram is "carry a reusable cup") -> 1.0
    # 5-grams: 2, 6-grams: 1, 7- and 8-grams: none                        -> None
    assert got == {1: 1 / 6, 2: 2 / 5, 3: 3 / 4, 4: 1.0, 5: 1.0, 6: 1.0, 7: None, 8: None}
    # n-grams never cross answers: "cup cycle" was never a training bigram
    assert idx.novelty("cup cycle")[2] == 1.0
    assert idx.novelty("")[1] is None and idx.novelty("!!")[1] is None


def test_corpus_novelty_pools_occurrences_not_texts():
    idx = NoveltyIndex(["a b c"])
    # text 1: a b c d -> 4 unigrams, 1 new; text 2: e -> 1 unigram, 1 new. Pooled 2/5 (mean of texts would be 0.625)
    assert idx.corpus_novelty(["a b c d", "e"])[1] == 2 / 5
    assert idx.corpus_novelty([])[1] is None
    # repeated occurrences count every time: "d d d" -> 3 new of 3; "a a" -> 0 of 2
    assert idx.novelty("d d d")[1] == 1.0 and idx.novelty("a a")[1] == 0.0


def test_korean_is_scored_by_syllable():
    idx = NoveltyIndex(["텀블러를 사용해 보세요."])
    # 텀 블 러 를 써 요: 텀블러를 + 요 seen (5 of 6) -> 1/6 new; bigrams 텀블 블러 러를 seen, 를써 써요 new -> 2/5
    got = idx.novelty("텀블러를 써요")
    assert got[1] == 1 / 6 and got[2] == 2 / 5


def test_summary_and_gap():
    idx = NoveltyIndex(["one two three four five"])
    out = novelty_summary(idx, ["one two three four six"], ["seven eight nine ten"])
    # model 4-grams: "one two three four" (seen), "two three four six" (new) -> 0.5; reference: 1 of 1 new -> 1.0
    assert out["novelty_4"] == 0.5 and out["reference_novelty_4"] == 1.0
    assert out["novelty_gap_4"] == -0.5  # the model copies more than the people did
    assert "novelty_5" in out and "novelty_6" not in out  # undefined values are left out
    assert "reference_novelty_1" not in novelty_summary(idx, ["x"])


def test_bad_ns():
    with pytest.raises(ValueError, match="'ns' parameter"):
        NoveltyIndex(["a"], ns=(0, 2))
    assert NoveltyIndex(["a b"], ns=(2,)).novelty("a b c") == {2: 0.5}


WORDS = st.lists(st.sampled_from(["a", "b", "c", "텀", "블", "the"]), max_size=14).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(st.lists(WORDS, max_size=6), st.lists(WORDS, max_size=4))
def test_matches_brute_force(train, texts):
    idx = NoveltyIndex(train)
    assert idx.corpus_novelty(texts) == brute_force(train, texts)
    assert idx.novelty_many(texts) == [brute_force(train, [t]) for t in texts]


REPO = str(Path(__file__).resolve().parents[2])


def test_hashes_are_the_same_in_another_process():
    # Python's own hash() of a str changes with PYTHONHASHSEED; ours must not.
    code = ("from evalkit.metrics.novelty import NoveltyIndex; i = NoveltyIndex(['tumbler cup 텀블러']); "
            "print([int(i._sets[n].sum()) for n in i.ns])")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": REPO}).stdout for seed in ("1", "2")}
    idx = NoveltyIndex(["tumbler cup 텀블러"])
    assert runs == {f"{[int(idx._sets[n].sum()) for n in idx.ns]}\n"}
