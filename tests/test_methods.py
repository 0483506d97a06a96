"""The four methods against values derived by hand, not by gradcheck.

Every expected number here comes from the lecture notes (at their rounding), from exact
arithmetic, or from mpmath at 30 significant digits evaluating a derivative written out by
hand in this file. Each method module is called directly (graph, point of numpy arrays, wrt)
and the same formulas go through `gradcheck_cli.check`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
import pytest
import sympy  # noqa: F401  # imported once here, so symbolic's forked workers need not import it

from gradcheck_cli import GradcheckError, check, finite, forward, parse, reverse, symbolic

DPS = 30
METHODS = ("reverse", "forward", "symbolic", "central")
EXACT_METHODS = ("reverse", "forward", "symbolic")
# Relative tolerance against a 30-digit reference: the exact methods differ from it only by
# float64 rounding; central differences also carry O(h**2) truncation and O(eps/h) rounding.
RTOL = {"reverse": 1e-13, "forward": 1e-13, "symbolic": 1e-13, "central": 1e-7}

Point = dict[str, float]
Grad = dict[str, float]


def _arrays(point: Point) -> dict[str, np.ndarray]:
    return {k: np.asarray(float(v), dtype=np.float64) for k, v in point.items()}


def _run(method: str, graph, point: dict[str, np.ndarray], wrt: list[str]) -> dict[str, np.ndarray]:
    if method == "reverse":
        return reverse.gradient(graph, point, wrt)
    if method == "forward":
        return forward.gradient(graph, point, wrt)
    if method == "symbolic":
        res = symbolic.gradient(graph, point, wrt)
        assert res.gradient is not None, res.note
        return res.gradient
    res = finite.central(graph, point, wrt)
    assert res.gradient is not None, res.note
    return res.gradient


def gradient_of(method: str, expr: str, point: Point, wrt: list[str] | None = None) -> Grad:
    """One method called directly on one point; plain floats out."""
    graph = parse(expr)
    wrt = list(graph.variables) if wrt is None else wrt
    raw = _run(method, graph, _arrays(point), wrt)
    assert set(raw) == set(wrt)
    for v in wrt:
        assert np.shape(raw[v]) == (), (v, np.shape(raw[v]))
    return {v: float(raw[v]) for v in wrt}


@functools.cache
def _cached_check(expr: str, point: tuple[tuple[str, float], ...]):
    return check(expr, dict(point))


def report_for(expr: str, point: Point):
    """check(expr, point), computed once per module: several tests read the same report."""
    return _cached_check(expr, tuple(sorted(point.items())))


def assert_close(got: Grad, want: dict[str, object], rtol: float, atol: float = 0.0) -> None:
    assert set(got) == set(want)
    for v, w in want.items():
        w = float(w)  # type: ignore[arg-type]
        assert math.isclose(got[v], w, rel_tol=rtol, abs_tol=atol), f"d/d{v}: got {got[v]!r}, want {w!r}"


# --------------------------------------------------------------------------------------------
# 30-digit references, derivatives written out by hand
# --------------------------------------------------------------------------------------------

def _mp(point: Point) -> dict[str, mpmath.mpf]:
    return {k: mpmath.mpf(v) for k, v in point.items()}  # float -> mpf is exact


def exact_add_mul(p: Point):
    x, y, z = (mpmath.mpf(p[k]) for k in "xyz")
    q = x + y
    return q * z, {"x": z, "y": z, "z": q}


def exact_neuron(p: Point):
    """f = sigma(a), a = w0*x0 + w1*x1 + w2; df/da = sigma*(1-sigma)."""
    with mpmath.workdps(DPS):
        m = _mp(p)
        a = m["w0"] * m["x0"] + m["w1"] * m["x1"] + m["w2"]
        s = 1 / (1 + mpmath.exp(-a))
        ds = s * (1 - s)
        return s, {"w0": ds * m["x0"], "x0": ds * m["w0"], "w1": ds * m["x1"],
                   "x1": ds * m["w1"], "w2": ds}


def exact_card(p: Point):
    """J = cos(u), u = sin(t) + 3t, t = x**2: dJ/dx = -sin(u) * (cos(t)*2x + 3*2x)."""
    with mpmath.workdps(DPS):
        x = mpmath.mpf(p["x"])
        t = x**2
        u = mpmath.sin(t) + 3 * t
        return mpmath.cos(u), {"x": -mpmath.sin(u) * (mpmath.cos(t) * 2 * x + 6 * x)}


def _quiz_parts(x, z):
    lx = mpmath.log(x)
    value = mpmath.exp(x * z) + x * z / lx + mpmath.sin(lx) / mpmath.exp(x * z)
    dx = (z * mpmath.exp(x * z) + z / lx - z / lx**2
          + (mpmath.cos(lx) / x - z * mpmath.sin(lx)) * mpmath.exp(-x * z))
    dz = x * mpmath.exp(x * z) + x / lx - x * mpmath.sin(lx) * mpmath.exp(-x * z)
    return value, dx, dz


def exact_quiz(p: Point):
    """y = exp(xz) + xz/log x + sin(log x)/exp(xz), differentiated by hand."""
    with mpmath.workdps(DPS):
        value, dx, dz = _quiz_parts(mpmath.mpf(p["x"]), mpmath.mpf(p["z"]))
        return value, {"x": dx, "z": dz}


def exact_tanh_net(p: Point):
    """L = 0.5*(v0*tanh(a) + v1*tanh(b) - 0.5)**2, a = w00*1.0 + w01*0.1, b = w10*1.0 + w11*0.1
    (W1 = (v0, v1) = (1, -1) when not given). Backward as in the notes:
    dL/dx3 = x3 - y; dL/dx1_i = dL/dx3 * W1_i * (1 - tanh**2); dL/dW0_ij = dL/dx1_i * x0_j."""
    with mpmath.workdps(DPS):
        m = _mp(p)
        v0, v1 = m.get("v0", mpmath.mpf(1)), m.get("v1", mpmath.mpf(-1))
        x00, x01 = mpmath.mpf(1), mpmath.mpf(1) / 10
        t0 = mpmath.tanh(m["w00"] * x00 + m["w01"] * x01)
        t1 = mpmath.tanh(m["w10"] * x00 + m["w11"] * x01)
        d3 = v0 * t0 + v1 * t1 - mpmath.mpf(1) / 2
        d0, d1 = d3 * v0 * (1 - t0**2), d3 * v1 * (1 - t1**2)
        grad = {"w00": d0 * x00, "w01": d0 * x01, "w10": d1 * x00, "w11": d1 * x01}
        if "v0" in p:
            grad.update(v0=d3 * t0, v1=d3 * t1)
        return d3**2 / 2, grad


@dataclass(frozen=True)
class Case:
    id: str
    expr: str
    point: Point
    exact: Callable[[Point], tuple[object, dict[str, object]]]


NEURON_POINT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
W0 = {"w00": 1.0, "w01": -3.0, "w10": 0.2, "w11": 1.0}
TANH_NET = "0.5*(1*tanh(w00*1.0 + w01*0.1) - 1*tanh(w10*1.0 + w11*0.1) - 0.5)**2"
TANH_NET_W1 = "0.5*(v0*tanh(w00*1.0 + w01*0.1) + v1*tanh(w10*1.0 + w11*0.1) - 0.5)**2"

CASES = [
    Case("add-mul", "(x+y)*z", {"x": -2.0, "y": 5.0, "z": -4.0}, exact_add_mul),
    Case("neuron", "1/(1+exp(-(w0*x0+w1*x1+w2)))", NEURON_POINT, exact_neuron),
    Case("neuron-builtin-sigmoid", "sigmoid(w0*x0+w1*x1+w2)", NEURON_POINT, exact_neuron),
    Case("card", "cos(sin(x**2)+3*x**2)", {"x": 1.5}, exact_card),
    Case("quiz", "exp(x*z) + x*z/log(x) + sin(log(x))/exp(x*z)", {"x": 2.0, "z": 3.0}, exact_quiz),
    Case("tanh-net", TANH_NET, W0, exact_tanh_net),
    Case("tanh-net-w1", TANH_NET_W1, {**W0, "v0": 1.0, "v1": -1.0}, exact_tanh_net),
]


# --------------------------------------------------------------------------------------------
# 1. Lecture worked examples
# --------------------------------------------------------------------------------------------

def test_quiz_hand_derivative_is_right():
    """Guard the hand derivation itself with mpmath's own numerical differentiation."""
    with mpmath.workdps(DPS):
        x, z = mpmath.mpf(2), mpmath.mpf(3)
        _, dx, dz = _quiz_parts(x, z)
        assert mpmath.almosteq(dx, mpmath.diff(lambda t: _quiz_parts(t, z)[0], x), rel_eps=1e-20)
        assert mpmath.almosteq(dz, mpmath.diff(lambda t: _quiz_parts(x, t)[0], z), rel_eps=1e-20)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_lecture_example_direct(case: Case, method: str):
    _, want = case.exact(case.point)
    assert_close(gradient_of(method, case.expr, case.point), want, RTOL[method])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_lecture_example_through_check(case: Case):
    value, want = case.exact(case.point)
    report = report_for(case.expr, case.point)
    assert math.isclose(report.value, float(value), rel_tol=1e-14)
    assert [m.name for m in report.methods] == list(METHODS)
    assert report.reference in ("exact", "symbolic")
    assert report.ok is True
    assert report.diagnostics == []
    for m in report.methods:
        assert m.ok is True and m.note is None, m.name
        assert_close(m.gradient, want, RTOL[m.name])
    if report.reference == "exact":  # the 30-digit reference, against ours
        assert report.exact is not None and set(report.exact) == set(want)
        with mpmath.workdps(DPS):
            for v, w in want.items():
                assert mpmath.almosteq(mpmath.mpf(report.exact[v]), w, rel_eps=1e-25, abs_eps=1e-28), v


@pytest.mark.parametrize("method", EXACT_METHODS)
def test_add_mul_is_exact(method: str):
    """q = x + y = 3, f = -12; df/dz = q = 3, df/dx = df/dy = z = -4, with no rounding at all."""
    assert gradient_of(method, "(x+y)*z", {"x": -2, "y": 5, "z": -4}) == {"x": -4.0, "y": -4.0, "z": 3.0}
    report = report_for("(x+y)*z", {"x": -2.0, "y": 5.0, "z": -4.0})
    assert report.value == -12.0
    assert report.method(method).gradient == {"x": -4.0, "y": -4.0, "z": 3.0}
    assert report.method(method).error == {"x": 0.0, "y": 0.0, "z": 0.0}


@pytest.mark.parametrize("expr", [CASES[1].expr, CASES[2].expr], ids=["written-out", "sigmoid"])
def test_neuron_lecture_numbers(expr: str):
    report = report_for(expr, NEURON_POINT)
    # the values quoted in the task, and the slides' rounding (f ~ 0.73, 0.4 ~ 0.393, -0.2 ~ -0.197)
    assert math.isclose(report.value, 0.7310585786300049, rel_tol=1e-15)
    assert round(report.value, 2) == 0.73
    for m in report.methods:
        g = m.gradient
        assert math.isclose(g["x0"], 0.3932238664829637, rel_tol=RTOL[m.name]), m.name
        assert math.isclose(g["w0"], -0.19661193324148185, rel_tol=RTOL[m.name]), m.name
        assert round(g["x0"], 3) == 0.393 and round(g["x0"], 1) == 0.4
        assert round(g["w0"], 3) == -0.197 and round(g["w0"], 1) == -0.2
    with mpmath.workdps(DPS):
        s1 = 1 / (1 + mpmath.exp(-1))  # the gate's input sums to 1
        assert mpmath.almosteq(2 * s1 * (1 - s1), mpmath.mpf(0.3932238664829637), rel_eps=1e-15)


def test_card_lecture_number():
    report = report_for("cos(sin(x**2)+3*x**2)", {"x": 1.5})
    for m in report.methods:
        assert round(m.gradient["x"], 4) == -6.7409, m.name


def _within_last_digit(got: float, lecture: str) -> bool:
    """`got` agrees with a number the notes print, to within one unit of its last digit."""
    decimals = len(lecture.split(".")[1])
    return abs(got - float(lecture)) < 10.0**-decimals


@pytest.mark.parametrize("expr", [TANH_NET, TANH_NET_W1])
def test_tanh_net_lecture_numbers(expr: str):
    point = {**W0, "v0": 1.0, "v1": -1.0} if "v0" in expr else W0
    report = report_for(expr, point)
    assert _within_last_digit(report.value, "0.017")
    # the notes' layout: row i is x0_i times the row vector dL/dx1 (transpose of W0's layout)
    lecture_dW0 = [["-0.1186", "0.171"], ["-0.01186", "0.0171"]]
    for m in report.methods:
        g = m.gradient
        ours = [[g["w00"], g["w10"]], [g["w01"], g["w11"]]]
        for i in range(2):
            for j in range(2):
                assert _within_last_digit(ours[i][j], lecture_dW0[i][j]), (m.name, i, j, ours[i][j])
        if "v0" in g:
            assert _within_last_digit(g["v0"], "-0.113") and _within_last_digit(g["v1"], "-0.054")


# --------------------------------------------------------------------------------------------
# 2. Shared subexpressions: gradients must add where a value branches
# --------------------------------------------------------------------------------------------

def _log2_plus_1_times_4():
    with mpmath.workdps(DPS):
        return 4 * (mpmath.log(2) + 1)


def _sin_sq(x: float):
    with mpmath.workdps(DPS):
        return 2 * mpmath.sin(mpmath.mpf(x)) * mpmath.cos(mpmath.mpf(x))


SHARED = [
    ("x*x", {"x": 3.0}, {"x": 6}),
    ("x*x*x", {"x": 3.0}, {"x": 27}),
    ("x+x+x", {"x": 3.0}, {"x": 3}),
    ("x-x", {"x": 3.0}, {"x": 0}),
    ("x/x", {"x": 3.0}, {"x": 0}),
    ("sin(x)*sin(x)", {"x": 0.7}, {"x": _sin_sq(0.7)}),
    ("x**x", {"x": 2.0}, {"x": _log2_plus_1_times_4()}),  # x**x (log x + 1)
    # q = x + y used three times: f = q*q + q, df/dx = df/dy = 2q + 1 = 7 at q = 3
    ("(x+y)*(x+y)+(x+y)", {"x": 1.0, "y": 2.0}, {"x": 7, "y": 7}),
    # q = x*y used three times: f = q**3, df/dx = 3 q**2 y = 324, df/dy = 3 q**2 x = 216 at q = 6
    ("(x*y)*(x*y)*(x*y)", {"x": 2.0, "y": 3.0}, {"x": 324, "y": 216}),
]


@pytest.mark.parametrize("method", ["reverse", "forward"])
@pytest.mark.parametrize(("expr", "point", "want"), SHARED, ids=[s[0] for s in SHARED])
def test_shared_subexpression(expr: str, point: Point, want: dict[str, object], method: str):
    assert_close(gradient_of(method, expr, point), want, rtol=1e-15, atol=1e-300)


def test_shared_subexpression_is_one_node():
    """The point of the cases above: the repeated subexpression is one node used twice."""
    assert [n.op for n in parse("sin(x)*sin(x)").nodes].count("sin") == 1
    assert [n.op for n in parse("(x+y)*(x+y)+(x+y)").nodes].count("add") == 2


@pytest.mark.parametrize("method", ["reverse", "forward"])
def test_shared_subexpression_used_thrice_in_different_ops(method: str):
    x = 0.3
    with mpmath.workdps(DPS):
        s = mpmath.sin(mpmath.mpf(x))
        want = (2 * s + mpmath.exp(s)) * mpmath.cos(mpmath.mpf(x))
    assert_close(gradient_of(method, "sin(x)*sin(x) + exp(sin(x))", {"x": x}), {"x": want}, 1e-15)


# --------------------------------------------------------------------------------------------
# 3. Deep nesting
# --------------------------------------------------------------------------------------------

DEPTH = 1000
NESTED_SIN = "sin(" * DEPTH + "x" + ")" * DEPTH
CHAIN = functools.reduce(lambda s, _: f"({s}+1)*0.999", range(DEPTH), "x")


def exact_nested_sin(x0: float, depth: int = DEPTH):
    with mpmath.workdps(DPS):
        v, d = mpmath.mpf(x0), mpmath.mpf(1)
        for _ in range(depth):
            d *= mpmath.cos(v)
            v = mpmath.sin(v)
        return v, d


def exact_chain(x0: float):
    with mpmath.workdps(DPS):
        c = mpmath.mpf(999) / 1000
        v = mpmath.mpf(x0)
        for _ in range(DEPTH):
            v = (v + 1) * c
        return v, c**DEPTH


DEEP = [("nested-sin", NESTED_SIN, exact_nested_sin), ("chain", CHAIN, exact_chain)]


def test_chain_formula_shape():
    assert CHAIN.startswith("(" * DEPTH + "x+1)*0.999+1)*0.999")
    assert CHAIN.count("0.999") == DEPTH


@pytest.mark.parametrize("method", ["reverse", "forward", "central"])
@pytest.mark.parametrize(("name", "expr", "exact"), DEEP, ids=[d[0] for d in DEEP])
def test_deep_nesting_direct(name: str, expr: str, exact, method: str):
    _, want = exact(0.5)
    rtol = 1e-11 if method != "central" else 1e-6  # 1000 roundings deep
    assert_close(gradient_of(method, expr, {"x": 0.5}), {"x": want}, rtol)


@pytest.mark.parametrize(("name", "expr", "exact"), DEEP, ids=[d[0] for d in DEEP])
def test_deep_nesting_through_check(name: str, expr: str, exact):
    value, want = exact(0.5)
    # a short symbolic budget: whether SymPy finishes, times out or recurses too deep, the
    # report must say so and go on with the other methods
    report = check(expr, {"x": 0.5}, symbolic_timeout=1.5)
    assert math.isclose(report.value, float(value), rel_tol=1e-11)
    assert report.ok is True
    for m in ("reverse", "forward", "central"):
        mr = report.method(m)
        assert mr.ok is True, m
        assert_close(mr.gradient, {"x": want}, 1e-11 if m != "central" else 1e-6)
    sym = report.method("symbolic")
    if sym.gradient is None:  # SymPy could not go that deep: reported, never a crash or a NaN
        assert sym.ok is None and sym.note
        # the reference falls back to the complex step (analytic), never to an AD method
        assert report.reference == "complex"
        assert "SymPy" in report.reference_note
        assert any("SymPy" in d.message for d in report.diagnostics)
    else:
        assert sym.ok is True
        assert_close(sym.gradient, {"x": want}, 1e-11)


@pytest.mark.parametrize("method", ["reverse", "forward"])
def test_very_deep_nesting_no_recursion(method: str):
    """Graph building and both sweeps are loops: 20,000 levels is far past Python's recursion limit."""
    depth = 20_000
    _, want = exact_nested_sin(0.5, depth)
    expr = "sin(" * depth + "x" + ")" * depth
    assert_close(gradient_of(method, expr, {"x": 0.5}), {"x": want}, 1e-10)


# --------------------------------------------------------------------------------------------
# 4. Arrays of points
# --------------------------------------------------------------------------------------------

ARRAY_EXPR = "x*y + sin(x)*exp(-y**2) + sqrt(x*x+1)/(1+y*y)"
XS = np.linspace(-2.0, 2.0, 7)
YS = np.linspace(0.5, -1.5, 7)


def exact_array_expr(x: float, y: float) -> dict[str, mpmath.mpf]:
    with mpmath.workdps(DPS):
        x, y = mpmath.mpf(x), mpmath.mpf(y)
        r, e, d = mpmath.sqrt(x * x + 1), mpmath.exp(-y * y), 1 + y * y
        return {"x": y + mpmath.cos(x) * e + x / (r * d),
                "y": x - 2 * y * mpmath.sin(x) * e - 2 * y * r / d**2}


@pytest.mark.parametrize("method", ["reverse", "forward", "central"])
def test_array_point_equals_single_points(method: str):
    graph = parse(ARRAY_EXPR)
    batch = _run(method, graph, {"x": XS, "y": YS}, ["x", "y"])
    rtol = 1e-13 if method != "central" else 1e-9
    for v in ("x", "y"):
        assert np.shape(batch[v]) == (len(XS),)
    for k in range(len(XS)):
        single = _run(method, graph, {"x": np.asarray(XS[k]), "y": np.asarray(YS[k])}, ["x", "y"])
        for v in ("x", "y"):
            assert math.isclose(float(batch[v][k]), float(single[v]), rel_tol=rtol), (v, k)
        assert_close({v: float(batch[v][k]) for v in "xy"}, exact_array_expr(XS[k], YS[k]),
                     RTOL[method], atol=1e-12)


@pytest.mark.parametrize("method", ["reverse", "forward", "central"])
def test_array_broadcasts_against_scalar(method: str):
    """A scalar variable beside a (K,) one: the gradient is still one value per point."""
    graph = parse(ARRAY_EXPR)
    batch = _run(method, graph, {"x": XS, "y": np.asarray(0.25)}, ["x", "y"])
    for v in ("x", "y"):
        assert np.shape(batch[v]) == (len(XS),)
    for k in range(len(XS)):
        assert_close({v: float(batch[v][k]) for v in "xy"}, exact_array_expr(XS[k], 0.25),
                     RTOL[method], atol=1e-12)


# --------------------------------------------------------------------------------------------
# 5. Variables the formula does not use
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_wrt_variable_not_in_formula_is_zero(method: str):
    graph = parse("x*x")
    got = _run(method, graph, _arrays({"x": 3.0, "q": 2.0}), ["x", "q"])
    assert set(got) == {"x", "q"}
    assert float(got["q"]) == 0.0
    assert math.isclose(float(got["x"]), 6.0, rel_tol=RTOL[method])


def test_check_rejects_wrt_and_point_names_outside_formula():
    with pytest.raises(GradcheckError) as err:
        check("x*x", {"x": 3.0}, wrt=["qq"])
    assert err.value.kind == "unknown-variable" and "qq" in err.value.message
    with pytest.raises(GradcheckError) as err:
        check("x*x", {"x": 3.0, "qq": 1.0})
    assert err.value.kind == "unknown-variable" and "qq" in err.value.message


def test_constant_formula():
    # nothing to differentiate: nothing was checked, so the verdict is inconclusive (exit 3)
    report = check("2+3", {})
    assert report.value == 5.0
    assert report.wrt == [] and report.point == {}
    assert report.verdict == "inconclusive" and report.ok is False
    for m in report.methods:
        assert m.gradient == {} and m.note is None, m.name


def test_named_constants_are_not_variables():
    report = check("pi*x + E", {"x": 2.0})
    assert report.wrt == ["x"]
    assert math.isclose(report.value, 2 * math.pi + math.e, rel_tol=1e-15)
    for m in report.methods:
        assert math.isclose(m.gradient["x"], math.pi, rel_tol=RTOL[m.name]), m.name


# --------------------------------------------------------------------------------------------
# 6. Methods that cannot run are reported; infinities are honest; no stray NaN
# --------------------------------------------------------------------------------------------

def test_sqrt_at_zero_direct():
    graph = parse("sqrt(x)")
    res = finite.central(graph, _arrays({"x": 0.0}), ["x"])
    assert res.gradient is None
    assert res.note and "x-h" in res.note
    for method in EXACT_METHODS:
        assert gradient_of(method, "sqrt(x)", {"x": 0.0}) == {"x": math.inf}, method


def test_sqrt_at_zero_through_check():
    report = report_for("sqrt(x)", {"x": 0.0})
    assert report.value == 0.0
    central = report.method("central")
    assert central.gradient is None and central.ok is None
    assert central.note and "x-h" in central.note
    for name in EXACT_METHODS:
        m = report.method(name)
        assert m.gradient == {"x": math.inf} and m.ok is True, name
        assert m.status == {"x": "nondifferentiable"}, name
    # the derivative is infinite: no reference can be finite, and that is a diagnostic, not a
    # failure (exit 0 unless --strict)
    assert report.reference == "none"
    assert report.ok is True
    assert any(d.kind == "nondifferentiable" and "infinite slope" in d.message for d in report.diagnostics)
    assert any("central" in d.message for d in report.diagnostics)


def test_no_method_runs_when_only_central_asked_and_it_cannot():
    report = check("sqrt(x)", {"x": 0.0}, methods=["central"], reference="central")
    assert report.method("central").gradient is None
    assert report.ok is False
    assert report.diagnostics


# Forward mode pushes one vector of tangents (one entry per input). A partial that is inf or nan
# for one input must not leak into another input's entry: inf * 0 is nan. In both formulas the
# partial with respect to x is finite and exact (0 and -4); only the other partial is not.
LEAK = [
    ("x*sqrt(y)", {"x": 1.0, "y": 0.0}, "x", 0.0),  # d/dx = sqrt(y) = 0; d/dy = inf
    ("x**y", {"x": -2.0, "y": 2.0}, "x", -4.0),  # d/dx = y*x**(y-1) = -4; d/dy = x**y*log(x): nan
]


@pytest.mark.parametrize("method", EXACT_METHODS)
@pytest.mark.parametrize(("expr", "point", "var", "want"), LEAK, ids=[c[0] for c in LEAK])
def test_nonfinite_partial_does_not_leak_into_other_inputs(expr, point, var, want, method):
    assert gradient_of(method, expr, point)[var] == want
    # ... and the answer does not depend on which other variables are differentiated too
    assert gradient_of(method, expr, point, wrt=[var]) == {var: want}


def test_nonfinite_partial_does_not_fail_the_check():
    report = check("x*sqrt(y)", {"x": 1.0, "y": 0.0})
    for name in EXACT_METHODS:
        assert report.method(name).gradient == {"x": 0.0, "y": math.inf}, name
    assert report.ok is True
