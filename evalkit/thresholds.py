"""Every verdict threshold: defaults from evalkit/policies/verdict.toml ``[thresholds]`` (each number commented
there with its source), then a TOML file of ``name = value`` (``--thresholds FILE``), then ``name=value``
overrides (``--threshold loss_gap_overfit=0.8``). Rules of the verdict and of the gate name them.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .errors import ConfigError, did_you_mean
from .io import parse_toml

__all__ = ["Thresholds", "load_thresholds", "default_thresholds", "POLICY_FILE"]

POLICY_FILE = "policies/verdict.toml"


@functools.lru_cache(maxsize=None)
def _policy() -> dict[str, Any]:
    raw = resources.files("evalkit").joinpath(POLICY_FILE).read_text(encoding="utf-8")
    return parse_toml(raw, f"evalkit/{POLICY_FILE}", ConfigError)


def default_thresholds() -> dict[str, float]:
    return dict(_policy()["thresholds"])


def _number(name: str, value: Any, where: str = "") -> float:
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise ConfigError(f"{where}The '{name}' threshold must be a number. Got {value!r} instead.")
    return v


class Thresholds(Mapping[str, float]):
    """name -> value; ``Thresholds(loss_gap_overfit=0.8)`` overrides defaults; ``th.loss_gap_overfit`` reads one."""

    def __init__(self, **overrides: float):
        values = default_thresholds()
        for k, v in overrides.items():
            if k not in values:
                raise ConfigError(f"unknown threshold '{k}'.{did_you_mean(k, values)}")
            values[k] = _number(k, v)
        self._values = values

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> float:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict[str, float]:
        return dict(self._values)


def load_thresholds(path: Path | None = None, overrides: Iterable[str] = ()) -> Thresholds:
    """Defaults, then a TOML file of ``name = value`` (or a ``[thresholds]`` table), then ``name=value`` items."""
    names = default_thresholds()
    values: dict[str, float] = {}
    if path is not None:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ConfigError(f"{path}: no such thresholds file (or not readable UTF-8 text)") from None
        data = parse_toml(raw, str(path), ConfigError)
        data = data.get("thresholds", data)
        for k, v in data.items():
            if k not in names:
                raise ConfigError(f"{path}: unknown threshold '{k}'.{did_you_mean(k, names)}")
            values[k] = _number(k, v, f"{path}: ")
    for item in overrides:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep:
            raise ConfigError(f"threshold override {item!r} must look like name=value")
        if k not in names:
            raise ConfigError(f"unknown threshold '{k}'.{did_you_mean(k, names)}")
        values[k] = _number(k, v)
    return Thresholds(**values)
