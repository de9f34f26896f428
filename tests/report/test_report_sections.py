"""Section builders (evalkit/report/sections/): verdict statistics, notices, audit, retention, sweep,
pager. Expected values are written from the records by hand, not read back from the builders."""

import dataclasses
import json
import re

import pytest

from evalkit.comparison import compare_runs
from evalkit.records import Delta, Memorization
from evalkit.report import render_report
from evalkit.report.charts import scatter_chart
from evalkit.report.sections.common import TargetHead
from evalkit.report.sections.sweep import pareto_front, recommend
from evalkit.report.view import build_view
from tests.fakes import make_run
from tests.report.sweeps import AUDIT, lm_eval_entry, sweep_comparison, sweep_runs, with_uncertainty


@pytest.fixture(scope="module")
def sweep():
    return sweep_comparison(n=40, n_boot=50)


# ---------------------------------------------------------------- verdict: value, interval, n, status

def test_every_reason_shows_value_interval_n_and_status():
    run = with_uncertainty(make_run("a", n=8))
    reasons = build_view(run).banner.verdicts[0].reasons
    assert [(r.value, r.interval, r.n, r.status) for r in reasons] == [
        ("0.8100", "[0.7700, 0.8600]", "100", "crossed"),
        ("0.5200", "[0.3100, 0.7400]", "60", "inconclusive"),
        ("0.7660", "[0.4800, 0.9500]", "8", "not_enough_data"),
        ("", "", "", "not_measured")]
    html = render_report(run)
    assert "95% CI [0.4800, 0.9500]" in html and "n=8" in html
    assert "inconclusive: the interval straddles the threshold" in html
    assert "not enough data to judge" in html and "not measured" in html


def test_unknown_status_is_shown_as_unknown_not_as_a_css_class_from_data():
    run = with_uncertainty(make_run("a", n=4))
    bad = dataclasses.replace(run.verdict.reasons[0], status='x" onclick="alert(1)')
    run = dataclasses.replace(run, verdict=dataclasses.replace(run.verdict, reasons=(bad,)))
    r = build_view(run).banner.verdicts[0].reasons[0]
    assert r.status == "unknown"
    assert 'class="stat st-unknown"' in render_report(run)


def test_notices_are_warnings_in_the_target_card_and_counted_in_the_headline():
    run = with_uncertainty(make_run("a", n=4))
    view = build_view(run)
    assert [n.code for n in view.banner.verdicts[0].notices] == ["membership_override"]
    assert "1 warning about the data or the run" in view.banner.headline
    assert "--allow-membership-mismatch" in render_report(run)


# ---------------------------------------------------------------- sections hide without data

def test_audit_retention_and_sweep_sections_hide_without_data():
    comp = compare_runs([make_run("base", n=6, target_kind="base"), make_run("a", n=6, seed=1)], n_boot=20)
    view = build_view(comp)
    assert view.audit is None and view.retention is None and view.sweep is None and view.pager is None
    html = render_report(comp)
    for sec in ("audit", "retention", "sweep"):
        assert f'<section id="{sec}"' not in html
    assert 'id="pairs-data"' not in html


def test_audit_shown_once_for_targets_sharing_the_data():
    base = dataclasses.replace(make_run("base", n=6, target_kind="base"), audit=AUDIT)
    a = dataclasses.replace(make_run("a", n=6, seed=1), audit=AUDIT)
    b = make_run("b", n=6, seed=2)  # no audit
    view = build_view(compare_runs([base, a, b], n_boot=20))
    assert len(view.audit.blocks) == 1 and [t.name for t in view.audit.blocks[0].targets] == ["base", "a"]
    block = view.audit.blocks[0]
    assert dict(block.rows)["val_answer_near_dup_rate"] == "0.9200" and dict(block.n) == {"train": "160", "val": "40"}
    assert dict(dict(block.suites)["eco_heldout_ko"])["heldout_prompt_near_dup_rate"] == "0.0500"
    assert [w.code for w in block.warnings] == ["val_leak", "templated_answers"]
    # another run of the same audit (other runtime) is the same finding, shown once
    b2 = dataclasses.replace(b, audit=dataclasses.replace(AUDIT, runtime_s=9.0))
    assert len(build_view(compare_runs([base, a, b2], n_boot=20)).audit.blocks) == 1


def test_retention_values_with_stderr_and_paired_deltas_from_the_record():
    base = dataclasses.replace(make_run("base", n=6, target_kind="base"), lm_eval=lm_eval_entry(0.64))
    a = dataclasses.replace(make_run("a", n=6, seed=1), lm_eval=lm_eval_entry(0.55))
    comp = compare_runs([base, a], n_boot=20)
    d = Delta(metric="lm_eval.evalkit_general.acc", candidate="a", baseline_value=0.64, candidate_value=0.55,
              delta=-0.09, ci_low=-0.16, ci_high=-0.02, p_value=0.01, n_pairs=100, higher_is_better=True,
              better=False)
    comp = dataclasses.replace(comp, deltas=comp.deltas + (d,))
    rt = build_view(comp).retention
    (row,) = rt.rows
    assert (row.task, row.metric) == ("evalkit_general", "acc")
    # stderr = sqrt(p (1 - p) / n) with n = 100
    assert [(c.value, c.stderr, c.n) for c in row.values] == [("0.6400", "± 0.0480", "100"),
                                                            ("0.5500", "± 0.0497", "100")]
    assert (row.deltas[0].text, row.deltas[0].ci, row.deltas[0].cls) == ("-0.0900", "[-0.1600, -0.0200]", "worse-sig")


# ---------------------------------------------------------------- what the record carries, not recomputed

def test_roc_legend_auc_is_the_records_and_absent_without_it():
    run = make_run("a", n=8, copy_rate=0.25)
    run = dataclasses.replace(run, summary={**run.summary, "mia_auc_ref": 0.6123})  # not the curve's own area
    chart = build_view(run).memorization.roc[0][1]
    assert chart.series[0].label == "ref (AUC 0.6123)"
    summary = {k: v for k, v in run.summary.items() if k != "mia_auc_ref"}
    chart = build_view(dataclasses.replace(run, summary=summary)).memorization.roc[0][1]
    assert chart.series[0].label == "ref"  # no AUC computed from the curve


def test_per_prompt_quality_change_comes_from_delta_per_id():
    base, cand = make_run("base", n=6, target_kind="base"), make_run("c", n=6, seed=1)
    comp = compare_runs([base, cand], n_boot=20)
    rouge = next(d for d in comp.deltas if d.metric == "rougeL")
    by_hand = {s.id: s.metrics["rougeL"] - b.metrics["rougeL"] for s, b in zip(cand.samples, base.samples)}
    assert rouge.per_id == pytest.approx(by_hand)
    planted = dataclasses.replace(rouge, per_id={k: -0.5 for k in rouge.per_id})
    comp = dataclasses.replace(comp, deltas=tuple(planted if d is rouge else d for d in comp.deltas))
    rows = build_view(comp).samples.rows
    assert {r.answers[1].delta for r in rows} == {"-0.5000"} and {r.regression for r in rows} == {"-0.5"}
    assert {r.answers[1].delta_cls for r in rows} == {"worse"}


def test_mia_tpr_is_shown_under_the_name_the_record_gives_it(sweep):
    runs = {}
    for name, run in sweep.runs.items():
        s = dict(run.summary)
        s["mia_tpr_at_0fp"] = s.pop("mia_tpr_at_1fpr")  # TPR at 0 false positives: too few non-members
        runs[name] = dataclasses.replace(run, summary=s)
    view = build_view(dataclasses.replace(sweep, runs=runs))
    cols = [c.metric for c in view.sweep.columns]
    assert "mia_tpr_at_0fp" in cols and "mia_tpr_at_1fpr" not in cols
    assert "mia_tpr_at_1fpr" not in render_report(dataclasses.replace(sweep, runs=runs)).split('id="sweep"')[1][:20000]


# ---------------------------------------------------------------- sweep: Pareto front, recommendation

def test_pareto_front_by_hand():
    pts = {"a": (0.5, 0.9), "b": (0.4, 0.5), "c": (0.3, 0.6), "d": (0.4, 0.5), "e": (0.2, 0.4), "f": (0.5, 0.95)}
    # c: b is better on both; f: a has the same quality and less memorization; b and d tie (neither dominates)
    assert pareto_front(pts) == {"a", "b", "d", "e"}


def _heads(levels):
    return [TargetHead(f"t{i}", i + 1, "adapter", lv) for i, lv in enumerate(levels)]


def test_recommendation_is_the_best_quality_ok_variant():
    runs = {r.target.name: r for r in sweep_runs(n=30)}
    names = list(runs)[1:]
    heads = [TargetHead(n, i + 1, "adapter", runs[n].verdict.level) for i, n in enumerate(names)]
    ok = [n for n in names if runs[n].verdict.level == "ok"]
    best = max(ok, key=lambda n: runs[n].summary["rougeL"])
    overall = max(names, key=lambda n: runs[n].summary["rougeL"])
    assert runs[overall].verdict.level != "ok" and best != overall  # the fixture makes the ok filter matter
    pick, line = recommend(heads, runs, "rougeL")
    assert pick == best and line.startswith(f"Recommended: {best}, the best held-out quality (rougeL ")
    assert f"of the {len(ok)} variants whose verdict is ok" in line


def test_no_ok_variant_says_why():
    runs = {r.target.name: r for r in sweep_runs(n_targets=5, n=20)}
    names = list(runs)[1:]
    heads = [TargetHead(n, i + 1, "adapter", lv) for i, (n, lv) in enumerate(zip(names, ("overfit", "warn",
                                                                                       "overfit", "warn")))]
    pick, line = recommend(heads, runs, "rougeL")
    best_warn = max((names[1], names[3]), key=lambda n: runs[n].summary["rougeL"])
    assert pick is None
    assert line.startswith("No recommendation: no variant's verdict is ok (2 overfit, 2 warn).")
    assert f"The best-quality warn variant is {best_warn}" in line
    assert recommend(heads, runs, None)[0] is None and "no held-out quality figure" in recommend(heads, runs, None)[1]


def test_heldout_loss_ranks_lower_is_better_when_there_is_no_rouge():
    runs = {r.target.name: r for r in sweep_runs(n_targets=5, n=20)}
    names = list(runs)[1:]
    heads = [TargetHead(n, i + 1, "adapter", "ok") for i, n in enumerate(names)]
    pick, _ = recommend(heads, runs, "heldout_loss")
    assert pick == min(names, key=lambda n: runs[n].summary["heldout_loss"])


def test_sweep_view_rows_and_scatter(sweep):
    view = build_view(sweep)
    sw = view.sweep
    assert len(sw.rows) == 18 and view.samples is None and view.pager is not None
    assert [c.metric for c in sw.columns][:2] == ["rougeL", "heldout_loss"]
    assert sw.quality_metric == "rougeL" and sw.memo_metric == "mia_auc"
    cands = {n: r for n, r in sweep.runs.items() if n != sweep.baseline}
    pts = {n: (r.summary["rougeL"], r.summary["mia_auc"]) for n, r in cands.items()}
    assert {r.target.name for r in sw.rows if r.front} == pareto_front(pts)
    c = sw.scatter
    assert len(c.points) == 18 and all(c.left <= p.x <= c.right and c.top <= p.y <= c.bottom for p in c.points)
    # higher rougeL is drawn higher (smaller y)
    by_label = {p.label: p for p in c.points}
    hi = max(cands, key=lambda n: cands[n].summary["rougeL"])
    lo = min(cands, key=lambda n: cands[n].summary["rougeL"])
    idx = {h.name: h.number for h in view.targets}
    assert by_label[idx[hi]].y < by_label[idx[lo]].y
    assert view.banner.compact and view.metrics.compact and view.metrics.candidates == ()


def test_scatter_skips_points_without_both_values_and_orders_the_front():
    c = scatter_chart("t", [("1", "", 0.2, 0.5, "lvl-ok", True), ("2", "", 0.1, 0.3, "lvl-ok", True),
                            ("3", "", None, 0.4, "lvl-ok", False), ("4", "", 0.3, 0.2, "lvl-warn", False)],
                      x_label="x", y_label="y")
    assert [p.label for p in c.points] == ["1", "2", "4"]
    xs = [float(v) for v in re.findall(r"[ML]([\d.]+) ", c.front_path)]
    assert xs == sorted(xs) and len(xs) == 2
    assert scatter_chart("t", [("1", "", 0.2, 0.5, "lvl-ok", True)], x_label="", y_label="") is None


# ---------------------------------------------------------------- two-target pager

def test_pager_data_names_the_nearest_training_answer_or_none(sweep):
    pager = build_view(sweep).pager
    data = pager.data
    assert data["targets"] == list(sweep.targets) and len(data["prompts"]) == 40
    names = list(sweep.targets)
    for ti, name in enumerate(names):
        for pi, s in enumerate(sweep.runs[name].samples):
            a = data["answers"][ti][pi]
            assert a["p"] == s.prediction
            m = s.memorization
            if m is None:
                assert a["n"] is None
            else:
                assert a["n"] == m.nearest_id and data["train"][a["n"]] == m.nearest_answer
                start, end = a["s"]
                assert s.prediction[start:end] == m.span
    rec = build_view(sweep).sweep.recommended
    assert names[pager.second] == rec  # the pager opens on baseline vs the recommended variant


def test_nearest_from_span_source_when_no_nearest_recorded():
    run = make_run("c", n=4, copy_rate=0.5)
    s = next(x for x in run.samples if x.memorization)
    m = Memorization(train_id="train-9", span=s.memorization.span, span_tokens=5, pred_start=0, train_start=0,
                     train_answer=s.memorization.span + " tail")
    samples = tuple(dataclasses.replace(x, memorization=m) if x is s else x for x in run.samples)
    cell = build_view(dataclasses.replace(run, samples=samples)).samples.rows[run.samples.index(s)].answers[0]
    assert cell.nearest.train_id == "train-9" and cell.nearest.edit_distance == ""
    other = next(x for x in run.samples if x.memorization is None)
    assert build_view(run).samples.rows[run.samples.index(other)].answers[0].nearest is None
    assert "closest training answer: not recorded" in render_report(run)


def test_an_answer_that_copies_nothing_shows_its_recorded_nearest_training_answer():
    # Sample.nearest_id + RunRecord.nearest_answers: every answer, not only flagged ones (seed's tip 3)
    base, cand = make_run("a", n=4), make_run("b", n=4)
    i, s = next((i, x) for i, x in enumerate(cand.samples) if x.memorization is None)
    samples = tuple(dataclasses.replace(x, nearest_id="train-3", nearest_distance=0.42) if x is s else x
                    for x in cand.samples)
    cand = dataclasses.replace(cand, samples=samples, nearest_answers={"train-3": "Cycle to work twice a week."})
    cell = build_view(cand).samples.rows[i].answers[0]
    assert (cell.nearest.train_id, cell.nearest.edit_distance) == ("train-3", "0.4200")
    assert "Cycle to work twice a week." in render_report(cand)
    from evalkit.report.sections.samples import build_pager

    heads = [TargetHead("a", 0, "adapter", "ok", True), TargetHead("b", 1, "adapter", "ok")]
    pager = build_pager(heads, {"a": base, "b": cand})
    a = pager.data["answers"][1][i]
    assert (a["n"], a["d"]) == ("train-3", "0.4200") and pager.data["train"]["train-3"] == "Cycle to work twice a week."
    # a record without the field (older, or no training answers known) still says so
    assert pager.data["answers"][0][i]["n"] is None


def test_sweep_report_size_and_lazy_block(sweep):
    html = render_report(sweep)
    blocks = re.findall(r'<script type="application/json" id="([a-z-]+)">(.*?)</script>', html, re.S)
    assert [b[0] for b in blocks] == ["data", "pairs-data"]
    assert json.loads(blocks[1][1])["targets"] == list(sweep.targets)
    assert '<section id="sweep"' in html and 'id="recommendation"' in html
    assert 'id="sample-list"' not in html  # no all-targets list for 18 targets


def test_the_p_shown_is_the_holm_adjusted_one_that_colours_the_cell():
    # raw p = 0.01 < 0.05 but Holm's p = 0.08 >= 0.05: the cell is not coloured significant, so showing
    # "p=0.010" beside it would contradict the colour; it shows the adjusted p, labelled, raw in the title
    from evalkit.report.sections.metrics import _delta_cell
    from evalkit.summary_md import _cell

    d = Delta(metric="rougeL", candidate="a", baseline_value=0.30, candidate_value=0.25, delta=-0.05,
              ci_low=-0.09, ci_high=-0.01, p_value=0.01, p_adjusted=0.08, n_pairs=40, test="paired_bootstrap+wilcoxon",
              higher_is_better=True, better=False)
    cell = _delta_cell(d, "base")
    assert cell.p == "Holm p=0.080" and "raw p=0.010" in cell.title and cell.cls == "worse"
    assert "Holm p=0.080, raw p=0.010" in _cell(d, 0.25)
    unadjusted = dataclasses.replace(d, p_adjusted=None)
    assert _delta_cell(unadjusted, "base").p == "p=0.010" and _delta_cell(unadjusted, "base").cls == "worse-sig"


def test_a_nearest_answer_not_proven_nearest_says_so():
    base, cand = make_run("a", n=4), make_run("b", n=4)
    i, s = next((i, x) for i, x in enumerate(cand.samples) if x.memorization is None)
    samples = tuple(dataclasses.replace(x, nearest_id="train-3", nearest_distance=0.5, nearest_exact=False)
                    if x is s else x for x in cand.samples)
    cand = dataclasses.replace(cand, samples=samples, nearest_answers={"train-3": "Cycle to work."})
    assert build_view(cand).samples.rows[i].answers[0].nearest.exact is False
    assert "not proven the nearest" in render_report(cand)
    from evalkit.report.sections.samples import build_pager

    heads = [TargetHead("a", 0, "adapter", "ok", True), TargetHead("b", 1, "adapter", "ok")]
    assert build_pager(heads, {"a": base, "b": cand}).data["answers"][1][i]["x"] is False
