"""The fast paths give the numbers of the plain paths.

- One point: `interpret.walk` (Values), `backward`/`reverse.gradient_from_values` and
  `forward.gradient` compute on Python floats (`interpret.float_walk`, `float_backward`,
  `float_tangent`); they must agree bit for bit with the numpy interpreter, which still runs
  for a subclass of `Values` and for many points, on random formulas over every op, and keep
  nan/inf exactly as numpy gives them.
- Many variables: `methods` checks directional derivatives and a subset of variables, and
  says so.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest

from gradcheck_cli import forward, interpret, reverse
from gradcheck_cli.dual import Duals
from gradcheck_cli.graph import GraphBuilder, evaluate
from gradcheck_cli.interpret import PointValues, Values, backward, walk
from gradcheck_cli.rules import RULES


class NumpyValues(Values):
    """The numpy interpreter itself (a subclass never takes the float path)."""


UNARY = sorted(op for op, r in RULES.items() if r.arity == 1)
BINARY = sorted(op for op, r in RULES.items() if r.arity == 2)


def random_graph(rng: random.Random, size: int, names: tuple[str, ...] = ("x", "y", "z")):
    b = GraphBuilder()
    c = Fraction(rng.choice([2, 3, -1, 1, 5])) / rng.choice([1, 2, 4])
    pool = [b.var(n) for n in names] + [b.const(c)]
    for _ in range(size):
        r = rng.random()
        if r < 0.45:
            op = rng.choice(UNARY)
            node = b.op(op, [rng.choice(pool[-6:] if rng.random() < 0.7 else pool)])
        elif r < 0.9:
            op = rng.choice(BINARY)
            node = b.op(op, [rng.choice(pool[-6:]), rng.choice(pool)])
        else:
            node = b.op(rng.choice(["max", "min"]), [rng.choice(pool) for _ in range(3)])
        pool.append(node)
    return b.build(pool[-1])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.mark.parametrize("seed", range(120))
def test_float_paths_agree_with_numpy_bit_for_bit(seed: int) -> None:
    rng = random.Random(seed)
    graph = random_graph(rng, rng.choice([3, 6, 12, 25]))
    point = {v: np.array([rng.choice([rng.uniform(-3, 3), rng.uniform(0.01, 2), 0.0, 1.0, -2.5])])
             for v in graph.variables}
    fast = walk(graph, Values(point))
    slow = walk(graph, NumpyValues(point))
    assert len(fast) == len(slow)
    for i, (a, b) in enumerate(zip(fast, slow)):
        assert np.shape(a) == np.shape(b), (i, graph.nodes[i])
        assert same(a, b), (i, graph.nodes[i], a, b)
    wrt = list(graph.variables)
    g_fast = reverse.gradient_from_values(graph, fast, wrt)
    g_slow = reverse.gradient_from_values(graph, list(slow), wrt)
    for v in wrt:
        assert same(g_fast[v], g_slow[v]), (v, g_fast[v], g_slow[v])
    adj_fast = backward(graph, fast, wrt)
    adj_slow = backward(graph, list(slow), wrt)
    for v in wrt:
        i = graph.var_nodes[v]
        assert (adj_fast[i] is None) == (adj_slow[i] is None)
        if adj_slow[i] is not None:
            assert same(adj_fast[i], adj_slow[i])
    f_fast = forward.gradient(graph, point, wrt)
    eye = np.eye(len(wrt))
    duals = walk(graph, Duals(point, {v: eye[k] for k, v in enumerate(wrt)}))[graph.output]
    for k, v in enumerate(wrt):
        expect = np.zeros(1) if duals.tangent is None else np.broadcast_to(duals.tangent, (len(wrt), 1))[k]
        assert same(f_fast[v], expect), (v, f_fast[v], expect)


def test_one_point_takes_the_float_path_and_keeps_shapes() -> None:
    b = GraphBuilder()
    x = b.var("x")
    two_pi = b.op("mul", [b.const(Fraction(2)), b.named_const("pi")])
    square = b.op("pow", [x, b.const(Fraction(2))])
    graph = b.build(b.op("add", [b.op("sin", [b.op("mul", [x, two_pi])]), square]))
    values = evaluate(graph, {"x": np.array([0.3])})
    assert isinstance(values, PointValues)
    slow = walk(graph, NumpyValues({"x": np.array([0.3])}))
    assert [np.shape(v) for v in values] == [np.shape(v) for v in slow]  # constants stay 0-d
    assert not isinstance(evaluate(graph, {"x": np.array([0.3, 0.4])}), PointValues)
    assert not isinstance(evaluate(graph, {"x": np.array([0.3])}, np.float32), PointValues)


@pytest.mark.parametrize("text_point", [
    ("log(x) * y", {"x": 0.0, "y": 2.0}),      # -inf
    ("1/x + y", {"x": 0.0, "y": 1.0}),          # division by zero
    ("exp(x) - exp(x)", {"x": 1000.0}),          # inf - inf
    ("sqrt(x) * 0 + y", {"x": -1.0, "y": 1.0}),  # nan
    ("x**0.5 * y", {"x": -4.0, "y": 1.0}),
    ("max(x, y) * sqrt(x*x)", {"x": 0.0, "y": -1.0}),
])
def test_non_finite_values_and_gradients_are_numpys(text_point) -> None:
    from gradcheck_cli.parse import parse

    text, p = text_point
    graph = parse(text)
    point = {v: np.array([x]) for v, x in p.items()}
    fast = evaluate(graph, point)
    slow = walk(graph, NumpyValues(point))
    for a, b in zip(fast, slow):
        assert same(a, b)
    wrt = list(graph.variables)
    g_fast = reverse.gradient_from_values(graph, fast, wrt)
    g_slow = reverse.gradient_from_values(graph, list(slow), wrt)
    for v in wrt:
        assert same(g_fast[v], g_slow[v])


def test_a_replaced_rule_is_seen_by_the_float_path(monkeypatch: pytest.MonkeyPatch) -> None:
    b = GraphBuilder()
    x = b.var("x")
    graph = b.build(b.op("sin", [x]))
    point = {"x": np.array([0.5])}
    assert float(reverse.gradient(graph, point, ["x"])["x"][0]) == math.cos(0.5)
    good = RULES["sin"]
    monkeypatch.setitem(RULES, "sin", type(good)(good.value, (lambda o, x: np.cos(x) * 1.001,)))
    assert float(reverse.gradient(graph, point, ["x"])["x"][0]) == math.cos(0.5) * 1.001
    assert float(forward.gradient(graph, point, ["x"])["x"][0]) == math.cos(0.5) * 1.001


def test_elementary_functions_are_math_only_where_numpy_agrees() -> None:
    interpret._verified()
    for name, (_mfn, nfn, (lo, hi)) in interpret._ELEMENTARY.items():
        if nfn is None:
            continue
        xs = np.linspace(max(lo, -8.0), min(hi, 8.0), 997)
        chosen = getattr(interpret._M, name)
        with np.errstate(all="ignore"):
            assert all(same(chosen(float(v)), nfn(v)) for v in xs), name
