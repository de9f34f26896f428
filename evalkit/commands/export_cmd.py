"""`evalkit export` (not implemented yet)."""

from __future__ import annotations

from ..errors import EvalkitError


def register(sub):
    p = sub.add_parser("export", help="(not implemented yet)", description=__doc__)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    raise EvalkitError("`evalkit export` is not implemented yet")
