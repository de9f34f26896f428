"""ROUGE (evalkit/metrics/rouge.py): hand-computed values, Korean, and bit-parity with rouge-score."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from rouge_score.rouge_scorer import RougeScorer

from evalkit.metrics.rouge import (ROUGE_TYPES, _lcs_ref_indices, reference_scorer, rouge_batch, rouge_input,
                                   rouge_scores)

PLAIN = RougeScorer(list(ROUGE_TYPES))  # rouge-score with its default (ASCII) tokenizer


def plain_f1(prediction, reference, scorer=PLAIN, sentence_split=True):
    got = scorer.score(rouge_input(reference, sentence_split), rouge_input(prediction, sentence_split))
    return {k: v.fmeasure for k, v in got.items()}


def test_hand_computed_english():
    s = rouge_scores("The cat sat on the mat.", "The cat is on the mat.")
    # unigrams: the x2, cat, on, mat shared = 5 of 6 each side -> P = R = F = 5/6
    assert s["rouge1"] == pytest.approx(5 / 6)
    # bigrams: pred {the cat, cat sat, sat on, on the, the mat}, ref {the cat, cat is, is on, on the, the mat}
    # shared 3 of 5 each side -> F = 3/5
    assert s["rouge2"] == pytest.approx(3 / 5)
    # LCS "the cat on the mat" = 5 -> 5/6; one sentence each, so rougeLsum = rougeL
    assert s["rougeL"] == pytest.approx(5 / 6) and s["rougeLsum"] == s["rougeL"]


def test_rouge_lsum_uses_sentences_lin_2004_example():
    # Lin (2004) sec. 3.2: r = w1 w2 w3 w4 w5; candidate sentences c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5
    # (words, not letters: a single letter before a period reads as an initial, "J. K.", no cut).
    pred, ref = "One three eight nine five. One two six seven eight.", "One two three four five."
    s = rouge_scores(pred, ref)
    # rougeL over the whole text: LCS(r, c2 c1) = "one three five" = 3
    # P = 3/10, R = 3/5 -> F = 2*.3*.6/.9 = 0.4
    assert s["rougeL"] == pytest.approx(0.4)
    # rougeLsum: union of LCS(r,c1) = {w1,w2} and LCS(r,c2) = {w1,w3,w5} = {w1,w2,w3,w5} -> 4 hits
    # P = 4/10, R = 4/5 -> F = 2*.4*.8/1.2 = 8/15
    assert s["rougeLsum"] == pytest.approx(8 / 15)
    # Without sentence splitting the prediction is one line, and rougeLsum falls back to rougeL.
    assert rouge_scores(pred, ref, sentence_split=False)["rougeLsum"] == pytest.approx(0.4)
    assert s == plain_f1(pred, ref)


def test_korean_identical_paraphrase_and_mixed():
    ko = "텀블러 사용 챌린지를 추천해요. 하루 세 개면 한 달에 90개 가까운 컵을 줄이는 셈이에요."
    assert rouge_scores(ko, ko) == {t: 1.0 for t in ROUGE_TYPES}
    # rouge-score's own tokenizer keeps only "90" of this text: why evalkit tokenizes Hangul.
    assert RougeScorer(["rouge1"]).score("텀블러를 써요", "텀블러를 써요")["rouge1"].fmeasure == 0
    s = rouge_scores("텀블러를 써요", "텀블러를 쓰세요")
    # pred 텀 블 러 를 써 요 (6), ref 텀 블 러 를 쓰 세 요 (7); shared unigrams 5
    # F1 = 2*(5/6)*(5/7) / (5/6 + 5/7) = 10/13
    assert s["rouge1"] == pytest.approx(10 / 13)
    # bigrams: 5 vs 6, shared 텀블 블러 러를 = 3 -> F = 2*(3/5)*(3/6)/(3/5+3/6) = 6/11
    assert s["rouge2"] == pytest.approx(6 / 11)
    assert s["rougeL"] == pytest.approx(10 / 13)  # LCS 텀블러를요 = 5
    assert all(0 < v < 1 for v in s.values())
    mixed = rouge_scores("LED 전구로 바꾸세요", "LED 전구로 교체하세요")
    # pred led 전 구 로 바 꾸 세 요 (8), ref led 전 구 로 교 체 하 세 요 (9), shared 6
    # F = 2*(6/8)*(6/9) / (6/8 + 6/9) = 12/17
    assert mixed["rouge1"] == pytest.approx(12 / 17)


@pytest.mark.parametrize("pred,ref", [("", "The cat."), ("The cat.", ""), ("", ""), ("!!", "?!"), ("\n\n", "a")])
def test_empty_or_tokenless_sides_score_zero_like_rouge_score(pred, ref):
    assert rouge_scores(pred, ref) == {t: 0.0 for t in ROUGE_TYPES}
    assert plain_f1(pred, ref) == {t: 0.0 for t in ROUGE_TYPES}


REALISTIC = [
    ("Go for the LED swap. Fourteen halogen spotlights are a real energy drain, and LED replacements with the "
     "same fitting use a fraction of the power.",
     "Swap the halogens for LEDs. They use a fraction of the power and barely get warm. Start with the rooms "
     "you use most in the evening and you should see the difference on next month's bill."),
    ("Try Zero food waste week: plan four dinners, cook as usual, and freeze single portions.\nBy Friday you'll "
     "have ready meals instead of a full bin.",
     "Cooking for a crowd out of habit is really common once the house empties. Try Zero food waste week: plan "
     "four dinners, cook as usual, and freeze single portions in labelled containers straight away."),
    ("Dr. Lee says: e.g. the bus. The bus! The bus? the bus...", "The bus is the best. Take the bus, the bus."),
]


@pytest.mark.parametrize("pred,ref", REALISTIC)
def test_realistic_english_parity(pred, ref):
    assert rouge_scores(pred, ref) == plain_f1(pred, ref)
    assert rouge_scores(pred, ref, sentence_split=False) == plain_f1(pred, ref, sentence_split=False)


ASCII = st.text(alphabet=st.characters(max_codepoint=127), max_size=60)
# Few distinct words and many sentence ends: many overlaps, repeated tokens and LCS ties,
# which is where a different (equally long) LCS would change rougeLsum.
WORDY = st.lists(st.sampled_from(["the", "cat", "a", "sat", "The", "mat", ".", "!", "\n", "e.g.", "Dr."]),
                 max_size=30).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(ASCII, WORDY), st.one_of(ASCII, WORDY))
def test_bit_identical_to_rouge_score_on_ascii(pred, ref):
    assert rouge_scores(pred, ref) == plain_f1(pred, ref)
    assert rouge_scores(pred, ref, sentence_split=False) == plain_f1(pred, ref, sentence_split=False)


MULTI = st.lists(st.sampled_from(["텀블러", "를", "컵", "cup", "Σ", "σ", "the", "。", ".", "\n", "요"]),
                 max_size=25).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(MULTI, MULTI)
def test_fast_path_equals_rouge_score_with_our_tokenizer(pred, ref):
    slow = reference_scorer()
    assert rouge_scores(pred, ref) == plain_f1(pred, ref, scorer=slow)
    assert rouge_scores(pred, ref, sentence_split=False) == plain_f1(pred, ref, scorer=slow, sentence_split=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=12), st.lists(st.sampled_from("abcd"), min_size=1, max_size=12))
def test_bit_parallel_lcs_picks_rouge_scores_lcs(ref, can):
    masks = {}
    for j, w in enumerate(can):
        masks[w] = masks.get(w, 0) | (1 << j)
    assert _lcs_ref_indices(ref, can, masks) == rouge_scorer.lcs_ind(ref, can)


def test_sentence_split_changes_only_rougelsum():
    pred, ref = REALISTIC[0]
    a, b = rouge_scores(pred, ref), rouge_scores(pred, ref, sentence_split=False)
    assert {k: a[k] for k in ("rouge1", "rouge2", "rougeL")} == {k: b[k] for k in ("rouge1", "rouge2", "rougeL")}
    assert a["rougeLsum"] != b["rougeLsum"]


def test_batch_keeps_order_and_checks_lengths():
    out = rouge_batch(["a b", "텀블러"], ["a b", "컵"])
    assert out[0]["rouge1"] == 1.0 and out[1]["rouge1"] == 0.0
    with pytest.raises(ValueError, match="one reference per prediction"):
        rouge_batch(["a"], [])
