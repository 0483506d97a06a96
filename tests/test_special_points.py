"""Special points (homework part 3, "probing, not luck"): zeros of denominators, log and sqrt
arguments, domain edges and kinks inside the box, each with a point on either side.

Locations are checked against their exact values (to 1e-9), side points against both sides,
and the probe against a claim that uniform sampling misses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcheck_cli import special_points as sp_module
from gradcheck_cli.graph import evaluate
from gradcheck_cli.parse import parse
from gradcheck_cli.sampling import draw
from gradcheck_cli.special_points import SIDES, SpecialPoints, special_points


def probe(formula: str, claims: tuple[str, ...] = (), domain: dict[str, tuple[float, float]] | None = None,
          n: int = 20, seed: int = 1, **kw: object) -> SpecialPoints:
    graph = parse(formula)
    box = domain or {v: (-2.0, 2.0) for v in graph.variables}
    drawn = draw(graph, n, box, seed)
    return special_points([graph, *(parse(c) for c in claims)], drawn.points, box, **kw)


def locations(result: SpecialPoints, variable: str = "x") -> list[float]:
    return sorted(loc.value for loc in result.locations if loc.variable == variable)


def near(result: SpecialPoints, value: float, variable: str = "x", tol: float = 1e-9) -> bool:
    return any(abs(x - value) <= tol for x in locations(result, variable))


def sides(result: SpecialPoints, value: float, variable: str = "x") -> tuple[np.ndarray, np.ndarray]:
    """The offsets of the points around the location at `value` (left ones, right ones)."""
    index = [i for i, loc in enumerate(result.locations)
             if loc.variable == variable and abs(loc.value - value) <= 1e-9]
    assert index, f"no location at {value}: {locations(result, variable)}"
    mine = np.isin(result.location, index)
    offsets = result.offset[mine]
    return offsets[offsets < 0], offsets[offsets > 0]


def assert_in_box(result: SpecialPoints, box: dict[str, tuple[float, float]]) -> None:
    for v, (lo, hi) in box.items():
        p = result.points[v]
        assert np.all((p >= lo) & (p <= hi)), (v, p[(p < lo) | (p > hi)])


# --------------------------------------------------------------------------------------------
# The locations of the brief, to 1e-9, with both sides
# --------------------------------------------------------------------------------------------


def test_a_denominator_zero_with_a_point_on_each_side() -> None:
    result = probe("1/(x-1)")
    assert locations(result) == [1.0]
    loc = result.locations[0]
    assert loc.exact and "denominator of 1/(x - 1)" in loc.why
    xs = result.points["x"]
    for d in SIDES:  # scale max(1, |x|) = 1 here
        assert np.any(np.isclose(xs, 1 - d, rtol=0, atol=1e-15))
        assert np.any(np.isclose(xs, 1 + d, rtol=0, atol=1e-15))
    assert 1.0 in xs
    assert len(result) == 5 and result.why[0] == loc.why and "beside it" in result.why[1]
    # f is undefined at the location itself, defined beside it
    assert result.defined[0].tolist() == [False, True, True, True, True]


def test_a_claim_wrong_only_near_a_pole_is_probed_on_both_sides() -> None:
    """The canonical case: f = x²/2 + x, claim x + 1 + 1e-12/(x - 1.234567)², wrong (relative
    error above 1e-6) only within 7e-4 of 1.234567. 20 stratified points on [-2, 2] miss that
    for almost every seed; the special points hit it on both sides."""
    c = 1.234567
    formula, claim = "x**2/2 + x", f"x + 1 + 1e-12/(x - {c})**2"
    f, g = parse(formula), parse(claim)
    truth, claimed = parse("x + 1"), g

    def rel_error(xs: np.ndarray) -> np.ndarray:
        t = evaluate(truth, {"x": xs})[truth.output]
        a = evaluate(claimed, {"x": xs})[claimed.output]
        with np.errstate(all="ignore"):
            return np.abs(a - t) / np.abs(t)

    missed = 0
    for seed in range(50):
        drawn = draw(f, 20, {"x": (-2.0, 2.0)}, seed)
        missed += bool(np.all(rel_error(drawn.points["x"]) < 1e-6))
    assert missed >= 45  # uniform sampling misses it with high probability

    drawn = draw(f, 20, {"x": (-2.0, 2.0)}, 1)
    assert np.all(rel_error(drawn.points["x"]) < 1e-6)
    result = special_points([f, g], drawn.points, {"x": (-2.0, 2.0)})
    assert near(result, c)
    xs = result.points["x"]
    left = xs[(xs < c) & (xs > c - 1e-3)]
    right = xs[(xs > c) & (xs < c + 1e-3)]
    assert len(left) and len(right)
    assert np.any(rel_error(left) > 1e-3) and np.any(rel_error(right) > 1e-3)
    # the claim is undefined at the location itself, the formula is not
    at = result.location == 0
    center = at & (result.offset == 0)
    assert result.defined[0][center].all() and not result.defined[1][center].any()


def test_log_argument_zero_with_sides_where_f_is_undefined_on_the_left() -> None:
    result = probe("log(x)")
    assert near(result, 0.0)
    left, right = sides(result, 0.0)
    assert sorted(left) == [-SIDES[1], -SIDES[0]] and sorted(right) == list(SIDES)
    xs = result.points["x"]
    assert np.array_equal(result.defined[0], xs > 0)
    assert "log(x)" in result.locations[0].why


def test_kink_of_abs_off_the_grid() -> None:
    # [-2, 2.1]: the grid (step 4.1/64) does not contain 0.3, the bracket is refined
    result = probe("abs(x-0.3)", domain={"x": (-2.0, 2.1)})
    assert near(result, 0.3, tol=1e-12)
    left, right = sides(result, 0.3)
    assert len(left) == 2 and len(right) == 2
    assert "kink of abs(x - 0.3)" in result.locations[0].why


def test_a_root_only_bisection_finds() -> None:
    # abs(x**3 - 2): the kink at 2**(1/3), irrational, u nonlinear
    result = probe("abs(x**3 - 2)")
    assert near(result, 2 ** (1 / 3), tol=1e-12)
    x = locations(result)[0]
    assert x not in np.linspace(-2, 2, 65) and abs(x**3 - 2) <= 1e-15  # refined to the ulp


def test_removable_singularity() -> None:
    result = probe("(x**2-1)/(x-1)")
    assert locations(result) == [1.0]
    center = result.offset == 0
    assert not result.defined[0][center].any() and result.defined[0][~center].all()


def test_two_variables_a_line_per_sampled_x() -> None:
    box = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}
    graph = parse("x/(y-0.5)")
    drawn = draw(graph, 20, box, 1)
    result = special_points([graph], drawn.points, box)
    ys = [loc for loc in result.locations if loc.variable == "y"]
    assert len(ys) >= 4 and all(abs(loc.value - 0.5) <= 1e-9 for loc in ys)
    xs = {loc.at["x"] for loc in ys}
    assert len(xs) == len(ys)  # several x, each a sampled one
    assert xs <= set(drawn.points["x"].tolist())
    assert not [loc for loc in result.locations if loc.variable == "x"]  # x is not special
    assert_in_box(result, box)


def test_sqrt_argument() -> None:
    result = probe("sqrt(x+1)")
    assert locations(result) == [-1.0]
    assert "sqrt(x + 1)" in result.locations[0].why


def test_nothing_special_is_empty_without_evaluating(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_walk(*a: object, **k: object) -> None:
        raise AssertionError("evaluated")

    monkeypatch.setattr(sp_module, "walk", no_walk)
    result = probe("x**2 + sin(x)*exp(x)")
    assert len(result) == 0 and result.locations == []
    assert set(result.points) == {"x"} and result.points["x"].shape == (0,)
    assert not result.truncated and not result.timed_out


# --------------------------------------------------------------------------------------------
# Other kinds of special points
# --------------------------------------------------------------------------------------------


def test_poles_of_tan_and_a_sign_change_through_a_pole_is_not_a_zero() -> None:
    result = probe("1/tan(x)")
    poles = [-math.pi / 2, math.pi / 2]
    for p in poles:
        assert near(result, p, tol=1e-12)
        why = [loc.why for loc in result.locations if abs(loc.value - p) < 1e-9][0]
        assert "a pole of tan(x)" in why and "denominator" not in why
    assert near(result, 0.0)  # the zero of the denominator tan(x)
    assert "denominator of 1/tan(x)" in [loc.why for loc in result.locations if loc.value == 0][0]


def test_a_double_zero_is_found_through_its_factors() -> None:
    # (x - 1.1)*(x - 1.1) never changes sign: its factor does
    result = probe("1/((x-1.1)*(x-1.1))")
    assert near(result, 1.1)
    assert "x - 1.1 = 0 makes" in result.locations[0].why


def test_zeros_without_a_sign_change_are_followed_down_from_a_valley() -> None:
    # a double root written out, off the grid: found to the precision a double root has (√eps)
    assert near(probe("1/(x**2 - 2.2*x + 1.21)"), 1.1, tol=1e-7)
    assert near(probe("1/(cos(2*x) + 1)"), math.pi / 2, tol=1e-7)
    # two zeros in one grid cell: both
    result = probe("1/(x**2 - 2.01*x + 1.01)")
    assert near(result, 1.0) and near(result, 1.01)
    # nearly 0 (1/u = 1e7 there) is a location, and says so; clearly not 0 is not
    result = probe("1/(x**2 - 2.2*x + 1.2100001)")
    assert near(result, 1.1, tol=1e-6) and "nearly" in result.locations[0].why
    assert locations(probe("1/(x**2 - 2.2*x + 1.22)")) == []
    assert locations(probe("1/(x**2 + 0.001)")) == []


def test_negative_and_fractional_powers() -> None:
    assert near(probe("(x - 0.7)**-2"), 0.7)
    assert near(probe("(x + 0.4)**0.5"), -0.4)
    assert near(probe("(x + 0.4)**(1/3)"), -0.4)
    assert locations(probe("(x + 0.4)**3 + 1")) == []


def test_domain_edges_and_ties() -> None:
    result = probe("asin(x/1.5) + acosh(x + 2)")
    for edge in (-1.5, 1.5, -1.0):
        assert near(result, edge)
    result = probe("max(x, 2*x - 1, 0.5 - x)")
    assert near(result, 0.25) and near(result, 1.0)
    assert not near(result, 0.5)  # 2x - 1 = 0.5 - x at x = 0.5, but neither is the max there
    assert near(probe("max(x, 0.35)"), 0.35)
    result = probe("hard_swish(3*x)")
    assert near(result, 1.0) and near(result, -1.0)
    assert near(probe("relu(x - 0.2) + leaky_relu(x + 0.6)"), -0.6)
    assert near(probe("atanh(x/1.7)"), 1.7)


def test_a_claim_over_fewer_variables() -> None:
    box = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}
    f = parse("x*y + log(abs(y - 0.25) + 1)")
    claim = parse("y/(y - 0.25)")
    drawn = draw(f, 20, box, 3)
    result = special_points([f, claim], drawn.points, box)
    assert [loc for loc in result.locations if loc.variable == "y" and abs(loc.value - 0.25) < 1e-9]
    assert set(result.points) == {"x", "y"}
    assert_in_box(result, box)


# --------------------------------------------------------------------------------------------
# The box, determinism, bounds, robustness
# --------------------------------------------------------------------------------------------


def test_the_box_is_respected() -> None:
    box = {"x": (0.5, 3.0)}
    result = probe("1/(x-1) + log(x) + 1/(x-3)", domain=box)
    assert near(result, 1.0) and near(result, 3.0)
    assert not near(result, 0.0)  # log's zero is outside the box
    assert_in_box(result, box)
    left, right = sides(result, 3.0)  # at the upper end: nothing to the right
    assert len(left) == 2 and len(right) == 0
    # a box too narrow for the 1e-3 sides of 1/(x - 1) keeps only the near ones
    small = probe("1/(x-1)", domain={"x": (0.9995, 1.0005)})
    assert_in_box(small, {"x": (0.9995, 1.0005)})
    assert near(small, 1.0)


def test_deterministic_under_a_seed() -> None:
    box = {"x": (-2.0, 2.0), "y": (0.1, 3.0)}
    graph = parse("x/(y - 0.5) + log(y - 1)*abs(x + y - 1)")
    drawn = draw(graph, 200, box, 7)
    a = special_points([graph], drawn.points, box, rng=5)
    b = special_points([graph], drawn.points, box, rng=5)
    c = special_points([graph], drawn.points, box, rng=np.random.default_rng(5))
    d = special_points([graph], drawn.points, box)
    e = special_points([graph], drawn.points, box)
    for other in (b, c):
        assert a.why == other.why
        for v in box:
            assert np.array_equal(a.points[v], other.points[v])
    assert d.why == e.why and all(np.array_equal(d.points[v], e.points[v]) for v in box)
    assert len(a) and not a.timed_out


def test_a_10000_node_formula_is_bounded() -> None:
    cs = np.random.default_rng(0).uniform(-1.9, 1.9, 2500)
    graph = parse(" + ".join(f"1/(x - {c:.6f})" for c in cs))
    assert len(graph) >= 9_990
    box = {"x": (-2.0, 2.0)}
    drawn = {"x": np.linspace(-1.95, 1.95, 20)}
    result = special_points([graph], drawn, box, most=64)
    assert len(result) == 64 and result.truncated and not result.timed_out
    assert len(result.locations) == 13  # 12 whole locations of 5 points and part of one
    assert_in_box(result, box)
    poles = {round(float(c), 6) for c in cs}
    for loc in result.locations:
        assert min(abs(loc.value - p) for p in poles) <= 1e-9
    big = special_points([graph], drawn, box, most=500, budget_seconds=30.0)
    assert len(big) == 500 and len(big.locations) == 100


def test_many_variables_are_bounded() -> None:
    n = 500
    graph = parse(" + ".join(f"log(x{i})*abs(x{i + 1} - 0.1)/(x{i} - x{i + 1})" for i in range(n)))
    box = {v: (-2.0, 2.0) for v in graph.variables}
    rng = np.random.default_rng(2)
    drawn = {v: rng.uniform(-2.0, 2.0, 30) for v in graph.variables}
    result = special_points([graph], drawn, box, most=40)
    assert 0 < len(result) <= 40 and result.truncated
    assert_in_box(result, box)
    for loc in result.locations:  # each location moves one variable off a sampled point
        others = [v for v in box if v != loc.variable]
        k = np.flatnonzero(drawn[others[0]] == loc.at[others[0]])
        assert len(k) and all(drawn[v][k[0]] == loc.at[v] for v in others)


def test_most_caps_the_points() -> None:
    assert len(probe("tan(5*x)", most=3)) == 3
    assert len(probe("tan(5*x)", most=0)) == 0
    result = probe("tan(5*x)")
    assert len(result.locations) == 6 and len(result) == 30 and not result.truncated


def test_never_raises_on_nan_inf_or_odd_input() -> None:
    graph = parse("1/(x - 1) + log(y)")
    box = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}
    pts = {"x": np.array([0.0, np.nan, np.inf, 1.5]), "y": np.array([np.nan, 1.0, -np.inf, 0.5])}
    result = special_points([graph], pts, box)
    assert_in_box(result, box)
    assert near(result, 1.0)
    assert len(special_points([graph], pts, {"x": (-np.inf, 2.0), "y": (1.0, 1.0)})) == 0
    assert len(special_points([graph], {"x": np.zeros(0), "y": np.zeros(0)}, box)) == 0
    assert len(special_points([graph], {"x": np.array([0.5])}, box)) == 0  # y has no values
    assert len(special_points([], pts, box)) == 0
    # a scalar for a fixed variable, and a variable without a box interval stays fixed
    fixed = special_points([graph], {"x": np.linspace(-1, 1, 5), "y": 0.5}, {"x": (-2.0, 2.0)})
    assert near(fixed, 1.0) and np.all(fixed.points["y"] == 0.5)
    # 1/(x - x) is undefined everywhere: nothing to bracket
    assert len(special_points([parse("1/(x - x) + 1/(x - 0.5)")], {"x": np.array([0.1])}, box)) == 5
    assert special_points([graph], pts, box, budget_seconds=0.0).timed_out


def test_where_defined_and_appended_to() -> None:
    graph = parse("log(x)")
    drawn = draw(graph, 10, {"x": (-2.0, 2.0)}, 1)
    result = special_points([graph], drawn.points, {"x": (-2.0, 2.0)})
    defined = result.where_defined()
    assert len(defined) == int(result.defined[0].sum()) == 2  # 0 and the left sides are not
    assert np.all(defined.points["x"] > 0) and all("beside it: x +" in w for w in defined.why)
    assert defined.locations == result.locations and defined.defined.all()
    merged = defined.appended_to(drawn.points)
    k = len(drawn.points["x"])
    assert np.array_equal(merged["x"][:k], drawn.points["x"])
    assert np.array_equal(merged["x"][k:], defined.points["x"])
    assert len(result.appended_to(drawn.points)["x"]) == k + len(result)


def test_an_unknown_non_smooth_op_is_probed_through_its_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kink op added to rules.py later (with a `gap`, as kinks.py requires) is found without
    a change here: its gap is 0 at its kink."""
    from gradcheck_cli.graph import GraphBuilder
    from gradcheck_cli.rules import RULES, Rule

    rule = Rule(lambda x: np.abs(x - 0.5), (lambda o, x: np.sign(x - 0.5),), smooth=False,
                directional=lambda o, a, t: t[0], gap=lambda a, t: (a[0] - 0.5, t[0]))
    monkeypatch.setitem(RULES, "kink_at_half", rule)
    b = GraphBuilder()
    graph = b.build(b.op("kink_at_half", [b.op("mul", [b.const(2), b.var("x")])]))
    result = special_points([graph], {"x": np.linspace(-1, 1, 7)}, {"x": (-2.0, 2.0)})
    assert locations(result) == [0.25]
    assert "a kink of kink_at_half(2*x)" in result.locations[0].why


def test_no_line_through_a_sampled_point_outside_the_box() -> None:
    graph = parse("1/(x - 1) + 1/(y - 0.5)")
    box = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}
    assert len(special_points([graph], {"x": np.array([7.0]), "y": np.array([9.0])}, box)) == 0
    # (0, 9): only the line along y stays in the box; (7, 0): only the one along x
    result = special_points([graph], {"x": np.array([0.0, 7.0]), "y": np.array([9.0, 0.0])}, box)
    assert sorted((loc.variable, loc.value, tuple(loc.at.values())) for loc in result.locations) == [
        ("x", 1.0, (1.0, 0.0)), ("y", 0.5, (0.0, 0.5))]
    assert_in_box(result, box)
