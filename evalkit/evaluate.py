"""`evalkit eval` and `evalkit score`: from a target (or predictions) to a RunRecord.

eval, per target (an adapter folder or "base"), through one shared :class:`~evalkit.runtime.engine.Engine`:
  0. the adapter's recorded data (evalkit.json)         -> membership integrity: sha256 and used_ids checked
  1. generate answers to the held-out suites            -> ROUGE, novelty, defects, copying (scoring.py),
                                                           pooled and per suite
  2. score train / val / held-out answers (+ base model) -> losses, loss gaps (val, held-out, calibrated),
                                                           membership inference with its base-only and
                                                           blind nulls (memorization/mia.py, blind.py)
  3. prompt with training user messages                  -> extraction rate (val prompts as the control)
  4. planted canaries (from evalkit.json)                -> canary extraction and exposure
  5. training_log.jsonl                                  -> best step, rise of the validation loss
  6. lm-eval tasks (--lm-eval-tasks)                    -> capability retention (evalkit/retention.py)
  7. thresholds                                          -> verdict
Scoring uses the adapter's training max_length (evalkit.json) unless --max-length says otherwise.
Every summary figure with an interval has it in ``intervals`` (95%) and its n in ``n``.
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
from .data import (OVERRIDE_FLAG, Conversation, PromptItem, bundled_path, load_conversations, load_predictions,
                   load_suite, membership_files, recorded_members)
from .errors import DataError, ModelError
from .engines.base import MINKPP_NOT_MEASURED, has_distribution
from .generalization import eval_audit, skeleton_replay, transfer_figures
from .records import (SCHEMA_VERSION, ExtractionExample, LossExample, MembershipExample, Notice, RunRecord, Target,
                      read_adapter_record, read_training_log, to_dict)
from .provenance import provenance
from .retention import LmEvalSpec
from .scoring import TextItem, TrainingAnswers, score_texts
from .thresholds import Thresholds
from .verdict import judge

__all__ = ["EvalSettings", "EvalInputs", "DEFAULT_SUITES", "load_inputs", "evaluate_target", "score_predictions",
           "training_log_summary", "fit_max_new_tokens", "max_length_for"]

DEFAULT_SUITES = ("prompts/eco_heldout_en.jsonl", "prompts/eco_heldout_ko.jsonl")
DEFAULT_TRAIN, DEFAULT_VAL = "benchmarks/eco/train.jsonl", "benchmarks/eco/val.jsonl"
DEFAULT_MAX_LENGTH = 512  # scoring window for the base model and adapters that recorded none
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
    max_length: Optional[int] = field(default=None, metadata={
        "help": "max tokens of a scored conversation (default: the adapter's training max_length, else 512)"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for intervals"})
    canary_candidates: int = field(default=100, metadata={"help": "random secrets ranked against each canary"})
    minkpp: bool = field(default=False, metadata={
        "help": "also compute Min-K%++ (full-vocabulary statistics, ~30% more scoring time)"})

    def __post_init__(self) -> None:
        from .errors import ConfigError

        for name in ("max_new_tokens", "batch_size", "num_samples", "train_sample", "max_length", "n_boot"):
            v = getattr(self, name)
            if name == "max_length" and v is None:
                continue
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"The '{name}' setting must be a positive int. Got {v!r} instead.")
        if self.extraction_n < 0:
            raise ConfigError(f"The 'extraction_n' setting must be >= 0. Got {self.extraction_n!r} instead.")

    def generation_settings(self) -> dict[str, Any]:
        return dict(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, do_sample=self.do_sample,
                    num_samples=self.num_samples, temperature=self.temperature, top_p=self.top_p, seed=self.seed)


# the engine's stack, recorded from the installed distributions (a fully cached run loads none of them)
ENGINE_STACK = ("torch", "transformers", "peft", "numpy", "rouge_score", "sklearn")


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


def max_length_for(settings: EvalSettings, meta: Optional[dict]) -> int:
    """--max-length when given, else the adapter's training max_length (evalkit.json), else 512."""
    if settings.max_length is not None:
        return settings.max_length
    trained = ((meta or {}).get("config") or {}).get("max_length")
    return int(trained) if isinstance(trained, int) and trained > 0 else DEFAULT_MAX_LENGTH


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


@dataclass(frozen=True)
class EvalInputs:
    """Everything a target is evaluated on, read and validated before any model is loaded."""

    meta: Optional[dict]  # the adapter's evalkit.json
    prompts: list[PromptItem]
    train: list[Conversation]
    val: list[Conversation]
    members: list[Conversation]
    files: dict[str, Path] = field(default_factory=dict)  # the train / val files measured
    problems: tuple[str, ...] = ()  # membership mismatches measured anyway (--allow-membership-mismatch)


def load_inputs(target: str | Path, *, suites: Sequence[Path] | None = None, train_data: Optional[Path] = None,
                val_data: Optional[Path] = None, limit: Optional[int] = None,
                allow_membership_mismatch: bool = False) -> EvalInputs:
    """Read and check every input of one target ("base" or an adapter folder); DataError / ModelError (exit 2).

    ``limit``: a smoke run -- the first N prompts of each suite (see ``--limit``). An adapter that recorded
    its data (evalkit.json) is measured on that data only: a missing file, another sha256 or training ids
    absent from the file are a DataError unless ``allow_membership_mismatch`` (data.membership_files).
    """
    adapter = None if str(target) == "base" or str(target).startswith("openai:") else Path(target)
    if adapter is not None and not adapter.is_dir():
        raise ModelError(f"{adapter}: no such adapter folder; pass an adapter folder from `evalkit train` or 'base'")
    meta = _training_meta(adapter)
    prompts = _suites(suites, limit)
    where = str(adapter) if adapter is not None else "base"
    files, problems = membership_files(meta, where, {"train": train_data, "val": val_data},
                                       {"train": DEFAULT_TRAIN, "val": DEFAULT_VAL},
                                       allow_mismatch=allow_membership_mismatch)
    train = load_conversations(files["train"])
    val = load_conversations(files["val"])
    members, id_problems = recorded_members(train, meta, where, allow_mismatch=allow_membership_mismatch)
    return EvalInputs(meta, prompts, train, val, members, files, tuple(problems + id_problems))


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
                          batch_size=settings.batch_size, moments=settings.minkpp)
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


def _loss_gaps(tr, va, ho, *, calibrate: bool, settings: EvalSettings):
    """loss_gap_val / _heldout / _calibrated (+ the loss_gap alias): values, 95% intervals, n."""
    from .stats import weighted_mean_diff

    def cols(pairs, calibrated=False):
        x = [s.target.nll - (s.base.nll if calibrated else 0.0) for _, s in pairs]
        return x, [float(s.target.n_tokens) for _, s in pairs]

    summary, intervals, n = {}, {}, {}
    gaps = [("loss_gap_val", va, False), ("loss_gap_heldout", ho, False)]
    if calibrate and all(s.base is not None for _, s in (*tr, *va)):
        gaps.append(("loss_gap_calibrated", va, True))
    for name, other, calibrated in gaps:
        if not tr or not other:
            continue
        value, lo, hi = weighted_mean_diff(*cols(tr, calibrated), *cols(other, calibrated),
                                           n_boot=settings.n_boot, seed=settings.seed)
        summary[name], intervals[name], n[name] = value, (lo, hi), min(len(tr), len(other))
    if "loss_gap_val" in summary:  # the old name, kept so existing gates keep working (docs/verdict.md)
        summary["loss_gap"], intervals["loss_gap"], n["loss_gap"] = (
            summary["loss_gap_val"], intervals["loss_gap_val"], n["loss_gap_val"])
    return summary, intervals, n


def _membership(members, nonmembers, *, is_base: bool, seed: int) -> list[MembershipExample]:
    from .memorization.blind import blind_scores
    from .memorization.mia import ez_score, loss_score, minkpp_score, ref_score, zlib_score

    rows = [(True, c, s) for c, s in members] + [(False, c, s) for c, s in nonmembers]
    blind = blind_scores([c.answer for _, c, _ in rows], [m for m, _, _ in rows], seed=seed) if rows else None
    out = []
    for k, (is_member, conv, s) in enumerate(rows):
        t = s.target
        scores = {"loss": loss_score(t.nll), "zlib": zlib_score(t.nll, conv.answer)}
        if has_distribution(t):  # engines that return only reference-token log-probs cannot give Min-K%++
            scores["minkpp"] = minkpp_score(t.logprobs, t.mu, t.sigma)
        if s.base is not None:
            scores["base_loss"] = loss_score(s.base.nll)  # the null: the same score, the base model alone
            if not is_base:  # for the base model both are 0 by construction
                scores["ref"] = ref_score(t.nll, s.base.nll)
                if t.correct is not None:
                    scores["ezmia"] = ez_score(t.logprobs, s.base.logprobs, t.correct)
        if blind is not None:
            scores["blind"] = blind[k]
        out.append(MembershipExample(conv.id, is_member, {k2: float(v) for k2, v in scores.items()}))
    return out


def _extraction(engine, convs: Sequence[Conversation], split: str, settings: EvalSettings, max_new_tokens: int):
    from .memorization.near_copy import normalized_edit_distance

    if not convs:
        return []
    gens = engine.generate([c.prompt_messages for c in convs], **{**settings.generation_settings(),
                                                                   "do_sample": False, "num_samples": 1,
                                                                   "max_new_tokens": max_new_tokens})
    out = []
    for c, g in zip(convs, gens):
        pred = g[0].text
        d = float(normalized_edit_distance(pred, c.answer))
        out.append(ExtractionExample(c.id, split, c.user, c.answer, pred, exact=d == 0.0, edit_distance=d))
    return out


def _extraction_figures(extraction: Sequence[ExtractionExample], settings: EvalSettings):
    """extraction_rate, heldout_extraction_rate (its control) and their difference, with intervals and n."""
    from .stats import bootstrap_ci, weighted_mean_diff

    summary, intervals, n = {}, {}, {}
    hits = {split: [1.0 if e.edit_distance <= EXTRACTION_MAX_DISTANCE else 0.0 for e in extraction if e.split == split]
            for split in ("train", "heldout")}
    for split, key in (("train", "extraction_rate"), ("heldout", "heldout_extraction_rate")):
        if hits[split]:
            summary[key] = float(np.mean(hits[split]))
            intervals[key] = bootstrap_ci(hits[split], n_boot=settings.n_boot, seed=settings.seed)
            n[key] = len(hits[split])
    if hits["train"] and hits["heldout"]:
        ones = [[1.0] * len(hits[k]) for k in ("heldout", "train")]
        value, lo, hi = weighted_mean_diff(hits["heldout"], ones[0], hits["train"], ones[1],
                                           n_boot=settings.n_boot, seed=settings.seed)
        summary["extraction_gap"], intervals["extraction_gap"] = value, (lo, hi)
        n["extraction_gap"] = min(len(hits["train"]), len(hits["heldout"]))
    return summary, intervals, n


CANARY_NEW_TOKENS = 32  # the continuation starts with the secret: 6 digits, spaces, a full stop


def _canaries(engine, meta: Optional[dict], train_by_id: dict[str, Conversation], settings: EvalSettings):
    """canary_extraction_rate and canary_exposure (memorization/canaries.py), with intervals and n."""
    from .memorization import canaries as cn
    from .stats import bootstrap_ci

    rows = [(cn.Canary(c["id"], c["text"], c["secret"]), train_by_id[c["train_id"]])
            for c in (meta or {}).get("canaries") or [] if c.get("train_id") in train_by_id]
    if not rows:
        return {}, {}, {}
    exposures = []
    for canary, conv in rows:
        # exposure: rank the true secret among random ones by the likelihood of the planted answer
        answer = cn.planted_answer(conv.answer, canary)
        candidates = cn.candidate_secrets(canary, settings.canary_candidates, seed=settings.seed)
        texts = [answer] + [answer.replace(canary.text, cn.canary_text(canary, s)) for s in candidates]
        convs = [conv.prompt_messages + [{"role": "assistant", "content": t}] for t in texts]
        scored = engine.score(convs, with_base=False, max_length=settings.max_length, batch_size=settings.batch_size)
        ll = [-s.target.nll * s.target.n_tokens for s in scored]
        exposures.append(cn.exposure(ll[0], ll[1:]))
    # extraction: the canary's own conversation up to the secret, the answer prefix continued
    prompts = [conv.prompt_messages + [{"role": "assistant", "content": cn.extraction_prefix(conv.answer, canary)}]
               for canary, conv in rows]
    gens = engine.generate(prompts, **{**settings.generation_settings(), "do_sample": False, "num_samples": 1,
                                       "max_new_tokens": CANARY_NEW_TOKENS})
    hits = [1.0 if cn.canary_extracted(canary, g[0].text) else 0.0 for (canary, _), g in zip(rows, gens)]
    summary = {"canary_extraction_rate": float(np.mean(hits)), "canary_exposure": float(np.mean(exposures))}
    intervals = {"canary_extraction_rate": bootstrap_ci(hits, n_boot=settings.n_boot, seed=settings.seed),
                 "canary_exposure": bootstrap_ci(exposures, n_boot=settings.n_boot, seed=settings.seed)}
    return summary, intervals, {k: len(rows) for k in summary}


def _mia_figures(membership: Sequence[MembershipExample], settings: EvalSettings, *, is_base: bool):
    """Summary values, intervals, n, ROC curves, notes and notices of the membership-inference evaluation."""
    from .memorization.mia import evaluate_scores

    if not any(m.member for m in membership) or all(m.member for m in membership):
        return {}, {}, {}, {}, {"warnings": ["membership inference needs both training and validation examples"]}, []
    mia = evaluate_scores(membership, n_boot=settings.n_boot, seed=settings.seed,
                          primary="loss" if is_base else None)
    # MiaSummary already maps itself onto the record's summary / intervals / n / curves
    summary = {k: float(v) for k, v in mia.summary.items() if v is not None}
    intervals = {k: tuple(v) for k, v in mia.intervals.items()}
    not_measured = {} if settings.minkpp else {"mia_auc_minkpp": "Min-K%++ is off (turn it on with --minkpp)"}
    info = {"primary": mia.primary, "best_score": mia.best_score, "tpr_reliable": mia.tpr_reliable,
            "n_member": mia.n_member, "n_nonmember": mia.n_nonmember, "warnings": list(mia.warnings),
            "not_measured": not_measured}
    notices = []
    for metric, code, what in (("mia_auc_base_null", "shifted_split", "the base model alone"),
                               ("mia_auc_blind", "separable_split", "a bag-of-words classifier without any model")):
        if metric in intervals and not intervals[metric][0] <= 0.5 <= intervals[metric][1]:
            lo, hi = intervals[metric]
            notices.append(Notice(code, f"{what} tells members from non-members ({metric} = {summary[metric]:.2f}, "
                                        f"95% CI [{lo:.2f}, {hi:.2f}], n={mia.n[metric]}): the non-members differ "
                                        f"from the members beyond training, so read every MIA figure against it"))
    return summary, intervals, mia.n, mia.roc, info, notices


# ------------------------------------------------------------------ entry points


def evaluate_target(engine, target: str | Path, *, suites: Sequence[Path] | None = None,
                    train_data: Optional[Path] = None, val_data: Optional[Path] = None,
                    settings: EvalSettings = EvalSettings(), thresholds: Optional[Thresholds] = None,
                    allow_pickle: bool = False, name: Optional[str] = None,
                    inputs: Optional[EvalInputs] = None, allow_membership_mismatch: bool = False,
                    lm_eval: Optional[LmEvalSpec] = None) -> RunRecord:
    """Evaluate one target ("base", an adapter folder, or "openai:NAME" for an endpoint engine) with an
    already-loaded engine (:class:`evalkit.engines.base.Engine`).

    ``inputs``: from :func:`load_inputs` (the command's preflight, which checks membership integrity);
    read here when not given. A membership mismatch measured anyway is a ``membership_override`` notice.
    ``lm_eval``: also run these lm-evaluation-harness tasks on the target (RunRecord.lm_eval; evalkit/retention.py).
    """
    from .runtime.models import adapter_hash

    is_base = str(target) == "base"
    served = str(target)[len("openai:"):] if str(target).startswith("openai:") else None
    adapter = None if is_base or served else Path(target)
    if inputs is None:
        inputs = load_inputs(target, suites=suites, train_data=train_data, val_data=val_data,
                             allow_membership_mismatch=allow_membership_mismatch)
    meta = inputs.meta
    settings = replace(settings, max_length=max_length_for(settings, meta))
    engine.use(served if served else adapter, allow_pickle=allow_pickle)
    engine_notices = [Notice("not_measured", m) for m in getattr(engine, "not_measured", ())]

    prompt_items, train, val, members, files = inputs.prompts, inputs.train, inputs.val, inputs.members, inputs.files
    notices = [Notice("membership_override", f"{OVERRIDE_FLAG}: {p}; membership-based figures (loss gaps, MIA, "
                                             "extraction, copying) may measure texts the adapter never saw")
               for p in inputs.problems]

    # 1. held-out generations + text metrics against every assistant turn of this target's training data
    gens = engine.generate([list(p.messages) for p in prompt_items], **settings.generation_settings())
    items = []
    for p, outs in zip(prompt_items, gens):
        for k, g in enumerate(outs):
            sid = p.id if len(outs) == 1 else f"{p.id}#{k}"
            items.append(TextItem(sid, p.suite, p.prompt, g.text, p.reference, g.n_tokens, g.hit_max_tokens, p.tags,
                                  prompt_id=p.id))
    answers = TrainingAnswers([turn for c in members for turn in c.assistant_turns()])
    text = score_texts(items, answers, n_boot=settings.n_boot, seed=settings.seed)
    summary, intervals, n = dict(text.summary), dict(text.intervals), dict(text.n)

    # 2. losses (target and base on the same examples) and membership inference
    member_sample = _sample(members, settings.train_sample, settings.seed)
    nonmember_sample = _sample(val, settings.train_sample, settings.seed)
    heldout_convs = [Conversation(p.id, tuple(p.messages) + ({"role": "assistant", "content": p.reference},),
                                  p.challenge_ids, p.source) for p in prompt_items]
    can_score = getattr(engine, "can_score", True)
    tr, va, ho = ((_loss_examples(engine, convs, settings) for convs in (member_sample, nonmember_sample,
                                                                         heldout_convs)) if can_score else ([], [], []))
    losses = [LossExample(c.id, split, float(s.target.nll), None if s.base is None else float(s.base.nll),
                          int(s.target.n_tokens)) for split, pairs in (("train", tr), ("val", va), ("heldout", ho))
              for c, s in pairs]
    for split, pairs in (("train", tr), ("val", va), ("heldout", ho)):
        v = _mean_nll(pairs)
        if v is not None:
            summary[f"{split}_loss"] = v
            summary[f"{split}_ppl"] = float(math.exp(min(v, 50.0)))
            n[f"{split}_loss"] = n[f"{split}_ppl"] = len(pairs)
    base_ho = [(c, s.base) for c, s in ho if s.base is not None]
    if base_ho:
        tok = sum(b.n_tokens for _, b in base_ho)
        summary["base_heldout_loss"] = float(sum(b.nll * b.n_tokens for _, b in base_ho) / tok)
        n["base_heldout_loss"] = len(base_ho)
    # loss_gap_val compares training answers with unseen answers of the SAME distribution (the random
    # val split), as Mireshghallah et al. do; loss_gap_heldout uses the hand-written held-out suites, which
    # add a distribution shift that even the base model shows; loss_gap_calibrated subtracts the base.
    gap_summary, gap_intervals, gap_n = _loss_gaps(tr, va, ho, calibrate=not is_base, settings=settings)
    summary.update(gap_summary)
    intervals.update(gap_intervals)
    n.update(gap_n)
    ho_by_id = {c.id: s.target.nll for c, s in ho}
    samples = tuple(replace(s, metrics={**s.metrics, "heldout_nll": ho_by_id[s.id]}) if s.id in ho_by_id else s
                    for s in text.samples)

    membership = _membership(tr, va, is_base=is_base, seed=settings.seed)
    if settings.minkpp and membership and not any("minkpp" in m.scores for m in membership):
        engine_notices.append(Notice("not_measured", MINKPP_NOT_MEASURED.format(engine=getattr(engine, "name", "?"))))
    curves = dict(text.curves)
    mia_summary, mia_intervals, mia_n, curves["roc"], mia_info, mia_notices = _mia_figures(
        membership, settings, is_base=is_base)
    summary.update(mia_summary)
    intervals.update(mia_intervals)
    n.update(mia_n)
    notices.extend(mia_notices)

    # 3. extraction: scored training prompts vs val prompts (control, same distribution), with room
    #    for the longest answer of either (tokens as scored, end marker included)
    ext_n = settings.extraction_n
    ext_pairs = {"train": _sample(tr, ext_n, settings.seed + 1), "heldout": _sample(va, ext_n, settings.seed + 1)}
    longest = max([s.target.n_tokens for pairs in ext_pairs.values() for _, s in pairs], default=0)
    ext_tokens = max(settings.max_new_tokens, longest)
    extraction = [e for split, pairs in ext_pairs.items()
                  for e in _extraction(engine, [c for c, _ in pairs], split, settings, ext_tokens)] if ext_n else []
    canaries = _canaries(engine, meta, {c.id: c for c in train}, settings) if can_score else ({}, {}, {})
    for part in _extraction_figures(extraction, settings), canaries:
        summary.update(part[0])
        intervals.update(part[1])
        n.update(part[2])

    # transfer of the gain to new prompts, skeleton replay, data audit (generalization.py)
    samples, (g_summary, g_intervals, g_n) = skeleton_replay(samples, members, catalog_names(), settings.n_boot,
                                                             settings.seed)
    t_summary, t_intervals, t_n = transfer_figures(losses, settings.n_boot, settings.seed)
    audit, audit_notices, a_summary = eval_audit(members, val, prompt_items)
    summary.update({**g_summary, **t_summary, **a_summary})
    intervals.update({**g_intervals, **t_intervals})
    n.update({**g_n, **t_n})
    notices.extend(audit_notices)

    # 5. training curve
    log = _read_training_log(adapter)
    summary.update(training_log_summary(log))

    # 6. capability retention: lm-eval tasks on the same loaded model
    lm_tasks = {}
    if lm_eval is not None:
        from .retention import summary_entries
        from .runtime.lm_eval_runner import run_lm_eval

        lm_tasks = run_lm_eval(engine, lm_eval, batch_size=settings.batch_size)
        lm_summary, lm_intervals, counts = summary_entries(lm_tasks, n_boot=settings.n_boot, seed=settings.seed)
        summary.update(lm_summary)
        intervals.update(lm_intervals)
        n = {**n, **counts}

    th = thresholds or Thresholds()
    base_ref = engine.base_ref
    tgt = Target(
        name=name or ("base" if is_base else served or adapter.resolve().name),
        kind="base" if is_base else "endpoint" if served else "adapter",
        path=None if is_base else str(target) if served else str(adapter),
        adapter_hash=None if adapter is None else adapter_hash(adapter),
        base_model=base_ref.identity,
        base_hash=base_ref.content_hash,
        training=meta,
        training_log=log,
    )
    return RunRecord(
        schema_version=SCHEMA_VERSION, kind="eval", target=tgt, summary=summary,
        verdict=judge(summary, th, intervals, n), audit=audit,
        samples=samples, intervals=intervals, losses=tuple(losses), membership=tuple(membership),
        extraction=tuple(extraction), curves=curves,
        settings={"generation": settings.generation_settings(), "eval": asdict(settings),
                  "thresholds": th.to_dict(), "loss_gap": "loss_gap = loss_gap_val = val_loss - train_loss",
                  "suites": sorted({p.suite for p in prompt_items}),
                  "data": {split: str(path) for split, path in files.items()},
                  "n_members": len(tr), "n_nonmembers": len(va), "membership_inference": mia_info,
                  "extraction_max_new_tokens": ext_tokens if ext_n else None,
                  "not_measured": dict(mia_info.get("not_measured", {})),
                  **({"lm_eval": lm_eval.settings()} if lm_eval is not None else {})},
        provenance=provenance({"engine": engine.describe()}, installed=ENGINE_STACK),
        n=n, notices=(*notices, *engine_notices), lm_eval=lm_tasks,
        engine={"name": getattr(engine, "name", "hf"), "version": getattr(engine, "version", None)},
        nearest_answers=dict(text.nearest_answers),
    )


def score_predictions(path: Path, *, train_data: Optional[Path] = None, thresholds: Optional[Thresholds] = None,
                      n_boot: int = 1000, seed: int = 0, name: Optional[str] = None) -> RunRecord:
    """`evalkit score`: text metrics on predictions made anywhere; no model is loaded."""
    preds = load_predictions(Path(path))
    items = [TextItem(p.id, Path(path).stem, p.prompt, p.prediction, p.reference) for p in preds]
    train = None
    if train_data is not None:
        train = TrainingAnswers([turn for c in load_conversations(Path(train_data)) for turn in c.assistant_turns()])
    text = score_texts(items, train, n_boot=n_boot, seed=seed)
    th = thresholds or Thresholds()
    tgt = Target(name=name or Path(path).stem, kind="predictions", path=str(path))
    return RunRecord(schema_version=SCHEMA_VERSION, kind="score", target=tgt, summary=dict(text.summary),
                     verdict=judge(text.summary, th, text.intervals, text.n, kind="score"), samples=text.samples,
                     intervals=text.intervals,
                     curves=text.curves, settings={"thresholds": th.to_dict(),
                                                   "train_data": str(train_data) if train_data else None},
                     provenance=provenance(installed=ENGINE_STACK), n=dict(text.n), nearest_answers=dict(text.nearest_answers))
