"""The HTML report: one self-contained file from a Comparison or a RunRecord.

    from evalkit.report import render_report, write_report
    write_report(comparison, "out/report.html")

``view`` builds the view model (no HTML), ``render`` lays it out with Jinja2 (autoescape on),
``diff`` computes word-level differences. docs/report.md describes every section.
"""

from __future__ import annotations

from .render import render_report, write_report
from .view import build_view

__all__ = ["render_report", "write_report", "build_view"]
