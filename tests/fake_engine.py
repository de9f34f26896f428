"""A model-free stand-in for :class:`evalkit.runtime.engine.Engine`: evaluate_target end to end in milliseconds.

Answers and NLLs are functions the test chooses, so every figure can be computed by hand:

    engine = FakeEngine(answer=lambda messages: "...", nll=lambda messages, adapter: 1.0)

``answer(messages, sample)`` gives the text of one sample; ``nll(messages, adapter)`` the mean NLL of a
conversation's answer under the active adapter (None: the base model); every answer has ``n_tokens(messages)``
scored tokens (default 10), each with log p = -nll, all of them argmax-wrong (for EZ-MIA). ``scored_max_length``
records the max_length of every score call.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional

import numpy as np

from evalkit.runtime.engine import ScoredExample
from evalkit.runtime.generate import Generation
from evalkit.runtime.loss import TokenScores

_FIELDS = {f.name for f in dataclasses.fields(TokenScores)}


class FakeEngine:
    def __init__(self, *, answer: Callable = lambda msgs, k: "A plain answer.",
                 nll: Callable = lambda msgs, adapter: 2.0, n_tokens: Callable = lambda msgs: 10):
        self.base_ref = SimpleNamespace(identity="fake-base", content_hash="f" * 64)
        self.answer, self.nll, self.n_tokens = answer, nll, n_tokens
        self.active: Optional[str] = None
        self.scored_max_length: list[int] = []

    def use(self, adapter, *, allow_pickle: bool = False):
        self.active = None if adapter is None else Path(adapter).name
        return self.active or "base"

    def generate(self, items, *, num_samples: int = 1, max_new_tokens: int = 96, **_):
        return [[Generation(self.answer(list(m), k), 5, False) for k in range(num_samples)] for m in items]

    def _scores(self, msgs, adapter):
        n = self.n_tokens(msgs)
        v = float(self.nll(msgs, adapter))
        # TokenScores before argmax correctness had required Min-K%++ moments: build either shape, so these
        # tests also run (and fail for the measured reason) against older code
        extra = {"correct": np.zeros(n, dtype=bool)} if "correct" in _FIELDS else {
            "mu": np.zeros(n, dtype=np.float32), "sigma": np.ones(n, dtype=np.float32)}
        return TokenScores(nll=v, n_tokens=n, logprobs=np.full(n, -v, dtype=np.float32), **extra)

    def score(self, convs, *, with_base: bool = False, max_length: int = 512, moments: bool = False, **_):
        self.scored_max_length.append(max_length)
        out = []
        for c in convs:
            msgs = list(c)
            base = self._scores(msgs, None) if with_base else None
            out.append(ScoredExample(self._scores(msgs, self.active) if self.active else (base or self._scores(msgs, None)),
                                     base))
        return out

    def describe(self) -> dict:
        return {"engine": "fake"}


def fake_adapter(folder: Path, *, meta: Optional[dict] = None) -> Path:
    """An adapter folder with the files adapter_hash reads and, when given, an evalkit.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"target_modules": ["q_proj"]}), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(b"fake weights")
    if meta is not None:
        (folder / "evalkit.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder
