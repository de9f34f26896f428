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


def test_corrupt_file_is_moved_aside_and_the_run_continues(tmp_path, capsys):
    (tmp_path / "cache.sqlite").write_bytes(b"this is not sqlite" * 100)
    cache = C.Cache(tmp_path)
    cache.put_many({"a": 1})
    assert cache.get_many(["a"]) == {"a": 1}
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not sqlite" * 100  # kept for a post-mortem
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was corrupt" in err and aside[0].name in err


def test_corruption_found_mid_run_is_moved_aside(tmp_path, capsys):
    cache = C.Cache(tmp_path)
    cache.put_many({f"k{i}": "x" * 500 for i in range(200)})
    cache.close()
    raw = bytearray((tmp_path / "cache.sqlite").read_bytes())
    for off in range(4096, len(raw), 4096):  # scribble over every page but the header
        raw[off:off + 64] = b"\xff" * 64
    (tmp_path / "cache.sqlite").write_bytes(bytes(raw))
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"cache.sqlite{suffix}").unlink(missing_ok=True)
    cache = C.Cache(tmp_path)
    assert cache.get_many([f"k{i}" for i in range(200)]) == {}  # unreadable: recomputed, not fatal
    cache.put_many({"new": 1})
    assert cache.get_many(["new"]) == {"new": 1}
    assert any(p.name.startswith("cache.sqlite.corrupt-") for p in tmp_path.iterdir())
    assert "was corrupt" in capsys.readouterr().err


def test_claims_share_work_between_two_handles(tmp_path):
    a, b = C.Cache(tmp_path), C.Cache(tmp_path)
    keys = [f"k{i}" for i in range(6)]
    assert a.claim(keys, limit=4) == keys[:4]
    assert b.claim(keys, limit=4) == keys[4:]  # a's live claims are skipped
    a.put_many({k: k.upper() for k in keys[:4]})  # storing a value ends its claim
    assert b.claim(keys, limit=10) == keys[4:]  # done keys are never claimed again
    assert a._conn.execute("SELECT COUNT(*) FROM claims WHERE owner = ?", (a.owner,)).fetchone()[0] == 0


def test_a_dead_owners_claims_are_taken_over(tmp_path):
    a, b = C.Cache(tmp_path), C.Cache(tmp_path)
    a.claim(["x"], limit=1)
    # a process that was killed: same host, a pid that no longer exists
    a._conn.execute("UPDATE claims SET pid = ?", (2 ** 22 + 12345,))
    assert b.claim(["x"], limit=1) == ["x"]
    b._conn.execute("UPDATE claims SET host = 'elsewhere', owner = 'other', heartbeat = ?", (0.0,))
    assert a.claim(["x"], limit=1) == ["x"]  # another host's claim without a heartbeat for STALE_S


def test_compute_shared_waits_for_the_other_runs_result(tmp_path):
    import threading
    import time

    a, b = C.Cache(tmp_path), C.Cache(tmp_path)
    keys = ["p", "q"]
    assert a.claim(keys, limit=2) == keys

    def finish_later():
        time.sleep(0.3)
        a.put_many({"p": 1, "q": 2})

    t = threading.Thread(target=finish_later)
    t.start()
    computed = []
    shared = b.compute_shared(keys, lambda pos: computed.extend(pos), chunk=1, poll=0.05)
    t.join()
    assert computed == [] and shared == {0: 1, 1: 2}
    assert b.stats["shared"] == 2 and b.stats["computed"] == 0


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path, capsys, monkeypatch):
    cache = C.Cache(tmp_path)

    class Full:
        def execute(self, sql, *a):
            if sql.startswith("BEGIN"):
                raise sqlite3.OperationalError("database or disk is full")
            return cache._real.execute(sql, *a)

    cache._real, cache._conn = cache._conn, Full()
    cache.put_many({"a": 1})
    cache.put_many({"b": 2})
    assert capsys.readouterr().err.count("cannot write the evaluation cache") == 1


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
