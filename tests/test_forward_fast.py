"""Forward mode at one point with many directions: float values and partials, numpy tangents
(`forward.tangents_at_one_point`) give the numbers of the numpy walk of dual numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcheck_cli import forward
from gradcheck_cli.dual import Duals
from gradcheck_cli.interpret import walk
from gradcheck_cli.parse import parse

CASES = [
    ("x*sqrt(y)", {"x": 2.0, "y": 0.0}),
    ("sqrt(x**2)+y", {"x": 0.0, "y": 1.0}),
    ("x**3*y - exp(y)/x", {"x": 1.3, "y": -0.4}),
    ("relu(x)*y + abs(y)", {"x": 0.0, "y": 0.0}),
    ("max(x,y)*min(x,y)", {"x": 1.0, "y": 1.0}),
    ("atan2(y,x)+x**y", {"x": 0.5, "y": 2.5}),
    ("sigmoid(x)*softplus(y)*gelu(x*y) + tanh(x - y)", {"x": 0.3, "y": -2.0}),
]


def _numpy_walk(text: str, point: dict[str, float], seeds: dict[str, np.ndarray]) -> np.ndarray:
    g = parse(text)
    pts = {k: np.asarray(v) for k, v in point.items()}  # 0-d: numpy on one number
    out = walk(g, Duals(pts, seeds), upto=g.output, keep={g.output})[g.output]
    d = len(next(iter(seeds.values())))
    return np.zeros(d) if out.tangent is None else np.broadcast_to(out.tangent, (d,)).copy()


@pytest.mark.parametrize("text,point", CASES)
def test_the_same_bits_as_the_numpy_walk(text: str, point: dict[str, float]) -> None:
    rng = np.random.default_rng(7)
    for _ in range(4):
        seeds = {}
        for v in sorted(point):
            s = rng.normal(size=5)
            s[rng.random(5) < 0.4] = 0.0  # structural zeros in some directions
            seeds[v] = s
        fast = forward.tangents_at_one_point(parse(text), {k: np.asarray(v) for k, v in point.items()},
                                             seeds, np.float64)
        assert fast is not None
        want = _numpy_walk(text, point, seeds)
        assert np.array_equal(fast, want, equal_nan=True)
        assert np.array_equal(np.signbit(fast), np.signbit(want))


def test_structural_zeros_are_kept() -> None:
    """x*sqrt(y) at y = 0: along x, 0 (x never meets sqrt's infinite partial); along y, ∞;
    sqrt(x**2) at 0: the chain rule's 0 · ∞ is nan, as reverse mode gives."""
    g = parse("x*sqrt(y)")
    got = forward.tangents_at_one_point(g, {"x": np.asarray(2.0), "y": np.asarray(0.0)},
                                        {"x": np.array([1.0, 0.0]), "y": np.array([0.0, 1.0])}, np.float64)
    assert got is not None and got[0] == 0.0 and got[1] == math.inf
    g = parse("sqrt(x**2)")
    got = forward.tangents_at_one_point(g, {"x": np.asarray(0.0)}, {"x": np.array([1.0])}, np.float64)
    assert got is not None and math.isnan(got[0])


def test_many_variables_gradient_is_exact_on_a_sum_of_products() -> None:
    """f = Σ_i a_i·x_i with 40 variables pairs (80 > the 16 float directions): ∂f/∂x_i = a_i,
    ∂f/∂a_i = x_i exactly."""
    n = 40
    text = " + ".join(f"a{i}*x{i}" for i in range(n))
    point = {**{f"a{i}": np.asarray([0.5 + i]) for i in range(n)},
             **{f"x{i}": np.asarray([-1.25 * i]) for i in range(n)}}
    g = parse(text)
    grad = forward.gradient(g, point, sorted(point))
    for i in range(n):
        assert grad[f"x{i}"].tolist() == [0.5 + i]
        assert grad[f"a{i}"].tolist() == [-1.25 * i]


def test_not_finite_values_leave_it_to_the_numpy_walk() -> None:
    g = parse("log(x)*y")
    assert forward.tangents_at_one_point(g, {"x": np.asarray(0.0), "y": np.asarray(1.0)},
                                         {"x": np.array([1.0])}, np.float64) is None
    assert forward.tangents_at_one_point(g, {"x": np.asarray([1.0, 2.0]), "y": np.asarray(1.0)},
                                         {"x": np.array([1.0])}, np.float64) is None
