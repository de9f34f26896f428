"""Random bytes and random JSON into every loader: never a traceback, always a result or exit 2.

Loaders: data files (training conversations, suites, predictions), train and sweep configs,
threshold files, gate files, and the record reader (results.json / comparison.json) through the
commands that read it (report, gate, compare). The SSE reader is fuzzed with the engines.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.outputs import write_comparison, write_run
from tests.fakes import make_run, standard_comparison

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                         max_size=4), max_leaves=12)
# what a file may hold: raw bytes, text, one JSON value, or JSON lines
contents = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(json_values, max_size=5).map(lambda vs: "\n".join(json.dumps(v) for v in vs).encode()),
)


def _file(data: bytes, suffix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix="evalkit-fuzz-"))
    p = d / f"input{suffix}"
    p.write_bytes(data)
    return p


def _loads_or_evalkit_error(fn, *args, **kw) -> None:
    try:
        fn(*args, **kw)
    except EvalkitError as e:
        assert "\n" not in str(e)


@FUZZ
@given(data=contents)
def test_data_loaders(data):
    from evalkit.data import load_conversations, load_predictions, load_suite

    p = _file(data, ".jsonl")
    for loader in (load_conversations, load_predictions, lambda q: load_suite(q, require_reference=True)):
        _loads_or_evalkit_error(loader, p)


@FUZZ
@given(data=contents, suffix=st.sampled_from([".yaml", ".toml", ".json"]))
def test_config_loaders(data, suffix):
    from evalkit.config import load_config
    from evalkit.sweep import load_sweep

    p = _file(data, suffix)
    _loads_or_evalkit_error(load_config, p)
    _loads_or_evalkit_error(load_sweep, p, out=p.parent / "out")


toml_values = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                        st.text(max_size=30), st.lists(st.text(max_size=30) | st.integers(), max_size=3))
toml_docs = st.dictionaries(st.sampled_from(["rules", "significance", "loss_gap_warn", "mia_auc_overfit", "x",
                                             "optional", "rule"]), toml_values, max_size=4).map(
    lambda d: "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.items()).encode())
rule_texts = st.lists(st.text(alphabet="abcdefgilmnoprstuv_<>=!.+-*/() 0123456789", max_size=40), max_size=3).map(
    lambda rs: f"rules = {json.dumps(rs)}".encode())


@FUZZ
@given(data=contents | toml_docs | rule_texts)
def test_threshold_and_gate_files(data):
    from evalkit.gate import load_gate
    from evalkit.thresholds import load_thresholds

    p = _file(data, ".toml")
    _loads_or_evalkit_error(load_thresholds, p)
    _loads_or_evalkit_error(load_gate, p)


@FUZZ
@given(data=contents)
def test_record_reader_through_the_commands(data, capsys):
    p = _file(data, ".json")
    for argv in (["report", str(p), "--out", str(p.parent / "r.html")], ["gate", str(p)]):
        assert main(argv) in (0, 1, 2)
    capsys.readouterr()


# ---------------------------------------------------------------- valid records, one field broken


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    write_run(make_run("a", n=4), d / "run")
    write_comparison(standard_comparison(n=4, n_boot=20), d / "cmp")
    return {"run": json.loads((d / "run" / "results.json").read_text()),
            "cmp": json.loads((d / "cmp" / "comparison.json").read_text())}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


@FUZZ
@given(which=st.sampled_from(["run", "cmp"]), seed=st.integers(0, 10**6),
       value=st.sampled_from([math.nan, math.inf, "0.5", None, [], {}, True, -1, "x"]) | json_values)
def test_a_broken_field_of_a_valid_record_is_exit_2_or_harmless(valid, which, seed, value, capsys):
    record = json.loads(json.dumps(valid[which]))
    paths = [p for p in _paths(record) if p]
    _set(record, random.Random(seed).choice(paths), value)
    p = _file(json.dumps(record).encode(), ".json")
    name = "results.json" if which == "run" else "comparison.json"
    p = p.rename(p.parent / name)
    assert main(["report", str(p.parent), "--out", str(p.parent / "r.html")]) in (0, 2)
    if which == "cmp":
        assert main(["gate", str(p)]) in (0, 1, 2)
    else:
        assert main(["compare", str(p.parent), str(p.parent), "--out", str(p.parent / "c")]) == 2  # same name
    capsys.readouterr()
