"""One check: formula and point in, every method's gradient and a verdict out (a Report)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from . import finite, forward, reverse, symbolic
from .compare import compare
from .errors import GradcheckError
from .explain import describe_trouble
from .graph import Graph, evaluate, first_trouble, natural_key
from .limits import DEFAULT_LIMITS, Limits
from .parse import CONSTANT_NAMES, parse
from .report import Diagnostic, MethodReport, Report

METHODS = ("reverse", "forward", "symbolic", "central")


def check(
    expression: str,
    point: Mapping[str, float],
    *,
    wrt: Sequence[str] | None = None,
    methods: Sequence[str] = METHODS,
    reference: str = "symbolic",
    rtol: float | None = None,
    atol: float | None = None,
    step: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
    show_formula: bool = False,
) -> Report:
    """Check the gradient of `expression` at `point`. Raises GradcheckError on bad input."""
    graph = parse(expression, limits)
    names = _validate_point(graph, point)
    wrt_list = _validate_wrt(graph, wrt)
    for name in list(methods) + [reference]:
        if name not in METHODS:
            raise GradcheckError(
                "usage", f"unknown method {name!r}; the methods are {', '.join(METHODS)}."
            )
    arrays = {n: np.asarray(float(point[n]), dtype=np.float64) for n in names}

    values = evaluate(graph, arrays)
    trouble = first_trouble(graph, values)
    if trouble is not None:
        raise GradcheckError(
            "undefined",
            f"the formula is not finite at this point: {describe_trouble(graph, trouble)}.",
        )
    wanted = list(dict.fromkeys([*methods, reference]))
    formulas: dict[str, str] = {}
    results = [_run(name, graph, arrays, wrt_list, step, formulas if show_formula else None)
               for name in METHODS if name in wanted]
    ref_name, ok, diagnostics = compare(results, wrt_list, reference, rtol, atol)
    if ref_name is None:
        diagnostics.append(Diagnostic("no-reference", "no method could run, so nothing was compared."))
    return Report(
        expression=expression,
        point={n: float(point[n]) for n in names},
        value=float(values[graph.output]),
        wrt=wrt_list,
        reference=ref_name or reference,
        methods=[r for r in results if r.name in methods or r.name == ref_name],
        ok=ok,
        diagnostics=diagnostics,
        formulas=formulas,
        nodes=len(graph),
        depth=graph.depth(),
    )


def _scalar(d: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()}


def _run(
    name: str,
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    step: float | None,
    formulas: dict[str, str] | None,
) -> MethodReport:
    """Run one method; the symbolic one also fills `formulas` (when given) with its derivatives."""
    if name == "reverse":
        return MethodReport(name, _scalar(reverse.gradient(graph, point, wrt)))
    if name == "forward":
        return MethodReport(name, _scalar(forward.gradient(graph, point, wrt)))
    if name == "symbolic":
        res = symbolic.gradient(graph, point, wrt, keep_formulas=formulas is not None)
        if formulas is not None:
            formulas.update({v: _pretty(e) for v, e in res.derivatives.items()})
        return MethodReport(name, _scalar(res.gradient) if res.gradient is not None else None,
                            note=res.note)
    res_fd = finite.central(graph, point, wrt, step)
    return MethodReport(
        name,
        _scalar(res_fd.gradient) if res_fd.gradient is not None else None,
        note=res_fd.note,
        step=_scalar(res_fd.step),
    )


def _pretty(expr: object) -> str:
    import sympy as sp

    try:
        return sp.pretty(expr, use_unicode=True)
    except RecursionError:
        return "(too deeply nested to print)"


def _validate_point(graph: Graph, point: Mapping[str, float]) -> list[str]:
    for name in point:
        if name in CONSTANT_NAMES:
            raise GradcheckError(
                "bad-variable",
                f"{name!r} is a constant ({'pi' if name == 'pi' else 'E = 2.718...'}) and cannot "
                "be given a value; rename the variable.",
            )
        if name not in graph.var_nodes:
            known = ", ".join(graph.variables) or "none"
            raise GradcheckError(
                "unknown-variable",
                f"--at names {name!r}, which is not a variable of the formula "
                f"(its variables: {known}).",
            )
    missing = [v for v in graph.variables if v not in point]
    if missing:
        raise GradcheckError(
            "missing-value",
            f"no value for {', '.join(missing)}: give every variable a value with "
            f"--at, e.g. --at {','.join(f'{v}=1.0' for v in missing)}.",
        )
    for name, value in point.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GradcheckError("bad-value", f"the value of {name} must be a finite number, not {value!r}.")
    return sorted(point, key=natural_key)


def _validate_wrt(graph: Graph, wrt: Sequence[str] | None) -> list[str]:
    if wrt is None:
        return list(graph.variables)
    seen = []
    for name in wrt:
        if name not in graph.var_nodes:
            known = ", ".join(graph.variables) or "none"
            raise GradcheckError(
                "unknown-variable",
                f"--wrt names {name!r}, which is not a variable of the formula (its variables: {known}).",
            )
        if name not in seen:
            seen.append(name)
    return seen
