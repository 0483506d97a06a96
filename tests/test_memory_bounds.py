"""Formulas with thousands of arguments or variables: right answers, in bounded memory.

max/min over thousands of tied arguments and relu over thousands of variables at 0 were
quadratic (the tie count recomputed for every argument; one walk of 2n directions holding
n × 2n seeds; a Python loop over kinks × variables); the complex step through erf near |x| = 25
took seconds an element. These tests check the results by hand values; the time and memory
they cost is measured by benchmarks/memory.py, not asserted here.
"""

from __future__ import annotations

import dataclasses
import math
import tracemalloc

import mpmath
import numpy as np
import pytest

from gradcheck_cli import finite, forward, kinks, rules
from gradcheck_cli.graph import evaluate
from gradcheck_cli.parse import parse
from gradcheck_cli.reverse import gradient_from_values
from gradcheck_cli.rules import RULES


def _setup(expr: str, point: dict[str, float]):
    graph = parse(expr)
    arrays = {v: np.asarray([x]) for v, x in point.items()}
    return graph, arrays, list(point)


@pytest.mark.parametrize("op", ["max", "min"])
def test_thousands_of_tied_arguments(op: str) -> None:
    n = 3000
    names = [f"x{i}" for i in range(n)]
    graph, arrays, wrt = _setup(f"{op}(" + ",".join(names) + ")", {v: 1.0 for v in names})
    # AD: the gradient over ties is split evenly
    rev = gradient_from_values(graph, evaluate(graph, arrays, np.float64), wrt)
    fwd = forward.gradient(graph, arrays, wrt)
    for grad in (rev, fwd):
        assert all(float(np.asarray(grad[v]).ravel()[0]) == pytest.approx(1 / n, rel=1e-15) for v in names)
    # one-sided derivatives along x_i: max(x_i + t, 1, ...) grows with t > 0 only
    res = kinks.analyse(graph, arrays, wrt)
    assert [k.op for k in res.at_point] == [op] and bool(res.at_point[0].at[0])
    left, right = (0.0, 1.0) if op == "max" else (1.0, 0.0)
    for v in names:
        assert (float(res.one_sided[v][0][0]), float(res.one_sided[v][1][0])) == (left, right)
    assert set(res.nondifferentiable()) == set(names)
    # the gap is the top two's (x0 and x1 in order): the point sits on it along x0
    assert float(res.nearest["x0"][0][0]) == 0.0


def test_max_with_some_ties_among_many() -> None:
    n = 2000
    names = [f"x{i}" for i in range(n)]
    point = {v: (2.0 if i % 500 == 7 else -float(i)) for i, v in enumerate(names)}
    graph, arrays, wrt = _setup("max(" + ",".join(names) + ")", point)
    tied = [v for v in names if point[v] == 2.0]
    rev = gradient_from_values(graph, evaluate(graph, arrays, np.float64), wrt)
    assert {v for v in names if float(np.asarray(rev[v]).ravel()[0]) != 0.0} == set(tied)
    assert all(float(np.asarray(rev[v]).ravel()[0]) == 1 / len(tied) for v in tied)


def test_max_computes_its_tie_count_once_per_node() -> None:
    calls = []

    def counting(out, args):
        calls.append(1)
        return rules._tie_count(out, args)

    rule = dataclasses.replace(RULES["max"], shared=counting)
    args = tuple(np.asarray([1.0, 2.0]) for _ in range(500))
    out = rule.value(*args)
    partials = [rule.partial(j, out, args) for j in range(len(args))]
    assert len(calls) == 1
    assert all(np.array_equal(p, [1 / 500, 1 / 500]) for p in partials)
    # the same answer as the partial that counts for itself
    assert np.array_equal(rules._max_partial(3, out, *args), partials[3])


def test_relu_over_thousands_of_variables_at_zero() -> None:
    n = 6000
    names = [f"x{i}" for i in range(n)]
    graph, arrays, wrt = _setup("+".join(f"relu({v})" for v in names), {v: 0.0 for v in names})
    res = kinks.analyse(graph, arrays, wrt)
    assert len(res.at_point) == n
    for v in names:
        assert (float(res.one_sided[v][0][0]), float(res.one_sided[v][1][0])) == (0.0, 1.0)
    assert set(res.nondifferentiable()) == set(names)
    rev = gradient_from_values(graph, evaluate(graph, arrays, np.float64), wrt)
    assert all(float(np.asarray(rev[v]).ravel()[0]) == 0.0 for v in names)  # relu'(0) = 0


def test_kink_analysis_memory_does_not_grow_with_n_squared() -> None:
    # one walk of 2n directions held n × 2n seeds: 6,000 variables were 576 MB of seeds alone
    n = 6000
    names = [f"x{i}" for i in range(n)]
    graph, arrays, wrt = _setup("+".join(f"relu({v})*{v}" for v in names), {v: 0.0 for v in names})
    tracemalloc.start()
    try:
        kinks.analyse(graph, arrays, wrt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * kinks.BUDGET + (64 << 20)


def _snapshot(res: kinks.KinkAnalysis):
    return ([(k.node, k.op, k.where, k.at.tolist()) for k in res.at_point],
            {v: [a.tolist() for a in t] for v, t in res.one_sided.items()},
            {v: [a.tolist() for a in t] for v, t in res.nearest.items()})


def test_chunked_kink_analysis_equals_one_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    n = 40
    names = [f"x{i}" for i in range(n)]
    expr = ("+".join(f"relu({names[i]}-{names[(i + 1) % n]})*{names[(i + 3) % n]}" for i in range(n))
            + "+max(" + ",".join(names[::3]) + ")+abs(" + "*".join(names[:5]) + ")")
    point = {v: np.round(rng.normal(size=6), 1) for v in names}
    point["x0"][:] = point["x1"]  # a relu at its kink at every point
    graph = parse(expr)
    whole = _snapshot(kinks.analyse(graph, point, names))  # one walk (fits the budget)
    monkeypatch.setattr(kinks, "CHUNK", 3)
    monkeypatch.setattr(kinks, "BUDGET", 1)
    assert kinks._chunk_size(graph, n, 6) == 3
    chunked = _snapshot(kinks.analyse(graph, point, names))
    assert chunked == whole
    assert whole[0] and whole[1]


def test_kink_analysis_of_a_smooth_formula_returns_early() -> None:
    graph, arrays, wrt = _setup("sin(x)*y", {"x": 1.0, "y": 2.0})
    res = kinks.analyse(graph, arrays, wrt)
    assert not res.at_point and not res.nearest and not res.one_sided


@pytest.mark.parametrize("x", [25.0, -25.0, 26.0, 3.0, -0.75])
def test_complex_step_through_erf_in_the_tails(x: float) -> None:
    graph = parse("erf(x)")
    res = finite.complex_step(graph, {"x": np.asarray([x])}, ["x"])
    assert res.gradient is not None
    with mpmath.workdps(50):
        truth = float(2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-mpmath.mpf(x) ** 2))
    assert float(res.gradient["x"][0]) == pytest.approx(truth, rel=1e-14)


@pytest.mark.parametrize("x", [-25.0, -30.0, -0.7517916243, 25.0])
def test_complex_step_through_gelu_in_the_tails(x: float) -> None:
    graph = parse("gelu(x)")
    res = finite.complex_step(graph, {"x": np.asarray([x])}, ["x"])
    assert res.gradient is not None
    with mpmath.workdps(60):
        u = mpmath.mpf(x)
        truth = float(mpmath.erfc(-u / mpmath.sqrt(2)) / 2 + u * mpmath.npdf(u))
    assert float(res.gradient["x"][0]) == pytest.approx(truth, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("name", ["erf_complex", "gelu_complex"])
def test_the_short_form_for_a_tiny_imaginary_part_equals_the_direct_evaluation(name: str) -> None:
    fn = getattr(rules, name)
    direct = {"erf_complex": (lambda mp, w: mp.erf(w), True),
              "gelu_complex": (lambda mp, w: w * mp.erfc(-w / mp.sqrt(2)) / 2, False)}[name]
    for x in (-25.0, -3.0, 0.0, 0.3, 5.5, 25.0):
        z = np.asarray([complex(x, 1e-30 * max(1.0, abs(x)))])
        assert rules._tiny_imaginary(complex(z[0]))
        assert fn(z)[0] == rules._mpmath_complex(direct[0], z, flat=direct[1])[0]
    # a large imaginary part goes the direct way, and is still right
    z = complex(0.5, 0.25)
    with mpmath.workdps(30):
        want = complex(mpmath.erf(mpmath.mpc(z.real, z.imag)))
    assert not rules._tiny_imaginary(z)
    if name == "erf_complex":
        assert abs(fn(np.asarray([z]))[0] - want) <= 4 * math.ulp(abs(want))
