"""The result cache: generations and loss scores, keyed by everything that determines them.

One SQLite file (``$EVALKIT_CACHE/runs/cache.sqlite``) in WAL mode, so several evalkit processes can read
and write it at once. Each :meth:`Cache.put_many` is one transaction: a batch is stored whole or not at all,
so a run killed midway resumes by recomputing only the missing items.

A key (:func:`cache_key`) is the sha256 of the kind ("gen" / "score"), the base model's content hash, the
adapter hash (or "base"), the settings (max_new_tokens, sampling, seed, max_length, chat template hash,
device/dtype, ...), the item's messages and the evalkit version. The model is ALWAYS part of the key:
lm-evaluation-harness' cache keyed only the request and served one model's answers for another
(its issues #4063, #2715).

Values are JSON; float arrays use :func:`encode_array` (base64 of little-endian float32).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from . import __version__
from .errors import CacheError

__all__ = ["FORMAT_VERSION", "Cache", "cache_key", "default_cache_dir", "encode_array", "decode_array"]

FORMAT_VERSION = 1  # bump when the key recipe or the value layout changes
_FILE = "cache.sqlite"
_CHUNK = 500  # keys per SELECT (SQLite's default variable limit is 999 on old builds)


def default_cache_dir() -> Path:
    from .runtime.models import cache_root

    return cache_root() / "runs"


def cache_key(kind: str, base_hash: str, adapter_hash: str | None, settings: Mapping[str, Any],
              messages: Any) -> str:
    """sha256 over (kind, base, adapter or "base", settings, messages, evalkit version)."""
    import hashlib

    payload = json.dumps([kind, base_hash, adapter_hash or "base", dict(settings), messages, __version__],
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def encode_array(a: np.ndarray) -> str:
    return base64.b64encode(np.asarray(a, dtype="<f4").tobytes()).decode("ascii")


def decode_array(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float32)


class Cache:
    """Key -> JSON value store in one SQLite file under ``root``."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.path = self.root / _FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                                   " created REAL NOT NULL DEFAULT (julianday('now')))")
                row = self._conn.execute("SELECT value FROM meta WHERE name='format_version'").fetchone()
                if row is None:
                    self._conn.execute("INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except (sqlite3.DatabaseError, OSError) as e:
            raise CacheError(f"{self.path}: cannot open the evaluation cache ({e}); delete it or pass another "
                             "cache folder (--cache-dir)") from None
        if row is not None and row[0] != str(FORMAT_VERSION):
            self.close()
            raise CacheError(f"{self.path}: cache format {row[0]}, this evalkit uses {FORMAT_VERSION}; delete it or "
                             "pass another cache folder (--cache-dir)")

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of those keys that are present."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, Any] = {}
        try:
            for a in range(0, len(keys), _CHUNK):
                part = keys[a:a + _CHUNK]
                q = f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(part))})"
                for k, v in self._conn.execute(q, part):
                    out[k] = json.loads(v)
        except sqlite3.DatabaseError as e:
            raise CacheError(f"{self.path}: unreadable evaluation cache ({e}); delete it or pass another cache "
                             "folder (--cache-dir)") from None
        return out

    def put_many(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Store key -> value pairs in one transaction (all or nothing)."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs:
            return
        rows = [(k, json.dumps(v, ensure_ascii=False, separators=(",", ":"))) for k, v in pairs]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as e:
            raise CacheError(f"{self.path}: cannot write the evaluation cache ({e}); check the disk, or pass "
                             "another cache folder (--cache-dir)") from None

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # pragma: no cover
            pass

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"
