"""Special points: where a formula and a claimed derivative typically differ (homework part 3).

Random points rarely land where a wrong answer shows: a claim that is off only near a zero of a
denominator, a log or sqrt argument at 0, an asin argument at ±1, the kink of an abs, a tie in a
max. `special_points` finds such *locations* inside the sampling box and returns each with a
point on either side of it (offsets 1e-6 and 1e-3 of the location's scale), so the check
evaluates the formula and the claims exactly where they are most likely to part.

How a location is found (numerically, on the graph, never from the user's text):

- every *target* is a function u of node values whose sign change or zero marks a special
  point: the denominator of a division, the base of a negative or fractional power, the
  argument of log/sqrt/cbrt, asin(u) at u = ±1, cos(u) for tan/sec, the argument of
  abs/relu/leaky_relu/elu, hard_swish's u ± 3, the difference of max/min arguments, and — one
  per graph, last in priority — whether the output is finite (the edge of the graph's
  domain). A zero target is followed into its factors (a zero of u*v, u/v, u**2, sqrt(u) is a
  zero of u), so 1/((x - 1)*(x - 1)) is found although its denominator never changes sign;
- *lines* run through the sampled points varying one variable at a time across the box (at
  most `LINES_PER_VARIABLE` distinct lines per variable and `MAX_LINES` in all, fewer for a
  large graph, chosen by `rng`); each line is a coarse grid of `GRID` + 1 points plus the
  sampled point's own coordinate; one walk per graph evaluates every target on every line;
- a sign change between grid neighbours is a *bracket*, refined (all brackets at once, one
  walk per graph and step, on the part of the graph the targets need) by false position with
  quartering until it is a few ulps wide (1e-15 of the box near 0); a grid value exactly 0
  is a location as it is. A bracket whose u does not go to 0 (a sign change through a pole or a
  jump) is dropped. An edge of a graph's domain (u = ±1) is cut in sevenths to 1e-12, and
  not refined at all when an op's candidate on the same line lies in its bracket (log(x)'s
  edge is log's zero);
- the candidates are taken round-robin over targets (every target's first one before any
  target's second), at most `most`; locations closer than 1e-9 of their scale on one line are
  merged (their reasons joined).

Bounded: the grid's node evaluations per graph (`WORK`), lines, targets (`MAX_TARGETS`),
candidates (`most`), refinement steps (`ITERATIONS`) and returned points (`most`). Under a
given `rng` (or its default, seed 0) the result is deterministic; `budget_seconds` is only a
safety net: when it runs out, the work done so far is returned and `timed_out` says so (then
the result may depend on the machine's speed). Nothing here raises on nan or inf: points
where a value is not finite just do not bracket anything.

SymPy's solvers are not used: they cannot be interrupted in this process (they run in the
budgeted worker elsewhere), and importing SymPy alone costs more than the default budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .explain import node_texts
from .graph import Graph, Node
from .interpret import Values, walk
from .rules import RULES

GRID = 64  # intervals of the coarse grid on a line
LINES_PER_VARIABLE = 8
MAX_LINES = 64
WORK = 20_000_000  # nodes × points the coarse grid of one graph may evaluate
MAX_TARGETS = 4096  # targets scanned on the grid, over all graphs
ITERATIONS = 40  # refinement steps (each shrinks a bracket at least fourfold)
ULPS = 4  # a bracket this many units in the last place wide is a location
XTOL = 1e-15  # ... or this narrow relative to the box (up to 1), for a location at or near 0
EDGE_XTOL = 1e-12  # an edge of a graph's domain (found by bisection alone), relative
VALLEY = 0.05  # a local minimum of |u| on the grid below this much of |u| on its line is a suspect
VALLEY_XTOL = 1e-9  # how far (relative) a valley is followed down
_EPS = float(np.finfo(np.float64).eps)
MERGE = 1e-9  # locations this close (relative) on one line are one
POLE = 1e-6  # |u| at a refined sign change, relative to |u| on its line, below which it is a zero
SIDES = (1e-6, 1e-3)  # offsets of the side points, relative to the location's scale
FACTORS = 8  # factors followed into one zero target's argument
CHUNK = 256  # targets whose grid values are stacked at once

Fn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Location:
    """One special point: `variable` at `value`, the others at `at`."""

    variable: str
    value: float
    at: dict[str, float]  # the whole point (the location itself)
    why: str
    graph: int  # the graph whose target found it (the first, when merged)
    node: int  # that graph's node (the division, the log, the abs, ...)
    exact: bool  # the target's value is exactly 0 there (else: bracketed to a few ulps, or a
    # minimum of |u| as good as 0: see `why`)


@dataclass
class SpecialPoints:
    """M points (each variable of `points` → (M,) float64), location by location: the location
    itself, then its sides (-1e-6, +1e-6, -1e-3, +1e-3 of its scale) where they are in the box.

    - `why[m]`: a short reason for point m;
    - `offset[m]`: its signed offset from its location along the location's variable (0 for
      the location itself); `location[m]`: the index of its location in `locations`;
    - `defined[g, m]`: whether graph g's output is finite at point m (graph 0 is the formula:
      a point where it is not cannot be judged, and the check should leave it out or count it
      as undefined rather than refuse the run);
    - `truncated`: more was found than `most` allows; `timed_out`: the budget ran out first.
    """

    points: dict[str, np.ndarray]
    why: list[str] = field(default_factory=list)
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    location: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    locations: list[Location] = field(default_factory=list)
    defined: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    truncated: bool = False
    timed_out: bool = False
    elapsed: float = 0.0

    def __len__(self) -> int:
        return len(self.why)

    def where_defined(self, graph: int = 0) -> SpecialPoints:
        """Only the points where graph `graph` (0: the formula) is finite; `location` still
        indexes the same `locations` (a location where f is undefined keeps its entry, so the
        check can say "the claim is defined at x = 1 where f is not")."""
        keep = self.defined[graph] if len(self.defined) else np.zeros(len(self), dtype=bool)
        return SpecialPoints({v: p[keep] for v, p in self.points.items()},
                             [w for w, k in zip(self.why, keep) if k], self.offset[keep],
                             self.location[keep], self.locations, self.defined[:, keep],
                             self.truncated, self.timed_out, self.elapsed)

    def appended_to(self, points: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """`points` (the sample, K each) followed by these M points: each variable as one float64
        array (K + M,), so point K + m is `why[m]`."""
        return {v: np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)),
                                   self.points.get(v, np.zeros(0))]) for v, p in points.items()}


@dataclass
class _Target:
    graph: int
    node: int  # the node the reason names
    inputs: tuple[int, ...]  # u = fn(*values of inputs)
    fn: Fn
    text: Callable[[list[str]], str]  # the reason, given the graph's node texts
    zero: bool = True  # u is a continuous function whose zeros matter (False: an indicator)
    switch: bool = False  # an n-ary max/min: look for a change of the argument that wins


@dataclass
class _Candidate:
    target: int
    line: int
    a: float  # exact: the location; bracket: its ends, u of opposite signs at a and b
    b: float
    ua: float
    ub: float
    scale: float  # max |u| on the line (for telling a zero from a pole)
    exact: bool
    # when not exact: "bracket" (a sign change in [a, b]); "valley" (a local minimum of |u|
    # in [a, b], u of one sign: perhaps a zero of even order); "minimum" (a valley refined to
    # a point where |u| is as good as 0)
    kind: str = "bracket"


def special_points(
    graphs: Sequence[Graph],
    points: Mapping[str, Any],
    domain: Mapping[str, tuple[float, float]],
    *,
    budget_seconds: float = 1.0,
    most: int = 64,
    rng: np.random.Generator | int | None = None,
    labels: Sequence[str] | None = None,
) -> SpecialPoints:
    """Points inside the box `domain` near which `graphs` (the formula's, then each claim's)
    are singular, undefined on one side or not smooth, with a point on each side; see the
    module's docstring. `points` is the sample (each variable (K,) or a scalar); a variable
    without a finite interval in `domain` keeps its sampled values. At most `most` points.
    `labels` names the graphs in reasons (default: "f", then "claim 1", "claim 2", ...)."""
    started = time.perf_counter()
    deadline = started + max(0.0, float(budget_seconds))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
    pts = _as_arrays(points)
    names = list(pts)
    empty = SpecialPoints({v: np.zeros(0) for v in names},
                          defined=np.zeros((len(graphs), 0), dtype=bool))
    box = {v: (float(lo), float(hi)) for v, (lo, hi) in _intervals(domain).items() if v in pts}
    k_points = len(next(iter(pts.values()))) if pts else 0
    most = max(0, int(most))
    usable = [g for g, graph in enumerate(graphs) if all(v in pts for v in graph.variables)]
    if not box or k_points == 0 or most == 0 or not usable:
        empty.elapsed = time.perf_counter() - started
        return empty
    given = list(labels or ())
    labels = [given[g] if g < len(given) else "f" if g == 0 else f"claim {g}" for g in range(len(graphs))]

    targets: list[_Target] = []
    for g in usable:
        targets.extend(_targets(graphs[g], g, set(box)))
    ops = [t for t in targets if t.zero or t.switch]
    if not ops:  # nothing special: no walk at all
        empty.elapsed = time.perf_counter() - started
        return empty
    # one indicator per graph (where its output stops being finite), after every op target
    targets = ops[:MAX_TARGETS] + [_indicator(graphs[g], g, labels[g]) for g in usable]
    relevant = _relevant(graphs, targets, box)
    lines = _lines(pts, names, relevant, box, k_points, gen)
    if not lines.k.size:
        empty.elapsed = time.perf_counter() - started
        return empty

    timed_out = False
    candidates: list[_Candidate] = []
    for g in usable:
        if time.perf_counter() > deadline:
            timed_out = True
            break
        mine = [i for i, t in enumerate(targets) if t.graph == g]
        candidates.extend(_scan(graphs[g], targets, mine, pts, lines, box))
    candidates = _without_redundant_edges(candidates, targets)
    chosen = _choose(candidates, most)
    descended, late = _descend(graphs, targets, chosen, pts, lines, box, deadline)
    timed_out |= late
    finished, late = _refine(graphs, targets, descended, pts, lines, box, deadline)
    timed_out |= late
    found = _locate(graphs, targets, finished, lines, box)
    result = _assemble(graphs, usable, found, pts, lines, box, most, names)
    result.truncated = result.truncated or len(candidates) > len(chosen) or len(ops) > MAX_TARGETS
    result.timed_out = timed_out
    result.elapsed = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _as_arrays(points: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every variable as a float64 array (K,), scalars broadcast; {} if they do not broadcast."""
    try:
        arrays = [np.asarray(p, dtype=np.float64) for p in points.values()]
        shaped = np.broadcast_arrays(*(np.ravel(a) if a.ndim else a for a in arrays)) if arrays else []
    except (TypeError, ValueError):
        return {}
    return {v: np.atleast_1d(np.array(a, dtype=np.float64)) for v, a in zip(points, shaped)}


def _intervals(domain: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    out = {}
    for v, ends in (domain or {}).items():
        try:
            lo, hi = (float(e) for e in ends)
        except (TypeError, ValueError):
            continue
        if math.isfinite(lo) and math.isfinite(hi) and lo < hi and math.isfinite(hi - lo):
            out[v] = (lo, hi)
    return out


def _scale(t: float, lo: float, hi: float) -> float:
    """The length a relative offset at t is relative to: |t|, but at least the box's width (up
    to 1), so offsets at t = 0 are not 0 and a tiny box gets offsets that fit."""
    return max(abs(t), min(1.0, hi - lo))


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def _sub(c: float) -> Fn:
    return (lambda a: a - c) if c else (lambda a: a)


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a - b


def _cos(a: np.ndarray) -> np.ndarray:
    return np.cos(a)


def _sin(a: np.ndarray) -> np.ndarray:
    return np.sin(a)


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), 1.0, -1.0)


def _equals(c: float) -> str:
    return "0" if c == 0 else f"{c:g}"


# ops whose value is 0 exactly where their (first) argument is: a zero of the argument's
# factors is a zero of the argument
_ZERO_WITH_ARG = {"neg", "sqrt", "cbrt", "abs", "sinh", "tanh", "asin", "atan", "asinh", "atanh", "erf"}


class _Constants:
    """The interpretation that evaluates only what depends on no variable (None elsewhere)."""

    def var(self, i: int, node: Node) -> None:
        return None

    def const(self, i: int, node: Node) -> float:
        return node.constant_value()

    def op(self, i: int, node: Node, args: tuple[Any, ...]) -> Any:
        if any(a is None for a in args):
            return None
        with np.errstate(all="ignore"):
            v = np.asarray(RULES[node.op].value(*(np.asarray(a, dtype=np.float64) for a in args)))
        return float(v) if v.ndim == 0 else None


def _targets(graph: Graph, g: int, varied: set[str]) -> list[_Target]:
    """The targets of one graph, in node order (a zero target's factors right after it)."""
    dep = graph.depends_on([v for v in graph.variables if v in varied])
    nodes = graph.nodes
    constants: list[Any] | None = None
    out: list[_Target] = []
    seen: set[tuple[int, float]] = set()

    def zero(arg: int, node: int, c: float, role: str) -> None:
        """u = value(arg) - c; `role` says what u is, with {u} and {node} to fill in."""
        if not dep[arg] or (arg, c) in seen:
            return
        seen.add((arg, c))
        eq = _equals(c)
        out.append(_Target(g, node, (arg,), _sub(c),
                           lambda t, arg=arg, node=node: role.format(u=f"{t[arg]} = {eq}", node=t[node])))
        if c == 0:
            factors(arg, node, role)

    def factors(arg: int, node: int, role: str) -> None:
        found: list[int] = []
        work = [arg]
        while work and len(found) < FACTORS:
            i = work.pop()
            n = nodes[i]
            inner: list[int] = []
            if n.op == "mul":
                inner = list(n.args)
            elif n.op == "div":
                inner = [n.args[0]]
            elif n.op in _ZERO_WITH_ARG:
                inner = [n.args[0]]
            elif n.op == "pow" and _exponent(n) > 0:
                inner = [n.args[0]]
            for a in reversed(inner):
                if dep[a]:
                    work.append(a)
                    found.append(a)
        for f in found[:FACTORS]:
            if (f, 0.0) in seen:
                continue
            seen.add((f, 0.0))
            out.append(_Target(g, node, (f,), _sub(0.0),
                               lambda t, f=f, arg=arg, node=node:
                               f"{t[f]} = 0 makes " + role.format(u=f"{t[arg]} = 0", node=t[node])))

    def _exponent(n: Node) -> float:
        nonlocal constants
        e = n.args[1]
        if nodes[e].op == "const":
            return nodes[e].constant_value()
        if dep[e]:
            return math.nan
        if constants is None:
            constants = walk(graph, _Constants())
        value = constants[e]
        return math.nan if value is None else float(value)

    for i, n in enumerate(nodes):
        op, args = n.op, n.args
        if not args or not dep[i]:
            continue
        if op == "div":
            zero(args[1], i, 0.0, "{u} in the denominator of {node}")
        elif op == "pow":
            e = _exponent(n)
            if e < 0:
                zero(args[0], i, 0.0, "{u} in the base of {node} (a negative power)")
            elif not (e >= 0 and float(e).is_integer()):
                zero(args[0], i, 0.0, "{u} in the base of {node} (undefined below 0)")
        elif op in ("log", "log2", "log10"):
            zero(args[0], i, 0.0, "{u} in {node} (log of 0, undefined below)")
        elif op == "sqrt":
            zero(args[0], i, 0.0, "{u} in {node} (the edge of its domain)")
        elif op == "cbrt":
            zero(args[0], i, 0.0, "{u} in {node} (an infinite slope)")
        elif op in ("asin", "acos"):
            zero(args[0], i, 1.0, "{u} in {node} (the edge of its domain)")
            zero(args[0], i, -1.0, "{u} in {node} (the edge of its domain)")
        elif op == "atanh":
            zero(args[0], i, 1.0, "{u} in {node} (a pole)")
            zero(args[0], i, -1.0, "{u} in {node} (a pole)")
        elif op == "acosh":
            zero(args[0], i, 1.0, "{u} in {node} (the edge of its domain)")
        elif op in ("asec", "acsc"):
            zero(args[0], i, 1.0, "{u} in {node} (the edge of its domain)")
            zero(args[0], i, -1.0, "{u} in {node} (the edge of its domain)")
            zero(args[0], i, 0.0, "{u} in {node} (1/0 inside)")
        elif op == "acot":
            zero(args[0], i, 0.0, "{u} in {node} (a jump)")
        elif op in ("tan", "sec", "cot", "csc"):
            if dep[args[0]]:
                trig, name = (_cos, "cos") if op in ("tan", "sec") else (_sin, "sin")
                out.append(_Target(g, i, (args[0],), trig, lambda t, a=args[0], i=i, name=name:
                                   f"{name}({t[a]}) = 0: a pole of {t[i]}"))
        elif op == "atan2":
            zero(args[0], i, 0.0, "{u} in {node} (its branch cut, for a negative second argument)")
        elif op in ("abs", "relu", "leaky_relu", "elu"):
            zero(args[0], i, 0.0, "{u}: the kink of {node}")
        elif op == "hard_swish":
            zero(args[0], i, 3.0, "{u}: a kink of {node}")
            zero(args[0], i, -3.0, "{u}: a kink of {node}")
        elif op in ("max", "min"):
            live = [a for a in args if dep[a]]
            if not live:
                continue
            if len(args) == 2:
                a, b = args
                out.append(_Target(g, i, (a, b), _difference,
                                   lambda t, a=a, b=b, i=i: f"{t[a]} = {t[b]}: a tie in {t[i]}"))
            else:
                out.append(_Target(g, i, tuple(args), _difference, lambda t: "", switch=True))
        elif not RULES[op].smooth and RULES[op].gap is not None:
            # a non-smooth op this module does not know: its gap is 0 at its kink
            rule = RULES[op]
            out.append(_Target(g, i, tuple(args), _gap_fn(rule),
                               lambda t, i=i: f"a kink of {t[i]}"))
    return out


def _gap_fn(rule: Any) -> Fn:
    def fn(*args: np.ndarray) -> np.ndarray:
        g, _ = rule.gap(args, tuple(np.zeros((1, *np.shape(a))) for a in args))
        return np.asarray(g, dtype=np.float64)
    return fn


def _indicator(graph: Graph, g: int, label: str) -> _Target:
    return _Target(g, graph.output, (graph.output,), _finite,
                   lambda t: f"the edge of where {label} is defined", zero=False)


def _relevant(graphs: Sequence[Graph], targets: list[_Target], box: Mapping[str, Any]) -> list[str]:
    """The varied variables some op target depends on, in graph order."""
    out: dict[str, None] = {}
    by_graph: dict[int, set[int]] = {}
    for t in targets:
        if t.zero or t.switch:
            by_graph.setdefault(t.graph, set()).update(t.inputs)
    for g, inputs in by_graph.items():
        graph = graphs[g]
        top = max(inputs)
        needed = _ancestors(graph, inputs)
        for i in range(top + 1):
            n = graph.nodes[i]
            if needed[i] and n.op == "var" and n.name in box:
                out[n.name] = None  # type: ignore[index]
    return list(out)


def _ancestors(graph: Graph, nodes: set[int] | Sequence[int]) -> list[bool]:
    needed = [False] * len(graph.nodes)
    for i in nodes:
        needed[i] = True
    for i in range(max(nodes, default=-1), -1, -1):
        if needed[i]:
            for a in graph.nodes[i].args:
                needed[a] = True
    return needed


# --------------------------------------------------------------------------------------------
# Lines and the coarse grid
# --------------------------------------------------------------------------------------------


@dataclass
class _Lines:
    k: np.ndarray  # (L,) the sampled point each line goes through
    v: list[str]  # (L,) the variable it varies
    own: np.ndarray  # (L,) that point's coordinate along v


def _lines(pts: Mapping[str, np.ndarray], names: list[str], relevant: list[str],
           box: Mapping[str, tuple[float, float]], k_points: int, gen: np.random.Generator) -> _Lines:
    """Distinct lines through sampled points, round-robin over the relevant variables (when
    there are more than MAX_LINES of those, a random MAX_LINES of them, one line each)."""
    order = gen.permutation(k_points)[: 4 * LINES_PER_VARIABLE]
    if len(relevant) > MAX_LINES:
        pick = np.sort(gen.choice(len(relevant), MAX_LINES, replace=False))
        relevant = [relevant[i] for i in pick]
    per_variable = max(1, min(LINES_PER_VARIABLE, MAX_LINES // max(1, len(relevant))))
    rows = np.stack([pts[w][order] for w in names], axis=1)  # (S, V)
    column = {w: j for j, w in enumerate(names)}
    # a line along v through a point whose other box coordinates are outside the box (or nan)
    # would leave it: such points carry no line
    outside = np.zeros(rows.shape, dtype=bool)
    for w, (lo, hi) in box.items():
        outside[:, column[w]] = ~((rows[:, column[w]] >= lo) & (rows[:, column[w]] <= hi))
    count = outside.sum(axis=1)
    per: list[list[int]] = []
    for v in relevant:
        seen: set[bytes] = set()
        mine: list[int] = []
        for s, k in enumerate(order):
            if count[s] - outside[s, column[v]]:
                continue
            key = rows[s].copy()
            key[column[v]] = 0.0
            b = key.tobytes()
            if b in seen:
                continue
            seen.add(b)
            mine.append(int(k))
            if len(mine) == per_variable:
                break
        per.append(mine)
    ks: list[int] = []
    vs: list[str] = []
    for r in range(per_variable):
        for v, mine in zip(relevant, per):
            if r < len(mine):
                ks.append(mine[r])
                vs.append(v)
    k = np.asarray(ks, dtype=np.intp)
    own = np.asarray([pts[v][kk] for v, kk in zip(vs, ks)], dtype=np.float64)
    return _Lines(k, vs, own)


def _grid(lines: _Lines, which: list[int], box: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """(len(which), GRID + 2): each line's grid, sorted, with its own point."""
    out = np.empty((len(which), GRID + 2))
    for r, li in enumerate(which):
        lo, hi = box[lines.v[li]]
        out[r, :-1] = np.linspace(lo, hi, GRID + 1)
        out[r, -1] = min(max(lines.own[li], lo), hi)
    out.sort(axis=1)
    return out


def _batch(graph: Graph, pts: Mapping[str, np.ndarray], lines: _Lines, which: Sequence[int],
           ts: np.ndarray, needed: Sequence[bool] | None = None) -> dict[str, np.ndarray]:
    """The points of `ts` (len(which), P) on the lines `which`: every (needed) variable of the
    graph as an array (len(which) * P,)."""
    rows, p = ts.shape
    ks = lines.k[list(which)]
    vs = np.asarray([lines.v[li] for li in which], dtype=object)
    out = {}
    for v, i in graph.var_nodes.items():
        if needed is not None and not needed[i]:
            continue
        arr = np.repeat(pts[v][ks], p).reshape(rows, p)
        mask = vs == v
        if mask.any():
            arr[mask] = ts[mask]
        out[v] = arr.reshape(-1)
    return out


class _Some(Values):
    """Values, but only of the nodes marked `needed` (None for the others)."""

    def __init__(self, point: Mapping[str, Any], needed: Sequence[bool]) -> None:
        super().__init__(point, np.float64)
        self.needed = needed

    def var(self, i: int, node: Node) -> Any:
        return super().var(i, node) if self.needed[i] else None

    def const(self, i: int, node: Node) -> Any:
        return super().const(i, node) if self.needed[i] else None

    def op(self, i: int, node: Node, args: tuple[np.ndarray, ...]) -> Any:
        return super().op(i, node, args) if self.needed[i] else None


def _values(graph: Graph, point: Mapping[str, np.ndarray], inputs: set[int]) -> list[Any]:
    needed = _ancestors(graph, inputs)
    return walk(graph, _Some(point, needed), upto=max(inputs), keep=inputs)


def _u(target: _Target, values: Sequence[Any], n: int, inputs: tuple[int, ...] | None = None) -> np.ndarray:
    with np.errstate(all="ignore"):
        u = target.fn(*(np.asarray(values[a], dtype=np.float64) for a in (inputs or target.inputs)))
    return np.broadcast_to(np.asarray(u, dtype=np.float64), (n,))


def _scan(graph: Graph, targets: list[_Target], mine: list[int], pts: Mapping[str, np.ndarray],
          lines: _Lines, box: Mapping[str, tuple[float, float]]) -> list[_Candidate]:
    """Every target of one graph on its lines' grids: exact zeros and sign-change brackets."""
    which = [li for li, v in enumerate(lines.v) if v in graph.var_nodes]
    cap = max(1, int(WORK // (max(1, len(graph)) * (GRID + 2))))
    which = which[:cap]
    if not which or not mine:
        return []
    ts = _grid(lines, which, box)
    rows, p = ts.shape
    point = _batch(graph, pts, lines, which, ts)
    inputs = {a for i in mine for a in targets[i].inputs}
    values = _values(graph, point, inputs)
    out: list[_Candidate] = []
    plain = [i for i in mine if not targets[i].switch]
    for start in range(0, len(plain), CHUNK):
        chunk = plain[start:start + CHUNK]
        u = np.stack([_u(targets[i], values, rows * p) for i in chunk]).reshape(len(chunk), rows, p)
        out.extend(_candidates(u, chunk, which, ts, np.array([targets[i].zero for i in chunk])))
    for i in mine:
        if targets[i].switch:
            out.extend(_switches(graph, targets, i, values, which, ts))
    return out


def _candidates(u: np.ndarray, chunk: list[int], which: list[int], ts: np.ndarray,
                valleys: np.ndarray) -> list[_Candidate]:
    """(T, L, P) grid values → candidates: isolated exact zeros, sign changes, and (for the
    targets marked in `valleys`) local minima of |u| small against |u| on the line. A target
    constant along a line (it does not depend on the line's variable) is skipped at once."""
    n_t, n_l, p = u.shape
    flat = u.reshape(n_t * n_l, p)
    rows = np.flatnonzero(~(flat == flat[:, :1]).all(axis=1))
    if not len(rows):
        return []
    u = flat[rows]
    tgt, line = np.divmod(rows, n_l)
    fin = np.isfinite(u)
    au = np.abs(u)
    s = np.where(fin, np.sign(u), 0.0)  # 0: zero or not finite
    scale = np.max(np.where(fin, au, 0.0), axis=-1)
    change = s[:, :-1] * s[:, 1:] < 0
    nonzero = s != 0
    beside = np.zeros_like(nonzero)
    beside[:, 1:] |= nonzero[:, :-1]
    beside[:, :-1] |= nonzero[:, 1:]
    zero = (u == 0) & beside
    out = []
    for r, j in zip(*np.nonzero(zero)):
        x = float(ts[line[r], j])
        out.append(_Candidate(chunk[tgt[r]], which[line[r]], x, x, 0.0, 0.0, float(scale[r]), True))
    for r, j in zip(*np.nonzero(change)):
        li = line[r]
        out.append(_Candidate(chunk[tgt[r]], which[li], float(ts[li, j]), float(ts[li, j + 1]),
                              float(u[r, j]), float(u[r, j + 1]), float(scale[r]), False))
    if valleys.any():
        m, left, right = au[:, 1:-1], au[:, :-2], au[:, 2:]
        same = (s[:, 1:-1] == s[:, :-2]) & (s[:, 1:-1] == s[:, 2:]) & nonzero[:, 1:-1]
        low = (m <= left) & (m <= right) & ((m < left) | (m < right)) & (m <= VALLEY * scale[:, None])
        for r, j in zip(*np.nonzero(valleys[tgt][:, None] & same & low)):
            li = line[r]
            out.append(_Candidate(chunk[tgt[r]], which[li], float(ts[li, j]), float(ts[li, j + 2]),
                                  float(u[r, j]), float(u[r, j + 2]), float(scale[r]), False, "valley"))
    return out


def _switches(graph: Graph, targets: list[_Target], i: int, values: Sequence[Any], which: list[int],
              ts: np.ndarray) -> list[_Candidate]:
    """An n-ary max/min: where the winning argument changes between grid neighbours, a bracket
    on the difference of the two winners (a new pair target)."""
    target = targets[i]
    rows, p = ts.shape
    node = graph.nodes[target.node]
    stack = np.stack([np.broadcast_to(np.asarray(values[a], dtype=np.float64), (rows * p,))
                      for a in target.inputs]).reshape(len(target.inputs), rows, p)
    ok = np.all(np.isfinite(stack), axis=0)
    pick = np.argmax(stack, axis=0) if node.op == "max" else np.argmin(stack, axis=0)
    switch = ok[:, :-1] & ok[:, 1:] & (pick[:, :-1] != pick[:, 1:])
    pairs: dict[tuple[int, int], int] = {}
    out = []
    for li, j in zip(*np.nonzero(switch)):
        a, b = target.inputs[pick[li, j]], target.inputs[pick[li, j + 1]]
        if (a, b) not in pairs:
            pairs[(a, b)] = len(targets)
            targets.append(_Target(target.graph, target.node, (a, b), _difference,
                                   lambda t, a=a, b=b, n=target.node: f"{t[a]} = {t[b]}: a tie in {t[n]}"))
        ua = float(stack[pick[li, j], li, j] - stack[pick[li, j + 1], li, j])
        ub = float(stack[pick[li, j], li, j + 1] - stack[pick[li, j + 1], li, j + 1])
        scale = float(np.max(np.abs(stack[pick[li, j]] - stack[pick[li, j + 1]])[li]))
        if ua == 0 or ub == 0:
            x = float(ts[li, j] if ua == 0 else ts[li, j + 1])
            out.append(_Candidate(pairs[(a, b)], which[li], x, x, 0.0, 0.0, scale, True))
        elif ua * ub < 0:
            out.append(_Candidate(pairs[(a, b)], which[li], float(ts[li, j]), float(ts[li, j + 1]),
                                  ua, ub, scale, False))
    return out


def _without_redundant_edges(candidates: list[_Candidate], targets: list[_Target]) -> list[_Candidate]:
    """Drop a suspect that holds a firmer candidate on the same line: an edge bracket (where a
    graph stops being finite) or a valley around a zero or sign change of an op (log(x)'s edge
    is log's zero; the valley of log(x)**2 is log(x)'s zero), found more cheaply and named
    better."""
    firm: dict[int, list[tuple[float, float]]] = {}
    for c in candidates:
        if targets[c.target].zero and c.kind != "valley":
            firm.setdefault(c.line, []).append((c.a, c.b))
    out = []
    for c in candidates:
        suspect = c.kind == "valley" or not targets[c.target].zero
        if suspect and any(a <= c.b and c.a <= b for a, b in firm.get(c.line, ())):
            continue
        out.append(c)
    return out


def _choose(candidates: list[_Candidate], most: int) -> list[_Candidate]:
    """At most `most`, round-robin over targets (each target's candidates in line and grid
    order), so one target with many zeros (tan(50*x)) cannot crowd out the others; at each
    rank, valleys (mere suspects) after zeros and sign changes."""
    rank: dict[tuple[int, bool], int] = {}
    keyed = []
    for c in candidates:
        key = (c.target, c.kind == "valley")
        r = rank.get(key, 0)
        rank[key] = r + 1
        keyed.append((r, c.kind == "valley", c.target, c.line, c.a, c))
    keyed.sort(key=lambda e: e[:5])
    return [e[5] for e in keyed[:most]]


# --------------------------------------------------------------------------------------------
# Refinement
# --------------------------------------------------------------------------------------------


class _Evaluator:
    """u of each candidate's target at probe points on its line, one walk per graph (over the
    part of the graph the candidates' targets need)."""

    def __init__(self, graphs: Sequence[Graph], targets: list[_Target], cands: list[_Candidate],
                 pts: Mapping[str, np.ndarray], lines: _Lines) -> None:
        self.graphs, self.targets, self.cands, self.pts, self.lines = graphs, targets, cands, pts, lines
        self.graph_of = np.array([targets[c.target].graph for c in cands], dtype=np.intp)
        self.target_of = np.array([c.target for c in cands], dtype=np.intp)
        self.needs = {g: {x for c in cands if targets[c.target].graph == g for x in targets[c.target].inputs}
                      for g in set(self.graph_of.tolist())}
        self.needed = {g: _ancestors(graphs[g], ins) for g, ins in self.needs.items()}

    def __call__(self, active: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """(B, P) u at `probes` for the active candidates (nan for the others)."""
        up = np.full(probes.shape, np.nan)
        for g in self.needs:
            rows = np.flatnonzero(active & (self.graph_of == g))
            if not len(rows):
                continue
            which = [self.cands[r].line for r in rows]
            point = _batch(self.graphs[g], self.pts, self.lines, which, probes[rows], self.needed[g])
            values = _values(self.graphs[g], point, self.needs[g])
            n = len(rows) * probes.shape[1]
            flat = np.full((len(rows), probes.shape[1]), np.nan)
            of = self.target_of[rows]
            for tg in np.unique(of):
                mask = of == tg
                flat[mask] = _u(self.targets[tg], values, n).reshape(len(rows), -1)[mask]
            up[rows] = flat
        return up


def _ends(cands: list[_Candidate], lines: _Lines,
          box: Mapping[str, tuple[float, float]]) -> tuple[np.ndarray, ...]:
    lo = np.array([box[lines.v[c.line]][0] for c in cands])
    hi = np.array([box[lines.v[c.line]][1] for c in cands])
    a = np.array([c.a for c in cands])
    b = np.array([c.b for c in cands])
    ua = np.array([c.ua for c in cands])
    ub = np.array([c.ub for c in cands])
    return lo, hi, a, b, ua, ub


def _sorted(a: np.ndarray, b: np.ndarray, ua: np.ndarray, ub: np.ndarray, probes: np.ndarray,
            up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ts = np.concatenate([a[:, None], probes, b[:, None]], axis=1)
    us = np.concatenate([ua[:, None], up, ub[:, None]], axis=1)
    order = np.argsort(ts, axis=1, kind="stable")
    return np.take_along_axis(ts, order, 1), np.take_along_axis(us, order, 1)


def _sign_changes(us: np.ndarray) -> np.ndarray:
    fin = np.isfinite(us)
    sign = np.sign(us)
    return fin[:, :-1] & fin[:, 1:] & (sign[:, :-1] * sign[:, 1:] < 0)


def _descend(graphs: Sequence[Graph], targets: list[_Target], chosen: list[_Candidate],
             pts: Mapping[str, np.ndarray], lines: _Lines, box: Mapping[str, tuple[float, float]],
             deadline: float) -> tuple[list[_Candidate], bool]:
    """Follow every valley down (sevenths of its interval, keeping the two around the least
    |u|) to 1e-9 of its scale: a sign change on the way makes it a bracket (two zeros close
    together), an exact 0 a location; at the bottom, |u| within POLE of 0 (against |u| on the
    line) makes it a "minimum" (a zero of even order, like (x - 1)**2 written out), else it is
    dropped. Two sign changes (two zeros close together) give two brackets."""
    open_ = [c for c in chosen if not c.exact and c.kind == "valley"]
    if not open_:
        return list(chosen), False
    lo, hi, a, b, ua, ub = _ends(open_, lines, box)
    state = np.zeros(len(open_), dtype=np.int8)  # 0 open, 1 exact, 2 bracket
    best_t = (a + b) / 2
    best_u = np.full(len(open_), np.inf)
    evaluate_u = _Evaluator(graphs, targets, open_, pts, lines)
    sevenths = np.arange(1, 7) / 7.0
    second: dict[int, tuple[float, float, float, float]] = {}
    late = False
    for _ in range(ITERATIONS):
        width = np.minimum(1.0, hi - lo)
        tol = VALLEY_XTOL * np.maximum(np.maximum(np.abs(a), np.abs(b)), width)
        active = (state == 0) & (b - a > tol)
        if not active.any():
            break
        if time.perf_counter() > deadline:
            late = True
            break
        probes = a[:, None] + (b - a)[:, None] * sevenths
        ts, us = _sorted(a, b, ua, ub, probes, evaluate_u(active, probes))
        hit = active & (us == 0).any(axis=1)
        rows = np.flatnonzero(hit)
        z = np.argmax(us == 0, axis=1)[rows]
        a[rows] = b[rows] = ts[rows, z]
        state[rows] = 1
        ok = _sign_changes(us)
        split = active & ~hit & ok.any(axis=1)
        rows = np.flatnonzero(split)
        j = np.argmax(ok, axis=1)[rows]
        last = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)[rows]
        for r, jj in zip(rows[last != j], last[last != j]):  # two zeros: the last one too
            second[int(r)] = (float(ts[r, jj]), float(ts[r, jj + 1]), float(us[r, jj]), float(us[r, jj + 1]))
        a[rows], b[rows], ua[rows], ub[rows] = ts[rows, j], ts[rows, j + 1], us[rows, j], us[rows, j + 1]
        state[rows] = 2
        rows = np.flatnonzero(active & ~hit & ~split)
        mag = np.where(np.isfinite(us), np.abs(us), np.inf)[rows]
        m = np.argmin(mag, axis=1)
        better = mag[np.arange(len(rows)), m] < best_u[rows]
        best_t[rows[better]] = ts[rows, m][better]
        best_u[rows[better]] = mag[np.arange(len(rows)), m][better]
        left, right = np.maximum(m - 1, 0), np.minimum(m + 1, ts.shape[1] - 1)
        a[rows], b[rows] = ts[rows, left], ts[rows, right]
        ua[rows], ub[rows] = us[rows, left], us[rows, right]
    out: dict[int, list[_Candidate]] = {}
    for r, c in enumerate(open_):
        if state[r] == 1:
            out[id(c)] = [_Candidate(c.target, c.line, float(a[r]), float(a[r]), 0.0, 0.0, c.scale, True)]
        elif state[r] == 2:
            out[id(c)] = [_Candidate(c.target, c.line, float(a[r]), float(b[r]), float(ua[r]), float(ub[r]),
                                     c.scale, False)]
            if r in second:
                out[id(c)].append(_Candidate(c.target, c.line, *second[r], c.scale, False))
        elif best_u[r] <= POLE * c.scale:
            x = float(best_t[r])
            out[id(c)] = [_Candidate(c.target, c.line, x, x, float(best_u[r]), float(best_u[r]), c.scale,
                                     False, "minimum")]
        else:
            out[id(c)] = []
    return [d for c in chosen for d in out.get(id(c), [c])], late


def _refine(graphs: Sequence[Graph], targets: list[_Target], chosen: list[_Candidate],
            pts: Mapping[str, np.ndarray], lines: _Lines, box: Mapping[str, tuple[float, float]],
            deadline: float) -> tuple[list[_Candidate], bool]:
    """Shrink every bracket to a few ulps (or an exact zero), all at once: each step evaluates,
    per bracket, its quarter points and the false-position estimate s with a point on either
    side of it (1e-3 of the bracket away, at least half the final width), and keeps the
    narrowest sign change (or the zero) among them. The quarters bound the cost (the bracket
    shrinks at least fourfold); s ± step end it in a few steps where u is smooth."""
    open_ = [c for c in chosen if not c.exact and c.kind == "bracket"]
    if not open_:
        return list(chosen), False
    lo, hi, a, b, ua, ub = _ends(open_, lines, box)
    edge = np.array([not targets[c.target].zero for c in open_])  # indicators: u is ±1
    exact = np.zeros(len(open_), dtype=bool)
    evaluate_u = _Evaluator(graphs, targets, open_, pts, lines)
    sevenths = np.arange(1, 7) / 7.0
    late = False
    for _ in range(ITERATIONS):
        width = np.minimum(1.0, hi - lo)
        tol = np.maximum(ULPS * _EPS * np.maximum(np.abs(a), np.abs(b)), XTOL * width)
        # an edge is only bisected (false position knows nothing from u = ±1): to 1e-12
        tol = np.where(edge, np.maximum(tol, EDGE_XTOL * np.maximum(np.maximum(np.abs(a), np.abs(b)), width)),
                       tol)
        active = ~exact & (b - a > tol)
        if not active.any():
            break
        if time.perf_counter() > deadline:
            late = True
            break
        w = b - a
        with np.errstate(all="ignore"):
            s = (a * ub - b * ua) / (ub - ua)
        s = np.where(np.isfinite(s), s, a + w / 2)
        step = np.maximum(tol / 2, 1e-3 * w)
        s = np.clip(s, a + step, b - step)
        probes = np.stack([a + w / 4, a + w / 2, a + 3 * w / 4, s - step, s, s + step], axis=1)
        probes = np.where(edge[:, None], a[:, None] + w[:, None] * sevenths, probes)
        probes = np.clip(probes, a[:, None], b[:, None])
        ts, us = _sorted(a, b, ua, ub, probes, evaluate_u(active, probes))
        is_zero = us == 0
        hit = active & is_zero.any(axis=1)
        z = np.argmax(is_zero, axis=1)
        rows = np.flatnonzero(hit)
        a[rows] = b[rows] = ts[rows, z[rows]]
        ua[rows] = ub[rows] = 0.0
        exact[rows] = True
        ok = _sign_changes(us)
        gaps = np.where(ok, ts[:, 1:] - ts[:, :-1], np.inf)
        j = np.argmin(gaps, axis=1)
        # (no sign change left cannot happen for a continuous u: such a bracket stays as it is)
        rows = np.flatnonzero(active & ~hit & ok.any(axis=1))
        jr = j[rows]
        a[rows], b[rows] = ts[rows, jr], ts[rows, jr + 1]
        ua[rows], ub[rows] = us[rows, jr], us[rows, jr + 1]
    refined = {id(c): _Candidate(c.target, c.line, float(a[r]), float(b[r]), float(ua[r]), float(ub[r]),
                                 c.scale, bool(exact[r])) for r, c in enumerate(open_)}
    return [refined.get(id(c), c) for c in chosen], late


# --------------------------------------------------------------------------------------------
# Locations and points
# --------------------------------------------------------------------------------------------


def _locate(graphs: Sequence[Graph], targets: list[_Target], finished: list[_Candidate],
            lines: _Lines, box: Mapping[str, tuple[float, float]],
            ) -> list[tuple[int, float, str, int, int, bool]]:
    """Refined candidates → (line, value, why, graph, node, exact), merged, in the candidates'
    order (their priority)."""
    texts: dict[int, list[str]] = {}
    found: list[tuple[int, float, str, int, int, bool]] = []
    whys: list[list[str]] = []
    for c in finished:
        t = targets[c.target]
        if c.exact or c.kind == "minimum":
            x = c.a
        elif c.kind == "valley":
            continue  # not followed down (out of time)
        elif t.zero:
            x = c.a if abs(c.ua) <= abs(c.ub) else c.b
            if not min(abs(c.ua), abs(c.ub)) <= POLE * c.scale:
                continue  # a sign change through a pole or a jump, not a zero
        else:  # an indicator: the end where the graph is defined
            x = c.a if c.ua > 0 else c.b
        if t.graph not in texts:
            texts[t.graph] = node_texts(graphs[t.graph])
        why = t.text(texts[t.graph])
        if c.kind == "minimum":
            why += f" (nearly: its least value in size is {c.ua:.1g})"
        lo, hi = box[lines.v[c.line]]
        merged = False
        for m, (line, value, _, _, _, was_exact) in enumerate(found):
            if line == c.line and abs(value - x) <= MERGE * _scale(x, lo, hi):
                if why not in whys[m] and len(whys[m]) < 3:
                    whys[m].append(why)
                if c.exact and not was_exact:
                    f = found[m]
                    found[m] = (f[0], x, f[2], f[3], f[4], True)
                merged = True
                break
        if not merged:
            found.append((c.line, x, why, t.graph, t.node, c.exact))
            whys.append([why])
    return [(f[0], f[1], "; ".join(w), f[3], f[4], f[5]) for f, w in zip(found, whys)]


def _assemble(graphs: Sequence[Graph], usable: list[int], found: list[tuple[int, float, str, int, int, bool]],
              pts: Mapping[str, np.ndarray], lines: _Lines, box: Mapping[str, tuple[float, float]],
              most: int, names: list[str]) -> SpecialPoints:
    """Each location and its sides, in order, while they fit in `most`; the box is respected."""
    ks: list[int] = []
    vs: list[str] = []
    ts: list[float] = []
    why: list[str] = []
    offsets: list[float] = []
    owner: list[int] = []
    locations: list[Location] = []
    truncated = False
    for line, x, reason, g, node, exact in found:
        if len(why) >= most:
            truncated = True
            break
        v, k = lines.v[line], int(lines.k[line])
        lo, hi = box[v]
        if not lo <= x <= hi:
            continue
        at = {w: x if w == v else float(pts[w][k]) for w in names}
        locations.append(Location(v, x, at, reason, g, node, exact))
        scale = _scale(x, lo, hi)
        for off in [0.0] + [s * d * scale for d in SIDES for s in (-1.0, 1.0)]:
            t = x + off
            if not lo <= t <= hi:
                continue
            if len(why) >= most:
                truncated = True
                break
            ks.append(k)
            vs.append(v)
            ts.append(t)
            side = "" if off == 0 else f" [beside it: {v} {'-' if off < 0 else '+'} {abs(off):.2g}]"
            why.append(reason + side)
            offsets.append(off)
            owner.append(len(locations) - 1)
    k_arr = np.asarray(ks, dtype=np.intp)
    v_arr = np.asarray(vs, dtype=object)
    t_arr = np.asarray(ts, dtype=np.float64)
    arrays = {}
    for w in names:
        column = pts[w][k_arr].copy()
        mine = v_arr == w
        column[mine] = t_arr[mine]
        arrays[w] = column
    defined = np.zeros((len(graphs), len(why)), dtype=bool)
    if why:
        for g in usable:
            out = graphs[g].output
            values = walk(graphs[g], Values(arrays, np.float64), upto=out, keep={out})
            defined[g] = np.isfinite(np.broadcast_to(np.asarray(values[out], dtype=np.float64), (len(why),)))
    return SpecialPoints(arrays, why, np.asarray(offsets, dtype=np.float64),
                         np.asarray(owner, dtype=np.intp), locations, defined, truncated)
