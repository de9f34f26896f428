"""Load and validate conversations (training data), prompt suites and external predictions.

Accepted record shapes, one JSON object per line (JSON Lines, UTF-8):

* training / validation data
    {"id": ..., "messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}],
     "challenge_ids": [...]}                         (the bundled eco data; "system" turns allowed)
    {"id": ..., "prompt": ..., "response": ...}      (single turn)
* held-out suites: {"id", "prompt", "reference"} (also "response" for the reference), or
  "messages" whose last assistant turn is the reference; optional "challenge_ids", "tags".
* predictions for `evalkit score`: {"id", "prompt", "prediction", "reference"?}

Every problem is reported as ``file:line: what is wrong``. Newlines inside JSON strings are the
escape ``\\n`` on disk and real newlines after parsing; a *literal* backslash-n left in a parsed
string (double-escaped data, the seed's trap) is counted by :func:`escaped_newline_lines`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import DataError

__all__ = [
    "Conversation",
    "PromptItem",
    "Prediction",
    "read_jsonl",
    "load_conversations",
    "load_suite",
    "load_predictions",
    "escaped_newline_lines",
    "BUNDLED_DIR",
    "bundled_path",
    "OVERRIDE_FLAG",
    "membership_files",
    "recorded_members",
]

OVERRIDE_FLAG = "--allow-membership-mismatch"

ROLES = ("system", "user", "assistant")
# One record (one line) larger than this is refused: no model's context holds a million characters, and
# reading lines with this bound keeps memory bounded by the limit, never by what a file holds.
MAX_RECORD_CHARS = 1_000_000

# The repository layout ships data beside the package; installed copies use package data.
_REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = _REPO_ROOT


def bundled_path(relative: str) -> Path:
    """Path of a bundled data file ('benchmarks/eco/train.jsonl', 'prompts/eco_heldout_en.jsonl')."""
    for root in (_REPO_ROOT, Path(__file__).resolve().parent / "data"):
        p = root / relative
        if p.exists():
            return p
    raise DataError(f"bundled file {relative} not found; reinstall evalkit from its source tree (pip install -e .)")


@dataclass(frozen=True)
class Conversation:
    """One training / validation conversation; the last turn is the assistant answer."""

    id: str
    messages: tuple[dict[str, str], ...]
    challenge_ids: tuple[str, ...] = ()
    source: str = ""  # "file:line"

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.messages[:-1]]

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

    @property
    def user(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    def assistant_turns(self) -> list[tuple[str, str]]:
        """(id, text) of every assistant turn: the last keeps the conversation id, earlier ones get "id#k"."""
        turns = [m["content"] for m in self.messages if m["role"] == "assistant"]
        return [(self.id if k == len(turns) - 1 else f"{self.id}#{k}", t) for k, t in enumerate(turns)]


@dataclass(frozen=True)
class PromptItem:
    """One held-out prompt: the messages to send (ending with a user turn) and its reference."""

    id: str
    suite: str
    messages: tuple[dict[str, str], ...]
    reference: Optional[str] = None
    challenge_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = ""

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class Prediction:
    id: str
    prompt: str
    prediction: str
    reference: Optional[str] = None
    source: str = field(default="", compare=False)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; DataError names file:line on a bad one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    try:
        fh = open(path, encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    with fh:
        try:
            for lineno, line in enumerate(iter(lambda: fh.readline(MAX_RECORD_CHARS + 1), ""), 1):
                if len(line) > MAX_RECORD_CHARS:
                    raise DataError(f"{path}:{lineno}: this record is longer than {MAX_RECORD_CHARS:,} characters, "
                                    "more than any model's context; evalkit refuses it rather than cut it -- "
                                    "shorten or split it")
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                                    "each line must be one JSON object") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; save the file as UTF-8") from None


def _text(obj: dict, key: str, where: str, *, allow_empty: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise DataError(f"{where}: '{key}' must be a string, got {got}")
    if not allow_empty and not value.strip():
        raise DataError(f"{where}: '{key}' is empty")
    return value


def _messages(obj: dict, where: str) -> list[dict[str, str]]:
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise DataError(f"{where}: messages[{i}] must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise DataError(f"{where}: messages[{i}].role is {role!r}; expected one of {', '.join(ROLES)}")
        out.append({"role": role, "content": _text(m, "content", f"{where}: messages[{i}]")})
    return out


def _str_list(obj: dict, key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _record_id(obj: dict, where: str, fallback: str, seen: dict[str, str]) -> str:
    rid = obj.get("id", fallback)
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise DataError(f"{where}: 'id' must be a string or integer")
    rid = str(rid)
    if rid in seen:
        raise DataError(f"{where}: duplicate id {rid!r} (first at {seen[rid]}); ids must be unique")
    seen[rid] = where
    return rid


def _require_records(items: list, path: Path, what: str) -> list:
    if not items:
        raise DataError(f"{path}: no {what} records; the file is empty")
    return items


def load_conversations(path: Path) -> list[Conversation]:
    """Training / validation conversations (``messages`` or ``prompt``/``response`` records)."""
    path = Path(path)
    seen: dict[str, str] = {}
    out = []
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        if "messages" in obj:
            msgs = _messages(obj, where)
        elif "prompt" in obj and "response" in obj:
            msgs = [{"role": "user", "content": _text(obj, "prompt", where)},
                    {"role": "assistant", "content": _text(obj, "response", where)}]
        else:
            raise DataError(f"{where}: expected 'messages' or 'prompt' + 'response'; "
                            f"got keys {sorted(obj)}")
        if msgs[-1]["role"] != "assistant":
            raise DataError(f"{where}: the last message must be the assistant's answer (role 'assistant')")
        if not any(m["role"] == "user" for m in msgs):
            raise DataError(f"{where}: no 'user' message")
        rid = _record_id(obj, where, f"{path.stem}-{lineno}", seen)
        out.append(Conversation(rid, tuple(msgs), _str_list(obj, "challenge_ids", where), where))
    return _require_records(out, path, "conversation")


def load_suite(path: Path, *, require_reference: bool = False) -> list[PromptItem]:
    """A held-out prompt suite; the suite name is the file name without extension."""
    path = Path(path)
    seen: dict[str, str] = {}
    out = []
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        if "messages" in obj:
            msgs = _messages(obj, where)
            reference = None
            if msgs[-1]["role"] == "assistant":
                reference = msgs.pop()["content"]
            if not msgs or msgs[-1]["role"] != "user":
                raise DataError(f"{where}: the prompt messages must end with a 'user' turn")
        elif "prompt" in obj:
            msgs = [{"role": "user", "content": _text(obj, "prompt", where)}]
            key = "reference" if "reference" in obj else "response" if "response" in obj else None
            reference = _text(obj, key, where) if key else None
        else:
            raise DataError(f"{where}: expected 'prompt' (with 'reference') or 'messages'; got keys {sorted(obj)}")
        if require_reference and reference is None:
            raise DataError(f"{where}: no reference answer ('reference'); this command needs one per prompt")
        rid = _record_id(obj, where, f"{path.stem}-{lineno}", seen)
        out.append(PromptItem(rid, path.stem, tuple(msgs), reference, _str_list(obj, "challenge_ids", where),
                              _str_list(obj, "tags", where), where))
    return _require_records(out, path, "prompt")


def load_predictions(path: Path) -> list[Prediction]:
    """Generations made elsewhere: {"id", "prompt", "prediction", "reference"?}."""
    path = Path(path)
    seen: dict[str, str] = {}
    out = []
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        prompt = _text(obj, "prompt", where)
        prediction = _text(obj, "prediction", where, allow_empty=True)
        reference = _text(obj, "reference", where) if obj.get("reference") is not None else None
        rid = _record_id(obj, where, f"{path.stem}-{lineno}", seen)
        out.append(Prediction(rid, prompt, prediction, reference, where))
    return _require_records(out, path, "prediction")


def escaped_newline_lines(conversations: list[Conversation]) -> list[str]:
    """Sources (file:line) whose assistant answer holds a literal backslash-n: double-escaped data.

    A model trained on such answers learns to *emit* the two characters '\\' 'n' (the seed's trap).
    """
    return [c.source for c in conversations if "\\n" in c.answer]


# ---------------------------------------------------------------- membership integrity


def _mismatch(where: str, problem: str, how: str) -> DataError:
    return DataError(f"{where}: {problem}; {how}, or pass {OVERRIDE_FLAG} to measure anyway "
                     "(membership labels unverified, recorded as a warning)")


def membership_files(meta: Optional[dict], where: str, explicit: dict[str, Optional[Path]],
                     defaults: dict[str, str], *, allow_mismatch: bool = False) -> tuple[dict[str, Path], list[str]]:
    """The train / val files to measure an adapter with, checked against its evalkit.json.

    For each split ("train", "val"): the explicit path if given, else the recorded one; when the
    adapter recorded its data, a missing file or a sha256 different from the recorded one is a
    DataError unless ``allow_mismatch`` (then the problem is returned, to be recorded as a notice, and
    a missing recorded file falls back to the bundled default). Without a record (the base model, a
    foreign adapter) the explicit path or the bundled default is used. Returns ({split: path}, problems).
    """
    from .io import sha256_file

    paths: dict[str, Path] = {}
    problems: list[str] = []
    data = (meta or {}).get("data") or {}
    for split in ("train", "val"):
        rec = data.get(split) or {}
        flag = f"--{split}-data"
        path = Path(explicit[split]) if explicit.get(split) is not None else (
            Path(rec["path"]) if rec.get("path") else None)
        if path is None:
            paths[split] = bundled_path(defaults[split])
            continue
        problem = None
        if not path.is_file():
            if explicit.get(split) is not None:
                raise DataError(f"{path}: no such file; check the {flag} path")
            problem = f"the {split} file recorded in evalkit.json ({path}) is missing"
        elif rec.get("sha256") and sha256_file(path) != rec["sha256"]:
            problem = (f"{path} is not the {split} file the adapter was trained on (sha256 "
                       f"{sha256_file(path)[:12]} vs recorded {rec['sha256'][:12]})")
        if problem is not None:
            if not allow_mismatch:
                raise _mismatch(where, problem, f"pass the adapter's {split} data with {flag}")
            if not path.is_file():
                path = bundled_path(defaults[split])
                problem += f"; measured with the bundled {defaults[split]} instead"
            problems.append(problem)
        paths[split] = path
    return paths, problems


def recorded_members(train: list[Conversation], meta: Optional[dict], where: str, *,
                     allow_mismatch: bool = False) -> tuple[list[Conversation], list[str]]:
    """The training conversations the adapter saw (evalkit.json ``used_ids``), and any overridden problem.

    Without recorded ids every conversation is a member. Recorded ids missing from the file are a
    DataError unless ``allow_mismatch``: with none matching every row becomes a "member" the adapter
    never saw; with some missing the file is not the one it was trained on.
    """
    used = (((meta or {}).get("data") or {}).get("train") or {}).get("used_ids")
    if not used:
        return train, []
    wanted = set(used)
    chosen = [c for c in train if c.id in wanted]
    missing = len(wanted - {c.id for c in chosen})
    if not missing:
        return chosen, []
    problem = (f"{'none' if not chosen else missing} of the {len(wanted)} training ids recorded in evalkit.json "
               f"{'is' if missing == 1 and chosen else 'are'} in the training file {train[0].source.rsplit(':', 1)[0]}")
    if not allow_mismatch:
        raise _mismatch(where, problem, "pass the adapter's training data with --train-data")
    if not chosen:
        return train, [problem + "; every row counted as a member"]
    return chosen, [problem + f"; the {len(chosen)} that are were used as members"]
