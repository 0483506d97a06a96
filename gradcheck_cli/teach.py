"""What the teaching flags add to a check at one point: `--trace` (the forward and backward
passes step by step, or `--trace forward`: the dual numbers), `--graph FILE` (the DAG with
values and gradients), `--sweep` / `--sweep-plot FILE.svg` (the step-size study) and
`--taylor` (the Taylor-remainder test). Everything is computed before anything is printed, so
an error (Graphviz missing, say) is the only output and nothing is half-written. The
mathematics lives in trace.py, drawing.py, sweep.py and taylor.py; the formats there too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import drawing, judge, sweep, taylor, trace
from .errors import GradcheckError
from .graph import Graph
from .report import Report


@dataclass(frozen=True)
class Asked:
    trace: str | None = None  # "backward" | "forward"
    graph: str | None = None  # a path
    sweep: bool = False
    sweep_plot: str | None = None  # a path (.svg)
    taylor: bool = False

    def __bool__(self) -> bool:
        return bool(self.trace or self.graph or self.sweep or self.sweep_plot or self.taylor)

    def flags(self) -> str:
        names = [("--trace", self.trace), ("--graph", self.graph), ("--sweep", self.sweep),
                 ("--sweep-plot", self.sweep_plot), ("--taylor", self.taylor)]
        return ", ".join(n for n, on in names if on)


@dataclass
class Extras:
    trace: Any = None  # trace.Trace | trace.ForwardTrace
    sweep: Any = None  # sweep.Sweep
    taylor: Any = None  # taylor.TaylorResult
    written: list[str] = field(default_factory=list)  # files written
    taylor_note: str | None = None  # why the Taylor test's verdict does not count

    @property
    def failed(self) -> bool:
        """The Taylor test says the gradient is wrong: the check fails with it."""
        return self.taylor is not None and self.taylor.verdict == "fail" and self.taylor_note is None


def compute(graph: Graph, report: Report, asked: Asked, output: str | None = None) -> Extras:
    if report.size != 1:
        raise GradcheckError("usage", f"{asked.flags()}: one point only; give --at (not --sample or "
                             "arrays).")
    point = {v: float(np.asarray(x).ravel()[0]) for v, x in report.points.items()}
    point.update({v: x for v, x in graph.defaults.items() if v not in point})
    wrt = list(report.wrt)
    out = Extras()
    if asked.trace == "forward":
        direction = wrt[0] if wrt else None
        if direction is None:
            raise GradcheckError("usage", "--trace forward needs a variable to differentiate with "
                                 "respect to.")
        out.trace = trace.trace_forward(graph, point, direction, output=output)
    elif asked.trace or asked.graph:
        out.trace = trace.trace(graph, point, wrt=wrt, output=output)
    if asked.graph:
        t = out.trace if isinstance(out.trace, trace.Trace) else trace.trace(graph, point, wrt=wrt,
                                                                             output=output)
        drawing.write_picture(graph, t.values, t.adjoints, asked.graph, output=t.output)
        out.written.append(asked.graph)
    if asked.sweep or asked.sweep_plot:
        reference: dict[str, float | str] = {}
        for v in wrt:
            exact = (report.exact or {}).get(v)
            reference[v] = exact if exact is not None else float(np.asarray(report.reference_values[v])[0])
        central = next((m for m in report.methods if m.name == "central" and m.steps is not None), None)
        chosen = ({v: float(np.asarray(central.steps[v])[0]) for v in wrt if v in central.steps}
                  if central is not None and central.steps is not None else None)
        out.sweep = sweep.sweep(graph, point, reference, wrt=wrt, output=output, chosen=chosen,
                                notes=_no_derivative(report, wrt))
        if asked.sweep_plot:
            sweep.write_svg(out.sweep, asked.sweep_plot)
            out.written.append(asked.sweep_plot)
    if asked.taylor:
        out.taylor = taylor.taylor(graph, point, wrt=wrt, output=output)
        lenient = any(m.cells is not None and np.isin(m.cells.code[v], judge.LENIENT).any()
                      for m in report.methods for v in wrt)
        if lenient and out.taylor.verdict == "fail":
            out.taylor_note = ("f is not differentiable at this point (a kink or an infinite slope): "
                               "the Taylor test assumes a smooth f, so its order does not count here")
    return out


def _no_derivative(report: Report, wrt: list[str]) -> dict[str, str]:
    """Per variable, why f has no derivative at the (one) point, if the check found so: a kink
    (its one-sided derivatives) or another non-differentiable cell (its reason)."""
    notes: dict[str, str] = {}
    for v in wrt:
        kink = report.kinks.get(v)
        if kink is not None and bool(np.asarray(kink[0])[0]):
            left, right = float(np.asarray(kink[1])[0]), float(np.asarray(kink[2])[0])
            notes[v] = (f"f has a kink here in {v} (one-sided derivatives {left:.6g} and {right:.6g}): "
                        "no step converges to a derivative; the errors measure the distance to the "
                        "reference's convention, and a one-sided difference tends to its side's slope")
            continue
        for m in report.methods:
            if m.cells is not None and v in m.cells.code and m.cells.code[v][0] == judge.NONDIFF:
                why = m.why(v, 0)
                notes[v] = (f"f has no derivative here in {v}" + (f": {why}" if why else "")
                            + "; the step-size study has no derivative to converge to")
                break
    return notes


def settle(report: Report, extras: Extras) -> None:
    """A failing Taylor test fails the check in every format (the exit code, JSON, JUnit)."""
    from .report import Diagnostic

    if extras.failed:
        report.verdict = "fail"
        report.diagnostics.append(Diagnostic(
            "taylor", "the Taylor-remainder test fails: the remainder shrinks like "
            f"h^{extras.taylor.order:.2f}, not h²: the gradient is wrong along a random direction"))
    elif extras.taylor_note:
        report.diagnostics.append(Diagnostic("taylor", extras.taylor_note + "."))


def to_dict(extras: Extras) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if extras.trace is not None:
        body["trace"] = trace.to_dict(extras.trace)
    if extras.sweep is not None:
        body["sweep"] = sweep.to_dict(extras.sweep)
    if extras.taylor is not None:
        body["taylor"] = taylor.to_dict(extras.taylor)
        if extras.taylor_note:
            body["taylor"]["note"] = extras.taylor_note
    if extras.written:
        body["written"] = list(extras.written)
    return body


def to_markdown(extras: Extras, digits: int) -> str:
    parts = []
    if extras.trace is not None:
        parts.append(trace.to_markdown(extras.trace, min(digits, 10)))
    if extras.sweep is not None:
        parts.append(sweep.to_markdown(extras.sweep))
    if extras.taylor is not None:
        parts.append(taylor.to_markdown(extras.taylor))
    return "\n".join(parts)


def renderables(extras: Extras, digits: int, ascii_only: bool, before: bool) -> list[Any]:
    """What the table shows before the check's own table (the trace) or after it (the rest)."""
    if before:
        return [trace.to_rich(extras.trace, min(digits, 10), ascii_only)] if extras.trace is not None else []
    out: list[Any] = []
    if extras.sweep is not None:
        out.append(sweep.to_rich(extras.sweep, ascii_only=ascii_only))
    if extras.taylor is not None:
        out.append(taylor.to_rich(extras.taylor, ascii_only=ascii_only))
    out += [f"wrote {path}" for path in extras.written]
    return out
