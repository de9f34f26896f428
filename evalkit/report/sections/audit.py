"""Data audit: what `evalkit audit` found in the training / validation / suite files
(``RunRecord.audit``, a :class:`~evalkit.records.DataAudit`: summary figures, the n behind them, per-suite
figures and warnings; docs/audit.md).

Targets evaluated on the same data carry the same findings; they are shown once, naming those targets.
Hidden when no record has an audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from ...records import DataAudit, RunRecord, to_dict
from ..formatting import fmt_num
from .common import TargetHead

__all__ = ["AuditWarning", "AuditBlock", "AuditView", "build_audit"]


@dataclass(frozen=True)
class AuditWarning:
    code: str
    message: str


@dataclass(frozen=True)
class AuditBlock:
    targets: tuple[TargetHead, ...]  # the targets whose records carry these findings
    rows: tuple[tuple[str, str], ...]  # (summary figure, value)
    n: tuple[tuple[str, str], ...]  # (split, examples behind the rates)
    suites: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (suite, ((figure, value), ...))
    warnings: tuple[AuditWarning, ...]


@dataclass(frozen=True)
class AuditView:
    blocks: tuple[AuditBlock, ...]
    n_warnings: int


def _block(heads: list[TargetHead], a: DataAudit) -> AuditBlock:
    return AuditBlock(tuple(heads), tuple((k, fmt_num(v)) for k, v in a.summary.items()),
                      tuple((k, fmt_num(v)) for k, v in a.n.items()),
                      tuple((s, tuple((k, fmt_num(v)) for k, v in figs.items())) for s, figs in a.suites.items()),
                      tuple(AuditWarning(w.code, w.message) for w in a.warnings))


def build_audit(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Optional[AuditView]:
    groups: dict[str, tuple[list[TargetHead], DataAudit]] = {}
    for h in heads:
        audit = runs[h.name].audit
        if audit is None:
            continue
        # the same data gives the same findings; runtime_s and inputs differ from run to run
        key = json.dumps(to_dict({"s": audit.summary, "u": audit.suites, "w": audit.warnings}), sort_keys=True)
        groups.setdefault(key, ([], audit))[0].append(h)
    if not groups:
        return None
    blocks = tuple(_block(hs, a) for hs, a in groups.values())
    return AuditView(blocks, sum(len(b.warnings) for b in blocks))
