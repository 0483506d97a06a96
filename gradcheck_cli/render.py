"""Report → rich table, strict JSON, or markdown. Pure: these return, they never print.

User text (the formula, variable names) only ever enters rich as `Text`, never as markup, so
`[bold red]x` prints literally.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .compare import ESTIMATE_FACTOR
from .errors import GradcheckError
from .report import MethodReport, Report

PASS, FAIL = "✓", "✗"


def fmt(x: float, digits: int) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def fmt_error(error: float, kind: str) -> str:
    """Relative errors bare; absolute ones (where the reference is 0) labelled "abs"; at a
    kink, the distance to the interval of one-sided derivatives, labelled "kink"."""
    label = {"relative": "", "absolute": "abs ", "interval": "kink "}.get(kind, "")
    if math.isinf(error):
        return f"{label}inf"
    return f"{label}{error:.1e}"


def one_line(expression: str) -> str:
    """The formula on one line: its tabs and line breaks (allowed as white space) as spaces."""
    return expression.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def reference_label(report: Report) -> str:
    if report.reference == "exact" and report.exact is not None:
        return "exact (30 digits)"
    return report.reference


def exact_text(text: str, digits: int) -> str:
    """The exact reference's decimal text, cut to `digits` significant digits (not rounded
    through a float, so it can show more digits than float64 holds)."""
    if text in ("nan", "inf", "-inf"):
        return text
    import mpmath

    shown = mpmath.nstr(mpmath.mpf(text), digits, strip_zeros=True)
    return shown[:-2] if shown.endswith(".0") else shown


def point_text(report: Report, digits: int) -> str:
    return ", ".join(f"{k}={fmt(v, digits)}" for k, v in report.point.items())


def verdict_text(report: Report) -> str:
    ran = [m for m in report.methods if m.ran]
    if not report.wrt:
        return "nothing to check: the formula has no variables"
    if not any(m.ran for m in report.methods):
        return f"{FAIL} no method could run"
    if report.ok:
        return f"{PASS} all {len(ran)} methods that ran agree with the reference ({report.reference})"
    bad = [m for m in ran if m.ok is False]
    parts = []
    for m in bad:
        assert m.passed is not None
        vs = [v for v, ok in m.passed.items() if not ok]
        parts.append(f"{m.name} on {', '.join(vs)}")
    return f"{FAIL} disagreement with the reference ({report.reference}): " + "; ".join(parts)


def _cell(m: MethodReport, v: str, reference: str, digits: int) -> Text:
    if not m.ran:
        return Text("could not run", style="yellow")
    assert m.gradient is not None and m.error is not None and m.passed is not None
    assert m.error_kind is not None
    t = Text(fmt(m.gradient[v], digits))
    if m.name == reference:
        t.append("\nreference", style="dim")
        return t
    if m.passed[v] is None:
        t.append("\nunreliable", style="yellow")
        return t
    mark, style = (PASS, "green") if m.passed[v] else (FAIL, "bold red")
    t.append(f"\n{fmt_error(m.error[v], m.error_kind[v])} ", style="dim")
    t.append(mark, style=style)
    return t


def _exact_cell(report: Report, v: str, digits: int) -> Text:
    if v in report.one_sided:  # at a kink the truth is a pair of one-sided derivatives
        lo, hi = report.one_sided[v]
        return Text(f"{fmt(lo, digits)} ⁻\n{fmt(hi, digits)} ⁺")
    assert report.exact is not None
    return Text(exact_text(report.exact[v], digits))


def _tolerance_text(m: MethodReport) -> str:
    if m.judged_by == "estimate":
        return f"{m.name} within {ESTIMATE_FACTOR:g}× its own error estimate"
    return f"{m.name} rtol={m.rtol:g} atol={m.atol:g}"


def render_table(report: Report, digits: int = 10) -> RenderableType:
    title = Text("gradcheck ", style="bold")
    title.append(one_line(report.expression))
    title.append(f"  reference: {reference_label(report)}", style="dim")
    if report.dtype != "float64":
        title.append(f"  methods in {report.dtype}", style="bold yellow")
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("∂f/∂", style="bold", no_wrap=True, min_width=4)
    if report.exact is not None:
        table.add_column("exact\n(reference)", justify="right", overflow="fold")
    for m in report.methods:
        header = m.name + ("\n(reference)" if m.name == report.reference else "")
        table.add_column(header, justify="right", overflow="fold")
    for v in report.wrt:
        exact = [_exact_cell(report, v, digits)] if report.exact is not None else []
        table.add_row(Text(v), *exact, *(_cell(m, v, report.reference, digits) for m in report.methods))
    lines: list[RenderableType] = [
        Text(f"f({point_text(report, digits)}) = {fmt(report.value, digits)}"),
        table,
    ]
    for m in report.methods:
        if m.step is not None and m.ran:
            steps = ", ".join(f"h_{k}={fmt(h, 3)}" for k, h in m.step.items())
            lines.append(Text(f"{m.name} steps: {steps}", style="dim"))
    lines.append(Text(
        "error = |value - reference| / |reference|, or absolute (abs) where the reference is 0",
        style="dim",
    ))
    tol = "; ".join(_tolerance_text(m) for m in report.methods if m.name != report.reference)
    if tol:
        lines.append(Text(f"tolerances: {tol}", style="dim"))
    for m in report.methods:
        for v, why in (m.unreliable or {}).items():
            lines.append(Text(f"{m.name} is unreliable for {v}: {why}", style="yellow"))
    for d in report.diagnostics:
        lines.append(Text(f"note [{d.kind}]: {d.message}", style="yellow"))
    for v, formula in report.formulas.items():
        lines.append(Text(f"\n∂f/∂{v} (symbolic) =", style="bold"))
        lines.append(Text(formula))
    style = "bold green" if report.ok else "bold red"
    lines.append(Text(verdict_text(report), style=style))
    return Group(*lines)


def json_number(x: float) -> float | str:
    """Strict JSON has no NaN or Infinity: non-finite numbers become strings."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _numbers(d: dict[str, float] | None) -> dict[str, float | str] | None:
    return None if d is None else {k: json_number(v) for k, v in d.items()}


def report_dict(report: Report) -> dict[str, Any]:
    methods = []
    for m in report.methods:
        entry: dict[str, Any] = {
            "name": m.name,
            "gradient": _numbers(m.gradient),
            "error": _numbers(m.error),
            "error_kind": m.error_kind,
            "passed": m.passed,
            "ok": m.ok,
            "rtol": m.rtol,
            "atol": m.atol,
        }
        if m.step is not None:
            entry["step"] = _numbers(m.step)
        if m.estimate is not None:
            entry["estimate"] = _numbers(m.estimate)
        entry["judged_by"] = m.judged_by
        if m.unreliable:
            entry["unreliable"] = m.unreliable
        if m.note is not None:
            entry["note"] = m.note
        methods.append(entry)
    out: dict[str, Any] = {
        "expression": report.expression,
        "point": _numbers(report.point),
        "value": json_number(report.value),
        "wrt": report.wrt,
        "reference": report.reference,
        "exact": report.exact,
        "methods": methods,
        "ok": report.ok,
        "diagnostics": [{"kind": d.kind, "message": d.message} for d in report.diagnostics],
        "one_sided": {v: {"left": json_number(lo), "right": json_number(hi)}
                      for v, (lo, hi) in report.one_sided.items()},
        "strict": report.strict,
        "dtype": report.dtype,
        "graph": {"nodes": report.nodes, "depth": report.depth},
    }
    if report.formulas:
        out["formulas"] = report.formulas
    return out


def to_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, allow_nan=False)


def error_json(error: GradcheckError) -> str:
    body: dict[str, Any] = {"kind": error.kind, "message": error.message}
    if error.column is not None:
        body["column"] = error.column
    return json.dumps({"error": body}, indent=2, allow_nan=False)


def _md_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("*", "\\*")


def to_markdown(report: Report, digits: int = 10) -> str:
    lines = [
        f"### gradcheck `{one_line(report.expression).replace('`', '')}`",
        "",
        f"reference: {reference_label(report)}",
        "",
        f"f({_md_escape(point_text(report, digits))}) = {fmt(report.value, digits)}",
        "",
    ]
    exact_col = ["exact (reference)"] if report.exact is not None else []
    header = ["∂f/∂", *exact_col] + [
        m.name + (" (reference)" if m.name == report.reference else "") for m in report.methods
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for v in report.wrt:
        cells = [_md_escape(v)]
        if report.exact is not None:
            cells.append(exact_text(report.exact[v], digits))
        for m in report.methods:
            if not m.ran:
                cells.append("could not run")
                continue
            assert m.gradient is not None and m.error is not None and m.passed is not None
            assert m.error_kind is not None
            cell = fmt(m.gradient[v], digits)
            if m.name == report.reference:
                cell += " (ref)"
            elif m.passed[v] is None:
                cell += " (unreliable)"
            else:
                cell += f" ({fmt_error(m.error[v], m.error_kind[v])} {PASS if m.passed[v] else FAIL})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for d in report.diagnostics:
        lines.append(f"- **{d.kind}**: {_md_escape(d.message)}")
    if report.diagnostics:
        lines.append("")
    lines.append(f"**{verdict_text(report)}**")
    return "\n".join(lines) + "\n"
