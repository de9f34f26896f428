"""evalkit.comparison: deltas, pairing, errors, outputs, and the comparison.json golden file."""

from __future__ import annotations

import dataclasses
import json

import pytest

from evalkit.comparison import compare_runs, compute_deltas, ordered_metrics, paired_values
from evalkit.errors import ConfigError, EvalkitError, ModelError
from evalkit.gate import default_gate
from evalkit.metrics.registry import METRICS
from evalkit.records import Comparison, to_dict
from tests.fakes import assert_golden, make_run, scrub, standard_comparison


@pytest.fixture(scope="module")
def runs():
    return [make_run("base", target_kind="base"), make_run("gentle", seed=1, rouge_shift=0.03),
            make_run("seedlike", seed=2, copy_rate=0.3, rouge_shift=-0.08)]


@pytest.fixture(scope="module")
def comp(runs):
    return compare_runs(runs, gate=default_gate(), n_boot=500)


def delta(c: Comparison, candidate: str, metric: str):
    [d] = [d for d in c.deltas if d.candidate == candidate and d.metric == metric]
    return d


# ---------------------------------------------------------------- names and targets


def test_baseline_is_first_and_names_default_to_target_names(comp):
    assert comp.baseline == "base"
    assert comp.targets == ("base", "gentle", "seedlike")
    assert set(comp.runs) == set(comp.targets)
    assert {d.candidate for d in comp.deltas} == {"gentle", "seedlike"}


def test_explicit_names(runs):
    c = compare_runs(runs[:2], names=["B", "A (lr 1e-4)"], n_boot=50)
    assert c.targets == ("B", "A (lr 1e-4)") and c.baseline == "B"
    assert c.runs["A (lr 1e-4)"] is runs[1]


@pytest.mark.parametrize("names, message", [
    (["x", "x"], "target name 'x' is used by 2 runs; names must be unique"),
    (["x"], "got 1 names for 2 runs"),
    (["x", " "], "must not be empty"),
])
def test_bad_names(runs, names, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        compare_runs(runs[:2], names=names)


def test_duplicate_target_names_need_explicit_names():
    with pytest.raises(ConfigError, match="'a' is used by 2 runs"):
        compare_runs([make_run("a"), make_run("a", seed=1)])


def test_fewer_than_two_runs():
    with pytest.raises(ConfigError, match="at least two runs"):
        compare_runs([make_run("a")])
    with pytest.raises(EvalkitError):
        compare_runs([])


def test_mismatched_base_models_name_both():
    a = make_run("on-smollm", base_model="SmolLM2-135M", base_hash="a" * 64)
    b = make_run("on-qwen", seed=1, base_model="Qwen2.5-0.5B", base_hash="b" * 64)
    with pytest.raises(ModelError) as e:
        compare_runs([a, b])
    msg = str(e.value)
    assert "'on-smollm' and 'on-qwen'" in msg and "SmolLM2-135M" in msg and "Qwen2.5-0.5B" in msg
    # predictions files have no base model: never a mismatch
    compare_runs([a, make_run("preds", kind="score")], n_boot=50)


# ---------------------------------------------------------------- deltas


def test_one_delta_per_metric_in_both_summaries(comp, runs):
    for cand in ("gentle", "seedlike"):
        got = [d.metric for d in comp.deltas if d.candidate == cand]
        both = set(runs[0].summary) & set(comp.runs[cand].summary)
        assert set(got) == both
        assert got == ordered_metrics(both)  # registry order


def test_score_candidate_only_gets_shared_metrics(runs):
    c = compare_runs([runs[0], make_run("preds", kind="score")], n_boot=50)
    metrics = {d.metric for d in c.deltas}
    assert "rougeL" in metrics and "mia_auc" not in metrics and "train_loss" not in metrics


def test_paired_sources_and_tests(comp):
    d = delta(comp, "seedlike", "rougeL")
    assert d.test == "paired_bootstrap+wilcoxon" and d.n_pairs == 20
    assert d.ci_low <= d.delta <= d.ci_high
    assert d.delta == pytest.approx(d.candidate_value - d.baseline_value, abs=1e-6)
    assert d.p_value < 0.01 and d.ci_high < 0 and d.better is False
    v = delta(comp, "seedlike", "verbatim_rate")
    assert v.test == "paired_bootstrap+mcnemar" and v.n_pairs == 20
    assert v.delta == pytest.approx(0.3) and v.p_value == pytest.approx(0.03125)  # 6 discordant pairs, 0 back
    assert v.better is False and v.higher_is_better is False
    loss = delta(comp, "gentle", "heldout_loss")
    assert loss.test == "paired_bootstrap+wilcoxon" and loss.n_pairs == 20
    assert delta(comp, "gentle", "val_loss").n_pairs == 5
    auc = delta(comp, "seedlike", "mia_auc")  # corpus-level: no pairs, no p
    assert (auc.test, auc.n_pairs, auc.p_value, auc.ci_low) == (None, 0, None, None)
    assert auc.delta == pytest.approx(auc.candidate_value - auc.baseline_value)


def test_better_follows_the_point_delta_direction(comp):
    assert delta(comp, "gentle", "rougeL").better is True  # higher is better, went up
    assert delta(comp, "seedlike", "novelty_4").better is False
    assert delta(comp, "gentle", "train_loss").better is None  # informational metric
    assert delta(comp, "gentle", "verbatim_rate").better is None  # 0 -> 0
    assert delta(comp, "gentle", "n_samples").better is None


def test_identical_runs_have_zero_deltas_and_p_one():
    a, b = make_run("a", seed=4), make_run("b", seed=4)
    c = compare_runs([a, b], n_boot=100)
    for d in c.deltas:
        assert d.delta == 0.0, d.metric
        assert d.better is None
        if d.test:
            assert d.p_value == 1.0 and d.ci_low == d.ci_high == 0.0


def test_pairs_only_shared_ids():
    base, cand = make_run("base", n=20), make_run("cand", n=12, seed=1)
    d = [d for d in compute_deltas(base, cand, "cand", n_boot=100) if d.metric == "rougeL"][0]
    assert d.n_pairs == 12


def test_paired_values_sources():
    r = make_run("x", copy_rate=0.25, defects={"escaped_newline": 0.1})
    assert len(paired_values(r, "sample:rougeL")) == 20
    flags = paired_values(r, "flag:verbatim")
    assert sum(flags.values()) == 5 and set(flags.values()) <= {0.0, 1.0}
    assert sum(paired_values(r, "flag:escaped_newline").values()) == 2
    assert len(paired_values(r, "loss:train")) == 20 and len(paired_values(r, "loss:val")) == 5
    assert paired_values(make_run("s", kind="score"), "loss:train") == {}
    with pytest.raises(ValueError):
        paired_values(r, "curve:x")


def test_registry_paired_metrics_all_resolve(comp):
    for name, spec in METRICS.items():
        if spec.paired and name in comp.runs["gentle"].summary:
            assert delta(comp, "gentle", name).n_pairs > 0, name


def test_deterministic_with_seed(runs):
    a = compare_runs(runs, n_boot=200, seed=3)
    b = compare_runs(runs, n_boot=200, seed=3)
    assert a.deltas == b.deltas
    c = compare_runs(runs, n_boot=200, seed=4)
    assert delta(a, "gentle", "rougeL").ci_low != delta(c, "gentle", "rougeL").ci_low


def test_gate_and_provenance(comp, runs):
    assert comp.gate is not None and comp.gate.source == "default" and not comp.gate.passed
    assert len(comp.gate.rules) == 7 * 2
    assert comp.provenance["n_boot"] == 500 and comp.provenance["seed"] == 0
    assert "created_at" in comp.provenance and "numpy" in comp.provenance["versions"]
    c = compare_runs(runs[:2], n_boot=50, provenance={"command": "evalkit compare a b", "seed": 99})
    assert c.gate is None and c.provenance["command"] == "evalkit compare a b" and c.provenance["seed"] == 99


# ---------------------------------------------------------------- golden


def test_comparison_json_golden():
    c = standard_comparison()
    text = json.dumps(scrub(to_dict(c)), ensure_ascii=False, indent=1, sort_keys=False) + "\n"
    assert_golden("comparison.json", text)


def test_golden_scrub_removes_volatile_fields():
    c = standard_comparison()
    later = dataclasses.replace(c, provenance={**c.provenance, "created_at": "2099-01-01T00:00:00Z",
                                               "versions": {"numpy": "9"}})
    assert scrub(to_dict(later)) == scrub(to_dict(c))


def test_assert_golden_saves_the_actual_output_on_mismatch(tmp_path, monkeypatch):
    import tests.fakes as fakes

    monkeypatch.setattr(fakes, "GOLDEN_DIR", tmp_path / "golden")
    monkeypatch.setattr(fakes, "FAILED_GOLDEN_DIR", tmp_path / "failed")
    monkeypatch.delenv(fakes.REGEN_ENV, raising=False)
    with pytest.raises(AssertionError, match="no golden file"):
        assert_golden("x.md", "new\n")
    monkeypatch.setenv(fakes.REGEN_ENV, "1")
    assert_golden("x.md", "old\n")
    assert (tmp_path / "golden" / "x.md").read_text() == "old\n"
    monkeypatch.delenv(fakes.REGEN_ENV)
    assert_golden("x.md", "old\n")
    with pytest.raises(AssertionError, match=r"diff -u .*x\.md .*failed/x\.md"):
        assert_golden("x.md", "changed\n")
    assert (tmp_path / "failed" / "x.md").read_text() == "changed\n"
