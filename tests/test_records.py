"""evalkit.records: strict reading (types, finiteness, required fields), NaN-free writing, old records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import RecordError
from evalkit.records import (
    SCHEMA_VERSION,
    AdapterRecord,
    Reason,
    RunRecord,
    Target,
    Verdict,
    load_run,
    read_adapter_record,
    read_training_log,
    save_record,
    schema_markdown,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[1]


def _record(**summary) -> dict:
    run = RunRecord(schema_version=SCHEMA_VERSION, kind="eval", target=Target(name="a", kind="adapter"),
                    summary={"rougeL": 0.3, **summary}, verdict=Verdict("ok"), intervals={"rougeL": (0.2, 0.4)})
    return to_dict(run)


def _write(tmp_path: Path, data: dict, raw: str | None = None) -> Path:
    p = tmp_path / "results.json"
    p.write_text(raw if raw is not None else json.dumps(data), encoding="utf-8")
    return p


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["summary"].update(rougeL="high"),
     "field `summary.rougeL` is the text 'high', expected a number"),
    (lambda d: d["summary"].update(rougeL=True), "field `summary.rougeL` is the boolean true, expected a number"),
    (lambda d: d["verdict"].update(level="purple"),
     "field `verdict.level` is the text 'purple', expected one of 'ok', 'warn', 'overfit'"),
    (lambda d: d.pop("summary"), "field `summary` is missing"),
    (lambda d: d["target"].pop("name"), "field `target.name` is missing"),
    (lambda d: d["intervals"].update(rougeL=[0.1]), "field `intervals.rougeL` has 1 items, expected 2"),
    (lambda d: d.update(kind="train"), "field `kind` is the text 'train', expected one of 'eval', 'score'"),
    (lambda d: d["verdict"].update(reasons=[{"code": "x", "level": "warn", "message": "m", "status": "maybe"}]),
     "field `verdict.reasons[0].status` is the text 'maybe'"),
    (lambda d: d["target"].update(training_log=[{"step": "ten"}]),
     "field `target.training_log[0].step` is the text 'ten', expected a whole number"),
    (lambda d: d["target"].update(training={"base": {"content_hash": 3}}),
     "field `target.training.base.content_hash` is 3, expected text"),
])
def test_corrupt_fields_are_one_line_record_errors(tmp_path, mutate, message):
    data = _record()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(RecordError) as e:
        load_run(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
    assert text.endswith("the record is corrupt, re-create it with `evalkit eval …` (or `evalkit score …`)")


@pytest.mark.parametrize("literal, shown", [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")])
def test_nonfinite_numbers_are_refused_with_their_field(tmp_path, literal, shown):
    raw = json.dumps(_record(mia_auc=0.5)).replace('"mia_auc": 0.5', f'"mia_auc": {literal}')
    with pytest.raises(RecordError, match=rf"field `summary\.mia_auc` is {shown}; the record is corrupt"):
        load_run(_write(tmp_path, {}, raw))
    raw = json.dumps(_record()).replace('"provenance": {}', f'"provenance": {{"x": [1, {literal}]}}')
    with pytest.raises(RecordError, match=r"field `provenance\.x\[1\]`"):
        load_run(_write(tmp_path, {}, raw))


def test_score_record_names_its_own_command(tmp_path):
    data = _record()
    data["kind"] = "score"
    data["summary"]["rougeL"] = "x"
    with pytest.raises(RecordError, match=r"re-create it with `evalkit score …`$"):
        load_run(_write(tmp_path, data))


def test_corrupt_record_is_exit_2_in_gate_and_report(tmp_path, capsys):
    raw = json.dumps(_record()).replace('"rougeL": 0.3', '"rougeL": NaN')
    path = _write(tmp_path, {}, raw)
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field `summary.rougeL` is NaN" in err
    assert not (tmp_path / "r").exists()


def test_writer_refuses_nan_and_names_the_field(tmp_path):
    run = RunRecord(schema_version=SCHEMA_VERSION, kind="score", target=Target(name="a", kind="predictions"),
                    summary={"rougeL": float("nan")}, verdict=Verdict("ok"))
    with pytest.raises(ValueError, match=r"field `summary\.rougeL` is NaN"):
        save_record(run, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_schema_1_record_still_loads(tmp_path):
    data = _record()
    data["schema_version"] = 1
    for k in ("n", "notices", "audit", "lm_eval", "engine"):
        data.pop(k)
    data["verdict"] = {"level": "warn", "reasons": [{"code": "loss_gap", "level": "warn", "message": "m",
                                                     "metric": "loss_gap", "value": 0.3, "threshold": 0.25}]}
    run = load_run(_write(tmp_path, data))
    assert run.schema_version == 1 and run.verdict.reasons[0] == Reason("loss_gap", "warn", "m", "loss_gap", 0.3,
                                                                         0.25)
    assert run.n == {} and run.intervals == {"rougeL": (0.2, 0.4)}


def test_adapter_record_reads_both_old_and_new_base_keys(tmp_path):
    assert read_adapter_record(tmp_path) is None
    (tmp_path / "evalkit.json").write_text(json.dumps({"base_model": {"content_hash": "abc", "identity": "X"},
                                                       "data": {"train": {"sha256": "s", "used_ids": ["a"]}}}))
    rec = read_adapter_record(tmp_path)
    assert (rec.base.content_hash, rec.base.identity) == ("abc", "X") and rec.data["train"].used_ids == ("a",)
    (tmp_path / "evalkit.json").write_text(json.dumps({"base": {"content_hash": "def"}, "base_model": {}}))
    assert read_adapter_record(tmp_path).base.content_hash == "def"
    (tmp_path / "evalkit.json").write_text(json.dumps({"base": {"content_hash": "d"}, "seed": "zero"}))
    with pytest.raises(RecordError, match=r"field `seed` is the text 'zero'.*re-create it with `evalkit train …`"):
        read_adapter_record(tmp_path)
    (tmp_path / "evalkit.json").write_text("[1]")
    with pytest.raises(RecordError, match="not an evalkit adapter record"):
        read_adapter_record(tmp_path)
    assert AdapterRecord().base.content_hash is None


def test_training_log_skips_only_a_torn_last_line(tmp_path):
    log = tmp_path / "training_log.jsonl"
    log.write_text('{"step": 10, "train_loss": 1.5}\n{"step": 20, "val_loss": 1.2}\n{"step": 3', encoding="utf-8")
    assert [(r.step, r.train_loss, r.val_loss) for r in read_training_log(tmp_path)] == [(10, 1.5, None),
                                                                                          (20, None, 1.2)]
    log.write_text('{"step": 10\n{"step": 20}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"training_log\.jsonl:1: not valid JSON"):
        read_training_log(tmp_path)
    log.write_text('{"step": 10, "val_loss": NaN}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"training_log\.jsonl:1: field `val_loss` is NaN"):
        read_training_log(tmp_path)


def test_docs_results_md_holds_the_generated_schema():
    """docs/results.md embeds `python -m evalkit.records --schema`; regenerate it when a type changes."""
    doc = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- schema:begin -->\n(.*)<!-- schema:end -->", doc, re.S)
    assert m, "docs/results.md lacks the generated schema section"
    assert m.group(1).strip() == schema_markdown().strip()


def test_corrupt_comparison_is_exit_2_in_gate_not_a_quality_failure(tmp_path, capsys):
    from evalkit.comparison import compare_runs
    from tests.fakes import make_run

    save_record(compare_runs([make_run("base", target_kind="base"), make_run("a", seed=1)], n_boot=50),
                tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    data["runs"]["a"]["summary"]["rougeL"] = "high"
    (tmp_path / "c.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["gate", str(tmp_path / "c.json")]) == 2  # was 1 ("measure it") before records were strict
    err = capsys.readouterr().err.strip()
    assert "field `runs.a.summary.rougeL` is the text 'high', expected a number" in err
    assert err.endswith("re-create it with `evalkit compare …`") and len(err.splitlines()) == 1
    data["runs"]["a"]["summary"]["rougeL"] = 0.3
    data["baseline"] = "nobody"
    (tmp_path / "c.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["gate", str(tmp_path / "c.json")]) == 2
    assert "baseline 'nobody' is not one of its targets" in capsys.readouterr().err
