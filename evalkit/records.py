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
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

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
]

# Bump when a field changes meaning or is removed; adding optional fields does not need a bump.
SCHEMA_VERSION = 1

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
    level: str  # "warn" | "overfit"
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
    status: str = "crossed"


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
    level: str  # "ok" | "warn" | "overfit"
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Target:
    name: str  # display name: adapter folder name, "base", or predictions file stem
    kind: str  # "adapter" | "base" | "predictions"
    path: Optional[str] = None
    adapter_hash: Optional[str] = None
    base_model: Optional[str] = None  # identity string of the base model
    base_hash: Optional[str] = None
    training: Optional[dict[str, Any]] = None  # the adapter's evalkit.json (config, data hashes, ...)
    training_log: tuple[dict[str, Any], ...] = ()  # rows of training_log.jsonl


@dataclass(frozen=True)
class RunRecord:
    """results.json: everything `evalkit eval` / `evalkit score` measured for one target."""

    schema_version: int
    kind: str  # "eval" | "score"
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


# ---------------------------------------------------------------- (de)serialization


def to_dict(record: Any) -> Any:
    """Plain JSON types (tuples become lists)."""
    if dataclasses.is_dataclass(record):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, dict):
        return {str(k): to_dict(v) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [to_dict(v) for v in record]
    return record


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, getattr(types, "UnionType", Union)):
        if value is None:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _build(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{where}: missing required field '{f.name}'")
    return cls(**kwargs)


def from_dict(cls: type, data: dict, where: str = "record") -> Any:
    """Build a record from plain JSON types. Unknown keys are ignored (forward-compatible reads)."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise RecordError(
            f"{where}: written by a newer evalkit (schema_version {version}, this evalkit reads "
            f"up to {SCHEMA_VERSION}); upgrade evalkit to read it"
        )
    return _build(cls, data, where)


def _load(path: Path, cls: type) -> Any:
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such file; run `evalkit eval`, `score` or `compare` to create it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: not valid JSON ({e}); re-create it with evalkit") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise RecordError(f"{path}: not an evalkit record (no schema_version)")
    return from_dict(cls, data, where=str(path))


def load_run(path: Path) -> RunRecord:
    return _load(path, RunRecord)


def load_comparison(path: Path) -> Comparison:
    return _load(path, Comparison)


def save_record(record: Any, path: Path) -> None:
    """Write a record as JSON atomically (never a half-written file)."""
    write_json_atomic(Path(path), to_dict(record))
