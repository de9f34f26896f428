"""(Re-)render report.html from a stored comparison.json or results.json -- no model, seconds.

  evalkit report reports/run1                         # -> reports/run1/report.html
  evalkit report reports/run1 --out /tmp/review.html
  evalkit report reports/run1/results.json            # a single-target report
  evalkit report reports/run1 --threshold mia_auc_overfit=0.7   # verdicts re-derived with other limits

DIR is a folder written by `evalkit compare` (comparison.json), `evalkit eval` or `evalkit score`
(results.json); when both files are there, comparison.json wins. A path to either JSON file works too.
The report is one self-contained HTML file (no network access when opened); docs/report.md says
what each section shows.

Exit codes: 0 written, 2 no record found / unreadable record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Union

from ..errors import RecordError
from ..records import Comparison, RunRecord, load_comparison, load_run
from ._options import add_threshold_options, rejudged

__all__ = ["register", "run", "find_record", "load_record"]

COMPARISON, RESULTS = "comparison.json", "results.json"


def register(sub):
    p = sub.add_parser(
        "report",
        help="(re-)render report.html from a comparison.json or results.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", type=Path,
                   help=f"folder holding {COMPARISON} or {RESULTS} (or the path of one of those files)")
    p.add_argument("--out", metavar="FILE", type=Path, default=None,
                   help="where to write the HTML (default: DIR/report.html)")
    add_threshold_options(p, rejudge=True)
    p.set_defaults(func=run)
    return p


def find_record(path: Path) -> Path:
    """The record file to render: PATH itself if it is a file, else PATH/comparison.json, else PATH/results.json."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise RecordError(f"{path}: no such file or folder; pass the output folder of `evalkit compare`, "
                          f"`eval` or `score`")
    for name in (COMPARISON, RESULTS):
        if (path / name).is_file():
            return path / name
    raise RecordError(f"{path}: neither {COMPARISON} nor {RESULTS} found; run `evalkit compare`, `eval` or "
                      f"`score` with --out {path} first")


def load_record(path: Path) -> Union[Comparison, RunRecord]:
    """A Comparison when the file has "runs" (comparison.json), else a RunRecord (results.json)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"{path}: not readable as JSON ({e}); re-create it with evalkit") from None
    if isinstance(data, dict) and "runs" in data:
        return load_comparison(path)
    return load_run(path)


def run(args) -> int:
    from ..outputs import check_out_file, write_file
    from ..report.render import render_report  # jinja2 is imported only when a report is rendered

    source = find_record(args.dir)
    record, _ = rejudged(args, load_record(source))  # --threshold & co: verdicts re-derived from the record
    out = args.out if args.out is not None else source.parent / "report.html"
    if out.is_dir():
        out = out / "report.html"
    check_out_file(out, "--out")
    write_file(out, render_report(record), "--out")
    print(f"wrote {out} (from {source})")
    return 0
