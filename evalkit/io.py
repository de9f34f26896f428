"""Small file helpers: atomic writes, hashing, JSON lines."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["write_text_atomic", "write_json_atomic", "sha256_file", "sha256_text", "sha256_dir", "parse_toml"]


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; outputs are meant to be shared (CI artifacts): honour the umask
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: Path, obj: Any, indent: int | None = 1) -> None:
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False) + "\n")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(path: Path, names: Iterable[str] | None = None) -> str:
    """Hash of the named files of a folder (all regular files when names is None), order-independent."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if names is None else [path / n for n in sorted(names)]
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest()


def parse_toml(raw: str, source: str, error: type[Exception]) -> dict[str, Any]:
    """The one TOML reader: ``error("SOURCE:LINE: not valid TOML: what (column C)")`` on a syntax error."""
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            raise error(f"{source}:{m.group(1)}: not valid TOML: {msg[:m.start()].strip()} (column {m.group(2)})") \
                from None
        if "(at end of document)" in msg:
            last = raw.rstrip("\n").count("\n") + 1
            msg = msg.replace("(at end of document)", "(at the end of the file)").strip()
            raise error(f"{source}:{last}: not valid TOML: {msg}") from None
        raise error(f"{source}: not valid TOML: {msg}") from None
