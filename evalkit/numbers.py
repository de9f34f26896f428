"""The one place numbers become values and text: finiteness, and the formats of the CLI, Markdown and messages.

The report's formatting (evalkit/report/) builds on these; nothing else formats a metric by hand.
"""

from __future__ import annotations

import math
from typing import Any, Optional

__all__ = ["finite_or_none", "fmt_num", "fmt_interval", "fmt_p", "fmt_fixed", "fmt_sig", "MISSING"]

MISSING = "—"


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


def fmt_num(v: Any, *, signed: bool = False, plain: bool = False) -> str:
    """Compact display of a number.

    ``signed``: a leading "+" on positive values (deltas). ``plain``: up to 4 significant digits with
    no padding (thresholds, tick labels: 0.05, 1.5, 2e-05) instead of the table style (0.4341, 123.5).
    """
    f = finite_or_none(v)
    if f is None:
        return MISSING
    if plain:
        text = f"{f:.4g}"
    elif f == int(f) and abs(f) < 1e9:
        text = str(int(f))
    else:
        a = abs(f)
        text = f"{f:.1f}" if a >= 100 else f"{f:.3f}" if a >= 1 else f"{f:.4f}" if a >= 0.001 else f"{f:.2e}"
    return f"+{text}" if signed and f > 0 else text


def fmt_interval(lo: Any, hi: Any, *, signed: bool = False) -> str:
    """"[lo, hi]" when both ends are finite, else ""."""
    if finite_or_none(lo) is None or finite_or_none(hi) is None:
        return ""
    return f"[{fmt_num(lo, signed=signed)}, {fmt_num(hi, signed=signed)}]"


def fmt_p(p: Any, label: str = "p") -> str:
    """"p<0.001" / "p=0.041" (``label`` instead of "p"), or "" without a p-value."""
    f = finite_or_none(p)
    if f is None:
        return ""
    return f"{label}<0.001" if f < 0.001 else f"{label}={f:.3f}"


def fmt_p_shown(p_value: Any, p_adjusted: Any) -> tuple[str, str]:
    """(the p-value a report shows, the other one for its tooltip): the Holm-adjusted p, labelled
    "Holm p", whenever there is one -- it is what the significance colours use -- and the raw p beside it."""
    if finite_or_none(p_adjusted) is None:
        return fmt_p(p_value), ""
    return fmt_p(p_adjusted, "Holm p"), fmt_p(p_value, "raw p")
