"""The report's one number formatter (and the two small helpers built on it).

Every number the HTML report and summary.md show goes through :func:`fmt_num`: integers as
integers, otherwise 3-4 significant digits, a missing or non-finite value as an em dash.
"""

from __future__ import annotations

from typing import Any, Optional

from ..comparison import finite_or_none as finite

__all__ = ["finite", "fmt_num", "fmt_interval", "fmt_p", "sort_key"]

MISSING = "—"


def fmt_num(v: Any, *, signed: bool = False, plain: bool = False) -> str:
    """Compact display of a number.

    ``signed``: a leading "+" on positive values (deltas). ``plain``: up to 4 significant digits with
    no padding (thresholds, tick labels: 0.05, 1.5, 2e-05) instead of the table style (0.4341, 123.5).
    """
    f = finite(v)
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
    if finite(lo) is None or finite(hi) is None:
        return ""
    return f"[{fmt_num(lo, signed=signed)}, {fmt_num(hi, signed=signed)}]"


def fmt_p(p: Any) -> str:
    """"p<0.001" / "p=0.041", or "" without a p-value."""
    f = finite(p)
    if f is None:
        return ""
    return "p<0.001" if f < 0.001 else f"p={f:.3f}"


def sort_key(v: Optional[Any]) -> str:
    """A table cell's data-sort value: the number as text, or "" (sorted last)."""
    f = finite(v)
    return "" if f is None else repr(f)
