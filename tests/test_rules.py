"""The rule table `gradcheck_cli.rules.RULES` against independent references.

Every rule's value and local partials are checked against `sympy.diff` of the op's SymPy meaning
(`functions.meaning_of`), evaluated at 30 significant digits at the exact binary value of each
float64 test point. Stability in the tails is checked against mpmath at high precision; the kink
conventions against the values stated in the `rules.py` docstring (the PyTorch/JAX choices).
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy

from gradcheck_cli.functions import meaning_of
from gradcheck_cli.rules import RULES, erf

RTOL = 1e-12

# ---------------------------------------------------------------------------------------------
# Domain table: points strictly inside each primitive's domain and away from every kink.
# One tuple per point; its length is the number of arguments the op is called with.
# ---------------------------------------------------------------------------------------------

_X = [(-2.3,), (-0.7,), (0.4,), (1.9,)]
_BIN = [(1.3, -2.7), (-0.6, 0.9), (5.0, 0.125)]
_POS = [(0.03,), (0.7,), (2.5,), (40.0,)]
_UNIT = [(-0.95,), (-0.3,), (0.2,), (0.8,)]
_AWAY_FROM_ZERO = [(-2.3,), (-0.01,), (0.5,), (3.0,)]
_DISTINCT = [(1.0, 2.5), (-0.5, -3.0), (0.2, -1.0, 0.7), (3.0, 1.0, 2.0, -4.0), (-1.5, 4.0, 0.25)]

DOMAIN: dict[str, list[tuple[float, ...]]] = {
    "add": _BIN,
    "sub": _BIN,
    "mul": _BIN,
    "div": _BIN,
    "neg": _X,
    # positive base only; integer, fractional and negative exponents
    "pow": [(1.7, 2.3), (0.4, -1.5), (3.0, 0.5), (2.5, 3.0), (0.9, -2.0)],
    "sin": _X,
    "cos": _X,
    "tan": [(-1.2,), (-0.3,), (0.5,), (1.4,)],
    "asin": _UNIT,
    "acos": _UNIT,
    "atan": _X,
    "sinh": _X,
    "cosh": _X,
    "tanh": _X,
    "exp": _X,
    "log": _POS,
    "sqrt": _POS,
    "erf": _X,
    "abs": _AWAY_FROM_ZERO,
    "max": _DISTINCT,
    "min": _DISTINCT,
    "sigmoid": _X,
    "relu": _AWAY_FROM_ZERO,
    # both signs of x, several slopes / alphas
    "leaky_relu": [(x, s) for x in (-1.7, -0.2, 0.6, 3.0) for s in (0.01, 0.2, 1.5)],
    "elu": [(x, a) for x in (-1.7, -0.2, 0.6, 3.0) for a in (1.0, 0.5, 2.0)],
    "softplus": _X,
    "swish": _X,
    "gelu": _X,
    # one point in each of the three pieces, none on the kinks at -3 and 3
    "hard_swish": [(-4.5,), (-2.0,), (0.7,), (2.9,), (5.0,)],
    # the functions of a calculus course, away from their poles and domain edges
    "sec": [(-1.2,), (-0.3,), (0.5,), (1.4,)],
    "csc": [(-1.2,), (-0.3,), (0.5,), (2.9,)],
    "cot": [(-1.2,), (-0.3,), (0.5,), (2.9,)],
    "asec": [(-3.0,), (-1.5,), (1.2,), (4.0,)],
    "acsc": [(-3.0,), (-1.5,), (1.2,), (4.0,)],
    "acot": _AWAY_FROM_ZERO,
    "asinh": _X,
    "acosh": [(1.2,), (2.0,), (10.0,)],
    "atanh": _UNIT,
    "log2": _POS,
    "log10": _POS,
    "cbrt": [(-8.0,), (-0.3,), (0.5,), (27.0,)],
    "atan2": [(1.0, 2.0), (-0.5, -1.5), (2.0, -1.0), (-3.0, 0.5)],
}

CASES = [(op, point) for op, points in DOMAIN.items() for point in points]


def _case_id(case: tuple[str, tuple[float, ...]]) -> str:
    op, point = case
    return f"{op}{point}"


def _symbols(n: int) -> tuple[sympy.Symbol, ...]:
    return tuple(sympy.symbols(f"a0:{n}", real=True))


def _sympy_reference(op: str, point: tuple[float, ...]) -> tuple[float, list[float]]:
    """(value, [d/d arg_j]) of the op's SymPy meaning at the exact float64 point, 30 digits."""
    syms = _symbols(len(point))
    expr = meaning_of(op)(sympy, *syms)
    subs = {s: sympy.Rational(v) for s, v in zip(syms, point)}  # exact binary value

    def num(e: sympy.Expr) -> float:
        v = e.subs(subs).evalf(30, strict=True)
        assert v.is_real and v.is_finite, (op, point, e, v)
        return float(v)

    return num(expr), [num(sympy.diff(expr, s)) for s in syms]


def _mpmath_reference(op: str, point: tuple[float, ...], dps: int = 1000) -> tuple[float, list[float]]:
    """Like `_sympy_reference`, evaluated by mpmath at `dps` digits: enough working precision to
    survive any cancellation in the tails (1 + erf(-21) etc.), then rounded to float64."""
    syms = _symbols(len(point))
    expr = meaning_of(op)(sympy, *syms)
    fns = [sympy.lambdify(syms, e, "mpmath") for e in (expr, *(sympy.diff(expr, s) for s in syms))]
    with mpmath.workdps(dps):
        args = [mpmath.mpf(v) for v in point]
        vals = [float(f(*args)) for f in fns]
    return vals[0], vals[1:]


def _assert_close(got: object, want: float, rtol: float = RTOL, what: str = "") -> None:
    g = float(np.asarray(got))
    assert math.isfinite(g), f"{what}: got {g}, want {want!r}"
    # A zero reference must be matched exactly: no relative slack around 0.
    assert abs(g - want) <= rtol * abs(want), f"{what}: got {g!r}, want {want!r}"


def _eval_rule(op: str, point: tuple[float, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    rule = RULES[op]
    args = tuple(np.asarray(v, dtype=np.float64) for v in point)
    with np.errstate(all="ignore"):  # discarded np.where branches may overflow; results are checked
        out = np.asarray(rule.value(*args))
        partials = [np.asarray(rule.partial(j, out, args)) for j in range(len(args))]
    return out, partials


# ---------------------------------------------------------------------------------------------
# 1. Every rule against sympy.diff of its meaning.
# ---------------------------------------------------------------------------------------------


def test_every_rule_has_domain_rows() -> None:
    assert set(DOMAIN) == set(RULES)
    assert {op for op, _ in CASES} == set(RULES)
    assert all(DOMAIN[op] for op in DOMAIN)


def test_domain_table_respects_declared_arity() -> None:
    for op, points in DOMAIN.items():
        arity = RULES[op].arity
        for point in points:
            if arity is None:
                assert len(point) >= 2, (op, point)
            else:
                assert len(point) == arity, (op, point)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rule_value_and_partials_match_sympy(case: tuple[str, tuple[float, ...]]) -> None:
    op, point = case
    want_value, want_partials = _sympy_reference(op, point)
    out, partials = _eval_rule(op, point)
    _assert_close(out, want_value, what=f"{op}{point} value")
    assert len(partials) == len(want_partials)
    for j, (got, want) in enumerate(zip(partials, want_partials)):
        _assert_close(got, want, what=f"{op}{point} d/darg{j}")


# ---------------------------------------------------------------------------------------------
# 2. Stability: library primitives far out in the tails.
# ---------------------------------------------------------------------------------------------


def _mp_sigmoid(x: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-x))


def _mp_sigmoid_prime(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2


def _mp_softplus(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.log1p(mpmath.exp(x))


MP_REFERENCE = {
    "sigmoid": (_mp_sigmoid, _mp_sigmoid_prime),
    "softplus": (_mp_softplus, _mp_sigmoid),
}


@pytest.mark.parametrize(
    "op,x", [("sigmoid", -800.0), ("sigmoid", 800.0), ("softplus", 800.0), ("softplus", -800.0)]
)
def test_sigmoid_softplus_are_exact_at_800(op: str, x: float) -> None:
    f, fprime = MP_REFERENCE[op]
    with mpmath.workdps(50):
        want_value = float(f(mpmath.mpf(x)))
        want_partial = float(fprime(mpmath.mpf(x)))
    out, (partial,) = _eval_rule(op, (x,))
    # float64 rounding of the 50-digit value: sigmoid(-800) ~ 3.7e-348 rounds to 0.0, and the
    # rule must give exactly that (finite, not nan), softplus(800) = 800 + log1p(exp(-800)) = 800.
    _assert_close(out, want_value, rtol=1e-15, what=f"{op}({x})")
    _assert_close(partial, want_partial, rtol=1e-15, what=f"{op}'({x})")


def test_stability_hand_values() -> None:
    # Independent of mpmath: the float64-rounded values are known in closed form.
    assert float(_eval_rule("softplus", (800.0,))[0]) == 800.0
    assert float(_eval_rule("softplus", (-800.0,))[0]) == 0.0
    assert float(_eval_rule("sigmoid", (800.0,))[0]) == 1.0
    assert float(_eval_rule("sigmoid", (-800.0,))[0]) == 0.0
    assert float(_eval_rule("softplus", (800.0,))[1][0]) == 1.0
    # exp(-40) ~ 4.25e-18 is representable: the tail value must not flush to zero.
    assert float(_eval_rule("sigmoid", (-40.0,))[0]) == pytest.approx(math.exp(-40) / (1 + math.exp(-40)),
                                                                       rel=1e-15)


# Moderately far out, where float64 still represents the true values and their derivatives.
TAILS = [
    ("sigmoid", (-40.0,)), ("sigmoid", (30.0,)), ("sigmoid", (40.0,)),
    ("softplus", (-40.0,)), ("softplus", (40.0,)),
    ("swish", (-40.0,)), ("swish", (40.0,)),
    ("tanh", (-20.0,)), ("tanh", (20.0,)),
    ("gelu", (-10.0,)), ("gelu", (10.0,)),
    ("elu", (-40.0, 1.0)), ("elu", (-40.0, 0.5)),
]


@pytest.mark.parametrize("case", TAILS, ids=_case_id)
def test_library_primitives_stay_accurate_in_the_tails(case: tuple[str, tuple[float, ...]]) -> None:
    op, point = case
    want_value, want_partials = _mpmath_reference(op, point)
    out, partials = _eval_rule(op, point)
    wrong = [
        f"{what}: got {float(got)!r}, want {want!r}"
        for what, got, want in [("value", out, want_value)]
        + [(f"d/darg{j}", g, w) for j, (g, w) in enumerate(zip(partials, want_partials))]
        if not (math.isfinite(float(got)) and abs(float(got) - want) <= RTOL * abs(want))
    ]
    assert not wrong, f"{op}{point}: " + "; ".join(wrong)


# ---------------------------------------------------------------------------------------------
# 3. Kink conventions (rules.py docstring: one one-sided derivative, as PyTorch chooses).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op,point,want",
    [
        ("relu", (0.0,), [0.0]),
        ("abs", (0.0,), [0.0]),
        # leaky_relu'(0) = slope; d/dslope at x = 0 is x = 0
        ("leaky_relu", (0.0, 0.01), [0.01, 0.0]),
        ("leaky_relu", (0.0, 0.2), [0.2, 0.0]),
        ("leaky_relu", (0.0, 3.0), [3.0, 0.0]),
        # elu'(0) = alpha * exp(0) = alpha (the left derivative: PyTorch's and JAX's choice)
        ("elu", (0.0, 1.0), [1.0, 0.0]),
        ("elu", (0.0, 0.5), [0.5, 0.0]),
        # hard_swish: PyTorch's hardswish_backward uses x/3 + 1/2 on -3 <= x <= 3, i.e. the
        # right derivative at -3 (-1/2) and the left derivative at 3 (3/2).
        ("hard_swish", (-3.0,), [-0.5]),
        ("hard_swish", (3.0,), [1.5]),
    ],
    ids=lambda v: str(v) if isinstance(v, str | tuple) else "",
)
def test_kink_conventions(op: str, point: tuple[float, ...], want: list[float]) -> None:
    _, partials = _eval_rule(op, point)
    assert [float(p) for p in partials] == want


def test_hard_swish_kink_values_are_one_sided_derivatives() -> None:
    # The chosen value at each kink is a one-sided derivative (computed by sympy on one piece).
    x = sympy.Symbol("x", real=True)
    middle = sympy.diff(x * (x + 3) / 6, x)  # the piece on [-3, 3]
    right_at_minus3 = float(middle.subs(x, -3))
    left_at_3 = float(middle.subs(x, 3))
    assert (right_at_minus3, left_at_3) == (-0.5, 1.5)
    _, (d_minus3,) = _eval_rule("hard_swish", (-3.0,))
    _, (d_3,) = _eval_rule("hard_swish", (3.0,))
    assert float(d_minus3) in (0.0, right_at_minus3)
    assert float(d_3) in (left_at_3, 1.0)
    # and the values at the kinks are continuous: hard_swish(-3) = 0, hard_swish(3) = 3
    assert float(_eval_rule("hard_swish", (-3.0,))[0]) == 0.0
    assert float(_eval_rule("hard_swish", (3.0,))[0]) == 3.0


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize(
    "point,tied_max,tied_min",
    [
        # (args, partials of max, partials of min)
        ((2.0, 2.0), [0.5, 0.5], [0.5, 0.5]),
        ((2.0, 2.0, -1.0), [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]),   # max(x, x, y), x > y
        ((-1.0, 2.0, 2.0), [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]),
        ((4.0, -1.0, -1.0, 4.0), [0.5, 0.0, 0.0, 0.5], [0.0, 0.5, 0.5, 0.0]),
        ((0.0, -0.0), [0.5, 0.5], [0.5, 0.5]),
    ],
    ids=lambda v: str(v) if isinstance(v, tuple) else "",
)
def test_max_min_ties_split_evenly(op: str, point: tuple[float, ...], tied_max: list[float],
                                   tied_min: list[float]) -> None:
    out, partials = _eval_rule(op, point)
    assert float(out) == (max(point) if op == "max" else min(point))
    assert [float(p) for p in partials] == (tied_max if op == "max" else tied_min)


@pytest.mark.parametrize("op", ["max", "min"])
def test_three_way_tie_gives_a_third_each(op: str) -> None:
    _, partials = _eval_rule(op, (1.5, 1.5, 1.5))
    for p in partials:
        assert Fraction(float(p)).limit_denominator(1000) == Fraction(1, 3)
        assert float(p) == pytest.approx(1 / 3, rel=1e-15)


# ---------------------------------------------------------------------------------------------
# 4. Rules broadcast over arrays of points.
# ---------------------------------------------------------------------------------------------


def _array_cases() -> list[tuple[str, list[tuple[float, ...]]]]:
    cases = []
    for op, points in DOMAIN.items():
        by_len: dict[int, list[tuple[float, ...]]] = {}
        for p in points:
            by_len.setdefault(len(p), []).append(p)
        for group in by_len.values():
            cases.append((op, group + TAIL_EXTRA.get((op, len(group[0])), [])))
    return cases


# A few kink and tail points too, so the array path is exercised on every branch.
TAIL_EXTRA: dict[tuple[str, int], list[tuple[float, ...]]] = {
    ("relu", 1): [(0.0,)],
    ("abs", 1): [(0.0,)],
    ("leaky_relu", 2): [(0.0, 0.01)],
    ("elu", 2): [(0.0, 1.0), (-800.0, 1.0), (800.0, 2.0)],
    ("hard_swish", 1): [(-3.0,), (3.0,)],
    ("sigmoid", 1): [(-800.0,), (800.0,)],
    ("softplus", 1): [(-800.0,), (800.0,)],
    ("max", 2): [(2.0, 2.0)],
    ("min", 2): [(2.0, 2.0)],
    ("max", 3): [(2.0, 2.0, -1.0)],
    ("min", 3): [(-1.0, 2.0, -1.0)],
}


ARRAY_CASES = _array_cases()


@pytest.mark.parametrize(
    "op,points", ARRAY_CASES, ids=[f"{op}-{len(points[0])}args" for op, points in ARRAY_CASES]
)
def test_rules_broadcast_over_arrays(op: str, points: list[tuple[float, ...]]) -> None:
    rule = RULES[op]
    k = len(points)
    columns = tuple(np.array(col, dtype=np.float64) for col in zip(*points))
    with np.errstate(all="ignore"):
        out = np.asarray(rule.value(*columns))
        partials = [np.asarray(rule.partial(j, out, columns)) for j in range(len(columns))]
        scalar = [_eval_scalar(op, p) for p in points]
    assert out.shape == (k,)
    np.testing.assert_allclose(out, [s[0] for s in scalar], rtol=1e-15, atol=0)
    for j, p in enumerate(partials):
        assert p.shape == (k,), (op, j, p.shape)
        np.testing.assert_allclose(p, [s[1][j] for s in scalar], rtol=1e-15, atol=0)


def _eval_scalar(op: str, point: tuple[float, ...]) -> tuple[float, list[float]]:
    rule = RULES[op]
    args = tuple(np.float64(v) for v in point)
    out = rule.value(*args)
    return float(out), [float(rule.partial(j, out, args)) for j in range(len(args))]


@pytest.mark.parametrize("op,s", [("leaky_relu", 0.2), ("elu", 0.5)])
def test_two_argument_activations_broadcast_a_scalar_parameter(op: str, s: float) -> None:
    xs = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    rule = RULES[op]
    out = rule.value(xs, np.float64(s))
    partials = [np.broadcast_to(rule.partial(j, out, (xs, np.float64(s))), xs.shape) for j in range(2)]
    for i, x in enumerate(xs):
        value, parts = _eval_scalar(op, (float(x), s))
        assert out[i] == value
        assert [p[i] for p in partials] == parts


def test_rules_keep_a_2d_shape() -> None:
    x = np.array([[0.1, 0.5, 0.9], [1.5, 2.5, 3.5]])
    for op in ("sin", "log", "sqrt", "erf", "sigmoid", "gelu", "hard_swish"):
        rule = RULES[op]
        out = rule.value(x)
        d = rule.partial(0, out, (x,))
        assert np.shape(out) == (2, 3) and np.shape(d) == (2, 3), op
        for idx in np.ndindex(2, 3):
            value, (partial,) = _eval_scalar(op, (float(x[idx]),))
            assert out[idx] == pytest.approx(value, rel=1e-15, abs=0)
            assert d[idx] == pytest.approx(partial, rel=1e-15, abs=0)


# ---------------------------------------------------------------------------------------------
# 5. The erf helper.
# ---------------------------------------------------------------------------------------------


ERF_POINTS = [-30.0, -3.0, -1.0, -0.5, -1e-300, -0.0, 0.0, 1e-8, 0.3, 1.0, 2.5, 6.0, math.inf, -math.inf]


def test_erf_matches_math_erf_on_an_array() -> None:
    x = np.array(ERF_POINTS, dtype=np.float64)
    got = erf(x)
    assert got.dtype == np.float64
    assert got.shape == x.shape
    assert [float(g) for g in got] == [math.erf(v) for v in ERF_POINTS]


def test_erf_against_mpmath() -> None:
    x = np.linspace(-4.0, 4.0, 33)
    got = erf(x)
    with mpmath.workdps(40):
        want = [float(mpmath.erf(mpmath.mpf(float(v)))) for v in x]
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)


def test_erf_nan_propagates() -> None:
    assert np.isnan(erf(np.array([math.nan]))[0])


def test_erf_keeps_float32() -> None:
    x = np.array([-2.0, -0.25, 0.0, 0.5, 1.75], dtype=np.float32)
    got = erf(x)
    assert got.dtype == np.float32
    assert got.tolist() == [float(np.float32(math.erf(float(v)))) for v in x]


def test_erf_shapes_and_integer_input() -> None:
    assert erf(np.float64(0.5)).shape == ()
    assert float(erf(np.float64(0.5))) == math.erf(0.5)
    got = erf(np.array([[0, 1], [2, -1]]))
    assert got.dtype == np.float64 and got.shape == (2, 2)
    assert got.tolist() == [[0.0, math.erf(1)], [math.erf(2), math.erf(-1)]]
    assert erf(np.array([], dtype=np.float64)).shape == (0,)
