"""What every section shares: the target headings and the fixed set of verdict looks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..charts import N_COLOURS

__all__ = ["TargetHead", "level_of", "LEVELS", "LEVEL_RANK"]

LEVELS = ("ok", "warn", "overfit")
LEVEL_RANK = {"ok": 0, "warn": 1, "overfit": 2, "unknown": 3}  # sort order of verdicts (best first)


@dataclass(frozen=True)
class TargetHead:
    name: str
    idx: int  # position; picks the colour class c{idx % 8}
    kind: str
    level: str  # verdict: "ok" | "warn" | "overfit" | "unknown"
    is_baseline: bool = False

    @property
    def cls(self) -> str:
        return f"c{self.idx % N_COLOURS}"

    @property
    def number(self) -> str:
        """The target's short label in the sweep table and scatter ("1", "2", ...; the baseline is "0")."""
        return str(self.idx)


def level_of(level: Any) -> str:
    """A verdict level as a CSS-safe look: one of LEVELS, else "unknown"."""
    return level if level in LEVELS else "unknown"
