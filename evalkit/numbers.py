"""The one place numbers become values and text: finiteness, and the formats of the CLI, Markdown and messages.

The report's formatting (evalkit/report/) builds on these; nothing else formats a metric by hand.
"""

from __future__ import annotations

import math
from typing import Any, Optional

__all__ = ["finite_or_none", "fmt_fixed", "fmt_sig", "fmt_p"]


def finite_or_none(v: Any) -> Optional[float]:
    """float(v) when it is a finite number, else None (bools, text, NaN and inf are not values)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_fixed(v: Any, digits: int = 3, *, signed: bool = False, missing: str = "—", minus: str = "-") -> str:
    """Fixed decimals (tables): 0.412, +0.030; ``minus="−"`` for typeset Markdown."""
    f = finite_or_none(v)
    if f is None:
        return missing
    return (f"{f:+.{digits}f}" if signed else f"{f:.{digits}f}").replace("-", minus)


def fmt_sig(v: Any, digits: int = 4, *, missing: str = "n/a") -> str:
    """Significant digits (messages, thresholds): 0.05, 1.5, 2e-05, 0."""
    f = finite_or_none(v)
    return missing if f is None else ("0" if f == 0 else f"{f:.{digits}g}")


def fmt_p(p: Any, *, missing: str = "") -> str:
    f = finite_or_none(p)
    return missing if f is None else ("p<0.001" if f < 0.001 else f"p={f:.3f}")
