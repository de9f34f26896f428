"""Answer length against the reference: a verbose or clipped adapter shows here before ROUGE moves."""

from __future__ import annotations

from typing import Optional

from .spec import metric
from .tokenize import tokens

__all__ = ["length_ratio"]


@metric("length_ratio", None, "answer tokens / reference tokens (1 = as long as the reference)", "quality")
def length_ratio(prediction: str, reference: str) -> Optional[float]:
    """Tokens of the prediction / tokens of the reference (evalkit's tokenizer); None for an empty reference."""
    ref = len(tokens(reference))
    return len(tokens(prediction)) / ref if ref else None
