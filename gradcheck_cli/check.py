"""One check: formula and point in, every method's gradient and a verdict out (a Report)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import finite, forward, kinks, reverse, symbolic
from .compare import compare
from .errors import GradcheckError
from .explain import describe_trouble
from .graph import Graph, evaluate, first_trouble, natural_key
from .limits import DEFAULT_LIMITS, Limits
from .parse import CONSTANT_NAMES, parse
from .report import Diagnostic, MethodReport, Report

METHODS = ("reverse", "forward", "symbolic", "central", "richardson", "complex")
DEFAULT_METHODS = ("reverse", "forward", "symbolic", "central")
REFERENCES = ("auto", "exact", *METHODS)
FINITE_METHODS = {"central": finite.central, "richardson": finite.richardson,
                  "complex": finite.complex_step}


@dataclass(frozen=True)
class Options:
    """Everything that tunes a check; the CLI's flags map onto these one to one."""

    wrt: Sequence[str] | None = None  # default: every variable
    methods: Sequence[str] = DEFAULT_METHODS  # any of METHODS; "all" for every one
    reference: str = "auto"  # exact when it fits the symbolic budget, else symbolic
    rtol: float | None = None  # None: each method's default (compare.DEFAULT_TOLERANCES)
    atol: float | None = None
    step: float | None = None  # finite-difference step; None: cbrt(eps)*max(1,|x|)
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    show_formula: bool = False
    symbolic_timeout: float = symbolic.SYMBOLIC_TIMEOUT
    symbolic_memory: int | None = symbolic.SYMBOLIC_MEMORY
    exact_digits: int = symbolic.EXACT_DIGITS
    strict: bool = False  # a point where f is not differentiable fails the check
    dtype: str = "float64"  # float32: AD and finite differences run in float32


def check(expression: str, point: Mapping[str, float], **options: Any) -> Report:
    """Check the gradient of `expression` at `point`. Raises GradcheckError on bad input.

    Keyword arguments are the fields of `Options`."""
    try:
        opts = replace(Options(), **options)
    except TypeError as exc:
        raise GradcheckError("usage", str(exc)) from None
    if list(opts.methods) == ["all"]:
        opts = replace(opts, methods=METHODS)
    graph = parse(expression, opts.limits)
    names = _validate_point(graph, point)
    wrt = _validate_wrt(graph, opts.wrt)
    _validate_methods(opts)
    dtype = DTYPES[opts.dtype]
    # In float32 the point itself is what a float32 model sees: rounded to float32. Every
    # method, and the exact reference, is taken at that same point.
    given = {n: float(dtype(point[n])) for n in names}
    arrays = {n: np.asarray(given[n], dtype=dtype) for n in names}

    values = evaluate(graph, arrays, dtype)
    trouble = first_trouble(graph, values)
    diagnostics: list[Diagnostic] = []
    if trouble is not None:
        if not np.all(np.isfinite(values[graph.output])):
            raise GradcheckError(
                "undefined",
                f"the formula is not finite at this point: {describe_trouble(graph, trouble)}.",
            )
        diagnostics.append(Diagnostic(
            "overflow",
            f"f is finite here but a step of it is not: {describe_trouble(graph, trouble)}. "
            "Derivatives through that step may be nan or inf.",
        ))

    wants_exact = opts.reference in ("auto", "exact")
    needs_symbolic = "symbolic" in opts.methods or opts.reference == "symbolic" or wants_exact
    sym = None
    if needs_symbolic:
        sym = symbolic.gradient(
            graph, given, wrt,
            formulas=opts.show_formula,
            exact_digits=opts.exact_digits if wants_exact else None,
            timeout=opts.symbolic_timeout,
            memory=opts.symbolic_memory,
        )
    results = [
        _run(name, graph, arrays, wrt, opts, sym)
        for name in METHODS
        if name in opts.methods or name == opts.reference
    ]
    exact = sym.exact if sym is not None else None
    requested = opts.reference
    if wants_exact and exact is None:
        why = (sym.exact_note or sym.note) if sym is not None else None
        if opts.reference == "exact":
            diagnostics.append(Diagnostic(
                "reference-fallback",
                f"the exact reference could not be computed ({why}); falling back to symbolic.",
            ))
        requested = "symbolic"
    if sym is not None and sym.skipped:
        diagnostics.append(Diagnostic("symbolic-skipped", sym.note or sym.exact_note or ""))
    sym_explained = sym is not None and sym.skipped
    if exact is not None and requested != "symbolic":
        sym_explained |= _float_overflow_is_not_a_verdict(results, exact, diagnostics)
    kink = kinks.analyse(graph, arrays, wrt)
    intervals = {v: (float(kink.one_sided[v][0][0]), float(kink.one_sided[v][1][0]))
                 for v in kink.nondifferentiable()}
    for v, (left, right) in intervals.items():
        where = ", ".join(k.where for k in kink.at_point)
        diagnostics.append(Diagnostic(
            "nondifferentiable",
            f"not differentiable at this point in {v}: ∂f/∂{v}⁻ = {left:g}, ∂f/∂{v}⁺ = {right:g} "
            f"(kink at {where}); any value between them is accepted"
            + ("" if not opts.strict else ", but --strict counts this as a failure") + ".",
        ))
    # A symbolic method stopped by its budget or by float64 overflow is explained above.
    ref_name, ok, more = compare(
        results, wrt, requested, opts.rtol, opts.atol, dtype=opts.dtype,
        exact=exact if requested != "symbolic" else None,
        intervals=intervals,
        straddles=_straddles(results, kink),
        explained=frozenset({"symbolic"} if sym_explained else ()),
    )
    if opts.strict and intervals:
        ok = False
    diagnostics += more
    if ref_name is None:
        diagnostics.append(Diagnostic("no-reference", "no method could run, so nothing was compared."))
    return Report(
        expression=expression,
        point=given,
        value=float(values[graph.output]),
        wrt=wrt,
        reference=ref_name or requested,
        methods=[r for r in results if r.name in opts.methods or r.name == ref_name],
        ok=ok,
        diagnostics=diagnostics,
        formulas=sym.formulas if sym is not None else {},
        exact=exact if ref_name == "exact" else None,
        one_sided=intervals,
        dtype=opts.dtype,
        strict=opts.strict,
        nodes=len(graph),
        depth=graph.depth(),
    )


def _straddles(results: list[MethodReport], kink: kinks.KinkAnalysis) -> dict[str, dict[str, str]]:
    """For each finite-difference method, the variables whose step reaches past a kink."""
    out: dict[str, dict[str, str]] = {}
    for m in results:
        if m.step is None:
            continue
        for v, h in m.step.items():
            near = kink.nearest.get(v)
            if near is not None and float(near[0][0]) < abs(h):
                out.setdefault(m.name, {})[v] = (
                    f"its step h = {abs(h):.3g} straddles a kink of {kink.texts[int(near[1][0])]} "
                    f"at distance {float(near[0][0]):.3g} in {v}"
                )
    return out


def _float_overflow_is_not_a_verdict(
    results: list[MethodReport], exact: Mapping[str, str], diagnostics: list[Diagnostic]
) -> bool:
    """The symbolic column is an oracle: where its float64 evaluation overflows although the
    exact derivative is finite (exp(800)/(1+exp(800)) for sigmoid'(-800)), it could not be
    evaluated, which is not a wrong derivative. Said so, and not counted in the verdict.
    Returns whether it did so."""
    for m in results:
        if m.name != "symbolic" or m.gradient is None:
            continue
        bad = [v for v, g in m.gradient.items()
               if not math.isfinite(g) and exact[v] not in ("nan", "inf", "-inf")]
        if bad:
            m.note = (f"SymPy's derivative is not finite in float64 at this point for "
                      f"{', '.join(bad)} (an intermediate overflows), though the exact value is")
            m.gradient = None
            diagnostics.append(Diagnostic("overflow", "symbolic: " + m.note + "."))
            return True
    return False


def _scalar(d: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()}


def _run(
    name: str,
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    opts: Options,
    sym: symbolic.SymbolicResult | None,
) -> MethodReport:
    dtype = DTYPES[opts.dtype]
    if name == "reverse":
        return MethodReport(name, _scalar(reverse.gradient(graph, point, wrt, dtype)))
    if name == "forward":
        return MethodReport(name, _scalar(forward.gradient(graph, point, wrt, dtype)))
    if name == "symbolic":
        assert sym is not None
        grad = _scalar(sym.gradient) if sym.gradient is not None else None
        return MethodReport(name, grad, note=sym.note)
    if name == "central":
        res = finite.central(graph, point, wrt, opts.step, dtype=dtype)
    else:
        res = FINITE_METHODS[name](graph, point, wrt, dtype=dtype)
    return MethodReport(
        name,
        _scalar(res.gradient) if res.gradient is not None else None,
        note=res.note,
        step=_scalar(res.step),
        estimate=_scalar(res.estimate) if res.estimate is not None else None,
    )


DTYPES = {"float64": np.float64, "float32": np.float32}


def _validate_methods(opts: Options) -> None:
    if opts.dtype not in DTYPES:
        raise GradcheckError(
            "usage", f"unknown dtype {opts.dtype!r}; choose one of {', '.join(DTYPES)}."
        )
    for name in opts.methods:
        if name not in METHODS:
            raise GradcheckError(
                "usage", f"unknown method {name!r}; the methods are {', '.join(METHODS)}."
            )
    if not opts.methods:
        raise GradcheckError("usage", "no methods chosen; the methods are " + ", ".join(METHODS) + ".")
    if opts.reference not in REFERENCES:
        raise GradcheckError(
            "usage", f"unknown reference {opts.reference!r}; choose one of {', '.join(REFERENCES)}."
        )


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
        try:
            finite = isinstance(value, (int, float)) and math.isfinite(float(value))
        except OverflowError:  # an int beyond float64's range
            finite = False
        if isinstance(value, bool) or not finite:
            raise GradcheckError(
                "bad-value", f"the value of {name} must be a finite number, not {value!r}."
            )
    return sorted(point, key=natural_key)


def _validate_wrt(graph: Graph, wrt: Sequence[str] | None) -> list[str]:
    if wrt is None:
        return list(graph.variables)
    if not wrt:
        raise GradcheckError("usage", "--wrt names no variable; leave it out to check them all.")
    seen: list[str] = []
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
