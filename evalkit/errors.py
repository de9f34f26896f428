"""One exception family for every user-facing failure.

The CLI prints ``str(err)`` on one line and exits with ``err.exit_code`` (2).
Messages say what was wrong, where (``file:line`` when there is one) and what to do.
Anything that is *not* an EvalkitError is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = [
    "EvalkitError",
    "ConfigError",
    "DataError",
    "ModelError",
    "EndpointError",
    "CacheError",
    "GateError",
    "RecordError",
    "OutputError",
    "did_you_mean",
]


class EvalkitError(Exception):
    """Base class: bad input or usage. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep the message on one line: the CLI contract is one line per failure.
        super().__init__(" ".join(str(message).split()))


class ConfigError(EvalkitError):
    """A config file, a CLI option or an override is wrong."""


class DataError(EvalkitError):
    """A data / prompt / predictions file is missing or malformed."""


class ModelError(EvalkitError):
    """A base model or adapter cannot be found, loaded or matched."""


class EndpointError(EvalkitError):
    """An OpenAI-compatible endpoint is unreachable, refuses us, or answers something unreadable."""


class CacheError(EvalkitError):
    """The evaluation cache is unreadable or written by another version."""


class GateError(EvalkitError):
    """A gate file or rule is malformed, or names an unknown metric."""


class RecordError(EvalkitError):
    """A results.json / comparison.json is malformed or from a newer schema."""


class OutputError(EvalkitError):
    """An output location cannot be created or written (a file in the way, no permission, a full disk)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
