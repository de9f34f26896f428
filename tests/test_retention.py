"""Capability retention without a model: lm-eval output -> records, per-document pairing, MDE, the warn.

``retention_comparison()`` is the example record for the report's "capability retention" section.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from evalkit.cli import main
from evalkit.comparison import compare_runs
from evalkit.errors import ConfigError
from evalkit.records import (SCHEMA_VERSION, LmEvalDoc, LmEvalTask, RunRecord, Target, Verdict, from_dict,
                             to_dict)
from evalkit.retention import (DEFAULT_TASK, LmEvalSpec, mde_paired_binary, mde_paired_continuous, paired_deltas,
                               retention_reasons, retention_table, summary_entries, summary_key,
                               tasks_from_results)

Z = norm.ppf(0.975) + norm.ppf(0.8)  # 1.95996 + 0.84162


def _task(acc: list[int], hashes=None, extra: dict | None = None) -> LmEvalTask:
    docs = tuple(LmEvalDoc(i, (hashes or {}).get(i, f"h{i}"), "gold", "gold" if v else "other", {"acc": float(v)})
                 for i, v in enumerate(acc))
    return LmEvalTask(metrics={"acc": float(np.mean(acc)), **(extra or {})},
                      stderr={"acc": float(np.std(acc, ddof=1) / math.sqrt(len(acc)))},
                      higher_is_better={"acc": True}, n=len(acc), n_total=len(acc), version="1.0", num_fewshot=0,
                      output_type="multiple_choice", paired_metrics=("acc",), docs=docs)


def _run(name: str, task: LmEvalTask) -> RunRecord:
    summary, intervals, n = summary_entries({DEFAULT_TASK: task}, n_boot=200)
    return RunRecord(schema_version=SCHEMA_VERSION, kind="eval", target=Target(name, "adapter" if name != "base"
                                                                               else "base", base_hash="b" * 64),
                     summary=summary, verdict=Verdict("ok"), intervals=intervals, n=n, lm_eval={DEFAULT_TASK: task})


def retention_comparison():
    """Base vs an adapter that lost 14 of 40 questions it used to get right (and gained 2): a warn."""
    base = [1] * 30 + [0] * 10
    cand = [1] * 16 + [0] * 14 + [1] * 2 + [0] * 8
    return compare_runs([_run("base", _task(base)), _run("lossy", _task(cand))], n_boot=500)


# ---------------------------------------------------------------- the minimum detectable effect


def _mcnemar_power(n: int, psi: float, delta: float) -> float:
    """Brute force: exact power of the two-sided exact McNemar test (alpha 0.05) at discordant rate psi."""
    from scipy.stats import binom

    p01 = (psi + delta) / 2  # P(baseline wrong, candidate right)
    power = 0.0
    for d in range(1, n + 1):  # d discordant documents, k of them in the candidate's favour
        k = np.arange(d + 1)
        # the exact two-sided binomial p at 0.5 is 2 * P(X <= min(k, d - k)), capped at 1 (= binomtest's)
        reject = np.minimum(1.0, 2 * binom.cdf(np.minimum(k, d - k), d, 0.5)) < 0.05
        power += binom.pmf(d, n, psi) * float(np.sum(binom.pmf(k, d, p01 / psi)[reject]))
    return power


@pytest.mark.parametrize("n,psi", [(100, 0.2), (400, 0.1)])
def test_binary_mde_solves_connors_sample_size_formula_and_has_80_percent_power(n, psi):
    mde = mde_paired_binary(n, psi)
    # Connor (1987): n = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2
    za, zb = norm.ppf(0.975), norm.ppf(0.8)
    assert (za * math.sqrt(psi) + zb * math.sqrt(psi - mde ** 2)) ** 2 / mde ** 2 == pytest.approx(n, rel=1e-6)
    # a little below the simple (z_a + z_b) sqrt(psi / n), because psi - d^2 < psi
    assert 0.9 * Z * math.sqrt(psi / n) < mde < Z * math.sqrt(psi / n)
    # and the exact test really detects that effect about 80% of the time (the exact test is a little conservative)
    assert 0.72 <= _mcnemar_power(n, psi, mde) <= 0.86


def test_power_brute_force_agrees_with_binomtest():
    from scipy.stats import binom

    for k, d in [(3, 20), (10, 20), (0, 7), (5, 9)]:
        assert min(1.0, 2 * binom.cdf(min(k, d - k), d, 0.5)) == pytest.approx(binomtest(k, d, 0.5).pvalue)


def test_binary_mde_is_undefined_without_discordant_documents_or_with_too_few():
    assert mde_paired_binary(100, 0.0) is None
    assert mde_paired_binary(3, 0.5) is None  # sqrt(3) < 1.96: no effect is detectable at all


def test_continuous_mde_is_the_paired_z_formula():
    d = [0.1, -0.2, 0.05, 0.3, -0.1, 0.0, 0.2, -0.05]
    assert mde_paired_continuous(d) == pytest.approx(Z * np.std(d, ddof=1) / math.sqrt(len(d)), rel=1e-12)
    assert mde_paired_continuous([0.3]) is None


# ---------------------------------------------------------------- lm-eval output -> records


def _sample(doc_id, target, lls, acc, filt="none", extra=None):
    return {"doc_id": doc_id, "doc_hash": f"h{doc_id}", "target": target, "filter": filt,
            "arguments": [("Q: ?\nA:", " red"), ("Q: ?\nA:", " blue"), ("Q: ?\nA:", " green")],
            "filtered_resps": [(ll, False) for ll in lls], "metrics": ["acc", *(extra or {})], "acc": acc,
            **(extra or {})}


def test_tasks_from_results_maps_metrics_stderr_documents_and_what_pairs():
    results = {
        "results": {"mc": {"alias": "mc", "acc,none": 0.5, "acc_stderr,none": 0.5, "bleu,none": 12.5,
                           "bleu_stderr,none": "N/A", "acc_norm,strict-match": 1.0}},
        "configs": {"mc": {"output_type": "multiple_choice"}},
        "higher_is_better": {"mc": {"acc": True, "bleu": True, "acc_norm": True}},
        "n-samples": {"mc": {"original": 10, "effective": 2}}, "versions": {"mc": 2.0}, "n-shot": {"mc": 0},
        "samples": {"mc": [_sample(1, 2, [-3.0, -2.0, -1.0], 1.0, extra={"bleu": ("ref", "pred")}),
                           _sample(0, 0, [-3.0, -1.0, -2.0], 0.0, extra={"bleu": ("ref", "pred")}),
                           {**_sample(0, 0, [-1.0, -3.0, -2.0], 1.0), "metrics": ["acc_norm"], "acc_norm": 1.0,
                            "filter": "strict-match"},
                           {**_sample(1, 2, [-1.0, -3.0, -2.0], 1.0), "metrics": ["acc_norm"], "acc_norm": 1.0,
                            "filter": "strict-match"}]},
    }
    t = tasks_from_results(results)["mc"]
    assert t.metrics == {"acc": 0.5, "bleu": 12.5, "acc_norm_strict_match": 1.0}
    assert t.stderr == {"acc": 0.5}  # "N/A" is not a standard error
    assert t.higher_is_better == {"acc": True, "bleu": True, "acc_norm_strict_match": True}
    assert (t.n, t.n_total, t.version, t.num_fewshot) == (2, 10, "2.0", 0)
    assert [d.doc_id for d in t.docs] == [0, 1]  # sorted by document
    assert t.docs[0].metrics == {"acc": 0.0, "acc_norm_strict_match": 1.0}  # the tuple-valued bleu is not per-doc
    assert (t.docs[0].target, t.docs[0].prediction) == ("red", "blue")  # choice texts, argmax log-likelihood
    assert (t.docs[1].target, t.docs[1].prediction) == ("green", "green")
    # acc and acc_norm are the means of their documents; corpus BLEU is not
    assert set(t.paired_metrics) == {"acc", "acc_norm_strict_match"}
    assert from_dict(LmEvalTask, to_dict(t)) == t
    summary, intervals, n = summary_entries({"mc": t})
    assert summary == {"lm_eval.mc.acc": 0.5, "lm_eval.mc.bleu": 12.5, "lm_eval.mc.acc_norm_strict_match": 1.0}
    assert intervals["lm_eval.mc.acc"] == (0.0, 1.0) and "lm_eval.mc.bleu" not in intervals
    assert n["lm_eval.mc.acc"] == 2
    assert summary_key("wmt14-en-fr", "bleu") == "lm_eval.wmt14_en_fr.bleu"


# ---------------------------------------------------------------- pairing and the warn


def test_paired_delta_is_mcnemar_over_documents_with_mde_and_a_significant_loss_warns():
    cmp = retention_comparison()
    (d,) = [d for d in cmp.deltas if d.metric == "lm_eval.evalkit_retention.acc"]
    # hand computation: 14 right->wrong, 2 wrong->right over 40 paired questions
    assert d.n_pairs == 40 and d.delta == pytest.approx((2 - 14) / 40)
    assert d.test == "paired_bootstrap+mcnemar" and d.p_value == pytest.approx(binomtest(2, 16, 0.5).pvalue)
    assert d.ci_high < 0 and d.better is False
    assert d.mde == pytest.approx(mde_paired_binary(40, 16 / 40))
    verdict = cmp.runs["lossy"].verdict
    assert verdict.level == "warn"
    (reason,) = [r for r in verdict.reasons if r.code == "retention_loss"]
    assert reason.metric == d.metric and reason.n == 40 and reason.ci_high == d.ci_high and reason.level == "warn"
    assert cmp.runs["base"].verdict.level == "ok"


def test_a_rejudged_comparison_keeps_the_retention_loss():
    """`evalkit gate/report --threshold ...` re-derive verdicts from the record: the lm-eval loss (a comparison
    fact, not a run summary) must survive, however loose the run thresholds are made."""
    from evalkit.verdict import rejudge_record

    from evalkit.thresholds import load_thresholds

    cmp = rejudge_record(retention_comparison(), load_thresholds(None, ["mia_auc_warn=0.99"]))
    # (these synthetic runs have no eval metrics, so the re-derived verdicts also list them as not measured)
    assert [r.code for r in cmp.runs["lossy"].verdict.reasons].count("retention_loss") == 1
    assert "retention_loss" not in [r.code for r in cmp.runs["base"].verdict.reasons]


def test_no_warn_for_an_insignificant_loss_and_documents_pair_only_when_identical():
    base = [1] * 20 + [0] * 20
    cand = [1] * 19 + [0] * 21  # one question lost: p = 1
    cmp = compare_runs([_run("base", _task(base)), _run("same", _task(cand, hashes={0: "changed"}))], n_boot=200)
    (d,) = [d for d in cmp.deltas if d.metric == "lm_eval.evalkit_retention.acc"]
    assert d.n_pairs == 39  # document 0 differs between the two runs: not paired
    assert cmp.runs["same"].verdict.level == "ok"
    assert retention_reasons(cmp.deltas, "same") == []


def test_unpaired_metric_gets_the_plain_difference():
    a = _run("base", _task([1, 0, 1, 0], extra={"bleu": 10.0}))
    b = _run("cand", _task([1, 1, 1, 0], extra={"bleu": 12.5}))
    (d,) = [d for d in paired_deltas(a, b, "cand") if d.metric.endswith(".bleu")]
    assert d.delta == 2.5 and d.p_value is None and d.mde is None and d.n_pairs == 0


def test_retention_table_lists_each_task_metric_with_interval_and_mde():
    cmp = retention_comparison()
    lines = retention_table(cmp)
    assert lines[0].startswith("capability retention")
    (row,) = [ln for ln in lines if "evalkit_retention.acc " in ln + " " and "acc_norm" not in ln]
    d = next(d for d in cmp.deltas if d.metric == "lm_eval.evalkit_retention.acc")
    assert f"{d.delta:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]" in row and f"{d.mde:.3f}" in row and " 40 " in row
    plain = [RunRecord(schema_version=SCHEMA_VERSION, kind="eval", target=Target(n, "adapter"), summary={"x": 1.0},
                       verdict=Verdict("ok")) for n in ("a", "b")]
    assert retention_table(compare_runs(plain)) == []


# ---------------------------------------------------------------- options


def test_default_means_the_bundled_task_and_bad_options_fail_in_one_line(tmp_path):
    pytest.importorskip("lm_eval")
    spec = LmEvalSpec.from_options("default, arc_easy,default", None, 20)
    assert spec.tasks == (DEFAULT_TASK, "arc_easy") and spec.limit == 20
    assert LmEvalSpec.from_options(None) is None
    for args, msg in [(("a,,b",), "empty task name"), (("default", tmp_path / "nope"), "no such folder"),
                      (("default", None, 0), "positive whole number"), ((None, None, 5), "need --lm-eval-tasks")]:
        with pytest.raises(ConfigError, match=msg):
            LmEvalSpec.from_options(*args)


def test_without_lm_eval_the_flag_says_how_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    monkeypatch.setattr("evalkit.runtime.engine.Engine.__init__", lambda *a, **k: pytest.fail("model loaded"))
    assert main(["eval", "base", "--out", str(tmp_path / "o"), "--lm-eval-tasks", "default"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'evalkit[lm-eval]'" in err


def test_the_report_reads_the_retention_records():
    from evalkit.report.view import build_view

    cmp = retention_comparison()
    view = build_view(cmp).retention
    d = next(d for d in cmp.deltas if d.metric == "lm_eval.evalkit_retention.acc")
    (row,) = [r for r in view.rows if (r.task, r.metric) == (DEFAULT_TASK, "acc")]
    assert [float(c.value) for c in row.values] == [0.75, 0.45] and row.values[0].n == "40"
    (cell,) = row.deltas
    assert cell.text.startswith("-0.3") and cell.mde and float(cell.mde) == pytest.approx(d.mde, abs=0.005)
