"""The step-size study: how the error of a finite difference depends on its step (the "V").

For each variable x and each step h = 10^-k · max(1, |x|), k = 1 … 16 (so the picture looks the
same at x = 1.5 and at x = 1e6), three estimates of ∂f/∂x are compared with a reference
gradient the caller supplies (the exact one, in gradcheck; tests use mpmath or a hand value):

- forward   (f(x + h) - f(x)) / h:          truncation |f''| h/2,  rounding ~ eps |f| / h;
- central   (f(x + h) - f(x - h)) / 2h:     truncation |f'''| h²/6, rounding ~ eps |f| / h;
- complex   Im f(x + ih) / h:               truncation |f'''| h²/6 relative to f', and no
  subtraction, so no rounding term: it keeps improving down to the smallest step.

Balancing the two terms predicts the best steps ≈ √eps · max(1, |x|) (forward) and
∛eps · max(1, |x|) (central); `predicted_steps` gives both, and the study also marks the step
gradcheck's central method chose (`finite.default_step`, or what the caller passes). As in
finite.py, a difference is divided by the distance the rounded points really are apart; where
x + h rounds to x the difference is exactly 0, and so is the estimate (its error is then the
whole derivative, which is what such a step really gives).

Errors are relative (|estimate - reference| / |reference|), or absolute where the reference is
0. A log axis cannot show 0, so an error below `FLOOR` (relative; FLOOR · max(1, |f|) absolute)
is plotted at that floor and flagged `floored`; the table and JSON keep the raw error. A
reference given as a decimal string (the exact reference's text) is compared in mpmath at 40
digits, so a complex-step estimate that is exact to rounding shows its true, tiny error
rather than 0. Non-finite errors are not plotted and are "nan"/"inf" strings in JSON.

Renderers: a log–log plot drawn with plain characters (rich Text; no plotting dependency), a
table, markdown, a JSON-able dict, and a hand-written SVG file for a handout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .drawing import write_atomic
from .errors import GradcheckError
from .finite import default_step
from .graph import Graph
from .interpret import NotComplexCapable, Shifted, Values, evaluate_output
from .render import json_number, to_ascii
from .rules import RULES
from .trace import dname, num, one_point, resolve_output, step_names

METHODS = ("forward", "central", "complex")
DECADES = tuple(range(1, 17))  # h = 10^-k · max(1, |x|), k = 1 … 16
FLOOR = 1e-20
MARKERS = {"forward": "+", "central": "o", "complex": "x"}
STYLES = {"forward": "yellow", "central": "green", "complex": "magenta"}
COLOURS = {"forward": "#d95f02", "central": "#1b9e77", "complex": "#7570b3"}
LABELS = {"forward": "forward (f(x+h) - f(x))/h", "central": "central (f(x+h) - f(x-h))/2h",
          "complex": "complex step Im f(x+ih)/h"}


def predicted_steps(x: float, dtype: type = np.float64) -> dict[str, float]:
    """The steps that balance truncation against rounding: √eps·max(1,|x|) for the forward
    difference, ∛eps·max(1,|x|) for the central one (the complex step has no best: smaller is
    never worse until underflow)."""
    eps = float(np.finfo(dtype).eps)
    scale = max(1.0, abs(x))
    return {"forward": math.sqrt(eps) * scale, "central": float(np.cbrt(eps)) * scale}


def central_step(x: float, dtype: type = np.float64) -> float:
    """The step gradcheck's central method takes when none is given (finite.default_step)."""
    return float(default_step(np.asarray(x, dtype=dtype), dtype))


@dataclass(frozen=True)
class Column:
    method: str
    estimate: tuple[float, ...]
    error: tuple[float, ...]  # raw, relative or absolute (nan where the estimate is not finite)
    plotted: tuple[float | None, ...]  # error raised to the floor; None: not plotted
    floored: tuple[bool, ...]
    note: str | None = None  # why the method did not run (then every tuple is empty)

    def best(self, steps: Sequence[float]) -> tuple[float, float] | None:
        """(step, error) of the smallest finite error (the largest such step on a tie)."""
        finite = [(e, k) for k, e in enumerate(self.error) if math.isfinite(e)]
        if not finite:
            return None
        e, k = min(finite)  # steps run from large to small: the first minimum is the largest step
        return steps[k], e


@dataclass(frozen=True)
class VariableSweep:
    name: str
    of: str  # the output's name (f, or a program's step)
    x: float
    reference: float
    error_kind: str  # "relative" or "absolute" (the reference is 0)
    floor: float
    steps: tuple[float, ...]
    columns: dict[str, Column]
    predicted: dict[str, float]
    chosen: float | None  # the step gradcheck's central method used
    note: str | None = None  # why no step converges to a derivative here (a kink), if so


@dataclass(frozen=True)
class Sweep:
    output_name: str
    point: dict[str, float]
    value: float
    variables: tuple[VariableSweep, ...]


def sweep(
    graph: Graph,
    point: Mapping[str, Any],
    reference: Mapping[str, float | str],
    wrt: Sequence[str] | None = None,
    output: int | str | None = None,
    chosen: Mapping[str, float] | None = None,
    decades: Sequence[float] = DECADES,
    notes: Mapping[str, str] | None = None,
) -> Sweep:
    """The step-size study at one point for every variable of `wrt` (see the module docstring).
    `reference[v]` is ∂f/∂v (a float, or an exact decimal string); `chosen[v]` the central
    step gradcheck used (default: `central_step`); `decades` the k of h = 10^-k · max(1, |x|)
    (1 … 16; fractions give a finer grid); `notes[v]` says why f′ does not exist there (a kink),
    where the study's errors measure the distance to a convention, not to a derivative."""
    p = one_point(graph, point)
    out = resolve_output(graph, output)
    wrt = list(graph.variables if wrt is None else wrt)
    missing = [v for v in wrt if v not in reference]
    if missing:
        raise GradcheckError("usage", f"the step-size study needs a reference for {', '.join(missing[:10])}.")
    f0 = float(np.asarray(evaluate_output(graph, Values(p), out)))
    of = step_names(graph, out).output_name
    results = []
    for name in wrt:
        x = p.get(name, 0.0)
        scale = max(1.0, abs(x))
        hs = np.array([10.0 ** -k * scale for k in decades])
        ref_text = reference[name]
        ref = float(ref_text)
        kind = "relative" if ref != 0 else "absolute"
        floor = FLOOR if kind == "relative" else FLOOR * max(1.0, abs(f0)) if math.isfinite(f0) else FLOOR
        estimates, not_run = _estimates(graph, p, name, x, hs, f0, out)
        columns = {}
        for method in METHODS:
            if method in not_run:
                columns[method] = Column(method, (), (), (), (), not_run[method])
                continue
            est = estimates[method]
            err = _errors(est, ref_text, ref)
            plotted = tuple(max(e, floor) if math.isfinite(e) else None for e in err)
            columns[method] = Column(method, tuple(float(v) for v in est), err, plotted,
                                     tuple(math.isfinite(e) and e < floor for e in err))
        h_chosen = chosen.get(name) if chosen is not None else central_step(x)
        results.append(VariableSweep(name, of, x, ref, kind, floor, tuple(float(h) for h in hs), columns,
                                     predicted_steps(x), None if h_chosen is None else float(h_chosen),
                                     (notes or {}).get(name)))
    return Sweep(of, p, f0, tuple(results))


def _at(graph: Graph, p: Mapping[str, float], name: str, xs: np.ndarray, out: int) -> np.ndarray:
    """f with the variable `name` at each of xs (one walk for all steps)."""
    f = evaluate_output(graph, Values({**p, name: xs}), out)
    return np.broadcast_to(np.asarray(f, dtype=np.float64), xs.shape)


def _estimates(graph: Graph, p: Mapping[str, float], name: str, x: float, hs: np.ndarray, f0: float,
               out: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    estimates: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}
    with np.errstate(all="ignore"):
        xp, xm = x + hs, x - hs
        fp, fm = _at(graph, p, name, xp, out), _at(graph, p, name, xm, out)
        # where x + h rounds to x, f(x + h) - f(x) is exactly 0: so is the estimate
        estimates["forward"] = np.where(xp != x, (fp - f0) / np.where(xp != x, xp - x, 1.0), 0.0)
        estimates["central"] = np.where(xp != xm, (fp - fm) / np.where(xp != xm, xp - xm, 1.0), 0.0)
    dep = graph.depends_on([name])
    blocked = next((n.op for i, n in enumerate(graph.nodes) if dep[i] and n.args
                    and not RULES[n.op].smooth), None)
    if blocked is not None:
        notes["complex"] = f"the complex step needs an analytic formula; {blocked} is not analytic"
        return estimates, notes
    try:
        with np.errstate(all="ignore"):
            z = evaluate_output(graph, Shifted(p, name, x + 1j * hs, np.float64, dep), out)
            estimates["complex"] = np.broadcast_to(np.imag(np.asarray(z)), hs.shape) / hs
    except NotComplexCapable as exc:
        notes["complex"] = str(exc)
    return estimates, notes


def _errors(estimates: np.ndarray, ref_text: float | str, ref: float) -> tuple[float, ...]:
    """|estimate - reference| (/ |reference| unless it is 0); in mpmath for a decimal string."""
    out = []
    if isinstance(ref_text, str) and math.isfinite(ref):
        import mpmath

        with mpmath.workdps(40):
            r = mpmath.mpf(ref_text)
            for e in estimates:
                if not math.isfinite(e):
                    out.append(math.nan)
                    continue
                d = abs(mpmath.mpf(float(e)) - r)
                out.append(float(d / abs(r)) if r != 0 else float(d))
        return tuple(out)
    for e in estimates:
        d = abs(float(e) - ref)
        out.append(d / abs(ref) if ref != 0 and math.isfinite(d) else d if math.isfinite(d) else math.nan)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# The terminal plot
# --------------------------------------------------------------------------------------------


def _log(v: float) -> float:
    return math.log10(v)


def plot(v: VariableSweep, width: int = 64, height: int = 16, ascii_only: bool = False) -> Text:
    """A log–log plot of error against step, drawn with characters: one marker per method and
    step (+ forward, o central, x complex, * where two meet), dotted verticals at the predicted
    best steps (F forward, C central) and a solid one at the step gradcheck chose (h)."""
    vline, axis_v, axis_h, corner, tick = ((":", "|", "-", "+", "+") if ascii_only
                                           else ("┊", "│", "─", "└", "┤"))
    xs = [_log(h) for h in v.steps]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:  # one step only
        x_lo, x_hi = x_lo - 1, x_hi + 1
    ys = [_log(e) for c in v.columns.values() for e in c.plotted if e is not None]
    if not ys:
        return Text(f"{v.name}: no finite error to plot")
    y_lo, y_hi = math.floor(min(ys)), math.ceil(max(ys))
    if y_hi == y_lo:
        y_hi += 1

    def col(lx: float) -> int:
        return round((lx - x_lo) / (x_hi - x_lo) * (width - 1))

    def row(ly: float) -> int:
        return round((y_hi - ly) / (y_hi - y_lo) * (height - 1))

    grid = [[" "] * width for _ in range(height)]
    styles: list[list[str]] = [[""] * width for _ in range(height)]
    marks: dict[int, str] = {}
    lines = [("F", v.predicted["forward"], vline), ("C", v.predicted["central"], vline)]
    if v.chosen is not None:
        lines.append(("h", v.chosen, axis_v))
    off = []
    for label, h, ch in lines:
        lx = _log(h)
        if not x_lo - 1e-9 <= lx <= x_hi + 1e-9:
            off.append(f"{label} = {num(h, 3)} is off the plot")
            continue
        c = col(lx)
        marks[c] = marks.get(c, "") + label
        for r in range(height):
            grid[r][c] = ch
            styles[r][c] = "dim"
    for method, column in v.columns.items():
        for lx, e in zip(xs, column.plotted):
            if e is None:
                continue
            r, c = row(_log(e)), col(lx)
            here = grid[r][c]
            grid[r][c] = "*" if here in MARKERS.values() and here != MARKERS[method] else MARKERS[method]
            styles[r][c] = STYLES[method]
    stride = max(1, math.ceil((y_hi - y_lo) / max(1, height // 2)))
    labels = {}
    for d in range(y_hi, y_lo - 1, -1):
        if (y_hi - d) % stride == 0:
            labels.setdefault(row(d), f"1e{d:+03d}" if d else "1")
    pad = max(len(s) for s in labels.values()) + 1
    out = Text(no_wrap=True, overflow="ignore")
    kind = "relative error" if v.error_kind == "relative" else "absolute error"
    out.append(f"{kind} of ∂{dname(v.of)}/∂{v.name} against the step h (log–log), at {v.name} = {num(v.x)}\n",
               style="bold")
    header = [" "] * width
    for c, label in marks.items():
        for k, ch in enumerate(label):
            if c + k < width:
                header[c + k] = ch
    out.append(" " * (pad + 1) + "".join(header).rstrip() + "\n", style="dim")
    for r in range(height):
        label = labels.get(r, "")
        out.append(label.rjust(pad) + (tick if label else axis_v), style="dim")
        for c in range(width):
            out.append(grid[r][c], style=styles[r][c] or None)
        out.append("\n")
    out.append(" " * pad + corner + axis_h * width + "\n", style="dim")
    ticks = [" "] * (width + 8)
    first = math.ceil(x_lo - 1e-9)
    for d in range(first, math.floor(x_hi + 1e-9) + 1):
        if (d - first) % 3:
            continue
        text = f"1e{d:+03d}" if d else "1"
        c = max(0, min(col(d) - len(text) // 2, width + 8 - len(text)))
        if all(ch == " " for ch in ticks[max(0, c - 1):c + len(text) + 1]):
            ticks[c:c + len(text)] = list(text)
    out.append(" " * (pad + 1) + "".join(ticks).rstrip() + "   h\n", style="dim")
    legend = "  ".join(f"{MARKERS[m]} {m}" for m in v.columns if v.columns[m].note is None)
    out.append(f"{legend}  * overlap\nF, C: predicted best steps (forward {num(v.predicted['forward'], 3)}, "
               f"central {num(v.predicted['central'], 3)})")
    if v.chosen is not None:
        out.append(f"\nh: gradcheck's central step {num(v.chosen, 3)}")
    for text in off:
        out.append(f"\n{text}")
    for column in v.columns.values():
        if column.note:
            out.append(f"\n{column.method}: {column.note}", style="yellow")
    if ascii_only:
        out = Text(to_ascii(out.plain), no_wrap=True, overflow="ignore")
    return out


# --------------------------------------------------------------------------------------------
# Table, text, markdown, JSON, SVG
# --------------------------------------------------------------------------------------------


def _err_text(e: float) -> str:
    if math.isnan(e):
        return "nan"
    if e == 0:
        return "0"
    return f"{e:.1e}"


def _rows(v: VariableSweep, digits: int) -> tuple[list[str], list[list[str]], set[tuple[int, int]]]:
    """Header, rows and the (row, column) cells of each method's smallest error."""
    head = ["h"]
    methods = [m for m in METHODS if v.columns[m].note is None]
    for m in methods:
        head += [m, "error"]
    rows = []
    for k, h in enumerate(v.steps):
        r = [num(h, 3)]
        for m in methods:
            c = v.columns[m]
            r += [num(c.estimate[k], digits), _err_text(c.error[k])]
        rows.append(r)
    best = set()
    for j, m in enumerate(methods):
        b = v.columns[m].best(v.steps)
        if b is not None:
            best.add((v.steps.index(b[0]), 2 + 2 * j))
    return head, rows, best


def _summary(v: VariableSweep) -> list[str]:
    lines = [f"reference ∂{dname(v.of)}/∂{v.name} = {num(v.reference, 17)}; errors are {v.error_kind}"]
    for m in METHODS:
        c = v.columns[m]
        if c.note:
            lines.append(f"{m}: not run: {c.note}")
            continue
        b = c.best(v.steps)
        if b is None:
            lines.append(f"{m}: no finite estimate")
            continue
        pred = v.predicted.get(m)
        tail = f" (predicted {num(pred, 3)})" if pred is not None else ""
        lines.append(f"{m}: smallest error {_err_text(b[1])} at h = {num(b[0], 3)}{tail}")
    if v.chosen is not None:
        lines.append(f"gradcheck's central step: h = {num(v.chosen, 3)}")
    if v.note:
        lines.append(f"note: {v.note}")
    return lines


def to_text(s: Sweep, digits: int = 10, width: int = 64, height: int = 16, ascii_only: bool = False) -> str:
    """Plot, table and summary for every variable, as plain text."""
    parts = []
    for v in s.variables:
        parts.append(plot(v, width, height, ascii_only).plain)
        head, rows, best = _rows(v, digits)
        marked = [[cell + ("*" if (k, j) in best else "") for j, cell in enumerate(r)]
                  for k, r in enumerate(rows)]
        widths = [max(len(r[c]) for r in [head, *marked]) for c in range(len(head))]
        parts.append("\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths))
                               for r in [head, *marked]))
        parts.append("\n".join([*_summary(v), "(* the smallest error of each method)"]))
    text = "\n\n".join(parts) + "\n"
    return to_ascii(text) if ascii_only else text


def to_rich(s: Sweep, digits: int = 10, width: int = 64, height: int = 16,
            ascii_only: bool = False) -> RenderableType:
    parts: list[RenderableType] = []
    for v in s.variables:
        parts.append(plot(v, width, height, ascii_only))
        head, rows, best = _rows(v, digits)
        table = Table(box=box.ASCII2 if ascii_only else box.SIMPLE_HEAD)
        for h in head:
            table.add_column(Text(h), justify="right", no_wrap=True)
        for k, r in enumerate(rows):
            table.add_row(*(Text(cell, style="bold" if (k, j) in best else "") for j, cell in enumerate(r)))
        parts.append(table)
        for line in _summary(v):
            parts.append(Text(to_ascii(line) if ascii_only else line, style="dim"))
    return Group(*parts)


def to_markdown(s: Sweep, digits: int = 10) -> str:
    lines = []
    for v in s.variables:
        lines += [f"### Step-size study: `∂{dname(s.output_name)}/∂{v.name}` at `{v.name} = {num(v.x)}`", ""]
        head, rows, best = _rows(v, digits)
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---:"] * len(head)) + "|")
        for k, r in enumerate(rows):
            cells = [f"**{c}**" if (k, j) in best else c for j, c in enumerate(r)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += [f"- {line}" for line in _summary(v)]
        lines.append("")
    return "\n".join(lines)


def to_dict(s: Sweep) -> dict[str, Any]:
    """JSON-able (strict: non-finite numbers are "nan", "inf", "-inf"; None is null)."""
    def column(c: Column, steps: Sequence[float]) -> dict[str, Any]:
        if c.note is not None:
            return {"ran": False, "note": c.note}
        b = c.best(steps)
        return {"ran": True, "estimate": [json_number(e) for e in c.estimate],
                "error": [json_number(e) for e in c.error],
                "plotted": [None if e is None else json_number(e) for e in c.plotted],
                "floored": list(c.floored),
                "best": None if b is None else {"step": b[0], "error": json_number(b[1])}}

    return {
        "kind": "sweep", "output": s.output_name,
        "point": {k: json_number(x) for k, x in s.point.items()}, "value": json_number(s.value),
        "variables": [{
            "name": v.name, "x": json_number(v.x), "reference": json_number(v.reference),
            "error_kind": v.error_kind, "floor": v.floor, "steps": list(v.steps),
            "predicted": dict(v.predicted), "chosen": v.chosen, "note": v.note,
            "methods": {m: column(c, v.steps) for m, c in v.columns.items()},
        } for v in s.variables],
    }


def to_svg(s: Sweep, panel_width: int = 640, panel_height: int = 400) -> str:
    """A hand-written SVG: one log–log panel per variable, a line per method, dashed lines at
    the predicted best steps, a grey one at gradcheck's central step."""
    left, right, top, bottom = 72, 180, 40, 48
    pw, ph = panel_width - left - right, panel_height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{panel_width}" '
           f'height="{panel_height * max(1, len(s.variables))}" font-family="Helvetica, Arial, sans-serif" '
           'font-size="12">', '<rect width="100%" height="100%" fill="white"/>']
    for n, v in enumerate(s.variables):
        y0 = n * panel_height
        xs = [_log(h) for h in v.steps]
        x_lo, x_hi = min(xs), max(xs)
        if x_hi == x_lo:
            x_lo, x_hi = x_lo - 1, x_hi + 1
        ys = [_log(e) for c in v.columns.values() for e in c.plotted if e is not None]
        y_lo, y_hi = (math.floor(min(ys)), math.ceil(max(ys))) if ys else (-16, 0)
        if y_hi == y_lo:
            y_hi += 1

        def px(lx: float, x_lo: float = x_lo, x_hi: float = x_hi) -> float:
            return left + (lx - x_lo) / (x_hi - x_lo) * pw

        def py(ly: float, y_lo: float = y_lo, y_hi: float = y_hi, y0: float = y0) -> float:
            return y0 + top + (y_hi - ly) / (y_hi - y_lo) * ph

        title = (f"∂{dname(s.output_name)}/∂{v.name} at {v.name} = {num(v.x)}: "
                 f"{v.error_kind} error against the step h")
        out.append(f'<text x="{left}" y="{y0 + 24}" font-size="14" font-weight="bold">{escape(title)}</text>')
        out.append(f'<rect x="{left}" y="{y0 + top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
        ystride = max(1, math.ceil((y_hi - y_lo) / 10))
        for d in range(y_lo, y_hi + 1):
            y = py(d)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#e5e5e5"/>')
            if (d - y_lo) % ystride == 0:
                out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">1e{d}</text>')
        for d in range(math.ceil(x_lo - 1e-9), math.floor(x_hi + 1e-9) + 1):
            x = px(d)
            out.append(f'<line x1="{x:.1f}" y1="{y0 + top}" x2="{x:.1f}" y2="{y0 + top + ph}" '
                       'stroke="#e5e5e5"/>')
            if d % 3 == 0 or d == math.floor(x_hi + 1e-9):
                out.append(f'<text x="{x:.1f}" y="{y0 + top + ph + 16}" text-anchor="middle">1e{d}</text>')
        out.append(f'<text x="{left + pw / 2}" y="{y0 + panel_height - 10}" '
                   'text-anchor="middle">step h</text>')
        marks = [(f"predicted forward {num(v.predicted['forward'], 3)}", v.predicted["forward"],
                  COLOURS["forward"], "5,4"),
                 (f"predicted central {num(v.predicted['central'], 3)}", v.predicted["central"],
                  COLOURS["central"], "5,4")]
        if v.chosen is not None:
            marks.append((f"gradcheck's central step {num(v.chosen, 3)}", v.chosen, "#888888", ""))
        for _, h, colour, dash in marks:
            lx = _log(h)
            if x_lo <= lx <= x_hi:
                dashed = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<line x1="{px(lx):.1f}" y1="{y0 + top}" x2="{px(lx):.1f}" y2="{y0 + top + ph}" '
                           f'stroke="{colour}" stroke-width="1.5"{dashed}/>')
        legend_y = y0 + top + 8
        for m, c in v.columns.items():
            if c.note is not None:
                continue
            segments, current = [], []
            for lx, e in zip(xs, c.plotted):
                if e is None:
                    if current:
                        segments.append(current)
                    current = []
                else:
                    current.append(f"{px(lx):.1f},{py(_log(e)):.1f}")
            if current:
                segments.append(current)
            for seg in segments:
                out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{COLOURS[m]}" '
                           'stroke-width="2"/>')
                for pt in seg:
                    cx, cy = pt.split(",")
                    out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{COLOURS[m]}"/>')
            out.append(f'<line x1="{left + pw + 10}" y1="{legend_y}" x2="{left + pw + 30}" y2="{legend_y}" '
                       f'stroke="{COLOURS[m]}" stroke-width="2"/>')
            out.append(f'<text x="{left + pw + 34}" y="{legend_y + 4}">{escape(m)}</text>')
            legend_y += 18
        for text, _, colour, dash in marks:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<line x1="{left + pw + 10}" y1="{legend_y}" x2="{left + pw + 30}" y2="{legend_y}" '
                       f'stroke="{colour}" stroke-width="1.5"{dashed}/>')
            out.append(f'<text x="{left + pw + 34}" y="{legend_y + 4}" font-size="10">{escape(text)}</text>')
            legend_y += 18
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(s: Sweep, path: str) -> None:
    """`--sweep-plot FILE.svg`: the SVG, written whole or not at all."""
    if not str(path).lower().endswith(".svg"):
        raise GradcheckError("usage", "the step-size plot is an SVG file: its name must end in .svg.")
    write_atomic(path, to_svg(s))
