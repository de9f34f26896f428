"""The data audit (evalkit/audit.py) and `evalkit audit`: hand-built splits with hand-derived rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.templated.generate import make_split, write_jsonl
from evalkit.audit import audit_data, audit_files
from evalkit.cli import main
from evalkit.data import Conversation, PromptItem
from evalkit.records import DataAudit, from_dict, to_dict

REPO = Path(__file__).resolve().parent.parent

BASE = "abcdefghij" * 4  # 40 characters


def conv(cid: str, answer: str, user: str = "") -> Conversation:
    return Conversation(cid, ({"role": "user", "content": user or f"question {cid}"},
                              {"role": "assistant", "content": answer}))


def test_rates_are_shares_of_validation_answers_within_a_tenth_edit_distance():
    train = [conv("t1", BASE), conv("t2", "zyxwvutsrq" * 4), conv("t3", "completely different words here")]
    three_edits = "XYZ" + BASE[3:]  # 3 substitutions / 40 chars = 0.075 <= 0.10
    five_edits = "XYZUV" + BASE[5:]  # 5 / 40 = 0.125 > 0.10
    val = [conv("v1", "  " + BASE.upper() + " "),  # the same after case / whitespace normalization: exact
           conv("v2", three_edits), conv("v3", five_edits), conv("v4", "nothing like any training answer at all")]
    a = audit_data(train, val)
    assert a.summary["val_answer_exact_dup_rate"] == 1 / 4
    assert a.summary["val_answer_near_dup_rate"] == 2 / 4
    assert a.n == {"train": 3, "val": 4}
    assert [e["id"] for e in a.examples["val_answer_near_dups"]] == ["v1", "v2"]  # nearest first
    assert [w.code for w in a.warnings] == ["val_leak"]  # 0.5 >= 0.20


def test_a_single_leaked_answer_in_ten_is_below_the_val_leak_threshold():
    train = [conv(f"t{i}", f"training answer number {i} " + "x" * 20 * i) for i in range(1, 6)]
    val = [conv("v0", train[0].answer)] + [conv(f"v{i}", f"an unrelated validation answer {i} " + "y" * i)
                                            for i in range(1, 10)]
    a = audit_data(train, val)
    assert a.summary["val_answer_near_dup_rate"] == 0.1
    assert "val_leak" not in [w.code for w in a.warnings]


def test_heldout_leak_and_val_prompt_duplicates():
    train = [conv("t1", "an answer about bikes and buses " * 2, user="how do I get to work without a car today"),
             conv("t2", "an answer about lamps and bulbs " * 2, user="my electricity bill is far too high lately")]
    val = [conv("v1", "something new " * 3, user="how do I get to work without a car today?")]
    suite = [PromptItem("h1", "mine", ({"role": "user", "content": "My electricity bill is far too high lately"},),
                        "ref one"),
             PromptItem("h2", "mine", ({"role": "user", "content": "what about a garden for the kids"},), "ref two")]
    a = audit_data(train, val, [suite])
    assert a.summary["val_prompt_near_dup_rate"] == 1.0  # one extra "?" in 41 characters
    assert a.suites["mine"]["heldout_prompt_near_dup_rate"] == 0.5
    assert a.summary["heldout_prompt_near_dup_rate"] == 0.5
    assert "heldout_leak" in [w.code for w in a.warnings]


def test_templated_split_leaks_and_the_bundled_eco_split_does_not(tmp_path):
    train, val = make_split(160, 40, seed=0)
    t = audit_files(write_jsonl(train, tmp_path / "t.jsonl"), write_jsonl(val, tmp_path / "v.jsonl"))
    assert t.summary["val_answer_near_dup_rate"] >= 0.9
    assert {"val_leak", "templated_answers"} <= {w.code for w in t.warnings}
    eco = audit_files(REPO / "benchmarks/eco/train.jsonl", REPO / "benchmarks/eco/val.jsonl",
                      [REPO / "prompts/eco_heldout_en.jsonl", REPO / "prompts/eco_heldout_ko.jsonl"])
    assert eco.summary["val_answer_near_dup_rate"] <= 0.05
    assert eco.summary["train_answer_template_share"] <= 0.05
    assert not {"val_leak", "heldout_leak", "templated_answers"} & {w.code for w in eco.warnings}
    assert set(eco.suites) == {"eco_heldout_en", "eco_heldout_ko"}


def test_audit_command_writes_a_versioned_record_and_prints_the_warnings(tmp_path, capsys):
    train, val = make_split(40, 10, seed=1)
    write_jsonl(train, tmp_path / "t.jsonl")
    write_jsonl(val, tmp_path / "v.jsonl")
    out = tmp_path / "out"
    assert main(["audit", str(tmp_path / "t.jsonl"), "--val", str(tmp_path / "v.jsonl"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "warning [val_leak]" in printed and "warning [templated_answers]" in printed
    raw = json.loads((out / "audit.json").read_text("utf-8"))
    assert raw["schema_version"] == 1 and raw["inputs"]["train"]["n"] == 40
    assert from_dict(DataAudit, raw) == from_dict(DataAudit, to_dict(from_dict(DataAudit, raw)))
    assert {w["code"] for w in raw["warnings"]} >= {"val_leak", "templated_answers"}


@pytest.mark.parametrize("content,why", [('{"id": 1, "messages": [}\n', "not valid JSON"),
                                         ('{"id": 1, "prompt": "q"}\n', "expected 'messages'")])
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(tmp_path, capsys, content, why):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    assert main(["audit", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err and "bad.jsonl:1" in err
    assert not (tmp_path / "out").exists()
