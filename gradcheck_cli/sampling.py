"""Many points: `--sample N` draws N points from a box, reproducibly, stratified.

Each variable's interval (`--domain NAME=LO:HI`, else `DEFAULT_DOMAIN`) is cut into N equal
strata and every stratum gets exactly one draw, the strata of different variables paired by an
independent random permutation (a Latin hypercube): N points hit every N-th of every
variable's range, which independent uniform draws do not (they leave gaps and clusters). The
generator is numpy's PCG64 seeded with `--seed` (or a fresh seed, printed so the run can be
repeated).

Points where f is undefined (log of a negative number, a division by zero) are redrawn
uniformly from the whole box (their own stratum may lie wholly where f is undefined), up to
`REDRAWS` rounds; what is still undefined after that is dropped. Both are counted, and the
report says where f was undefined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import GradcheckError
from .explain import describe_trouble
from .graph import Graph, at_point, evaluate, first_trouble, some_names

DEFAULT_DOMAIN = (-2.0, 2.0)  # as WeBWorK's default; give --domain for anything else
REDRAWS = 20
MAX_SAMPLE = 10_000_000


@dataclass
class Drawn:
    points: dict[str, np.ndarray]  # v -> (N',) the points where f is finite
    seed: int
    domain: dict[str, tuple[float, float]]
    redrawn: int
    dropped: int
    undefined_where: str | None
    defined_fraction: float = 1.0  # of the first, stratified draw
    hint: str | None = None  # a --domain where f is defined, when much of the box is not


def new_seed() -> int:
    return int(np.random.SeedSequence().entropy % 2**32)  # type: ignore[operator]


def draw(
    graph: Graph,
    n: int,
    domain: Mapping[str, tuple[float, float]],
    seed: int,
    fixed: Mapping[str, float] | None = None,
    dtype: type = np.float64,
) -> Drawn:
    """N points for the variables of `graph` not in `fixed` (those keep their given value)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or n > MAX_SAMPLE:
        raise GradcheckError("usage", f"--sample takes a whole number of points from 1 to {MAX_SAMPLE:,}, "
                             f"not {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise GradcheckError("usage", f"--seed takes a whole number from 0 to {2**32 - 1}, not {seed!r}.")
    fixed = dict(fixed or {})
    for v, ends in domain.items():
        try:
            lo, hi = (float(e) for e in ends)
        except (TypeError, ValueError):
            raise GradcheckError("bad-value", f"the domain of {v} must be two numbers (LO, HI).") from None
        check_interval(v, lo, hi)
        with np.errstate(all="ignore"):
            wide = not (np.isfinite(dtype(lo)) and np.isfinite(dtype(hi)))
        if wide:
            raise GradcheckError("bad-value", f"--domain {v}={lo:g}:{hi:g} is outside the range of "
                                 f"{np.dtype(dtype).name}.")
        if v in fixed:
            raise GradcheckError("usage", f"--domain gives {v} an interval, but --at fixes it to "
                                 f"{fixed[v]:g}; give one or the other.")
        if v not in graph.var_nodes:
            raise GradcheckError(
                "unknown-variable",
                f"--domain names {some_names([v])!r}, which is not a variable of the formula "
                f"(its variables: {some_names(graph.variables)}).")
    box = {v: tuple(domain.get(v, DEFAULT_DOMAIN)) for v in graph.variables if v not in fixed}
    if not box:
        raise GradcheckError("usage", f"--sample {n} draws nothing: --at fixes every variable; "
                             "leave out the ones to draw.")
    rng = np.random.Generator(np.random.PCG64(seed))
    strata = {v: rng.permutation(n) for v in box}

    def within(v: str, index: np.ndarray) -> np.ndarray:
        lo, hi = box[v]
        u = (strata[v][index] + rng.random(len(index))) / n
        return np.asarray(lo + (hi - lo) * u, dtype=dtype)

    def anywhere(v: str, count: int) -> np.ndarray:
        lo, hi = box[v]
        return np.asarray(lo + (hi - lo) * rng.random(count), dtype=dtype)

    everyone = np.arange(n)
    points = {v: within(v, everyone) for v in box}
    points.update({v: np.full(n, x, dtype=dtype) for v, x in fixed.items()})
    redrawn = 0
    where: str | None = None
    fraction = 1.0
    for attempt in range(REDRAWS + 1):
        values = evaluate(graph, points, dtype)
        f = np.broadcast_to(values[graph.output], (n,))
        bad = np.flatnonzero(~np.isfinite(f))
        if attempt == 0:
            fraction = 1.0 - len(bad) / n
        if not len(bad):
            break
        if where is None:
            where = _describe(graph, values, int(bad[0]), points)
        if attempt == REDRAWS:
            break
        redrawn += len(bad)
        for v in box:
            points[v][bad] = anywhere(v, len(bad))
    good = np.isfinite(np.broadcast_to(evaluate(graph, points, dtype)[graph.output], (n,)))
    dropped = int((~good).sum())
    if not good.any():
        raise GradcheckError("undefined", _nowhere(graph, box, where, fixed))
    kept = {v: p[good] for v, p in points.items()}
    hint = suggest_domain(graph, box, fixed) if dropped or fraction < MOSTLY_UNDEFINED else None
    return Drawn(kept, seed, {v: (float(a), float(b)) for v, (a, b) in box.items()},
                 redrawn, dropped, where, fraction, hint)


def _describe(graph: Graph, values: Sequence[np.ndarray], k: int, points: Mapping[str, np.ndarray]) -> str:
    trouble = first_trouble(graph, at_point(values, k, np.shape(values[graph.output])))
    at = ",".join(f"{v}={float(p[k]):.6g}" for v, p in points.items())
    what = describe_trouble(graph, trouble) if trouble is not None else "f is not finite"
    return f"{what} (e.g. at {at})"


MOSTLY_UNDEFINED = 0.5  # below this defined fraction of the box, a better --domain is suggested
_GRID = np.concatenate([-np.logspace(4, -3, 160), [0.0], np.logspace(-3, 4, 160)])


def suggest_domain(graph: Graph, box: Mapping[str, tuple[float, float]],
                   fixed: Mapping[str, float] | None = None) -> str | None:
    """A --domain where f is defined, found variable by variable: scan each variable over a
    wide grid (−10⁴…10⁴, log-spaced, and the box itself) with the others at the centre of the
    box so far, take the run of defined values nearest the box, sharpen its ends by bisection,
    and keep its overlap with the box (or, if none, a box-wide interval inside the run). The
    result is kept only if f is defined at most of 64 points drawn from it. Cheap: a few
    thousand evaluations of f, batched."""
    names = list(box)
    if not names or len(names) > 8:
        return None
    fixed = dict(fixed or {})
    trial = {v: (float(a), float(b)) for v, (a, b) in box.items()}
    for _ in range(2):  # a second sweep sees the other variables in their new intervals
        for v in names:
            found = _defined_interval(graph, v, trial, fixed)
            if found is not None:
                trial[v] = found
        if _mostly_defined(graph, trial, fixed):
            if all(trial[v] == tuple(map(float, box[v])) for v in names):
                return None
            return "--domain " + ",".join(f"{v}={a:.6g}:{b:.6g}" for v, (a, b) in trial.items())
    return _positive_hint(graph, box)


def _f(graph: Graph, pts: Mapping[str, np.ndarray], m: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.isfinite(np.broadcast_to(evaluate(graph, pts)[graph.output], (m,)))


def _mostly_defined(graph: Graph, trial: Mapping[str, tuple[float, float]],
                    fixed: Mapping[str, float]) -> bool:
    rng = np.random.Generator(np.random.PCG64(1))
    pts = {v: rng.uniform(a, b, 64) for v, (a, b) in trial.items()}
    pts.update({v: np.full(64, x) for v, x in fixed.items()})
    return bool(_f(graph, pts, 64).mean() > 0.5)


def _defined_interval(graph: Graph, v: str, trial: Mapping[str, tuple[float, float]],
                      fixed: Mapping[str, float]) -> tuple[float, float] | None:
    lo, hi = trial[v]
    grid = np.unique(np.concatenate([_GRID, np.linspace(lo, hi, 65)]))
    m = len(grid)
    pts = {w: np.full(m, (a + b) / 2) for w, (a, b) in trial.items()}
    pts.update({w: np.full(m, x) for w, x in fixed.items()})
    pts[v] = grid
    ok = _f(graph, pts, m)
    if not ok.any():
        return None
    # runs of defined grid values: [start, end] index pairs
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2] - 1))
    centre = (lo + hi) / 2

    def distance(run: tuple[int, int]) -> float:
        a, b = grid[run[0]], grid[run[1]]
        return 0.0 if a <= centre <= b else min(abs(a - centre), abs(b - centre))

    i, j = min(runs, key=lambda r: (distance(r), -(grid[r[1]] - grid[r[0]])))

    def edge(inside: int, outside: int) -> float:  # bisect between a defined and an undefined value
        a, b = float(grid[inside]), float(grid[outside])
        for _ in range(40):
            mid = (a + b) / 2
            probe = {w: np.full(1, (c + d) / 2) for w, (c, d) in trial.items()}
            probe.update({w: np.full(1, x) for w, x in fixed.items()})
            probe[v] = np.full(1, mid)
            a, b = (mid, b) if _f(graph, probe, 1)[0] else (a, mid)
        return a

    a = edge(i, i - 1) if i > 0 else float(grid[i])
    b = edge(j, j + 1) if j + 1 < m else float(grid[j])
    width = hi - lo
    nudge = 1e-3 * min(width, b - a)
    a, b = a + (nudge if i > 0 else 0.0), b - (nudge if j + 1 < m else 0.0)
    if a < hi and b > lo and min(b, hi) - max(a, lo) > 1e-6 * width:
        return max(a, lo), min(b, hi)
    if b <= lo:  # the run lies below the box
        return max(a, b - width), b
    return a, min(b, a + width)


def _nowhere(graph: Graph, box: Mapping[str, tuple[float, float]], where: str | None,
             fixed: Mapping[str, float]) -> str:
    shown = ", ".join(f"{v}={lo:g}:{hi:g}" for v, (lo, hi) in box.items())
    hint = suggest_domain(graph, box, fixed)
    return (f"f is undefined at every point drawn from the box {shown} after {REDRAWS} rounds of redraws: "
            f"{where or 'f is not finite'}. Give a --domain where f is defined"
            + (f", e.g. {hint}" if hint else "") + ".")


def _positive_hint(graph: Graph, box: Mapping[str, tuple[float, float]]) -> str | None:
    """A sub-box that works, found by shrinking each variable's interval to its upper or lower
    half in turn (a coarse search: enough for sqrt(x - 5) or log(-x) on the default box)."""
    names = list(box)
    if not names or len(names) > 8:
        return None
    rng = np.random.Generator(np.random.PCG64(0))
    for scale in (10.0, 100.0, 1000.0):
        for sign in (1.0, -1.0):
            trial = {v: (min(sign * lo * scale, sign * hi * scale), max(sign * lo * scale, sign * hi * scale))
                     for v, (lo, hi) in box.items()}
            trial = {v: (max(a, 0.0) if sign > 0 else a, b if sign > 0 else min(b, 0.0))
                     for v, (a, b) in trial.items()}
            pts = {v: rng.uniform(a, b, 64) for v, (a, b) in trial.items()}
            f = np.broadcast_to(evaluate(graph, pts)[graph.output], (64,))
            if np.isfinite(f).mean() > 0.5:
                return " ".join(f"--domain {v}={a:g}:{b:g}" for v, (a, b) in trial.items())
    return None


def check_interval(name: str, lo: float, hi: float) -> None:
    """A --domain interval must be finite, non-empty, and of finite width."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise GradcheckError("bad-value", f"--domain {name}: the ends must be finite numbers, not {lo}:{hi}.")
    if not lo < hi:
        raise GradcheckError("bad-value", f"--domain {name}={lo:g}:{hi:g} is empty: LO must be below HI.")
    if not math.isfinite(hi - lo):
        raise GradcheckError("bad-value", f"--domain {name}={lo:g}:{hi:g} is wider than float64 can "
                             "hold (HI - LO overflows); choose a narrower interval.")


def parse_domain(items: Sequence[str]) -> dict[str, tuple[float, float]]:
    """`x=-3:3,y=0.1:5` (repeatable) -> {"x": (-3, 3), "y": (0.1, 5)}, strictly."""
    from .inputs import parse_decimal, parse_name  # the one strict reader of numbers

    out: dict[str, tuple[float, float]] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            name, eq, rest = part.partition("=")
            name = parse_name(name.strip(), "--domain")
            lo_text, colon, hi_text = rest.partition(":")
            if not eq or not colon:
                raise GradcheckError("bad-value", f"--domain expects NAME=LO:HI, got {part!r}.")
            lo = parse_decimal(lo_text.strip(), f"the lower end for {name}")
            hi = parse_decimal(hi_text.strip(), f"the upper end for {name}")
            check_interval(name, lo, hi)
            if name in out:
                raise GradcheckError("bad-value", f"--domain gives {name} twice.")
            out[name] = (lo, hi)
    return out
