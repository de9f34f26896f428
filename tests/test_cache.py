"""The SQLite result cache: round trips, all-or-nothing batches, format version, keys."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from evalkit import cache as C
from evalkit.errors import CacheError


def test_round_trip_and_misses(tmp_path):
    cache = C.Cache(tmp_path)
    assert cache.get_many(["a"]) == {}
    cache.put_many({"a": {"text": "héllo\n", "n": 1}, "b": [1, 2]})
    assert cache.get_many(["a", "b", "c"]) == {"a": {"text": "héllo\n", "n": 1}, "b": [1, 2]}
    cache.put_many([("a", 3)])  # replace
    assert cache.get_many(["a"]) == {"a": 3} and len(cache) == 2
    many = {f"k{i}": i for i in range(1200)}  # more keys than one SELECT takes
    cache.put_many(many)
    assert cache.get_many(many) == many
    cache.close()
    assert C.Cache(tmp_path).get_many(["b"]) == {"b": [1, 2]}  # persisted


def test_a_failing_batch_writes_nothing(tmp_path):
    cache = C.Cache(tmp_path)
    with pytest.raises(Exception):
        cache.put_many([("ok", 1), (["not", "a", "key"], 2)])
    assert cache.get_many(["ok"]) == {}


def test_two_handles_see_each_other(tmp_path):
    a, b = C.Cache(tmp_path), C.Cache(tmp_path)
    a.put_many({"x": 1})
    b.put_many({"y": 2})
    assert a.get_many(["x", "y"]) == b.get_many(["x", "y"]) == {"x": 1, "y": 2}
    assert a.path == tmp_path / "cache.sqlite"
    assert a._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_other_format_version_is_refused(tmp_path):
    C.Cache(tmp_path).close()
    with sqlite3.connect(tmp_path / "cache.sqlite") as conn:
        conn.execute("UPDATE meta SET value='999' WHERE name='format_version'")
    with pytest.raises(CacheError, match=r"cache format 999.*delete it or pass another cache folder") as e:
        C.Cache(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_corrupt_file_is_a_cache_error(tmp_path):
    (tmp_path / "cache.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="cannot open the evaluation cache"):
        C.Cache(tmp_path)


def test_default_location_follows_evalkit_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "ek"))
    assert C.Cache().root == tmp_path / "ek" / "runs"


def test_keys_include_the_model_and_everything_else():
    msgs = [{"role": "user", "content": "hi"}]
    base = C.cache_key("gen", "B1", None, {"max_new_tokens": 8}, msgs)
    assert base == C.cache_key("gen", "B1", None, {"max_new_tokens": 8}, msgs)
    assert base == C.cache_key("gen", "B1", "base", {"max_new_tokens": 8}, msgs)
    others = [
        C.cache_key("score", "B1", None, {"max_new_tokens": 8}, msgs),
        C.cache_key("gen", "B2", None, {"max_new_tokens": 8}, msgs),  # another base model
        C.cache_key("gen", "B1", "A1", {"max_new_tokens": 8}, msgs),  # an adapter
        C.cache_key("gen", "B1", "A2", {"max_new_tokens": 8}, msgs),  # another adapter
        C.cache_key("gen", "B1", None, {"max_new_tokens": 9}, msgs),
        C.cache_key("gen", "B1", None, {"max_new_tokens": 8}, [{"role": "user", "content": "hi!"}]),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_key_depends_on_the_evalkit_version(monkeypatch):
    k = C.cache_key("gen", "B", None, {}, [])
    monkeypatch.setattr(C, "__version__", "999")
    assert C.cache_key("gen", "B", None, {}, []) != k


def test_array_encoding_round_trips_float32():
    a = np.array([-1.5, 0.0, 3.25e-8, np.inf], dtype=np.float32)
    out = C.decode_array(C.encode_array(a))
    assert out.dtype == np.float32 and np.array_equal(out, a)
    assert C.decode_array(C.encode_array(np.zeros(0))).shape == (0,)
