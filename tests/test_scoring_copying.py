"""Copy flags in every script and every assistant turn (scoring.py + memorization/span_index.py)."""

from __future__ import annotations

from evalkit.data import Conversation
from evalkit.scoring import TextItem, TrainingAnswers, score_texts

# 13 Hangul syllables but only 5 Korean words: a stock phrase, not a copied sentence
KO_PHRASE = "텀블러를 사용하면 일회용 컵을 줄여요"
KO_SENTENCE = ("매일 아침 출근길에 텀블러를 챙겨서 카페에 가면 일회용 컵을 쓰지 않아도 되고 일부 카페는 할인도 해 주니까 "
               "한 달만 꾸준히 해 보세요")


def test_span_words_counts_words_not_syllables():
    from evalkit.memorization.span_index import span_words

    assert span_words("Take the bus to work twice a week") == 8
    assert span_words(KO_PHRASE) == 5  # 15 syllables
    assert span_words("我喜欢吃苹果") == 3  # 6 Han characters, ~2 per word
    assert span_words(KO_SENTENCE) >= 13


def _flags(train: list[tuple[str, str]], prediction: str) -> tuple[str, ...]:
    scored = score_texts([TextItem("p", "suite", "q", prediction, "ref")], TrainingAnswers(train), n_boot=20)
    return scored.samples[0].flags


def test_a_korean_stock_phrase_is_not_verbatim_but_a_copied_sentence_is():
    train = [("t1", f"{KO_PHRASE} 그리고 자전거를 타세요."), ("t2", KO_SENTENCE)]
    assert "verbatim" not in _flags(train, f"오늘은 {KO_PHRASE} 정말 쉬워요")
    assert "verbatim" in _flags(train, f"{KO_SENTENCE}!")


def test_every_assistant_turn_is_indexed_for_copying():
    early = ("Start with the heating: turn the thermostat down by one degree and close the curtains at dusk so "
             "the warm air stays in the rooms you actually use")
    conv = Conversation("c1", ({"role": "user", "content": "Heating tips?"}, {"role": "assistant", "content": early},
                               {"role": "user", "content": "And water?"},
                               {"role": "assistant", "content": "Take shorter showers."}))
    assert conv.assistant_turns() == [("c1#0", early), ("c1", "Take shorter showers.")]
    scored = score_texts([TextItem("p", "suite", "q", early, "ref")], TrainingAnswers(conv.assistant_turns()),
                         n_boot=20)
    assert "verbatim" in scored.samples[0].flags and scored.samples[0].memorization.train_id == "c1#0"


def test_every_sample_records_its_nearest_training_answer():
    # the report's pager shows, for ANY answer (copied or not), the training answer nearest it: the
    # brute-force argmin of the normalized edit distance (lowest index on ties), text stored once per id
    import random

    from evalkit.memorization.near_copy import NEAR_VERBATIM_MAX_DISTANCE, brute_force_nearest

    rng = random.Random(5)
    words = ["bike", "bus", "compost", "the", "a", "week", "tumbler", "LED", "shower", "heating", "jar"]
    train = [(f"t{i}", " ".join(rng.choice(words) for _ in range(rng.randint(3, 14)))) for i in range(80)]
    train.append(("dup", train[7][1]))  # a tie: t7 (lower index) must win
    preds = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(30)]
    preds += [train[7][1], train[3][1] + " jar"]
    scored = score_texts([TextItem(f"p{i}", "s", "q", p, "ref") for i, p in enumerate(preds)],
                         TrainingAnswers(train), n_boot=20)
    unflagged = 0
    for s, p in zip(scored.samples, preds):
        want = brute_force_nearest(p, train)
        assert (s.nearest_id, s.nearest_distance) == (want.train_id, want.distance)
        assert scored.nearest_answers[s.nearest_id] == train[want.train_index][1]
        unflagged += s.memorization is None and want.distance > NEAR_VERBATIM_MAX_DISTANCE
    assert unflagged >= 20  # most of them copy nothing and still name their nearest answer
    assert scored.samples[30].nearest_id == "t7" and scored.samples[30].nearest_distance == 0.0
    assert set(scored.nearest_answers) == {s.nearest_id for s in scored.samples}
    assert score_texts([TextItem("p", "s", "q", "x", "ref")], None, n_boot=20).samples[0].nearest_id is None


def test_beyond_the_exact_limit_the_nearest_is_recorded_as_not_proven(monkeypatch):
    # above EXACT_NEAREST_MAX training answers, an answer with nothing within 0.10 gets the nearest of the
    # best-ranked candidates: a real training answer at its true distance, marked nearest_exact=False
    from evalkit.memorization import near_copy
    from evalkit.memorization.near_copy import normalized_edit_distance

    monkeypatch.setattr(near_copy, "EXACT_NEAREST_MAX", 10)
    train = [(f"t{i}", f"answer number {i} about bikes and buses and jars") for i in range(40)]
    preds = ["something else entirely, nothing like them", train[5][1]]
    scored = score_texts([TextItem(f"p{i}", "s", "q", p, "ref") for i, p in enumerate(preds)],
                         TrainingAnswers(train), n_boot=20)
    far, copy = scored.samples
    assert far.nearest_exact is False and far.nearest_id in dict(train)
    assert far.nearest_distance == normalized_edit_distance(preds[0], dict(train)[far.nearest_id])
    assert (copy.nearest_id, copy.nearest_distance, copy.nearest_exact) == ("t5", 0.0, True)
