"""Build the report's view model from a Comparison or a RunRecord. No HTML here.

The view reads only the record and hands each section's builder (``sections/``) the targets in page
order; every section is a frozen dataclass of plain strings and numbers, or None when the record
has no data for it (the template then leaves the section out). Numbers are formatted by
``formatting``, chart geometry comes from ``charts``, highlighted text from ``segments``.
The template (templates/report.html.j2) only lays these out; Jinja2 escapes every string.

Class names and CSS hooks (``cls`` fields) come from fixed sets in the code, never from data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..records import Comparison, RunRecord
from .sections.audit import AuditView, build_audit
from .sections.common import TargetHead, level_of
from .sections.configs import ConfigView, build_configs
from .sections.memorization import MemorizationView, build_memorization
from .sections.metrics import MetricTable, build_metric_table
from .sections.retention import RetentionView, build_retention
from .sections.samples import LIST_MAX, PairPager, SamplesView, build_pager, build_samples
from .sections.sweep import SWEEP_MIN, SweepView, build_sweep
from .sections.training import TrainingView, build_training
from .sections.verdict import Banner, build_banner

__all__ = ["ReportView", "build_view"]


@dataclass(frozen=True)
class ReportView:
    title: str
    kind: str  # "comparison" | "run"
    created_at: str
    baseline: Optional[str]
    targets: tuple[TargetHead, ...]
    banner: Banner
    sweep: Optional[SweepView]  # comparisons of more than SWEEP_MIN targets
    metrics: MetricTable
    retention: Optional[RetentionView]
    audit: Optional[AuditView]
    training: Optional[TrainingView]
    memorization: MemorizationView
    samples: Optional[SamplesView]  # every answer on the page (up to LIST_MAX targets)
    pager: Optional[PairPager]  # or two targets at a time (more targets)
    configs: ConfigView
    data: dict[str, Any] = field(default_factory=dict)  # the small JSON block the page's script reads

    @property
    def pager_data(self) -> dict[str, Any]:
        return self.pager.data if self.pager else {}


def _targets(record: Union[Comparison, RunRecord]) -> tuple[Optional[Comparison], list[str], dict[str, RunRecord],
                                                           Optional[str]]:
    """(comparison or None, target names baseline first, runs by name, baseline)."""
    if isinstance(record, Comparison):
        names = list(record.targets) or list(record.runs)
        runs = {n: record.runs[n] for n in names if n in record.runs}
        names = [n for n in names if n in runs]
        baseline = record.baseline if record.baseline in runs else (names[0] if names else None)
        if baseline is not None and names and names[0] != baseline:
            names.remove(baseline)
            names.insert(0, baseline)
        return record, names, runs, baseline
    if isinstance(record, RunRecord):
        return None, [record.target.name], {record.target.name: record}, None
    raise TypeError(f"build_view needs a Comparison or a RunRecord, got {type(record).__name__}")


def build_view(record: Union[Comparison, RunRecord]) -> ReportView:
    """The whole report as a view model. A RunRecord gives a single-target report (no deltas)."""
    comp, names, runs, baseline = _targets(record)
    heads = tuple(TargetHead(n, i, runs[n].target.kind, level_of(runs[n].verdict.level), n == baseline)
                  for i, n in enumerate(names))
    created = str(record.provenance.get("created_at", ""))
    if comp is not None:
        title = f"evalkit: {', '.join(names[1:])} vs {baseline}" if len(names) > 1 else f"evalkit: {baseline}"
        if len(names) > SWEEP_MIN:
            title = f"evalkit: sweep of {len(names) - 1} variants vs {baseline}"
    else:
        title = f"evalkit: {names[0]} ({record.kind})"
    is_sweep = comp is not None and len(names) > SWEEP_MIN
    sweep = build_sweep(heads, runs) if is_sweep else None
    listed = len(names) <= LIST_MAX
    samples = build_samples(comp, heads, runs) if listed else None
    pager = None
    if not listed:
        second = next((h.idx for h in heads if sweep and h.name == sweep.recommended), 1)
        pager = build_pager(heads, runs, 0, second)
    data = {
        "kind": "comparison" if comp is not None else "run",
        "baseline": baseline,
        "targets": names,
        "candidates": names[1:] if comp is not None else [],
        "n_samples": len(samples.rows) if samples else (pager.n_prompts if pager else 0),
        "schema_version": record.schema_version,
    }
    return ReportView(
        title, data["kind"], created, baseline, heads, build_banner(comp, heads, runs, compact=is_sweep), sweep,
        build_metric_table(comp, heads, runs, compact=is_sweep), build_retention(comp, heads, runs),
        build_audit(heads, runs), build_training(heads, runs), build_memorization(heads, runs, compact=is_sweep),
        samples, pager, build_configs(comp, heads, runs), data)
