"""evalkit.outputs: output locations checked before the work, files written all or nothing, umask kept."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from evalkit.errors import OutputError, RecordError
from evalkit.outputs import (check_out_dir, check_out_file, comparison_files, publish_dir, record_json, staging_dir,
                             write_comparison, write_file, write_files, write_run)
from evalkit.records import load_comparison, load_run, to_dict
from tests.fakes import make_run, standard_comparison


@pytest.fixture(scope="module")
def comp():
    return standard_comparison(n=8, n_boot=50)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------- preflight checks


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(OutputError, match=r"--out .*taken is a file; give a folder"):
        check_out_dir(f)


def test_out_under_a_file_is_refused_and_nothing_is_created(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(OutputError, match=r"taken is a file, so no folder can be created under it"):
        check_out_dir(f / "sub" / "out")
    assert _listing(tmp_path) == ["taken"]


def test_check_creates_the_parent_and_leaves_no_probe(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    assert check_out_dir(out) == out
    assert (tmp_path / "a" / "b").is_dir() and not out.exists()  # the folder itself appears whole, later
    assert _listing(tmp_path) == ["a", "a/b"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere; the CLI test covers it as another user")
def test_unwritable_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(OutputError, match="cannot write in"):
        check_out_dir(ro / "out")


def test_check_out_file_refuses_a_folder(tmp_path):
    with pytest.raises(OutputError, match="is a folder; give a file path"):
        check_out_file(tmp_path, "--junit")
    assert check_out_file(tmp_path / "new" / "j.xml", "--junit") == tmp_path / "new" / "j.xml"
    assert (tmp_path / "new").is_dir()


# ---------------------------------------------------------------- writing


def test_comparison_round_trips_with_all_four_files(comp, tmp_path):
    paths = write_comparison(comp, tmp_path / "out")
    assert set(paths) == {"comparison.json", "summary.md", "junit.xml", "report.html"}
    assert to_dict(load_comparison(paths["comparison.json"])) == to_dict(comp)
    assert paths["summary.md"].read_text(encoding="utf-8").startswith("# evalkit comparison")
    assert paths["junit.xml"].read_text(encoding="utf-8").startswith("<?xml")
    assert "<html" in paths["report.html"].read_text(encoding="utf-8")
    assert _listing(tmp_path) == ["out", "out/comparison.json", "out/junit.xml", "out/report.html", "out/summary.md"]


def test_run_outputs_round_trip(tmp_path):
    run = make_run("gentle", n=6, seed=1)
    paths = write_run(run, tmp_path / "o")
    assert to_dict(load_run(paths["results.json"])) == to_dict(run)
    assert sorted(paths) == ["report.html", "results.json"]


def test_a_nan_is_refused_before_any_file_is_written(tmp_path):
    run = make_run("gentle", n=6, seed=1)
    bad = dataclasses.replace(run, summary={**run.summary, "rougeL": float("nan")})
    with pytest.raises(RecordError, match=r"results.json: field `summary.rougeL` is NaN"):
        write_run(bad, tmp_path / "o")
    assert _listing(tmp_path) == []
    with pytest.raises(RecordError, match=r"field `runs\.\w+\.summary\.x` is"):
        record_json({"runs": {"a": {"summary": {"x": float("inf")}}}})


def test_a_failed_write_leaves_an_existing_folder_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "o"
    write_files(out, {"results.json": "{\"old\": 1}\n", "report.html": "old"})
    real = os.replace
    calls = []

    def full_disk(src, dst):
        calls.append(dst)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OutputError, match=r"--out .*o: cannot write its files \(No space left on device\); "
                                          "nothing was written there"):
        write_files(out, {"results.json": "{\"new\": 1}\n", "report.html": "new"})
    monkeypatch.setattr(os, "replace", real)
    assert calls  # the failure happened while publishing
    assert (out / "results.json").read_text() == "{\"old\": 1}\n" and (out / "report.html").read_text() == "old"
    assert _listing(tmp_path) == ["o", "o/report.html", "o/results.json"]  # no staging folder left behind


def test_files_keep_the_users_umask(tmp_path, comp):
    old = os.umask(0o002)
    try:
        paths = write_comparison(comp, tmp_path / "o")
        single = write_file(tmp_path / "x" / "junit.xml", "<x/>", "--junit")
    finally:
        os.umask(old)
    for p in [*paths.values(), single]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o664, p
    assert stat.S_IMODE((tmp_path / "o").stat().st_mode) == 0o775


def test_published_folder_keeps_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        tmp = staging_dir(tmp_path / "adapter")
        (tmp / "adapter_model.safetensors").write_bytes(b"x")
        os.chmod(tmp / "adapter_model.safetensors", 0o600)  # as some writers (mkstemp) create them
        publish_dir(tmp, tmp_path / "adapter")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "adapter").stat().st_mode) == 0o755  # mkdtemp made it 0700
    assert stat.S_IMODE((tmp_path / "adapter" / "adapter_model.safetensors").stat().st_mode) == 0o644


def test_comparison_files_are_standard_json(comp):
    text = comparison_files(comp)["comparison.json"]
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_a_folder_created_meanwhile_by_a_concurrent_run_is_written_file_by_file(tmp_path, monkeypatch):
    import errno

    out = tmp_path / "o"
    real = os.rename

    def other_run_first(src, dst):
        if Path(dst) == out:
            out.mkdir()
            (out / "results.json").write_text("{\"other\": 1}\n")
            raise OSError(errno.ENOTEMPTY, "Directory not empty")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", other_run_first)
    write_files(out, {"results.json": "{\"mine\": 1}\n", "report.html": "mine"})
    assert (out / "results.json").read_text() == "{\"mine\": 1}\n" and (out / "report.html").read_text() == "mine"
    assert _listing(tmp_path) == ["o", "o/report.html", "o/results.json"]
