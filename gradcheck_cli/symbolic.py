"""Symbolic differentiation: SymPy's own `diff`, an oracle independent of `rules.py`.

The graph is rebuilt as an unevaluated SymPy expression (each operation's meaning comes from
`functions.py`, written with SymPy's own functions), SymPy differentiates it with its own chain
rule, and the derivatives are evaluated together with common subexpressions shared
(`lambdify(..., cse=True)`). Variables are SymPy `Dummy` symbols: a user's variable names are
never turned into code.

SymPy recurses over expression depth and can hang or exhaust memory on hostile input, so all
of it runs in a worker process (`budget.py`) with a large stack, a time budget and a memory
budget; whatever stops it is reported as a note ("could not run"), never as a crash.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import budget
from .functions import meaning_of
from .graph import Graph, Node
from .interpret import walk
from .rules import erf as _erf_numpy

SYMBOLIC_TIMEOUT = 10.0  # seconds, --symbolic-timeout
SYMBOLIC_MEMORY = 2 * 2**30  # bytes, --symbolic-memory (in MiB on the command line)
EXACT_DIGITS = 30


@dataclass
class SymbolicResult:
    gradient: dict[str, np.ndarray] | None
    note: str | None = None  # why the float64 derivative could not be had
    formulas: dict[str, str] = field(default_factory=dict)  # name -> pretty derivative
    exact: dict[str, str] | None = None  # name -> derivative at EXACT_DIGITS, as decimal text
    exact_note: str | None = None  # why the exact derivative could not be had
    skipped: bool = False  # stopped by its budget (time or memory), not by SymPy itself


class _Sympy:
    """The interpretation that carries SymPy expressions (each operation's meaning from
    `functions.py`)."""

    def __init__(self, sp: Any, symbols: dict[str, Any]) -> None:
        self.sp, self.symbols = sp, symbols

    def var(self, i: int, node: Node) -> Any:
        expr = self.symbols.get(node.name)  # type: ignore[arg-type]
        if expr is None:
            expr = self.symbols[node.name] = self.sp.Symbol(node.name, real=True)  # type: ignore[index]
        return expr

    def const(self, i: int, node: Node) -> Any:
        sp = self.sp
        if node.name == "pi":
            return sp.pi
        if node.name == "E":
            return sp.E
        assert node.exact is not None
        return sp.Rational(node.exact.numerator, node.exact.denominator)

    def op(self, i: int, node: Node, args: tuple[Any, ...]) -> Any:
        expr = meaning_of(node.op)(self.sp, *args)
        hash(expr)  # SymPy hashes recursively but caches: prime it bottom-up, never deep
        return expr


def to_sympy(graph: Graph, symbols: Mapping[str, Any] | None = None, output: int | None = None) -> Any:
    """The graph as a SymPy expression (variables real; `symbols` overrides)."""
    import sympy as sp

    out = graph.output if output is None else output
    return walk(graph, _Sympy(sp, dict(symbols or {})), upto=out)[out]


def _modules() -> list[Any]:
    return [{"erf": _erf_numpy}, "numpy"]


def stages(
    graph: Graph,
    point: Mapping[str, float],
    wrt: Sequence[str],
    formulas: bool = False,
    exact_digits: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """The symbolic work, stage by stage: ("float", gradient), then optionally
    ("formulas", pretty text) and ("exact", decimal text at `exact_digits`). Raises on failure;
    `gradient` below turns failures and budgets into notes."""
    import sympy as sp

    dummies = {name: sp.Dummy(real=True) for name in graph.variables}
    expr = to_sympy(graph, dummies)
    derivs = [sp.diff(expr, dummies[v]) if v in dummies else sp.S.Zero for v in wrt]
    order = list(graph.variables)
    fn = sp.lambdify([dummies[v] for v in order], derivs, modules=_modules(), cse=True)
    with np.errstate(all="ignore"):
        raw = fn(*(np.asarray(point[v], dtype=np.float64) for v in order))
    grad = {}
    for v, value in zip(wrt, raw):
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            arr = np.where(arr.imag == 0, arr.real, np.nan)
        grad[v] = float(arr)
    yield "float", grad
    if formulas:
        names = {d: sp.Symbol(name, real=True) for name, d in dummies.items()}
        yield "formulas", {v: sp.pretty(d.xreplace(names), use_unicode=True)
                           for v, d in zip(wrt, derivs)}
    if exact_digits:
        try:
            yield "exact", _exact(sp, [dummies[v] for v in order], derivs, wrt,
                                  [point[v] for v in order], exact_digits)
        except ExactUnavailable as exc:
            yield "exact-note", str(exc)


class ExactUnavailable(Exception):
    """The exact derivative cannot be evaluated here (the message says why)."""


def _mpmath_namespace(mpmath: Any) -> dict[str, Any]:
    def heaviside(x: Any, at_zero: Any = None) -> Any:
        # SymPy's convention: Heaviside(0) = 1/2.
        if x == 0:
            return mpmath.mpf(1) / 2 if at_zero is None else at_zero
        return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)

    return {"Heaviside": heaviside}


def _exact(
    sp: Any, args: list[Any], derivs: list[Any], wrt: Sequence[str], point: list[float], digits: int
) -> dict[str, str]:
    """Each derivative to `digits` significant digits, by evaluating it with mpmath at rising
    working precision until two precisions agree (so cancellation cannot fake digits).

    The point is the float64 value itself, exactly (every float is a binary rational that
    mpmath holds exactly), so this is the true derivative at the very point the float methods
    were given."""
    import mpmath

    fn = sp.lambdify(args, derivs, modules=[_mpmath_namespace(mpmath), "mpmath"], cse=True)
    out: dict[str, str] = {}
    previous = None
    dps_low = 0
    tolerance = mpmath.mpf(10) ** (-digits - 1)
    for dps in (digits + 15, 2 * digits + 30, 4 * digits + 60, 8 * digits + 120):
        with mpmath.workdps(dps):
            try:
                values = [mpmath.mpmathify(v) for v in fn(*(mpmath.mpf(x) for x in point))]
            except ZeroDivisionError:
                raise ExactUnavailable("the derivative divides by zero at this point") from None
        if previous is not None:
            pending = [
                v for v, a, b in zip(wrt, previous, values)
                if v not in out and not _agree(mpmath, a, b, tolerance, dps_low)
            ]
            for v, b in zip(wrt, values):
                if v not in out and v not in pending:
                    out[v] = _text(mpmath, b, digits)
            if not pending:
                return out
        previous, dps_low = values, dps
    # Still moving after the last precision: only values indistinguishable from zero do that.
    for v, b in zip(wrt, values):
        out.setdefault(v, "0" if abs(b) < mpmath.mpf(10) ** (-dps_low // 2) else "nan")
    return out


def _agree(mpmath: Any, a: Any, b: Any, tolerance: Any, dps_low: int) -> bool:
    if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
        return a == b
    if isinstance(a, mpmath.mpc) or isinstance(b, mpmath.mpc):
        return False
    scale = max(abs(a), abs(b))
    return abs(a - b) <= tolerance * scale


def _text(mpmath: Any, value: Any, digits: int) -> str:
    if isinstance(value, mpmath.mpc):
        return "nan" if value.imag != 0 else _text(mpmath, value.real, digits)
    if mpmath.isnan(value):
        return "nan"
    if mpmath.isinf(value):
        return "inf" if value > 0 else "-inf"
    return mpmath.nstr(value, digits, strip_zeros=False)


def gradient(
    graph: Graph,
    point: Mapping[str, float],
    wrt: Sequence[str],
    *,
    formulas: bool = False,
    exact_digits: int | None = None,
    timeout: float = SYMBOLIC_TIMEOUT,
    memory: int | None = SYMBOLIC_MEMORY,
) -> SymbolicResult:
    """sympy.diff of the formula with respect to each of `wrt`, evaluated at `point`, in a
    worker process under a time and memory budget."""
    point = {k: float(v) for k, v in point.items()}
    outcome = budget.run(
        stages, (graph, point, wrt, formulas, exact_digits),
        timeout=timeout, memory=memory, what="SymPy",
    )
    got = dict(outcome.values)
    result = SymbolicResult(
        {k: np.asarray(v) for k, v in got["float"].items()} if "float" in got else None,
        formulas=got.get("formulas", {}),
        exact=got.get("exact"),
        skipped=outcome.kind in ("timeout", "memory"),
    )
    if outcome.reason is not None:
        flag = {"timeout": " (raise it with --symbolic-timeout)",
                "memory": " (raise it with --symbolic-memory)"}.get(outcome.kind or "", "")
        if result.gradient is None:
            result.note = outcome.reason + flag
        if exact_digits and result.exact is None:
            result.exact_note = outcome.reason + flag
    if "exact-note" in got:
        result.exact_note = got["exact-note"]
    return result
