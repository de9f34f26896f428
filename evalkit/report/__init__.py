"""The HTML report: one self-contained file from a Comparison or a RunRecord.

    from evalkit.report import render_report, write_report
    write_report(comparison, "out/report.html")

``view`` builds the view model (no HTML) from one builder per section (``sections/``), with numbers
from ``formatting``, chart geometry from ``charts`` and highlighted text from ``segments`` / ``diff``;
``render`` lays it out with Jinja2 (autoescape on, one template include per section).
docs/report.md describes every section.
"""

from __future__ import annotations

from .render import render_report, write_report
from .view import build_view

__all__ = ["render_report", "write_report", "build_view"]
