"""The finite differences' walks: one pass for the lanes and the rounding trials, alike trials
evaluated once, and what is kept between chunks, all give the numbers of the plain walks.

`interpret.lanes_and_trials` walks f's lanes (a `Shifted` without signs) and the rounding
model's trials (a `Shifted` with signs) in one pass, most nodes one numpy call for both (at one
point a walk's cost is per call); `interpret.trials_output` walks the trials alone, each group
of trials that are still alike evaluated once (at many points the cost is per value). The
references below are the plain walks, `evaluate_output` of each interpreter on its own: the
fast walks must agree with them bit for bit (nan, inf and the sign of zero included), on every
rule of the table, constants that are rounded (pi, 0.1) or not (2), exponents that are computed
(x**(1/3)), other variables, complex arithmetic and float32, at one point and at many, in both
of `lanes_and_trials`'s modes. Then the methods built on them: `directional` against the same
algorithm written with separate walks, the estimates against true errors, and the kept
constants and factors against a graph of the same size with other constants.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import finite, interpret, parse
from gradcheck_cli.interpret import Along, Shifted, Values, evaluate_output, lanes_and_trials, trials_output
from gradcheck_cli.rules import RULES, Rule

# Every rule of the table, with constants rounded and not, computed exponents and a second
# variable y (not moved); x in (0.1, 0.9) keeps asin, acosh(x + 1), ... in their domains.
REAL = [
    "cos(sin(x**2)+3*x**2)",
    "x**(1/3) + y**(2*1.0) + x**0.5 + x**y + y**x + e**x",
    "pi*x + 0.1*y - x/y + (-x)",
    "tan(x) + asin(x) + acos(x) + atan(x*y) + sinh(x) + cosh(y) + tanh(x)",
    "exp(x) + log(x) + sqrt(x*y) + erf(x) + sec(x) + csc(x) + cot(x)",
    "asec(x + 1.5) + acsc(x + 2) + acot(x) + asinh(x) + acosh(x + 1) + atanh(x/2)",
    "log2(x) + log10(y) + cbrt(x - 0.5) + atan2(y, x) + abs(x - y)",
    "max(x, y, 0.5) + min(x, 2*y) + sigmoid(x) + relu(x - 0.4) + leaky_relu(x - 0.5)",
    "elu(x - 0.3) + softplus(x*y) + swish(x) + gelu(y - x) + hard_swish(3*x)",
    "x",  # nothing rounded
    "sin(y) + 0.1",  # x not in it: both walks' values unmoved by the lanes
    "-relu(x - 2) - relu(y - 2)",  # -0.0 in every lane: the lanes' rows moved by 1 and -0.0
    "y*3 + x*0",  # an unmoved part and a moved one
    "exp(800*x) - exp(x)",  # overflow in some lanes
]
# Analytic in x (for the complex step); gelu and erf run in mpmath: few points
COMPLEX = [
    "cos(sin(x**2)+3*x**2)",
    "x**(1/3) + x**y + y**x + exp(x)*log(x) + sqrt(x) + x**2.5",
    "tan(x) + asin(x) + atanh(x/2) + sigmoid(x) + softplus(x) + swish(x) + atan2(y, x) + cbrt(x)",
    "pi*x/y + 0.1/(1 + x*x) + sinh(x)*cosh(y)",
    "erf(x) + gelu(x*y)",
]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit: dtype, shape, and every byte (nan and the sign of zero included)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _walks(expr: str, m: int | None, dtype: type, complex_: bool):
    """A graph, its lanes' and trials' interpreters as `central` (or the complex step) builds
    them, at m points (None: one point, unbatched)."""
    graph = parse(expr)
    rng = np.random.default_rng(len(expr))
    shape = () if m is None else (m,)
    x = rng.uniform(0.1, 0.9, shape).astype(dtype)
    y = np.asarray(rng.uniform(0.2, 0.9, shape), dtype=dtype)
    if m is not None and m > 2:
        x[:2] = (0.5, 1e-300)  # a value near the bottom of the range
    point = {"x": x, "y": y}
    xf = np.atleast_1d(x)
    h = finite.default_step(xf, dtype)
    n = len(graph.nodes)
    if complex_:
        dep = graph.depends_on(["x"])
        z = xf + 1j * (h * 1e-5).astype(dtype)
        signs = finite._sign_patterns(2 * n)
        lanes = Shifted(point, "x", np.stack([z, z.real + 2j * h.astype(dtype)]), dtype, dep)
        trials = Shifted(point, "x", z, dtype, dep, (signs[:, :n], signs[:, n:]), finite.PERTURBATION)
    else:
        signs = finite._sign_patterns(n)
        xs = np.stack([xf + s * h for s in finite._LANE_STEPS]).astype(dtype)
        lanes = Shifted(point, "x", xs, dtype)
        trials = Shifted(point, "x", xs[0], dtype, None, (signs, signs), finite.PERTURBATION)
    return graph, lanes, trials, xf.shape


def _plain(graph, lanes, trials, rest):
    """The two walks on their own, broadcast to their rows."""
    nl = lanes.xs.shape[0]
    fl = np.broadcast_to(evaluate_output(graph, lanes), (nl,) + rest)
    ft = np.broadcast_to(evaluate_output(graph, trials), (len(trials.signs[0]),) + rest)
    return fl, ft


CASES = [(e, False, d) for e in REAL for d in (np.float64, np.float32)] \
    + [(e, True, np.float64) for e in COMPLEX]


@pytest.mark.parametrize(("expr", "complex_", "dtype"), CASES)
@pytest.mark.parametrize("m", [None, 1, 5, 700])
@pytest.mark.parametrize("one_pass", [True, False])
def test_one_pass_gives_the_two_walks_numbers(expr, complex_, dtype, m, one_pass, monkeypatch) -> None:
    if complex_ and m == 700 and "erf" in expr:
        m = 9  # mpmath, an element at a time
    monkeypatch.setattr(interpret, "_WHOLE_ROWS", 1 << 40 if one_pass else 0)
    graph, lanes, trials, rest = _walks(expr, m, dtype, complex_)
    fl, ft = _plain(graph, lanes, trials, rest)
    rows = lanes_and_trials(graph, lanes, trials, rest)
    assert _same(rows[:len(fl)], fl), expr
    assert _same(rows[len(fl):], ft), expr


@pytest.mark.parametrize(("expr", "complex_", "dtype"), CASES)
@pytest.mark.parametrize("m", [None, 3, 700])
def test_alike_trials_give_the_plain_walks_numbers(expr, complex_, dtype, m) -> None:
    if complex_ and m == 700 and "erf" in expr:
        m = 9
    graph, _, trials, rest = _walks(expr, m, dtype, complex_)
    ft = np.broadcast_to(evaluate_output(graph, trials), (len(trials.signs[0]),) + rest)
    assert _same(trials_output(graph, trials, rest), ft), expr


def test_alike_trials_are_evaluated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card formula's 4 trials at x + h, at many points (two walks): x**2 is one value
    before its rounding is moved and two after (each trial moves it up or down), so sin of it
    is 2 rows, not 4; the lanes 6 rows. 18 of the 20 sin and cos a point (the elementary
    functions are most of `central`'s time)."""
    rows: dict[str, int] = {"sin": 0, "cos": 0}
    for op in rows:
        rule = RULES[op]

        def counting(a, op=op, value=rule.value):
            rows[op] += np.size(a) // 4000
            return value(a)
        monkeypatch.setitem(RULES, op, Rule(counting, rule.partials))
    finite.central(parse("cos(sin(x**2)+3*x**2)"), {"x": np.linspace(-2, 2, 4000)}, ["x"])
    assert rows == {"sin": 6 + 2, "cos": 6 + 4}


# --------------------------------------------------------------------------------------------
# directional: the same algorithm with the lanes and the trials walked on their own
# --------------------------------------------------------------------------------------------


def plain_directional(graph, point, wrt, directions, method, dtype):
    """`finite.directional` as it was written with separate walks (values, estimate, bad)."""
    shape = finite._full_shape(point)
    m = len(directions)
    eps = float(np.finfo(dtype).eps)
    dirs, size = {}, np.ones((m,) + shape)
    for k, name in enumerate(wrt):
        col = np.asarray(directions[:, k], dtype=np.float64)
        if name not in graph.var_nodes or not col.any():
            continue
        dirs[name] = col.reshape((m,) + (1,) * len(shape))
        x = np.abs(np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=np.float64), shape))
        size = np.maximum(size, np.where(col.reshape((m,) + (1,) * len(shape)) != 0, x, 0.0))
    n = len(graph.nodes)
    with np.errstate(all="ignore"):
        if method == "complex":
            dep = graph.depends_on(list(dirs))
            tiny = float(np.finfo(dtype).tiny)
            h = np.maximum(eps * eps * size, tiny)
            z = np.stack([1j * h, 2j * h])
            lanes = {v: d[None] for v, d in dirs.items()}
            out = evaluate_output(graph, Along(point, z.astype(np.complex128), lanes, dtype, dep))
            out = np.broadcast_to(out, z.shape)
            g = out[0].imag / h
            trunc = np.abs(out[1].imag / (2 * h) - g) / 3
            signs = finite._sign_patterns(2 * n)
            moved = evaluate_output(graph, Along(point, (1j * h).astype(np.complex128), dirs, dtype, dep,
                                                 (signs[:, :n], signs[:, n:]), finite.PERTURBATION))
            moved = np.broadcast_to(moved, (len(signs), m) + shape)
            dev = np.abs(moved.imag / h - g).max(axis=0)
            est = dev / finite.PERTURBATION + eps * np.abs(g) + tiny / h + trunc
            return g, est
        h = np.cbrt(eps) * size
        lanes = np.stack([h, -h, 2 * h, -2 * h, h / 2, -h / 2])
        f = evaluate_output(graph, Along(point, lanes, {v: d[None] for v, d in dirs.items()}, dtype))
        f = np.broadcast_to(f, lanes.shape).astype(np.float64)
        d1 = (f[0] - f[1]) / (2 * h)
        ests = [np.abs((f[a] - f[a + 1]) / (2 * k * h) - d1) / abs(k**2 - 1) for a, k in ((2, 2.0), (4, 0.5))]
        big, small = ests
        trunc = np.where(np.isnan(big) | np.isnan(small), np.fmax(big, small),
                         2 * np.fmax(big, small) - np.fmin(big, small))
        trunc = np.where(np.isnan(trunc), np.inf, trunc)
        signs = finite._sign_patterns(n)
        f0 = np.broadcast_to(evaluate_output(graph, Values(point, dtype)), shape).astype(np.float64)
        moved = evaluate_output(graph, Shifted(point, "", np.zeros((1,) + shape), dtype, signs=(signs, signs),
                                               size=finite.PERTURBATION))
        moved = np.broadcast_to(moved, (len(signs), 1) + shape).astype(np.float64)
        dev = np.abs(moved[:, 0] - f0).max(axis=0)
        resp = np.where(np.isfinite(dev), dev, np.inf) / finite.PERTURBATION
        est = trunc + finite._rounding(f[0], f[1], 2 * h, np.stack([resp, resp]), eps)
        return d1, est


DIRECTIONAL = ["cos(sin(x**2)+3*x**2) + y*z", "tanh(w0*x + w1*y) * z + pi*x", "exp(x*y) - log(z) + x**(1/3)",
               "sigmoid(x - y) + sqrt(x*z) + atan2(y, z)",
               # swish's complex form is z * sigmoid(z): numpy computes it swapped (other bits)
               # in an array of 256 KiB or more, as the plain walk's trials are at 800 points
               "swish(x*2) + z*y"]


@pytest.mark.parametrize("expr", DIRECTIONAL)
@pytest.mark.parametrize("method", ["central", "complex"])
@pytest.mark.parametrize("k", [None, 1, 400, 800])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_directional_gives_the_separate_walks_numbers(expr, method, k, dtype) -> None:
    if method == "complex" and dtype is np.float32:
        return
    graph = parse(expr)
    wrt = sorted(graph.variables)
    rng = np.random.default_rng(3)
    shape = () if k is None else (k,)
    point = {v: np.asarray(rng.uniform(0.2, 1.5, shape), dtype=dtype) for v in wrt}
    directions = np.vstack([np.eye(len(wrt))[:2], rng.choice([-1.0, 1.0], (3, len(wrt))),
                            rng.standard_normal((1, len(wrt)))])
    res = finite.directional(graph, point, wrt, directions, method, dtype)
    values, est = plain_directional(graph, point, wrt, directions, method, dtype)
    keep = ~res.bad
    assert _same(np.where(keep, res.values, 0.0), np.where(keep, values, 0.0))
    assert _same(np.where(keep, res.estimate, 0.0), np.where(keep, np.where(np.isnan(est), np.inf, est), 0.0))


# --------------------------------------------------------------------------------------------
# The estimates still bound the true errors
# --------------------------------------------------------------------------------------------

KNOWN = {
    "sin(x)": np.cos,
    "exp(x)": np.exp,
    "log(x)": lambda x: 1 / x,
    "x**3 - 2*x": lambda x: 3 * x**2 - 2,
    "1/(1+x**2)": lambda x: -2 * x / (1 + x**2) ** 2,
    "sqrt(x)*cos(3*x)": lambda x: 0.5 / np.sqrt(x) * np.cos(3 * x) - 3 * np.sqrt(x) * np.sin(3 * x),
    "cos(sin(x**2)+3*x**2)": lambda x: -np.sin(np.sin(x**2) + 3 * x**2) * (np.cos(x**2) * 2 * x + 6 * x),
}


@pytest.mark.parametrize("expr", KNOWN)
@pytest.mark.parametrize("method", ["central", "complex_step", "richardson"])
def test_estimates_bound_the_true_errors(expr, method) -> None:
    """At 20,000 points (chunks, one pass and two walks alike): every error within the estimate,
    give or take the float64 reference's own rounding (a few eps of the derivative)."""
    x = np.linspace(0.05, 3, 20_000)
    exact = KNOWN[expr](np.longdouble(x)).astype(np.float64)
    res = getattr(finite, method)(parse(expr), {"x": x}, ["x"])
    err = np.abs(res.gradient["x"] - exact)
    assert np.all(err <= res.estimate["x"] + 4 * np.finfo(np.float64).eps * np.abs(exact)), expr


# --------------------------------------------------------------------------------------------
# What is kept: between chunks (constants, factors) and between walks (what the signs give)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["pi*x + 0.1*x**2 + 3", "cos(sin(x**2)+3*x**2)", "x**(1/3) + e**x"])
def test_chunks_give_the_whole_batch_numbers(expr, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = parse(expr)
    point = {"x": np.random.default_rng(0).uniform(0.1, 3, 3000)}
    whole = finite.central(graph, point, ["x"])
    for chunk in (1, 7, 1000):
        monkeypatch.setattr(finite, "CHUNK", chunk)
        part = finite.central(graph, point, ["x"])
        assert _same(part.gradient["x"], whole.gradient["x"])
        assert _same(part.estimate["x"], whole.estimate["x"])


def test_what_is_kept_between_walks_is_the_signs_own() -> None:
    """Two graphs of the same size share sign patterns and their kept factors, never their
    constants: each gives the numbers it gives alone, whichever ran first."""
    a, b = parse("x*0.1 + 2"), parse("x*0.3 + 5")
    assert len(a.nodes) == len(b.nodes)
    for k in (1, 5, 3000):
        point = {"x": np.linspace(0.5, 2, k)}
        interpret._LAYOUTS.clear()
        alone = finite.central(b, point, ["x"])
        finite.central(a, point, ["x"])
        again = finite.central(b, point, ["x"])
        assert _same(again.gradient["x"], alone.gradient["x"])
        assert _same(again.estimate["x"], alone.estimate["x"])
        assert np.allclose(again.gradient["x"], 0.3)
