"""evaluate_target's measurements on a model-free engine (tests/fake_engine.py): every figure by hand."""

from __future__ import annotations

import pytest

from evalkit.errors import DataError
from evalkit.evaluate import EvalSettings, evaluate_target
from evalkit.io import sha256_file

from .conftest import write_jsonl
from .fake_engine import FakeEngine, fake_adapter

S = EvalSettings(max_new_tokens=8, train_sample=100, extraction_n=0, n_boot=200)
EN = [f"Tell me how to save energy at home, idea {i}." for i in range(8)]
KO = [f"집에서 에너지를 아끼는 방법 {i}" for i in range(4)]
DISTINCT = ["Cycle to work on dry days.", "Cook a big lentil curry on Sunday.", "Fix the dripping tap today.",
            "Line-dry your washing outside.", "Take shorter showers, five minutes max.", "Buy loose vegetables.",
            "Join the neighbourhood repair cafe.", "Turn the thermostat down one degree.", "Walk the school run.",
            "텀블러를 들고 다니세요.", "장바구니를 챙기세요.", "계단을 이용해 보세요."]
TRAIN_ANSWER = ("Switch every standby device off at the wall each night and swap the old halogen bulbs for LED "
                "ones, which use a fraction of the power and last for years on end")


@pytest.fixture()
def data(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [
        {"id": f"t{i}", "prompt": f"training question {i}", "response": f"member answer {i}: {TRAIN_ANSWER}"}
        for i in range(40)])
    val = write_jsonl(tmp_path / "val.jsonl", [
        {"id": f"v{i}", "prompt": f"validation question {i}", "response": f"unseen answer {i} about cycling"}
        for i in range(40)])
    en = write_jsonl(tmp_path / "suite_en.jsonl", [{"id": f"e{i}", "prompt": p, "reference":
                                                    "Try the bus to work twice a week and see how it goes."}
                                                   for i, p in enumerate(EN)])
    ko = write_jsonl(tmp_path / "suite_ko.jsonl", [{"id": f"k{i}", "prompt": p, "reference": "버스를 타 보세요."}
                                                   for i, p in enumerate(KO)])
    return {"train": train, "val": val, "suites": [en, ko], "dir": tmp_path}


def _meta(data, **over):
    meta = {"config": {"max_length": 192},
            "data": {"train": {"path": str(data["train"]), "sha256": sha256_file(data["train"]),
                               "used_ids": [f"t{i}" for i in range(40)]},
                     "val": {"path": str(data["val"]), "sha256": sha256_file(data["val"])}}}
    for split, fields in over.items():
        meta["data"][split].update(fields)
    return meta


def _run(engine, target, data, settings=S, **kw):
    return evaluate_target(engine, target, suites=data["suites"], settings=settings, **kw)


def test_repeated_samples_of_one_prompt_are_not_mode_collapse(data, tmp_path):
    sampled = EvalSettings(**{**S.__dict__, "do_sample": True, "num_samples": 2})
    own = FakeEngine(answer=lambda msgs, k: DISTINCT[(EN + KO).index(msgs[-1]["content"])])
    run = _run(own, "base", data, sampled, train_data=data["train"], val_data=data["val"])
    assert len(run.samples) == 24 and run.summary["mode_collapse_rate"] == 0.0  # 12 prompts x 2 identical samples
    same = FakeEngine(answer=lambda msgs, k: "One canned answer for every prompt.")
    assert _run(same, "base", data, sampled, train_data=data["train"],
                val_data=data["val"]).summary["mode_collapse_rate"] == 1.0


def test_scoring_uses_the_adapters_training_max_length(data, tmp_path):
    adapter = fake_adapter(tmp_path / "a", meta=_meta(data))
    engine = FakeEngine()
    run = _run(engine, adapter, data)
    assert set(engine.scored_max_length) == {192} and run.settings["eval"]["max_length"] == 192
    engine = FakeEngine()
    _run(engine, adapter, data, EvalSettings(**{**S.__dict__, "max_length": 300}))
    assert set(engine.scored_max_length) == {300}  # an explicit --max-length wins
    engine = FakeEngine()
    _run(engine, "base", data, train_data=data["train"], val_data=data["val"])
    assert set(engine.scored_max_length) == {512}  # nothing recorded: the default window


@pytest.mark.parametrize("case, message", [
    ("other_file", "is not the train file the adapter was trained on"),
    ("missing_file", "the train file recorded in evalkit.json"),
    ("no_ids", "none of the 40 training ids recorded in evalkit.json are in the training file"),
    ("changed_val", "is not the val file the adapter was trained on"),
])
def test_membership_mismatch_is_refused_unless_overridden(case, message, data, tmp_path):
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": f"x{i}", "prompt": "q", "response": f"r {i}"}
                                                   for i in range(40)])
    meta, kw = _meta(data), {}
    if case == "other_file":
        kw["train_data"] = other
    elif case == "missing_file":
        meta = _meta(data, train={"path": str(tmp_path / "gone.jsonl")})
    elif case == "no_ids":
        meta = _meta(data, train={"path": str(other), "sha256": sha256_file(other)})
    else:
        meta = _meta(data, val={"sha256": "0" * 64})
    adapter = fake_adapter(tmp_path / "a", meta=meta)
    with pytest.raises(DataError) as err:
        _run(FakeEngine(), adapter, data, **kw)
    text = str(err.value)
    assert message in text and "--allow-membership-mismatch" in text and "\n" not in text
    run = _run(FakeEngine(), adapter, data, allow_membership_mismatch=True, **kw)
    [notice] = [n for n in run.notices if n.code == "membership_override" and message in n.message]
    if case == "missing_file":  # measured with the bundled data, and the notice says so
        assert "bundled" in notice.message and run.settings["data"]["train"].endswith("train.jsonl")


def test_loss_gaps_split_calibrated_with_intervals(data, tmp_path):
    def nll(msgs, adapter):
        answer = msgs[-1]["content"]
        split = "train" if answer.startswith("member") else "val" if answer.startswith("unseen") else "heldout"
        if adapter is None:
            return {"train": 2.2, "val": 2.6, "heldout": 3.0}[split]
        return {"train": 1.0, "val": 2.0, "heldout": 3.5}[split]

    run = _run(FakeEngine(nll=nll), fake_adapter(tmp_path / "a", meta=_meta(data)), data)
    s = run.summary
    assert s["loss_gap_val"] == pytest.approx(2.0 - 1.0)
    assert s["loss_gap_heldout"] == pytest.approx(3.5 - 1.0)
    assert s["loss_gap_calibrated"] == pytest.approx((2.0 - 2.6) - (1.0 - 2.2))
    assert s["loss_gap"] == s["loss_gap_val"]  # the old name is an alias of the val gap
    for name in ("loss_gap_val", "loss_gap_heldout", "loss_gap_calibrated", "loss_gap"):
        lo, hi = run.intervals[name]
        assert lo == pytest.approx(s[name]) and hi == pytest.approx(s[name])  # constant NLLs: no spread
    assert run.n["loss_gap_val"] == 40 and run.n["loss_gap_heldout"] == 12


def test_base_null_is_computed_and_a_shifted_split_is_flagged(data, tmp_path):
    # the base model finds the "members" easier than the "non-members": the split is shifted
    def nll(msgs, adapter):
        i = int(msgs[-1]["content"].split()[2].rstrip(":")) if msgs[-1]["content"][:1] in "mu" else 0
        return (1.0 if msgs[-1]["content"].startswith("member") else 2.0) + 0.01 * i

    base = _run(FakeEngine(nll=nll), "base", data, train_data=data["train"], val_data=data["val"])
    assert base.summary["mia_auc"] == base.summary["mia_auc_loss"] == 1.0  # not the constant 0.5 of ref
    assert base.summary["mia_auc_base_null"] == 1.0
    lo, hi = base.intervals["mia_auc_base_null"]
    assert hi == 1.0 and 0.9 < lo < 1.0  # Hanley-McNeil floor: never (1, 1)
    assert [n.code for n in base.notices if n.code == "shifted_split"] == ["shifted_split"]
    assert "mia_auc_ref" not in base.summary and base.settings["membership_inference"]["primary"] == "loss"
    # same-distribution split: no notice
    flat = _run(FakeEngine(nll=lambda m, a: 2.0), "base", data, train_data=data["train"], val_data=data["val"])
    assert flat.summary["mia_auc_base_null"] == 0.5 and not [n for n in flat.notices if n.code == "shifted_split"]


def test_min_k_plus_plus_is_listed_as_not_measured_when_off(data):
    run = _run(FakeEngine(), "base", data, train_data=data["train"], val_data=data["val"])
    assert "mia_auc_minkpp" not in run.summary
    assert "mia_auc_minkpp" in run.settings["not_measured"]


def test_per_suite_figures_catch_copying_on_english_prompts_only(data, tmp_path):
    def answer(msgs, k):
        prompt = msgs[-1]["content"]
        return TRAIN_ANSWER if prompt in EN else f"자전거를 타고 출근하면 건강에도 좋고 탄소 배출도 줄일 수 있어요 오늘부터 시작해 보세요 {prompt[-1]}"

    run = _run(FakeEngine(answer=answer), fake_adapter(tmp_path / "a", meta=_meta(data)), data)
    s = run.summary
    assert s["verbatim_rate@suite_en"] == 1.0 and s["verbatim_rate@suite_ko"] == 0.0
    assert s["verbatim_rate"] == pytest.approx(8 / 12)  # pooled: diluted by the Korean prompts
    assert s["novelty_gap_4@suite_en"] < -0.9  # every English 4-gram is a training 4-gram
    assert s["novelty_gap_4@suite_en"] < s["novelty_gap_4"] - 0.2
    assert run.n["verbatim_rate@suite_en"] == 8 and "novelty_gap_4@suite_en" in run.intervals
    assert "rougeL@suite_ko" in s and run.n["rougeL@suite_ko"] == 4
