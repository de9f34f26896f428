"""Short terminal summaries of run records and comparisons (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .metrics.registry import key_metrics
from .numbers import fmt_fixed
from .records import Comparison, RunRecord

__all__ = ["print_run", "print_comparison", "KEY_METRICS"]

KEY_METRICS = key_metrics()  # the registry's headline figures (evalkit/metrics/registry.py)

_LEVEL_STYLE = {"ok": "green", "warn": "yellow", "overfit": "bold red"}


_fmt = fmt_fixed


def print_run(run: RunRecord, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title=f"{run.target.name} ({run.kind})", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("95% CI", justify="right")
    for m in KEY_METRICS:
        if m in run.summary:
            ci = run.intervals.get(m)
            t.add_row(m, _fmt(run.summary[m]), f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    console.print(t)
    _print_verdict(run, console)


def _print_verdict(run: RunRecord, console: Console) -> None:
    v = run.verdict
    console.print(f"verdict for [bold]{run.target.name}[/]: [{_LEVEL_STYLE[v.level]}]{v.level}[/]", highlight=False)
    for r in v.reasons:
        console.print(f"  - [{_LEVEL_STYLE[r.level]}]{r.level}[/]: {r.message}", highlight=False, markup=True)


def print_comparison(cmp: Comparison, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title=f"evalkit compare (baseline: {cmp.baseline})")
    t.add_column("metric")
    for name in cmp.targets:
        t.add_column(name, justify="right")
    deltas = {(d.candidate, d.metric): d for d in cmp.deltas}
    for m in KEY_METRICS:
        if not any(m in cmp.runs[n].summary for n in cmp.targets):
            continue
        row = [m]
        for name in cmp.targets:
            v = cmp.runs[name].summary.get(m)
            cell = _fmt(v)
            d = deltas.get((name, m))
            if d is not None and d.delta is not None and name != cmp.baseline:
                cell += f" ({d.delta:+.3f}{'' if d.p_value is None else f', p={d.p_value:.2g}'})"
            row.append(cell)
        t.add_row(*row)
    console.print(t)
    for name in cmp.targets:
        _print_verdict(cmp.runs[name], console)
    if cmp.gate is not None:
        state = "[green]PASS[/]" if cmp.gate.passed else "[bold red]FAIL[/]"
        console.print(f"gate: {state}")
        for r in cmp.gate.rules:
            if not r.passed:
                console.print(f"  - [red]failed[/]: {r.message or r.rule} ({r.candidate})", highlight=False)
