"""The engine interface every evaluation goes through, and what its results look like.

An engine turns chat prompts into answers (``generate``) and conversations into per-token scores of their
assistant turns (``score``), for one *target* at a time (``use``: the base model, a LoRA adapter folder, or
an endpoint's served model name). Three implementations:

* ``hf``     :class:`evalkit.runtime.engine.Engine` — transformers + peft in this process (the default).
* ``vllm``   :class:`evalkit.runtime.vllm_engine.VllmEngine` — one vLLM ``LLM`` with every adapter as a LoRA.
* ``openai`` :class:`evalkit.engines.openai_engine.EndpointEngine` — any OpenAI-compatible server.

This module imports neither torch nor an engine: ``evaluate.py`` and the commands only see this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Protocol, Union, runtime_checkable

from ..runtime.generate import Generation  # plain dataclasses (no torch at import)
from ..runtime.loss import TokenScores

__all__ = ["ENGINE_NAMES", "Engine", "Generation", "ScoredExample", "TokenScores", "BaseInfo",
           "MINKPP_NOT_MEASURED", "has_distribution"]

ENGINE_NAMES = ("hf", "vllm")  # in-process engines chosen with --engine; endpoints come from openai:NAME targets


@dataclass(frozen=True)
class ScoredExample:
    """Scores of one conversation under the active target and (``with_base=True``) under the base model."""

    target: TokenScores
    base: Optional[TokenScores] = None


@dataclass(frozen=True)
class BaseInfo:
    """What a record needs to know about the base of a target that is not a local model (an endpoint)."""

    identity: str
    content_hash: Optional[str] = None
    spec: Optional[str] = None


MINKPP_NOT_MEASURED = ("minkpp needs the full next-token distribution at every position; the {engine} engine "
                       "returns only the log-prob of each reference token (and the top-1)")


def has_distribution(s: TokenScores) -> bool:
    """Whether the scores carry the Min-K%++ moments (mu, sigma) of the full next-token distribution."""
    mu, sigma = getattr(s, "mu", None), getattr(s, "sigma", None)
    return mu is not None and sigma is not None and len(mu) == len(s.logprobs) == len(sigma)


@runtime_checkable
class Engine(Protocol):
    """What evaluate.py needs from an engine.

    ``name``: "hf" | "vllm" | "openai"; ``version``: what produced the numbers (library versions, server),
    part of every cache key and of ``RunRecord.engine``. ``base_ref``: ``.identity`` / ``.content_hash`` of
    the base. ``can_score``: whether ``score`` works (an endpoint without prompt log-probs cannot).
    """

    name: str
    base_ref: Any
    can_score: bool

    @property
    def version(self) -> str: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...

    def use(self, target: Union[Path, str, None], *, allow_pickle: bool = False) -> str:
        """Make ``target`` active: None for the base model, an adapter folder, or an endpoint model name."""

    def generate(self, items: Iterable[Any], *, max_new_tokens: int = 128, batch_size: int = 16,
                 do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.95, num_samples: int = 1,
                 seed: int = 0, progress: bool = True) -> list[list[Generation]]:
        """Answers of the active target; outer list per item, inner per sample."""

    def score(self, conversations: Iterable[Any], *, with_base: bool = False, max_length: int = 512,
              batch_size: int = 8, progress: bool = True) -> list[ScoredExample]:
        """Teacher-forced scores of the assistant tokens of each conversation."""

    def describe(self) -> dict:
        """Provenance: engine name and version, base identity, device, ..."""
