"""The one module that writes evalkit's output files: checked before the work, written all or nothing.

Every command calls a ``check_*`` function in its preflight, before any model is loaded, and one
``write_*`` function at the end:

* :func:`check_out_dir` / :func:`check_out_file` -- the location can be created and written: the
  folder's parent is created and a probe file is written there and removed again. A ``--out`` that is
  a file, lies under a file or is not writable is one line and exit 2, before hours of compute.
* :func:`write_files` -- every file of one output (results.json + report.html, or comparison.json +
  report.html + summary.md + junit.xml) is rendered in memory first, then written into a temporary
  sibling folder and renamed into place. A new output folder appears whole (one rename of the folder);
  into an existing folder each file is renamed over the old one, the record (``*.json``) last. A full
  disk, a kill or a bad value leaves the folder as it was: never a half-written or empty file.
* :func:`record_json` -- a record as standard JSON. A non-finite number is refused before anything is
  written (``RecordError`` naming the field), so no writer ever sees NaN.
* :func:`staging_dir` / :func:`publish_dir` -- a folder built by a long job (a trained adapter) is
  built beside its destination and renamed onto it when complete.

Files and folders keep the user's umask (``tempfile`` creates 0600 / 0700, which other users of a CI
runner or a shared volume could not read).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from .errors import OutputError, RecordError

__all__ = ["check_out_dir", "check_out_file", "write_files", "write_file", "record_json", "run_files",
           "comparison_files", "write_run", "write_comparison", "staging_dir", "publish_dir", "umask_modes"]

_PROBE = ".evalkit-probe-"
_STAGE = ".evalkit-tmp-"


# ---------------------------------------------------------------- preflight


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, option: str, shown: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=_PROBE, dir=folder)
        try:
            os.write(fd, b"evalkit")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{option} {shown}: cannot write in {folder} ({_why(e)}); choose a writable location "
                          "or fix its permissions") from None


def check_out_dir(path: Union[str, Path], option: str = "--out") -> Path:
    """Preflight for an output folder: it is a folder or can become one, and it can be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; give a folder (it is created if missing)")
    anchor = _existing_ancestor(path)
    if not anchor.is_dir():
        raise OutputError(f"{option} {path}: {anchor} is a file, so no folder can be created under it; "
                          "choose another location")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot create {path.parent} ({_why(e)}); choose a writable "
                          "location") from None
    # a new folder is staged beside it (in the parent), an existing one is written into
    _probe(path if path.is_dir() else path.parent, option, path)
    return path


def check_out_file(path: Union[str, Path], option: str) -> Path:
    """Preflight for one output file (``report --out FILE``, ``gate --junit FILE``): its folder is created."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file path")
    anchor = _existing_ancestor(path.parent)
    if not anchor.is_dir():
        raise OutputError(f"{option} {path}: {anchor} is a file, so no folder can be created under it; "
                          "choose another location")
    check_out_dir(path.parent, option)
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot create {path.parent} ({_why(e)}); choose a writable "
                          "location") from None
    _probe(path.parent, option, path)
    return path


# ---------------------------------------------------------------- serializing


def record_json(record: Any, name: str = "record") -> str:
    """A record (dataclass or plain JSON types) as standard JSON text; non-finite numbers are refused."""
    from .records import to_dict

    try:
        data = to_dict(record)  # refuses NaN/Infinity, naming the field
    except ValueError as e:
        raise RecordError(f"{name}: {e}; evalkit writes standard JSON only, so nothing was written "
                          "(please report this as a bug with the command you ran)") from None
    return json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False) + "\n"


def run_files(record) -> dict[str, str]:
    """results.json and report.html of one run (eval / score)."""
    from .report.render import render_report  # jinja2 is imported only when a report is rendered

    return {"results.json": record_json(record, "results.json"), "report.html": render_report(record)}


def comparison_files(comparison) -> dict[str, str]:
    """comparison.json, summary.md, junit.xml and report.html of a comparison."""
    from .junit import to_junit_xml
    from .report.render import render_report
    from .summary_md import to_summary_md

    return {"comparison.json": record_json(comparison, "comparison.json"), "summary.md": to_summary_md(comparison),
            "junit.xml": to_junit_xml(comparison), "report.html": render_report(comparison)}


# ---------------------------------------------------------------- writing


def umask_modes() -> tuple[int, int]:
    """(file mode, folder mode) the user's umask gives: what ``open`` / ``mkdir`` would create."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask, 0o777 & ~mask


def _write_new(path: Path, text: str, mode: int) -> None:
    with open(path, "x", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, mode)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_files(out_dir: Union[str, Path], files: Mapping[str, str], option: str = "--out") -> dict[str, Path]:
    """Write ``{name: text}`` into ``out_dir`` all or nothing (module docstring); returns name -> path."""
    out = Path(out_dir)
    file_mode, dir_mode = umask_modes()
    fresh = not out.exists()
    if fresh:
        check_out_dir(out, option)
    stage_parent = out.parent if fresh else out
    stage: Optional[Path] = None
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE}{os.getpid()}-", dir=stage_parent))
        for name, text in files.items():
            _write_new(stage / name, text, file_mode)
        published = False
        if fresh:
            os.chmod(stage, dir_mode)
            try:
                os.rename(stage, out)
                stage, published = None, True
            except OSError as e:  # a concurrent run created the folder first: replace file by file
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not out.is_dir():
                    raise
        if not published:
            # the record last: when it is there, the files that go with it are too
            for name in sorted(files, key=lambda n: n.endswith(".json")):
                os.replace(stage / name, out / name)
        _fsync_dir(out)
    except OSError as e:
        raise OutputError(f"{option} {out}: cannot write its files ({_why(e)}); nothing was written there -- free "
                          "some space or choose another location") from None
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    return {name: out / name for name in files}


def write_file(path: Union[str, Path], text: str, option: str) -> Path:
    """One file, atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    file_mode, _ = umask_modes()
    check_out_file(path, option)
    tmp: Optional[str] = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot write ({_why(e)}); nothing was written -- free some space or "
                          "choose another location") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def write_run(record, out_dir: Union[str, Path]) -> dict[str, Path]:
    return write_files(out_dir, run_files(record))


def write_comparison(comparison, out_dir: Union[str, Path]) -> dict[str, Path]:
    return write_files(out_dir, comparison_files(comparison))


# ---------------------------------------------------------------- folders built by long jobs


def staging_dir(out_dir: Union[str, Path]) -> Path:
    """An empty folder beside ``out_dir`` (same filesystem) to build it in; see :func:`publish_dir`."""
    out_dir = Path(out_dir)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))


def _apply_umask(tree: Path) -> None:
    file_mode, dir_mode = umask_modes()
    for root, dirs, names in os.walk(tree):
        os.chmod(root, dir_mode)
        for n in names:
            p = Path(root) / n
            if not p.is_symlink():
                os.chmod(p, file_mode)


def publish_dir(tmp: Path, out_dir: Path) -> None:
    """Rename the finished ``tmp`` onto ``out_dir`` (user's umask applied); an old one is moved aside, then deleted."""
    _apply_umask(tmp)
    old = None
    if out_dir.exists():
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        else:
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{int(time.time())}"
            os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
