"""evalkit.summary_md: content, escaping, and the summary.md golden file."""

from __future__ import annotations

import dataclasses
import re

import pytest

from evalkit.comparison import compare_runs
from evalkit.gate import default_gate
from evalkit.summary_md import KEY_METRICS, md_escape, to_summary_md
from tests.fakes import HOSTILE, assert_golden, make_run, standard_comparison


@pytest.fixture(scope="module")
def comp():
    return standard_comparison()


def test_summary_md_golden(comp):
    assert_golden("summary.md", to_summary_md(comp))


def test_gate_line_verdicts_and_pointers(comp):
    md = to_summary_md(comp)
    assert md.splitlines()[2].startswith("**Gate: FAIL**")
    assert "2 skipped" in md
    assert "- ✗ verbatim\\_rate <= verbatim\\_rate\\_overfit — verbatim\\_rate = 0.3333 > 0.05 for 'seedlike'" in md
    assert "| seedlike | candidate | **overfit** |" in md
    assert "| base | baseline | ok | — |" in md
    assert "[report.html](report.html)" in md


def test_key_metric_table_has_only_present_metrics_with_delta_ci_p(comp):
    md = to_summary_md(comp)
    rows = {line.split(" | ")[0].lstrip("| ").split(" ")[0].replace("\\_", "_"): line for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| target") and "|---" not in line}
    present = [m for m in KEY_METRICS if m in rows]
    assert present == ["rougeL", "loss_gap", "mia_auc", "verbatim_rate", "near_verbatim_rate", "extraction_rate",
                       "novelty_4", "distinct_2"]
    rouge = rows["rougeL"]
    assert "Δ" in rouge and "\\[" in rouge and "p=" in rouge
    assert "–" in rows["mia_auc"]  # the score run has no mia_auc
    d = [d for d in comp.deltas if d.candidate == "seedlike" and d.metric == "verbatim_rate"][0]
    assert f"p={d.p_value:.3f}" in rows["verbatim_rate"] and "worse" in rows["verbatim_rate"]


def test_without_gate_and_with_only_some_metrics():
    c = compare_runs([make_run("a", kind="score"), make_run("b", kind="score", seed=1)], n_boot=50)
    md = to_summary_md(c)
    assert "**Gate: not evaluated**" in md
    assert "| rougeL ↑" in md and "| verbatim\\_rate ↓" in md and "mia\\_auc" not in md


def test_passing_gate_line():
    c = compare_runs([make_run("base", target_kind="base"), make_run("ok", seed=1)], gate=default_gate(), n_boot=50)
    assert "**Gate: PASS** — 7 of 7 checks passed (gate: default)" in to_summary_md(c)


@pytest.mark.parametrize("raw, escaped", [
    ("a|b", "a\\|b"),
    ("line1\nline2\r\n", "line1 line2"),
    ("<script>alert(1)</script>", "\\<script>alert(1)\\</script>"),
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),
    ("{{ 7*7 }}", "{{ 7\\*7 }}"),
    ("lr_1e-4 [x](y) ![i](j)", "lr\\_1e-4 \\[x\\](y) !\\[i\\](j)"),
    ("rougeL <= 0.4 < 1 & $x$ ~~s~~ `c` \\", "rougeL <= 0.4 < 1 \\& \\$x\\$ \\~\\~s\\~\\~ \\`c\\` \\\\"),
    ("한국어 어댑터", "한국어 어댑터"),
])
def test_md_escape(raw, escaped):
    assert md_escape(raw) == escaped


def test_hostile_names_cannot_break_the_table_or_inject_html():
    names = ["base", "evil|name\nwith newline", *HOSTILE]
    c = compare_runs([make_run(n, seed=i, hostile=True, copy_rate=0.3) for i, n in enumerate(names)],
                     gate=default_gate(), n_boot=20)
    md = to_summary_md(c)
    # 7 targets: a sweep, so one row per target (3 fixed columns + one per sweep metric)
    header = [line for line in md.splitlines() if line.startswith("| # |")][0]
    n_cols = header.count(" | ") + 1
    assert n_cols > 3 and len([line for line in md.splitlines() if re.match(r"\| \d+ \| ", line)]) == len(names)
    for line in md.splitlines():
        if line.startswith("| "):
            unescaped_pipes = line.replace("\\|", "").count("|")
            assert unescaped_pipes in (n_cols + 1, 5), line  # sweep table or the 4-column verdict table
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", md)  # no raw HTML tag can open
    assert "\\<script>alert(1)\\</script>" in md
    assert "evil\\|name with newline" in md


def test_gate_source_and_messages_are_escaped():
    c = compare_runs([make_run("base"), make_run("x", seed=1, copy_rate=0.3)], gate=default_gate(), n_boot=20)
    c = dataclasses.replace(c, gate=dataclasses.replace(c.gate, source="<b>evil</b>.toml"))
    md = to_summary_md(c)
    assert "\\<b>evil\\</b>.toml" in md


def test_reasons_carry_value_interval_n_and_status():
    from evalkit.records import Reason
    from evalkit.summary_md import reason_text

    r = Reason("mia", "warn", "membership inference may separate", metric="mia_auc", value=0.766, threshold=0.75,
               ci_low=0.48, ci_high=0.95, n=8, status="not_enough_data")
    assert reason_text(r) == ("membership inference may separate (mia_auc 0.7660, 95% CI [0.4800, 0.9500], n=8, "
                              "not enough data)")
    plain = Reason("verbatim", "overfit", "33% copy", metric="verbatim_rate", value=0.33, threshold=0.05)
    assert reason_text(plain) == "33% copy"  # an old record without interval or n reads as before


def test_a_sweep_gets_a_row_per_target_and_the_recommendation():
    from tests.report.sweeps import sweep_comparison

    comp = sweep_comparison(6, n=20, n_boot=20)
    md = to_summary_md(comp)
    assert "## Sweep" in md and "## Key metrics" not in md
    ok = [n for n, r in comp.runs.items() if n != comp.baseline and r.verdict.level == "ok"]
    best = max(ok, key=lambda n: comp.runs[n].summary["rougeL"])
    assert f"**Recommended: {md_escape(best)}," in md
    rows = [line for line in md.splitlines() if re.match(r"\| \d+ \| ", line)]
    assert len(rows) == 6 and rows[0].startswith("| 0 | base (baseline) |")


def test_hostile_names_cannot_break_the_key_metric_table():
    names = ["base", "evil|name\nwith newline", HOSTILE[0]]
    c = compare_runs([make_run(n, seed=i, hostile=True, copy_rate=0.3) for i, n in enumerate(names)],
                     gate=default_gate(), n_boot=20)
    md = to_summary_md(c)
    header = [line for line in md.splitlines() if line.startswith("| metric")][0]
    n_cols = header.count(" | ") + 1
    assert n_cols == 1 + len(names)
    for line in md.splitlines():
        if line.startswith("| "):
            assert line.replace("\\|", "").count("|") in (n_cols + 1, 5), line
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", md)
