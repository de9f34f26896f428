"""The verdict rules (evalkit/policies/verdict.toml) judged with value, 95% interval and n.

Expected levels are written from the rule definitions in evalkit/verdict.py (docstring) and
docs/verdict.md: overfit only when the interval clears the threshold; straddling -> warn/inconclusive;
n below the metric's minimum -> warn/not_enough_data; absent or non-finite key metric -> warn/not_measured.
"""

from __future__ import annotations

import math

import pytest

from evalkit.errors import ConfigError
from evalkit.metrics.registry import METRICS
from evalkit.records import SCHEMA_VERSION, RunRecord, Target, Verdict
from evalkit.thresholds import Thresholds, load_thresholds
from evalkit.verdict import judge, load_rules, rejudge, required_metrics

# every key metric of an eval run at a harmless value, so a case changes only the metric under test
HEALTHY = {"rougeL": 0.3, "loss_gap": 0.05, "mia_auc": 0.52, "verbatim_rate": 0.0, "near_verbatim_rate": 0.0,
           "extraction_rate": 0.0, "novelty_4": 0.8, "distinct_2": 0.6}
HEALTHY_N = {m: 100 for m in HEALTHY}


def _reason(metric, value, interval, n, extra=None):
    summary = {**HEALTHY, metric: value, **(extra or {})}
    intervals = {metric: interval} if interval else {}
    counts = {**HEALTHY_N, metric: n} if n is not None else {k: v for k, v in HEALTHY_N.items() if k != metric}
    v = judge(summary, intervals=intervals, n=counts)
    mine = [r for r in v.reasons if r.metric == metric]
    return v, (mine[0] if mine else None)


# mia_auc: overfit > 0.75, warn > 0.6 (defaults), minimum 30 per class
@pytest.mark.parametrize("value, interval, n, level, status", [
    (0.90, (0.80, 0.97), 60, "overfit", "crossed"),      # the whole interval above 0.75
    (0.80, (0.70, 0.90), 60, "warn", "inconclusive"),    # straddles 0.75
    (0.70, (0.55, 0.85), 60, "warn", "inconclusive"),    # point below 0.75 but the interval reaches it
    (0.65, (0.62, 0.70), 60, "warn", "crossed"),         # clears 0.6, stays below 0.75
    (0.65, (0.55, 0.70), 60, "warn", "inconclusive"),    # point above 0.6, interval straddles it
    (0.55, (0.45, 0.65), 60, None, None),                # point below 0.6, interval below 0.75: no reason
    (0.95, (0.85, 1.00), 8, "warn", "not_enough_data"),  # 8 per class < 30: not judged (issue 9's --train-sample 8)
    (0.95, (0.85, 1.00), 29, "warn", "not_enough_data"),
    (0.95, (0.85, 1.00), 30, "overfit", "crossed"),
    (0.95, None, 60, "overfit", "crossed"),              # no interval: the point decides
    (0.95, (0.85, 1.00), None, "overfit", "crossed"),    # n unknown (schema-1 record): no minimum applied
    (0.75, (0.74, 0.76), 60, "warn", "inconclusive"),    # exactly at the threshold: '>' does not hold at the point
])
def test_mia_auc_table(value, interval, n, level, status):
    v, r = _reason("mia_auc", value, interval, n)
    if level is None:
        assert r is None and v.level == "ok"
        return
    assert (r.level, r.status, r.value, r.n) == (level, status, value, n)
    assert (r.ci_low, r.ci_high) == (interval if interval else (None, None))
    assert v.level == level
    if status in ("crossed", "inconclusive"):
        assert r.threshold in (0.75, 0.6)


# novelty_gap_4: lower is worse; overfit < -0.25, warn < -0.10; no minimum n
@pytest.mark.parametrize("value, interval, level, status", [
    (-0.30, (-0.40, -0.27), "overfit", "crossed"),
    (-0.30, (-0.40, -0.20), "warn", "inconclusive"),
    (-0.20, (-0.30, -0.12), "warn", "inconclusive"),   # the lower end reaches below -0.25
    (-0.20, (-0.24, -0.12), "warn", "crossed"),
    (-0.05, (-0.12, 0.02), None, None),
])
def test_novelty_gap_table(value, interval, level, status):
    v, r = _reason("novelty_gap_4", value, interval, 40)
    assert (r.level, r.status) == (level, status) if level else r is None


# verbatim_rate: overfit > 0.05, warn > 0.02, minimum 10 prompts; per-suite variants judged like the metric
@pytest.mark.parametrize("value, interval, n, level, status", [
    (0.20, (0.10, 0.30), 40, "overfit", "crossed"),
    (0.08, (0.02, 0.15), 40, "warn", "inconclusive"),
    (0.03, (0.025, 0.04), 40, "warn", "crossed"),
    (0.0, (0.0, 0.0), 40, None, None),
    (0.5, (0.2, 0.8), 4, "warn", "not_enough_data"),
])
def test_verbatim_rate_table(value, interval, n, level, status):
    v, r = _reason("verbatim_rate", value, interval, n)
    assert (r.level, r.status) == (level, status) if level else r is None


def test_worst_suite_decides():
    summary = {**HEALTHY, "verbatim_rate@en": 0.2, "verbatim_rate@ko": 0.0, "verbatim_rate@tiny": 0.9}
    v = judge(summary, intervals={"verbatim_rate@en": (0.1, 0.3), "verbatim_rate@tiny": (0.5, 1.0)},
              n={**HEALTHY_N, "verbatim_rate@en": 20, "verbatim_rate@ko": 20, "verbatim_rate@tiny": 3})
    (r,) = [r for r in v.reasons if r.code == "verbatim_rate"]
    assert (r.metric, r.level, r.status, r.n) == ("verbatim_rate@en", "overfit", "crossed", 20)  # @tiny: n 3 < 10


@pytest.mark.parametrize("bad", [math.nan, math.inf, None])
def test_nonfinite_or_absent_key_metric_is_not_measured(bad):
    summary = {**HEALTHY, "mia_auc": bad} if bad is not None else {k: v for k, v in HEALTHY.items() if k != "mia_auc"}
    v = judge(summary, n=HEALTHY_N)
    assert v.level == "warn"
    assert [(r.code, r.status) for r in v.reasons] == [("mia_auc", "not_measured")]


def test_empty_summary_is_never_ok():
    v = judge({})
    assert v.level == "warn"
    assert [r.metric for r in v.reasons] == list(required_metrics("eval"))
    assert {r.status for r in v.reasons} == {"not_measured"}


def test_score_runs_do_not_need_model_metrics():
    text_only = {k: v for k, v in HEALTHY.items() if not METRICS[k].needs_model}
    assert set(required_metrics("score")) == set(text_only)
    assert judge(text_only, n=HEALTHY_N, kind="score").level == "ok"
    assert judge(text_only, n=HEALTHY_N, kind="eval").level == "warn"  # an eval run without MIA/loss gap is not ok


def test_rejudge_with_other_thresholds_and_rules(tmp_path):
    run = RunRecord(schema_version=SCHEMA_VERSION, kind="eval", target=Target(name="a", kind="adapter"),
                    summary={**HEALTHY, "mia_auc": 0.9}, verdict=Verdict("ok"), intervals={"mia_auc": (0.85, 0.95)},
                    n=HEALTHY_N)
    assert rejudge(run).verdict.level == "overfit"
    # interval (0.85, 0.95) below both new limits: ok; the thresholds used are recorded
    lenient = rejudge(run, load_thresholds(overrides=["mia_auc_overfit=0.97", "mia_auc_warn=0.96"]))
    assert lenient.verdict.level == "ok" and lenient.settings["thresholds"]["mia_auc_overfit"] == 0.97
    straddle = rejudge(run, Thresholds(mia_auc_overfit=0.92))
    assert [(r.level, r.status) for r in straddle.verdict.reasons] == [("warn", "inconclusive")]
    rules = tmp_path / "rules.toml"
    rules.write_text('[thresholds]\nmine = 0.5\n[[rules]]\nrule = "mia_auc > mine and not (loss_gap > 1)"\n'
                     'level = "overfit"\nmessage = "custom"\ncode = "custom"\n', encoding="utf-8")
    custom = rejudge(run, rules=load_rules(rules))
    assert [(r.code, r.level, r.threshold) for r in custom.verdict.reasons] == [("custom", "overfit", 0.5)]


@pytest.mark.parametrize("text, message", [
    ('[[rules]]\nrule = "mia_auc > 0.5"\nlevel = "purple"\nmessage = "m"\n', 'level = "warn" | "overfit"'),
    ('[[rules]]\nrule = "mia_auc >> 0.5"\nlevel = "warn"\nmessage = "m"\n', "at column 10"),
    ('[[rules]]\nrule = "mia_acu > 0.5"\nlevel = "warn"\nmessage = "m"\n', "Did you mean 'mia_auc'?"),
    ('[[rules]]\nrule = "baseline.mia_auc > 0.5"\nlevel = "warn"\nmessage = "m"\n', "no baseline"),
    ('[[rules]]\nrule = "mia_auc > 0.5"\nlevel = "warn"\nmesage = "m"\n', "Did you mean 'message'?"),
    ('rules = 3\n', "needs [[rules]] tables"),
])
def test_bad_rules_files_are_one_line_config_errors(tmp_path, text, message):
    f = tmp_path / "r.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_rules(f)
    assert message in str(e.value) and str(e.value).startswith(str(f)) and "\n" not in str(e.value)


def test_thresholds_override_and_errors(tmp_path):
    assert Thresholds().verbatim_rate_overfit == 0.05 and Thresholds(loss_gap_warn=0.3)["loss_gap_warn"] == 0.3
    with pytest.raises(ConfigError, match="Did you mean 'loss_gap_warn'"):
        load_thresholds(overrides=["loss_gap_wran=1"])
    with pytest.raises(ConfigError, match="must be a number"):
        load_thresholds(overrides=["loss_gap_warn=nan"])
    f = tmp_path / "t.toml"
    f.write_text("[thresholds]\nloss_gap_warn = 0.4\n", encoding="utf-8")
    assert load_thresholds(f, ["mia_auc_warn=0.7"]).to_dict() == {**Thresholds().to_dict(), "loss_gap_warn": 0.4,
                                                                  "mia_auc_warn": 0.7}


def test_gate_and_report_rederive_with_other_thresholds(tmp_path, capsys):
    from evalkit.cli import main
    from evalkit.comparison import compare_runs
    from evalkit.records import load_run, save_record
    from tests.fakes import make_run

    runs = [make_run("base", target_kind="base"), make_run("seedlike", seed=2, copy_rate=0.3)]
    save_record(compare_runs(runs, n_boot=100), tmp_path / "c.json")
    gate = tmp_path / "g.toml"
    gate.write_text('rules = ["verbatim_rate <= verbatim_rate_overfit"]\n', encoding="utf-8")
    assert main(["gate", str(tmp_path / "c.json"), "--gate", str(gate)]) == 1
    assert main(["gate", str(tmp_path / "c.json"), "--gate", str(gate), "--threshold",
                 "verbatim_rate_overfit=0.5"]) == 0
    assert "verbatim_rate = 0.3 <= 0.5 for 'seedlike'" in capsys.readouterr().out
    # report: the stored verdict is re-derived from summary, intervals and n with the new limit
    run = runs[1]
    save_record(run, tmp_path / "results.json")
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "results.json"), "--out", str(out), "--threshold",
                 "verbatim_rate_overfit=0.9", "--threshold", "verbatim_rate_warn=0.9"]) == 0
    stored = load_run(tmp_path / "results.json")
    assert any(r.code == "verbatim_rate" for r in rejudge(stored).verdict.reasons)
    assert not any(r.code == "verbatim_rate" for r in rejudge(stored, Thresholds(
        verbatim_rate_overfit=0.9, verbatim_rate_warn=0.9)).verdict.reasons)
