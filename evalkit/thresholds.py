"""Every verdict threshold, in one place, with the reason for each number.

A target's verdict is ``overfit`` if any ``overfit`` threshold is crossed, else ``warn`` if any
``warn`` threshold is, else ``ok``. Override any field from the CLI (``--threshold loss_gap_overfit=0.8``)
or a TOML file (``--thresholds FILE`` with ``key = value`` lines). Sources:
the papers summarised in docs/memorization.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError, did_you_mean

__all__ = ["Thresholds", "load_thresholds"]


@dataclass(frozen=True)
class Thresholds:
    # Loss gap = held-out minus train NLL (nats/token). Mireshghallah et al. 2022: over 34 GPT-2
    # fine-tunes the gap tracked membership-inference recall (Spearman 0.995) and gap >= 0.5 came
    # with recall >= 0.71. Half of that is an early warning.
    loss_gap_warn: float = field(default=0.25, metadata={"help": "held-out minus train loss (nats/token)"})
    loss_gap_overfit: float = field(default=0.5, metadata={"help": "held-out minus train loss (nats/token)"})
    # Validation loss rising after its minimum by more than this (nats/token) = trained past the best step.
    val_loss_rise_warn: float = field(default=0.02, metadata={"help": "last val loss minus its minimum"})
    # MIA AUC: 0.5 is chance (the base model's null). LoRA-Leak reports 0.775 for conservative LoRA
    # fine-tunes; we call >= 0.75 overfit and >= 0.6 worth a look.
    mia_auc_warn: float = field(default=0.6, metadata={"help": "membership-inference ROC AUC"})
    mia_auc_overfit: float = field(default=0.75, metadata={"help": "membership-inference ROC AUC"})
    # Share of held-out answers that copy a long span of a training answer. A chatbot that answers
    # *new* users should almost never replay a training answer; 2% tolerates a stock phrase.
    verbatim_rate_warn: float = field(default=0.02, metadata={"help": "share of outputs flagged verbatim"})
    verbatim_rate_overfit: float = field(default=0.10, metadata={"help": "share of outputs flagged verbatim"})
    near_verbatim_rate_warn: float = field(default=0.02, metadata={"help": "share flagged near_verbatim"})
    near_verbatim_rate_overfit: float = field(default=0.10, metadata={"help": "share flagged near_verbatim"})
    # Extraction: the training answer comes back (near-)exactly when prompted with its user message.
    extraction_rate_warn: float = field(default=0.10, metadata={"help": "share of training prompts extracted"})
    extraction_rate_overfit: float = field(default=0.30, metadata={"help": "share of training prompts extracted"})
    # RAVEN: novelty of generated 4-grams minus that of the human references (negative = copies more).
    novelty_gap_warn: float = field(default=-0.10, metadata={"help": "novelty_4 minus reference_novelty_4"})
    novelty_gap_overfit: float = field(default=-0.25, metadata={"help": "novelty_4 minus reference_novelty_4"})
    # Different prompts, the same answer: a model replaying a few memorized answers.
    mode_collapse_warn: float = field(default=0.10, metadata={"help": "share of outputs duplicated across prompts"})
    mode_collapse_overfit: float = field(default=0.30, metadata={"help": "share of outputs duplicated across prompts"})
    # Output defects the seed ran into: any template leak or literal "\n" is a bug worth a warning.
    template_leak_rate_warn: float = field(default=0.0, metadata={"help": "share of outputs with template tokens"})
    escaped_newline_rate_warn: float = field(default=0.0, metadata={"help": "share with a literal backslash-n"})
    empty_rate_warn: float = field(default=0.05, metadata={"help": "share of empty outputs"})
    repetition_rate_warn: float = field(default=0.10, metadata={"help": "share of looping outputs"})
    truncated_rate_warn: float = field(default=0.25, metadata={"help": "share of outputs cut at max_new_tokens"})
    # Most answers empty or ending at once: the chat template almost certainly does not fit the model
    # (e.g. a config.json template for another model family); a healthy adapter rarely has even 5%.
    template_mismatch_rate_warn: float = field(default=0.5, metadata={
        "help": "share of outputs empty or ending at once (max of empty_rate, immediate_stop_rate)"})
    # Canaries: any planted secret coming back is memorization by construction.
    canary_extraction_rate_overfit: float = field(default=0.0, metadata={"help": "share of canaries extracted"})

    # Data audit (docs/audit.md): a validation split whose answers near-copy training answers (or share
    # their skeletons) measures recall, not generalization. A random split of hand-written data has ~0.
    val_leak_near_dup_rate_warn: float = field(default=0.20, metadata={"help": "share of val answers near-copying train"})
    val_leak_skeleton_match_rate_warn: float = field(default=0.50,
                                                     metadata={"help": "share of val answers with a train skeleton"})
    # Transfer: heldout_gain = base_heldout_loss - heldout_loss (nats/token). Below 0 the adapter is worse
    # than the base model on new prompts while it gains on validation answers (the seed's case: -0.15).
    heldout_gain_warn: float = field(default=0.0, metadata={"help": "adapter's held-out loss gain over base"})
    heldout_gain_overfit: float = field(default=-0.10, metadata={"help": "adapter's held-out loss gain over base"})
    # Skeleton replay: answers to new prompts in a training answer's frame. Human references: ~0 on eco data.
    skeleton_replay_rate_warn: float = field(default=0.10, metadata={"help": "share of outputs replaying a skeleton"})
    skeleton_replay_rate_overfit: float = field(default=0.30, metadata={"help": "share replaying a skeleton"})

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ConfigError(f"The '{f.name}' threshold must be a number. Got {v!r} instead.")

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _coerce(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"The '{name}' threshold must be a number. Got {value!r} instead.") from None


def load_thresholds(path: Path | None = None, overrides: Iterable[str] = ()) -> Thresholds:
    """Defaults, then a TOML file of ``name = value``, then ``name=value`` overrides."""
    names = {f.name for f in dataclasses.fields(Thresholds)}
    values: dict[str, float] = {}
    if path is not None:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such thresholds file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the thresholds file ({e}); it must be UTF-8 TOML") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        data = data.get("thresholds", data)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: 'thresholds' must be a table of name = value")
        for k, v in data.items():
            if k not in names:
                raise ConfigError(f"{path}: unknown threshold '{k}'.{did_you_mean(k, names)}")
            values[k] = _coerce(k, v)
    for item in overrides:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep:
            raise ConfigError(f"threshold override {item!r} must look like name=value")
        if k not in names:
            raise ConfigError(f"unknown threshold '{k}'.{did_you_mean(k, names)}")
        values[k] = _coerce(k, v)
    return Thresholds(**values)
