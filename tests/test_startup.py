"""The short check's start-up path: the SymPy worker never imports numpy for a small batch.

The worker sends SymPy's float64 derivative back as a *program* (the syntax tree of the source
lambdify would generate) that the parent runs with numpy (symbolic.py's module docstring).
These tests hold that to what it promises:
- the program's values are lambdify's, bit for bit (nan and the sign of zero included), for
  every function a formula may call, on points that include domain edges where the value is
  nan or ±inf;
- they agree with an independent high-precision reference (mpmath's numerical derivative of f
  written with mpmath's own functions) where the derivative exists;
- a derivative the program cannot hold falls back to lambdify in the worker, with the same
  values, and a program that fails in the parent is reported as the worker reported a failure;
- the card command's worker really runs without numpy (Linux: its memory map).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy  # noqa: F401  # imported once here, so forked workers start with it

from gradcheck_cli import symbolic
from gradcheck_cli.parse import parse

ROOT = Path(__file__).resolve().parent.parent

# Every function of functions.py at least once, alone and composed.
FORMULAS = [
    "cos(sin(x**2)+3*x**2)",
    "sin(x)*cos(y) + tan(x*y)",
    "asin(x/4) + acos(y/4) + atan(x*y)",
    "sinh(x) + cosh(y) + tanh(x*y)",
    "exp(-x**2)*log(1+y**2)",
    "sqrt(x**2+y**2)",
    "abs(x)*y + abs(x-y)",
    "erf(x/3)*y",
    "sec(x) + csc(y) + cot(x+y)",
    "asec(x+5) + acsc(y+5) + acot(x*y)",
    "asinh(x) + acosh(y**2+2) + atanh(x/4)",
    "log2(x**2+1) + log10(y**2+1)",
    "cbrt(x) + cbrt(x*y)",
    "atan2(y, x)",
    "max(x, y, 0.5) + min(x, y)",
    "sigmoid(x)*softplus(y)",
    "relu(x)*y + leaky_relu(y) + leaky_relu(x, 0.2)",
    "elu(x) + elu(y, 2)",
    "swish(x) + gelu(y) + silu(x*y)",
    "hard_swish(3*x)",
    "log(x**2+1, 3) + exp(y)**x",
    "x**3/(y**2+1) - 1/x + pi*E",
    "(x**2+y**2)**0.5 + (x**2+1)**(1/3)",
    "log(x) + sqrt(y) + x**y",
    "tanh(tanh(tanh(x*y)))*sigmoid(-y)",
]
# A batch with the awkward values: zero (kinks, poles), negatives (log, sqrt), tiny and huge.
XS = np.array([-2.5, -1.0, -0.3, -0.0, 0.0, 0.5, 1.0, 1.5, 3.0, 1e-300, -7e-310, 40.0, 700.0])
YS = np.array([1.0, -0.0, 0.5, 2.0, -1.0, 0.0, 1.0, -3.0, 1e-8, 2.0, 0.25, -40.0, 0.5])


def _points(graph, xs=XS, ys=YS) -> dict[str, np.ndarray]:
    return {v: {"x": xs, "y": ys}[v] for v in graph.variables}


def _same_bits(a: object, b: object) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) & (np.signbit(a) == np.signbit(b))
                                             | (np.isnan(a) & np.isnan(b))))


@pytest.mark.parametrize("text", FORMULAS)
def test_program_values_are_lambdify_values_bit_for_bit(text: str) -> None:
    graph = parse(text)
    wrt = list(graph.variables)
    lambdified = symbolic.prepare(graph, wrt)
    programmed = symbolic.prepare(symbolic.PlainGraph.of(graph), wrt, program_points=len(XS))
    assert programmed.program is not None and programmed.float_fn is None  # the fast path, not a fallback
    points = _points(graph)
    want = symbolic.evaluate_float(lambdified, points)
    got = symbolic.evaluate_float(programmed, points)
    for v in wrt:
        assert _same_bits(got[v], want[v]), (v, got[v], want[v])
    # one point, as the card command has it (a batch of one) and as a scalar
    for k in (0, 4, 7):
        one = {v: p[k:k + 1] for v, p in points.items()}
        scalar = {v: float(p[k]) for v, p in points.items()}
        for pts in (one, scalar):
            a, b = symbolic.evaluate_float(programmed, pts), symbolic.evaluate_float(lambdified, pts)
            assert all(_same_bits(a[v], b[v]) for v in wrt), (k, a, b)


def _normalized(source: str) -> str:
    names: dict[str, str] = {}
    return re.sub(r"_Dummy_\d+", lambda m: names.setdefault(m.group(), f"_D{len(names)}"), source)


@pytest.mark.parametrize("text", FORMULAS[::3])
def test_the_program_is_printed_from_lambdifys_own_source(text: str, monkeypatch) -> None:
    # the program is the syntax tree of the very source lambdify generates (same printer,
    # settings and cse): compare the two sources, Dummy numbering aside
    import ast
    import inspect

    import sympy as sp

    graph = parse(text)
    wrt = list(graph.variables)
    sources = []
    real = sp.lambdify

    def spy(*args: object, **kwargs: object) -> object:
        fn = real(*args, **kwargs)
        sources.append(inspect.getsource(fn))
        return fn

    monkeypatch.setattr(sp, "lambdify", spy)
    symbolic.prepare(graph, wrt)
    printed = []
    real_parse = ast.parse
    monkeypatch.setattr(ast, "parse", lambda src, *a, **k: printed.append(src) or real_parse(src, *a, **k))
    symbolic.prepare(symbolic.PlainGraph.of(graph), wrt, program_points=1)
    assert len(sources) == 1 and len(printed) == 1
    assert _normalized(printed[0]) == _normalized(sources[0])


def test_the_batch_covers_nan_and_inf() -> None:
    # the comparison above is only as good as its points: it must see nan and ±inf values
    seen = set()
    for text in FORMULAS:
        graph = parse(text)
        prep = symbolic.prepare(symbolic.PlainGraph.of(graph), list(graph.variables), program_points=len(XS))
        for value in symbolic.evaluate_float(prep, _points(graph)).values():
            seen |= {"nan"} if np.isnan(value).any() else set()
            seen |= {"inf"} if np.isinf(value).any() else set()
    assert seen == {"nan", "inf"}


# f written with mpmath's own functions (not SymPy's): (formula, f, points where f is smooth and
# the float64 evaluation of SymPy's formula is well conditioned: at x = -20, sigmoid*softplus's
# formula loses 8 digits in float64, as it always did; that is the symbolic column's to show)
MP = mpmath.mp
REFERENCE = [
    ("cos(sin(x**2)+3*x**2)", lambda x: MP.cos(MP.sin(x**2) + 3 * x**2), [1.5, -0.7, 0.1]),
    ("gelu(x)", lambda x: x * (1 + MP.erf(x / MP.sqrt(2))) / 2, [-3.0, -0.5, 0.8, 5.0]),
    ("erf(x/3)*x", lambda x: MP.erf(x / 3) * x, [-2.0, 0.3, 4.0]),
    ("sigmoid(x)*softplus(x)", lambda x: 1 / (1 + MP.exp(-x)) * MP.log(1 + MP.exp(x)), [-2.0, 0.0, 3.0]),
    ("relu(x)*x + abs(x)", lambda x: max(x, 0) * x + abs(x), [-1.5, 2.0]),
    ("max(x, 0.5) + min(x, -0.5)", lambda x: max(x, MP.mpf(0.5)) + min(x, MP.mpf(-0.5)), [-2.0, 0.0, 2.0]),
    ("atan2(x, 2)", lambda x: MP.atan2(x, 2), [-3.0, 0.0, 1.0]),
    ("atan2(2, x)", lambda x: MP.atan2(2, x), [-3.0, 0.5, 1.0]),
    ("log(x, 3)", lambda x: MP.log(x) / MP.log(3), [0.1, 2.0, 1e5]),
    ("tanh(x)**2 + sec(x)", lambda x: MP.tanh(x) ** 2 + MP.sec(x), [-1.0, 0.4]),
    ("cbrt(x) + asinh(x)", lambda x: (MP.cbrt(x) if x >= 0 else -MP.cbrt(-x)) + MP.asinh(x),
     [-8.0, 0.001, 27.0]),
    ("elu(x) + leaky_relu(x, 0.2)", lambda x: (x if x > 0 else MP.exp(x) - 1) + (x if x > 0 else x / 5),
     [-2.0, 1.0]),
    ("hard_swish(x) + swish(x)", lambda x: x * min(max(x + 3, 0), 6) / 6 + x / (1 + MP.exp(-x)),
     [-4.0, -1.0, 2.0, 5.0]),
]


@pytest.mark.parametrize("text,f,xs", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_program_values_agree_with_mpmath(text: str, f, xs: list[float]) -> None:
    graph = parse(text)
    prep = symbolic.prepare(symbolic.PlainGraph.of(graph), ["x"], program_points=len(XS))
    assert prep.program is not None
    got = symbolic.evaluate_float(prep, {"x": np.array(xs)})["x"]
    for x, value in zip(xs, got):
        with mpmath.workdps(40):
            want = float(mpmath.diff(f, mpmath.mpf(x)))
        assert value == pytest.approx(want, rel=1e-12, abs=1e-300), (x, value, want)


# Domain edges, where float64 evaluation of SymPy's derivative is ±inf or nan (unchanged
# from lambdify, as above).
EDGES = [
    ("sqrt(x)", 0.0, math.inf), ("sqrt(x)", -1.0, math.nan), ("asin(x)", 1.0, math.inf),
    ("asin(x)", 2.0, math.nan), ("log(x)", 0.0, math.inf), ("atanh(x)", 1.0, math.inf),
    ("acosh(x)", 1.0, math.inf), ("acosh(x)", 0.5, math.nan), ("x**0.5 + log(x)", -2.0, math.nan),
    ("1/x", 0.0, -math.inf),
    ("cbrt(x)", 0.0, math.nan),  # 2*|x|**(1/3)*DiracDelta(x) + ...: 0*inf, though the slope is +inf
]


@pytest.mark.parametrize("text,x,want", EDGES, ids=[f"{t}@{x}" for t, x, _ in EDGES])
def test_domain_edges_are_inf_or_nan(text: str, x: float, want: float) -> None:
    graph = parse(text)
    prep = symbolic.prepare(symbolic.PlainGraph.of(graph), ["x"], program_points=len(XS))
    assert prep.program is not None
    got = symbolic.evaluate_float(prep, {"x": x})["x"]
    assert (math.isnan(got) and math.isnan(want)) or got == want, (got, want)
    same = symbolic.evaluate_float(symbolic.prepare(graph, ["x"]), {"x": x})["x"]
    assert _same_bits(got, same)


def test_the_worker_request_path() -> None:
    # stages() as the worker runs it: plain graph and points in, a program out, which Job
    # runs in the parent; the exact stage is as before
    graph = parse("cos(sin(x**2)+3*x**2) * y")
    point = {"x": np.array([1.5]), "y": np.array([-2.0])}
    plain = symbolic.PlainPoints.of(point, graph.variables)
    out = dict(symbolic.stages(symbolic.PlainGraph.of(graph), plain, ["x", "y"], exact_digits=30))
    assert "float" not in out and isinstance(out["float-program"], symbolic.Program)
    before = dict(symbolic.stages(graph, point, ["x", "y"], exact_digits=30))
    assert out["exact"] == before["exact"]
    got = symbolic._float_gradient(out["float-program"].function(), ["x", "y"], ["x", "y"], point)
    assert all(_same_bits(got[v], before["float"][v]) for v in "xy")


def test_a_derivative_the_program_cannot_hold_is_lambdified_in_the_worker(monkeypatch) -> None:
    graph = parse("sin(x)*y")
    point = symbolic.PlainPoints.of({"x": np.array([0.5]), "y": np.array([2.0])}, graph.variables)
    monkeypatch.setattr(symbolic, "_PROGRAM_NAMES", frozenset({"sin"}))  # no cos
    out = dict(symbolic.stages(symbolic.PlainGraph.of(graph), point, ["x", "y"]))
    assert "float-program" not in out
    assert out["float"]["x"] == np.array([2.0 * math.cos(0.5)])
    assert out["float"]["y"] == np.array([math.sin(0.5)])


def test_a_program_too_large_for_the_batch_is_lambdified_in_the_worker() -> None:
    graph = parse("cos(sin(x**2)+3*x**2)")
    small = symbolic.prepare(symbolic.PlainGraph.of(graph), ["x"], program_points=1)
    huge = symbolic.prepare(symbolic.PlainGraph.of(graph), ["x"], program_points=symbolic.PROGRAM_MAX_WORK)
    assert small.program is not None and small.float_fn is None
    assert huge.program is None and huge.float_fn is not None


def test_a_program_failing_in_the_parent_reads_as_a_worker_failure() -> None:
    job = symbolic.Job.__new__(symbolic.Job)
    job.result, job.broken, job.wants_exact = symbolic.SymbolicResult(None), False, True
    job.order, job.wrt, job.points = ["x"], ["x"], {"x": np.array([1.0])}
    broken = symbolic.Program(1, (), ("list", (("call", ("const", 2), (), ()),)))  # 2() fails
    from gradcheck_cli.worker import Outcome

    job._take(Outcome([("float-program", broken), ("exact", (0, {"x": "1"}, {}))]), first=True)
    r = job.result
    assert r.gradient is None and r.exact == {} and job.broken
    assert r.note == r.exact_note == "SymPy failed: TypeError: 'int' object is not callable"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_the_card_commands_worker_never_loads_numpy() -> None:
    script = (
        "from gradcheck_cli import worker\n"
        "worker.prestart()\n"
        "from gradcheck_cli import check\n"
        "r = check('cos(sin(x**2)+3*x**2)', {'x': 1.5})\n"
        "w, = worker._WORKERS.values()\n"
        "maps = open(f'/proc/{w.proc.pid}/maps').read()\n"
        "print(r.reference, r.method('symbolic').status['x'], '_multiarray_umath' in maps)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["exact", "pass", "False"]
