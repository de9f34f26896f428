"""The CLI surface: every option has help and shows its default; preflight failures are one line, exit 2."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pytest

from evalkit.cli import HelpFormatter, build_parser, main

from .conftest import REPO, write_jsonl


def _subcommands():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_option_has_help_that_shows_its_default():
    missing = []
    for name, parser in _subcommands().items():
        fmt = HelpFormatter(prog=name)
        for action in parser._actions:
            if not action.option_strings or action.help is argparse.SUPPRESS or action.dest == "help":
                continue
            text = fmt._get_help_string(action)
            if not action.help or not ("default" in text or "(required)" in text):
                missing.append(f"{name} {'/'.join(action.option_strings)}")
    assert missing == []


def test_help_prints_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--batch-size BATCH_SIZE prompts per generation / scoring batch (default: 16)" in out
    assert "--sample seeded sampling instead of greedy decoding (default: off)" in out
    assert "--out OUT output folder for results.json and report.html (required)" in out


def test_train_accepts_the_option_the_template_advice_names():
    args = build_parser().parse_args(["train", "--out", "x", "--chat-template-from-config"])
    from evalkit.commands.train_cmd import overrides_from

    assert overrides_from(args) == ["chat_template_from_config=true"]
    for cmd in (["eval", "base"], ["compare", "a", "b"]):
        assert build_parser().parse_args([*cmd, "--out", "x", "--chat-template-from-config"]).chat_template_from_config


# ---------------------------------------------------------------- --out checked before any work


def _taken(tmp_path: Path) -> Path:
    f = tmp_path / "taken"
    f.write_text("x")
    return f


@pytest.fixture
def preds(tmp_path):
    return write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "prompt": "hi", "prediction": "hello", "reference": "hey"}])


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_score_out_in_the_way_is_one_line_before_scoring(where, tmp_path, preds, capsys, monkeypatch):
    import evalkit.evaluate as ev

    monkeypatch.setattr(ev, "score_predictions", lambda *a, **k: pytest.fail("scored before checking --out"))
    out = _taken(tmp_path) if where == "file" else _taken(tmp_path) / "sub"
    assert main(["score", str(preds), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: --out") and err.count("\n") == 1


def test_report_out_under_a_file_is_one_line(tmp_path, capsys):
    from evalkit.outputs import write_run
    from tests.fakes import make_run

    write_run(make_run("a", n=4), tmp_path / "r")
    assert main(["report", str(tmp_path / "r"), "--out", str(_taken(tmp_path) / "report.html")]) == 2
    err = capsys.readouterr().err
    assert "taken is a file, so no folder can be created under it" in err and err.count("\n") == 1


def test_train_out_under_a_file_is_one_line_before_training(tmp_path, capsys, monkeypatch):
    import evalkit.runtime.train as tr

    monkeypatch.setattr(tr, "train", lambda *a, **k: pytest.fail("trained before checking --out"))
    assert main(["train", "--out", str(_taken(tmp_path) / "adapter"), "--set", "max_steps=1"]) == 2
    err = capsys.readouterr().err
    assert "taken is a file" in err and err.count("\n") == 1


def test_gate_junit_in_a_folder_path_is_one_line(tmp_path, capsys):
    from evalkit.outputs import write_comparison
    from tests.fakes import standard_comparison

    write_comparison(standard_comparison(n=6, n_boot=50), tmp_path / "c")
    assert main(["gate", str(tmp_path / "c" / "comparison.json"), "--junit", str(tmp_path)]) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write in: chmod 0555, or (root writes anywhere) a read-only tmpfs."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("running as root and cannot mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.mark.parametrize("cmd", ["score", "report"])
def test_unwritable_out_is_one_line(cmd, unwritable, preds, tmp_path, capsys):
    from evalkit.outputs import write_run
    from tests.fakes import make_run

    if cmd == "score":
        argv = ["score", str(preds), "--out", str(unwritable / "out")]
    else:
        write_run(make_run("a", n=4), tmp_path / "r")
        argv = ["report", str(tmp_path / "r"), "--out", str(unwritable / "report.html")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: --out") and "cannot write in" in err and err.count("\n") == 1


def test_json_prints_the_summary_record_on_stdout(tmp_path, preds, capsys):
    assert main(["score", str(preds), "--out", str(tmp_path / "o"), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # stdout holds only the JSON object
    record = json.loads((tmp_path / "o" / "results.json").read_text())
    assert summary["summary"] == record["summary"] and summary["verdict"]["level"] == record["verdict"]["level"]
    assert summary["outputs"]["results.json"] == str(tmp_path / "o" / "results.json")


def test_record_longer_than_the_limit_is_refused_without_reading_it_whole(tmp_path, capsys, monkeypatch):
    import evalkit.data as data

    monkeypatch.setattr(data, "MAX_RECORD_CHARS", 1000)
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"id": "1", "prompt": "x" * 5000, "prediction": "y"}) + "\n")
    assert main(["score", str(big), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "big.jsonl:1: this record is longer than 1,000 characters" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_docs_and_configs_cite_no_machine_paths():
    offenders = []
    for folder in ("docs", "configs", "evalkit", "README.md"):
        paths = [REPO / folder] if (REPO / folder).is_file() else (REPO / folder).rglob("*")
        for p in paths:
            if p.is_file() and p.suffix in (".md", ".toml", ".yaml", ".yml", ".py", ".j2", ".json", ".txt"):
                text = p.read_text(encoding="utf-8", errors="replace")
                for marker in ("/" "work/", "/" "root/", "/" "home/", "../shared/"):  # split: not itself a hit
                    if marker in text:
                        offenders.append(f"{p.relative_to(REPO)}: {marker}")
    assert offenders == []


def test_score_dtype_outside_the_hf_engine_is_one_line(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["eval", "base", "--engine", "vllm", "--score-dtype", "bfloat16", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: --score-dtype is an option of the hf engine") and err.count("\n") == 1
    assert not out.exists()
