"""evalkit.junit: structure, counts, and valid XML with hostile names and messages."""

from __future__ import annotations

import dataclasses
import xml.dom.minidom
import xml.etree.ElementTree as ET

import pytest

from evalkit.comparison import compare_runs
from evalkit.gate import default_gate, evaluate_gate, parse_gate
from evalkit.junit import to_junit_xml
from evalkit.records import GateResult, Reason, RuleResult, Verdict
from tests.fakes import HOSTILE, make_run, standard_comparison


@pytest.fixture(scope="module")
def comp():
    return standard_comparison(n=12, n_boot=100)


def cases(root, classname=None):
    out = root.findall("./testsuite/testcase")
    return [c for c in out if classname is None or c.get("classname") == classname]


def test_one_suite_with_a_case_per_rule_and_candidate_plus_verdicts(comp):
    root = ET.fromstring(to_junit_xml(comp))
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "evalkit gate"
    n_rules = len(comp.gate.rules)
    n_candidates = len(comp.targets) - 1
    assert len(cases(root)) == n_rules + n_candidates == int(suite.get("tests"))
    # the baseline is not a test subject
    assert not cases(root, "evalkit.gate.base")
    names = [c.get("name") for c in cases(root, "evalkit.gate.seedlike")]
    assert names == [r.text for r in default_gate().rules] + ["verdict"]


def test_failures_skips_and_counts_match_the_gate(comp):
    root = ET.fromstring(to_junit_xml(comp))
    suite = root.find("testsuite")
    failed_rules = [r for r in comp.gate.rules if not r.passed]
    overfit = [t for t in comp.targets[1:] if comp.runs[t].verdict.level == "overfit"]
    assert int(suite.get("failures")) == len(failed_rules) + len(overfit) == len(suite.findall(".//failure"))
    assert int(suite.get("skipped")) == 2 == len(suite.findall(".//skipped"))  # mia_auc, loss_gap on the score run
    assert suite.get("errors") == "0"
    verb = [c for c in cases(root, "evalkit.gate.seedlike") if c.get("name") == "verbatim_rate <= verbatim_rate_overfit"][0]
    fail = verb.find("failure")
    assert fail.get("message") == "verbatim_rate = 0.3333 > 0.05 for 'seedlike'"
    skipped = [c for c in cases(root, "evalkit.gate.gpt-4o-mini") if c.get("name") == "mia_auc <= mia_auc_overfit"][0]
    assert skipped.find("skipped").get("message").startswith("skipped: mia_auc")


def test_verdict_levels(comp):
    root = ET.fromstring(to_junit_xml(comp))
    overfit = [c for c in cases(root, "evalkit.gate.seedlike") if c.get("name") == "verdict"][0]
    assert overfit.find("failure").get("type") == "Overfit"
    assert "verdict overfit for 'seedlike'" in overfit.find("failure").get("message")
    assert "[overfit] verbatim" in overfit.find("failure").text
    warn_run = dataclasses.replace(comp.runs["gentle"], verdict=Verdict(level="warn", reasons=(
        Reason(code="val_loss_rise", level="warn", message="validation loss rose 0.09 after its best step"),)))
    warned = dataclasses.replace(comp, runs={**comp.runs, "gentle": warn_run})
    root = ET.fromstring(to_junit_xml(warned))
    case = [c for c in cases(root, "evalkit.gate.gentle") if c.get("name") == "verdict"][0]
    assert case.find("failure") is None
    assert "verdict warn for 'gentle'" in case.find("system-out").text
    assert "validation loss rose" in case.find("system-out").text


def test_without_a_gate_only_verdicts():
    c = compare_runs([make_run("base", target_kind="base"), make_run("a", seed=1)], n_boot=50)
    root = ET.fromstring(to_junit_xml(c))
    assert [(x.get("classname"), x.get("name")) for x in cases(root)] == [("evalkit.gate.a", "verdict")]
    assert root.find("testsuite").get("failures") == "0"


def test_hostile_names_and_messages_stay_valid_xml():
    names = ["base", *HOSTILE, "ctrl\x1b[31m\x00name", "quote \" ' & amp"]
    runs = [make_run(n, seed=i, hostile=True, copy_rate=0.3 if i % 2 else 0.0) for i, n in enumerate(names)]
    c = compare_runs(runs, n_boot=20)
    g = parse_gate('rules = ["verbatim_rate <= 0.05", { rule = "mia_auc <= 0.75", optional = true }]')
    gate = evaluate_gate(g, c)
    extra = RuleResult(rule="rougeL >= 0.3", candidate=HOSTILE[0], passed=False,
                       message=f"{HOSTILE[1]} ]]> <![CDATA[ {HOSTILE[2]} \x07bell")
    c = dataclasses.replace(c, gate=GateResult(passed=False, rules=gate.rules + (extra,), source=HOSTILE[3]))
    text = to_junit_xml(c)
    xml.dom.minidom.parseString(text.encode("utf-8"))  # a second, stricter parser
    root = ET.fromstring(text)
    classnames = {x.get("classname") for x in cases(root)}
    for h in HOSTILE:
        assert f"evalkit.gate.{h}" in classnames  # escaped, not mangled
    assert "evalkit.gate.ctrl\ufffd[31m\ufffdname" in classnames
    msgs = [f.get("message") for f in root.iter("failure")]
    assert f"{HOSTILE[1]} ]]> <![CDATA[ {HOSTILE[2]} \ufffdbell" in msgs
    assert "<script>" not in text  # only ever as &lt;script&gt;
