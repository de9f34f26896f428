"""Preflight: bad targets, records and inputs fail in seconds, before any model is loaded or output written."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from evalkit.cli import main
from evalkit.outputs import write_run
from tests.fakes import make_run

from .conftest import REPO, write_jsonl

FAST = ["--train-sample", "2", "--extraction-n", "0", "--batch-size", "4", "--no-progress"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def no_model(monkeypatch):
    """Any attempt to build an engine or load weights fails the test."""
    import evalkit.pipeline as pipeline

    monkeypatch.setattr(pipeline, "engine_for", lambda *a, **k: pytest.fail("an engine was built before preflight"))
    _forbid_model_load(monkeypatch)


def _forbid_model_load(monkeypatch):
    import evalkit.runtime.engine as engine  # imported first: it binds load_model at import

    monkeypatch.setattr(engine, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))


def test_compare_rejects_a_bad_second_target_before_evaluating_the_first(tmp_path, no_model, capsys):
    newer = tmp_path / "newer"
    write_run(make_run("newer", n=4), newer)
    data = json.loads((newer / "results.json").read_text())
    data["schema_version"] = 99
    (newer / "results.json").write_text(json.dumps(data))
    assert main(["compare", "base", str(newer), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "newer evalkit (schema_version 99" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_compare_of_a_record_holding_nan_is_one_line_and_writes_nothing(tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_run(make_run("good", n=6), good)
    write_run(make_run("bad", n=6, seed=1), bad)
    data = json.loads((bad / "results.json").read_text())
    data["summary"]["rougeL"] = math.nan  # json.dumps writes the non-standard token NaN
    (bad / "results.json").write_text(json.dumps(data))
    assert main(["compare", str(good), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error:") and "rougeL" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_compare_out_that_is_a_file_fails_before_any_model(tmp_path, no_model, capsys):
    (tmp_path / "taken").write_text("x")
    assert main(["compare", "base", "base2", "--out", str(tmp_path / "taken")]) == 2  # base2: not a target either
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text("{}")
    capsys.readouterr()
    assert main(["eval", "base", "--out", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "taken is a file" in err and err.count("\n") == 1


def test_a_prompt_longer_than_the_context_is_refused_before_the_model_loads(tiny_llama, mini_data, tmp_path,
                                                                            monkeypatch, capsys):
    _forbid_model_load(monkeypatch)
    suite = write_jsonl(tmp_path / "long.jsonl", [
        {"id": "ok", "prompt": "hello", "reference": "hi"},
        {"id": "long", "prompt": " ".join(["emissions"] * 600), "reference": "hi"}])
    assert main(["eval", "base", "--base", str(tiny_llama), "--suite", str(suite), "--train-data",
                 str(mini_data["train"]), "--val-data", str(mini_data["val"]), "--out", str(tmp_path / "o"),
                 "--max-new-tokens", "8", *FAST]) == 2
    err = capsys.readouterr().err
    assert "long.jsonl:2: the prompt is" in err and "context of 512 tokens" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_default_max_new_tokens_fits_the_longest_reference(tiny_llama, mini_data, tmp_path, capsys):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    refs = [json.loads(line)["reference"] for line in mini_data["suite_en"].read_text().splitlines()[:2]]
    longest = max(len(tok(r, add_special_tokens=False)["input_ids"]) for r in refs)
    expected = min(512, math.ceil(longest * 1.25) + 16)  # docs: the longest reference plus a quarter and 16
    assert main(["eval", "base", "--base", str(tiny_llama), "--suite", str(mini_data["suite_en"]),
                 "--train-data", str(mini_data["train"]), "--val-data", str(mini_data["val"]),
                 "--out", str(tmp_path / "o"), "--limit", "2", *FAST]) == 0
    assert f"max_new_tokens {min(expected, 512)}: the longest reference answer is {longest} tokens" \
        in capsys.readouterr().err
    record = json.loads((tmp_path / "o" / "results.json").read_text())
    assert record["settings"]["generation"]["max_new_tokens"] == expected
    assert len(record["samples"]) == 2  # --limit 2: the first two prompts of the suite
    assert [s["id"] for s in record["samples"]] == [json.loads(line)["id"] for line in
                                                    mini_data["suite_en"].read_text().splitlines()[:2]]


def test_progress_in_a_log_is_plain_lines(monkeypatch, capsys):
    from evalkit import console

    monkeypatch.setenv("EVALKIT_PROGRESS_EVERY", "0")
    console.configure(progress=True)
    with console.progress("[1/2] seedlike · generate", total=3) as bar:
        for _ in range(3):
            bar.update(1)
    err = capsys.readouterr().err
    assert "\r" not in err  # stderr is not a TTY under pytest: no redrawn bar
    lines = err.strip().splitlines()
    assert lines[0] == "evalkit: [1/2] seedlike · generate: 0/3 (0%)"
    assert lines[1] == "evalkit: [1/2] seedlike · generate: 1/3 (33%)"
    assert lines[-1].startswith("evalkit: [1/2] seedlike · generate: 3/3 (100%) done in")


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_warnings_are_silenced_unless_verbose(verbose):
    code = ("from evalkit.console import quiet_third_party; import warnings; "
            f"quiet_third_party(verbose={verbose}); "
            "warnings.warn('`x` is deprecated and will be removed in v6', FutureWarning)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert ("FutureWarning" in proc.stderr) is verbose


def test_most_answers_ending_at_once_name_the_template_as_the_likely_cause():
    from evalkit.scoring import TextItem, score_texts
    from evalkit.verdict import judge

    items = [TextItem(str(i), "s", "q", "" if n == 0 else "ok", "ref", n, False) for i, n in
             enumerate([0, 1, 0, 1, 6, 0])]
    summary = score_texts(items, None, n_boot=20).summary
    assert summary["immediate_stop_rate"] == pytest.approx(5 / 6)  # n_tokens <= 1 for 5 of 6
    reasons = {r.code: r for r in judge(summary).reasons}
    assert "template_mismatch" in reasons and "chat template likely does not fit" in reasons["template_mismatch"].message
    healthy = {"empty_rate": 0.02, "immediate_stop_rate": 0.04}
    assert "template_mismatch" not in {r.code for r in judge(healthy).reasons}
