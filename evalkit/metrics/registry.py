"""Every summary metric evalkit reports: its name, direction, and where its paired values live.

The gate, the comparison and the report look metric names up here; an unknown name gets a
"Did you mean ...?" error. To add a metric: write a pure function in evalkit/metrics/ (or
evalkit/memorization/), register it below, and put its value in RunRecord.summary.

``paired`` says where per-prompt / per-example values for a paired test come from:
  "sample:<key>"  -> Sample.metrics[<key>] of each prompt (pairs by sample id)
  "flag:<name>"   -> 1.0 if the sample carries that flag else 0.0 (pairs by sample id)
  "loss:<split>"  -> LossExample.nll of that split (pairs by example id)
  None            -> a corpus-level figure with no per-prompt pairing (delta shown, no p-value)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import GateError, did_you_mean

__all__ = ["MetricSpec", "METRICS", "get_metric", "NOVELTY_NS"]

NOVELTY_NS = tuple(range(1, 9))  # RAVEN-style novelty is reported for n = 1..8


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: Optional[bool]  # None: informational, no better/worse
    description: str
    paired: Optional[str] = None
    needs_model: bool = False  # absent from `evalkit score` results
    aggregation: str = "mean"  # how per-sample values become the summary value ("pooled": over all n-grams)
    unit: str = ""


def _specs() -> list[MetricSpec]:
    s: list[MetricSpec] = []
    add = s.append
    # --- reference overlap (rouge.py)
    for name, what in [("rouge1", "unigram"), ("rouge2", "bigram"), ("rougeL", "longest common subsequence"),
                       ("rougeLsum", "summary-level LCS")]:
        add(MetricSpec(name, True, f"ROUGE F1 ({what}) against the reference answer", paired=f"sample:{name}"))
    # --- novelty / diversity (novelty.py, diversity.py)
    for n in NOVELTY_NS:
        add(MetricSpec(f"novelty_{n}", True, f"share of generated {n}-grams found in no training answer",
                       paired=f"sample:novelty_{n}", aggregation="pooled"))
        add(MetricSpec(f"reference_novelty_{n}", None,
                       f"share of reference-answer {n}-grams found in no training answer (human baseline)",
                       aggregation="pooled"))
    add(MetricSpec("novelty_gap_4", None,
                   "novelty_4 minus reference_novelty_4: negative means the model copies more than people"))
    add(MetricSpec("distinct_1", True, "distinct unigrams / all unigrams over all outputs"))
    add(MetricSpec("distinct_2", True, "distinct bigrams / all bigrams over all outputs"))
    add(MetricSpec("mode_collapse_rate", False,
                   "share of outputs that are (near-)identical to the output for a different prompt"))
    # --- memorization (memorization/)
    add(MetricSpec("verbatim_rate", False, "share of outputs flagged verbatim (long span copied from a training answer)",
                   paired="flag:verbatim"))
    add(MetricSpec("near_verbatim_rate", False,
                   "share of outputs within normalized edit distance 0.10 of a training answer",
                   paired="flag:near_verbatim"))
    add(MetricSpec("longest_span_mean", False, "mean longest span (word tokens) shared with any training answer",
                   paired="sample:longest_span"))
    add(MetricSpec("extraction_rate", False,
                   "share of training prompts whose training answer the model reproduces (near-)exactly",
                   needs_model=True))
    add(MetricSpec("heldout_extraction_rate", None,
                   "the same rate for validation prompts against their own answers (the control)", needs_model=True))
    add(MetricSpec("extraction_gap", False, "extraction_rate minus heldout_extraction_rate (extraction beyond "
                   "the control)", needs_model=True))
    add(MetricSpec("mia_auc", False, "ROC AUC of the base-calibrated 'ref' membership score for an adapter (the "
                   "'loss' score for the base model), training vs validation answers",
                   needs_model=True))
    add(MetricSpec("mia_tpr_at_1fpr", False, "TPR at 1% FPR of the same score (only with >= 300 non-members)",
                   needs_model=True))
    add(MetricSpec("mia_tpr_at_0fp", False, "TPR at zero false positives of the same score (fewer than 300 "
                   "non-members: a 1% FPR cannot be bounded)", needs_model=True))
    for sc in ("loss", "zlib", "ref", "minkpp", "ezmia"):
        add(MetricSpec(f"mia_auc_{sc}", False, f"ROC AUC of the {sc} membership score", needs_model=True))
    add(MetricSpec("mia_auc_base_null", None, "ROC AUC of the base model's own loss score on the same members and "
                   "non-members (the null: its interval should contain 0.5)", needs_model=True))
    add(MetricSpec("mia_auc_blind", None, "ROC AUC of a model-free bag-of-words classifier (cross-validated) on the "
                   "same members and non-members: how separable the split is without any model", needs_model=True))
    add(MetricSpec("canary_extraction_rate", False, "share of planted canaries the model reproduces",
                   needs_model=True))
    add(MetricSpec("canary_exposure", False, "mean exposure (bits) of planted canaries", needs_model=True))
    # --- loss (loss.py)
    add(MetricSpec("train_loss", None, "mean NLL per assistant token on training examples", paired="loss:train",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("val_loss", False, "mean NLL per assistant token on validation examples", paired="loss:val",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("heldout_loss", False, "mean NLL per assistant token on held-out references",
                   paired="loss:heldout", needs_model=True, unit="nats/token"))
    add(MetricSpec("loss_gap_val", False, "val_loss minus train_loss (same distribution)", needs_model=True,
                   unit="nats/token"))
    add(MetricSpec("loss_gap_heldout", False, "heldout_loss minus train_loss (the held-out suites' references)",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("loss_gap_calibrated", False, "the val gap of NLL_target - NLL_base: mean_val(nll_t - nll_b) "
                   "minus mean_train(nll_t - nll_b)", needs_model=True, unit="nats/token"))
    add(MetricSpec("loss_gap", False, "alias of loss_gap_val (val_loss minus train_loss), kept for existing gates",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("train_ppl", None, "exp(train_loss)", needs_model=True))
    add(MetricSpec("val_ppl", False, "exp(val_loss)", needs_model=True))
    add(MetricSpec("heldout_ppl", False, "exp(heldout_loss)", needs_model=True))
    add(MetricSpec("base_heldout_loss", None, "the base model's heldout_loss on the same examples", needs_model=True))
    add(MetricSpec("min_val_loss_step", None, "training step with the lowest validation loss (training_log.jsonl)"))
    add(MetricSpec("val_loss_rise", False,
                   "last logged validation loss minus its minimum (positive: it rose after the best step)"))
    # --- transfer, skeleton replay, data audit (generalization.py, audit.py; docs/audit.md)
    add(MetricSpec("val_gain", None, "base model's val loss minus the adapter's (gain on validation answers)",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("heldout_gain", True, "base model's held-out loss minus the adapter's (gain on new prompts)",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("transfer_gap", False, "val_gain minus heldout_gain: gain that did not carry over to new prompts",
                   needs_model=True, unit="nats/token"))
    add(MetricSpec("skeleton_replay_rate", False,
                   "share of outputs whose skeleton (slot values masked) is within 0.10 of a training answer's",
                   paired="flag:skeleton_replay", needs_model=True))
    add(MetricSpec("reference_skeleton_replay_rate", None, "the same share for the human references (baseline)",
                   needs_model=True))
    add(MetricSpec("val_answer_near_dup_rate", None,
                   "data audit: share of validation answers within edit distance 0.10 of a training answer"))
    add(MetricSpec("val_answer_skeleton_match_rate", None,
                   "data audit: share of validation answers sharing a training answer's skeleton"))
    add(MetricSpec("train_answer_template_share", None,
                   "data audit: share of training answers covered by the 10 most common shared skeletons"))
    # --- output defects (defects.py)
    for flag in ("escaped_newline", "template_leak", "empty", "truncated", "repetition"):
        add(MetricSpec(f"{flag}_rate", False, f"share of outputs flagged {flag}", paired=f"flag:{flag}"))
    add(MetricSpec("mean_new_tokens", None, "mean generated tokens per output", needs_model=True))
    add(MetricSpec("immediate_stop_rate", False, "share of outputs that end at once (at most 1 token before the "
                                                  "end-of-turn token)", needs_model=True))
    add(MetricSpec("n_samples", None, "number of scored prompts", aggregation="count"))
    return s


METRICS: dict[str, MetricSpec] = {m.name: m for m in _specs()}


def get_metric(name: str) -> MetricSpec:
    """The spec of ``name``; a per-suite name ``<metric>@<suite>`` (scoring.py) has its metric's spec."""
    base, at, suite = name.partition("@")
    if at and suite and base in METRICS:
        return METRICS[base]
    try:
        return METRICS[name]
    except KeyError:
        raise GateError(f"unknown metric '{name}'.{did_you_mean(name, METRICS)} "
                        f"Known metrics are listed in docs/metrics.md") from None
