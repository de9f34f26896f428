"""Targets -> run records, with one base-model load for every model target.

A target is ``base``, an adapter folder (``adapter_config.json``), ``openai:NAME`` (a model served by the
OpenAI-compatible server at ``--endpoint``), or a folder/file holding a ``results.json`` from an earlier
``evalkit eval`` / ``score`` (then nothing is recomputed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import ConfigError, ModelError
from .records import RunRecord, load_run, read_adapter_record

__all__ = ["TargetSpec", "parse_targets", "evaluate_targets", "engine_for"]


@dataclass(frozen=True)
class TargetSpec:
    raw: str
    kind: str  # "base" | "adapter" | "endpoint" | "results"
    path: Optional[Path]
    name: str


def _classify(raw: str) -> TargetSpec:
    if raw == "base":
        return TargetSpec(raw, "base", None, "base")
    if raw.startswith("openai:"):
        if not raw[len("openai:"):]:
            raise ConfigError(f"{raw}: no model name after 'openai:'; write openai:NAME with a name the "
                              "endpoint's /v1/models lists")
        return TargetSpec(raw, "endpoint", None, raw[len("openai:"):])
    p = Path(raw)
    if p.is_file() and p.name.endswith(".json"):
        return TargetSpec(raw, "results", p, p.parent.resolve().name)
    if p.is_dir():
        if (p / "results.json").is_file() and not (p / "adapter_config.json").is_file():
            return TargetSpec(raw, "results", p / "results.json", p.resolve().name)
        if (p / "adapter_config.json").is_file():
            return TargetSpec(raw, "adapter", p, p.resolve().name)
        raise ModelError(f"{p}: neither an adapter folder (no adapter_config.json) nor an evalkit output "
                         "(no results.json); pass an adapter from `evalkit train`, 'base', or an eval output folder")
    raise ModelError(f"{raw}: no such adapter folder or results file; pass an adapter folder, 'base', "
                     "or a folder holding results.json")


def parse_targets(raws: Sequence[str], *, minimum: int = 1) -> list[TargetSpec]:
    if len(raws) < minimum:
        raise ConfigError(f"need at least {minimum} targets, got {len(raws)}; "
                          "usage: evalkit compare BASELINE CANDIDATE [CANDIDATE ...] --out DIR")
    specs = [_classify(r) for r in raws]
    seen: dict[str, str] = {}
    for s in specs:
        if s.name in seen:
            raise ConfigError(f"targets '{seen[s.name]}' and '{s.raw}' have the same name '{s.name}'; "
                              "each target needs a distinct folder name")
        seen[s.name] = s.raw
    return specs


def _adapter_base_spec(path: Path) -> Optional[str]:
    record = read_adapter_record(path)  # RecordError (exit 2) when corrupt: before any model is loaded
    return record.base.spec if record else None


def _endpoint_engine(specs: Sequence[TargetSpec], base: Optional[str], endpoint: Optional[dict],
                     engine_kwargs: dict):
    """The endpoint client; with --base, that model's tokenizer lets it score through prompt log-probs."""
    from .engines.openai_engine import EndpointEngine

    local = [s.raw for s in specs if s.kind in ("base", "adapter")]
    if local:
        raise ConfigError(f"targets {', '.join(local)} are local models and the others are openai:NAME endpoint "
                          "targets; evaluate them in separate runs and compare the stored results")
    if not endpoint or not endpoint.get("url"):
        raise ConfigError("openai:NAME targets need --endpoint URL (an OpenAI-compatible server, e.g. "
                          "http://127.0.0.1:8000/v1)")
    tokenizer = None
    if base is not None:
        from .runtime.models import load_tokenizer, resolve_base

        tokenizer = load_tokenizer(resolve_base(base, allow_pickle=engine_kwargs.get("allow_pickle", False)),
                                   chat_template_from_config=engine_kwargs.get("chat_template_from_config", False),
                                   trust_remote_code=engine_kwargs.get("trust_remote_code", False))
    return EndpointEngine(**endpoint, tokenizer=tokenizer)


def engine_for(specs: Sequence[TargetSpec], base: Optional[str], **engine_kwargs):
    """One engine for every model target (evalkit.engines.base.Engine): --engine hf|vllm for local targets,
    the endpoint client for openai:NAME targets; the base comes from --base or the adapters' evalkit.json."""
    name = engine_kwargs.pop("engine", "hf")
    endpoint = engine_kwargs.pop("endpoint", None)
    vllm_options = engine_kwargs.pop("vllm", None) or {}
    if engine_kwargs.get("score_dtype") and (name != "hf" or any(s.kind == "endpoint" for s in specs)):
        raise ModelError("--score-dtype is an option of the hf engine (in-process transformers); the vllm engine "
                         "and endpoints score in the dtype they serve: drop --score-dtype")
    if any(s.kind == "endpoint" for s in specs):
        return _endpoint_engine(specs, base, endpoint, engine_kwargs)
    model_specs = [s for s in specs if s.kind in ("base", "adapter")]
    if not model_specs:
        return None
    if base is None:
        recorded = {s.raw: _adapter_base_spec(s.path) for s in model_specs if s.kind == "adapter"}
        distinct = {v for v in recorded.values() if v}
        if len(distinct) > 1:
            pairs = ", ".join(f"{k} -> {v}" for k, v in recorded.items() if v)
            raise ModelError(f"the adapters were trained on different base models ({pairs}); "
                             "compare adapters of one base model, or pass --base to choose one")
        base = distinct.pop() if distinct else None
    if name == "vllm":
        from .runtime.vllm_engine import VllmEngine

        engine = VllmEngine(base, adapters=[s.path for s in model_specs if s.kind == "adapter"],
                            include_base=any(s.kind == "base" for s in model_specs), **vllm_options,
                            **engine_kwargs)
    else:
        from .runtime.data_parallel import from_environment
        from .runtime.engine import Engine

        engine = Engine(base, dp=from_environment(engine_kwargs.get("device")), **engine_kwargs)
    for warning in engine.warnings:  # chat-template traps (config.json template ignored, double BOS)
        print(f"evalkit: warning: {warning}", file=sys.stderr)
    return engine


def evaluate_targets(specs: Sequence[TargetSpec], *, engine_factory: Callable[[], object],
                     evaluate: Callable[..., RunRecord], stored: Optional[dict] = None,
                     inputs: Optional[dict] = None) -> list[RunRecord]:
    """Load stored results or evaluate model targets, creating the engine only if one is needed.

    ``stored`` / ``inputs`` (raw target -> RunRecord / EvalInputs) are what the preflight already read.
    """
    from .console import target_label

    stored, inputs = stored or {}, inputs or {}
    engine = None
    runs = []
    n_model = sum(1 for s in specs if s.kind != "results")
    k = 0
    for s in specs:
        if s.kind == "results":
            runs.append(stored[s.raw] if s.raw in stored else load_run(s.path))
            continue
        if engine is None:
            engine = engine_factory()
        k += 1
        engine.progress_label = target_label(s.name, k, n_model)
        target = "base" if s.kind == "base" else s.raw if s.kind == "endpoint" else s.path
        runs.append(evaluate(engine, target, name=s.name, inputs=inputs.get(s.raw)))
    return runs


def compare_targets(raws: Sequence[str], *, base: Optional[str] = None, gate=None, settings=None,
                    thresholds=None, engine_kwargs: Optional[dict] = None, suites=None, train_data=None,
                    val_data=None, allow_pickle: bool = False, stored: Optional[dict] = None,
                    inputs: Optional[dict] = None, engine=None, lm_eval=None):
    """Evaluate (or load) every target and compare them against the first (evalkit.outputs writes the files)."""
    from functools import partial

    from .comparison import compare_runs
    from .evaluate import EvalSettings, evaluate_target
    from .provenance import provenance

    specs = parse_targets(raws, minimum=2)
    evaluate = partial(evaluate_target, suites=suites, train_data=train_data, val_data=val_data,
                       settings=settings or EvalSettings(), thresholds=thresholds, allow_pickle=allow_pickle,
                       lm_eval=lm_eval)
    factory = (lambda: engine) if engine is not None else (lambda: engine_for(specs, base, **(engine_kwargs or {})))
    runs = evaluate_targets(specs, engine_factory=factory, evaluate=evaluate, stored=stored, inputs=inputs)
    return compare_runs(runs, names=[s.name for s in specs], gate=gate, provenance=provenance())
