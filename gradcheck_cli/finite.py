"""Centered finite differences: an oracle that uses only values of f, never a derivative.

∂f/∂x_i ≈ (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), with h_i = cbrt(eps) * max(1, |x_i|) by
default: the step that balances the O(h²) truncation error against the O(eps/h) rounding
error. The shifted points are rounded to floats first and the divisor is their actual distance,
so the step the formula uses is exactly the step the arithmetic used.

Two more methods, and an error estimate for each (`FiniteResult.estimate`: the absolute error
per variable that the method expects of itself, meant as a bound):
- `central`: truncation |f'''| h²/6, with f''' from central differences at 2h and h/2, plus
  rounding (eps (|f(x+h)| + |f(x-h)|) + the evaluation errors of f at x ± h) / 2h, each
  evaluation error bounded by f's rounding response at x + h.
- `richardson`: central differences at steps h0, h0/2, h0/4, ... (h0 = 0.1 max(1, |x|)) and a
  Neville tableau that eliminates h², h⁴, ...; the entry with the smallest estimate wins, the
  estimate being how far it moved from its neighbours plus its propagated rounding (f's
  rounding response at x standing for every candidate's).
- `complex_step`: Im f(x + ih) / h with h = eps² |x|: no subtraction, so no cancellation, and
  exact to rounding for an analytic formula. It refuses a formula whose x-dependent part has a
  non-analytic primitive (`Rule.smooth` is False) or sits on a branch point (sqrt(0),
  asin(±1), a negative base to a power that depends on x).
The evaluation error of f (and of its complex step) is modelled by re-evaluating the graph with
every operation's result moved by ±eps relative (`_rounding_response`): values only, so the
methods stay independent of the rule table's partial derivatives.

Cost, at many points (the card formula: one evaluation of f is about 0.45 of hand-written
numpy f and f′): `central` evaluates f at six points a point and the rounding model once (at
x + h, standing for x - h too: 4 sign patterns for 8 nodes), 10 evaluations; `richardson` the
rounding model once at x and its candidate steps in blocks, later blocks only where the
earlier have not settled (most points settle in the first 8 of 32); the complex step 7 complex
evaluations. The rounding model's trials are walked by `interpret.trials_output`, which
evaluates trials that are still alike once (the card formula's sin(x**2) is 2 evaluations for
its 4 trials: 18 of the 20 sin and cos a point; the elementary functions are three quarters of
`central`'s time, the floor of its cost). Points are walked in chunks (`CHUNK`,
`RICHARDSON_CHUNK`) that stay in the core's cache, whatever the batch: memory is a few KB a
point of the chunk, not of the batch.

At one point the cost is per numpy call, not per value (a graph of 10⁵ nodes: a few µs a
node), so the lanes and the trials are walked in one pass (`interpret.lanes_and_trials`), most
nodes one call for both: the finite differences take about half the time of separate walks.
Either way every number is bit for bit what separate walks give (tests/test_finite_walks.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .explain import describe_trouble, node_texts
from .graph import Graph, evaluate, first_trouble, output_trouble
from .interpret import (
    Along,
    NotComplexCapable,
    Shifted,
    Values,
    _depends,
    evaluate_output,
    lanes_and_trials,
    one_pass,
    trials_output,
)
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


# Points per walk in `central` and the complex step: their lanes (6 + 4 trials, 2 + 5 complex)
# stay in the core's cache and numpy reuses freed memory instead of asking the system for
# fresh pages every operation (about a quarter of the time at 65,536 points a walk).
CHUNK = 8192


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
    size = int(np.prod(shape, dtype=np.int64))
    flat = _flat(point, shape)
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        if name not in graph.var_nodes:  # f does not depend on it
            h = np.asarray(step, dtype=dtype) if step is not None else default_step(x, dtype)
            grad[name] = np.zeros_like(x)
            steps[name] = np.broadcast_to(h, shape)
            estimate[name] = np.zeros(shape)
            continue
        xf = x.reshape(-1)
        # the default step chunk by chunk, while the chunk is in cache
        hf = None if step is None else np.broadcast_to(np.asarray(step, dtype=dtype), shape).reshape(-1)
        out = (np.empty(size, dtype=dtype), np.empty(size, dtype=dtype), np.empty(size),
               np.empty(size, dtype=bool), np.empty(size, dtype=bool), np.empty(size, dtype=bool))
        g, half, est, plus_bad, minus_bad, either = out
        memo: dict = {}  # what every chunk's walk would compute alike (`Trials`)
        for a in range(0, size, CHUNK):
            part = slice(a, a + CHUNK)
            hp = default_step(xf[part], dtype) if hf is None else hf[part]
            _central_points(graph, _part(flat, part), name, xf[part], hp, dtype, memo,
                            tuple(o[part] for o in out))
        with np.errstate(all="ignore"):
            for side, sign in ((plus_bad, "+"), (minus_bad, "-")):
                if side.any():
                    hf = default_step(xf, dtype) if hf is None else hf
                    shifted = (xf + hf).astype(dtype) if sign == "+" else (xf - hf).astype(dtype)
                    why[name] = _trouble_note(graph, point, shape, name, shifted, sign, side, dtype)
                    break
        grad[name] = g.reshape(shape)
        steps[name] = half.reshape(shape)
        estimate[name] = est.reshape(shape)
        bad[name] = either.reshape(shape)
    return _finish(grad, steps, estimate, bad, why)


def _flat(point: Mapping[str, np.ndarray], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The point with every batched value as one flat axis (unbatched values as they are),
    read-only views."""
    out = {}
    for v, a in point.items():
        if not np.ndim(a):
            out[v] = a
            continue
        a = np.asarray(a)  # (np.broadcast_to costs 10 µs a variable: 33,488 of them took 0.3 s)
        flat = a.reshape(-1) if a.shape == shape else np.broadcast_to(a, shape).reshape(-1)
        if flat.base is not None:
            flat.flags.writeable = False
        out[v] = flat
    return out


def _part(flat: Mapping[str, np.ndarray], part: slice | np.ndarray) -> dict[str, np.ndarray]:
    """Some of the points of a flat point (`_flat`)."""
    return {v: a[part] if np.ndim(a) else a for v, a in flat.items()}


def _central_points(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, x: np.ndarray, h: np.ndarray, dtype: type,
    memo: dict, out: tuple[np.ndarray, ...],
) -> None:
    """At the points x (flat) of a flat point, into `out` (arrays of x's size): the central
    difference, half the width of its step, its error estimate, where f is not finite at
    x + h, at x - h, and at either."""
    g, half, est, plus_bad, minus_bad, either = out
    with np.errstate(all="ignore"):
        # x ± h and the truncation estimate's x ± 2h and x ± h/2: six lanes, one walk
        h64 = np.asarray(h, dtype=np.float64)
        fast = x.dtype == h64.dtype == np.float64
        scratch = _Scratch.of(memo, x.shape) if fast else None
        lanes = scratch.lanes if scratch is not None else np.empty((6,) + x.shape, dtype=dtype)
        if fast:  # x + s·h (x - s·h is x + (-s·h) exactly, and + commutes): two calls
            np.multiply.outer(_LANE_STEPS, np.broadcast_to(h64, x.shape), out=lanes)
            lanes += x
        else:
            np.add(x, h, out=lanes[0])
            np.subtract(x, h, out=lanes[1])
            for lane, factor in ((2, 2.0), (4, 0.5)):
                hh = factor * h64
                np.add(x, hh, out=lanes[lane])
                np.subtract(x, hh, out=lanes[lane + 1])
        # and the rounding model's trials at x + h, with them
        signs = _sign_patterns(len(graph.nodes))
        trials = Trials(signs, signs, lanes[0], memo)
        f, moved, _ = _with_trials(graph, point, name, lanes, dtype, None, trials)
        assert f is not None and moved is not None  # real arithmetic never refuses
        width = np.subtract(lanes[0], lanes[1], out=scratch.width) if scratch is not None \
            else lanes[0] - lanes[1]
        np.subtract(f[0], f[1], out=g)
        g /= width
        np.divide(width, 2, out=half)
        np.logical_not(np.isfinite(f[0], out=plus_bad), out=plus_bad)
        np.logical_not(np.isfinite(f[1], out=minus_bad), out=minus_bad)
        np.logical_or(plus_bad, minus_bad, out=either)
        if scratch is not None and f.dtype == np.float64:
            _central_estimate64(graph, point, name, lanes, f, g, moved, width, est, scratch)
        else:
            _central_estimate(graph, point, name, lanes, f, g, dtype, moved, width, est)


class _Scratch:
    """Work arrays of `central`'s chunks (float64), made once a run: the same arithmetic as
    with temporaries, without asking the allocator for twenty arrays a chunk."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        m = shape
        self.lanes = np.empty((6,) + m)
        self.width, self.wsq, self.larger, self.hi, self.lo = (np.empty(m) for _ in range(5))
        self.pair_w, self.pair_d = np.empty((2,) + m), np.empty((2,) + m)
        self.nan_a, self.nan_b = np.empty(m, dtype=bool), np.empty(m, dtype=bool)

    @staticmethod
    def of(memo: dict, shape: tuple[int, ...]) -> _Scratch:
        got = memo.get(("scratch", shape))
        if got is None:
            got = memo[("scratch", shape)] = _Scratch(shape)
        return got


def _central_estimate64(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, lanes: np.ndarray, f: np.ndarray,
    g: np.ndarray, moved: np.ndarray, width: np.ndarray, out: np.ndarray, s: _Scratch,
) -> None:
    """`_central_estimate` in float64, step for step the same arithmetic, in `s`'s arrays."""
    eps = float(np.finfo(np.float64).eps)
    wsq = np.square(width, out=s.wsq)
    w2 = np.subtract(lanes[2::2], lanes[3::2], out=s.pair_w)
    d2 = np.subtract(f[2::2], f[3::2], out=s.pair_d)
    d2 /= w2
    d2 -= g
    est = np.abs(d2, out=d2)
    est *= wsq
    np.square(w2, out=w2)
    w2 -= wsq
    est /= np.abs(w2, out=w2)
    big, small = est
    either = np.isnan(big, out=s.nan_a)
    either |= np.isnan(small, out=s.nan_b)
    larger = np.fmax(big, small, out=s.larger)
    lower = np.fmin(big, small, out=small)
    trunc = np.multiply(larger, 2, out=big)
    trunc -= lower
    np.copyto(trunc, larger, where=either)
    np.copyto(trunc, np.inf, where=np.isnan(trunc, out=s.nan_b))
    # the rounding response (`_deviation`, `_response_at_one`)
    hi = np.max(moved, axis=0, out=s.hi)
    hi -= f[0]
    lo = np.min(moved, axis=0, out=s.lo)
    lo -= f[0]
    dev = np.maximum(np.abs(hi, out=hi), np.abs(lo, out=lo), out=hi)
    np.copyto(dev, np.inf, where=np.isnan(dev, out=s.nan_a))
    dev /= PERTURBATION
    response: tuple[np.ndarray, np.ndarray] = (dev, dev)
    singular = np.equal(dev, np.inf, out=s.nan_a)
    if singular.any():
        response = _response_at_one(graph, point, name, lanes[:2], f[:2], np.float64, moved)
    # rounding (`_rounding`)
    rnd = np.abs(f[0], out=s.lo)
    rnd += np.abs(f[1], out=s.larger)
    rnd *= eps
    rnd += response[0]
    rnd += response[1]
    rnd /= np.abs(width, out=s.wsq)
    np.add(trunc, rnd, out=out)


_LANE_STEPS = np.array([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])  # `central`'s lanes, in units of h


def _lanes(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, xs: np.ndarray, dtype: type
) -> np.ndarray:
    """f with the variable `name` at each lane of xs (lanes, *shape), the others as in `point`."""
    f, _ = _evaluate_at(graph, point, name, xs, dtype)
    return np.broadcast_to(f, xs.shape)


# --------------------------------------------------------------------------------------------
# Rounding: how f, or its complex step, responds to every operation rounding its result
# --------------------------------------------------------------------------------------------

PERTURBATION = 1024  # emulated rounding, in eps: far above f's own rounding, still linear


def _full_shape(point: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    # each distinct shape once: a point of 33,488 variables has one or two
    return tuple(np.broadcast_shapes(*{np.shape(v) for v in point.values()})) if point else ()


class Trials(NamedTuple):
    """The rounding model's trials, walked with the lanes of f in one pass by `_evaluate_at`:
    their sign patterns (real parts, imaginary parts, as `Shifted` takes them) and `base`, where
    they put the variable (its shape is the batch's)."""

    re: np.ndarray
    im: np.ndarray
    base: np.ndarray
    # kept from one batch of points to the next (see `Shifted`): give each chunk of one
    # method's walk at one variable the same dict
    memo: dict | None = None


def _evaluate_at(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    name: str,
    xs: np.ndarray,
    dtype: type,
    dep: Sequence[bool] | None = None,
    signs: tuple[np.ndarray, np.ndarray] | Trials | None = None,
) -> tuple[np.ndarray | None, str | None]:
    """(f, None) with the variable `name` at xs, the other variables as in `point`, by the one
    interpreter carrying `interpret.Shifted` values (complex where `dep`, rounding moved by
    `signs`: see there); (None, why) if a primitive cannot run in complex arithmetic.

    With `Trials`, the rounding model's trials too, in the same walk (`lanes_and_trials`): f is
    then f at each lane of xs (lanes, *batch), followed by the trials' values of f at
    `base` (trials, *batch), on one leading axis; bit for bit what the two walks give."""
    if isinstance(signs, Trials):
        lanes = Shifted(point, name, xs, dtype, dep)
        trials = Shifted(point, name, signs.base, dtype, dep, (signs.re, signs.im), PERTURBATION, signs.memo)
        try:
            return lanes_and_trials(graph, lanes, trials, np.shape(signs.base)), None
        except NotComplexCapable as exc:
            return None, str(exc)
    interp = Shifted(point, name, xs, dtype, dep, signs, PERTURBATION)
    try:
        if signs is None:
            return evaluate_output(graph, interp), None
        # the trial axis, even where nothing was rounded (f = x); alike trials evaluated once
        return trials_output(graph, interp, np.shape(xs)), None
    except NotComplexCapable as exc:
        return None, str(exc)


def _with_trials(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, xs: np.ndarray, dtype: type,
    dep: Sequence[bool] | None, trials: Trials,
) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """f at each lane of xs (lanes, *batch) and the `trials`' values (trials, *batch), or
    (None, None, why): in one pass where the lanes hold few values (one point: the cost is per
    numpy call), else in two walks (many points: the cost is per value, and the trials' walk
    evaluates alike trials once)."""
    if one_pass(np.size(xs) + len(trials.re) * np.size(trials.base)):
        rows, why = _evaluate_at(graph, point, name, xs, dtype, dep, trials)
        if rows is None:
            return None, None, why
        return rows[:len(xs)], rows[len(xs):], None
    f, why = _evaluate_at(graph, point, name, xs, dtype, dep)
    if f is None:
        return None, None, why
    moved, why = _evaluate_at(graph, point, name, trials.base, dtype, dep, (trials.re, trials.im))
    if moved is None:
        return None, None, why
    return np.broadcast_to(f, xs.shape), moved, None


def _sign_patterns(sources: int) -> np.ndarray:
    """±1 patterns, one row per trial: row t < bits is bit t of the source's index, the last row
    all +1. Any two sources have equal signs in one trial and opposite signs in another, so two
    rounding errors that cancel in one trial add up in another. (Read-only; kept for small
    graphs, whose walks are many and short.)"""
    return _small_sign_patterns(sources) if sources <= 4096 else _make_sign_patterns(sources)


def _make_sign_patterns(sources: int) -> np.ndarray:
    bits = max(1, (sources - 1).bit_length())
    index = np.arange(sources)
    rows = [1.0 - 2.0 * ((index >> t) & 1) for t in range(bits)]
    out = np.array([*rows, np.ones(sources)])
    out.flags.writeable = False
    return out


_small_sign_patterns = functools.lru_cache(maxsize=64)(_make_sign_patterns)


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
    return _deviation(moved, f)


def _deviation(moved: np.ndarray, f: np.ndarray) -> np.ndarray:
    """max over the trials (axis 0) of |moved - f| / PERTURBATION, inf where not finite. From
    the largest and the smallest trial only: a rounded difference is monotone in its operand,
    so the farthest trial is one of those two (nan and inf come out as from every trial)."""
    f = np.asarray(f, dtype=np.float64)
    with np.errstate(all="ignore"):
        hi = np.subtract(moved.max(axis=0), f, dtype=np.float64)
        lo = np.subtract(moved.min(axis=0), f, dtype=np.float64)
        dev = np.maximum(np.abs(hi, out=hi), np.abs(lo, out=lo), out=hi)
        np.copyto(dev, np.inf, where=np.isnan(dev))  # the only non-finite values left: nan, +inf
        dev /= PERTURBATION
    return dev


def _rounding(
    fp: np.ndarray, fm: np.ndarray, width: np.ndarray, response: Sequence[np.ndarray], eps: float
) -> np.ndarray:
    """Rounding error of (f(x+h) - f(x-h)) / width: each stored value within eps/2 of what was
    computed (the eps (|f(x+h)| + |f(x-h)|) / 2h term), plus the evaluation errors at the two
    points, each bounded by its rounding response: `response` = [at x+h, at x-h]."""
    with np.errstate(all="ignore"):
        out = np.abs(np.asarray(fp, dtype=np.float64))
        out += np.abs(np.asarray(fm, dtype=np.float64))
        out *= eps
        out += response[0]
        out += response[1]
        out /= np.abs(width)
    return out


def _central_estimate(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    name: str,
    lanes: np.ndarray,
    f: np.ndarray,
    g: np.ndarray,
    dtype: type,
    moved: np.ndarray,
    width: np.ndarray,
    out: np.ndarray,
) -> None:
    """Truncation plus rounding error of the central difference, into `out`, from f at the six
    `lanes` of `central` (x ± h, x ± 2h, x ± h/2), the difference g at x ± h over `width`, and
    the rounding model's trials at x + h (`moved`)."""
    eps = float(np.finfo(dtype).eps)
    f = np.asarray(f, dtype=np.float64)
    pts = np.asarray(lanes, dtype=np.float64)
    if width.dtype != np.float64:
        width = pts[0] - pts[1]
    d1 = np.asarray(g, dtype=np.float64) if g.dtype == np.float64 else (f[0] - f[1]) / width
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
    # (Each step in place, in as few passes over the chunk as the arithmetic allows.)
    wsq = np.square(width)
    # the lanes x ± 2h and x ± h/2 together (rows 2, 4 and rows 3, 5)
    w2 = pts[2::2] - pts[3::2]
    d2 = f[2::2] - f[3::2]
    d2 /= w2
    d2 -= d1
    est = np.abs(d2, out=d2)
    est *= wsq  # |D(factor h) - D(h)| h² / |(factor h)² - h²|
    np.square(w2, out=w2)
    w2 -= wsq
    est /= np.abs(w2, out=w2)
    big, small = est  # nan where f is not finite at x ± factor·h (there only)
    either = np.isnan(big)
    either |= np.isnan(small)
    larger = np.fmax(big, small)
    lower = np.fmin(big, small, out=small)
    trunc = np.multiply(larger, 2, out=big)  # both: the larger plus their difference
    trunc -= lower
    np.copyto(trunc, larger, where=either)  # one of them nan: the other
    np.copyto(trunc, np.inf, where=np.isnan(trunc))
    response = _response_at_one(graph, point, name, lanes[:2], f[:2], dtype, moved)
    np.add(trunc, _rounding(f[0], f[1], width, response, eps), out=out)


def _response_at_one(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, shifted: np.ndarray, fs: np.ndarray,
    dtype: type, moved: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """f's rounding response at x ± h, [at x+h, at x-h], from the trials at x + h (`moved`): the
    one at x + h stands for both (the points are a few millionths of max(1, |x|) apart, and the
    model is an estimate of size, not a value), half the walks of measuring each. Where it is
    not finite at x + h (f at x + h overflows when moved), the response at x - h is measured
    too, there only."""
    resp = _deviation(moved, fs[0])
    singular = resp == np.inf  # (`_deviation` gives inf where it is not finite)
    if not singular.any():
        return resp, resp
    other = resp.copy()
    idx = np.flatnonzero(singular)
    sub = _part(point, idx)
    other[idx] = _rounding_response(graph, sub, name, shifted[1, idx], fs[1, idx], dtype)
    return resp, other


def _take(point: Mapping[str, np.ndarray], shape: tuple[int, ...], idx: np.ndarray) -> dict[str, np.ndarray]:
    """The point at the flat indices idx of a batch of `shape` (unbatched values as they are)."""
    return {v: np.broadcast_to(a, shape).reshape(-1)[idx] if np.ndim(a) else a for v, a in point.items()}


def _trouble_note(
    graph: Graph, point: Mapping[str, np.ndarray], shape: tuple[int, ...], name: str,
    shifted: np.ndarray, sign: str, not_finite: np.ndarray, dtype: type,
) -> str:
    """Why f is not finite at a shifted point (the first point of the batch where it is not):
    every node evaluated at that point only (all of them at every point of the batch: 10⁵ nodes
    × 65,536 points would not fit)."""
    k = int(np.flatnonzero(np.ravel(not_finite))[0])
    at = np.ravel(shifted)[k:k + 1]  # flat, as the batch
    values = evaluate(graph, {**_take(point, shape, np.array([k])), name: at}, dtype)
    trouble = output_trouble(graph, values)
    where = f" at point {k + 1}" if np.size(not_finite) > 1 else ""
    text = describe_trouble(graph, trouble) if trouble is not None else "its value is not finite"
    return f"f is not finite at {name}{sign}h ({name} = {float(at[0]):.17g}){where}: {text}"


# --------------------------------------------------------------------------------------------
# Richardson extrapolation of central differences
# --------------------------------------------------------------------------------------------

RICHARDSON_FIRST_STEP = 0.1  # h0 = 0.1 max(1, |x|): rounding in D(h0) is only ~eps |f| / h0
# h0 / 2**k for k < 32, down to 5e-11 max(1, |x|): far past where rounding takes over when f
# changes on the scale max(1, |x|), and still reaching the scale where it changes when that is
# much shorter (sin(x) at x = 1e6 changes on the scale 1, where h0 = 1e5).
RICHARDSON_CANDIDATES = 32
RICHARDSON_DEPTH = 6  # eliminate h², h⁴, ..., h¹²
# Candidate steps are tried this many at a time, the next block only at the points where the
# earlier ones have not settled (see `richardson`): most points settle in the first.
RICHARDSON_BLOCK = 8
# Points at a time: each carries 32 candidate rows and their tableau, a few KB.
RICHARDSON_CHUNK = 1 << 11


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
    entries' estimates are large and they are not chosen.

    The rounding of every candidate is modelled with f's rounding response at x (as `central`
    does; at each shifted point where it is not finite at x). Then every tableau entry built on
    candidate k has an estimate of at least (2 × response) / (width of step k), which doubles
    with every halving: once the best entry of the first candidates is below that floor for
    all the remaining ones, none of them can be chosen, and they are not evaluated. The
    candidates come in blocks of RICHARDSON_BLOCK, each only at the points not settled yet, and
    the result is exactly that of the whole tableau."""
    grad: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    estimate: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    why: dict[str, str] = {}
    shape = _full_shape(point)
    size = int(np.prod(shape, dtype=np.int64))
    flat = _flat(point, shape)
    n = RICHARDSON_CANDIDATES
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros(shape, dtype=dtype)
            steps[name] = np.zeros(shape, dtype=dtype)
            estimate[name] = np.zeros(shape)
            continue
        xf = x.reshape(-1)
        value, half_width, err = np.empty(size), np.empty(size), np.empty(size)
        plus_bad, minus_bad = np.empty(size, dtype=bool), np.empty(size, dtype=bool)
        for a in range(0, size, RICHARDSON_CHUNK):
            part = slice(a, a + RICHARDSON_CHUNK)
            value[part], half_width[part], err[part], plus_bad[part], minus_bad[part] = _richardson_points(
                graph, _part(flat, part), name, xf[part], dtype)
        # The cell can run where f is finite at both ends of the smallest candidate step; where
        # the domain ends between steps (log(x) at x = 0.05), the large steps drop out there.
        for side, sign in ((plus_bad, "+"), (minus_bad, "-")):
            if side.any():
                with np.errstate(all="ignore"):
                    shifted = _candidates(xf, np.array([n - 1]), dtype)[0 if sign == "+" else 1][0]
                why[name] = _trouble_note(graph, point, shape, name, shifted, sign, side, dtype)
                break
        grad[name] = value.reshape(shape).astype(dtype)
        steps[name] = half_width.reshape(shape).astype(dtype)
        estimate[name] = np.where(np.isnan(err), np.inf, err).reshape(shape)
        bad[name] = (plus_bad | minus_bad).reshape(shape)
    return _finish(grad, steps, estimate, bad, why)


def _candidates(x: np.ndarray, rows: np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """The points x ± h_k for the candidate steps k in `rows`, (len(rows), *x.shape) each:
    h_k = h0 / 2**k, h0 = RICHARDSON_FIRST_STEP max(1, |x|), rounded to dtype."""
    k = np.asarray(rows, dtype=np.float64).reshape((-1,) + (1,) * np.ndim(x))
    nominal = RICHARDSON_FIRST_STEP * np.maximum(1.0, np.abs(x.astype(np.float64))) * 0.5**k
    return (x + nominal).astype(dtype), (x - nominal).astype(dtype)


def _richardson_points(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, x: np.ndarray, dtype: type,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At the points x of a flat point: the value, the half-width of the chosen step, the
    estimate, and where f is not finite at x + h and at x - h of the smallest candidate."""
    eps = float(np.finfo(dtype).eps)
    n, m = RICHARDSON_CANDIDATES, x.size
    value, half_width, err = np.empty(m), np.empty(m), np.empty(m)
    every = slice(None)
    with np.errstate(all="ignore"):
        h0 = RICHARDSON_FIRST_STEP * np.maximum(1.0, np.abs(x.astype(np.float64)))
        halving = 0.5 ** np.arange(n, dtype=np.float64)
        # f and the actual widths (x + h_k) - (x - h_k), rows as computed
        fp, fm, width = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))

        def shifted(rows: np.ndarray, cols: np.ndarray | slice, extra: int = 0) -> np.ndarray:
            """x + h_k, then x - h_k, for the candidate rows at the points cols, as lanes (and
            `extra` lanes after them, left to the caller); their widths into `width`."""
            r = len(rows)
            nominal = h0[cols] * halving[rows, None]
            xc = x[cols]
            lanes = np.empty((2 * r + extra, nominal.shape[1]), dtype=dtype)
            np.add(xc, nominal, out=lanes[:r])  # rounded to dtype, as (x + h).astype(dtype)
            np.subtract(xc, nominal, out=lanes[r:2 * r])
            np.subtract(lanes[:r], lanes[r:2 * r], out=nominal, dtype=np.float64)
            width[at(rows, cols)] = nominal
            return lanes

        def at(rows: np.ndarray, cols: np.ndarray | slice) -> tuple[np.ndarray, ...]:
            """The index of the candidate rows at the points cols (all, or an index array)."""
            return (rows,) if isinstance(cols, slice) else (rows[:, None], cols)

        def fill(rows: np.ndarray, cols: np.ndarray | slice, x0: np.ndarray | None = None,
                 trials: Trials | None = None) -> np.ndarray:
            """f at x ± h_k for the rows and points cols (and at x0, returned, if given; then
            the `trials`' values, walked with them)."""
            lanes = shifted(rows, cols, 0 if x0 is None else 1)
            if x0 is not None:
                lanes[-1] = x0
            if trials is None:
                f = np.asarray(_lanes(graph, _part(point, cols), name, lanes, dtype), dtype=np.float64)
            else:
                got, moved, _ = _with_trials(graph, _part(point, cols), name, lanes, dtype, None, trials)
                assert got is not None and moved is not None  # real arithmetic never refuses
                f = np.asarray(got, dtype=np.float64)
            r = len(rows)
            fp[at(rows, cols)], fm[at(rows, cols)] = f[:r], f[r:2 * r]
            return f[2 * r:] if trials is None else np.concatenate([f[2 * r:], moved])

        def extrapolate(
            cols: np.ndarray | slice, end: int, response: tuple[np.ndarray, np.ndarray]
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """`_extrapolate` over the candidates before `end` at the points cols."""
            a, b, w = fp[:end, cols], fm[:end, cols], width[:end, cols]
            ok = np.isfinite(a)
            ok &= np.isfinite(b)
            d = a - b
            d /= w
            d[~ok] = np.nan
            t = w / 2
            t *= t
            return _extrapolate(d, t, _rounding(a, b, w, response, eps))

        # the first block, the smallest candidate (can the cell run?), x and the rounding
        # model's trials at x, in one walk
        first = min(max(RICHARDSON_BLOCK, 2), n - 1)
        signs = _sign_patterns(len(graph.nodes))
        at_x = fill(np.append(np.arange(first), n - 1), every, x, Trials(signs, signs, x))
        plus_bad, minus_bad = ~np.isfinite(fp[-1]), ~np.isfinite(fm[-1])
        resp = _deviation(at_x[1:], at_x[0])

        # Where the response at x is finite: blocks of candidates, refined where not settled.
        regular = np.isfinite(resp)
        active: np.ndarray | slice = every if regular.all() else np.flatnonzero(regular)
        end = first
        while True:
            r = resp[active]
            if np.size(r) == 0:
                break
            v, s, e = extrapolate(active, end, (r, r))
            if end == n:
                value[active], half_width[active], err[active] = v, s, e
                break
            # every estimate built on candidate k >= end is at least (r + r) / |width_k|, and
            # the widths only shrink: the floor is that of candidate `end`
            shifted(np.array([end]), active)
            floor = r + r
            floor /= np.abs(width[end, active])
            done = e < floor  # strictly: a later entry cannot be chosen, even on a tie
            if done.all():
                value[active], half_width[active], err[active] = v, s, e
                break
            idx = np.arange(m)[active]
            value[idx[done]], half_width[idx[done]], err[idx[done]] = v[done], s[done], e[done]
            active = idx[~done]
            if not active.size:
                break
            stop = min(end + RICHARDSON_BLOCK, n - 1)
            fill(np.arange(end, stop), active)
            end = n if stop == n - 1 else stop
        # Where it is not (x on a singularity of f the steps straddle): every candidate, each
        # with the rounding response at its own two points.
        singular = np.flatnonzero(~regular)
        if singular.size:
            fill(np.arange(first, n - 1), singular)
            xs = shifted(np.arange(n), singular)
            fs = np.concatenate([fp[:, singular], fm[:, singular]])
            each = _rounding_response(graph, _part(point, singular), name, xs, fs, dtype).reshape(2, n, -1)
            v, s, e = extrapolate(singular, n, (each[0], each[1]))
            value[singular], half_width[singular], err[singular] = v, s, e
    return value, half_width, err, plus_bad, minus_bad


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
    estimate of D_k, as in `central`. Returns (value, step, estimate) of the best entry: the
    smallest estimate, the first in the order column by column, row by row, where several tie
    (none: the last row's D, with an infinite estimate)."""
    rows = len(d)
    shape = np.shape(d)[1:]
    d = np.asarray(d, dtype=np.float64).reshape(rows, -1)
    t = np.broadcast_to(t, (rows,) + shape).reshape(rows, -1)
    noise = np.broadcast_to(noise, (rows,) + shape).reshape(rows, -1)
    m = d.shape[1]
    if rows < 2:  # no entry has a neighbour
        return d[-1].reshape(shape).copy(), np.sqrt(t[-1]).reshape(shape), np.full(shape, np.inf)
    columns = min(RICHARDSON_DEPTH, rows - 2) + 1
    # Column j holds entries in its rows j, j+1, ... (`entries`, column after column); those in
    # rows j+1, j+2, ... are the candidates (`errors`, in the same order: the one in row j
    # lacks a neighbour), `entry_of` and `row_of` saying where each candidate's entry is.
    sizes = [rows - j for j in range(columns)]
    first_entry = np.cumsum([0, *sizes])
    first_error = np.cumsum([0, *(size - 1 for size in sizes)])
    entries, errors = np.empty((first_entry[-1], m)), np.empty((first_error[-1], m))
    entry_of = np.concatenate([np.arange(first_entry[j] + 1, first_entry[j + 1]) for j in range(columns)])
    row_of = np.concatenate([np.arange(j + 1, rows) for j in range(columns)])
    with np.errstate(all="ignore"):
        entries[:rows] = d
        e = errors[:first_error[1]]
        np.subtract(d[1:], d[:-1], out=e)
        np.abs(e, out=e)
        e *= t[1:]
        e /= t[:-1] - t[1:]
        e += noise[1:]
        prev, prev_noise = d, noise
        for j in range(1, columns):
            w = t[:-j] - t[j:]
            np.divide(t[j:], w, out=w)  # t_k / (t_{k-j} - t_k)
            r = entries[first_entry[j]:first_entry[j + 1]]
            np.subtract(prev[1:], prev[:-1], out=r)
            r *= w
            r += prev[1:]
            n = w + 1.0
            n *= prev_noise[1:]
            w *= prev_noise[:-1]
            n += w
            e = errors[first_error[j]:first_error[j + 1]]
            np.subtract(r[1:], prev[2:], out=e)
            np.abs(e, out=e)
            other = r[1:] - r[:-1]
            np.abs(other, out=other)
            np.maximum(e, other, out=e)
            e += n[1:]
            prev, prev_noise = r, n
        # the first of the smallest estimates (a nan one is never chosen): the smallest by a
        # reduction that skips nan, then the first candidate equal to it
        smallest = np.fmin.reduce(errors, axis=0)
        found = smallest < np.inf
        pick = np.zeros(m, dtype=np.intp)
        for p in range(len(errors) - 1, -1, -1):
            pick[errors[p] == smallest] = p
        lane = np.arange(m)
        best = np.where(found, entries[entry_of[pick], lane], d[-1])
        best_step = np.sqrt(t[np.where(found, row_of[pick], rows - 1), lane])
        best_err = np.where(found, smallest, np.inf)
    return best.reshape(shape), best_step.reshape(shape), best_err.reshape(shape)


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
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    size = int(np.prod(shape, dtype=np.int64))
    flat = _flat(point, shape)
    run: dict[str, tuple[np.ndarray, np.ndarray, Sequence[bool]]] = {}  # flat x and h, dependence
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        ax = np.abs(x.astype(np.float64))
        h = np.where(ax > 0, np.maximum(eps * eps * ax, tiny), eps * eps).astype(dtype)
        steps[name] = h
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros(shape, dtype=dtype)
            estimate[name] = np.zeros(shape)
        elif name in refused:
            grad[name] = np.full(shape, np.nan, dtype=dtype)
            estimate[name] = np.full(shape, np.inf)
            bad[name], why[name] = np.ones(shape, dtype=bool), refused[name]
        else:
            run[name] = (x.reshape(-1), h.reshape(-1), _depends(graph, [name], len(graph.nodes) - 1))
    # Chunk by chunk: f's real value at every node (for the branch points), then per variable
    # the complex step and its estimate. The batch-wide messages (which branch point, why f is
    # not finite) come from the whole batch's values, evaluated only when there is one to give.
    f_bad = np.empty(size, dtype=bool)
    out = {v: (np.empty(size, dtype=dtype), np.empty(size), np.empty(size, dtype=bool),
               np.empty(size, dtype=bool)) for v in run}
    failed: tuple[str, str] | None = None
    for a in range(0, size, CHUNK):
        part = slice(a, a + CHUNK)
        sub = _part(flat, part)
        values = evaluate(graph, sub, dtype)
        m = len(f_bad[part])
        f_bad[part] = ~np.isfinite(np.broadcast_to(values[graph.output], (m,)))
        for name, (x, h, dep) in run.items():
            g, est, branch, not_finite, fail = _complex_points(
                graph, sub, name, x[part], h[part], dep, values, dtype)
            if fail is not None:
                failed = (name, fail)
                break
            for arr, got in zip(out[name], (g, est, branch, not_finite)):
                arr[part] = got
        if failed is not None:
            break
    whole: list[np.ndarray] | None = None
    if failed is not None or f_bad.all():
        whole = evaluate(graph, point, dtype)
        trouble = output_trouble(graph, whole)
        if trouble is not None and np.all(~np.isfinite(whole[graph.output])):
            note = "f is not finite at this point: " + describe_trouble(graph, trouble)
            return FiniteResult(None, {}, note)
    if failed is not None:
        name, fail = failed
        return FiniteResult(None, {v: steps[v] for v in wrt[:wrt.index(name) + 1]}, fail)
    for name, (g, est, branch, not_finite) in out.items():
        reason = None
        if branch.any() or not_finite.any():
            whole = whole if whole is not None else evaluate(graph, point, dtype)
            _, reason = _branch_point(graph, whole, run[name][2], shape)
            if not_finite.any() and reason is None:
                trouble = first_trouble(graph, whole)
                where = f" ({describe_trouble(graph, trouble)})" if trouble is not None else ""
                reason = f"f is not finite in complex arithmetic at {name} + ih{where}"
        grad[name] = g.reshape(shape)
        estimate[name] = est.reshape(shape)
        bad[name] = (branch | not_finite).reshape(shape)
        if reason is not None:
            why[name] = reason
    return _finish(grad, steps, estimate, bad, why)


def _complex_points(
    graph: Graph, point: Mapping[str, np.ndarray], name: str, x: np.ndarray, h: np.ndarray,
    dep: Sequence[bool], values: Sequence[np.ndarray], dtype: type,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str | None]:
    """At the points x of a flat point (`values`: f's real values there, every node): the complex
    step, its estimate (`_complex_estimate`), where x is on a branch point, where f is not finite
    otherwise; or, last, why a primitive cannot run in complex arithmetic."""
    m = x.size
    branch, _ = _branch_point(graph, values, dep, (m,))
    n = len(graph.nodes)
    signs = _sign_patterns(2 * n)
    with np.errstate(all="ignore"):
        z = x + 1j * h
        # x + ih, for the truncation estimate x + 2ih, and the rounding model's trials at x + ih:
        # one walk
        both, moved, fail = _with_trials(graph, point, name, np.stack([z, z.real + 2j * h]), dtype, dep,
                                         Trials(signs[:, :n], signs[:, n:], z))
    if both is None:
        return z.real, z.real, branch, branch, fail
    not_finite = ~np.isfinite(both[0]) & ~branch
    with np.errstate(all="ignore"):
        g = (both[0].imag / h).astype(dtype)
    est = _complex_estimate(graph, point, dep, name, z, h, g, dtype, both[1], moved)
    return g, est, branch, not_finite, None


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
    doubled: np.ndarray | None = None,
    moved: np.ndarray | None = None,
) -> np.ndarray:
    """Error of Im f(x + ih)/h. Rounding: how far it moves when every operation's result is off
    by eps relative in its real and in its imaginary part (independently), the largest over the
    sign patterns of `_sign_patterns`, plus the final rounding eps |f'|. This sees tangents that
    cancel (x**3 - 2*x where 3x² is near 2) and a rounded argument moving a steep derivative
    (sin(20*x) at fl(20 x)), which a count of operations would not. Underflow: tiny/h, what an
    imaginary part that underflowed can have lost (sigmoid'(-700) = 1e-304 is h f' = 3e-333).
    Truncation: |g(2h) - g(h)|/3 for the relative (h/L)² term; almost always exactly 0, but not
    where f' = 0 and f''' is not (x**3 at 0 gives -h²). `doubled` (f at x + 2ih) and `moved` (the
    trials), if given, are not walked again."""
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    h64 = np.asarray(h, dtype=np.float64)
    g64 = np.asarray(g, dtype=np.float64)
    if moved is None:
        n = len(graph.nodes)
        signs = _sign_patterns(2 * n)  # (2n of them: 30 MB at 10⁵ nodes, made only when needed)
        moved, _ = _evaluate_at(graph, point, name, z, dtype, dep, (signs[:, :n], signs[:, n:]))
    if doubled is None:  # f at x + 2ih, unless given
        doubled, _ = _evaluate_at(graph, point, name, z.real + 2j * h, dtype, dep)
    if moved is None or doubled is None:
        return np.full(np.shape(g64), np.inf)
    with np.errstate(all="ignore"):
        # the farthest trial is the largest or the smallest imaginary part (h > 0: Im/h - g is
        # monotone in it, rounded too), nan and inf coming out as from every trial
        hi = np.asarray(moved.imag.max(axis=0), dtype=np.float64) / h64 - g64
        lo = np.asarray(moved.imag.min(axis=0), dtype=np.float64) / h64 - g64
        dev = np.maximum(np.abs(hi), np.abs(lo))
        trunc = np.abs(np.asarray(doubled.imag, dtype=np.float64) / (2 * h64) - g64) / 3
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
    directions = np.asarray(directions, dtype=np.float64)
    nonzero = directions != 0
    used = [k for k in np.flatnonzero(nonzero.any(axis=0)).tolist() if wrt[k] in graph.var_nodes]
    lead = (m,) + (1,) * len(shape)
    for k in used:
        dirs[wrt[k]] = directions[:, k].reshape(lead)
    # size = max(1, |x_i| over the coordinates each direction moves), for a block of variables
    # at a time (one numpy call per block, not three per variable: 33,488 variables took 0.5 s)
    block = max(1, (1 << 20) // max(1, m * math.prod(shape)))
    for a in range(0, len(used), block):
        part = used[a:a + block]
        x = np.empty((len(part),) + shape)
        for j, k in enumerate(part):
            x[j] = np.asarray(point.get(wrt[k], 0.0), dtype=np.float64)
        np.abs(x, out=x)
        picked = np.where(nonzero[:, part].reshape((m, len(part)) + (1,) * len(shape)), x, 0.0)
        size = np.maximum(size, picked.max(axis=1))
    if not dirs:
        z = np.zeros((m,) + shape)
        return DirectionalResult(z, z.copy(), np.zeros(z.shape, bool))
    if method == "complex":
        return _directional_complex(graph, point, dirs, size, shape, eps, dtype)
    h = np.cbrt(eps) * size  # (m, *shape)
    lanes = np.stack([h, -h, 2 * h, -2 * h, h / 2, -h / 2])  # (6, m, *shape)
    d6 = {v: d[None] for v, d in dirs.items()}
    # f's rounding response at x itself stands for the one at x ± h d (h is 6e-6 of the
    # coordinates' size): one trial row per sign pattern, not two per direction, walked with
    # the lanes
    signs = _sign_patterns(len(graph.nodes))
    with np.errstate(all="ignore"):
        rows = lanes_and_trials(graph, Along(point, lanes, d6, dtype),
                                Shifted(point, "", np.zeros((1,) + shape), dtype, signs=(signs, signs),
                                        size=PERTURBATION), shape)
        f = rows[:6 * m].reshape(lanes.shape).astype(np.float64)
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
        f0 = np.broadcast_to(evaluate_output(graph, Values(point, dtype)), shape).astype(np.float64)
        moved = rows[6 * m:].reshape((len(signs), 1) + shape).astype(np.float64)
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
    dep = _depends(graph, list(dirs), len(graph.nodes) - 1)
    values = evaluate(graph, point, dtype)
    branch, reason = _branch_point(graph, values, dep, shape)
    tiny = float(np.finfo(dtype).tiny)
    h = np.maximum(eps * eps * size, tiny)
    n = len(graph.nodes)
    signs = _sign_patterns(2 * n)
    with np.errstate(all="ignore"):
        z = np.stack([1j * h, 2j * h])  # t = ih and 2ih: the value and the truncation check
        # and the rounding model's trials at t = ih, in the same walk
        try:
            lanes = {v: d[None] for v, d in dirs.items()}
            rows = lanes_and_trials(graph, Along(point, z.astype(np.complex128), lanes, dtype, dep),
                                    Along(point, (1j * h).astype(np.complex128), dirs, dtype, dep,
                                          (signs[:, :n], signs[:, n:]), PERTURBATION), shape)
        except NotComplexCapable as exc:
            return DirectionalResult(np.full((m,) + shape, np.nan), np.full((m,) + shape, np.inf),
                                     np.ones((m,) + shape, bool), str(exc))
        out = rows[:2 * m].reshape(z.shape)
        g = out[0].imag / h
        trunc = np.abs(out[1].imag / (2 * h) - g) / 3
        moved = rows[2 * m:].reshape((len(signs), m) + shape)
        dev = np.abs(moved.imag / h - g).max(axis=0)
        estimate = dev / PERTURBATION + eps * np.abs(g) + tiny / h + trunc
    bad = ~np.isfinite(g) | np.broadcast_to(branch, g.shape)
    note = reason or ("f is not finite in complex arithmetic along a direction" if bad.any() else None)
    return DirectionalResult(np.where(bad, np.nan, g), np.where(bad | np.isnan(estimate), np.inf, estimate),
                             bad, note)
