"""The method registry: every way gradcheck computes a gradient, in one place.

A method has a stable name (its JSON identifier), a kind (`ad`: reverse and forward mode, the
derivative code being checked; `symbolic`: SymPy's own derivative; `finite-difference`: values
of f only; the homework work adds `claim`), default tolerances per dtype, whether it is judged
by its own error estimate, whether it may serve as the reference, and `run`, which computes
the gradient at all points of the batch at once and returns per-variable arrays with a
per-cell status (`MethodResult`).

Tolerances: an AD or symbolic value g passes against the reference r when
|g - r| <= rtol·|r| + rtol·σ, σ the size of the gradient at that point (the largest |∂f/∂v|
there; where the whole gradient is 0, |f| / max(1, |x|)): an absolute floor that scales with
the problem, so a derivative of 1e-18 is checked as strictly as one of 1. `--rtol`/`--atol`
replace this (atol then absolute). Finite differences are judged by their own estimates
(`judge.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import finite, forward, reverse
from .graph import Graph

AD, SYMBOLIC, FINITE, CLAIM = "ad", "symbolic", "finite-difference", "claim"


@dataclass
class Context:
    """What a method needs: the graph, the batch of points, and what the check already has."""

    graph: Graph
    points: Mapping[str, np.ndarray]  # variable -> (K,) in the working dtype
    wrt: Sequence[str]
    dtype: type = np.float64
    step: float | None = None
    values: Sequence[np.ndarray] | None = None  # every node's value at the points (for reverse)
    symbolic: Any = None  # symbolic.SymbolicResult, once collected
    claims: Mapping[str, Graph] = field(default_factory=dict)  # v -> the claimed ∂f/∂v (--expect)

    @property
    def size(self) -> int:
        return len(next(iter(self.points.values()))) if self.points else 1

    def subset(self, index: np.ndarray) -> Context:
        """The same check at the points `index` only."""
        return Context(self.graph, {v: p[index] for v, p in self.points.items()}, self.wrt,
                       self.dtype, self.step, None, None, self.claims)


@dataclass
class MethodResult:
    """Per variable, arrays (K,). A cell that could not be computed is True in `bad[v]` (nan in
    `values`) with `why[v]` saying why (the first such point); `note` when the whole method
    could not run (then `values` is None)."""

    values: dict[str, np.ndarray] | None
    note: str | None = None
    step: dict[str, np.ndarray] | None = None
    estimate: dict[str, np.ndarray] | None = None
    bad: dict[str, np.ndarray] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    tolerances: Mapping[str, tuple[float, float]]  # dtype -> (rtol, atol) defaults
    run: Callable[[Context], MethodResult]
    default: bool = False  # in the default --methods
    by_estimate: bool = False  # judged by its own error estimate
    can_reference: bool = False  # may serve as the reference (never an AD method)
    doc: str = ""
    # How many node evaluations it costs, per (nodes, variables, points), and the most it is
    # run for unless asked for by name (benchmarks/memory.py: past it, minutes)
    work: Callable[[int, int, int], float] | None = None
    max_work: float = math.inf

    def too_big(self, nodes: int, variables: int, points: int) -> str | None:
        """Why the method is skipped for a problem of this size, or None."""
        if self.work is None:
            return None
        w = self.work(nodes, variables, points)
        if w <= self.max_work:
            return None
        return (f"skipped: {variables:,} variables × {nodes:,} nodes"
                + (f" × {points:,} points" if points > 1 else "")
                + f" is past its size limit ({w:.1e} node evaluations > {self.max_work:.0e}, minutes "
                f"of work); ask for it by name with --methods {self.name}, or check fewer variables "
                "with --wrt")


def _batch(d: Mapping[str, Any], k: int, dtype: type) -> dict[str, np.ndarray]:
    return {v: np.broadcast_to(np.asarray(a, dtype=dtype), (k,)).copy() for v, a in d.items()}


def _reverse(ctx: Context) -> MethodResult:
    values = ctx.values if ctx.values is not None else None
    if values is None:
        from .graph import evaluate

        values = evaluate(ctx.graph, ctx.points, ctx.dtype)
    grad = reverse.gradient_from_values(ctx.graph, values, ctx.wrt)
    return MethodResult(_batch(grad, ctx.size, ctx.dtype))


def _forward(ctx: Context) -> MethodResult:
    grad = forward.gradient(ctx.graph, ctx.points, ctx.wrt, ctx.dtype)
    return MethodResult(_batch(grad, ctx.size, ctx.dtype))


def _claim(ctx: Context) -> MethodResult:
    """The claimed derivatives, evaluated in float64 (a student's formula, not a float32
    model); a variable without a claim is not claimed (not run there)."""
    from .interpret import Values, evaluate_output

    k = ctx.size
    points = {v: np.asarray(p, dtype=np.float64) for v, p in ctx.points.items()}
    values: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    why: dict[str, str] = {}
    for v in ctx.wrt:
        claim = ctx.claims.get(v)
        if claim is None:
            values[v], bad[v] = np.full(k, np.nan), np.ones(k, dtype=bool)
            why[v] = f"no claim for ∂f/∂{v}"
            continue
        values[v] = np.broadcast_to(evaluate_output(claim, Values(points)), (k,)).astype(np.float64)
    return MethodResult(values, None if ctx.claims else "no claimed derivative (--expect)", bad=bad, why=why)


def _symbolic(ctx: Context) -> MethodResult:
    sym = ctx.symbolic
    if not ctx.wrt:
        return MethodResult({})
    if sym is None or sym.gradient is None:
        note = sym.note if sym is not None and sym.note else "SymPy was not run"
        return MethodResult(None, note)
    values = _batch(sym.gradient, ctx.size, np.float64)
    bad: dict[str, np.ndarray] = {}
    why: dict[str, str] = {}
    # SymPy's float64 value is an oracle's evaluation, not a derivative code under test: where
    # it is not finite because SymPy's own formula is undefined there (y*x**y/x at x = 0, the
    # exact evaluation says so too) or because float64 overflows inside it (sigmoid'(-800)),
    # the cell could not be evaluated; it is not a wrong derivative.
    for v, g in values.items():
        mask = np.zeros(ctx.size, dtype=bool)
        for p in np.flatnonzero(~np.isfinite(g)):
            text = sym.exact.get(int(p), {}).get(v)
            if text is None or (np.isinf(g[p]) and text in ("nan", "inf", "-inf")):
                continue  # an infinite value where the derivative is not finite either: a value
            if np.isinf(g[p]) and not abs(float(text)) <= np.finfo(np.float64).max:
                continue  # a derivative beyond float64's range: its infinity is the float answer
            mask[p] = True
            if v not in why:
                why[v] = sym.exact_why.get(int(p), {}).get(v) or (
                    "SymPy's derivative is not finite in float64 here (an intermediate overflows), "
                    "though its exact value is" if text not in ("nan", "inf", "-inf")
                    else f"SymPy's derivative is {text} here")
        if mask.any():
            bad[v] = mask
    return MethodResult(values, bad=bad, why=why)


def _chunked(run: Callable[[Context], MethodResult], chunk: int) -> Callable[[Context], MethodResult]:
    """Run on at most `chunk` points at a time: points are independent, and a finite
    difference's intermediate arrays grow with points × steps × rounding trials, so this bounds
    its memory (Richardson keeps 64 steps × ~20 trials per value) whatever the batch size."""
    def chunked(ctx: Context) -> MethodResult:
        k = ctx.size
        if k <= chunk:
            return run(ctx)
        parts = [run(ctx.subset(np.arange(a, min(a + chunk, k)))) for a in range(0, k, chunk)]
        if all(p.values is None for p in parts):
            return parts[0]
        out = MethodResult({}, None, {}, {}, {}, {})
        for v in ctx.wrt:
            n = [min(chunk, k - a) for a in range(0, k, chunk)]
            out.values[v] = np.concatenate([  # type: ignore[index]
                p.values[v] if p.values is not None else np.full(m, np.nan, ctx.dtype)
                for p, m in zip(parts, n)])
            out.estimate[v] = np.concatenate([  # type: ignore[index]
                p.estimate[v] if p.estimate is not None else np.full(m, np.inf) for p, m in zip(parts, n)])
            out.step[v] = np.concatenate([  # type: ignore[index]
                p.step[v] if p.step is not None and v in p.step else np.full(m, np.nan)
                for p, m in zip(parts, n)])
            out.bad[v] = np.concatenate([
                p.bad.get(v, np.zeros(m, bool)) if p.values is not None else np.ones(m, bool)
                for p, m in zip(parts, n)])
            for p in parts:
                if v in p.why:
                    out.why.setdefault(v, p.why[v])
                elif p.values is None and p.note:
                    out.why.setdefault(v, p.note)
        return out
    return chunked


def _finite(
    fn: Callable[..., finite.FiniteResult], with_step: bool = False, chunk: int = 1 << 16
) -> Callable[[Context], MethodResult]:
    return _chunked(_finite_whole(fn, with_step), chunk)


def _finite_whole(
    fn: Callable[..., finite.FiniteResult], with_step: bool = False
) -> Callable[[Context], MethodResult]:
    def run(ctx: Context) -> MethodResult:
        kw = {"step": ctx.step} if with_step else {}
        res = fn(ctx.graph, ctx.points, ctx.wrt, dtype=ctx.dtype, **kw)
        k = ctx.size
        steps = _batch(res.step, k, np.float64) if res.step else None
        if res.gradient is None:
            return MethodResult(None, res.note, steps, bad=res.bad, why=res.why)
        assert res.estimate is not None
        return MethodResult(_batch(res.gradient, k, ctx.dtype), None, steps,
                            _batch(res.estimate, k, np.float64),
                            {v: np.broadcast_to(b, (k,)).copy() for v, b in res.bad.items()}, res.why)
    return run


_EXACT = {"float64": (1e-9, 1e-12), "float32": (1e-4, 1e-6)}


def _batches(points: int) -> float:
    return max(1.0, points / 256)  # numpy keeps small batches nearly free


def _forward_work(nodes: int, variables: int, points: int) -> float:
    return math.ceil(variables / forward.CHUNK) * nodes * _batches(points)


def _finite_work(nodes: int, variables: int, points: int) -> float:
    return variables * nodes * _batches(points)


FORWARD_MAX_WORK = 6e6  # about 30 s (10,000 variables × 40,000 nodes: 31 s)
FINITE_MAX_WORK = 3e6  # about a minute (the finite differences' per-variable evaluations)

REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("reverse", AD, _EXACT, _reverse, default=True,
           doc="reverse-mode AD: one forward and one backward sweep"),
    Method("forward", AD, _EXACT, _forward, default=True,
           doc="forward-mode AD: dual numbers, one sweep per chunk of directions",
           work=_forward_work, max_work=FORWARD_MAX_WORK),
    Method("symbolic", SYMBOLIC, {"float64": (1e-9, 1e-12), "float32": (1e-9, 1e-12)}, _symbolic,
           default=True, can_reference=True,
           doc="SymPy's derivative, lambdified once, evaluated in float64 on the batch"),
    Method("central", FINITE, {"float64": (1e-6, 1e-7), "float32": (5e-3, 1e-4)},
           _finite(finite.central, with_step=True), default=True, by_estimate=True,
           can_reference=True, doc="central difference, h = cbrt(eps)·max(1, |x|)",
           work=_finite_work, max_work=FINITE_MAX_WORK),
    Method("richardson", FINITE, {"float64": (1e-9, 1e-11), "float32": (1e-4, 1e-6)},
           _finite(finite.richardson, chunk=1 << 11), by_estimate=True, can_reference=True,
           doc="Richardson extrapolation of central differences",
           work=_finite_work, max_work=FINITE_MAX_WORK),
    Method("complex", FINITE, {"float64": (1e-9, 1e-12), "float32": (1e-4, 1e-6)},
           _finite(finite.complex_step), by_estimate=True, can_reference=True,
           doc="complex step Im f(x + ih)/h (analytic formulas)",
           work=_finite_work, max_work=FINITE_MAX_WORK),
    Method("claim", CLAIM, {"float64": (1e-8, 1e-12), "float32": (1e-8, 1e-12)}, _claim,
           doc="a derivative someone wrote (--expect), evaluated in float64"),
)}

# The methods one may ask for with --methods; a claim joins by itself when there is one.
METHODS: tuple[str, ...] = tuple(n for n, m in REGISTRY.items() if m.kind != CLAIM)
DEFAULT_METHODS: tuple[str, ...] = tuple(n for n, m in REGISTRY.items() if m.default)
# The reference when the exact derivative is not available, in order of preference: never an
# AD method (they are what is being checked).
REFERENCE_CHAIN: tuple[str, ...] = ("symbolic", "complex", "richardson")
REFERENCES: tuple[str, ...] = ("auto", "exact", *(n for n, m in REGISTRY.items() if m.can_reference))
