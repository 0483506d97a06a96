"""Centered finite differences: an oracle that uses only values of f, never a derivative.

∂f/∂x_i ≈ (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), with h_i = cbrt(eps) * max(1, |x_i|) by
default: the step that balances the O(h²) truncation error against the O(eps/h) rounding
error. The shifted points are rounded to floats first and the divisor is their actual distance,
so the step the formula uses is exactly the step the arithmetic used.

Two more methods, and an error estimate for each (`FiniteResult.estimate`: the absolute error
per variable that the method expects of itself, meant as a bound):
- `central`: truncation |f'''| h²/6, with f''' from central differences at 2h and h/2, plus
  rounding (eps (|f(x+h)| + |f(x-h)|) + the evaluation errors of f at x ± h) / 2h.
- `richardson`: central differences at steps h0, h0/2, h0/4, ... (h0 = 0.1 max(1, |x|)) and a
  Neville tableau that eliminates h², h⁴, ...; the entry with the smallest estimate wins, the
  estimate being how far it moved from its neighbours plus its propagated rounding.
- `complex_step`: Im f(x + ih) / h with h = eps² |x|: no subtraction, so no cancellation, and
  exact to rounding for an analytic formula. It refuses a formula whose x-dependent part has a
  non-analytic primitive (`Rule.smooth` is False) or sits on a branch point (sqrt(0),
  asin(±1), a negative base to a power that depends on x).
The evaluation error of f (and of its complex step) is modelled by re-evaluating the graph with
every operation's result moved by ±eps relative (`_rounding_response`): values only, so the
methods stay independent of the rule table's partial derivatives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .explain import describe_trouble, node_texts
from .graph import Graph, at_point, evaluate, first_trouble, output_trouble
from .interpret import Along, NotComplexCapable, Shifted, Values, evaluate_output
from .rules import RULES


@dataclass
class FiniteResult:
    """Per variable, arrays over the batch. A cell (variable, point) where the method cannot
    run is nan in `gradient`, True in `bad[v]`, and `why[v]` says why (for the first such
    point). When no cell could run, `gradient` is None and `note` says why."""

    gradient: dict[str, np.ndarray] | None
    step: dict[str, np.ndarray]
    note: str | None = None
    # The method's own estimate of its absolute error, per variable (float64).
    estimate: dict[str, np.ndarray] | None = None
    bad: dict[str, np.ndarray] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)


def _finish(grad: dict[str, np.ndarray], steps: dict[str, np.ndarray], estimate: dict[str, np.ndarray],
            bad: dict[str, np.ndarray], why: dict[str, str]) -> FiniteResult:
    """Nan where a cell could not run; None (with the first reason) when none could."""
    for v, mask in bad.items():
        if np.any(mask):
            grad[v] = np.where(mask, np.nan, grad[v]).astype(grad[v].dtype)
            estimate[v] = np.where(mask, np.inf, estimate[v])
    if bad and grad and all(np.all(bad.get(v, False)) for v in grad):
        return FiniteResult(None, steps, next(iter(why.values()), None), bad=bad, why=why)
    return FiniteResult(grad, steps, estimate=estimate, bad=bad, why=why)


def default_step(x: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    eps = np.finfo(dtype).eps
    return np.cbrt(eps) * np.maximum(1.0, np.abs(x))


def central(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    step: float | None = None,
    dtype: type = np.float64,
) -> FiniteResult:
    grad: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    estimate: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    why: dict[str, str] = {}
    shape = _full_shape(point)
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        h = np.asarray(step, dtype=dtype) if step is not None else default_step(x, dtype)
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros_like(x)
            steps[name] = np.broadcast_to(h, shape)
            estimate[name] = np.zeros(shape)
            continue
        with np.errstate(all="ignore"):
            xp = (x + h).astype(dtype)
            xm = (x - h).astype(dtype)
        fs = []
        cell_bad = np.zeros(shape, dtype=bool)
        for shifted, sign in ((xp, "+"), (xm, "-")):
            values = evaluate(graph, {**point, name: shifted}, dtype)
            f = np.broadcast_to(values[graph.output], shape)
            not_finite = ~np.isfinite(f)
            if not_finite.any() and name not in why:
                why[name] = _trouble_note(graph, values, name, shifted, sign, not_finite)
            cell_bad = cell_bad | not_finite
            fs.append(f)
        with np.errstate(all="ignore"):
            grad[name] = ((fs[0] - fs[1]) / (xp - xm)).astype(dtype)
        steps[name] = ((xp - xm) / 2).astype(dtype)
        estimate[name] = _central_estimate(graph, point, name, h, (xp, xm), fs, dtype)
        bad[name] = cell_bad
    return _finish(grad, steps, estimate, bad, why)


# --------------------------------------------------------------------------------------------
# Rounding: how f, or its complex step, responds to every operation rounding its result
# --------------------------------------------------------------------------------------------

PERTURBATION = 1024  # emulated rounding, in eps: far above f's own rounding, still linear


def _full_shape(point: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(np.shape(v) for v in point.values()))) if point else ()


def _evaluate_at(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    name: str,
    xs: np.ndarray,
    dtype: type,
    dep: Sequence[bool] | None = None,
    signs: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray | None, str | None]:
    """(f, None) with the variable `name` at xs, the other variables as in `point`, by the one
    interpreter carrying `interpret.Shifted` values (complex where `dep`, rounding moved by
    `signs`: see there); (None, why) if a primitive cannot run in complex arithmetic."""
    interp = Shifted(point, name, xs, dtype, dep, signs, PERTURBATION)
    try:
        f = evaluate_output(graph, interp)
    except NotComplexCapable as exc:
        return None, str(exc)
    if signs is not None:  # the trial axis, even where nothing was rounded (f = x)
        f = np.broadcast_to(f, np.broadcast_shapes(np.shape(f), (len(signs[0]),) + (1,) * np.ndim(xs)))
    return f, None


def _sign_patterns(sources: int) -> np.ndarray:
    """±1 patterns, one row per trial: row t < bits is bit t of the source's index, the last row
    all +1. Any two sources have equal signs in one trial and opposite signs in another, so two
    rounding errors that cancel in one trial add up in another."""
    bits = max(1, (sources - 1).bit_length())
    index = np.arange(sources)
    rows = [1.0 - 2.0 * ((index >> t) & 1) for t in range(bits)]
    return np.array([*rows, np.ones(sources)])


def _rounding_response(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, xs: np.ndarray, f: np.ndarray,
    dtype: type,
) -> np.ndarray:
    """How far f at xs moves when every operation's result is off by eps relative, the largest
    over the sign patterns: a model of f's rounding error that, unlike a few ulps of |f|, sees
    cancellation (1 - cos(x) near 0 is accurate to eps absolute, not eps relative). Values only:
    no derivative of any primitive is used."""
    signs = _sign_patterns(len(graph.nodes))
    moved, _ = _evaluate_at(graph, point, name, xs, dtype, signs=(signs, signs))
    assert moved is not None  # real arithmetic never refuses
    with np.errstate(all="ignore"):
        dev = np.abs(moved.astype(np.float64) - np.asarray(f, dtype=np.float64)).max(axis=0)
    return np.where(np.isfinite(dev), dev, np.inf) / PERTURBATION


def _rounding(
    fp: np.ndarray, fm: np.ndarray, width: np.ndarray, response: np.ndarray, eps: float
) -> np.ndarray:
    """Rounding error of (f(x+h) - f(x-h)) / width: each stored value within eps/2 of what was
    computed (the eps (|f(x+h)| + |f(x-h)|) / 2h term), plus the evaluation errors at the two
    points, each bounded by its rounding response: `response` = [at x+h, at x-h]."""
    fp, fm = (np.abs(np.asarray(v, dtype=np.float64)) for v in (fp, fm))
    return (eps * (fp + fm) + response[0] + response[1]) / np.abs(width)


def _central_estimate(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    name: str,
    h: np.ndarray,
    shifted: tuple[np.ndarray, np.ndarray],
    fs: Sequence[np.ndarray],
    dtype: type,
) -> np.ndarray:
    """Truncation plus rounding error of the central difference at the points `shifted`."""
    eps = float(np.finfo(dtype).eps)
    shape = np.broadcast_shapes(np.shape(fs[0]), np.shape(fs[1]), np.shape(shifted[0]))
    pts = np.stack([np.broadcast_to(np.asarray(v, dtype=dtype), shape) for v in shifted])
    f1 = np.stack([np.broadcast_to(np.asarray(v, dtype=dtype), shape) for v in fs])
    x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
    with np.errstate(all="ignore"):
        width = pts[0].astype(np.float64) - pts[1].astype(np.float64)
        d1 = (f1[0].astype(np.float64) - f1[1].astype(np.float64)) / width
        # Truncation: D(h) = f' + f''' h²/6 + O(h⁴). f''' needs four values of f and the two we
        # have give none, so two more, at x ± 2h: D(2h) - D(h) = f''' (4h² - h²)/6, and the
        # truncation of D(h) is |D(2h) - D(h)| h² / (4h² - h²) — with the actual half-widths,
        # which rounding the points makes slightly unequal. Two more, at x ± h/2, say the same
        # through D(h/2) when h is small enough for D(h) = f' + f''' h²/6 to hold. The two differ
        # by the next term, f⁽⁵⁾ h⁴ (5 - 5/4)/120, which can also make the true truncation exceed
        # both: the larger plus their difference covers it. And when h is far too long for the
        # expansion (longer than the scale on which f changes, sin(x) at x = 1e6), D(2h) alone
        # can agree with D(h) by chance, D(h/2) hardly as well. Where f is not finite at x ± 2h
        # (its domain ends between h and 2h), x ± h/2, inside the interval already used, remain.
        estimates = []
        for factor in (2.0, 0.5):
            hh = factor * np.asarray(h, dtype=np.float64)
            pts2 = np.stack([(x + hh).astype(dtype), (x - hh).astype(dtype)])
            f2, _ = _evaluate_at(graph, point, name, pts2, dtype)
            f2 = np.broadcast_to(f2, pts2.shape).astype(np.float64)
            w2 = pts2[0].astype(np.float64) - pts2[1].astype(np.float64)
            d2 = (f2[0] - f2[1]) / w2
            # nan where f is not finite at x ± factor·h (at that point only)
            estimates.append(np.abs(d2 - d1) * width**2 / np.abs(w2**2 - width**2))
        big, small = estimates
        both = 2 * np.fmax(big, small) - np.fmin(big, small)
        trunc = np.where(np.isnan(big) | np.isnan(small), np.fmax(big, small), both)
        trunc = np.where(np.isnan(trunc), np.inf, trunc)
        response = _rounding_response(graph, point, name, pts, f1, dtype)
        return np.asarray(trunc + _rounding(f1[0], f1[1], width, response, eps), dtype=np.float64)


def _trouble_note(
    graph: Graph, values: Sequence[np.ndarray], name: str, shifted: np.ndarray, sign: str,
    not_finite: np.ndarray,
) -> str:
    """Why f is not finite at a shifted point (the first point of the batch where it is not)."""
    k = int(np.flatnonzero(np.ravel(not_finite))[0])
    trouble = output_trouble(graph, at_point(values, k, np.shape(not_finite)))
    at = float(np.ravel(np.broadcast_to(shifted, np.shape(not_finite)))[k])
    where = f" at point {k + 1}" if np.size(not_finite) > 1 else ""
    text = describe_trouble(graph, trouble) if trouble is not None else "its value is not finite"
    return f"f is not finite at {name}{sign}h ({name} = {at:.17g}){where}: {text}"


# --------------------------------------------------------------------------------------------
# Richardson extrapolation of central differences
# --------------------------------------------------------------------------------------------

RICHARDSON_FIRST_STEP = 0.1  # h0 = 0.1 max(1, |x|): rounding in D(h0) is only ~eps |f| / h0
# h0 / 2**k for k < 32, down to 5e-11 max(1, |x|): far past where rounding takes over when f
# changes on the scale max(1, |x|), and still reaching the scale where it changes when that is
# much shorter (sin(x) at x = 1e6 changes on the scale 1, where h0 = 1e5).
RICHARDSON_CANDIDATES = 32
RICHARDSON_DEPTH = 6  # eliminate h², h⁴, ..., h¹²


def richardson(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    dtype: type = np.float64,
) -> FiniteResult:
    """∂f/∂x_i by Richardson extrapolation of central differences (see the module docstring).

    Large steps keep rounding small (eps/h), extrapolation removes what they cost in truncation.
    Where f is not finite at the large steps (log(x) at x = 0.05 and h0 = 0.1), the tableau
    starts at the largest step where it is; only if f is not finite even at the smallest
    candidate step is the result None, with the same note as `central`. Steps far too large
    for f (h ≫ the scale on which f changes) give differences that disagree wildly, so their
    entries' estimates are large and they are not chosen."""
    grad: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    estimate: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    why: dict[str, str] = {}
    shape = _full_shape(point)
    eps = float(np.finfo(dtype).eps)
    n = RICHARDSON_CANDIDATES
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros(shape, dtype=dtype)
            steps[name] = np.zeros(shape, dtype=dtype)
            estimate[name] = np.zeros(shape)
            continue
        k = np.arange(n, dtype=np.float64).reshape((-1,) + (1,) * len(shape))
        nominal = RICHARDSON_FIRST_STEP * np.maximum(1.0, np.abs(x.astype(np.float64))) * 0.5**k
        with np.errstate(all="ignore"):
            xs = np.concatenate([(x + nominal).astype(dtype), (x - nominal).astype(dtype)])
            f, _ = _evaluate_at(graph, point, name, xs, dtype)
            f = np.broadcast_to(f, xs.shape)
        xp, xm = xs[:n], xs[n:]
        fp, fm = f[:n].astype(np.float64), f[n:].astype(np.float64)
        # A candidate step is usable at a point where f is finite at both ends; where the
        # domain ends between steps (log(x) at x = 0.05), the large steps drop out there: their
        # rows are nan, and no tableau entry built on them is ever chosen.
        ok = np.isfinite(fp) & np.isfinite(fm)
        cell_bad = ~ok[-1]
        if cell_bad.any():
            plus_bad = ~np.isfinite(fp[-1])
            side, sign = (xp[-1], "+") if plus_bad.any() else (xm[-1], "-")
            values = evaluate(graph, {**point, name: side}, dtype)
            not_finite = ~np.isfinite(np.broadcast_to(values[graph.output], shape))
            if not_finite.any():
                why[name] = _trouble_note(graph, values, name, side, sign, not_finite)
        response = _rounding_response(graph, point, name, xs, f, dtype)
        with np.errstate(all="ignore"):
            width = xp.astype(np.float64) - xm.astype(np.float64)
            d = np.where(ok, (fp - fm) / width, np.nan)
            noise = _rounding(fp, fm, width, response.reshape((2, n) + shape), eps)
            value, half_width, err = _extrapolate(d, (width / 2) ** 2, noise)
        grad[name] = value.astype(dtype)
        steps[name] = half_width.astype(dtype)
        estimate[name] = np.where(np.isnan(err), np.inf, err)
        bad[name] = cell_bad
    return _finish(grad, steps, estimate, bad, why)


def _extrapolate(
    d: np.ndarray, t: np.ndarray, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neville's tableau in t = h² over the rows d[k] = D(h_k): column j eliminates t, ..., t^j,
    R[k, j] = R[k, j-1] + (R[k, j-1] - R[k-1, j-1]) t_k / (t_{k-j} - t_k).

    Each entry's error estimate is how far it moved from its neighbours, max(|R[k, j] -
    R[k, j-1]|, |R[k, j] - R[k-1, j]|) — in the converging regime each difference is the error
    of the less accurate neighbour, so an overestimate — plus its rounding, propagated through
    the same weights. Entries lacking either neighbour are not candidates: one difference can
    vanish by chance. In column 0, |D_k - D_{k-1}| t_k / (t_{k-1} - t_k) is the truncation
    estimate of D_k, as in `central`. Returns (value, step, estimate) of the best entry."""
    rows = len(d)
    best = d[-1].copy()
    best_step = np.sqrt(t[-1])
    best_err = np.full(np.shape(best), np.inf)
    prev, prev_noise = d, noise
    for j in range(min(RICHARDSON_DEPTH, rows - 2) + 1):
        if j == 0:
            r, n = d, noise
            err = np.full(d.shape, np.inf)
            err[1:] = np.abs(d[1:] - d[:-1]) * t[1:] / (t[:-1] - t[1:]) + noise[1:]
        else:
            w = t[j:] / (t[:-j] - t[j:])
            r = np.full(d.shape, np.nan)
            n = np.full(d.shape, np.inf)
            r[j:] = prev[j:] + w * (prev[j:] - prev[j - 1:-1])
            n[j:] = (1.0 + w) * prev_noise[j:] + w * prev_noise[j - 1:-1]
            err = np.full(d.shape, np.inf)
            moved = np.maximum(np.abs(r[j + 1:] - prev[j + 1:]), np.abs(r[j + 1:] - r[j:-1]))
            err[j + 1:] = moved + n[j + 1:]
        for k in range(rows):
            better = err[k] < best_err
            best = np.where(better, r[k], best)
            best_step = np.where(better, np.sqrt(t[k]), best_step)
            best_err = np.where(better, err[k], best_err)
        prev, prev_noise = r, n
    return best, best_step, best_err


# --------------------------------------------------------------------------------------------
# Complex step
# --------------------------------------------------------------------------------------------


def complex_step(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    dtype: type = np.float64,
) -> FiniteResult:
    """∂f/∂x_i = Im f(x + i h e_i) / h, with f evaluated in complex arithmetic.

    f(x + ih) = f(x) + ih f'(x) - h² f''(x)/2 - ih³ f'''(x)/6 + ..., so the imaginary part is
    h f'(x) up to a relative (h/L)², L the scale on which f changes — and no difference of
    nearly equal numbers is ever formed, so h can be tiny; x + ih keeps h apart from x however
    small it is. h = eps² |x| (eps² if x = 0, never below the smallest normal float): L is at
    least |x| near a singularity at 0 (log(x) at x = 1e-20) and at least about eps |x| near any
    other, so (h/L)² is at most eps², nothing in floating point. Much smaller (the often-quoted
    1e-200) gains nothing and costs range: every imaginary part is h times a derivative, and
    h = 1e-200 makes any derivative below ~1e-108 underflow (sigmoid'(-300)), where h = eps² |x|
    keeps them down to ~1e-277 / |x|. What underflow does lose is in the estimate, as tiny/h.

    Needs f analytic where it is evaluated: refused, with a note, when a primitive that depends
    on x_i is not analytic (its rule is not smooth) or cannot run on complex numbers, or when x
    sits exactly on a branch point of one (sqrt at 0, asin/acos at ±1, a negative base to a
    power that depends on x_i): there the complex value is not the real derivative."""
    grad: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    estimate: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    why: dict[str, str] = {}
    shape = _full_shape(point)
    refused = {}
    blocked = _not_analytic(graph)
    for name in wrt:  # refuse before evaluating anything
        op = blocked[graph.var_nodes[name]] if name in graph.var_nodes else None
        if op is not None:
            refused[name] = f"complex step needs an analytic formula; {op} is not analytic"
    if refused and len(refused) == len(wrt):
        return FiniteResult(None, steps, next(iter(refused.values())))
    values = evaluate(graph, point, dtype)
    trouble = output_trouble(graph, values)
    if trouble is not None and np.all(~np.isfinite(values[graph.output])):
        return FiniteResult(None, steps, "f is not finite at this point: " + describe_trouble(graph, trouble))
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        ax = np.abs(x.astype(np.float64))
        h = np.where(ax > 0, np.maximum(eps * eps * ax, tiny), eps * eps).astype(dtype)
        steps[name] = h
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros(shape, dtype=dtype)
            estimate[name] = np.zeros(shape)
            continue
        if name in refused:
            grad[name] = np.full(shape, np.nan, dtype=dtype)
            estimate[name] = np.full(shape, np.inf)
            bad[name], why[name] = np.ones(shape, dtype=bool), refused[name]
            continue
        dep = graph.depends_on([name])
        branch, reason = _branch_point(graph, values, dep, shape)
        z = x + 1j * h
        out, fail = _evaluate_at(graph, point, name, z, dtype, dep)
        if out is None:
            return FiniteResult(None, steps, fail)
        out = np.broadcast_to(out, shape)
        not_finite = ~np.isfinite(out) & ~branch
        if not_finite.any() and reason is None:
            trouble = first_trouble(graph, values)
            where = f" ({describe_trouble(graph, trouble)})" if trouble is not None else ""
            reason = f"f is not finite in complex arithmetic at {name} + ih{where}"
        with np.errstate(all="ignore"):
            g = (out.imag / h).astype(dtype)
        grad[name] = g
        estimate[name] = _complex_estimate(graph, point, dep, name, z, h, g, dtype)
        bad[name] = branch | not_finite
        if reason is not None:
            why[name] = reason
    return _finish(grad, steps, estimate, bad, why)


def _not_analytic(graph: Graph) -> list[str | None]:
    """For every node, the first (in topological order) non-analytic operation that depends on
    it, or None: one backward pass for all variables (one pass per variable made refusing a
    formula of 10,000 variables take 50 s)."""
    first: list[tuple[int, str] | None] = [None] * len(graph.nodes)
    for i in range(len(graph.nodes) - 1, -1, -1):
        node = graph.nodes[i]
        here = first[i]
        if node.op in RULES and not RULES[node.op].smooth:
            here = (i, node.op)
            first[i] = here
        if here is None:
            continue
        for a in node.args:
            if first[a] is None or here[0] < first[a][0]:  # type: ignore[index]
                first[a] = here
    return [f[1] if f is not None else None for f in first]


def _branch_point(
    graph: Graph, values: Sequence[np.ndarray], dep: Sequence[bool], shape: tuple[int, ...]
) -> tuple[np.ndarray, str | None]:
    """The points that sit exactly on a branch point of a primitive, and why (for the first):
    there the principal complex branch does not continue the real function: sqrt(0 + ih) =
    (1 + i) sqrt(h/2), a large finite 'derivative' where the real one is infinite (and
    |x| = sqrt(x**2) would get slope 1)."""
    on = np.zeros(shape, dtype=bool)
    first: str | None = None
    for i, node in enumerate(graph.nodes):
        if not dep[i] or not node.args:
            continue
        a = values[node.args[0]]
        what, mask = None, None
        if node.op == "sqrt":
            mask, what = a == 0, "sqrt is not analytic at 0"
        elif node.op in ("asin", "acos"):
            mask, what = np.abs(a) == 1, f"{node.op} is not analytic at ±1"
        elif node.op == "pow":
            b = values[node.args[1]]
            if dep[node.args[1]]:
                mask = a < 0
                what = "a negative base to a power that depends on the variable is not analytic"
            if dep[node.args[0]]:
                frac = (a == 0) & (b != np.round(b))
                if np.any(frac) and not np.any(mask if mask is not None else False):
                    what = "u**v with a fractional v is not analytic at u = 0"
                mask = frac if mask is None else mask | frac
        if mask is None or not np.any(mask):
            continue
        on |= np.broadcast_to(mask, shape)
        if first is None:
            first = f"complex step needs an analytic formula; {what} (in {node_texts(graph, upto=i)[i]})"
    return on, first


def _complex_estimate(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    dep: Sequence[bool],
    name: str,
    z: np.ndarray,
    h: np.ndarray,
    g: np.ndarray,
    dtype: type,
) -> np.ndarray:
    """Error of Im f(x + ih)/h. Rounding: how far it moves when every operation's result is off
    by eps relative in its real and in its imaginary part (independently), the largest over the
    sign patterns of `_sign_patterns`, plus the final rounding eps |f'|. This sees tangents that
    cancel (x**3 - 2*x where 3x² is near 2) and a rounded argument moving a steep derivative
    (sin(20*x) at fl(20 x)), which a count of operations would not. Underflow: tiny/h, what an
    imaginary part that underflowed can have lost (sigmoid'(-700) = 1e-304 is h f' = 3e-333).
    Truncation: |g(2h) - g(h)|/3 for the relative (h/L)² term; almost always exactly 0, but not
    where f' = 0 and f''' is not (x**3 at 0 gives -h²)."""
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    h64 = np.asarray(h, dtype=np.float64)
    g64 = np.asarray(g, dtype=np.float64)
    n = len(graph.nodes)
    signs = _sign_patterns(2 * n)
    moved, _ = _evaluate_at(graph, point, name, z, dtype, dep, (signs[:, :n], signs[:, n:]))
    doubled, _ = _evaluate_at(graph, point, name, z.real + 2j * h, dtype, dep)
    if moved is None or doubled is None:
        return np.full(np.shape(g64), np.inf)
    with np.errstate(all="ignore"):
        dev = np.abs(moved.imag.astype(np.float64) / h64 - g64).max(axis=0)
        trunc = np.abs(doubled.imag.astype(np.float64) / (2 * h64) - g64) / 3
        total = dev / PERTURBATION + eps * np.abs(g64) + tiny / h64 + trunc
    return np.asarray(np.where(np.isnan(total), np.inf, total), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Along directions: ∇f·d for many directions at once (the many-variable check)
# --------------------------------------------------------------------------------------------


@dataclass
class DirectionalResult:
    """∇f·d_j per direction j and point, (m, K), with the method's error estimate; `bad` where
    f was not finite at a shifted point (or, complex step, not analytic), `note` why (first)."""

    values: np.ndarray
    estimate: np.ndarray
    bad: np.ndarray
    note: str | None = None


def directional(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    directions: np.ndarray,
    method: str = "central",
    dtype: type = np.float64,
) -> DirectionalResult:
    """∇f·d for every row d of `directions` (m, len(wrt)) at every point, by `central` or the
    complex step (`complex`) along d, all directions in the lanes of one walk (plus one for the
    truncation and one for the rounding model, as in `central` and `complex_step`): the cost
    of a few evaluations whatever the number of variables, where one variable at a time costs
    one per variable. A unit vector e_i gives ∂f/∂x_i. The step along d is the one a variable
    of the size of the largest moved coordinate would get, h = cbrt(eps) · max(1, |x_i|) (complex:
    eps² · that), so every moved coordinate is shifted by at most its own default step."""
    shape = _full_shape(point)
    m = len(directions)
    eps = float(np.finfo(dtype).eps)
    dirs: dict[str, np.ndarray] = {}
    size = np.ones((m,) + shape)
    for k, name in enumerate(wrt):
        col = np.asarray(directions[:, k], dtype=np.float64)
        if name not in graph.var_nodes or not col.any():
            continue
        dirs[name] = col.reshape((m,) + (1,) * len(shape))
        x = np.abs(np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=np.float64), shape))
        size = np.maximum(size, np.where(col.reshape((m,) + (1,) * len(shape)) != 0, x, 0.0))
    if not dirs:
        z = np.zeros((m,) + shape)
        return DirectionalResult(z, z.copy(), np.zeros(z.shape, bool))
    if method == "complex":
        return _directional_complex(graph, point, dirs, size, shape, eps, dtype)
    h = np.cbrt(eps) * size  # (m, *shape)
    lanes = np.stack([h, -h, 2 * h, -2 * h, h / 2, -h / 2])  # (6, m, *shape)
    d6 = {v: d[None] for v, d in dirs.items()}
    with np.errstate(all="ignore"):
        f = evaluate_output(graph, Along(point, lanes, d6, dtype))
        f = np.broadcast_to(f, lanes.shape).astype(np.float64)
        fp, fm = f[0], f[1]
        d1 = (fp - fm) / (2 * h)
        estimates = []
        for a, factor in ((2, 2.0), (4, 0.5)):
            d2 = (f[a] - f[a + 1]) / (2 * factor * h)
            estimates.append(np.abs(d2 - d1) / abs(factor**2 - 1))
        big, small = estimates
        both = 2 * np.fmax(big, small) - np.fmin(big, small)
        trunc = np.where(np.isnan(big) | np.isnan(small), np.fmax(big, small), both)
        trunc = np.where(np.isnan(trunc), np.inf, trunc)
        # f's rounding response at x itself stands for the one at x ± h d (h is 6e-6 of the
        # coordinates' size): one lane per sign pattern, not two per direction
        signs = _sign_patterns(len(graph.nodes))
        f0 = np.broadcast_to(evaluate_output(graph, Values(point, dtype)), shape).astype(np.float64)
        moved = evaluate_output(graph, Shifted(point, "", np.zeros((1,) + shape), dtype,
                                               signs=(signs, signs), size=PERTURBATION))
        moved = np.broadcast_to(moved, (len(signs), 1) + shape).astype(np.float64)
        dev = np.abs(moved[:, 0] - f0).max(axis=0)
        resp = np.where(np.isfinite(dev), dev, np.inf) / PERTURBATION
        estimate = trunc + _rounding(fp, fm, 2 * h, np.stack([resp, resp]), eps)
    bad = ~(np.isfinite(fp) & np.isfinite(fm))
    note = "f is not finite at a point shifted along a direction" if bad.any() else None
    return DirectionalResult(np.where(bad, np.nan, d1), np.where(bad | np.isnan(estimate), np.inf, estimate),
                             bad, note)


def _directional_complex(
    graph: Graph, point: Mapping[str, np.ndarray], dirs: Mapping[str, np.ndarray], size: np.ndarray,
    shape: tuple[int, ...], eps: float, dtype: type,
) -> DirectionalResult:
    """Im f(x + i h d)/h along every direction at once, with `_complex_estimate`'s error model."""
    m = size.shape[0]
    blocked = _not_analytic(graph)
    moved_vars = [graph.var_nodes[v] for v in dirs]
    op = next((blocked[i] for i in moved_vars if blocked[i] is not None), None)
    if op is not None:
        note = f"complex step needs an analytic formula; {op} is not analytic"
        return DirectionalResult(np.full((m,) + shape, np.nan), np.full((m,) + shape, np.inf),
                                 np.ones((m,) + shape, bool), note)
    dep = graph.depends_on(list(dirs))
    values = evaluate(graph, point, dtype)
    branch, reason = _branch_point(graph, values, dep, shape)
    tiny = float(np.finfo(dtype).tiny)
    h = np.maximum(eps * eps * size, tiny)
    with np.errstate(all="ignore"):
        z = np.stack([1j * h, 2j * h])  # t = ih and 2ih: the value and the truncation check
        try:
            lanes = {v: d[None] for v, d in dirs.items()}
            out = evaluate_output(graph, Along(point, z.astype(np.complex128), lanes, dtype, dep))
        except NotComplexCapable as exc:
            return DirectionalResult(np.full((m,) + shape, np.nan), np.full((m,) + shape, np.inf),
                                     np.ones((m,) + shape, bool), str(exc))
        out = np.broadcast_to(out, z.shape)
        g = out[0].imag / h
        trunc = np.abs(out[1].imag / (2 * h) - g) / 3
        n = len(graph.nodes)
        signs = _sign_patterns(2 * n)
        moved = evaluate_output(graph, Along(point, (1j * h).astype(np.complex128), dirs, dtype, dep,
                                             (signs[:, :n], signs[:, n:]), PERTURBATION))
        moved = np.broadcast_to(moved, (len(signs), m) + shape)
        dev = np.abs(moved.imag / h - g).max(axis=0)
        estimate = dev / PERTURBATION + eps * np.abs(g) + tiny / h + trunc
    bad = ~np.isfinite(g) | np.broadcast_to(branch, g.shape)
    note = reason or ("f is not finite in complex arithmetic along a direction" if bad.any() else None)
    return DirectionalResult(np.where(bad, np.nan, g), np.where(bad | np.isnan(estimate), np.inf, estimate),
                             bad, note)
