"""A full disk (RLIMIT_FSIZE) and a corrupt cache: one line or one warning, never a half-written output."""

from __future__ import annotations

import resource
import shutil

from evalkit.cli import main

from tests.conftest import write_jsonl

from .conftest import FAST, cli_env, stable, start_cli

def _small_disk(limit: int = 16 * 1024):
    """A preexec_fn: no file may grow past ``limit`` bytes (report.html, with its CSS/JS inlined, is larger)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes fail with EFBIG

    return apply


def _preds(tmp_path):
    return write_jsonl(tmp_path / "p.jsonl", [{"id": str(i), "prompt": f"question {i}", "prediction": f"answer {i}",
                                               "reference": f"reference {i}"} for i in range(5)])


def test_full_disk_writing_outputs_is_one_line_and_leaves_nothing(tmp_path):
    preds, out = _preds(tmp_path), tmp_path / "out"
    proc = start_cli(["score", str(preds), "--out", str(out)], cli_env(tmp_path / "ek"), preexec=_small_disk())
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert err.startswith("evalkit: error: --out") and "File too large" in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".evalkit-*"))  # no output, no staging folder


def test_full_disk_keeps_the_previous_outputs_whole(tmp_path):
    preds, out = _preds(tmp_path), tmp_path / "out"
    assert main(["score", str(preds), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = start_cli(["score", str(preds), "--out", str(out), "--seed", "1"], cli_env(tmp_path / "ek"),
                     preexec=_small_disk())
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging folder, no torn file


def test_full_disk_during_eval_warns_about_the_cache_then_refuses_the_outputs(adapter, data_args, tmp_path):
    out = tmp_path / "out"
    argv = ["eval", str(adapter), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *data_args, *FAST]
    # 32 KB: the cache opens, its write-ahead log soon hits the limit, and results.json + report.html do too
    proc = start_cli(argv, cli_env(tmp_path / "ek"), preexec=_small_disk(32 * 1024))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("evalkit: error: --out") and "File too large" in lines[-1]
    assert not out.exists()
    assert "Traceback" not in err
    assert any("cannot write the evaluation cache" in ln and "continues without storing" in ln for ln in lines)


def test_corrupt_cache_is_moved_aside_and_the_run_completes(adapter, data_args, tmp_path, capsys):
    cache = tmp_path / "cache"
    argv = ["eval", str(adapter), "--cache-dir", str(cache), *data_args, *FAST]
    assert main([*argv, "--out", str(tmp_path / "first")]) == 0
    capsys.readouterr()
    garbage = b"\x00not a database\xff" * 4096
    (cache / "cache.sqlite").write_bytes(garbage)
    for extra in ("cache.sqlite-wal", "cache.sqlite-shm"):
        (cache / extra).unlink(missing_ok=True)
    assert main([*argv, "--out", str(tmp_path / "second")]) == 0
    err = capsys.readouterr().err
    warning = [ln for ln in err.splitlines() if "was corrupt" in ln]
    assert len(warning) == 1 and "moved it to cache.sqlite.corrupt-" in warning[0]
    aside = list(cache.glob("cache.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert stable(tmp_path / "second" / "results.json") == stable(tmp_path / "first" / "results.json")
    shutil.rmtree(cache)
