"""JUnit XML for CI systems: one test case per (variable, method) of a check.

A value that fails is a <failure>; a method that could not run, or a value that is no fair
witness (a finite difference straddling a kink), is <skipped> with the reason; a check that
could not be made at all (bad input, exit code 2) is one test case with an <error>, so the file
is valid and tells why whatever happened. Text goes through ElementTree, which escapes it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .errors import GradcheckError
from .render import fmt, fmt_error
from .report import Report

# Characters XML 1.0 cannot carry at all, even escaped: shown as \xNN instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _suite(name: str) -> ET.Element:
    return ET.Element("testsuite", name=name)


def _finish(suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    root = ET.Element("testsuites")
    root.append(suite)
    for element in root.iter():
        for key, value in element.attrib.items():
            element.set(key, _clean(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def report_xml(report: Report) -> str:
    suite = _suite(f"gradcheck {report.expression}")
    for v in report.wrt:
        for m in report.methods:
            case = ET.SubElement(suite, "testcase", classname=f"gradcheck.{report.expression}",
                                 name=f"d/d{v} {m.name}")
            if m.gradient is None or m.passed is None:
                ET.SubElement(case, "skipped", message=f"{m.name} could not run: {m.note}")
                continue
            verdict = m.passed.get(v)
            if verdict is None:
                why = (m.unreliable or {}).get(v, "not judged")
                ET.SubElement(case, "skipped", message=f"unreliable: {why}")
            elif not verdict:
                assert m.error is not None and m.error_kind is not None
                message = (f"{m.name} gives {fmt(m.gradient[v], 17)} for d/d{v}, error "
                           f"{fmt_error(m.error[v], m.error_kind[v])} against {report.reference} "
                           f"(rtol={m.rtol:g}, atol={m.atol:g})")
                ET.SubElement(case, "failure", message=message)
    if report.strict and report.one_sided:
        case = ET.SubElement(suite, "testcase", classname=f"gradcheck.{report.expression}",
                             name="differentiable at the point (--strict)")
        sides = "; ".join(f"d/d{v}: left {lo:g}, right {hi:g}" for v, (lo, hi) in report.one_sided.items())
        ET.SubElement(case, "failure", message=f"not differentiable at this point: {sides}")
    return _finish(suite)


def error_xml(expression: str | None, error: GradcheckError) -> str:
    suite = _suite(f"gradcheck {expression or ''}".strip())
    case = ET.SubElement(suite, "testcase", classname="gradcheck", name=expression or "(input)")
    ET.SubElement(case, "error", type=error.kind, message=error.message)
    return _finish(suite)
