"""Transfer of the loss gain, skeleton-replay and val-leak reasons; the seed's templated case end to end."""

from __future__ import annotations

import pytest

from benchmarks.templated.generate import make_split, write_jsonl
from evalkit.config import TrainConfig
from evalkit.evaluate import EvalSettings, evaluate_target
from evalkit.generalization import transfer_figures
from evalkit.records import LossExample, load_run, save_record
from evalkit.runtime.engine import Engine
from evalkit.runtime.train import train
from evalkit.verdict import judge


def _loss(i, split, nll, base, n):
    return LossExample(f"{split}{i}", split, nll, base, n)


def test_transfer_gains_are_token_weighted_base_minus_adapter():
    losses = [_loss(0, "train", 0.1, 2.0, 10),
              _loss(1, "val", 1.0, 2.0, 10), _loss(2, "val", 1.0, 3.0, 30),        # gains 1 (x10) and 2 (x30)
              _loss(3, "heldout", 4.0, 3.5, 20), _loss(4, "heldout", 5.0, 5.0, 20)]  # gains -0.5 (x20), 0 (x20)
    summary, intervals, n = transfer_figures(losses, n_boot=500, seed=0)
    assert summary["val_gain"] == pytest.approx((10 * 1 + 30 * 2) / 40)  # 1.75
    assert summary["heldout_gain"] == pytest.approx((20 * -0.5 + 20 * 0) / 40)  # -0.25
    assert summary["transfer_gap"] == pytest.approx(1.75 + 0.25)
    assert n == {"val_gain": 2, "heldout_gain": 2, "transfer_gap": 2}
    # resamples of two examples: every bootstrap mean lies between the per-example gains
    assert 1.0 <= intervals["val_gain"][0] <= 1.75 <= intervals["val_gain"][1] <= 2.0
    assert -0.5 <= intervals["heldout_gain"][0] <= -0.25 <= intervals["heldout_gain"][1] <= 0.0


def test_no_base_losses_no_transfer_figures():
    assert transfer_figures([_loss(0, "val", 1.0, None, 5)]) == ({}, {}, {})


def _codes(v):
    return {r.code: r for r in v.reasons}


def test_gain_on_val_and_loss_on_heldout_is_overfit_only_when_the_interval_clears():
    s = {"val_gain": 1.9, "heldout_gain": -0.15}
    crossed = _codes(judge(s, intervals={"heldout_gain": (-0.25, -0.11)}))["transfer"]
    assert (crossed.level, crossed.status, crossed.ci_high) == ("overfit", "crossed", -0.11)
    unsure = _codes(judge(s, intervals={"heldout_gain": (-0.40, 0.05)}))["transfer"]
    assert (unsure.level, unsure.status) == ("warn", "inconclusive")
    assert "transfer" not in _codes(judge({"val_gain": -0.1, "heldout_gain": -0.15}))  # gained nowhere: no claim
    assert "transfer" not in _codes(judge({"val_gain": 1.0, "heldout_gain": 0.2}))


def test_val_leak_reason_names_the_split_and_the_heldout_evidence():
    v = judge({"val_answer_near_dup_rate": 0.95, "heldout_gain": -0.2, "skeleton_replay_rate": 0.5, "val_gain": 1.0},
              intervals={"heldout_gain": (-0.3, -0.12)})
    r = _codes(v)["val_leak"]
    assert r.level == "warn" and r.value == 0.95 and r.threshold == 0.2
    assert "heldout_gain = -0.2 [-0.3, -0.12]" in r.message and "skeleton_replay_rate = 0.5" in r.message
    assert v.level == "overfit"  # the held-out evidence decides: transfer (and skeleton replay) overfit
    assert {"transfer", "skeleton_replay"} <= set(_codes(v))
    assert "val_leak" not in _codes(judge({"val_answer_near_dup_rate": 0.19}))
    assert "val_leak" in _codes(judge({"val_answer_near_dup_rate": 0.0, "val_answer_skeleton_match_rate": 0.5}))


def test_skeleton_replay_levels():
    assert "skeleton_replay" not in _codes(judge({"skeleton_replay_rate": 0.10}))  # > 0.10 needed
    assert _codes(judge({"skeleton_replay_rate": 0.2}))["skeleton_replay"].level == "warn"
    assert _codes(judge({"skeleton_replay_rate": 0.31}))["skeleton_replay"].level == "overfit"


def test_seed_config_on_a_templated_split_is_not_ok_and_says_why(tiny_llama, mini_data, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    tr, va = make_split(64, 16, seed=0)
    train_path, val_path = write_jsonl(tr, tmp_path / "t.jsonl"), write_jsonl(va, tmp_path / "v.jsonl")
    # the seed's LoRA config: all seven modules, r=16, alpha=32, lr 2e-4, 2 epochs
    cfg = TrainConfig(base=str(tiny_llama), train_data=str(train_path), val_data=str(val_path), r=16, lora_alpha=32,
                      lora_dropout=0.05, target_modules="all7", learning_rate=2e-4, num_epochs=2, batch_size=8,
                      max_length=352, eval_steps=4)
    messages = []
    result = train(cfg, tmp_path / "seed", progress=False, console=messages.append)
    assert "val_leak" in {w["code"] for w in result.record["audit"]["warnings"]}  # evalkit.json carries it
    assert any(m.startswith("warning [val_leak]") for m in messages)
    engine = Engine(str(tiny_llama), cache=False)
    rec = evaluate_target(engine, tmp_path / "seed", suites=[mini_data["suite_en"]], train_data=train_path,
                          val_data=val_path, settings=EvalSettings(max_new_tokens=8, train_sample=16, extraction_n=2,
                                                                   n_boot=100))
    assert rec.audit.summary["val_answer_near_dup_rate"] >= 0.9
    assert "val_leak" in {n.code for n in rec.notices}
    assert rec.verdict.level != "ok"
    leak = _codes(rec.verdict)["val_leak"]
    assert "validation split leaks" in leak.message and "heldout_gain" in leak.message
    for key in ("val_gain", "heldout_gain", "transfer_gap", "skeleton_replay_rate"):
        assert key in rec.summary and key in rec.intervals and rec.n[key] > 0
    save_record(rec, tmp_path / "results.json")
    again = load_run(tmp_path / "results.json")
    assert again.audit == rec.audit and again.notices == rec.notices
