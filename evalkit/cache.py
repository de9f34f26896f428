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

A corrupt cache file is moved aside (``cache.sqlite.corrupt-<time>``, kept for a post-mortem) with a
one-line warning, and the run continues on a fresh cache. A cache that cannot be written (full disk)
is a one-line warning too: the run continues without storing results.

Concurrent runs share work (:meth:`Cache.compute_shared`): before computing a batch a run *claims* its
keys (table ``claims``: owner, pid, host, heartbeat); another run needing the same keys waits for
the results instead of computing them again, and takes a claim over when its owner is gone (a dead
pid on this host, or no heartbeat for :data:`STALE_S` seconds, e.g. a killed run on another host).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from . import __version__
from .errors import CacheError

__all__ = ["FORMAT_VERSION", "Cache", "cache_key", "default_cache_dir", "encode_array", "decode_array", "HEARTBEAT_S", "STALE_S"]

FORMAT_VERSION = 1  # bump when the key recipe or the value layout changes
_FILE = "cache.sqlite"
_CHUNK = 500  # keys per SELECT (SQLite's default variable limit is 999 on old builds)
HEARTBEAT_S = 5.0  # a claim owner refreshes its claims this often
STALE_S = 60.0  # a claim without a heartbeat for this long is taken over
POLL_S = 0.2  # a run waiting for another run's batch checks this often
_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


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


def _warn(message: str) -> None:
    print(f"evalkit: warning: {message}", file=sys.stderr)


def _is_corrupt(e: sqlite3.DatabaseError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPT_CODES
    text = str(e).lower()  # pragma: no cover (Python < 3.11)
    return "not a database" in text or "malformed" in text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cache:
    """Key -> JSON value store in one SQLite file under ``root``, shared safely by concurrent runs."""

    def __init__(self, root: Path | None = None, *, warn: Callable[[str], None] = _warn):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.path = self.root / _FILE
        self._warn = warn
        self._writable = True
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._host, self._pid = socket.gethostname(), os.getpid()
        self._heartbeat: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self.stats = {"reused": 0, "computed": 0, "shared": 0}  # items this handle got each way
        try:
            self._open()
        except sqlite3.DatabaseError as e:
            if not _is_corrupt(e):
                raise self._error("cannot open", e) from None
            self._move_aside(e)
            try:
                self._open()
            except (sqlite3.DatabaseError, OSError) as e2:
                raise self._error("cannot open", e2) from None
        except OSError as e:
            raise self._error("cannot open", e) from None

    def _error(self, what: str, e: BaseException) -> CacheError:
        return CacheError(f"{self.path}: {what} the evaluation cache ({e}); pass another cache folder "
                          "(--cache-dir) or --no-cache")

    def _open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                                   " created REAL NOT NULL DEFAULT (julianday('now')))")
                self._conn.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                                   "host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL)")
                row = self._conn.execute("SELECT value FROM meta WHERE name='format_version'").fetchone()
                if row is None:
                    self._conn.execute("INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except BaseException:
            self._conn.close()
            raise
        self._inode = os.stat(self.path).st_ino
        if row is not None and row[0] != str(FORMAT_VERSION):
            self.close()
            raise CacheError(f"{self.path}: cache format {row[0]}, this evalkit uses {FORMAT_VERSION}; delete it or "
                             "pass another cache folder (--cache-dir)")

    def _move_aside(self, e: BaseException) -> None:
        """Rename the corrupt file (and its WAL files) to cache.sqlite.corrupt-<time>; warn on one line."""
        try:
            self._conn.close()
        except Exception:  # pragma: no cover
            pass
        aside = self.path.with_name(f"{_FILE}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        try:
            if getattr(self, "_inode", None) in (None, os.stat(self.path).st_ino):  # not a fresh one of another run
                os.rename(self.path, aside)
        except FileNotFoundError:  # another run moved it first
            pass
        except OSError as e2:
            raise self._error("cannot move aside the corrupt", e2) from None
        for suffix in ("-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except OSError:
                pass
        self._warn(f"{self.path} was corrupt ({e}); moved it to {aside.name} and started a fresh cache "
                   "(earlier results are recomputed)")

    def _recover(self, e: sqlite3.DatabaseError, what: str) -> None:
        if not _is_corrupt(e):
            raise self._error(what, e) from None
        self._move_aside(e)
        try:
            self._open()
        except (sqlite3.DatabaseError, OSError) as e2:
            raise self._error("cannot open", e2) from None

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (a full disk at COMMIT): the original error counts
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _write_failed(self, e: sqlite3.DatabaseError) -> None:
        if _is_corrupt(e):
            self._recover(e, "cannot write")
        elif isinstance(e, sqlite3.OperationalError):
            # a full disk or a read-only file: keep computing, stop storing (one warning)
            self._writable = False
            self._warn(f"{self.path}: cannot write the evaluation cache ({e}); this run continues without "
                       "storing its results")
        else:  # a value or key of the wrong type: a bug to see
            raise e

    # ------------------------------------------------------------ values

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of those keys that are present."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, Any] = {}
        try:
            with self._lock:
                for a in range(0, len(keys), _CHUNK):
                    part = keys[a:a + _CHUNK]
                    q = f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(part))})"
                    for k, v in self._conn.execute(q, part):
                        out[k] = json.loads(v)
        except sqlite3.DatabaseError as e:
            self._recover(e, "cannot read")
            return {}
        return out

    def put_many(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Store key -> value pairs in one transaction (all or nothing); this run's claims on them end."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs or not self._writable:
            return
        rows = [(k, json.dumps(v, ensure_ascii=False, separators=(",", ":"))) for k, v in pairs]
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", rows)
                    self._conn.executemany("DELETE FROM claims WHERE key = ? AND owner = ?",
                                           [(k, self.owner) for k, _ in rows])
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
        except sqlite3.DatabaseError as e:
            self._write_failed(e)

    # ------------------------------------------------------------ shared work

    def _live(self, host: str, pid: int, heartbeat: float, now: float) -> bool:
        if now - heartbeat > STALE_S:
            return False
        return host != self._host or _pid_alive(pid)

    def claim(self, keys: Sequence[str], limit: int) -> list[str]:
        """Claim up to ``limit`` of ``keys`` that have no value and no live claim of another run."""
        if not self._writable:
            return list(keys[:limit])
        mine: list[str] = []
        now = time.time()
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for a in range(0, len(keys), _CHUNK):
                        part = list(keys[a:a + _CHUNK])
                        marks = ",".join("?" * len(part))
                        done = {k for (k,) in self._conn.execute(f"SELECT key FROM entries WHERE key IN ({marks})",
                                                                 part)}
                        held = {k: (o, h, p, b) for k, o, h, p, b in self._conn.execute(
                            f"SELECT key, owner, host, pid, heartbeat FROM claims WHERE key IN ({marks})", part)}
                        for k in part:
                            if k in done:
                                continue
                            c = held.get(k)
                            if c is not None and c[0] != self.owner and self._live(c[1], c[2], c[3], now):
                                continue
                            mine.append(k)
                            if len(mine) >= limit:
                                break
                        if len(mine) >= limit:
                            break
                    self._conn.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                                           [(k, self.owner, self._host, self._pid, now) for k in mine])
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
        except sqlite3.DatabaseError as e:
            self._write_failed(e)
            return list(keys[:limit])
        self._start_heartbeat()
        return mine

    def release(self) -> None:
        """Drop every claim of this handle (after an error: another run may take the work)."""
        if not self._writable:
            return
        try:
            with self._lock:
                self._conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
        except sqlite3.DatabaseError:
            pass

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None:
            return

        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    with self._lock:
                        self._conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))
                except sqlite3.Error:
                    pass

        self._heartbeat = threading.Thread(target=beat, name="evalkit-cache-heartbeat", daemon=True)
        self._heartbeat.start()

    def compute_shared(self, keys: Sequence[str], compute: Callable[[list[int]], None], *, chunk: int,
                       poll: float = POLL_S) -> dict[int, Any]:
        """Compute the values of ``keys`` (none cached yet) chunk by chunk, sharing the work with other runs.

        ``compute(positions)`` computes the keys at those positions and stores them (``put_many``).
        Keys another live run has claimed are waited for; returns ``{position: value}`` of those that
        another run computed. Raises whatever ``compute`` raises (this run's claims are released).
        """
        pending = list(range(len(keys)))
        shared: dict[int, Any] = {}
        try:
            while pending:
                mine = set(self.claim([keys[i] for i in pending], max(1, chunk)))
                if mine:
                    batch = [i for i in pending if keys[i] in mine]
                    compute(batch)
                    self.stats["computed"] += len(batch)
                    done = set(batch)
                    pending = [i for i in pending if i not in done]
                    continue
                hits = self.get_many([keys[i] for i in pending])
                if not hits:
                    time.sleep(poll)
                    continue
                for i in pending:
                    if keys[i] in hits:
                        shared[i] = hits[keys[i]]
                self.stats["shared"] += sum(1 for i in pending if keys[i] in hits)
                pending = [i for i in pending if keys[i] not in hits]
        finally:
            self.release()
        return shared

    def summary(self) -> str:
        """One line for the person running the command: where this run's results came from."""
        st = self.stats
        return (f"cache: {st['reused']} results reused, {st['computed']} computed, {st['shared']} computed by a "
                f"concurrent run ({self.path})")

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=1)
            self._heartbeat = None
        self.release()
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
