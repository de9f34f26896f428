"""evalkit.gate: rule grammar, error messages, judging, and `evalkit gate` exit codes."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest

from evalkit.cli import main
from evalkit.comparison import compare_runs
from evalkit.errors import GateError, RecordError
from evalkit.gate import (
    BinOp,
    GateSpec,
    MetricRef,
    Neg,
    Num,
    default_gate,
    evaluate_gate,
    load_gate,
    parse_gate,
    parse_rule,
)
from evalkit.records import (
    SCHEMA_VERSION,
    Comparison,
    Delta,
    RunRecord,
    Target,
    Verdict,
    save_record,
    to_dict,
)
from evalkit.thresholds import Thresholds
from tests.fakes import make_run


def run(name: str, kind: str = "eval", **summary: float) -> RunRecord:
    return RunRecord(schema_version=SCHEMA_VERSION, kind=kind, target=Target(name=name, kind="adapter"),
                     summary=dict(summary), verdict=Verdict(level="ok"))


def comparison(*runs: RunRecord, deltas: tuple[Delta, ...] = ()) -> Comparison:
    names = tuple(r.target.name for r in runs)
    return Comparison(schema_version=SCHEMA_VERSION, baseline=names[0], targets=names,
                      runs={r.target.name: r for r in runs}, deltas=deltas)


def spec(*rules: str, significance: float | None = None) -> GateSpec:
    return GateSpec(rules=tuple(parse_rule(r, index=i) for i, r in enumerate(rules, 1)), significance=significance,
                    source="test")


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("op", ["<=", ">=", "<", ">", "==", "!="])
def test_every_comparison_operator_parses(op):
    r = parse_rule(f"verbatim_rate {op} 0.05")
    assert (r.left, r.op, r.right) == (MetricRef("verbatim_rate"), op, Num(0.05))
    assert not r.relative


def test_precedence_unary_minus_and_parentheses():
    r = parse_rule("rougeL >= baseline.rougeL - 0.01 * 2")
    assert r.right == BinOp("-", MetricRef("rougeL", True), BinOp("*", Num(0.01), Num(2.0)))
    r = parse_rule("(rougeL - baseline.rougeL) / baseline.rougeL >= -0.05")
    assert r.left == BinOp("/", BinOp("-", MetricRef("rougeL"), MetricRef("rougeL", True)), MetricRef("rougeL", True))
    assert r.right == Neg(Num(0.05))
    assert r.relative and r.metrics == ("rougeL",) and r.baseline_metrics == ("rougeL",)
    assert parse_rule("loss_gap<=5e-1").right == Num(0.5)
    assert parse_rule("loss_gap <= .5").right == Num(0.5)
    assert parse_rule("0.3 <= rougeL").metrics == ("rougeL",)
    assert parse_rule("  mia_auc <= 0.75  ").text == "mia_auc <= 0.75"


@pytest.mark.parametrize("rule, message", [
    ("rougeL >= ", 'rule 3 "rougeL >=": expected a number or metric name at column 10'),
    ("rougeL >= baseline.", "expected a metric name after 'baseline.' at column 20"),
    ("rougeL >= baseline", "expected '.' and a metric name after 'baseline'"),
    ("rougeL 0.3", "expected an operator or a comparison, found '0.3' at column 8"),
    ("rougeL", "expected a comparison (<=, >=, <, >, ==, !=) at column 7"),
    ("rougeL >= 0.3 <= 0.5", "only one comparison per rule, found a second '<=' at column 15"),
    ("(rougeL >= 0.3", "expected ')' to close the '(' at column 1"),
    ("rougeL >= (0.3", "expected ')' to close the '(' at column 11 at column 15"),
    ("rougeL => 0.3", "unexpected character '=' (write '>=') at column 8"),
    ("rougeL >= * 0.3", "expected a number or metric name, found '*' at column 11"),
    ("rougeL >= 0.3)", "expected an operator or the end of the rule, found ')' at column 14"),
    ("rougeL >= 0.3 # note", "unexpected character '#' at column 15"),
    ("rougeL = 0.3", "unexpected character '=' (write '==' to test equality, or '<=' / '>=') at column 8"),
    ("1 <= 2", "names no candidate metric"),
    ("baseline.rougeL >= 0.3", "names no candidate metric"),
    ("", "empty rule"),
])
def test_malformed_rules_point_at_the_column(rule, message):
    with pytest.raises(GateError) as e:
        parse_rule(rule, index=3, source="gate.toml")
    assert message in str(e.value)
    assert str(e.value).startswith("gate.toml")
    assert "\n" not in str(e.value)


def test_unknown_metric_suggests_the_closest():
    with pytest.raises(GateError, match=r"unknown metric 'rogueL' at column 1\. Did you mean 'rougeL'\?"):
        parse_rule("rogueL >= 0.3")
    with pytest.raises(GateError, match=r"unknown metric 'verbatim' at column 27\. Did you mean 'verbatim_rate'\?"):
        parse_rule("verbatim_rate <= baseline.verbatim")


def test_parse_gate_file_shapes(tmp_path):
    path = tmp_path / "gate.toml"
    path.write_text('description = "mine"\nsignificance = 0.01\nrules = [\n  "rougeL >= 0.2",\n'
                    '  { rule = "mia_auc <= 0.7", optional = true },\n]\n', encoding="utf-8")
    g = load_gate(path)
    assert g.significance == 0.01 and g.description == "mine" and g.source == str(path)
    assert [r.text for r in g.rules] == ["rougeL >= 0.2", "mia_auc <= 0.7"]
    assert [r.optional for r in g.rules] == [False, True]
    assert [r.index for r in g.rules] == [1, 2]
    assert parse_gate('rules = ["rougeL >= 0.2"]').significance is None


def test_rule_errors_name_the_file_line(tmp_path):
    path = tmp_path / "gate.toml"
    path.write_text('significance = 0.05\nrules = [\n  "verbatim_rate <= 0.02",\n  "rougeL >= ",\n]\n')
    with pytest.raises(GateError) as e:
        load_gate(path)
    assert str(e.value) == (f'{path}:4: rule 2 "rougeL >=": expected a number or metric name at column 10')


@pytest.mark.parametrize("text, message", [
    ('rules = ["rougeL >= 0.2"\nsignificance = 0.05\n', r"gate\.toml:2: not valid TOML: .*\(column \d+\)"),
    ('rules = [\n  "rougeL >= 0.2",\n', r"gate\.toml:2: not valid TOML: .*at the end of the file"),
    ('rule = ["rougeL >= 0.2"]\n', r"gate\.toml:1: unknown key 'rule'\. Did you mean 'rules'\?"),
    ('rules = ["rougeL >= 0.2"]\nsignificanse = 0.05\n', r"gate\.toml:2: unknown key 'significanse'\. "
                                                         r"Did you mean 'significance'\?"),
    ('significance = 0.05\n', r"no 'rules'"),
    ('rules = []\n', r"'rules' must be a non-empty list"),
    ('rules = "rougeL >= 0.2"\n', r"'rules' must be a non-empty list"),
    ('rules = [3]\n', r"rule 1 must be a string"),
    ('rules = ["rougeL >= 0.2"]\nsignificance = 5\n', r"'significance' must be a number between 0 and 1"),
    ('rules = ["rougeL >= 0.2"]\nsignificance = true\n', r"'significance' must be a number"),
    ('rules = [{ rule = "rougeL >= 0.2", optinal = true }]\n', r"unknown key 'optinal'\. Did you mean 'optional'\?"),
    ('rules = [{ optional = true }]\n', r"a table needs rule ="),
    ('rules = [{ rule = "rougeL >= 0.2", optional = "yes" }]\n', r"'optional' must be true or false"),
])
def test_malformed_gate_files(text, message):
    with pytest.raises(GateError, match=message):
        parse_gate(text, source="gate.toml")


def test_missing_gate_file(tmp_path):
    with pytest.raises(GateError, match="no such gate file"):
        load_gate(tmp_path / "nope.toml")


def test_default_gate_has_the_documented_rules():
    g = default_gate()
    assert g.source == "default" and g.significance == 0.05
    assert [r.text for r in g.rules] == [
        "verbatim_rate <= verbatim_rate_overfit", "near_verbatim_rate <= near_verbatim_rate_overfit",
        "mia_auc <= mia_auc_overfit", "loss_gap <= loss_gap_overfit",
        "template_leak_rate <= 0.0", "escaped_newline_rate <= 0.0", "rougeL >= baseline.rougeL - 0.02"]
    assert [r.text for r in g.rules if r.optional] == ["mia_auc <= mia_auc_overfit", "loss_gap <= loss_gap_overfit"]
    # one limit per metric: the gate reads the verdict's thresholds (evalkit/policies/verdict.toml)
    assert [r.right for r in g.rules[:4]] == [Num(0.05), Num(0.05), Num(0.75), Num(0.5)]
    assert default_gate({**Thresholds(), "mia_auc_overfit": 0.9}).rules[2].right == Num(0.9)


# ---------------------------------------------------------------- judging


def test_absolute_rule_pass_and_fail_messages():
    c = comparison(run("base", verbatim_rate=0.0), run("seedlike", verbatim_rate=0.31), run("ok", verbatim_rate=0.01))
    res = evaluate_gate(spec("verbatim_rate <= 0.05"), c)
    assert not res.passed and res.source == "test"
    bad, good = res.rules
    assert (bad.candidate, bad.passed, bad.value, bad.threshold) == ("seedlike", False, 0.31, 0.05)
    assert bad.message == "verbatim_rate = 0.31 > 0.05 for 'seedlike'"
    assert good.passed and good.message == "verbatim_rate = 0.01 <= 0.05 for 'ok'"
    assert all(r.candidate != "base" for r in res.rules)  # the baseline is not judged


@pytest.mark.parametrize("rule, passed", [
    ("rougeL <= 0.4", True), ("rougeL <= 0.39", False),
    ("rougeL >= 0.4", True), ("rougeL >= 0.41", False),
    ("rougeL < 0.4", False), ("rougeL < 0.41", True),
    ("rougeL > 0.4", False), ("rougeL > 0.39", True),
    ("rougeL == 0.4", True), ("rougeL == 0.5", False),
    ("rougeL != 0.4", False), ("rougeL != 0.5", True),
    ("0.5 >= rougeL", True), ("0.3 >= rougeL", False),
    ("rougeL * 2 - 0.3 == 0.5", True),
    ("(rougeL + 0.1) * 2 >= 1", True), ("rougeL + 0.1 * 2 >= 1", False),
    ("-rougeL <= -0.4", True), ("rougeL / 4 == 0.1", True),
])
def test_each_operator_and_arithmetic(rule, passed):
    c = comparison(run("base", rougeL=0.5), run("cand", rougeL=0.4))
    assert evaluate_gate(spec(rule), c).passed is passed


def test_swapped_sides_report_value_first():
    c = comparison(run("base", rougeL=0.5), run("cand", rougeL=0.2))
    r = evaluate_gate(spec("0.3 <= rougeL"), c).rules[0]
    assert (r.value, r.threshold) == (0.2, 0.3)
    assert r.message == "rougeL = 0.2 < 0.3 for 'cand'"


def test_threshold_equality_is_tolerant_of_rounding():
    # 0.43 - 0.02 = 0.41000000000000003 in binary floating point
    c = comparison(run("base", rougeL=0.43), run("cand", rougeL=0.41))
    assert evaluate_gate(spec("rougeL >= baseline.rougeL - 0.02"), c).passed


def test_relative_rule_with_arithmetic_reports_the_expression():
    c = comparison(run("base", rougeL=0.5), run("cand", rougeL=0.4))
    r = evaluate_gate(spec("rougeL >= baseline.rougeL * 0.9"), c).rules[0]
    assert not r.passed and r.threshold == pytest.approx(0.45)
    assert r.message == "rougeL = 0.4 < 0.45 (baseline.rougeL * 0.9) for 'cand'"
    r = evaluate_gate(spec("(rougeL - baseline.rougeL) / baseline.rougeL >= -0.1"), c).rules[0]
    assert not r.passed and r.value == pytest.approx(-0.2)


def _rouge_delta(p):
    return (Delta(metric="rougeL", candidate="cand", baseline_value=0.5, candidate_value=0.4, delta=-0.1,
                  p_value=p, n_pairs=20 if p is not None else 0, test="paired_bootstrap+wilcoxon" if p else None),)


def test_significance_gates_relative_rules_only():
    base, cand = run("base", rougeL=0.5, verbatim_rate=0.0), run("cand", rougeL=0.4, verbatim_rate=0.1)
    rel = "rougeL >= baseline.rougeL - 0.02"
    # regression not significant -> passes, says why
    r = evaluate_gate(spec(rel, significance=0.05), comparison(base, cand, deltas=_rouge_delta(0.2))).rules[0]
    assert r.passed and "not significant (p = 0.2 >= 0.05)" in r.message
    # significant -> fails
    r = evaluate_gate(spec(rel, significance=0.05), comparison(base, cand, deltas=_rouge_delta(0.001))).rules[0]
    assert not r.passed and "significant: p = 0.001 < 0.05" in r.message
    # no significance in the gate -> point estimate
    assert not evaluate_gate(spec(rel), comparison(base, cand, deltas=_rouge_delta(0.2))).passed
    # no paired test for the metric (p None) -> point estimate, and the message says so
    r = evaluate_gate(spec(rel, significance=0.05), comparison(base, cand, deltas=_rouge_delta(None))).rules[0]
    assert not r.passed and "no paired test for rougeL" in r.message
    # absolute rules ignore significance
    verb = Delta(metric="verbatim_rate", candidate="cand", baseline_value=0.0, candidate_value=0.1, delta=0.1,
                 p_value=0.5, n_pairs=20)
    assert not evaluate_gate(spec("verbatim_rate <= 0.05", significance=0.05),
                             comparison(base, cand, deltas=(verb,))).passed


def test_significance_end_to_end_with_paired_deltas():
    base = make_run("base", target_kind="base")
    slightly_worse = make_run("slightly", seed=1, rouge_shift=-0.025)  # below the tolerance, but noisy
    much_worse = make_run("much", seed=2, rouge_shift=-0.1)
    c = compare_runs([base, slightly_worse, much_worse], n_boot=300)
    rule = "rougeL >= baseline.rougeL - 0.02"
    loose = {r.candidate: r for r in evaluate_gate(spec(rule, significance=1e-9), c).rules}
    strict = {r.candidate: r for r in evaluate_gate(spec(rule), c).rules}
    assert not strict["slightly"].passed and not strict["much"].passed
    assert loose["slightly"].passed and loose["much"].passed
    default = {r.candidate: r for r in evaluate_gate(spec(rule, significance=0.05), c).rules}
    assert not default["much"].passed


def test_missing_metric_fails_unless_optional():
    base = run("base", rougeL=0.4, mia_auc=0.5)
    scored = run("gpt", kind="score", rougeL=0.4)
    g = parse_gate('rules = ["mia_auc <= 0.75", { rule = "mia_auc <= 0.7", optional = true }, '
                   '"rougeL >= baseline.rouge1"]')
    res = evaluate_gate(g, comparison(base, scored))
    strict, optional, missing_baseline = res.rules
    assert not strict.passed and strict.value is None
    assert strict.message == ("mia_auc is not in the results of 'gpt' (a `score` run), so the rule cannot be "
                              "checked; measure it (evalkit eval) or mark the rule optional")
    assert optional.passed and optional.message.startswith("skipped: mia_auc is not in the results of 'gpt'")
    assert not missing_baseline.passed and "baseline.rouge1 is not in the results of 'base'" in missing_baseline.message
    assert not res.passed


def test_nonfinite_summary_value_counts_as_missing_and_division_by_zero_fails():
    c = comparison(run("base", rougeL=0.0), run("cand", rougeL=float("nan"), rouge1=0.3))
    assert not evaluate_gate(spec("rougeL >= 0.1"), c).passed
    r = evaluate_gate(spec("rouge1 / baseline.rougeL >= 1"), c).rules[0]
    assert not r.passed and "division by zero" in r.message


def test_evaluate_gate_accepts_runs_and_orders_rule_major():
    runs = [make_run("base", target_kind="base"), make_run("a", seed=1), make_run("b", seed=2, copy_rate=0.3)]
    res = compare_runs(runs, gate=default_gate(), n_boot=200).gate
    v, nv = "verbatim_rate <= verbatim_rate_overfit", "near_verbatim_rate <= near_verbatim_rate_overfit"
    assert [(r.rule, r.candidate) for r in res.rules[:4]] == [(v, "a"), (v, "b"), (nv, "a"), (nv, "b")]
    assert len(res.rules) == 7 * 2
    assert not res.passed
    assert {r.candidate for r in res.rules if not r.passed} == {"b"}


# ---------------------------------------------------------------- `evalkit gate`


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    d = tmp_path_factory.mktemp("gate_cli")
    runs = [make_run("base", target_kind="base"), make_run("gentle", seed=1, rouge_shift=0.03),
            make_run("seedlike", seed=2, copy_rate=0.3)]
    good = compare_runs(runs[:2], n_boot=200)
    bad = compare_runs(runs, n_boot=200)
    save_record(good, d / "good.json")
    save_record(bad, d / "bad.json")
    return d


def test_cli_exit_0_when_every_rule_passes(stored, capsys):
    assert main(["gate", str(stored / "good.json")]) == 0
    out = capsys.readouterr().out
    assert "gate default: PASSED" in out and "verbatim_rate = 0 <= 0.05 for 'gentle'" in out


def test_cli_exit_1_when_a_rule_fails_and_writes_junit_and_summary(stored, tmp_path, capsys):
    junit, summary = tmp_path / "j" / "junit.xml", tmp_path / "summary.md"
    assert main(["gate", str(stored / "bad.json"), "--junit", str(junit), "--summary", str(summary)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  seedlike" in out and "verbatim_rate = 0.3 > 0.05 for 'seedlike'" in out
    assert "FAILED" in out.splitlines()[-1]
    root = ET.fromstring(junit.read_text(encoding="utf-8"))
    assert int(root.get("failures")) > 0
    assert "**Gate: FAIL**" in summary.read_text(encoding="utf-8")


def test_cli_custom_gate_can_pass_a_failing_comparison(stored, tmp_path):
    gate = tmp_path / "lenient.toml"
    gate.write_text('rules = ["verbatim_rate <= 0.5"]\n')
    assert main(["gate", str(stored / "bad.json"), "--gate", str(gate)]) == 0


def test_cli_exit_2_on_bad_input(stored, tmp_path, capsys):
    bad_gate = tmp_path / "bad.toml"
    bad_gate.write_text('rules = ["rogueL >= 0.3"]\n')
    assert main(["gate", str(stored / "good.json"), "--gate", str(bad_gate)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'rougeL'?" in err and len(err.strip().splitlines()) == 1
    assert main(["gate", str(tmp_path / "missing.json")]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert main(["gate", str(broken)]) == 2
    with pytest.raises(SystemExit) as e:  # argparse usage errors exit via SystemExit(2)
        main(["gate"])
    assert e.value.code == 2


def test_cli_newer_schema_is_exit_2(stored, tmp_path, capsys):
    data = json.loads((stored / "good.json").read_text(encoding="utf-8"))
    data["schema_version"] = SCHEMA_VERSION + 1
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data), encoding="utf-8")
    assert main(["gate", str(newer)]) == 2
    assert "newer evalkit" in capsys.readouterr().err


def test_cli_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["gate", "--help"])
    out = capsys.readouterr().out
    for text in ("Exit codes", "0  every rule passed", "1  at least one rule failed", "2  bad input", "--junit",
                 "--summary", "--gate"):
        assert text in out


def test_stored_comparison_round_trips_through_the_gate(stored):
    # the gate re-judges only from the stored JSON: no model, same decision as in memory
    from evalkit.records import load_comparison

    c = load_comparison(stored / "bad.json")
    again = evaluate_gate(default_gate(), c)
    assert to_dict(again) == to_dict(evaluate_gate(default_gate(), c))
    assert not again.passed


def test_inconsistent_comparison_is_a_record_error(tmp_path):
    c = comparison(run("base", rougeL=0.5), run("cand", rougeL=0.4))
    broken = dataclasses.replace(c, runs={"base": c.runs["base"]})
    with pytest.raises(RecordError, match="target 'cand' has no run record"):
        evaluate_gate(spec("rougeL >= 0.1"), broken)
    save_record(broken, tmp_path / "broken.json")
    assert main(["gate", str(tmp_path / "broken.json")]) == 2


def test_unicode_comparison_hint():
    with pytest.raises(GateError, match=r"unexpected character '≤' \(write '<='\) at column 8"):
        parse_rule("rougeL ≤ 0.3")


def test_cli_unwritable_output_is_exit_2(stored, tmp_path, capsys):
    assert main(["gate", str(stored / "good.json"), "--junit", str(tmp_path)]) == 2  # a folder, not a file
    assert "--junit" in capsys.readouterr().err


# ---------------------------------------------------------------- property: arithmetic matches Python's


def _arith():
    from hypothesis import strategies as st

    leaf = st.integers(min_value=0, max_value=9).map(str) | st.sampled_from(["0.5", "2.25", ".5", "1e1"])

    def extend(inner):
        return (st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
                | inner.map(lambda e: f"({e})") | inner.map(lambda e: f"-{e}"))

    return st.recursive(leaf, extend, max_leaves=8)


def test_rule_arithmetic_matches_python_precedence():
    from hypothesis import given, settings

    from evalkit.policy import evaluate as _eval

    @settings(max_examples=120, deadline=None)
    @given(_arith())
    def check(text):
        try:
            expected = eval(text, {"__builtins__": {}})  # the test's brute-force twin; the gate never evals
        except ZeroDivisionError:
            expected = None
        rule = parse_rule(f"rougeL <= {text}")
        try:
            got = _eval(rule.right, lambda ref: 0.0)
        except ZeroDivisionError:
            got = None
        if expected is None or got is None:
            assert expected is None and got is None, text
        else:
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), text

    check()


@pytest.mark.parametrize("expr", [
    "baseline.rougeL - 0.01 * 2", "(baseline.rougeL - 0.01) * 2", "baseline.rougeL - (0.01 - 0.02)",
    "baseline.rougeL / (2 * 0.5)", "baseline.rougeL * 0.5 + 0.1", "-(baseline.rougeL + 1)", "-baseline.rougeL",
])
def test_messages_show_the_threshold_expression_faithfully(expr):
    c = comparison(run("base", rougeL=0.5), run("cand", rougeL=0.0))
    r = evaluate_gate(spec(f"rougeL >= {expr}"), c).rules[0]
    assert r.message.endswith(f" ({expr}) for 'cand'")
