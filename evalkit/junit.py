"""JUnit XML of a comparison's gate, for CI test-report panels (GitLab, Jenkins, GitHub actions).

One ``<testsuite name="evalkit gate">``; per candidate, one ``<testcase>`` per gate rule
(``<failure>`` when it failed, ``<skipped>`` when an optional rule's metric was absent) and one
``verdict`` testcase (``overfit`` = failure; ``warn`` passes and lists its reasons in
``<system-out>``). Built with xml.etree.ElementTree, so names and messages are escaped; characters
XML 1.0 cannot hold at all (control characters) are replaced with U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .records import Comparison, Reason, RuleResult
from .summary_md import reason_text

__all__ = ["to_junit_xml", "SUITE_NAME"]

SUITE_NAME = "evalkit gate"
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _reason_line(r: Reason) -> str:
    return f"[{r.level}] {r.code}: {reason_text(r)}"


def _skipped(r: RuleResult) -> bool:
    return r.passed and r.message.startswith("skipped:")


def to_junit_xml(comparison: Comparison) -> str:
    """The JUnit XML document as a string (UTF-8 declaration included)."""
    suites = ET.Element("testsuites", name="evalkit")
    suite = ET.SubElement(suites, "testsuite", name=SUITE_NAME)
    tests = failures = skipped = 0
    candidates = [t for t in comparison.targets if t != comparison.baseline]
    rules = comparison.gate.rules if comparison.gate else ()
    for name in candidates:
        classname = _clean(f"evalkit.gate.{name}")
        for r in (r for r in rules if r.candidate == name):
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=classname, name=_clean(r.rule), time="0")
            if _skipped(r):
                skipped += 1
                ET.SubElement(case, "skipped", message=_clean(r.message))
            elif not r.passed:
                failures += 1
                fail = ET.SubElement(case, "failure", message=_clean(r.message), type="GateRuleFailed")
                fail.text = _clean(r.message)
            elif r.message:
                ET.SubElement(case, "system-out").text = _clean(r.message)
        run = comparison.runs.get(name)
        if run is None:
            continue
        tests += 1
        verdict = run.verdict
        case = ET.SubElement(suite, "testcase", classname=classname, name="verdict", time="0")
        detail = "\n".join(_reason_line(r) for r in verdict.reasons)
        if verdict.level == "overfit":
            failures += 1
            top = next((r.message for r in verdict.reasons if r.level == "overfit"), "")
            msg = f"verdict overfit for '{name}'" + (f": {top}" if top else "")
            fail = ET.SubElement(case, "failure", message=_clean(msg), type="Overfit")
            fail.text = _clean(detail or msg)
        else:
            out = f"verdict {verdict.level} for '{name}'" + (f"\n{detail}" if detail else "")
            ET.SubElement(case, "system-out").text = _clean(out)
    for el in (suites, suite):
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", "0")
        el.set("skipped", str(skipped))
    suite.set("time", "0")
    ET.indent(suites, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
