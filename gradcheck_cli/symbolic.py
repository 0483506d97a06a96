"""Symbolic differentiation: SymPy's own `diff`, an oracle independent of `rules.py`.

The graph is rebuilt as an unevaluated SymPy expression (each operation's meaning comes from
`functions.py`, written with SymPy's own functions), SymPy differentiates it with its own chain
rule, and the derivatives are evaluated together with common subexpressions shared
(`lambdify(..., cse=True)`). Variables are SymPy `Dummy` symbols: a user's variable names are
never turned into code.

SymPy recurses over expression depth, so a deeply nested formula can exhaust Python's recursion
limit here; that is reported as "could not run", never as a crash.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .functions import meaning_of
from .graph import Graph
from .rules import erf as _erf_numpy


@dataclass
class SymbolicResult:
    gradient: dict[str, np.ndarray] | None
    note: str | None = None  # why it could not run
    derivatives: dict[str, Any] = field(default_factory=dict)  # name -> SymPy expr (user names)


def to_sympy(graph: Graph, symbols: Mapping[str, Any] | None = None) -> Any:
    """The graph as an unevaluated SymPy expression (variables real; `symbols` overrides)."""
    import sympy as sp

    symbols = dict(symbols or {})
    built: list[Any] = []
    for node in graph.nodes:
        if node.op == "var":
            expr = symbols.get(node.name)
            if expr is None:
                expr = symbols[node.name] = sp.Symbol(node.name, real=True)
        elif node.op == "const":
            if node.name == "pi":
                expr = sp.pi
            elif node.name == "E":
                expr = sp.E
            else:
                assert node.exact is not None
                expr = sp.Rational(node.exact.numerator, node.exact.denominator)
        else:
            expr = meaning_of(node.op)(sp, *(built[a] for a in node.args))
        hash(expr)  # SymPy hashes recursively but caches: prime it bottom-up, never deep
        built.append(expr)
    return built[graph.output]


def _modules() -> list[Any]:
    return [{"erf": _erf_numpy}, "numpy"]


def gradient(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], keep_formulas: bool = False
) -> SymbolicResult:
    """sympy.diff of the formula with respect to each of `wrt`, evaluated at `point`."""
    import sympy as sp

    dummies = {name: sp.Dummy(real=True) for name in graph.variables}
    try:
        expr = to_sympy(graph, dummies)
        derivs = [sp.diff(expr, dummies[v]) if v in dummies else sp.S.Zero for v in wrt]
        order = list(graph.variables)
        fn = sp.lambdify([dummies[v] for v in order], derivs, modules=_modules(), cse=True)
        with np.errstate(all="ignore"):
            raw = fn(*(np.asarray(point[v], dtype=np.float64) for v in order))
    except RecursionError:
        return SymbolicResult(
            None,
            f"SymPy recursed too deeply (the formula nests {graph.depth()} levels; SymPy's "
            f"differentiation and code printing recurse once per level, Python allows "
            f"{sys.getrecursionlimit()} frames)",
        )
    except MemoryError:
        return SymbolicResult(None, "SymPy ran out of memory on this formula")
    except Exception as exc:  # SymPy is an oracle here: any failure of its own is reported
        return SymbolicResult(None, f"SymPy failed: {type(exc).__name__}: {exc}")
    shape = np.broadcast_shapes(*(np.shape(point[v]) for v in order)) if order else ()
    grad = {}
    for v, value in zip(wrt, raw):
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            arr = np.where(arr.imag == 0, arr.real, np.nan)
        grad[v] = np.broadcast_to(arr.astype(np.float64), shape).copy()
    result = SymbolicResult(grad)
    if keep_formulas:
        names = {d: sp.Symbol(name, real=True) for name, d in dummies.items()}
        result.derivatives = {v: d.xreplace(names) for v, d in zip(wrt, derivs)}
    return result
