"""A metric's registry entry, and ``@metric(...)``: register a per-answer metric beside its function.

    @metric("length_ratio", None, "answer tokens / reference tokens", "quality")
    def length_ratio(prediction: str, reference: str) -> float | None: ...

evalkit/metrics/registry.py imports every module of this package, so that is all a new metric needs
(plus its test). No imports here: every metric module can import this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

__all__ = ["MetricSpec", "metric", "REGISTERED", "GROUPS", "NOVELTY_NS", "MIA_MIN_N", "LOSS_MIN_N", "RATE_MIN_N"]

NOVELTY_NS = tuple(range(1, 9))  # RAVEN-style novelty is reported for n = 1..8
GROUPS = ("quality", "memorization", "loss", "diversity", "defects", "other")  # report table order
MIA_MIN_N, LOSS_MIN_N, RATE_MIN_N = 30, 8, 10  # why each: evalkit/metrics/registry.py


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: Optional[bool]  # None: informational, no better/worse
    description: str
    group: Literal["quality", "memorization", "loss", "diversity", "defects", "other"] = "other"
    paired: Optional[str] = None
    needs_model: bool = False  # absent from `evalkit score` results (no model ran)
    aggregation: str = "mean"  # how per-sample values become the summary value ("pooled": over all n-grams)
    unit: str = ""
    key: int = 0  # > 0: a headline figure, shown in this order by the console and summary.md; the verdict
    # requires every key metric a record of its kind can have (needs_model ones only from `evalkit eval`)
    min_n: int = 0  # below this RunRecord.n the verdict does not judge it ("not enough data")
    per_sample: Optional[Callable[[str, str], Optional[float]]] = None  # f(prediction, reference), see above
    source: str = ""  # where its summary value is computed, for metrics without ``per_sample``


REGISTERED: list[MetricSpec] = []


def metric(name: str, higher_is_better: Optional[bool], description: str, group: str = "other", **kw):
    """Register ``f(prediction, reference) -> float | None`` as a per-answer metric (summary = mean over answers)."""
    def register(fn: Callable[[str, str], Optional[float]]):
        REGISTERED.append(MetricSpec(name, higher_is_better, description, group, paired=f"sample:{name}",
                                     per_sample=fn, source=f"{fn.__module__}.{fn.__name__}", **kw))
        return fn
    return register
