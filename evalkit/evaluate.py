"""`evalkit eval` and `evalkit score`: from a target (or predictions) to a RunRecord.

eval, per target (an adapter folder or "base"), through one shared :class:`~evalkit.runtime.engine.Engine`:
  1. generate answers to the held-out suites            -> ROUGE, novelty, defects, copying (scoring.py)
  2. score train / val / held-out answers (+ base model) -> losses, loss gap, membership inference
  3. prompt with training user messages                  -> extraction rate (val prompts as the control)
  4. planted canaries (from evalkit.json)                -> canary extraction and exposure
  5. training_log.jsonl                                  -> best step, rise of the validation loss
  6. thresholds                                          -> verdict
Everything model-side goes through the engine's cache, so a re-run recomputes nothing.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import defaults
from .audit import catalog_names
from .data import Conversation, PromptItem, bundled_path, load_conversations, load_predictions, load_suite
from .errors import DataError, ModelError
from .generalization import eval_audit, skeleton_replay, transfer_figures
from .provenance import provenance
from .records import (SCHEMA_VERSION, ExtractionExample, LossExample, MembershipExample, RunRecord, Target,
                      read_adapter_record, read_training_log, to_dict)
from .scoring import TextItem, TrainingAnswers, score_texts
from .thresholds import Thresholds
from .verdict import judge

__all__ = ["EvalSettings", "EvalInputs", "DEFAULT_SUITES", "load_inputs", "evaluate_target", "score_predictions",
           "training_log_summary", "provenance", "fit_max_new_tokens"]

DEFAULT_SUITES = ("prompts/eco_heldout_en.jsonl", "prompts/eco_heldout_ko.jsonl")
EXTRACTION_MAX_DISTANCE = 0.10  # "near-exact" reproduction, the same bound as near_verbatim


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int = field(default=defaults.MAX_NEW_TOKENS, metadata={"help": "tokens generated per answer"})
    batch_size: int = field(default=defaults.BATCH_SIZE, metadata={"help": "prompts per generation / scoring batch"})
    do_sample: bool = field(default=False, metadata={"help": "sample instead of greedy decoding"})
    num_samples: int = field(default=1, metadata={"help": "samples per prompt when sampling"})
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    train_sample: int = field(default=defaults.TRAIN_SAMPLE, metadata={"help": "training examples scored (members for MIA)"})
    extraction_n: int = field(default=defaults.EXTRACTION_N, metadata={"help": "training prompts used for the extraction test"})
    max_length: int = field(default=defaults.MAX_LENGTH, metadata={"help": "max tokens of a scored conversation"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for intervals"})
    canary_candidates: int = field(default=100, metadata={"help": "random secrets ranked against each canary"})

    def __post_init__(self) -> None:
        from .errors import ConfigError

        for name in ("max_new_tokens", "batch_size", "num_samples", "train_sample", "max_length", "n_boot"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"The '{name}' setting must be a positive int. Got {v!r} instead.")
        if self.extraction_n < 0:
            raise ConfigError(f"The 'extraction_n' setting must be >= 0. Got {self.extraction_n!r} instead.")

    def generation_settings(self) -> dict[str, Any]:
        return dict(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, do_sample=self.do_sample,
                    num_samples=self.num_samples, temperature=self.temperature, top_p=self.top_p, seed=self.seed)


# ------------------------------------------------------------------ inputs


def _suites(paths: Sequence[Path] | None, limit: Optional[int] = None) -> list[PromptItem]:
    paths = list(paths) if paths else [bundled_path(p) for p in DEFAULT_SUITES]
    items: list[PromptItem] = []
    seen: dict[tuple[str, str], str] = {}
    for p in paths:
        for it in load_suite(Path(p), require_reference=True)[:limit]:
            key = (it.suite, it.id)
            if key in seen:
                raise DataError(f"{it.source}: suite '{it.suite}' given twice; pass each --suite once")
            seen[key] = it.source
            items.append(it)
    return items


def _training_meta(adapter: Optional[Path]) -> Optional[dict]:
    """The adapter's evalkit.json as plain data (validated by records.read_adapter_record)."""
    record = read_adapter_record(adapter) if adapter is not None else None
    return to_dict(record) if record is not None else None


def _data_path(explicit: Optional[Path], meta: Optional[dict], split: str, default: str) -> Path:
    if explicit is not None:
        return Path(explicit)
    recorded = ((meta or {}).get("data") or {}).get(split, {}).get("path")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return bundled_path(default)


def training_log_summary(rows: Sequence[dict]) -> dict[str, float]:
    """Step of minimum validation loss and how far the last validation loss rose above it."""
    vals = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    if not vals:
        return {}
    best_step, best = min(vals, key=lambda sv: sv[1])
    return {"min_val_loss_step": float(best_step), "val_loss_rise": float(vals[-1][1] - best)}


def _read_training_log(adapter: Optional[Path]) -> tuple[dict, ...]:
    return tuple(to_dict(row) for row in read_training_log(adapter)) if adapter is not None else ()


def _sample(items: Sequence, n: int, seed: int) -> list:
    items = list(items)
    if len(items) <= n:
        return items
    rng = random.Random(seed)
    return [items[i] for i in sorted(rng.sample(range(len(items)), n))]


def _members(train: list[Conversation], meta: Optional[dict]) -> list[Conversation]:
    """The training conversations the adapter actually saw (train_subset records their ids)."""
    used = (((meta or {}).get("data") or {}).get("train") or {}).get("used_ids")
    if used:
        wanted = set(used)
        chosen = [c for c in train if c.id in wanted]
        if chosen:
            return chosen
    return train


@dataclass(frozen=True)
class EvalInputs:
    """Everything a target is evaluated on, read and validated before any model is loaded."""

    meta: Optional[dict]  # the adapter's evalkit.json
    prompts: list[PromptItem]
    train: list[Conversation]
    val: list[Conversation]
    members: list[Conversation]


def load_inputs(target: str | Path, *, suites: Sequence[Path] | None = None, train_data: Optional[Path] = None,
                val_data: Optional[Path] = None, limit: Optional[int] = None) -> EvalInputs:
    """Read and check every input of one target ("base" or an adapter folder); DataError / ModelError (exit 2).

    ``limit``: a smoke run -- the first N prompts of each suite (see ``--limit``).
    """
    adapter = None if str(target) == "base" else Path(target)
    if adapter is not None and not adapter.is_dir():
        raise ModelError(f"{adapter}: no such adapter folder; pass an adapter folder from `evalkit train` or 'base'")
    meta = _training_meta(adapter)
    prompts = _suites(suites, limit)
    train = load_conversations(_data_path(train_data, meta, "train", "benchmarks/eco/train.jsonl"))
    val = load_conversations(_data_path(val_data, meta, "val", "benchmarks/eco/val.jsonl"))
    return EvalInputs(meta, prompts, train, val, _members(train, meta))


MAX_NEW_TOKENS_CAP = 512  # the default never asks for more than this per answer


def fit_max_new_tokens(reference_tokens: Sequence[int]) -> int:
    """The default ``max_new_tokens``: the longest reference answer plus a quarter (and 16), capped.

    A healthy adapter answers about as long as the references; a budget below that cuts its answers
    (``truncated_rate``) and ROUGE is then computed on cut answers.
    """
    longest = max(reference_tokens, default=0)
    return max(16, min(MAX_NEW_TOKENS_CAP, math.ceil(longest * 1.25) + 16))


# ------------------------------------------------------------------ model-side measurements


def _loss_examples(engine, convs: Sequence[Conversation], settings: EvalSettings):
    scores = engine.score([list(c.messages) for c in convs], with_base=True, max_length=settings.max_length,
                          batch_size=settings.batch_size)
    out = []
    for c, s in zip(convs, scores):
        if s.target.n_tokens == 0:
            continue  # answer fully truncated by max_length
        out.append((c, s))
    return out


def _mean_nll(pairs) -> Optional[float]:
    # token-weighted: mean NLL per assistant token over the whole split (the usual eval loss)
    tok = sum(s.target.n_tokens for _, s in pairs)
    return float(sum(s.target.nll * s.target.n_tokens for _, s in pairs) / tok) if tok else None


def _membership(members, nonmembers) -> list[MembershipExample]:
    from .memorization.mia import loss_score, minkpp_score, ref_score, zlib_score

    out = []
    for is_member, pairs in ((True, members), (False, nonmembers)):
        for conv, s in pairs:
            t = s.target
            scores = {"loss": loss_score(t.nll), "zlib": zlib_score(t.nll, conv.answer),
                      "minkpp": minkpp_score(t.logprobs, t.mu, t.sigma)}
            if s.base is not None:
                scores["ref"] = ref_score(t.nll, s.base.nll)
            out.append(MembershipExample(conv.id, is_member, {k: float(v) for k, v in scores.items()}))
    return out


def _extraction(engine, convs: Sequence[Conversation], split: str, settings: EvalSettings):
    from .memorization.near_copy import normalized_edit_distance

    if not convs:
        return []
    gens = engine.generate([c.prompt_messages for c in convs], **{**settings.generation_settings(),
                                                                   "do_sample": False, "num_samples": 1})
    out = []
    for c, g in zip(convs, gens):
        pred = g[0].text
        d = float(normalized_edit_distance(pred, c.answer))
        out.append(ExtractionExample(c.id, split, c.user, c.answer, pred, exact=d == 0.0, edit_distance=d))
    return out


def _canaries(engine, meta: Optional[dict], train_by_id: dict[str, Conversation], settings: EvalSettings):
    from .memorization import canaries as cn

    planted = (meta or {}).get("canaries") or []
    if not planted:
        return {}
    summary: dict[str, float] = {}
    prompts, exposures, hits = [], [], []
    for c in planted:
        conv = train_by_id.get(c.get("train_id"))
        if conv is None:
            continue
        canary = cn.Canary(c["id"], c["text"], c["secret"])
        prompts.append(conv.prompt_messages)
        # exposure: rank the true secret among random ones by the likelihood of the planted answer
        answer = conv.answer if c["text"] in conv.answer else conv.answer.rstrip() + " " + c["text"]  # as plant() does
        candidates = cn.candidate_secrets(canary, settings.canary_candidates, seed=settings.seed)
        texts = [answer] + [answer.replace(c["text"], c["text"].replace(c["secret"], s)) for s in candidates]
        convs = [conv.prompt_messages + [{"role": "assistant", "content": t}] for t in texts]
        scored = engine.score(convs, with_base=False, max_length=settings.max_length,
                              batch_size=settings.batch_size)
        ll = [-s.target.nll * s.target.n_tokens for s in scored]
        exposures.append(cn.exposure(ll[0], ll[1:]))
    if prompts:
        gens = engine.generate(prompts, **{**settings.generation_settings(), "do_sample": False,
                                           "num_samples": 1, "max_new_tokens": max(settings.max_new_tokens, 128)})
        for c, g in zip([c for c in planted if c.get("train_id") in train_by_id], gens):
            hits.append(1.0 if cn.canary_extracted(cn.Canary(c["id"], c["text"], c["secret"]), g[0].text) else 0.0)
        summary["canary_extraction_rate"] = float(np.mean(hits))
        summary["canary_exposure"] = float(np.mean(exposures))
    return summary


def _mia_figures(membership: Sequence[MembershipExample], settings: EvalSettings):
    """Summary values, intervals, ROC curves and notes of the membership-inference evaluation."""
    from .memorization.mia import evaluate_scores

    if not any(m.member for m in membership) or all(m.member for m in membership):
        return {}, {}, {}, {"warnings": ["membership inference needs both training and validation examples"]}
    mia = evaluate_scores(membership, n_boot=settings.n_boot, seed=settings.seed)
    # MiaSummary already maps itself onto the record's summary / intervals / curves
    summary = {k: float(v) for k, v in mia.summary.items() if v is not None}
    intervals = {k: tuple(v) for k, v in mia.intervals.items()}
    roc = mia.roc
    info = {"primary": mia.primary, "best_score": mia.best_score, "tpr_reliable": mia.tpr_reliable,
            "n_member": mia.n_member, "n_nonmember": mia.n_nonmember, "warnings": list(mia.warnings)}
    return summary, intervals, roc, info


# ------------------------------------------------------------------ entry points


def evaluate_target(engine, target: str | Path, *, suites: Sequence[Path] | None = None,
                    train_data: Optional[Path] = None, val_data: Optional[Path] = None,
                    settings: EvalSettings = EvalSettings(), thresholds: Optional[Thresholds] = None,
                    allow_pickle: bool = False, name: Optional[str] = None,
                    inputs: Optional[EvalInputs] = None) -> RunRecord:
    """Evaluate one target ("base" or an adapter folder) with an already-loaded engine.

    ``inputs``: from :func:`load_inputs` (the command's preflight); read here when not given.
    """
    from .runtime.models import adapter_hash

    is_base = str(target) == "base"
    adapter = None if is_base else Path(target)
    if inputs is None:
        inputs = load_inputs(target, suites=suites, train_data=train_data, val_data=val_data)
    meta = inputs.meta
    engine.use(adapter, allow_pickle=allow_pickle)

    prompt_items, train, val, members = inputs.prompts, inputs.train, inputs.val, inputs.members

    # 1. held-out generations + text metrics against this target's training answers
    gens = engine.generate([list(p.messages) for p in prompt_items], **settings.generation_settings())
    items = []
    for p, outs in zip(prompt_items, gens):
        for k, g in enumerate(outs):
            sid = p.id if len(outs) == 1 else f"{p.id}#{k}"
            items.append(TextItem(sid, p.suite, p.prompt, g.text, p.reference, g.n_tokens, g.hit_max_tokens, p.tags))
    answers = TrainingAnswers([(c.id, c.answer) for c in members])
    text = score_texts(items, answers, n_boot=settings.n_boot, seed=settings.seed)
    summary = dict(text.summary)

    # 2. losses (target and base on the same examples) and membership inference
    member_sample = _sample(members, settings.train_sample, settings.seed)
    nonmember_sample = _sample(val, settings.train_sample, settings.seed)
    heldout_convs = [Conversation(p.id, tuple(p.messages) + ({"role": "assistant", "content": p.reference},),
                                  p.challenge_ids, p.source) for p in prompt_items]
    tr = _loss_examples(engine, member_sample, settings)
    va = _loss_examples(engine, nonmember_sample, settings)
    ho = _loss_examples(engine, heldout_convs, settings)
    losses = [LossExample(c.id, split, float(s.target.nll), None if s.base is None else float(s.base.nll),
                          int(s.target.n_tokens)) for split, pairs in (("train", tr), ("val", va), ("heldout", ho))
              for c, s in pairs]
    for split, pairs in (("train", tr), ("val", va), ("heldout", ho)):
        v = _mean_nll(pairs)
        if v is not None:
            summary[f"{split}_loss"] = v
            summary[f"{split}_ppl"] = float(math.exp(min(v, 50.0)))
    base_ho = [(c, s.base) for c, s in ho if s.base is not None]
    if base_ho:
        tok = sum(b.n_tokens for _, b in base_ho)
        summary["base_heldout_loss"] = float(sum(b.nll * b.n_tokens for _, b in base_ho) / tok)
    # The loss gap compares training answers with unseen answers of the SAME distribution (the random
    # val split), as Mireshghallah et al. do; the hand-written held-out suites add a distribution shift
    # that even the base model shows, so they are used only when no val split exists.
    other = summary.get("val_loss", summary.get("heldout_loss"))
    if other is not None and "train_loss" in summary:
        summary["loss_gap"] = other - summary["train_loss"]
    ho_by_id = {c.id: s.target.nll for c, s in ho}
    samples = tuple(replace(s, metrics={**s.metrics, "heldout_nll": ho_by_id[s.id]}) if s.id in ho_by_id else s
                    for s in text.samples)

    membership = _membership(tr, va)
    intervals = dict(text.intervals)
    curves = dict(text.curves)
    mia_summary, mia_intervals, curves["roc"], mia_info = _mia_figures(membership, settings)
    summary.update(mia_summary)
    intervals.update(mia_intervals)

    # 3. extraction: training prompts vs val prompts (control, same distribution)
    ext_n = settings.extraction_n
    extraction = (_extraction(engine, _sample(members, ext_n, settings.seed + 1), "train", settings)
                  + _extraction(engine, _sample(val, ext_n, settings.seed + 1), "heldout", settings)) if ext_n else []
    for split, key in (("train", "extraction_rate"), ("heldout", "heldout_extraction_rate")):
        rows = [e for e in extraction if e.split == split]
        if rows:
            summary[key] = float(np.mean([e.edit_distance <= EXTRACTION_MAX_DISTANCE for e in rows]))

    # transfer of the gain to new prompts, skeleton replay, data audit (generalization.py)
    samples, (g_summary, g_intervals, n) = skeleton_replay(samples, members, catalog_names(), settings.n_boot,
                                                           settings.seed)
    t_summary, t_intervals, t_n = transfer_figures(losses, settings.n_boot, settings.seed)
    audit, notices, a_summary = eval_audit(members, val, prompt_items)
    summary.update({**g_summary, **t_summary, **a_summary})
    intervals.update({**g_intervals, **t_intervals})
    n = {**n, **t_n}

    # 4. canaries, 5. training curve
    summary.update(_canaries(engine, meta, {c.id: c for c in train}, settings))
    log = _read_training_log(adapter)
    summary.update(training_log_summary(log))

    th = thresholds or Thresholds()
    base_ref = engine.base_ref
    tgt = Target(
        name=name or ("base" if is_base else adapter.resolve().name),
        kind="base" if is_base else "adapter",
        path=None if is_base else str(adapter),
        adapter_hash=None if is_base else adapter_hash(adapter),
        base_model=base_ref.identity,
        base_hash=base_ref.content_hash,
        training=meta,
        training_log=log,
    )
    return RunRecord(
        schema_version=SCHEMA_VERSION, kind="eval", target=tgt, summary=summary,
        verdict=judge(summary, th, intervals, n, kind="eval"), n=n, notices=notices, audit=audit,
        samples=samples, intervals=intervals, losses=tuple(losses), membership=tuple(membership),
        extraction=tuple(extraction), curves=curves,
        settings={"generation": settings.generation_settings(), "eval": asdict(settings),
                  "thresholds": th.to_dict(), "loss_gap": "val_loss - train_loss" if "val_loss" in summary
                  else "heldout_loss - train_loss",
                  "suites": sorted({p.suite for p in prompt_items}),
                  "n_members": len(tr), "n_nonmembers": len(va), "membership_inference": mia_info},
        provenance=provenance({"engine": engine.describe()}),
    )


def score_predictions(path: Path, *, train_data: Optional[Path] = None, thresholds: Optional[Thresholds] = None,
                      n_boot: int = 1000, seed: int = 0, name: Optional[str] = None) -> RunRecord:
    """`evalkit score`: text metrics on predictions made anywhere; no model is loaded."""
    preds = load_predictions(Path(path))
    items = [TextItem(p.id, Path(path).stem, p.prompt, p.prediction, p.reference) for p in preds]
    train = None
    if train_data is not None:
        train = TrainingAnswers([(c.id, c.answer) for c in load_conversations(Path(train_data))])
    text = score_texts(items, train, n_boot=n_boot, seed=seed)
    th = thresholds or Thresholds()
    tgt = Target(name=name or Path(path).stem, kind="predictions", path=str(path))
    return RunRecord(schema_version=SCHEMA_VERSION, kind="score", target=tgt, summary=dict(text.summary),
                     verdict=judge(text.summary, th, text.intervals, text.n, kind="score"), samples=text.samples,
                     intervals=text.intervals, n=dict(text.n),
                     curves=text.curves, settings={"thresholds": th.to_dict(),
                                                   "train_data": str(train_data) if train_data else None},
                     provenance=provenance())
