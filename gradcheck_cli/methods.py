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
    # Many variables (more than MANY_VARIABLES): False checks random directions and a random
    # subset of variables (`Sampled`); True (--full) checks every variable one by one.
    full: bool = False

    @property
    def size(self) -> int:
        return len(next(iter(self.points.values()))) if self.points else 1

    def subset(self, index: np.ndarray) -> Context:
        """The same check at the points `index` only."""
        return Context(self.graph, {v: p[index] for v, p in self.points.items()}, self.wrt,
                       self.dtype, self.step, None, None, self.claims, self.full)


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
    # Many variables (`Sampled`): what was checked, in words ("8 random directions and 64 of
    # 33,488 variables"; None: every variable of wrt, one by one), the random directions
    # (k, len(wrt)) over wrt in order, and the method's ∇f·d per point and direction (K, k),
    # with its error estimate (finite differences) and cells it could not compute (True).
    checked: str | None = None
    directions: np.ndarray | None = None
    directional: np.ndarray | None = None
    directional_estimate: np.ndarray | None = None
    directional_bad: np.ndarray | None = None


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

    def too_big(self, nodes: int, variables: int, points: int, full: bool = False) -> str | None:
        """Why the method is skipped for a problem of this size, or None. Past MANY_VARIABLES
        a method checks SAMPLED_VARIABLES variables and RANDOM_DIRECTIONS directions, unless
        `full` (then every variable is counted)."""
        if self.work is None:
            return None
        if variables > MANY_VARIABLES and not full:
            w = _sampled_work(nodes, points, self.kind == FINITE)
        else:
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


# ---------------------------------------------------------------------------------------------
# Many variables: random directions and a random subset of variables
# ---------------------------------------------------------------------------------------------
#
# Checking n variables one by one costs one finite-difference pair (and forward mode one
# tangent) per variable: 33,488 of them on a 10⁵-node net is hours. Past MANY_VARIABLES, the
# finite differences and forward mode check instead (the approach of jax's check_grads and
# torch's fast gradcheck):
# - RANDOM_DIRECTIONS random directions d (entries ±1): each method's ∇f·d, to be compared
#   with the reverse gradient's ∇f·d (`MethodResult.directional`, `directions`); a wrong
#   partial in any variable moves ∇f·d unless the error happens to cancel in every direction;
# - SAMPLED_VARIABLES variables drawn at random, checked one by one like any variable (their
#   cells are judged as usual; every other variable's cell is "not run", saying why).
# The draw depends only on wrt, so every method and every reference checks the same ones.
# Context.full (--full) checks every variable instead.

MANY_VARIABLES = 64
SAMPLED_VARIABLES = 16  # each costs about a direction's lanes in the finite differences' walks
RANDOM_DIRECTIONS = 8


@dataclass(frozen=True)
class Sampled:
    """What a many-variable check looks at: `index` into wrt (sorted), `directions` (k, n)."""

    index: np.ndarray
    directions: np.ndarray
    n: int

    @property
    def words(self) -> str:
        return (f"{len(self.directions)} random directions and {len(self.index):,} of {self.n:,} "
                "variables")

    def unit_and_random(self) -> np.ndarray:
        """The directions to walk: e_i for each sampled variable, then the random ones."""
        eye = np.zeros((len(self.index), self.n))
        eye[np.arange(len(self.index)), self.index] = 1.0
        return np.vstack([eye, self.directions])


def sampled(ctx: Context) -> Sampled | None:
    """The random directions and variables for a check of many variables, or None (few
    variables, or --full)."""
    n = len(ctx.wrt)
    if n <= MANY_VARIABLES or ctx.full:
        return None
    rng = np.random.default_rng(n)  # the same draw for every method of this check
    index = np.sort(rng.choice(n, size=min(SAMPLED_VARIABLES, n), replace=False))
    directions = rng.choice(np.array([-1.0, 1.0]), size=(RANDOM_DIRECTIONS, n))
    return Sampled(index, directions, n)


def _sampled_work(nodes: int, points: int, finite_difference: bool) -> float:
    """Node evaluations of a sampled check: forward mode carries the directions as one batch of
    tangents; a finite difference walks them as lanes, ~40 a direction with its error model."""
    lanes = (SAMPLED_VARIABLES + RANDOM_DIRECTIONS) * (40 if finite_difference else 1)
    return nodes * _batches(points * lanes)


def _sampled_result(ctx: Context, plan: Sampled, name: str, along: np.ndarray,
                    estimate: np.ndarray | None, bad: np.ndarray | None, why: str | None) -> MethodResult:
    """Per-variable cells for the sampled variables (rows of `along` (m, K) first), "not run"
    for the others, and the directional rows."""
    k, m = ctx.size, len(plan.index)
    values: dict[str, np.ndarray] = {}
    est: dict[str, np.ndarray] = {}
    bads: dict[str, np.ndarray] = {}
    whys: dict[str, str] = {}
    skipped = (f"not checked one by one: {name} checked {plan.words} (--full checks every variable, "
               "at the cost of one evaluation pair per variable)")
    chosen = dict(zip(plan.index.tolist(), range(m)))
    # the unsampled variables' cells: rows of three arrays, not 3 × 33,488 small ones
    n = len(ctx.wrt)
    no_value, no_estimate, left_out = np.full((n, k), np.nan), np.full((n, k), np.inf), np.ones((n, k), bool)
    for i, v in enumerate(ctx.wrt):
        row = chosen.get(i)
        if row is None:
            values[v], est[v], bads[v] = no_value[i], no_estimate[i], left_out[i]
            whys[v] = skipped
            continue
        values[v] = np.broadcast_to(along[row], (k,)).astype(ctx.dtype)
        est[v] = np.broadcast_to(estimate[row], (k,)).astype(np.float64) if estimate is not None else None
        bads[v] = np.broadcast_to(bad[row], (k,)).copy() if bad is not None else np.zeros(k, bool)
        if why and bads[v].any():
            whys[v] = why
    return MethodResult(values, None, None, est if estimate is not None else None, bads, whys,
                        checked=plan.words, directions=plan.directions,
                        directional=np.broadcast_to(along[m:].T, (k, len(plan.directions))).copy(),
                        directional_estimate=None if estimate is None else
                        np.broadcast_to(estimate[m:].T, (k, len(plan.directions))).copy(),
                        directional_bad=None if bad is None else
                        np.broadcast_to(bad[m:].T, (k, len(plan.directions))).copy())


def _forward_sampled(ctx: Context, plan: Sampled) -> MethodResult:
    """One forward walk carrying the sampled unit vectors and the random directions."""
    dirs = plan.unit_and_random()
    seeds = {v: dirs[:, i] for i, v in enumerate(ctx.wrt)}
    from .dual import Duals
    from .interpret import walk

    out = ctx.graph.output
    k = ctx.size
    along = forward.tangents_at_one_point(ctx.graph, ctx.points, seeds, ctx.dtype, out)
    if along is not None:
        along = along.reshape(len(dirs), -1)
    else:
        dual = walk(ctx.graph, Duals(ctx.points, seeds, ctx.dtype), upto=out, keep={out})[out]
        along = np.zeros((len(dirs), k)) if dual.tangent is None else \
            np.broadcast_to(dual.tangent, (len(dirs),) + np.shape(dual.value)).reshape(len(dirs), -1)
    return _sampled_result(ctx, plan, "forward", np.broadcast_to(along, (len(dirs), k)), None, None, None)


def _finite_sampled(ctx: Context, plan: Sampled, method: str, label: str) -> MethodResult:
    res = finite.directional(ctx.graph, ctx.points, ctx.wrt, plan.unit_and_random(), method, ctx.dtype)
    k = ctx.size
    shape = (len(res.values), k)
    return _sampled_result(ctx, plan, label, np.broadcast_to(res.values, shape),
                           np.broadcast_to(res.estimate, shape), np.broadcast_to(res.bad, shape), res.note)


def _reverse(ctx: Context) -> MethodResult:
    values = ctx.values if ctx.values is not None else None
    if values is None:
        from .graph import evaluate

        values = evaluate(ctx.graph, ctx.points, ctx.dtype)
    grad = reverse.gradient_from_values(ctx.graph, values, ctx.wrt)
    return MethodResult(_batch(grad, ctx.size, ctx.dtype))


def _forward(ctx: Context) -> MethodResult:
    plan = sampled(ctx)
    if plan is not None:
        return _forward_sampled(ctx, plan)
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
    fn: Callable[..., finite.FiniteResult], with_step: bool = False, chunk: int = 1 << 16,
    along: str | None = None,
) -> Callable[[Context], MethodResult]:
    """A finite-difference method, chunked over points; with many variables, along the sampled
    directions by `finite.directional(..., along)` (a method without a directional form,
    Richardson's 64 steps a direction, is not run then: it says so)."""
    whole = _chunked(_finite_whole(fn, with_step), chunk)
    label = {"central": "central", "complex": "complex step"}.get(along or "", fn.__name__)

    def run(ctx: Context) -> MethodResult:
        plan = sampled(ctx)
        if plan is None:
            return whole(ctx)
        if along is not None:
            return _finite_sampled(ctx, plan, along, label)
        return MethodResult(None, f"not run for {plan.n:,} variables: it has no directional form (the "
                            f"central difference and the complex step check {plan.words}); --full runs "
                            "it on every variable")
    return run


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
           _finite(finite.central, with_step=True, along="central"), default=True, by_estimate=True,
           can_reference=True, doc="central difference, h = cbrt(eps)·max(1, |x|)",
           work=_finite_work, max_work=FINITE_MAX_WORK),
    Method("richardson", FINITE, {"float64": (1e-9, 1e-11), "float32": (1e-4, 1e-6)},
           _finite(finite.richardson, chunk=1 << 11), by_estimate=True, can_reference=True,
           doc="Richardson extrapolation of central differences",
           work=_finite_work, max_work=FINITE_MAX_WORK),
    Method("complex", FINITE, {"float64": (1e-9, 1e-12), "float32": (1e-4, 1e-6)},
           _finite(finite.complex_step, along="complex"), by_estimate=True, can_reference=True,
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
