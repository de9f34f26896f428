"""Answer skeletons (memorization/skeleton.py): expected frames written out by hand."""

from __future__ import annotations

from evalkit.memorization.near_copy import normalized_edit_distance
from evalkit.memorization.skeleton import SkeletonIndex, SkeletonMasker
from evalkit.memorization.span_index import SpanIndex

FRAME = ["i", "recommend", "the", "for", "your", "next", "start", "with", "small", "steps", "good", "luck"]


def test_skeleton_masks_catalog_names_numbers_and_content_words():
    m = SkeletonMasker(FRAME, catalog_names=["LED swap"])
    text = "I recommend the LED swap for your next bill. Start with 3 small steps. Good luck!"
    # LED swap -> slot (catalog name), bill -> slot (not a frame word), 3 -> slot (a number)
    assert m.skeleton(text) == "i recommend the _ for your next _ start with _ small steps good luck"
    # consecutive slots collapse: "AirBnB app" is one slot
    assert m.skeleton("I recommend the AirBnB app for your next upgrade. Good luck!") == \
        "i recommend the _ for your next _ good luck"


def test_too_few_frame_words_give_no_skeleton():
    m = SkeletonMasker(FRAME)
    assert m.skeleton("Composting cuts methane. Good luck!") is None  # 2 frame words < 6


def test_fit_keeps_stop_words_and_words_recurring_across_answers():
    answers = [f"Try the plan called alpha{i} today, then relax" for i in range(10)]
    m = SkeletonMasker.fit(answers)
    assert {"try", "plan", "called", "today", "relax", "the", "then"} <= m.frame_words
    assert "alpha3" not in m.frame_words  # each filler occurs once: a slot


def test_template_share_counts_only_skeletons_shared_by_two_or_more_answers():
    tpl_a = "I recommend the {} for your next {}. Start with small steps. Good luck!"
    tpl_b = "Start with the {} for your {} and good luck with the next small steps, I recommend it"
    answers = [tpl_a.format(w, v) for w, v in [("lamp", "bill"), ("cup", "trip"), ("bike", "commute"), ("jar", "shop")]]
    answers += [tpl_b.format(w, v) for w, v in [("lamp", "bill"), ("cup", "trip")]]
    answers += ["I recommend only the garden", "for your next step, good", "luck with the start, small"]
    index = SkeletonIndex(SkeletonMasker(FRAME), [str(i) for i in range(9)],
                          [SkeletonMasker(FRAME).skeleton(a) for a in answers])
    assert index.top_share(10, min_count=2) == 6 / 9  # 4 + 2 answers of two shared skeletons, 3 unique or none


def test_a_training_frame_around_new_words_is_caught_where_the_copy_tests_see_nothing():
    frame = ("Great question! I recommend the {} challenge for {}. Start with {} small steps this week and keep a "
             "short note of your progress every evening. Good luck!")
    train = [("t1", frame.format("reusable cup", "lower bills", 3)), ("t2", frame.format("LED swap", "cleaner air", 2)),
             ("t3", frame.format("Meatless Mondays", "better health", 4)),
             ("t4", "Composting is easy: collect peelings in a jar, empty it into the garden bin on Sundays, and "
                    "your rubbish will shrink by a third within a month.")]
    train += [(f"f{i}", f"filler text {i} with the and of for") for i in range(8)]
    # the case: the training frame around nonsense
    gen = ("Great question! I recommend the AirBnB app challenge for gaming upgrades. Start with 5 small steps this "
           "week and keep a short note of your apps every evening. Good luck!")
    assert min(normalized_edit_distance(gen, t) for _, t in train) > 0.10  # not a near copy
    # longest shared run: "small steps this week and keep a short note of your" (11 tokens) < the verbatim 13
    assert SpanIndex.build(train, exact_short=True).longest_spans([gen], min_tokens=1)[0].n_tokens == 11
    index = SkeletonIndex.build(train)
    hit = index.matches([gen, "A tree in the park, planted by the kids of the school, for the town."])
    assert hit[0] is not None and hit[0].train_id in {"t1", "t2", "t3"}
    assert hit[1] is None


def _skeleton_twin(text, frame, names):
    """The definition, one token at a time: names (token runs, longest first) and non-frame tokens are
    slots, runs of slots collapse, fewer than 6 frame words give None."""
    from evalkit.metrics.tokenize import tokens

    toks, name_toks = tokens(text), sorted((tokens(n) for n in names), key=len, reverse=True)
    out, kept, i = [], 0, 0
    while i < len(toks):
        n = next((len(nt) for nt in name_toks if nt and toks[i:i + len(nt)] == nt), 0)
        frame_word = not n and toks[i] in frame and not any(c.isdigit() for c in toks[i])
        if frame_word:
            out.append(toks[i])
            kept += 1
        elif not out or out[-1] != "_":
            out.append("_")
        i += max(n, 1)
    return " ".join(out) if kept >= 6 else None


def test_vectorized_skeletons_equal_the_token_by_token_definition():
    import random

    rng = random.Random(8)
    vocab = FRAME + ["bill", "LED", "swap", "cup", "3", "b2", "Zero", "waste", "week", "텀블러", "reusable"]
    names = ["LED swap", "Zero waste week", "reusable cup", "cup"]
    m = SkeletonMasker(FRAME + ["week"], catalog_names=names)
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30))) + rng.choice(["", ".", "!"])
             for _ in range(300)] + ["", "   ", "LED swap LED swap"]
    assert m.skeletons(texts) == [_skeleton_twin(t, m.frame_words, names) for t in texts]
