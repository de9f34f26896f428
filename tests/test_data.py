"""The bundled eco data and the loader's validation."""

from __future__ import annotations

import json

import pytest
from rapidfuzz import fuzz, process

from evalkit.cli import main
from evalkit.data import escaped_newline_lines, load_conversations, load_predictions, load_suite
from evalkit.errors import DataError

from .conftest import REPO, write_jsonl

CATALOG = {c["id"] for c in json.loads((REPO / "benchmarks/eco/catalog.json").read_text("utf-8"))["challenges"]}
TRAIN = load_conversations(REPO / "benchmarks/eco/train.jsonl")
VAL = load_conversations(REPO / "benchmarks/eco/val.jsonl")
SUITES = {lang: load_suite(REPO / f"prompts/eco_heldout_{lang}.jsonl", require_reference=True)
          for lang in ("en", "ko")}

# A held-out prompt may not be a near-copy of a training prompt: its best rapidfuzz `ratio`
# (normalized Indel similarity of the lowercased texts, 0-100) against every training user
# message must stay at or below this bound. Measured maximum today: 63 (en), 36 (ko).
MAX_PROMPT_SIMILARITY = 70


def test_bundled_sizes_and_catalog():
    catalog = json.loads((REPO / "benchmarks/eco/catalog.json").read_text("utf-8"))["challenges"]
    assert len(catalog) >= 40
    assert all({"id", "name_en", "name_ko", "category", "description"} <= set(c) for c in catalog)
    assert len(TRAIN) >= 300 and len(VAL) >= 60
    assert len(SUITES["en"]) >= 80 and len(SUITES["ko"]) >= 40
    for rows in (TRAIN, VAL, *SUITES.values()):
        for r in rows:
            assert r.challenge_ids and set(r.challenge_ids) <= CATALOG, r.source


def test_korean_suite_is_korean():
    hangul = sum(any("\uac00" <= ch <= "\ud7af" for ch in p.prompt) for p in SUITES["ko"])
    assert hangul == len(SUITES["ko"])


def test_splits_are_disjoint_and_heldout_has_novel_situations():
    assert not ({c.id for c in TRAIN} & {c.id for c in VAL})
    assert sum("novel" in p.tags for p in SUITES["en"]) >= 10


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_heldout_prompts_are_not_near_copies_of_training_prompts(lang):
    train_prompts = [c.user.lower() for c in TRAIN]
    for p in SUITES[lang]:
        _, score, idx = process.extractOne(p.prompt.lower(), train_prompts, scorer=fuzz.ratio)
        assert score <= MAX_PROMPT_SIMILARITY, (p.id, TRAIN[idx].id, score)


def test_val_prompts_are_not_near_copies_of_training_prompts():
    train_prompts = [c.user.lower() for c in TRAIN]
    worst = max(process.extractOne(c.user.lower(), train_prompts, scorer=fuzz.ratio)[1] for c in VAL)
    assert worst <= 80


def test_bundled_answers_have_no_escaped_newlines():
    assert escaped_newline_lines(TRAIN + VAL) == []


def test_prompt_response_records_are_accepted(tmp_path):
    f = write_jsonl(tmp_path / "pr.jsonl", [{"prompt": "hi", "response": "hello"}, {"id": 7, "prompt": "a", "response": "b"}])
    convs = load_conversations(f)
    assert [c.id for c in convs] == ["pr-1", "7"]
    assert convs[0].messages == ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})


def test_suite_from_messages_takes_last_assistant_as_reference(tmp_path):
    f = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": "ref"}]}])
    (item,) = load_suite(f, require_reference=True)
    assert item.reference == "ref" and item.messages[-1]["role"] == "user" and item.suite == "s"


@pytest.mark.parametrize("content, message", [
    ('{"messages": [{"role": "user", "content": "x"}]}\n', "last message must be the assistant"),
    ('{"messages": [{"role": "bot", "content": "x"}]}\n', "role is 'bot'"),
    ('{"prompt": "x"}\n', r"expected 'messages' or 'prompt' \+ 'response'"),
    ('{"prompt": "x", "response": ""}\n', "'response' is empty"),
    ('[1, 2]\n', "expected a JSON object"),
    ('{"prompt": "x", "response": "y"}\n{"prompt": "x", "response": "y"\n', ":2: not valid JSON"),
    ('{"id": 1, "prompt": "x", "response": "y"}\n{"id": "1", "prompt": "z", "response": "w"}\n', "duplicate id '1'"),
    ("\n\n", "no conversation records"),
])
def test_broken_training_files_name_file_and_line(tmp_path, content, message):
    f = tmp_path / "bad.jsonl"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        load_conversations(f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_missing_reference_is_reported_when_required(tmp_path):
    f = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "prompt": "q", "reference": "r"}, {"id": "b", "prompt": "q2"}])
    assert load_suite(f)[1].reference is None
    with pytest.raises(DataError, match=r"s.jsonl:2: no reference"):
        load_suite(f, require_reference=True)


def test_predictions_loader(tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "prompt": "q", "prediction": "", "reference": "r"}])
    (p,) = load_predictions(f)
    assert p.prediction == "" and p.reference == "r"
    bad = write_jsonl(tmp_path / "b.jsonl", [{"id": "1", "prompt": "q"}])
    with pytest.raises(DataError, match=r"b.jsonl:1: 'prediction' must be a string, got missing"):
        load_predictions(bad)


def test_escaped_newline_lint(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "q", "response": "line one\\nline two"},
                                            {"prompt": "q", "response": "line one\nline two"}])
    assert escaped_newline_lines(load_conversations(f)) == [f"{f}:1"]


def test_score_cli_reports_broken_line_as_one_line(tmp_path, capsys):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "1", "prompt": "q", "prediction": "a"}\n{oops\n', encoding="utf-8")
    assert main(["score", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{f}:2" in err
    assert not (tmp_path / "out" / "results.json").exists()
