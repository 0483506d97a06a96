"""Report → rich table, strict JSON, or markdown. Pure: these return, they never print.

One point: a table of values, each with its error and mark, as v1. Many points: per variable
and method, how many points pass and fail, the worst error, and the worst point as an `--at`
the user can paste. User text (the formula, variable names) only ever enters rich as `Text`,
never as markup, so `[bold red]x` prints literally.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from . import judge
from .errors import GradcheckError
from .judge import CELL_NAMES, ERROR_KINDS
from .report import MethodReport, Report

PASS, FAIL, MAYBE = "✓", "✗", "?"


def fmt(x: float, digits: int) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"  # never "-0"
    return f"{x:.{digits}g}"


def fmt_error(error: float, kind: str) -> str:
    """Relative errors bare; absolute ones (where the reference is 0) labelled "abs"; at a
    kink, the distance to the interval of one-sided derivatives, labelled "kink"."""
    label = {"relative": "", "absolute": "abs ", "interval": "kink "}.get(kind, "")
    if math.isnan(error):
        return f"{label}nan"
    if math.isinf(error):
        return f"{label}inf"
    return f"{label}{error:.1e}"


def _f(report: Report) -> str:
    """The function's name in headers: a program's output step (J), else f."""
    name = report.output_name or "f"
    return name if len(name) <= 12 else name[:11] + "…"


def one_line(expression: str) -> str:
    """The formula on one line: its tabs and line breaks (allowed as white space) as spaces."""
    return expression.replace("\t", " ").replace("\r", " ").replace("\n", " ")


TITLE_CHARS = 200  # a formula in a title: its start, then "…" and its length
JSON_CHARS = 10_000  # a formula in JSON: capped the same way (expression_chars gives the length)


def capped(expression: str, limit: int = TITLE_CHARS) -> str:
    """A formula or program as one line for a title: the lines of a program joined with "; "
    (comments dropped), white space collapsed, and cut to `limit` characters with "… (N
    characters)" — a 10⁵-node formula read from standard input is megabytes long."""
    lines = [ln.split("#", 1)[0].strip() for ln in expression.replace("\r", "\n").split("\n")]
    text = " ".join("; ".join(ln for ln in lines if ln).split())
    return text if len(text) <= limit else f"{text[:limit]}… ({len(expression):,} characters)"


def reference_label(report: Report) -> str:
    if report.reference == "exact":
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


POINT_VARIABLES = 12  # a point's text names at most this many variables (JSON has them all)


def point_text(report: Report, digits: int, k: int = 0) -> str:
    items = list(report.points.items())
    text = ", ".join(f"{v}={fmt(float(a[k]), digits)}" for v, a in items[:POINT_VARIABLES])
    more = len(items) - POINT_VARIABLES
    return text + (f", … and {more:,} more" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# Words: what failed, where, by how much
# --------------------------------------------------------------------------------------------


def _worst(m: MethodReport, v: str, codes: tuple[int, ...]) -> int | None:
    """The point among `codes` cells with the largest error (nan/inf first)."""
    assert m.cells is not None
    mask = np.isin(m.cells.code[v], codes)
    if not mask.any():
        return None
    err = np.where(mask, m.cells.error[v], -np.inf)
    err = np.where(mask & ~np.isfinite(m.cells.error[v]), np.inf, err)
    return int(np.argmax(err))


def _failure_parts(report: Report, m: MethodReport, v: str, digits: int = 6) -> tuple[str, str | None]:
    """(what failed and by how much, why) for the worst failing cell of m on v."""
    assert m.cells is not None and m.values is not None
    k = _worst(m, v, (judge.FAIL,))
    assert k is not None
    n = int((m.cells.code[v] == judge.FAIL).sum())
    ref = float(report.reference_values[v][k]) if v in report.reference_values else math.nan
    kind = ERROR_KINDS[int(m.cells.kind[v][k])]
    against = "the interval of one-sided derivatives" if kind == "interval" else fmt(ref, digits)
    text = (f"{fmt(float(m.values[v][k]), digits)} against {against} "
            f"(error {fmt_error(float(m.cells.error[v][k]), kind)})")
    if report.size > 1:
        text += f" at {n} of {report.size} points; worst at --at {report.at_text(k)}"
    elif report.points:
        text += f" at --at {report.at_text(k)}"
    return text, m.why(v, k)


def failure_text(report: Report, m: MethodReport, v: str, digits: int = 6) -> str:
    text, why = _failure_parts(report, m, v, digits)
    return f"{m.name} on {v}: {text}" + (f" ({why})" if why else "")


def _codes(report: Report, m: MethodReport) -> np.ndarray:
    """A method's cell codes as one (variables, points) array (the report's variable order)."""
    assert m.cells is not None
    return m.cells.blocks(report.wrt)[0]


def verdict_text(report: Report) -> str:
    ran = [m for m in report.methods if m.ran]
    where = f" at {report.size} points" if report.size > 1 else ""
    if report.verdict == "inconclusive":
        if not report.wrt:
            return f"{MAYBE} inconclusive: nothing to check, the formula has no variables"
        if not ran:
            return f"{MAYBE} inconclusive: no method could run, nothing was checked"
        return f"{MAYBE} inconclusive: no value could be judged, nothing was checked"
    if report.verdict == "pass":
        agree = [m for m in ran if m.cells is not None and bool(
            np.isin(_codes(report, m), (judge.PASS, judge.KINK)).any())]
        others = [m for m in ran if m not in agree and m.name != report.reference]
        lenient = _lenient_count(report)
        if not agree:
            return (f"{PASS} no disagreement{where}: " + (_strict_text(report) or "nothing was contradicted")
                    + (" (--strict fails this)" if lenient else ""))
        if not others:
            text = (f"all {len(ran)} methods that ran agree" if len(ran) > 1
                    else f"the one method that ran, {ran[0].name}, agrees")
        else:
            text = f"{len(agree)} of {len(ran)} methods agree" if len(agree) > 1 else \
                f"{agree[0].name} agrees"
        text = f"{PASS} {text} with the reference ({report.reference}){where}"
        rows = np.zeros(len(report.wrt), dtype=bool)
        for m in ran:
            if m.cells is not None:
                rows |= np.isin(_codes(report, m), judge.JUDGED).any(axis=1)
        judged = int(rows.sum())
        if judged < len(report.wrt):  # say how much was actually checked
            text += f" on the {judged:,} of {len(report.wrt):,} partials that could be judged"
        if others:
            text += "; " + ", ".join(f"{m.name} {_what_else(m, report)}" for m in others)
        return text + (f"; accepted: {lenient}" if lenient else "")
    groups: dict[tuple[str, str, str | None], list[str]] = {}  # the same failure, several methods
    for m in ran:
        if m.cells is None:
            continue
        for r in np.flatnonzero((_codes(report, m) == judge.FAIL).any(axis=1)):
            v = report.wrt[r]
            text, why = _failure_parts(report, m, v)
            groups.setdefault((v, text, why), []).append(m.name)
    parts = [f"{', '.join(names)} on {v}: {text}" + (f" ({why})" if why else "")
             for (v, text, why), names in groups.items()]
    if not parts and report.strict:
        return f"{FAIL} --strict: " + _strict_text(report)
    return f"{FAIL} disagreement with the reference ({report.reference}): " + "; ".join(parts)


def _first_cell(report: Report, code: int) -> tuple[MethodReport, str, int] | None:
    """The first cell with this verdict code (method, variable, point), if any."""
    for m in report.methods:
        if m.cells is None:
            continue
        rows = np.flatnonzero((_codes(report, m) == code).any(axis=1))
        if len(rows):
            v = report.wrt[rows[0]]
            return m, v, int(np.flatnonzero(m.cells.code[v] == code)[0])
    return None


def _strict_text(report: Report) -> str:
    """What --strict failed on, cell kind by cell kind, with the first reason of each."""
    names = {judge.KINK: "f is not differentiable here (a kink)",
             judge.CONVENTION: "an AD convention at a switching point (f itself is differentiable)",
             judge.NONDIFF: "f has no derivative here"}
    out = []
    for code, text in names.items():
        first = _first_cell(report, code)
        if first is not None:
            m, v, k = first
            why = m.why(v, k)
            out.append(f"{text} in {v}" + (f": {why}" if why and code != judge.KINK else ""))
    return "; ".join(out)


def _what_else(m: MethodReport, report: Report) -> str:
    """What a method that judged nothing was instead: its most common cell verdict."""
    assert m.cells is not None
    codes = _codes(report, m).ravel()
    if not len(codes):
        return "judged nothing"
    common = int(np.bincount(codes).argmax())
    return {judge.UNRELIABLE: "was unreliable", judge.NOTRUN: "could not run",
            judge.NOJUDGE: "had no reference", judge.REFERENCE: "was the reference"}.get(
        common, CELL_NAMES[common])


def _lenient_count(report: Report) -> str:
    names = {judge.KINK: "values between the one-sided derivatives at a kink",
             judge.CONVENTION: "an AD convention at a switching point",
             judge.NONDIFF: "any value where f has no derivative",
             judge.UNDEFINED: "a claim undefined at a point where the derivative is defined "
                              "(--where-undefined)"}
    return ", ".join(text for code, text in names.items() if _first_cell(report, code) is not None)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


_CELL_STYLE = {
    judge.PASS: (PASS, "green"), judge.FAIL: (FAIL, "bold red"), judge.KINK: (PASS, "green"),
    judge.CONVENTION: ("convention", "yellow"), judge.NONDIFF: ("not differentiable", "yellow"),
    judge.UNRELIABLE: ("unreliable", "yellow"), judge.NOJUDGE: ("no reference", "yellow"),
    judge.NOTRUN: ("could not run", "yellow"), judge.REFERENCE: ("reference", "dim"),
    judge.UNDEFINED: ("undefined (accepted)", "yellow"),
}


def _cell(m: MethodReport, v: str, digits: int) -> Text:
    if not m.ran or m.cells is None:
        return Text("could not run", style="yellow")
    assert m.values is not None
    code = int(m.cells.code[v][0])
    if code == judge.NOTRUN:
        return Text("could not run", style="yellow")
    t = Text(fmt(float(m.values[v][0]), digits))
    mark, style = _CELL_STYLE[code]
    if code in (judge.PASS, judge.FAIL, judge.KINK):
        err = fmt_error(float(m.cells.error[v][0]), ERROR_KINDS[int(m.cells.kind[v][0])])
        t.append(f"\n{err} ", style="dim")
        t.append(mark, style=style)
        if code == judge.PASS and m.cells.why[v][0] >= 0:  # passed within the float rounding
            t.append(" ≈", style="yellow")
    else:
        t.append(f"\n{mark}", style=style)
    return t


def _reference_cell(report: Report, v: str, digits: int) -> Text:
    if v in report.kinks and report.kinks[v][0][0]:  # at a kink the truth is a pair
        _, left, right = report.kinks[v]
        return Text(f"{fmt(float(left[0]), digits)} ⁻\n{fmt(float(right[0]), digits)} ⁺")
    source = report.reference_source.get(v, np.array([""]))[0]
    if source == "exact" and 0 in report.exact_text:
        text = Text(exact_text(report.exact_text[0][v], digits))
    elif source:
        text = Text(fmt(float(report.reference_values[v][0]), digits))
    else:
        text = Text("none", style="yellow")
    if source and source != report.reference:
        text.append(f"\n{source}", style="dim")
    return text


def _summary_cell(report: Report, m: MethodReport, v: str) -> Text:
    if not m.ran or m.cells is None:
        return Text("could not run", style="yellow")
    c = m.cells.code[v]
    fails = int((c == judge.FAIL).sum())
    good = int(np.isin(c, (judge.PASS, judge.KINK)).sum())
    t = Text()
    if fails:
        t.append(f"{fails}/{report.size} fail ", style="bold red")
        t.append(FAIL, style="bold red")
    else:
        t.append(f"{good}/{report.size} ", style="")
        t.append(PASS if good else MAYBE, style="green" if good else "yellow")
    k = _worst(m, v, (judge.PASS, judge.FAIL))
    if k is not None:
        kind = ERROR_KINDS[int(m.cells.kind[v][k])]
        t.append(f"\nworst {fmt_error(float(m.cells.error[v][k]), kind)}", style="dim")
    for code in (judge.UNRELIABLE, judge.NOJUDGE, judge.NOTRUN, judge.CONVENTION, judge.NONDIFF,
                 judge.REFERENCE):
        n = int((c == code).sum())
        if n:
            t.append(f"\n{n} {CELL_NAMES[code]}", style="yellow")
    return t


def _points_text(report: Report) -> str:
    """'200 points (--seed 1; x in [-3, 3])', or '' for one point."""
    if report.sample is not None:
        s = report.sample
        box = ", ".join(f"{v} in [{lo:g}, {hi:g}]" for v, (lo, hi) in s.domain.items())
        drawn = report.size - len(s.probes)
        count = f"{drawn} point" + ("s" if drawn != 1 else "")
        if s.probes:
            count += f" + {len(s.probes)} probed"
        return f"{count} (--seed {s.seed}; {box})"
    return f"{report.size} points" if report.size > 1 else ""  # (K = 1 is not "1 points")


def _title(report: Report) -> Text:
    title = Text("gradcheck ", style="bold")
    title.append(capped(report.expression))
    if report.size > 1:
        title.append(f"  {_points_text(report)}", style="dim")
    title.append(f"  reference: {reference_label(report)}", style="dim")
    if report.dtype != "float64":
        title.append(f"  methods in {report.dtype}", style="bold yellow")
    return title


def _plain(t: Text | str, ascii_only: bool) -> Text:
    """A cell as it will be drawn: in ASCII when the terminal cannot encode Unicode, converted
    before the table is measured, so columns stay aligned."""
    t = t if isinstance(t, Text) else Text(t)
    return Text(to_ascii(t.plain)) if ascii_only else t


TABLE_ROWS = 50  # variables a table shows at most (JSON always has them all)


def table_variables(report: Report, cap: int = TABLE_ROWS) -> tuple[list[str], str | None]:
    """The variables a table shows, in order, and a line saying what it leaves out (None when
    it shows them all). Over `cap` variables: those with a failing cell first, then those with
    any judged cell, then the rest, `cap` in all — a 33,488-variable net's table is its 16
    checked partials, not 33,488 rows that take a minute to lay out."""
    wrt = list(report.wrt)
    if len(wrt) <= cap:
        return wrt, None
    fail = np.zeros(len(wrt), dtype=bool)
    seen = np.zeros(len(wrt), dtype=bool)
    for m in report.methods:
        if m.cells is None:
            continue
        codes, _ = m.cells.blocks(wrt)
        fail |= (codes == judge.FAIL).any(axis=1)
        seen |= np.isin(codes, (*judge.JUDGED, judge.UNRELIABLE, judge.REFERENCE)).any(axis=1)
    tiers = (np.flatnonzero(fail), np.flatnonzero(seen & ~fail), np.flatnonzero(~seen & ~fail))
    chosen = np.sort(np.concatenate(tiers)[:cap])
    hidden = len(wrt) - len(chosen)
    failing = int(fail.sum()) - int(fail[chosen].sum())
    what = f"{failing:,} of them failing" if failing else "none of them failing"
    return [wrt[i] for i in chosen], (f"{hidden:,} more partials not shown ({what}); "
                                      "--format json has them all")


def _wide_table(report: Report, digits: int, boxes: box.Box, ascii_only: bool = False) -> Table:
    """One row per variable, one column per method."""
    a = ascii_only
    table = Table(title=_plain(_title(report), a), title_justify="left", show_lines=True, box=boxes)
    table.add_column(_plain(f"∂{_f(report)}/∂", a), style="bold", no_wrap=True, min_width=4)
    single = report.size == 1
    if single:
        head = "exact\n(reference)" if report.reference == "exact" else f"reference\n({report.reference})"
        table.add_column(head, justify="right", no_wrap=True)
    for m in report.methods:
        table.add_column(m.name, justify="right", no_wrap=True)
    for v in table_variables(report)[0]:
        if single:
            table.add_row(_plain(v, a), _plain(_reference_cell(report, v, digits), a),
                          *(_plain(_cell(m, v, digits), a) for m in report.methods))
        else:
            table.add_row(_plain(v, a), *(_plain(_summary_cell(report, m, v), a) for m in report.methods))
    return table


def _long_table(report: Report, digits: int, boxes: box.Box, ascii_only: bool = False) -> Table:
    """One row per variable and method: fits a narrow terminal."""
    a = ascii_only
    table = Table(title=_plain(_title(report), a), title_justify="left", show_lines=False, box=boxes)
    table.add_column(_plain(f"∂{_f(report)}/∂", a), style="bold", no_wrap=True)
    table.add_column("method", no_wrap=True)
    table.add_column(_plain("value · error", a), justify="right", no_wrap=True)
    single = report.size == 1
    for v in table_variables(report)[0]:
        if single:
            table.add_row(_plain(v, a), Text("reference"), _plain(_reference_cell(report, v, digits), a))
        for m in report.methods:
            cell = _cell(m, v, digits) if single else _summary_cell(report, m, v)
            table.add_row(_plain(v, a), Text(m.name), _plain(cell, a))
    return table


def _fits(table: Table, width: int) -> bool:
    console = Console(width=100_000, file=io.StringIO())  # measure unclamped
    # the widest a column's content needs: numbers are never folded, so it must all fit
    return Measurement.get(console, console.options, table).maximum <= width


def render_table(report: Report, digits: int = 10, width: int | None = None,
                 ascii_only: bool = False) -> RenderableType:
    """The report as rich renderables. With `width`, the layout that fits: one column per method,
    else one row per variable and method, else plain lines; numbers are never split across
    lines. `ascii_only` draws the boxes in ASCII (for terminals that cannot encode box lines)."""
    boxes = box.ASCII2 if ascii_only else box.HEAVY_HEAD
    table: RenderableType = _wide_table(report, digits, boxes, ascii_only)
    if width is not None and not _fits(table, width):  # type: ignore[arg-type]
        table = _long_table(report, digits, boxes, ascii_only)
        if not _fits(table, width):  # type: ignore[arg-type]
            table = _plain_lines(report, digits)
    lines: list[RenderableType] = []
    single = report.size == 1
    if report.description:
        lines.append(Text(report.description, style="italic"))
    if single:
        lines.append(Text(f"{_f(report)}({point_text(report, digits)}) = {fmt(float(report.f[0]), digits)}",
                          no_wrap=True, overflow="ignore"))  # never split a number
    if not report.wrt:
        lines.append(Text("the formula has no variables: there is no derivative to check", style="yellow"))
    else:
        lines.append(table)
        left_out = table_variables(report)[1]
        if left_out:
            lines.append(Text(left_out, style="dim"))
    for m in report.methods:
        if m.steps is not None and m.ran and single:
            shown = table_variables(report)[0]
            steps = ", ".join(f"h_{k}={fmt(float(m.steps[k][0]), 3)}" for k in shown if k in m.steps)
            lines.append(Text(f"{m.name} steps: {steps}", style="dim"))
    lines.append(Text(
        "error = |value - reference| / |reference|, or absolute (abs) where the reference is 0",
        style="dim",
    ))
    tol = "; ".join(_tolerance_text(m) for m in report.methods if m.name != report.reference)
    if tol:
        lines.append(Text(f"tolerances: {tol}", style="dim"))
    if report.reference_note:
        lines.append(Text(f"reference: {report.reference_note}", style="dim"))
    for text in _cell_notes(report):
        lines.append(Text(text, style="yellow"))
    for d in report.diagnostics:
        lines.append(Text(f"note [{d.kind}]: {d.message}", style="yellow"))
    for text, ok in claim_lines(report) + directional_lines(report):
        lines.append(Text(text, style="bold green" if ok else "bold red"))
    if report.step_partials:
        lines.append(Text("\nstep by step:", style="bold"))
        lines += [Text(f"  {p}") for p in report.step_partials]
    shown = report.formula_latex if report.latex and report.formula_latex else report.formulas
    for v, formula in shown.items():
        lines.append(Text(f"\n∂f/∂{v} (symbolic{', LaTeX' if shown is report.formula_latex else ''}) =",
                          style="bold"))
        lines.append(Text(formula))
    style = {"pass": "bold green", "fail": "bold red"}.get(report.verdict, "bold yellow")
    lines.append(Text(verdict_text(report), style=style))
    if width is not None and width < 40:  # too narrow to wrap prose without splitting numbers
        for line in lines:
            if isinstance(line, Text):
                line.no_wrap, line.overflow = True, "ignore"
    return Group(*lines)


def _plain_lines(report: Report, digits: int) -> Text:
    """The narrowest layout: one line per value, no table."""
    out = Text(no_wrap=True, overflow="ignore")  # the narrowest layout: never split a number
    out.append_text(_title(report))
    for v in table_variables(report)[0]:
        for m in report.methods:
            cell = _cell(m, v, digits) if report.size == 1 else _summary_cell(report, m, v)
            out.append(f"\n∂f/∂{v} {m.name}: ")
            out.append_text(Text(" ").join(cell.split("\n")))
    return out


ASCII = {"✓": "ok", "✗": "X", "∂": "d", "≈": "~", "·": "*", "∞": "inf", "⁻": "-", "⁺": "+",
         "′": "'", "σ": "s", "ρ": "rho", "→": "->", "…": "...", "×": "x", "−": "-", "±": "+/-",
         "≤": "<=", "≥": ">=", "∇": "grad ", "√": "sqrt", "—": "-", "–": "-", "∈": "in"}


def to_ascii(text: str, encoding: str = "ascii") -> str:
    """Text a terminal that cannot encode Unicode can still show: the symbols gradcheck uses
    spelled in ASCII, anything else replaced."""
    for symbol, plain in ASCII.items():
        text = text.replace(symbol, plain)
    return text.encode(encoding, errors="replace").decode(encoding, errors="replace")


def directional_lines(report: Report) -> list[tuple[str, bool]]:
    """A many-variable check: each method's ∇f·d along the random directions, judged."""
    out = []
    for d in report.directional:
        head = f"{d['method']}: ∇f·d along {d['directions']} random directions"
        if d["failed"]:
            w = d["worst"]
            out.append((f"{head} {FAIL} disagrees with {d['reference']}'s at {d['failed']} of "
                        f"{d['failed'] + d['passed']}: direction {w['direction']} gives "
                        f"{fmt(w['value'], 10)} against {fmt(w['reference'], 10)}", False))
        elif d["passed"]:
            out.append((f"{head} {PASS} agrees with {d['reference']}'s ({d['passed']} judged); checked: "
                        f"{d['checked']} (--full checks every variable)", True))
        else:
            out.append((f"{head}: could not be judged", True))
    return out


def claim_lines(report: Report) -> list[tuple[str, bool]]:
    """One line per claimed derivative: its named verdict and evidence."""
    out = []
    for v, c in report.claims.items():
        head = f"claim ∂f/∂{v} = {capped(c.formula)}: "
        if c.verdict in ("correct", "equal-except-undefined"):
            where = f"at all {c.checked} points" if c.checked > 1 else "at the point"
            proof = {"proved": f"; SymPy proves claim − ∂f/∂{v} = 0",
                     "not proved": "; SymPy's simplify could not prove it (the numbers decide)",
                     "too large": "; too large for SymPy to prove (the numbers decide)"
                     }.get(c.proof or "", "")
            if c.verdict == "correct":
                extra = f"; {c.diagnosis}" if c.diagnosis else ""
                out.append((head + f"{PASS} correct ({where}{proof}){extra}", True))
            else:
                out.append((head + f"{PASS} equal except where it is undefined: {c.diagnosis}{proof}", True))
        elif c.verdict == "wrong":
            w = c.witness or {}
            text = (head + f"{FAIL} wrong at {c.failing} of {c.checked} points; e.g. --at {w.get('at')}"
                    + (f" (probed: {w['probe']})" if w.get("probe") else "") + ": "
                    f"claimed {fmt(w.get('claimed', math.nan), 6)}, true {fmt(w.get('true', math.nan), 6)}")
            if c.diagnosis:
                text += f"; {c.diagnosis}"
            out.append((text, False))
        else:
            out.append((head + f"{MAYBE} cannot be judged (no reference at any point)", True))
    return out


def _cell_notes(report: Report) -> list[str]:
    """Why a cell is unreliable, or passed only within the float rounding (one line per method
    and variable)."""
    out = []
    for m in report.methods:
        if m.cells is None:
            continue
        codes, whys = m.cells.blocks(report.wrt)
        noted = ((codes == judge.PASS) & (whys >= 0)) | (codes == judge.UNRELIABLE)
        for r in np.flatnonzero(noted.any(axis=1)):
            v = report.wrt[r]
            rounded = np.flatnonzero((m.cells.code[v] == judge.PASS) & (m.cells.why[v] >= 0))
            if len(rounded):
                at = f" at {len(rounded)} of {report.size} points" if report.size > 1 else ""
                out.append(f"≈ {m.name} on {v}{at}: {m.why(v, int(rounded[0]))}")
            k = _worst(m, v, (judge.UNRELIABLE,))
            if k is not None:
                n = int((m.cells.code[v] == judge.UNRELIABLE).sum())
                at = f" at {n} of {report.size} points" if report.size > 1 else ""
                out.append(f"{m.name} is unreliable for {v}{at}: {m.why(v, k)}")
    return out


def _tolerance_text(m: MethodReport) -> str:
    if m.judged_by == "estimate":
        return f"{m.name} within {judge.ESTIMATE_FACTOR:g}× its own error estimate"
    if m.atol_scaled:  # the floor is rtol × |∂f/∂v|, plus the float rounding where measured
        return f"{m.name} rtol={m.rtol:g}"
    return f"{m.name} rtol={m.rtol:g} atol={m.atol:g}"


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def json_number(x: float) -> float | str:
    """Strict JSON has no NaN or Infinity: non-finite numbers become strings."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _numbers(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if d is None else {k: json_number(v) for k, v in d.items()}


def _array(a: np.ndarray) -> list[Any]:
    return [json_number(x) for x in np.asarray(a, dtype=np.float64)]


def _summary(report: Report, m: MethodReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.cells is None:
        return out
    for v in report.wrt:
        c = m.cells.code[v]
        entry: dict[str, Any] = {name.replace("-", "_"): int((c == code).sum())
                                 for code, name in enumerate(CELL_NAMES)}
        judged = np.isin(c, (judge.PASS, judge.FAIL))
        k = _worst(m, v, (judge.PASS, judge.FAIL))
        entry["worst_error"] = json_number(m.cells.error[v][k]) if k is not None else None
        entry["worst_point"] = ({p: json_number(a[k]) for p, a in report.points.items()}
                                if k is not None else None)
        entry["worst_at"] = report.at_text(k) if k is not None else None
        entry["judged"] = int(judged.sum())
        reasons = {}
        for code in (judge.PASS, judge.FAIL, judge.UNRELIABLE, judge.NOJUDGE, judge.NOTRUN,
                     judge.CONVENTION, judge.NONDIFF):
            hit = np.flatnonzero((c == code) & (m.cells.why[v] >= 0))
            if len(hit):
                why = m.why(v, int(hit[0]))
                if why:
                    reasons[CELL_NAMES[code]] = why
        if reasons:
            entry["reasons"] = reasons
        out[v] = entry
    return out


def _method_status(report: Report, m: MethodReport) -> str:
    """ok: ran at every cell; partial: could not run at some; not-run: at none."""
    if not m.ran or m.cells is None:
        return "not-run"
    if np.any(_codes(report, m) == judge.NOTRUN):
        return "partial"
    return "ok"


def report_dict(report: Report, per_point: bool = False) -> dict[str, Any]:
    single = not report.batched
    methods = []
    for m in report.methods:
        cells = m.status if m.cells is not None else None
        entry: dict[str, Any] = {
            "name": m.name,
            "kind": m.kind,
            "gradient": _numbers(m.gradient) if single else None,
            "error": _numbers(m.error) if single else None,
            "error_kind": m.error_kind if single else None,
            "passed": m.passed if single else None,
            "ok": m.ok,
            "status": _method_status(report, m),
            "cells": cells if single else None,
            "summary": _summary(report, m),
            "rtol": m.rtol,
            "atol": m.atol,
            "atol_scaled": m.atol_scaled,
        }
        if m.steps is not None:
            entry["step"] = _numbers(m.step) if single else None
        if m.estimates is not None and m.ran:
            entry["estimate"] = _numbers(m.estimate) if single else None
        entry["judged_by"] = m.judged_by
        if m.unreliable:
            entry["unreliable"] = m.unreliable
        if m.note is not None:
            entry["note"] = m.note
        if per_point and m.values is not None and m.cells is not None:
            names = np.array(CELL_NAMES, dtype=object)
            entry["per_point"] = {
                "gradient": {v: _array(a) for v, a in m.values.items()},
                "error": {v: _array(a) for v, a in m.cells.error.items()},
                "status": {v: list(names[c]) for v, c in m.cells.code.items()},
            }
        methods.append(entry)
    out: dict[str, Any] = {
        "expression": capped(report.expression, JSON_CHARS) if len(report.expression) > JSON_CHARS
        else report.expression,
        "expression_chars": len(report.expression),
        "description": report.description,
        "point": _numbers(report.point) if single else None,
        "value": json_number(report.value) if single else None,
        "wrt": report.wrt,
        "reference": report.reference,
        "reference_note": report.reference_note,
        "exact": report.exact,
        "methods": methods,
        "ok": report.ok,
        "verdict": report.verdict,
        "points": report.size,
        "diagnostics": [{"kind": d.kind, "message": d.message} for d in report.diagnostics],
        "one_sided": ({v: {"left": json_number(lo), "right": json_number(hi)}
                       for v, (lo, hi) in report.one_sided.items()} if single else {}),
        "strict": report.strict,
        "dtype": report.dtype,
        "graph": {"nodes": report.nodes, "depth": report.depth},
    }
    if single:
        out["reference_source"] = {v: str(s[0]) or None for v, s in report.reference_source.items()}
    if report.sample is not None:
        s = report.sample
        out["sample"] = {"n": s.n, "seed": s.seed, "domain": {v: list(b) for v, b in s.domain.items()},
                         "redrawn": s.redrawn, "dropped": s.dropped, "undefined_where": s.undefined_where,
                         "defined_fraction": s.defined_fraction, "suggested_domain": s.hint,
                         "probed": len(s.probes), "probe_reasons": sorted(set(s.probes))[:20]}
    if per_point:
        out["per_point"] = {
            "points": {v: _array(a) for v, a in report.points.items()},
            "value": _array(report.f),
            "reference": {v: _array(a) for v, a in report.reference_values.items()},
            "reference_source": {v: [str(x) or None for x in a] for v, a in report.reference_source.items()},
        }
    if report.formulas:
        out["formulas"] = report.formula_lines or report.formulas
        if report.formula_latex:
            out["formulas_latex"] = report.formula_latex
    if report.step_partials:
        out["step_partials"] = report.step_partials
    if report.claims:
        out["claims"] = {v: c.to_dict() for v, c in report.claims.items()}
    if report.output_name is not None:
        out["output"] = report.output_name
    if report.directional:
        out["directional"] = [{**d, "worst": _numbers(d["worst"]) if d["worst"] else None}
                              for d in report.directional]
    out["warnings"] = list(report.warnings)
    return out


def to_json(report: Report, per_point: bool = False) -> str:
    return json.dumps(report_dict(report, per_point), indent=2, allow_nan=False)


def error_json(error: GradcheckError) -> str:
    body: dict[str, Any] = {"kind": error.kind, "message": error.message}
    if error.column is not None:
        body["column"] = error.column
    line, line_column = getattr(error, "line", None), getattr(error, "line_column", None)
    if line is not None:  # a program's errors: the line, and the column within it
        body["line"] = line
        body["line_column"] = line_column
    return json.dumps({"error": body}, indent=2, allow_nan=False)


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _md_escape(s: str) -> str:
    for ch in "\\|`*_[]<>#":
        s = s.replace(ch, "\\" + ch)
    return s


def _md_cell(m: MethodReport, v: str, digits: int) -> str:
    if not m.ran or m.cells is None or m.values is None:
        return "could not run"
    code = int(m.cells.code[v][0])
    if code == judge.NOTRUN:
        return "could not run"
    cell = fmt(float(m.values[v][0]), digits)
    if code in (judge.PASS, judge.FAIL, judge.KINK):
        err = fmt_error(float(m.cells.error[v][0]), ERROR_KINDS[int(m.cells.kind[v][0])])
        return f"{cell} ({err} {FAIL if code == judge.FAIL else PASS})"
    return f"{cell} ({_CELL_STYLE[code][0] if code != judge.REFERENCE else 'ref'})"


def to_markdown(report: Report, digits: int = 10) -> str:
    lines = [
        f"### gradcheck `{capped(report.expression).replace('`', '')}`",
        "",
    ]
    if report.description:
        lines += [_md_escape(one_line(report.description)), ""]
    lines += [f"reference: {reference_label(report)}", ""]
    single = report.size == 1
    if single:
        lines += [f"{_md_escape(_f(report))}({_md_escape(point_text(report, digits))}) = "
                  f"{fmt(float(report.f[0]), digits)}", ""]
        head = "exact (reference)" if report.reference == "exact" else f"reference ({report.reference})"
        header = [f"∂{_md_escape(_f(report))}/∂", head] + [m.name for m in report.methods]
    else:
        lines += [_md_escape(_points_text(report)), ""]
        header = [f"∂{_md_escape(_f(report))}/∂"] + [m.name for m in report.methods]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    shown, left_out = table_variables(report)
    for v in shown:
        cells = [_md_escape(v)]
        if single:
            cells.append(_reference_cell(report, v, digits).plain.replace("\n", " "))
            cells += [_md_cell(m, v, digits) for m in report.methods]
        else:
            cells += [_summary_cell(report, m, v).plain.replace("\n", ", ") for m in report.methods]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if left_out:
        lines += [_md_escape(left_out), ""]
    for text in _cell_notes(report):
        lines.append(f"- {_md_escape(text)}")
    for d in report.diagnostics:
        lines.append(f"- **{d.kind}**: {_md_escape(d.message)}")
    for text, _ in claim_lines(report) + directional_lines(report):
        lines.append(f"- {_md_escape(text)}")
    if report.diagnostics or _cell_notes(report) or report.claims or report.directional:
        lines.append("")
    lines.append(f"**{_md_escape(verdict_text(report))}**")
    return "\n".join(lines) + "\n"
