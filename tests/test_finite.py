"""The value-only methods of finite.py: central, richardson, complex_step, and their estimates.

Every reference is the exact derivative, taken by SymPy from a meaning written in this file
(sigmoid = 1/(1 + exp(-x)), ...: not gradcheck's own tables) and evaluated at 30 significant
digits at the float point itself. Errors are measured in mpmath, not after rounding the
reference to a float.

Measured when this was written, on CORPUS below (26 formula/point pairs, 42 partial
derivatives): every estimate bounded its true error, for each method, in float64 and in
float32. Median relative error in float64: central 2e-11, richardson 7e-15, complex step
1e-16; the estimates overshoot the true error by a median factor of 7, 26 and 31 (smallest
factor 1.0, 3.1, 1.7: central's estimate is the error itself where truncation dominates).
On 2,000 random smooth formulas from tests/strategies.py (3,000 partials, float64) all were
bounded except one formula where SymPy's own derivative was wrong (the three methods agreed
to 1e-15); in float32 (1,000 formulas, 1,500 partials) all but one richardson value, which
exceeded its estimate by a factor of 2.1.
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np
import pytest
import sympy as sp

from gradcheck_cli import finite, parse
from gradcheck_cli.rules import RULES

DPS = 30
Point = dict[str, float]
METHODS: dict[str, Callable[..., finite.FiniteResult]] = {
    "central": finite.central,
    "richardson": finite.richardson,
    "complex": finite.complex_step,
}

# What each function means, independently of gradcheck's functions.py and rules.py.
_MEANING = {
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
    "softplus": lambda x: sp.log(1 + sp.exp(x)),
    "swish": lambda x: x / (1 + sp.exp(-x)),
    "gelu": lambda x: x * sp.erfc(-x / sp.sqrt(2)) / 2,  # = x (1 + erf(x/√2)) / 2, no cancellation
    "erf": sp.erf,
}


def exact_gradient(expr: str, point: Point) -> dict[str, mpmath.mpf]:
    """d expr / d v for every variable, 30 digits, at the float values in `point`."""
    symbols = {v: sp.Symbol(v) for v in point}
    f = sp.sympify(expr, locals={**_MEANING, **symbols}, rational=True)  # 0.1 means 1/10
    subs = {symbols[v]: sp.Float(x, DPS + 10) for v, x in point.items()}  # float -> exact
    return {v: mpmath.mpf(str(sp.N(sp.diff(f, symbols[v]).subs(subs), DPS))) for v in point}


def run(method: str, expr: str, point: Point, dtype: type = np.float64) -> finite.FiniteResult:
    graph = parse(expr)
    arrays = {k: np.asarray(v, dtype=dtype) for k, v in point.items()}
    return METHODS[method](graph, arrays, list(graph.variables), dtype=dtype)


def relative_error(got: float, want: mpmath.mpf) -> float:
    with mpmath.workdps(DPS + 10):
        return float(abs(mpmath.mpf(got) - want) / abs(want))


def absolute_error(got: float, want: mpmath.mpf) -> float:
    with mpmath.workdps(DPS + 10):
        return float(abs(mpmath.mpf(got) - want))


# --------------------------------------------------------------------------------------------
# The lecture formulas
# --------------------------------------------------------------------------------------------

LECTURE = [
    ("cos(sin(x**2)+3*x**2)", {"x": 1.5}),
    ("sigmoid(w0*x0+w1*x1+w2)", {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}),
    ("1/(1+exp(-(w0*x0+w1*x1+w2)))", {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}),
    ("exp(x*z)+x*z/log(x)+sin(log(x))/exp(x*z)", {"x": 2.0, "z": 3.0}),
]
# Relative error each method must reach on them (central: its O(eps^(2/3)) error).
ACCURACY = {"central": 1e-8, "richardson": 1e-12, "complex": 1e-14}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("expr", "point"), LECTURE, ids=[c[0] for c in LECTURE])
def test_lecture_formulas_against_30_digits(method: str, expr: str, point: Point) -> None:
    want = exact_gradient(expr, point)
    res = run(method, expr, point)
    assert res.gradient is not None, res.note
    assert res.estimate is not None and set(res.estimate) == set(point)
    for v in point:
        got = float(res.gradient[v])
        err = relative_error(got, want[v])
        assert err < ACCURACY[method], (v, got, float(want[v]), err)
        assert absolute_error(got, want[v]) <= float(res.estimate[v]), (v, err, float(res.estimate[v]))


@pytest.mark.parametrize(("expr", "point"), LECTURE, ids=[c[0] for c in LECTURE])
def test_richardson_beats_central(expr: str, point: Point) -> None:
    want = exact_gradient(expr, point)
    central, rich = run("central", expr, point), run("richardson", expr, point)
    assert central.gradient is not None and rich.gradient is not None
    for v in point:
        c = relative_error(float(central.gradient[v]), want[v])
        r = relative_error(float(rich.gradient[v]), want[v])
        assert r < c / 100, (v, r, c)


def test_central_keeps_its_step_and_value() -> None:
    """The estimate is new; the value and step are still those of the plain formula."""
    x = np.asarray(1.5)
    res = finite.central(parse("x**3"), {"x": x}, ["x"])
    h = np.cbrt(np.finfo(np.float64).eps) * 1.5
    xp, xm = x + h, x - h
    assert res.gradient is not None and res.estimate is not None
    assert float(res.gradient["x"]) == float((xp**3 - xm**3) / (xp - xm))
    assert float(res.step["x"]) == float((xp - xm) / 2)


# --------------------------------------------------------------------------------------------
# Estimates bound the true error
# --------------------------------------------------------------------------------------------

CORPUS = [
    *LECTURE,
    ("x**3 - 2*x + 1", {"x": 0.7}),
    ("x**3 - 2*x + 1", {"x": 0.8358076292023877}),  # 3x² near 2: the tangents cancel
    ("tanh(x)*atan(y)", {"x": 0.3, "y": -1.2}),
    ("log(1 + x**2)/sqrt(x)", {"x": 3.7}),
    ("sin(20*x)", {"x": 0.4}),
    ("exp(-x**2/2)", {"x": 1.3}),
    ("softplus(x) - gelu(y)", {"x": -2.5, "y": 0.8}),
    ("erf(x)*swish(x)", {"x": 0.6}),
    ("1/(1 + x**2)", {"x": 50.0}),
    ("asin(x/2) + acos(x/3)", {"x": 0.9}),
    ("x**y", {"x": 1.7, "y": 2.3}),
    ("sinh(x)/cosh(2*x)", {"x": -0.8}),
    ("1 - cos(x)", {"x": 1e-3}),  # f is accurate to eps absolute, not relative
    ("exp(x) - 1 - x", {"x": 0.01}),
    ("sqrt(x**2 + y**2)", {"x": 3.0, "y": 4.0}),
    ("tan(x)", {"x": 1.4}),
    ("log(x)", {"x": 0.05}),  # richardson's first steps leave the domain
    ("x*exp(x)", {"x": 10.0}),
    ("sin(x)*cos(y)*exp(z)", {"x": 0.1, "y": 2.0, "z": -1.0}),
    ("(x - 1)**4 * exp(x)", {"x": 1.001}),
    ("sigmoid(x)", {"x": -30.0}),
    ("x**2*y + y**3/x", {"x": 123.0, "y": 0.02}),
]
# A bound that is a bound, but not a vacuous one: the median estimate, relative to |f'|.
MEDIAN_ESTIMATE = {"central": 1e-8, "richardson": 1e-12, "complex": 1e-14}


@pytest.fixture(scope="module")
def corpus_results() -> dict[str, list[tuple[float, float, float]]]:
    """(absolute error, estimate, |exact|) per method and partial derivative."""
    rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
    for expr, point in CORPUS:
        want = exact_gradient(expr, point)
        for method in METHODS:
            res = run(method, expr, point)
            assert res.gradient is not None and res.estimate is not None, (method, expr, res.note)
            for v in point:
                err = absolute_error(float(res.gradient[v]), want[v])
                rows[method].append((err, float(res.estimate[v]), float(abs(want[v]))))
    return rows


@pytest.mark.parametrize("method", METHODS)
def test_estimates_bound_the_true_error(
    method: str, corpus_results: dict[str, list[tuple[float, float, float]]]
) -> None:
    rows = corpus_results[method]
    assert len(rows) >= 30
    bounded = np.mean([err <= est for err, est, _ in rows])
    assert bounded >= 0.9, f"{method}: estimate bounded the error in {bounded:.0%} of cases"
    assert all(err <= 4 * est for err, est, _ in rows), method


@pytest.mark.parametrize("method", METHODS)
def test_estimates_are_not_vacuous(
    method: str, corpus_results: dict[str, list[tuple[float, float, float]]]
) -> None:
    relative = [est / exact for _, est, exact in corpus_results[method]]
    assert np.median(relative) < MEDIAN_ESTIMATE[method], (method, np.median(relative))


def test_central_estimate_sees_cancellation() -> None:
    """1 - cos(x) at x = 1e-3 is 5e-7, computed from cos(x) = 0.9999995 with an error of
    eps absolute: a few ulps of |f| would promise a thousand times too much."""
    expr, point = "1 - cos(x)", {"x": 1e-3}
    res = run("central", expr, point)
    assert res.gradient is not None and res.estimate is not None
    err = absolute_error(float(res.gradient["x"]), exact_gradient(expr, point)["x"])
    eps, h, f = np.finfo(np.float64).eps, float(res.step["x"]), 5e-7
    naive = 4 * eps * 2 * f / (2 * h)  # four ulps of each |f(x ± h)|
    assert err > 100 * naive  # the naive rounding bound would fail here ...
    assert err <= float(res.estimate["x"])  # ... this one does not


def test_richardson_reaches_the_scale_of_f() -> None:
    """sin(x) at x = 1e6 changes on the scale 1, not |x|: the first steps (1e5) are useless,
    the tableau goes on down to where it converges."""
    res = run("richardson", "sin(x)", {"x": 1e6})
    assert res.gradient is not None and res.estimate is not None
    want = mpmath.cos(mpmath.mpf(1e6))
    assert relative_error(float(res.gradient["x"]), want) < 1e-12
    assert float(res.step["x"]) < 1
    assert absolute_error(float(res.gradient["x"]), want) <= float(res.estimate["x"])


def test_richardson_starts_inside_the_domain() -> None:
    """log(x) at 0.05: x - 0.1 < 0, so the large steps are dropped, not reported."""
    res = run("richardson", "log(x)", {"x": 0.05})
    assert res.gradient is not None, res.note
    assert relative_error(float(res.gradient["x"]), mpmath.mpf(20)) < 1e-12
    assert float(res.step["x"]) < 0.05


# --------------------------------------------------------------------------------------------
# Complex step: analytic formulas only
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("expr", "op"),
    [("abs(x)*y", "abs"), ("relu(x) + y", "relu"), ("max(x, y)", "max"), ("min(x, 2)", "min"),
     ("leaky_relu(x)", "leaky_relu"), ("elu(x)", "elu"), ("hard_swish(x)*y", "hard_swish")],
)
def test_complex_step_refuses_non_analytic_primitives(expr: str, op: str) -> None:
    res = run("complex", expr, {"x": 0.7, "y": 1.3} if "y" in expr else {"x": 0.7})
    note = f"complex step needs an analytic formula; {op} is not analytic"
    if res.gradient is None:  # every variable passes through the non-analytic primitive
        assert res.note == note
    else:  # only the variables that do are refused; the others are still computed
        assert expr in ("abs(x)*y", "relu(x) + y", "hard_swish(x)*y")
        assert bool(res.bad["x"]) and res.why["x"] == note
        want = {"abs(x)*y": 0.7, "relu(x) + y": 1.0, "hard_swish(x)*y": 0.7 * 3.7 / 6}[expr]
        assert float(res.gradient["y"]) == pytest.approx(want, rel=1e-15)


def test_non_analytic_part_that_does_not_depend_on_the_variable_is_fine() -> None:
    graph = parse("abs(y)*x")
    res = finite.complex_step(graph, {"x": np.asarray(0.5), "y": np.asarray(-2.0)}, ["x"])
    assert res.gradient is not None and float(res.gradient["x"]) == 2.0


@pytest.mark.parametrize(
    ("expr", "x", "what"),
    [("sqrt(x)", 0.0, "sqrt is not analytic at 0"),
     ("sqrt(x**2)", 0.0, "sqrt is not analytic at 0"),  # |x| in disguise: slope 1 otherwise
     ("asin(x)", 1.0, "asin is not analytic at ±1"),
     ("x**0.5", 0.0, "fractional v is not analytic at u = 0"),
     ("(-2)**x", 2.0, "negative base to a power that depends on the variable")],
)
def test_complex_step_refuses_branch_points(expr: str, x: float, what: str) -> None:
    res = run("complex", expr, {"x": x})
    assert res.gradient is None
    assert res.note is not None and res.note.startswith("complex step needs an analytic formula")
    assert what in res.note


def test_complex_value_is_set_only_where_needed() -> None:
    assert {op for op, r in RULES.items() if r.complex_value is not None} == {
        "sigmoid", "softplus", "swish", "gelu", "erf", "cbrt", "atan2"
    }


@pytest.mark.parametrize(("op", "args"), [("cbrt", (-8.0,)), ("cbrt", (0.3,)),
                                          ("atan2", (0.5, -1.0)), ("atan2", (-0.5, -1.0)),
                                          ("atan2", (1.0, 2.0))])
def test_real_functions_continued_into_the_complex_plane(op: str, args: tuple[float, ...]) -> None:
    # on the real axis the complex continuation is the real function (cbrt(-8) = -2, not the
    # principal complex root), and the complex step through it gives the real derivative
    rule = RULES[op]
    assert complex(rule.complex_value(*args)) == pytest.approx(float(rule.value(*args)), rel=1e-15)
    h = 1e-20
    shifted = (complex(args[0], h),) + args[1:]
    want = float(rule.partial(0, rule.value(*args), tuple(np.asarray(a) for a in args)))
    assert complex(rule.complex_value(*shifted)).imag / h == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("op", ["sigmoid", "softplus", "swish", "gelu", "erf"])
@pytest.mark.parametrize("x", [-30.0, -3.0, -0.4, 0.0, 0.7, 5.0, 40.0])
def test_complex_value_on_the_real_axis_is_the_function(op: str, x: float) -> None:
    """Within 4 ulps of the exact value (gelu's real `value` is not, at -30: it rounds x/√2
    before erfc, whose relative sensitivity there is 2 (x/√2)² = 900)."""
    rule = RULES[op]
    assert rule.complex_value is not None
    got = rule.complex_value(np.asarray(complex(x, 0.0)))
    assert got.dtype.kind == "c"
    assert got.imag == 0.0
    f = sp.sympify(f"{op}(x)", locals={**_MEANING, "x": sp.Symbol("x")})
    want = mpmath.mpf(str(sp.N(f.subs(sp.Symbol("x"), sp.Float(x, DPS + 10)), DPS)))
    assert absolute_error(float(got.real), want) <= 4 * np.finfo(np.float64).eps * float(abs(want))


@pytest.mark.parametrize("op", ["sigmoid", "softplus", "swish", "gelu", "erf"])
@pytest.mark.parametrize("x", [-30.0, -3.0, -0.4, 0.0, 0.7, 5.0, 40.0])
def test_complex_step_through_activations(op: str, x: float) -> None:
    expr = f"{op}(x)"
    want = exact_gradient(expr, {"x": x})["x"]
    res = run("complex", expr, {"x": x})
    assert res.gradient is not None, res.note
    got = float(res.gradient["x"])
    if want == 0 or abs(want) < 1e-300:  # erf'(40) = 1e-695 underflows
        assert got == 0.0
        return
    assert relative_error(got, want) < 1e-14, (got, float(want))
    assert absolute_error(got, want) <= float(res.estimate["x"])  # type: ignore[index]


def test_complex_step_through_composed_activations() -> None:
    expr, point = "gelu(x*y) + softplus(erf(x) - y) * sigmoid(-x)", {"x": 0.3, "y": -1.7}
    want = exact_gradient(expr, point)
    res = run("complex", expr, point)
    assert res.gradient is not None, res.note
    for v in point:
        assert relative_error(float(res.gradient[v]), want[v]) < 1e-14


def test_complex_step_small_x_keeps_h_below_the_scale_of_f() -> None:
    """log(x) at 1e-20: h = eps**2 |x|, not eps**2, or (h/x)**2 would not be small."""
    res = run("complex", "log(x)", {"x": 1e-20})
    assert res.gradient is not None
    assert relative_error(float(res.gradient["x"]), mpmath.mpf(10) ** 20) < 1e-14


def test_underflowed_derivative_is_in_the_estimate() -> None:
    """sigmoid'(-700) = 1e-304, and h f' underflows: 0 is returned, and the estimate says
    that an error of that size is possible."""
    res = run("complex", "sigmoid(x)", {"x": -700.0})
    assert res.gradient is not None and res.estimate is not None
    want = exact_gradient("sigmoid(x)", {"x": -700.0})["x"]
    assert absolute_error(float(res.gradient["x"]), want) <= float(res.estimate["x"])


# --------------------------------------------------------------------------------------------
# Undefined points, shapes, float32
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["central", "richardson"])
def test_not_finite_at_a_shifted_point(method: str) -> None:
    res = run(method, "sqrt(x)", {"x": 0.0})
    assert res.gradient is None
    assert res.note is not None and res.note.startswith("f is not finite at x-h")
    assert "sqrt(u)" in res.note


def test_complex_step_not_finite_in_complex_arithmetic() -> None:
    """1/(1+exp(-x)) at -800: exp overflows and the complex value is nan + nan i."""
    res = run("complex", "1/(1+exp(-x))", {"x": -800.0})
    assert res.gradient is None
    assert res.note is not None and "not finite in complex arithmetic" in res.note


@pytest.mark.parametrize("method", METHODS)
def test_several_points_at_once(method: str) -> None:
    xs = np.array([0.5, -1.0, 2.0])
    graph = parse("gelu(x)*y")
    res = METHODS[method](graph, {"x": xs, "y": np.asarray(3.0)}, ["x", "y"])
    assert res.gradient is not None and res.estimate is not None
    assert np.shape(res.gradient["x"]) == (3,) and np.shape(res.estimate["x"]) == (3,)
    for k, x in enumerate(xs):
        want = exact_gradient("gelu(x)*y", {"x": float(x), "y": 3.0})
        for v in ("x", "y"):
            assert relative_error(float(res.gradient[v][k]), want[v]) < ACCURACY[method]


@pytest.mark.parametrize("method", METHODS)
def test_float32(method: str) -> None:
    expr, point = "exp(x*z)+x*z/log(x)+sin(log(x))/exp(x*z)", {"x": 2.0, "z": 3.0}
    want = exact_gradient(expr, point)  # both values are floats of float32 too
    res = run(method, expr, point, dtype=np.float32)
    assert res.gradient is not None and res.estimate is not None
    for v in point:
        assert res.gradient[v].dtype == np.float32
        err = absolute_error(float(res.gradient[v]), want[v])
        assert err <= float(res.estimate[v])
        assert err / float(abs(want[v])) < {"central": 1e-3, "richardson": 1e-5, "complex": 1e-6}[method]


def test_float32_step_is_cbrt_of_float32_eps() -> None:
    res = run("central", "sin(x)", {"x": 0.5}, dtype=np.float32)
    h = float(res.step["x"])
    assert h == pytest.approx(float(np.cbrt(np.finfo(np.float32).eps)), rel=1e-3)  # 4.9e-3
    assert h > 1e-3  # the float64 step (6e-6) would be all rounding in float32
