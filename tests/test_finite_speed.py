"""The fast finite differences give the numbers of the plain ones, with a fraction of the work.

`finite.central` and `finite.richardson` evaluate f's rounding response once per point (at
x + h for central, at x for Richardson) instead of at every shifted point, walk their points in
chunks, and Richardson evaluates its candidate steps in blocks, later blocks only where the
earlier ones have not settled. The references below are the plain algorithms written out the
long way (every candidate step, the tableau entry by entry, every array whole) with the same
rounding model: the fast code must agree with them bit for bit, nan, inf, `bad` and `why`
included, on formulas that reach every branch (domain edges, poles at a point, overflow, a
response of 0, kinks) and on batches mixing such points with ordinary ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import finite, parse
from gradcheck_cli.explain import describe_trouble
from gradcheck_cli.graph import at_point, evaluate, output_trouble
from gradcheck_cli.interpret import Shifted, evaluate_output

# --------------------------------------------------------------------------------------------
# The plain algorithms
# --------------------------------------------------------------------------------------------


def _f(graph, point, name, xs, dtype, signs=None):
    interp = Shifted(point, name, xs, dtype, None, signs, finite.PERTURBATION)
    f = evaluate_output(graph, interp)
    if signs is not None:
        f = np.broadcast_to(f, np.broadcast_shapes(np.shape(f), (len(signs[0]),) + (1,) * np.ndim(xs)))
    return f


def _response(graph, point, name, xs, f, dtype):
    """How far f at xs moves under the rounding model: max over the sign patterns."""
    signs = finite._sign_patterns(len(graph.nodes))
    moved = _f(graph, point, name, xs, dtype, (signs, signs))
    with np.errstate(all="ignore"):
        dev = np.abs(moved.astype(np.float64) - np.asarray(f, dtype=np.float64)).max(axis=0)
    return np.where(np.isfinite(dev), dev, np.inf) / finite.PERTURBATION


def _noise(fp, fm, width, r0, r1, eps):
    fp, fm = (np.abs(np.asarray(v, dtype=np.float64)) for v in (fp, fm))
    return (eps * (fp + fm) + r0 + r1) / np.abs(width)


def _note(graph, point, name, shifted, sign, not_finite, dtype):
    values = evaluate(graph, {**point, name: shifted}, dtype)
    k = int(np.flatnonzero(np.ravel(not_finite))[0])
    trouble = output_trouble(graph, at_point(values, k, np.shape(not_finite)))
    at = float(np.ravel(np.broadcast_to(shifted, np.shape(not_finite)))[k])
    where = f" at point {k + 1}" if np.size(not_finite) > 1 else ""
    text = describe_trouble(graph, trouble) if trouble is not None else "its value is not finite"
    return f"f is not finite at {name}{sign}h ({name} = {at:.17g}){where}: {text}"


def plain_central(graph, point, wrt, dtype=np.float64):
    out = {}
    shape = finite._full_shape(point)
    eps = float(np.finfo(dtype).eps)
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        h = finite.default_step(x, dtype)
        with np.errstate(all="ignore"):
            xp, xm = (x + h).astype(dtype), (x - h).astype(dtype)
            fp = np.broadcast_to(_f(graph, point, name, xp, dtype), shape)
            fm = np.broadcast_to(_f(graph, point, name, xm, dtype), shape)
            why = None
            for f, s, sign in ((fp, xp, "+"), (fm, xm, "-")):
                if not np.isfinite(f).all():
                    why = _note(graph, point, name, s, sign, ~np.isfinite(f), dtype)
                    break
            grad = ((fp - fm) / (xp - xm)).astype(dtype)
            width = xp.astype(np.float64) - xm.astype(np.float64)
            d1 = (fp.astype(np.float64) - fm.astype(np.float64)) / width
            ests = []
            for factor in (2.0, 0.5):
                hh = factor * np.asarray(h, dtype=np.float64)
                a, b = (x + hh).astype(dtype), (x - hh).astype(dtype)
                fa = np.broadcast_to(_f(graph, point, name, a, dtype), shape).astype(np.float64)
                fb = np.broadcast_to(_f(graph, point, name, b, dtype), shape).astype(np.float64)
                w2 = a.astype(np.float64) - b.astype(np.float64)
                ests.append(np.abs((fa - fb) / w2 - d1) * width**2 / np.abs(w2**2 - width**2))
            big, small = ests
            both = 2 * np.fmax(big, small) - np.fmin(big, small)
            trunc = np.where(np.isnan(big) | np.isnan(small), np.fmax(big, small), both)
            trunc = np.where(np.isnan(trunc), np.inf, trunc)
            r0 = _response(graph, point, name, xp, fp, dtype)  # at x + h, for both points
            r1 = np.where(np.isfinite(r0), r0, _response(graph, point, name, xm, fm, dtype))
            est = trunc + _noise(fp, fm, width, r0, r1, eps)
        out[name] = (grad, ((xp - xm) / 2).astype(dtype), est, ~(np.isfinite(fp) & np.isfinite(fm)), why)
    return out


def plain_extrapolate(d, t, noise):
    """The tableau entry by entry: the first entry with a strictly smaller estimate wins."""
    rows = len(d)
    best, best_step, best_err = d[-1].copy(), np.sqrt(t[-1]), np.full(np.shape(d[-1]), np.inf)
    prev, prev_noise = d, noise
    for j in range(min(finite.RICHARDSON_DEPTH, rows - 2) + 1):
        if j == 0:
            r, n = d, noise
            err = np.full(d.shape, np.inf)
            err[1:] = np.abs(d[1:] - d[:-1]) * t[1:] / (t[:-1] - t[1:]) + noise[1:]
        else:
            w = t[j:] / (t[:-j] - t[j:])
            r, n, err = np.full(d.shape, np.nan), np.full(d.shape, np.inf), np.full(d.shape, np.inf)
            r[j:] = prev[j:] + w * (prev[j:] - prev[j - 1:-1])
            n[j:] = (1.0 + w) * prev_noise[j:] + w * prev_noise[j - 1:-1]
            moved = np.maximum(np.abs(r[j + 1:] - prev[j + 1:]), np.abs(r[j + 1:] - r[j:-1]))
            err[j + 1:] = moved + n[j + 1:]
        for k in range(rows):
            better = err[k] < best_err
            best = np.where(better, r[k], best)
            best_step = np.where(better, np.sqrt(t[k]), best_step)
            best_err = np.where(better, err[k], best_err)
        prev, prev_noise = r, n
    return best, best_step, best_err


def plain_richardson(graph, point, wrt, dtype=np.float64):
    out = {}
    shape = finite._full_shape(point)
    eps = float(np.finfo(dtype).eps)
    n = finite.RICHARDSON_CANDIDATES
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        k = np.arange(n, dtype=np.float64).reshape((-1,) + (1,) * len(shape))
        nominal = finite.RICHARDSON_FIRST_STEP * np.maximum(1.0, np.abs(x.astype(np.float64))) * 0.5**k
        with np.errstate(all="ignore"):
            xs = np.concatenate([(x + nominal).astype(dtype), (x - nominal).astype(dtype)])
            f = np.broadcast_to(_f(graph, point, name, xs, dtype), xs.shape)
            xp, xm = xs[:n], xs[n:]
            fp, fm = f[:n].astype(np.float64), f[n:].astype(np.float64)
            ok = np.isfinite(fp) & np.isfinite(fm)
            why = None
            if (~ok[-1]).any():
                side, sign = (xp[-1], "+") if (~np.isfinite(fp[-1])).any() else (xm[-1], "-")
                values = evaluate(graph, {**point, name: side}, dtype)
                not_finite = ~np.isfinite(np.broadcast_to(values[graph.output], shape))
                if not_finite.any():
                    why = _note(graph, point, name, side, sign, not_finite, dtype)
            f0 = np.broadcast_to(_f(graph, point, name, x, dtype), shape)
            r = _response(graph, point, name, x, f0, dtype)  # at x, for every candidate
            each = _response(graph, point, name, xs, f, dtype)  # at every shifted point
            r0 = np.where(np.isfinite(r), r, each[:n])
            r1 = np.where(np.isfinite(r), r, each[n:])
            width = xp.astype(np.float64) - xm.astype(np.float64)
            d = np.where(ok, (fp - fm) / width, np.nan)
            value, half, err = plain_extrapolate(d, (width / 2) ** 2, _noise(fp, fm, width, r0, r1, eps))
        est = np.where(np.isnan(err), np.inf, err)
        out[name] = (value.astype(dtype), half.astype(dtype), est, ~ok[-1], why)
    return out


def plain_complex(graph, point, wrt, dtype=np.float64):
    """The complex step on the whole batch at once, every trial of its rounding model kept."""
    out = {}
    shape = finite._full_shape(point)
    blocked = finite._not_analytic(graph)
    refused = {v: f"complex step needs an analytic formula; {blocked[graph.var_nodes[v]]} is not analytic"
               for v in wrt if v in graph.var_nodes and blocked[graph.var_nodes[v]] is not None}
    if refused and len(refused) == len(wrt):
        return next(iter(refused.values()))
    values = evaluate(graph, point, dtype)
    trouble = output_trouble(graph, values)
    if trouble is not None and np.all(~np.isfinite(values[graph.output])):
        return "f is not finite at this point: " + describe_trouble(graph, trouble)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    n = len(graph.nodes)
    signs = finite._sign_patterns(2 * n)
    for name in wrt:
        x = np.broadcast_to(np.asarray(point.get(name, 0.0), dtype=dtype), shape)
        ax = np.abs(x.astype(np.float64))
        h = np.where(ax > 0, np.maximum(eps * eps * ax, tiny), eps * eps).astype(dtype)
        if name not in graph.var_nodes or name in refused:
            continue
        dep = graph.depends_on([name])
        branch, reason = finite._branch_point(graph, values, dep, shape)
        with np.errstate(all="ignore"):
            z = x + 1j * h
            f = np.broadcast_to(evaluate_output(graph, Shifted(point, name, z, dtype, dep)), shape)
        not_finite = ~np.isfinite(f) & ~branch
        if not_finite.any() and reason is None:
            t = finite.first_trouble(graph, values)
            reason = "f is not finite in complex arithmetic at " + name + " + ih" + (
                f" ({describe_trouble(graph, t)})" if t is not None else "")
        with np.errstate(all="ignore"):
            g = (f.imag / h).astype(dtype)
            moved = evaluate_output(graph, Shifted(point, name, z, dtype, dep, (signs[:, :n], signs[:, n:]),
                                                   finite.PERTURBATION))
            doubled = evaluate_output(graph, Shifted(point, name, z.real + 2j * h, dtype, dep))
            h64, g64 = np.asarray(h, dtype=np.float64), np.asarray(g, dtype=np.float64)
            dev = np.abs(moved.imag.astype(np.float64) / h64 - g64).max(axis=0)
            trunc = np.abs(doubled.imag.astype(np.float64) / (2 * h64) - g64) / 3
            total = dev / finite.PERTURBATION + eps * np.abs(g64) + tiny / h64 + trunc
        out[name] = (g, h, np.where(np.isnan(total), np.inf, total), branch | not_finite, reason)
    return out


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

ORDINARY = np.random.default_rng(7).uniform(-3, 3, 40)
SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-8, -1e-300, 0.05, 1e6, 709.7, -800.0, 1.5707963267948966, 1.000001,
           3.0, np.nan, np.inf]

CASES = [
    ("cos(sin(x**2)+3*x**2)", {}),
    ("1/x", {}),  # a pole at a point: the response at x is not finite there
    ("log(x)", {}),  # the domain ends between the candidate steps
    ("sqrt(x)", {}),  # not finite at x - h
    ("x", {}),  # nothing rounded: a response of 0, every candidate
    ("x*y + exp(x)", {"y": np.linspace(-2, 2, 55)}),  # overflow near 709.8; y batched too
    ("1 - cos(x)", {}),  # cancellation
    ("abs(x)*y", {"y": np.asarray(3.0)}),
    ("tan(x)", {}),
    ("x**20 - 1/(x-1)", {}),
    ("sin(x)", {}),
    ("sigmoid(x)*log(1+x**2)", {}),
]


def _batch(extra):
    x = np.concatenate([ORDINARY, SPECIAL])
    return {"x": x, **extra}


def _same(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _check(fast: finite.FiniteResult, plain: dict, names) -> None:
    for v in names:
        g, step, est, bad, why = plain[v]
        assert _same(fast.bad[v], bad), v
        assert fast.why.get(v) == why, (fast.why.get(v), why)
        if fast.gradient is None:
            assert np.all(bad)
            continue
        keep = ~bad  # `_finish` puts nan and inf where a cell could not run
        assert _same(np.where(keep, fast.gradient[v], 0), np.where(keep, g, 0)), v
        assert _same(np.where(keep, fast.estimate[v], 0), np.where(keep, est, 0)), v
        assert _same(fast.step[v], step), v
        assert fast.gradient[v].dtype == g.dtype


@pytest.mark.parametrize(("expr", "extra"), CASES, ids=[c[0] for c in CASES])
def test_central_is_the_plain_algorithm(expr, extra) -> None:
    graph = parse(expr)
    point = _batch(extra)
    wrt = list(graph.variables)
    _check(finite.central(graph, point, wrt), plain_central(graph, point, wrt), wrt)


@pytest.mark.parametrize(("expr", "extra"), CASES, ids=[c[0] for c in CASES])
def test_richardson_is_the_whole_tableau(expr, extra) -> None:
    graph = parse(expr)
    point = _batch(extra)
    wrt = list(graph.variables)
    _check(finite.richardson(graph, point, wrt), plain_richardson(graph, point, wrt), wrt)


COMPLEX_CASES = [
    *CASES[:4], CASES[5], CASES[6], CASES[8], CASES[9], CASES[11],
    ("asin(x/3) + acos(x/3)", {}),  # branch points at ±3
    ("y**x", {"y": np.asarray(-2.0)}),  # a negative base to a power that depends on x
    ("x**y", {"y": np.asarray(0.5)}),  # a fractional power at 0
    ("1/(1+exp(-x))", {}),  # not finite in complex arithmetic at -800
    ("abs(y)*x + sin(x*y)", {"y": np.linspace(-1, 1, 55)}),  # y is refused, x is not
]


@pytest.mark.parametrize(("expr", "extra"), COMPLEX_CASES, ids=[c[0] for c in COMPLEX_CASES])
def test_complex_step_is_the_whole_batch_at_once(expr, extra, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = parse(expr)
    point = _batch(extra)
    wrt = list(graph.variables)
    plain = plain_complex(graph, point, wrt)
    for chunk in (1 << 14, 7):
        monkeypatch.setattr(finite, "CHUNK", chunk)
        fast = finite.complex_step(graph, point, wrt)
        if isinstance(plain, str):
            assert fast.gradient is None and fast.note == plain
            continue
        for v in wrt:
            if v not in plain:  # refused: not analytic
                assert fast.bad[v].all() and fast.why[v].startswith("complex step needs an analytic formula")
        _check(fast, plain, list(plain))


def test_complex_step_says_what_the_whole_batch_says() -> None:
    """f not finite everywhere, and a branch point: the messages of the whole batch."""
    res = finite.complex_step(parse("log(x)"), {"x": np.array([-1.0, -2.0, np.nan])}, ["x"])
    assert res.gradient is None and res.note is not None
    assert res.note.startswith("f is not finite at this point")
    res = finite.complex_step(parse("sqrt(x) + x"), {"x": np.array([1.0, 0.0, 4.0])}, ["x"])
    assert res.gradient is not None and list(res.bad["x"]) == [False, True, False]
    assert res.why["x"].startswith("complex step needs an analytic formula; sqrt is not analytic at 0")


@pytest.mark.parametrize("expr", ["cos(sin(x**2)+3*x**2)", "1/x", "log(x)", "sin(x)"])
def test_one_point_and_float32(expr) -> None:
    graph = parse(expr)
    for dtype in (np.float64, np.float32):
        for x in (0.3, 0.0, 1e6, 0.05):
            point = {"x": np.asarray(x, dtype=dtype)}
            _check(finite.central(graph, point, ["x"], dtype=dtype),
                   plain_central(graph, point, ["x"], dtype), ["x"])
            _check(finite.richardson(graph, point, ["x"], dtype=dtype),
                   plain_richardson(graph, point, ["x"], dtype), ["x"])


def test_blocks_and_chunks_do_not_change_the_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = parse("cos(sin(x**2)+3*x**2) + 1/x + log(x + 3)")
    point = {"x": np.concatenate([np.random.default_rng(1).uniform(-2.9, 30, 300), SPECIAL])}
    whole = plain_richardson(graph, point, ["x"])
    for block, chunk in ((2, 7), (3, 1000), (8, 64), (31, 5), (32, 1 << 14)):
        monkeypatch.setattr(finite, "RICHARDSON_BLOCK", block)
        monkeypatch.setattr(finite, "RICHARDSON_CHUNK", chunk)
        _check(finite.richardson(graph, point, ["x"]), whole, ["x"])
    plain = plain_central(graph, point, ["x"])
    for chunk in (1, 7, 1 << 14):
        monkeypatch.setattr(finite, "CHUNK", chunk)
        _check(finite.central(graph, point, ["x"]), plain, ["x"])


def test_tableau_picks_what_the_entry_by_entry_tableau_picks() -> None:
    """Random tableaux with nan rows, infinite and zero rounding, and ties: the same entry."""
    rng = np.random.default_rng(0)
    for rows in range(1, 12):
        for trial in range(30):
            m = 37
            w = 0.2 * 0.5 ** np.arange(rows)[:, None] * (1 + rng.uniform(0, 1e-3, (rows, m)))
            d = -6.7 + rng.normal(size=(rows, m)) * 10.0 ** rng.integers(-14, 0, (rows, m))
            d[rng.uniform(size=d.shape) < 0.1] = np.nan
            if trial % 5 == 0:
                d = np.round(d, 2)  # ties
            noise = rng.choice([0.0, 1e-16, 1e-15, np.inf], (rows, m)) / w
            for got, want in zip(finite._extrapolate(d, (w / 2) ** 2, noise),
                                 plain_extrapolate(d, (w / 2) ** 2, noise)):
                assert _same(got, want), (rows, trial)


def test_two_dimensional_batch() -> None:
    graph = parse("x*y + sin(x)/y")
    point = {"x": np.linspace(-2, 2, 12).reshape(3, 4), "y": np.asarray([[1.0], [0.0], [-3.0]])}
    for fast, plain in ((finite.central, plain_central), (finite.richardson, plain_richardson)):
        res = fast(graph, point, ["x", "y"])
        assert res.gradient is not None and res.gradient["x"].shape == (3, 4)
        _check(res, plain(graph, point, ["x", "y"]), ["x", "y"])


# --------------------------------------------------------------------------------------------
# The work: evaluations of f per point
# --------------------------------------------------------------------------------------------


def _count_points(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every value of f computed, counted: lanes × points of every walk of the finite methods."""
    seen: list[int] = []
    plain = finite._evaluate_at

    def counting(graph, point, name, xs, dtype, dep=None, signs=None):
        f, why = plain(graph, point, name, xs, dtype, dep, signs)
        seen.append(int(np.size(f)))
        return f, why

    monkeypatch.setattr(finite, "_evaluate_at", counting)
    return seen


def test_central_costs_ten_evaluations_a_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """x ± h, x ± 2h, x ± h/2 and the rounding model's 4 trials at x + h (8 nodes, 3 bits + 1)."""
    seen = _count_points(monkeypatch)
    k = 5000
    finite.central(parse("cos(sin(x**2)+3*x**2)"), {"x": np.random.default_rng(0).uniform(-2, 2, k)}, ["x"])
    assert sum(seen) == 10 * k


def test_richardson_settles_most_points_in_the_first_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card formula: 8 candidate pairs, the smallest candidate's pair (whether the cell can
    run), x and 4 rounding trials: 23 evaluations a point, where the whole tableau was 64 and the
    rounding model at every shifted point 4 × 64 more."""
    seen = _count_points(monkeypatch)
    k = 5000
    res = finite.richardson(parse("cos(sin(x**2)+3*x**2)"), {"x": np.random.default_rng(0).uniform(-2, 2, k)},
                            ["x"])
    assert res.gradient is not None
    assert sum(seen) <= 24 * k


def test_richardson_goes_on_where_the_first_block_has_not_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """sin(x) at x = 1e6 changes on the scale 1, where h0 = 1e5: only the later candidates
    converge, and only that point pays for them."""
    seen = _count_points(monkeypatch)
    x = np.concatenate([np.full(99, 0.5), [1e6]])
    res = finite.richardson(parse("sin(x)"), {"x": x}, ["x"])
    assert res.gradient is not None
    assert abs(float(res.gradient["x"][-1]) - np.cos(1e6)) < 1e-9
    assert float(res.step["x"][-1]) < 1
    assert sum(seen) < 24 * 100 + 2 * 32


# --------------------------------------------------------------------------------------------
# Memory: a few arrays of the batch, the rest a chunk's worth
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["central", "richardson", "complex_step"])
def test_memory_is_a_few_arrays_of_the_batch(method: str) -> None:
    """At 200,000 points, called directly (no chunking by the methods layer): the results and a
    few flat arrays, about 50 bytes a point, plus one chunk's lanes and tableau (a few MB). The
    whole batch at once held 64 shifted copies of it for Richardson (16 GB at 10⁶ points)."""
    import tracemalloc

    k = 200_000
    point = {"x": np.random.default_rng(0).uniform(-2, 2, k)}
    graph = parse("cos(sin(x**2)+3*x**2)")
    tracemalloc.start()
    try:
        res = getattr(finite, method)(graph, point, ["x"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.gradient is not None
    assert peak < 80 * k + (16 << 20), peak
