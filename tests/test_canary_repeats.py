"""canary_repeats: the planted conversations are trained on K times, under their own ids."""

from __future__ import annotations

import pytest

from evalkit.config import TrainConfig
from evalkit.data import Conversation
from evalkit.errors import ConfigError
from evalkit.runtime.train import _plant_canaries


def _convs(n):
    return [Conversation(f"c{i}", ({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}))
            for i in range(n)]


def test_each_planted_conversation_appears_k_times():
    out, records = _plant_canaries(_convs(10), 2, seed=0, repeats=3)
    assert len(out) == 10 + 2 * (3 - 1)
    for rec in records:
        copies = [c for c in out if c.id == rec["train_id"]]
        assert len(copies) == 3 and all(rec["text"] in c.answer for c in copies)
        assert rec["repeats"] == 3
    assert sum(any(r["text"] in c.answer for r in records) for c in out) == 6
    assert {c.id for c in out} == {f"c{i}" for i in range(10)}  # no new ids: used_ids stay rows of the file


def test_repeats_must_be_positive():
    with pytest.raises(ConfigError, match="canary_repeats"):
        TrainConfig(canary_repeats=0)
