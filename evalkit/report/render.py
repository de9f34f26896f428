"""Render the view model to one self-contained HTML file.

``render_report(record) -> str`` and ``write_report(record, path)`` are the whole public surface.
The page makes no request of any kind: CSS and JS are inlined from templates/, charts are inline
SVG, and a Content-Security-Policy meta tag forbids everything else (``default-src 'none'``).

Escaping (docs/report.md, "Escaping"):

* Jinja2 runs with ``autoescape=True``; the template never marks data ``|safe``. Only these values
  are trusted markup: report.css and report.js (package files) and the JSON blocks (the page's
  small ``data`` block and a sweep's ``pairs-data``) built by :func:`script_json`, which escapes
  ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\uXXXX`` so no string in it can close the ``<script>``
  element or open a comment.
* Data never lands in an event-handler attribute, a URL or a class name; report.js attaches its
  listeners itself and writes text with ``textContent`` only.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Union

import jinja2
from markupsafe import Markup

from ..io import write_text_atomic
from ..records import Comparison, RunRecord
from .view import build_view

__all__ = ["render_report", "write_report", "script_json", "CSP"]

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def script_json(obj: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block that no string inside can break out of."""
    text = json.dumps(_json_safe(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, esc in _JSON_ESCAPES.items():
        text = text.replace(raw, esc)
    return Markup(text)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,  # every {{ }} is escaped; the template has no |safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["CSP"] = CSP
    return env


def render_report(record: Union[Comparison, RunRecord]) -> str:
    """The report for a Comparison (baseline + candidates) or a single RunRecord, as one HTML string."""
    view = build_view(record)
    template = _environment().get_template("report.html.j2")
    css, js = _asset("report.css"), _asset("report.js")
    for name, text, closer in (("report.css", css, "</style"), ("report.js", js, "</script")):
        if closer in text.lower():  # a package file, but keep the inlining honest
            raise ValueError(f"templates/{name} must not contain '{closer}'")
    return template.render(v=view, css=Markup(css), js=Markup(js), data_json=script_json(view.data),
                           pairs_json=script_json(view.pager_data))


def write_report(record: Union[Comparison, RunRecord], path: Union[str, Path]) -> Path:
    """Render and write atomically (a reader never sees half a file). Returns the path."""
    path = Path(path)
    write_text_atomic(path, render_report(record))
    return path
