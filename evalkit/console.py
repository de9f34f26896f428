"""What evalkit shows while it works and when it is done: progress, warnings, summary tables.

* :func:`progress` -- the one progress display of a command, named by target and stage with an
  overall count. On a terminal it is a bar redrawn in place (stderr); in a log (stderr not a TTY:
  CI) it is a plain line at the start, every ``$EVALKIT_PROGRESS_EVERY`` seconds (default 30) and
  at the end -- never a stream of carriage returns.
* :func:`quiet_third_party` -- transformers/peft/torch deprecation warnings, info logs and their
  "Loading weights" bars are silenced unless ``--verbose`` (they are not about the user's run).
  Done with environment variables and warning filters, so nothing here imports transformers.
* :func:`print_run` / :func:`print_comparison` -- rich tables of the result.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from typing import Iterator, Optional

from rich.console import Console
from rich.table import Table

from .metrics.registry import key_metrics
from .numbers import fmt_fixed, fmt_p_shown
from .records import Comparison, RunRecord

__all__ = ["print_run", "print_comparison", "KEY_METRICS", "progress", "quiet_third_party", "configure",
           "warn", "info", "redrawn_bars", "target_label"]

_STATE = {"progress": True, "quiet": False}


def configure(*, progress: Optional[bool] = None, quiet: Optional[bool] = None) -> None:
    """Process-wide display switches: ``progress=False`` (--no-progress), ``quiet=True`` (--json)."""
    if progress is not None:
        _STATE["progress"] = progress
    if quiet is not None:
        _STATE["quiet"] = quiet


def target_label(name: str, index: int, total: int) -> str:
    """Progress prefix naming the target and the overall count: ``[2/3] seedlike · ``."""
    return f"[{index}/{total}] {name} · " if total > 1 else f"{name} · "


def redrawn_bars() -> bool:
    """Whether a redrawn bar is wanted (training's): on a terminal only; a log (CI) gets plain lines instead."""
    return _STATE["progress"] and sys.stderr.isatty()


def warn(message: str) -> None:
    """One line on stderr: ``evalkit: warning: ...``."""
    print(f"evalkit: warning: {message}", file=sys.stderr)


def info(message: str) -> None:
    """A note for the person running the command (stderr, so --json keeps stdout clean)."""
    print(f"evalkit: {message}", file=sys.stderr)


def quiet_third_party(verbose: bool = False) -> None:
    """Silence third-party deprecation warnings and loading bars unless ``verbose``."""
    if verbose:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|peft|torch|accelerate)(\.|$)")
    _quiet_loaded_transformers()


def _quiet_loaded_transformers() -> None:
    # transformers reads TRANSFORMERS_VERBOSITY at import; when it is already imported, tell it directly
    hf = sys.modules.get("transformers.utils.logging")
    if hf is not None:
        hf.set_verbosity_error()
        hf.disable_progress_bar()


class _Plain:
    """Progress as plain lines for logs: start, every ``every`` seconds, end."""

    def __init__(self, label: str, total: int, every: float):
        self.label, self.total, self.every = label, total, every
        self.n, self.t0 = 0, time.monotonic()
        self.last = self.t0
        self._line()

    def _line(self, end: str = "") -> None:
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(f"evalkit: {self.label}: {self.n}/{self.total}{pct}{end}", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every and self.n < self.total:
            self.last = now
            self._line()

    def close(self) -> None:
        self._line(f" done in {time.monotonic() - self.t0:.0f} s")


class _Off:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def progress(label: str, total: int, *, enabled: bool = True) -> Iterator:
    """The progress display of one stage (``label`` names target and stage); ``.update(n)`` per item."""
    if not enabled or not _STATE["progress"] or total <= 0:
        bar = _Off()
    elif sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=label, unit="item", leave=False, file=sys.stderr, disable=False)
    else:
        bar = _Plain(label, total, float(os.environ.get("EVALKIT_PROGRESS_EVERY", "30")))
    try:
        yield bar
    finally:
        bar.close()

KEY_METRICS = key_metrics()  # the registry's headline figures (evalkit/metrics/registry.py)

_LEVEL_STYLE = {"ok": "green", "warn": "yellow", "overfit": "bold red"}


_fmt = fmt_fixed


def _console(console: Console | None, to_stderr: bool) -> Console:
    return console or Console(stderr=to_stderr)


def print_run(run: RunRecord, console: Console | None = None, *, to_stderr: bool = False) -> None:
    console = _console(console, to_stderr)
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
    for notice in run.notices:
        from rich.markup import escape

        console.print(f"  - [yellow]warning[/] ({notice.code}): {escape(notice.message)}", highlight=False)


def print_comparison(cmp: Comparison, console: Console | None = None, *, to_stderr: bool = False) -> None:
    console = _console(console, to_stderr)
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
                shown, raw = fmt_p_shown(d.p_value, d.p_adjusted)
                cell += f" ({d.delta:+.3f}{''.join(', ' + x for x in (shown, raw) if x)})"
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


def _verdict_json(run: RunRecord) -> dict:
    return {"level": run.verdict.level,
            "reasons": [{"code": r.code, "level": r.level, "message": r.message} for r in run.verdict.reasons]}


def summary_record(record, paths: dict) -> dict:
    """The summary printed by ``--json``: what a script needs, with the paths of the full outputs."""
    out = {"outputs": {name: str(p) for name, p in paths.items()}}
    if isinstance(record, Comparison):
        out.update(kind="comparison", baseline=record.baseline, targets=list(record.targets),
                   summary={n: dict(r.summary) for n, r in record.runs.items()},
                   verdicts={n: _verdict_json(r) for n, r in record.runs.items()},
                   gate=None if record.gate is None else {
                       "passed": record.gate.passed,
                       "failed": [{"candidate": r.candidate, "rule": r.rule, "message": r.message}
                                  for r in record.gate.rules if not r.passed]})
    else:
        out.update(kind=record.kind, target=record.target.name, summary=dict(record.summary),
                   intervals={k: list(v) for k, v in record.intervals.items()}, n=dict(record.n),
                   verdict=_verdict_json(record))
    return out


def print_summary_json(record, paths: dict) -> None:
    """``--json``: one JSON object on stdout (standard JSON: a non-finite number is refused, never printed)."""
    from .outputs import record_json

    sys.stdout.write(record_json(summary_record(record, paths), "--json summary"))
