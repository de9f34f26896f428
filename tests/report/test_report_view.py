"""The report's view model (evalkit/report/view.py and sections/): no HTML involved."""

import dataclasses

import pytest

from evalkit.comparison import compare_runs
from evalkit.records import Delta
from evalkit.report.charts import line_chart, nice_ticks
from evalkit.report.formatting import fmt_interval, fmt_num, fmt_p
from evalkit.report.sections.metrics import delta_class, is_significant, metric_group
from evalkit.report.segments import Seg, diff_segments, locate_span, span_segments, text_segments
from evalkit.report.view import build_view
from tests.fakes import make_run


def _delta(delta, *, hib=True, better=None, p=None, lo=None, hi=None, metric="rougeL"):
    return Delta(metric=metric, candidate="c", baseline_value=0.4, candidate_value=0.4 + (delta or 0), delta=delta,
                 ci_low=lo, ci_high=hi, p_value=p, higher_is_better=hib, better=better)


# ---------------------------------------------------------------- delta colouring

@pytest.mark.parametrize("d, expected", [
    (_delta(0.05, better=True, p=0.001), "better-sig"),
    (_delta(0.05, better=True, p=0.2), "better"),
    (_delta(-0.05, better=False, p=0.01), "worse-sig"),
    (_delta(-0.05, better=False, p=0.5), "worse"),
    # the record's `better` decides, never a direction re-derived from the sign (the comparison owns it)
    (_delta(0.02, hib=False, better=False, p=0.001, metric="verbatim_rate"), "worse-sig"),
    (_delta(-0.02, hib=False, better=True, metric="verbatim_rate"), "better"),
    (_delta(0.05, hib=True, better=None, p=0.001), "neutral"),
    # no p-value: a 95% interval that excludes 0 counts as significant
    (_delta(0.03, better=True, lo=0.01, hi=0.05), "better-sig"),
    (_delta(0.03, better=True, lo=-0.01, hi=0.05), "better"),
    # informational metric, zero change, missing value
    (_delta(0.3, hib=None, metric="train_loss"), "neutral"),
    (_delta(0.0, p=1.0), "neutral"),
    (_delta(None), "na"),
])
def test_delta_class(d, expected):
    assert delta_class(d) == expected


def test_delta_colour_reads_the_record_not_the_registry():
    # rougeL is "higher is better" in the registry; a record saying otherwise is what the report shows
    assert delta_class(_delta(-0.1, hib=None, better=None, metric="rougeL")) == "neutral"
    assert delta_class(_delta(-0.1, hib=True, better=True, metric="rougeL")) == "better"


def test_nan_p_value_is_not_significant():
    assert not is_significant(_delta(0.1, p=float("nan")))


# ---------------------------------------------------------------- span highlight offsets

def test_span_at_recorded_offset():
    pred = "Sure! Carry a reusable cup every day."
    segs, found = span_segments(pred, 6, "Carry a reusable cup")
    assert found
    assert segs == (Seg("Sure! "), Seg("Carry a reusable cup", "copy"), Seg(" every day."))
    assert "".join(s.text for s in segs) == pred


def test_wrong_offset_falls_back_to_search_and_missing_span_is_unmarked():
    assert locate_span("abc Carry x", 0, "Carry") == 4  # recorded offset wrong: found by search
    assert locate_span("abc", 99, "abc") == 0  # out of range
    segs, found = span_segments("nothing here", 0, "Carry")
    assert not found and all(s.op == "" for s in segs)
    assert locate_span("", 0, "x") is None and locate_span("x", 0, "") is None


def test_korean_span_offsets_are_characters():
    pred = "네, 텀블러를 가방에 넣고 다니세요."
    segs, found = span_segments(pred, 3, "텀블러를 가방에")
    assert found and segs[1] == Seg("텀블러를 가방에", "copy")


def test_flagged_item_uses_memorization_offsets():
    run = make_run("copy", n=8, copy_rate=0.5)
    view = build_view(run)
    group = view.memorization.flagged[0]
    assert len(group.items) == sum("verbatim" in s.flags or "near_verbatim" in s.flags for s in run.samples)
    for item in group.items:
        sample = next(s for s in run.samples if s.id == item.sample_id)
        copied = "".join(s.text for s in item.prediction if s.op == "copy")
        assert copied == sample.memorization.span
        assert "".join(s.text for s in item.train if s.op == "copy") == sample.memorization.span
        assert item.located


# ---------------------------------------------------------------- escapes and diff segments

def test_literal_backslash_n_is_its_own_segment_and_real_newline_is_kept():
    segs = text_segments("one\\ntwo\nthree")
    assert segs == (Seg("one"), Seg("\\n", "", True), Seg("two\nthree"))


def test_diff_segments_mark_insertions_deletions_and_escapes():
    segs = diff_segments("Use a cup.", "Use a mug.\\n")
    assert Seg("cup.", "del") in segs  # the lone "." between two edits is folded in
    assert any(s.op == "ins" and "mug" in s.text for s in segs)
    assert Seg("\\n", "ins", True) in segs
    assert "".join(s.text for s in segs if s.op != "del") == "Use a mug.\\n"


def test_rewritten_answer_is_marked_whole_without_deletions():
    segs = diff_segments("Swap halogen bulbs for LEDs to save power.",
                         "Organise a clothes swap party with other parents at school.")
    assert {s.op for s in segs} == {"ins"}


# ---------------------------------------------------------------- numbers, groups, charts

def test_formatting():
    assert fmt_num(None) == "—" and fmt_num(float("nan")) == "—"
    assert fmt_num(3.0) == "3" and fmt_num(0.43412) == "0.4341" and fmt_num(123.456) == "123.5"
    assert fmt_p(0.0001) == "p<0.001" and fmt_p(0.0412) == "p=0.041" and fmt_p(None) == ""
    assert fmt_num(0.05, signed=True) == "+0.0500" and fmt_num(-0.05, signed=True) == "-0.0500"
    assert fmt_num(0.0, signed=True) == "0" and fmt_num(2e-05, plain=True) == "2e-05"
    assert fmt_num(0.05, plain=True) == "0.05" and fmt_num(True) == "—"
    assert fmt_interval(0.1, 0.25) == "[0.1000, 0.2500]" and fmt_interval(None, 1) == ""


@pytest.mark.parametrize("name, group", [("rougeL", "quality"), ("verbatim_rate", "memorization"),
                                         ("mia_auc_zlib", "memorization"), ("loss_gap", "loss"),
                                         ("val_loss_rise", "loss"), ("novelty_4", "diversity"),
                                         ("mode_collapse_rate", "diversity"), ("escaped_newline_rate", "defects"),
                                         ("n_samples", "other"), ("my_metric", "other")])
def test_metric_group(name, group):
    assert metric_group(name) == group


def test_nice_ticks():
    assert nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(10, 100, 6) == [20, 40, 60, 80, 100]


def test_line_chart_geometry_skips_missing_points_and_stays_in_the_plot():
    c = line_chart("t", [("train", 0, False, [0, 10, 20], [2.0, 1.0, 0.5]),
                         ("val", 0, True, [0, 10, 20], [2.1, None, float("nan")])],
                   x_label="step", y_label="loss")
    train, val = c.series
    assert train.path.count("M") == 1 and train.path.count("L") == 2
    assert val.path.count("M") == 1 and "L" not in val.path  # one finite point
    nums = [float(x) for x in train.path.replace("M", " ").replace("L", " ").split()]
    xs, ys = nums[0::2], nums[1::2]
    assert all(c.left <= x <= c.right for x in xs) and all(c.top <= y <= c.bottom for y in ys)
    assert ys[0] < ys[2]  # higher loss is drawn higher (smaller y)
    assert line_chart("t", [("a", 0, False, [1], [None])], x_label="", y_label="") is None


# ---------------------------------------------------------------- whole views

def test_comparison_view_rows_deltas_and_filters():
    base = make_run("base", n=12, target_kind="base")
    good = make_run("good", n=12, seed=1, rouge_shift=0.05)
    bad = make_run("bad", n=12, seed=2, copy_rate=0.25, rouge_shift=-0.1)
    view = build_view(compare_runs([base, good, bad], n_boot=200))
    assert [t.name for t in view.targets] == ["base", "good", "bad"] and view.targets[0].is_baseline
    assert [t.name for t in view.metrics.candidates] == ["good", "bad"]
    rouge = next(r for g in view.metrics.groups for r in g.rows if r.name == "rougeL")
    assert rouge.arrow == "↑" and rouge.values[0].interval  # fakes record a rougeL interval
    assert rouge.deltas[0].cls.startswith("better") and rouge.deltas[1].cls.startswith("worse")
    rows = view.samples.rows
    assert len(rows) == 12
    flagged_ids = {s.id for s in bad.samples if s.flags}
    assert {r.id for r in rows if r.flagged} == flagged_ids
    preds = {run.target.name: {s.id: s.prediction for s in run.samples} for run in (base, good, bad)}
    for r in rows:
        assert r.differ == (len({p[r.id] for p in preds.values()}) > 1)
        if r.regression:  # the worst per-prompt rougeL change over the candidates, by hand from the samples
            assert float(r.regression) == pytest.approx(min(
                float(s.metrics["rougeL"]) - float(b.metrics["rougeL"])
                for run in (good, bad) for s in run.samples for b in base.samples if s.id == r.id == b.id),
                abs=1e-9)
    assert view.data["targets"] == ["base", "good", "bad"] and view.data["candidates"] == ["good", "bad"]


def test_single_run_view_has_no_deltas_and_no_diff():
    run = make_run("solo", n=6, kind="score")
    view = build_view(run)
    assert view.kind == "run" and view.baseline is None
    assert view.metrics.candidates == () and all(r.deltas == () for g in view.metrics.groups for r in g.rows)
    assert view.banner.gate is None
    assert view.training is None  # a score run has no training log
    assert all(s.op == "" for row in view.samples.rows for a in row.answers for s in a.segs)
    assert not view.samples.has_candidates


def test_training_table_joins_steps_across_adapters():
    a = make_run("a", n=4)
    b = make_run("b", n=4, seed=1)
    log_b = tuple(dict(r, step=r["step"] + 5) for r in b.target.training_log)
    b = dataclasses.replace(b, target=dataclasses.replace(b.target, training_log=log_b))
    view = build_view(compare_runs([a, b], n_boot=50))
    steps = [float(s) for s, _ in view.training.rows]
    assert steps == sorted(steps) and len(steps) == 20
    assert view.training.rows[0][1][1] == ("—", "—")  # b has no step 10
    assert len(view.training.charts) == 1 and len(view.training.charts[0].series) == 4


def test_config_rows_differ_only_when_present_values_disagree():
    base = make_run("base", n=4, target_kind="base")
    a = make_run("a", n=4)
    b = make_run("b", n=4, seed=1)
    cfg = dict(b.target.training, config=dict(b.target.training["config"], r=16))
    b = dataclasses.replace(b, target=dataclasses.replace(b.target, training=cfg))
    view = build_view(compare_runs([base, a, b], n_boot=50))
    table = next(t for t in view.configs.tables if t.title == "Training configuration")
    rows = {r.key: r for r in table.rows}
    assert [r.key for r in table.rows][:2] == ["r", "lora_alpha"]
    assert rows["r"].differs and rows["r"].values == ("", "8", "16")
    assert not rows["lora_alpha"].differs  # base has no LoRA config: absence alone is no difference
    assert rows["target_modules"].values[1] == "q_proj, v_proj"


def test_copy_memorization_with_wrong_offsets_is_reported_unlocated():
    run = make_run("copy", n=4, copy_rate=0.5)
    s = next(s for s in run.samples if s.memorization)
    bad_mem = dataclasses.replace(s.memorization, span="not in either text")
    samples = tuple(dataclasses.replace(x, memorization=bad_mem) if x.id == s.id else x for x in run.samples)
    view = build_view(dataclasses.replace(run, samples=samples))
    item = next(i for i in view.memorization.flagged[0].items if i.sample_id == s.id)
    assert not item.located and all(seg.op != "copy" for seg in item.prediction)

