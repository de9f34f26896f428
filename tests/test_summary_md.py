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
    header = [line for line in md.splitlines() if line.startswith("| metric")][0]
    n_cols = header.count(" | ") + 1
    assert n_cols == 1 + len(names)
    for line in md.splitlines():
        if line.startswith("| "):
            unescaped_pipes = line.replace("\\|", "").count("|")
            assert unescaped_pipes in (n_cols + 1, 5), line  # metric table or the 4-column verdict table
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", md)  # no raw HTML tag can open
    assert "\\<script>alert(1)\\</script>" in md
    assert "evil\\|name with newline" in md


def test_gate_source_and_messages_are_escaped():
    c = compare_runs([make_run("base"), make_run("x", seed=1, copy_rate=0.3)], gate=default_gate(), n_boot=20)
    c = dataclasses.replace(c, gate=dataclasses.replace(c.gate, source="<b>evil</b>.toml"))
    md = to_summary_md(c)
    assert "\\<b>evil\\</b>.toml" in md
