"""length_ratio: hand-counted tokens (evalkit's tokenizer: letter/digit runs, Hangul per syllable)."""

import pytest

from evalkit.metrics.length import length_ratio
from evalkit.metrics.registry import METRICS
from evalkit.scoring import TextItem, score_texts


@pytest.mark.parametrize("pred, ref, expected", [
    ("Use a reusable bottle.", "Carry a bottle.", 4 / 3),  # use a reusable bottle | carry a bottle
    ("", "Carry a bottle.", 0.0),
    ("텀블러", "텀블러를 써요", 3 / 6),  # Hangul: one token per syllable (텀 블 러 를 써 요)
    ("anything", "", None),
    ("anything", "...", None),
])
def test_length_ratio_hand_counted(pred, ref, expected):
    got = length_ratio(pred, ref)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_registered_metric_reaches_the_summary_with_interval_and_n():
    spec = METRICS["length_ratio"]
    assert spec.per_sample is length_ratio and spec.paired == "sample:length_ratio" and spec.group == "quality"
    items = [TextItem("a", "s", "p", "one two", "one two three four"), TextItem("b", "s", "p", "x y z", "x"),
             TextItem("c", "s", "p", "x", "")]  # c: empty reference -> not counted
    scores = score_texts(items, None, n_boot=200)
    assert scores.summary["length_ratio"] == pytest.approx((0.5 + 3.0) / 2)
    assert scores.n["length_ratio"] == 2
    lo, hi = scores.intervals["length_ratio"]
    assert 0.5 <= lo <= hi <= 3.0
    assert [s.metrics.get("length_ratio") for s in scores.samples] == [0.5, 3.0, None]
