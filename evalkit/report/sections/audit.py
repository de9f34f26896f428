"""Data audit: what `evalkit audit` found in the training / validation / suite files
(``RunRecord.audit``: ``summary`` figures and ``warnings`` of ``{code, message}``; docs/audit.md).

Targets evaluated on the same data carry the same audit; it is shown once, naming those targets.
Hidden when no record has an audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ...records import RunRecord, to_dict
from ..formatting import fmt_num
from .common import TargetHead

__all__ = ["AuditWarning", "AuditBlock", "AuditView", "build_audit"]


@dataclass(frozen=True)
class AuditWarning:
    code: str
    message: str


@dataclass(frozen=True)
class AuditBlock:
    targets: tuple[TargetHead, ...]  # the targets whose records carry this audit
    rows: tuple[tuple[str, str], ...]  # (summary figure, value); nested figures as "name.key"
    warnings: tuple[AuditWarning, ...]


@dataclass(frozen=True)
class AuditView:
    blocks: tuple[AuditBlock, ...]
    n_warnings: int


def _rows(summary: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not isinstance(summary, Mapping):
        return out
    for k, v in summary.items():
        if isinstance(v, Mapping):
            out.extend(_rows(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((f"{prefix}{k}", fmt_num(v)))
        elif v is not None:
            out.append((f"{prefix}{k}", str(v)))
    return out


def _warnings(audit: Mapping[str, Any]) -> tuple[AuditWarning, ...]:
    out = []
    for w in audit.get("warnings") or ():
        if isinstance(w, Mapping):
            out.append(AuditWarning(str(w.get("code", "")), str(w.get("message", ""))))
    return tuple(out)


def build_audit(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Optional[AuditView]:
    groups: dict[str, tuple[list[TargetHead], Mapping[str, Any]]] = {}
    for h in heads:
        audit = runs[h.name].audit
        if not audit:
            continue
        audit = to_dict(audit)  # a records.DataAudit (older records: its plain-dict form)
        # the same data gives the same findings; runtime_s and inputs differ from run to run
        key = json.dumps({k: audit.get(k) for k in ("summary", "suites", "warnings")}, sort_keys=True, default=str)
        groups.setdefault(key, ([], audit))[0].append(h)
    if not groups:
        return None
    blocks = tuple(AuditBlock(tuple(hs), tuple(_rows(a.get("summary"))), _warnings(a)) for hs, a in groups.values())
    return AuditView(blocks, sum(len(b.warnings) for b in blocks))
