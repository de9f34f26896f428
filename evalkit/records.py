"""The typed, versioned run records: the only contract between computing and presenting.

Data flows one way: data -> (train) -> generate/score -> RunRecord -> report / gate.
``results.json`` is a serialized :class:`RunRecord`; ``comparison.json`` a :class:`Comparison`.
The report and the gate read only these, so CI can re-judge stored results without a model.
See docs/results.md for every field.

All records are frozen dataclasses. ``to_dict`` / ``from_dict`` convert to plain JSON types;
``from_dict`` refuses a record written by a newer schema.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from .errors import RecordError
from .io import write_json_atomic

__all__ = [
    "SCHEMA_VERSION",
    "Memorization",
    "Sample",
    "LossExample",
    "MembershipExample",
    "ExtractionExample",
    "LmEvalDoc",
    "LmEvalTask",
    "Reason",
    "Notice",
    "DataAudit",
    "AUDIT_SCHEMA_VERSION",
    "Verdict",
    "TrainingLogRow",
    "BaseModelInfo",
    "DataFileInfo",
    "AdapterRecord",
    "Target",
    "RunRecord",
    "Delta",
    "RuleResult",
    "GateResult",
    "Comparison",
    "to_dict",
    "from_dict",
    "load_run",
    "load_comparison",
    "save_record",
    "read_adapter_record",
    "read_training_log",
    "schema_markdown",
]

# Bump when a field changes meaning or is removed; adding optional fields does not need a bump.
# 2: strictly typed (Literal levels/kinds, finite numbers); reasons carry ci_low/ci_high/n/status.
# Schema-1 records still load (every field they hold kept its meaning).
SCHEMA_VERSION = 2

VERDICT_LEVELS = ("ok", "warn", "overfit")


@dataclass(frozen=True)
class Memorization:
    """Where a generation overlaps a training answer (set on a sample when it copies)."""

    train_id: str  # training example holding the longest shared span
    span: str  # the shared text, as it appears in the prediction
    span_tokens: int  # length of the span in word tokens (see memorization/span_index.py)
    pred_start: int  # character offset of the span in the prediction
    train_start: int  # character offset of the span in the training answer
    train_answer: str  # the whole training answer, for side-by-side display
    nearest_id: Optional[str] = None  # training answer nearest by normalized edit distance
    nearest_answer: Optional[str] = None
    edit_distance: Optional[float] = None  # normalized edit distance to nearest_id, 0 = identical


@dataclass(frozen=True)
class Sample:
    """One held-out prompt with the target's answer and its per-sample scores."""

    id: str
    suite: str  # suite name, e.g. "eco_heldout_en"
    prompt: str
    prediction: str
    reference: Optional[str] = None
    metrics: dict[str, float] = field(default_factory=dict)  # rougeL, novelty_4, heldout_nll, ...
    flags: tuple[str, ...] = ()  # verbatim, near_verbatim, escaped_newline, template_leak, empty, truncated, repetition
    memorization: Optional[Memorization] = None
    n_tokens: Optional[int] = None  # generated tokens (None for `score`)
    hit_max_tokens: Optional[bool] = None
    tags: tuple[str, ...] = ()
    # the training answer nearest this answer by normalized edit distance, whether or not it copies
    # (its text: RunRecord.nearest_answers[nearest_id]); None when no training answers were known
    nearest_id: Optional[str] = None
    nearest_distance: Optional[float] = None
    nearest_exact: Optional[bool] = None  # False: the nearest of the best-ranked candidates (> 20,000 answers)


@dataclass(frozen=True)
class LossExample:
    """Mean NLL per assistant token of one example, under the target and under the base model."""

    id: str
    split: str  # "train" | "val" | "heldout"
    nll: float
    base_nll: Optional[float] = None
    n_tokens: int = 0


@dataclass(frozen=True)
class MembershipExample:
    """Membership-inference scores of one example. Every score is oriented so HIGHER = more member-like."""

    id: str
    member: bool  # True: a training answer; False: a held-out answer of the same distribution
    scores: dict[str, float] = field(default_factory=dict)  # loss, zlib, ref, minkpp


@dataclass(frozen=True)
class ExtractionExample:
    """The model prompted with a user message; did it reproduce that example's answer?"""

    id: str
    split: str  # "train" (extraction) | "heldout" (control)
    prompt: str
    reference: str
    prediction: str
    exact: bool
    edit_distance: float  # normalized, 0 = identical


@dataclass(frozen=True)
class LmEvalDoc:
    """One document of an lm-evaluation-harness task, as the target answered it (paired by doc_id + doc_hash)."""

    doc_id: int  # lm-eval's index of the document in the task's evaluation split
    doc_hash: str  # lm-eval's sha256 of the document (two runs pair only where both agree)
    target: str  # the gold answer (multiple choice: the gold choice's text)
    prediction: str  # multiple choice: the choice with the highest log-likelihood; generation: the answer
    metrics: dict[str, float] = field(default_factory=dict)  # per-document values, e.g. {"acc": 1.0, "acc_norm": 0.0}


@dataclass(frozen=True)
class LmEvalTask:
    """One lm-evaluation-harness task run on one target (issue 10; docs/results.md, "lm_eval")."""

    metrics: dict[str, float]  # lm-eval's own task value per metric ("acc", "acc_norm", "exact_match_strict_match")
    stderr: dict[str, float] = field(default_factory=dict)  # lm-eval's standard error per metric, where it gave one
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    n: int = 0  # documents evaluated (after --lm-eval-limit)
    n_total: Optional[int] = None  # documents in the task's evaluation split
    version: Optional[str] = None  # the task's metadata version
    num_fewshot: Optional[int] = None
    output_type: Optional[str] = None  # "multiple_choice" | "generate_until" | "loglikelihood" | ...
    # metrics whose task value is the mean of the per-document values (so compare can pair them)
    paired_metrics: tuple[str, ...] = ()
    docs: tuple[LmEvalDoc, ...] = ()


@dataclass(frozen=True)
class Reason:
    code: str  # machine name, e.g. "loss_gap"
    level: Literal["warn", "overfit"]
    message: str  # one sentence a person reads
    metric: Optional[str] = None
    value: Optional[float] = None
    threshold: Optional[float] = None
    # the uncertainty the reason was judged with (issue 9): 95% interval of ``value`` and the n behind it
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    n: Optional[int] = None
    # "crossed" (interval clears the threshold) | "inconclusive" (interval straddles it)
    # | "not_enough_data" (n below the metric's minimum) | "not_measured" (absent or non-finite)
    status: Literal["crossed", "inconclusive", "not_enough_data", "not_measured"] = "crossed"


@dataclass(frozen=True)
class Notice:
    """A record-level warning a person must see (membership override, data audit finding, ...)."""

    code: str  # machine name, e.g. "val_leak", "membership_override"
    message: str  # one sentence


# audit.json's own version (it is also written on its own by `evalkit audit`)
AUDIT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DataAudit:
    """audit.json / RunRecord.audit: what evalkit/audit.py found in the train / val / suite files (docs/audit.md)."""

    schema_version: int
    summary: dict[str, float]  # val_answer_near_dup_rate, train_answer_template_share, ... (docs/audit.md)
    n: dict[str, int] = field(default_factory=dict)  # "train", "val", "heldout": examples behind the rates
    suites: dict[str, dict[str, float]] = field(default_factory=dict)  # suite -> n, heldout_*_near_dup_rate
    warnings: tuple[Notice, ...] = ()  # codes: val_leak, heldout_leak, templated_answers, val_missing
    examples: dict[str, Any] = field(default_factory=dict)  # finding -> [{"id", "train_id", "distance"}]
    settings: dict[str, Any] = field(default_factory=dict)  # the thresholds the warnings used
    inputs: dict[str, Any] = field(default_factory=dict)  # train / val / suites: {"path", "sha256", "n"}
    runtime_s: Optional[float] = None


@dataclass(frozen=True)
class Verdict:
    level: Literal["ok", "warn", "overfit"]
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class TrainingLogRow:
    """One row of training_log.jsonl (written by `evalkit train` every eval_steps and at the end)."""

    step: int
    epoch: Optional[float] = None
    train_loss: Optional[float] = None  # mean NLL per assistant token of the last logged steps (null: diverged)
    val_loss: Optional[float] = None  # mean NLL per assistant token on the validation split
    learning_rate: Optional[float] = None


@dataclass(frozen=True)
class BaseModelInfo:
    spec: Optional[str] = None  # what the user passed as --base
    identity: Optional[str] = None  # display identity, e.g. "HuggingFaceTB/SmolLM2-135M-Instruct@<rev>"
    content_hash: Optional[str] = None  # sha256 of the base weights


@dataclass(frozen=True)
class DataFileInfo:
    path: Optional[str] = None
    sha256: Optional[str] = None
    n_examples: Optional[int] = None
    n_used: Optional[int] = None
    n_cut_off: Optional[int] = None  # dropped: longer than max_length
    used_ids: tuple[str, ...] = ()  # the training conversations the adapter saw (train split only)


@dataclass(frozen=True)
class AdapterRecord:
    """evalkit.json, written by `evalkit train` beside the adapter: how it was made.

    Read only through :func:`read_adapter_record`. Files written before the record was typed
    carried the base twice (``base`` and ``base_model``); either one is accepted.
    """

    format: int = 1
    evalkit_version: Optional[str] = None
    config: dict[str, Any] = field(default_factory=dict)  # TrainConfig.to_dict()
    base: BaseModelInfo = field(default_factory=BaseModelInfo)
    data: dict[str, DataFileInfo] = field(default_factory=dict)  # "train", "val"
    template: Optional[dict[str, Any]] = None  # the chat template used (runtime/chat_templates.describe)
    canaries: tuple[dict[str, Any], ...] = ()  # planted canaries (memorization/canaries.py)
    seed: Optional[int] = None
    versions: dict[str, str] = field(default_factory=dict)
    adapter_sha256: Optional[str] = None
    created_at: Optional[str] = None
    device: Optional[str] = None
    dtype: Optional[str] = None
    trainable_params: Optional[int] = None
    runtime_s: Optional[float] = None
    final: Optional[TrainingLogRow] = None  # the last logged step with its losses
    command: Optional[str] = None
    audit: Optional[dict[str, Any]] = None  # the data audit's summary and warnings at training time (audit.py)

    @staticmethod
    def _upgrade(data: dict) -> dict:
        if "base" not in data and isinstance(data.get("base_model"), dict):  # the old duplicate key
            data = {**data, "base": data["base_model"]}
        return data


@dataclass(frozen=True)
class Target:
    name: str  # display name: adapter folder name, "base", or predictions file stem
    kind: Literal["adapter", "base", "predictions"]
    path: Optional[str] = None
    adapter_hash: Optional[str] = None
    base_model: Optional[str] = None  # identity string of the base model
    base_hash: Optional[str] = None
    # the adapter's evalkit.json as written (validated against AdapterRecord on read)
    training: Optional[dict[str, Any]] = field(default=None, metadata={"schema": "AdapterRecord"})
    # rows of training_log.jsonl (each validated against TrainingLogRow on read)
    training_log: tuple[dict[str, Any], ...] = field(default=(), metadata={"schema": "TrainingLogRow"})


@dataclass(frozen=True)
class RunRecord:
    """results.json: everything `evalkit eval` / `evalkit score` measured for one target."""

    schema_version: int
    kind: Literal["eval", "score"]  # a model run, or predictions scored without a model
    target: Target
    summary: dict[str, float]  # metric name -> value (see evalkit/metrics/registry.py)
    verdict: Verdict
    samples: tuple[Sample, ...] = ()
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% bootstrap
    losses: tuple[LossExample, ...] = ()
    membership: tuple[MembershipExample, ...] = ()
    extraction: tuple[ExtractionExample, ...] = ()
    curves: dict[str, Any] = field(default_factory=dict)  # novelty curves, ROC points
    settings: dict[str, Any] = field(default_factory=dict)  # generation settings, thresholds used
    provenance: dict[str, Any] = field(default_factory=dict)  # versions, command, created_at
    # --- added for issues 9-12 (contract shared by the parallel work; see docs/results.md)
    n: dict[str, int] = field(default_factory=dict)  # summary metric -> n behind it (MIA: per class, the smaller)
    notices: tuple[Notice, ...] = ()  # record-level warnings shown in the report and by the CLI
    audit: Optional[DataAudit] = None  # data audit of the train/val/suite files (audit.json's body)
    lm_eval: dict[str, LmEvalTask] = field(default_factory=dict)  # capability retention: lm-eval task name -> run
    engine: Optional[dict[str, Any]] = None  # which engine produced the record: {"name", "version", ...}
    nearest_answers: dict[str, str] = field(default_factory=dict)  # training answer id -> text, for samples' nearest_id

    def value(self, name: str) -> Optional[float]:
        """A finite summary value, or ``lm_eval.<task>.<metric>`` from ``lm_eval``; None when absent."""
        v: Any = self.summary.get(name)
        if v is None and name.startswith("lm_eval."):
            _, task, metric = (name.split(".", 2) + ["", ""])[:3]
            t = self.lm_eval.get(task)
            metrics = t.get("metrics", t) if isinstance(t, dict) else getattr(t, "metrics", None)
            v = metrics.get(metric) if isinstance(metrics, dict) else None
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok else None


@dataclass(frozen=True)
class Delta:
    """Candidate minus baseline for one metric, paired per prompt/example where possible."""

    metric: str
    candidate: str
    baseline_value: Optional[float]
    candidate_value: Optional[float]
    delta: Optional[float]
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    p_value: Optional[float] = None
    n_pairs: int = 0
    test: Optional[str] = None  # "paired_bootstrap+wilcoxon", "mcnemar", ... or None when unpaired
    higher_is_better: Optional[bool] = None
    better: Optional[bool] = None  # None when the metric has no direction or delta is 0/missing
    # minimum detectable effect of this paired comparison at its n (alpha 0.05, power 0.8; lm_eval.* metrics,
    # see docs/lm-eval.md): a |delta| smaller than this could not have been told apart from no change
    mde: Optional[float] = None
    p_adjusted: Optional[float] = None  # Holm-adjusted p over every p-valued delta of the comparison (stats.holm)
    # per-prompt paired differences (candidate - baseline) behind ``delta``, keyed like the pairing
    # (sample id, or "suite/id" when ids repeat across suites); per-sample score metrics only
    per_id: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    candidate: str
    passed: bool
    value: Optional[float] = None
    threshold: Optional[float] = None
    message: str = ""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    rules: tuple[RuleResult, ...] = ()
    source: Optional[str] = None  # gate file path or "default"


@dataclass(frozen=True)
class Comparison:
    """comparison.json: every target's RunRecord, the paired deltas, and the gate decision."""

    schema_version: int
    baseline: str
    targets: tuple[str, ...]
    runs: dict[str, RunRecord]
    deltas: tuple[Delta, ...] = ()
    gate: Optional[GateResult] = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """RecordError when the baseline is not a target or a target has no run (checked on read)."""
        if self.baseline not in self.targets:
            raise RecordError(f"comparison: baseline '{self.baseline}' is not one of its targets "
                              f"{list(self.targets)}; re-create it with `evalkit compare`")
        missing = [t for t in self.targets if t not in self.runs]
        if missing:
            raise RecordError(f"comparison: target '{missing[0]}' has no run record; re-create it with "
                              f"`evalkit compare`")


# ---------------------------------------------------------------- (de)serialization
#
# Reading is strict: a value of the wrong type, a non-finite number, a verdict level outside its
# Literal, or a missing required field is a RecordError naming the file and the field. Unknown keys
# are ignored (forward-compatible reads). Writing refuses NaN/Infinity (never non-standard JSON).

_NUMBER = (int, float)


class _FieldError(Exception):
    def __init__(self, path: str, problem: str):
        super().__init__(problem)
        self.path, self.problem = path, problem


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    return {dict: "an object", list: "a list"}.get(type(value), repr(value))


def _join(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _check_finite(value: Any, path: str) -> Any:
    """Free-form (Any) values: any JSON, but numbers must be finite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _FieldError(path, f"is {_nonfinite(value)}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, _join(path, k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, _join(path, i))
    return value


def _nonfinite(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return _check_finite(value, path)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, path)
    if origin is Literal:
        if value not in args:
            raise _FieldError(path, f"is {_describe(value)}, expected one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _FieldError(path, f"is {_describe(value)}, expected an object")
        return _build(tp, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _FieldError(path, f"is {_describe(value)}, expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, _join(path, i)) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _FieldError(path, f"has {len(value)} items, expected {len(args)}")
        return tuple(_convert(a, v, _join(path, i)) for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise _FieldError(path, f"is {_describe(value)}, expected an object")
        return {k: _convert(args[1], v, _join(path, k)) for k, v in value.items()}
    if tp is float:
        if not isinstance(value, _NUMBER) or isinstance(value, bool):
            raise _FieldError(path, f"is {_describe(value)}, expected a number")
        if not math.isfinite(value):
            raise _FieldError(path, f"is {_nonfinite(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _FieldError(path, f"is {_describe(value)}, expected a whole number")
        return value
    if tp in (str, bool) and not isinstance(value, tp):
        raise _FieldError(path, f"is {_describe(value)}, expected {'text' if tp is str else 'true or false'}")
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _build(cls: type, data: dict, path: str) -> Any:
    data = getattr(cls, "_upgrade", lambda d: d)(data)
    hints, kwargs = _hints(cls), {}
    for f in dataclasses.fields(cls):
        where = _join(path, f.name)
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _FieldError(where, "is missing")
            continue
        value = _convert(hints[f.name], data[f.name], where)
        schema = f.metadata.get("schema")
        if schema is not None and value is not None:  # a free-form dict checked against its typed record
            rows = value if isinstance(value, tuple) else (value,)
            for i, row in enumerate(rows):
                _convert(globals()[schema], row, _join(where, i) if isinstance(value, tuple) else where)
        kwargs[f.name] = value
    return cls(**kwargs)


_REMEDY = {"RunRecord": "`evalkit eval …` (or `evalkit score …`)", "Comparison": "`evalkit compare …`",
           "AdapterRecord": "`evalkit train …`"}


def from_dict(cls: type, data: dict, where: str = "record") -> Any:
    """Build a record from plain JSON types; RecordError names ``where`` and the bad field."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise RecordError(
            f"{where}: written by a newer evalkit (schema_version {version}, this evalkit reads "
            f"up to {SCHEMA_VERSION}); upgrade evalkit to read it"
        )
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object, got {_describe(data)}")
    try:
        return _build(cls, data, "")
    except _FieldError as e:
        if cls is RunRecord and data.get("kind") == "score":
            remedy = "`evalkit score …`"
        else:
            remedy = _REMEDY.get(cls.__name__, "evalkit")
        raise RecordError(f"{where}: field `{e.path}` {e.problem}; the record is corrupt, re-create it "
                          f"with {remedy}") from None


def to_dict(record: Any, path: str = "") -> Any:
    """Plain JSON types (tuples become lists). A NaN/Infinity is a bug upstream: ValueError naming the field."""
    if dataclasses.is_dataclass(record):
        return {f.name: to_dict(getattr(record, f.name), _join(path, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, dict):
        return {str(k): to_dict(v, _join(path, k)) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [to_dict(v, _join(path, i)) for i, v in enumerate(record)]
    if isinstance(record, float) and not math.isfinite(record):
        raise ValueError(f"field `{path}` is {_nonfinite(record)}: a computation produced a non-finite number; "
                         f"records never hold NaN/Infinity (leave the metric out or fix its computation)")
    return record


def _read_json(path: Path, what: str, remedy: str) -> Any:
    if not path.is_file():
        raise RecordError(f"{path}: no such file; run {remedy} to create it")
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda c: float(c))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: not valid JSON ({e}); {what} is corrupt, re-create it with {remedy}") from None
    except OSError as e:
        raise RecordError(f"{path}: cannot read ({e.strerror or e})") from None


def _load(path: Path, cls: type) -> Any:
    path = Path(path)
    data = _read_json(path, "the record", "`evalkit eval`, `score` or `compare`")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise RecordError(f"{path}: not an evalkit record (no schema_version)")
    return from_dict(cls, data, where=str(path))


def load_run(path: Path) -> RunRecord:
    return _load(path, RunRecord)


def load_comparison(path: Path) -> Comparison:
    comparison = _load(path, Comparison)
    try:
        comparison.check()
    except RecordError as e:
        raise RecordError(f"{path}: {str(e).removeprefix('comparison: ')}") from None
    return comparison


def save_record(record: Any, path: Path) -> None:
    """Write a record as JSON atomically (never a half-written file, never NaN)."""
    write_json_atomic(Path(path), to_dict(record))


ADAPTER_RECORD = "evalkit.json"
TRAINING_LOG = "training_log.jsonl"


def read_adapter_record(folder: Path) -> Optional[AdapterRecord]:
    """The adapter folder's evalkit.json, or None when absent; RecordError (exit 2) when corrupt."""
    path = Path(folder) / ADAPTER_RECORD
    if not path.exists():
        return None
    data = _read_json(path, "the adapter record", "`evalkit train`")
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not an evalkit adapter record (expected a JSON object); re-create it with "
                          f"`evalkit train …` or remove the file")
    return from_dict(AdapterRecord, data, where=str(path))


def read_training_log(folder: Path) -> tuple[TrainingLogRow, ...]:
    """Rows of the folder's training_log.jsonl (none when absent). A torn last line (a killed run) is skipped."""
    path = Path(folder) / TRAINING_LOG
    if not path.is_file():
        return ()
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    rows = []
    for i, line in enumerate(lines, start=1):
        try:
            data = json.loads(line, parse_constant=lambda c: float(c))
        except json.JSONDecodeError:
            if i == len(lines):
                break
            raise RecordError(f"{path}:{i}: not valid JSON; the training log is corrupt, re-create it with "
                              f"`evalkit train …`") from None
        rows.append(from_dict(TrainingLogRow, data, where=f"{path}:{i}"))
    return tuple(rows)


# ---------------------------------------------------------------- schema, from the types


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "any JSON"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " or null"
    if origin is Literal:
        return " \\| ".join(f'"{a}"' for a in args)
    if origin is tuple:
        return f"[{', '.join(map(_type_name, args))}]" if args[-1] is not Ellipsis else f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"{{{_type_name(args[0])}: {_type_name(args[1])}}}"
    if dataclasses.is_dataclass(tp):
        return tp.__name__
    return {float: "number", int: "int", str: "str", bool: "bool"}.get(tp, str(tp))


def schema_markdown() -> str:
    """Every record type and field, generated from the dataclasses (``python -m evalkit.records --schema``)."""
    out = [f"schema_version {SCHEMA_VERSION}", ""]
    for name in ("RunRecord", "Target", "Sample", "Memorization", "LossExample", "MembershipExample",
                 "ExtractionExample", "Verdict", "Reason", "Notice", "Comparison", "Delta", "GateResult",
                 "RuleResult", "AdapterRecord", "BaseModelInfo", "DataFileInfo", "TrainingLogRow"):
        cls = globals()[name]
        out += [f"## {name}", "", "| field | type | required |", "|---|---|---|"]
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            schema = f" (each checked as {f.metadata['schema']})" if "schema" in f.metadata else ""
            out.append(f"| `{f.name}` | {_type_name(hints[f.name])}{schema} | {'yes' if required else ''} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m evalkit.records --schema")
    print(schema_markdown())
