"""JUnit XML for CI systems: one test case per (variable, method) of a check.

A value that fails (at any point) is a <failure> naming the worst point; a method that could
not run, or a value that is no fair witness (a finite difference straddling a kink) or has no
reference, is <skipped> with the reason; a check where nothing could be judged (exit code 3)
gets a "verdict" test case with an <error>, so CI never counts it as a pass; a check that could
not be made at all (bad input, exit code 2) is one test case with an <error>, so the file is
valid and tells why whatever happened. Text goes through ElementTree, which escapes it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import judge
from .errors import GradcheckError
from .judge import CELL_NAMES
from .render import failure_text, verdict_text
from .report import Report

# Characters XML 1.0 cannot carry at all, even escaped: shown as \xNN instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


TITLE_CHARS = 60  # the formula in names and titles: its start, then "…" and the node count


def short_formula(expression: str, nodes: int | None = None) -> str:
    """The formula for a name or title: whole when short, else its start + "… (N nodes)". The
    whole formula is written once, as the suite's property, not once per test case (5,000
    variables × a long formula made a 578 MB file)."""
    one = " ".join(expression.split())
    if len(one) <= TITLE_CHARS:
        return one
    size = f", {nodes:,} nodes" if nodes else ""
    return f"{one[:TITLE_CHARS]}… ({len(one):,} characters{size})"


def _suite(name: str, expression: str | None = None) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    if expression is not None:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="expression", value=expression)
    return suite


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))


def _finish(suite: ET.Element) -> str:
    _count(suite)
    root = ET.Element("testsuites")
    root.append(suite)
    return _serialize(root)


def _serialize(root: ET.Element) -> str:
    for element in root.iter():
        for key, value in element.attrib.items():
            element.set(key, _clean(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def report_xml(report: Report) -> str:
    title = short_formula(report.expression, report.nodes)
    suite = _suite(f"gradcheck {title}", report.expression)
    classname = f"gradcheck.{title}"
    many = report.size > 1
    for v in report.wrt:
        for m in report.methods:
            case = ET.SubElement(suite, "testcase", classname=classname, name=f"d/d{v} {m.name}")
            if not m.ran or m.cells is None:
                ET.SubElement(case, "skipped", message=f"{m.name} could not run: {m.note}")
                continue
            c = m.cells.code[v]
            if (c == judge.FAIL).any():
                tolerance = ("within 4× its own error estimate" if m.judged_by == "estimate"
                             else f"rtol={m.rtol:g}")
                ET.SubElement(case, "failure", message=failure_text(report, m, v, 17)
                              + f" (tolerance: {tolerance})")
            elif not np.isin(c, judge.JUDGED).any():
                codes = [int(x) for x in np.unique(c)]
                k = int(np.flatnonzero(c == codes[0])[0])
                ET.SubElement(case, "skipped",
                              message=f"{CELL_NAMES[codes[0]]}: {m.why(v, k) or 'not judged'}"
                              + (f" (at {len(c)} points)" if many else ""))
    if report.strict and any(m.cells is not None and np.isin(m.cells.code[v], judge.LENIENT).any()
                             for m in report.methods for v in report.wrt):
        case = ET.SubElement(suite, "testcase", classname=classname,
                             name="differentiable at the point (--strict)")
        sides = "; ".join(f"d/d{v}: left {float(lo[0]) if not many else float('nan'):g}, "
                          f"right {float(hi[0]) if not many else float('nan'):g}"
                          for v, (_, lo, hi) in report.kinks.items())
        ET.SubElement(case, "failure",
                      message=f"not differentiable at this point: {sides or verdict_text(report)}")
    for d in report.diagnostics:
        if d.kind == "taylor" and report.verdict == "fail":
            case = ET.SubElement(suite, "testcase", classname=classname, name="Taylor-remainder test")
            ET.SubElement(case, "failure", message=d.message)
    if report.verdict == "inconclusive":
        case = ET.SubElement(suite, "testcase", classname=classname, name="verdict")
        ET.SubElement(case, "error", type="inconclusive", message=verdict_text(report))
    return _finish(suite)


def suite_xml(groups: Sequence[tuple[str, Sequence[Any]]], file_errors: Sequence[str] = ()) -> str:
    """A file of many checks (or a class's answers): one <testsuite> per group (a file, or a
    student), one <testcase> per check. A check that missed its expectation is a <failure>
    carrying the witness and the diagnosis; a check that could not be read or run is an
    <error>. `groups` holds (name, outcomes) with outcomes of `suite.Outcome`."""
    root = ET.Element("testsuites", name="gradcheck")
    for name, outcomes in groups:
        suite = ET.SubElement(root, "testsuite", name=name)
        for o in outcomes:
            case = ET.SubElement(suite, "testcase", classname=f"gradcheck.{name}", name=o.spec.name,
                                 time=f"{o.seconds:.3f}")
            if o.outcome == "error":
                kind = o.error.kind if o.error is not None else "error"
                ET.SubElement(case, "error", type=kind, message=o.detail)
            elif not o.ok:
                ET.SubElement(case, "failure", type=o.outcome,
                              message=f"expected {o.spec.expected}, got {o.outcome}: {o.detail}")
        _count(suite)
    if file_errors:
        suite = ET.SubElement(root, "testsuite", name="files")
        for i, text in enumerate(file_errors, 1):
            case = ET.SubElement(suite, "testcase", classname="gradcheck.files", name=f"file {i}")
            ET.SubElement(case, "error", type="bad-file", message=text)
        _count(suite)
    for key in ("tests", "failures", "errors", "skipped"):  # totals, as Jenkins and GitLab read them
        root.set(key, str(sum(int(st.get(key, "0")) for st in root.findall("testsuite"))))
    return _serialize(root)


def error_xml(expression: str | None, error: GradcheckError) -> str:
    title = short_formula(expression) if expression else ""
    suite = _suite(f"gradcheck {title}".strip(), expression)
    case = ET.SubElement(suite, "testcase", classname="gradcheck", name=title or "(input)")
    ET.SubElement(case, "error", type=error.kind, message=error.message)
    return _finish(suite)
