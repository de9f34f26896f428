"""The report's number formatting: evalkit/numbers.py's formatter (shared with the CLI and summary.md).

Every number the HTML report and summary.md show goes through :func:`fmt_num`: integers as
integers, otherwise 3-4 significant digits, a missing or non-finite value as an em dash.
"""

from __future__ import annotations

from typing import Any, Optional

from ..numbers import finite_or_none as finite
from ..numbers import MISSING, fmt_interval, fmt_num, fmt_p

__all__ = ["finite", "fmt_num", "fmt_interval", "fmt_p", "sort_key", "MISSING"]


def sort_key(v: Optional[Any]) -> str:
    """A table cell's data-sort value: the number as text, or "" (sorted last)."""
    f = finite(v)
    return "" if f is None else repr(f)
