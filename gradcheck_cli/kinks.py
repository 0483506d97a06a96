"""Non-smooth points: where a kink sits exactly at a point, and how far the nearest one is.

At a kink (relu or abs at 0, a tie in max/min, hard_swish at ±3, ...) f has no derivative,
but it has one-sided derivatives. They are computed exactly by a walk of one-sided
*directional* derivatives (`dual.Duals` with `directional`): each rule's `directional` picks
the branch its input tangent moves into, and directional derivatives compose along the chain
(f is piecewise smooth and locally Lipschitz), so f'(x; +e_v) is the right derivative in v and
-f'(x; -e_v) the left one.

The distance from a point to the nearest kink along each variable is |g / dg| for each
non-smooth node's gap g (zero at its kink); a finite difference whose step is longer than that
straddles the kink and is not a fair witness.

Everything is computed for the whole batch of K points at once: masks and arrays of shape (K,).
The directions are walked in chunks of variables (`_chunk_size`), so the tangents held at once
stay within `BUDGET` bytes whatever the number of variables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .dual import Dual, Duals, expand
from .explain import node_texts
from .graph import Graph, Node
from .interpret import walk
from .rules import RULES


@dataclass
class Kink:
    node: int
    op: str
    where: str  # the node as formula text, e.g. "relu(x - 1)"
    at: np.ndarray  # (K,) bool: the points that sit exactly on this kink


@dataclass
class KinkAnalysis:
    points: int = 1
    at_point: list[Kink] = field(default_factory=list)  # kinks some point sits exactly on
    # v -> (left, right), arrays (K,): meaningful where `on_kink`
    one_sided: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # v -> (distance (K,), node index (K,)): the nearest kink along v
    nearest: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # every node as formula text

    @property
    def on_kink(self) -> np.ndarray:
        """(K,) bool: the points that sit on at least one kink."""
        on = np.zeros(self.points, dtype=bool)
        for k in self.at_point:
            on |= k.at
        return on

    def where(self, index: int) -> str:
        """The kinks point `index` sits on, as text."""
        return ", ".join(k.where for k in self.at_point if k.at[index])

    def nondifferentiable(self) -> dict[str, np.ndarray]:
        """Per variable, the points on a kink whose one-sided derivatives differ (K,) bool."""
        on = self.on_kink
        out = {}
        for v, (left, right) in self.one_sided.items():
            mask = on & ~_same(left, right)
            if mask.any():
                out[v] = mask
        return out


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        close = np.isfinite(a) & (np.abs(a - b) <= 1e-12 * np.maximum(np.abs(a), np.abs(b)))
    return (a == b) | close


def _batch(x: np.ndarray, k: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=float), (k,)) if np.ndim(x) <= 1 else np.asarray(x)


# Directions are processed in chunks of variables (each variable gives two directions, +e_v
# and -e_v), one walk per chunk: a walk holds, per live node, a tangent of 2c × K numbers (c
# variables in the chunk, K points), n-ary rules stack one per argument, and the seeds are
# c × 2c numbers. The chunk is the largest that keeps that estimate within BUDGET bytes, but at
# least CHUNK variables (forward mode's chunk): a walk costs Python time per node, so fewer,
# wider walks are faster. Nothing but the gaps' tangents (reduced at once to distances) and the
# output's tangent is kept from a walk.
CHUNK = 64
BUDGET = 64 << 20


def analyse(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    values: Sequence[np.ndarray] | None = None,
) -> KinkAnalysis:
    """Kinks at and near the K points of `point` (arrays (K,) or scalars, K = 1)."""
    k_points = int(np.prod(np.broadcast_shapes(*(np.shape(v) for v in point.values())) or (1,))) \
        if point else 1
    result = KinkAnalysis(points=k_points)
    kinky = [i for i, n in enumerate(graph.nodes) if n.op in RULES and not RULES[n.op].smooth]
    if not kinky or not wrt:
        return result
    point64 = {n: np.asarray(v, dtype=np.float64) for n, v in point.items()}
    texts = result.texts = node_texts(graph)
    n = len(wrt)
    # the nearest kink along each variable: distance and node, rows in the order of `wrt`;
    # before any kink is seen, "no kink (inf) at the first one", as a first kink with no slope
    # along v would leave it
    best = np.full((n, k_points), np.inf)
    where = np.full((n, k_points), kinky[0])
    left = np.zeros((n, k_points))
    right = np.zeros((n, k_points))
    chunk = _chunk_size(graph, n, k_points)
    for start in range(0, n, chunk):
        names = list(wrt[start:start + chunk])
        # the -e_v directions only serve the one-sided derivatives at a kink; once the first
        # walk has found no point on a kink, the +e_v directions (the gaps' slopes) suffice
        both = start == 0 or bool(result.at_point)
        walker = _Walker(point64, names, both, result, kinky, texts, k_points,
                         best[start:start + chunk], where[start:start + chunk], first=start == 0)
        duals = walk(graph, walker, keep={graph.output})
        if both:
            c = len(names)
            out = duals[graph.output]
            t = _tangent(out.tangent, 2 * c, np.shape(out.value))
            with np.errstate(all="ignore"):
                right[start:start + c] = np.broadcast_to(_rows(t[:c], c), (c, k_points))
                left[start:start + c] = -np.broadcast_to(_rows(t[c:], c), (c, k_points))
        del walker, duals  # before the next chunk's seeds and tangents are made
    for k, v in enumerate(wrt):
        result.nearest[v] = (best[k].copy(), where[k].copy())
    if result.at_point:
        for k, v in enumerate(wrt):
            # + 0.0 turns -0.0 into 0.0: a left derivative of "-0" reads like a bug
            result.one_sided[v] = (left[k] + 0.0, right[k] + 0.0)
    return result


def _rows(t: np.ndarray, c: int) -> np.ndarray:
    """A tangent block (c, ...) as (c, K) rows (a scalar point's tangent (c,) as (c, 1))."""
    return t.reshape(c, -1)


def _chunk_size(graph: Graph, n: int, k_points: int) -> int:
    """Variables per walk: the most whose tangents fit BUDGET (at least CHUNK, at most n)."""
    last = graph.last_use
    ends = [0] * len(graph.nodes)
    for j in last:
        ends[j] += 1
    live = peak = 0
    for i in range(len(graph.nodes)):
        live += 1
        peak = max(peak, live)
        live -= ends[i]
    arity = max((len(node.args) for node in graph.nodes), default=0)
    per_variable = 16 * k_points * (peak + 2 * arity)  # two directions, 8 bytes each
    # 16 c (c + per_variable / 16) <= BUDGET, the seeds being c × 2c numbers
    b = per_variable / 16
    c = int((-b + math.sqrt(b * b + BUDGET / 4)) / 2)
    return max(1, min(n, max(CHUNK, c)))


class _Walker(Duals):
    """Directional dual numbers for one chunk of variables (directions +e_v, then -e_v if
    `both`) that, at every non-smooth node, turns the gap's tangent into distances at once
    (and records the kinks a point sits on, in the first walk), so no tangent outlives its
    last use."""

    def __init__(self, point: Mapping[str, np.ndarray], names: list[str], both: bool,
                 result: KinkAnalysis, kinky: list[int], texts: list[str], k_points: int,
                 best: np.ndarray, where: np.ndarray, first: bool) -> None:
        c = len(names)
        seeds = {}
        for k, v in enumerate(names):
            seeds[v] = np.zeros(2 * c if both else c)
            seeds[v][k] = 1.0
            if both:
                seeds[v][c + k] = -1.0
        super().__init__(point, seeds, np.float64, directional=True)
        self.c, self.d = c, 2 * c if both else c
        self.result, self.texts, self.k = result, texts, k_points
        self.kinky, self.first_kink = set(kinky), kinky[0]
        self.best, self.where, self.first = best, where, first

    def op(self, i: int, node: Node, args: tuple[Dual, ...]) -> Dual:
        out = super().op(i, node, args)
        if i in self.kinky:
            self._gap(i, node, args, out)
        return out

    def _gap(self, i: int, node: Node, args: tuple[Dual, ...], out: Dual) -> None:
        live = any(a.tangent is not None for a in args)
        if not (self.first or live or i == self.first_kink):
            return  # no slope along any variable of this chunk: never the nearest kink
        rule = RULES[node.op]
        assert rule.gap is not None
        shape = np.shape(out.value)
        g, dg = rule.gap(tuple(a.value for a in args),
                         tuple(_tangent(a.tangent, self.d, shape) for a in args))
        g = _batch(g, self.k)
        if self.first:
            at = g == 0
            if at.any():
                self.result.at_point.append(Kink(i, node.op, self.texts[i], at))
        if not (live or i == self.first_kink):
            return
        c = self.c
        slope = np.broadcast_to(_rows(np.asarray(dg)[:c], c), (c, self.k))
        distance = np.where(slope == 0, np.inf, np.abs(g / np.where(slope == 0, 1.0, slope)))
        if i == self.first_kink:
            self.best[...] = distance
            self.where[...] = i
        else:
            closer = distance < self.best
            self.best[closer] = distance[closer]
            self.where[closer] = i


def _tangent(t: np.ndarray | None, n: int, shape: tuple[int, ...]) -> np.ndarray:
    if t is None:
        return np.zeros((n, *shape))
    t = expand(t, len(shape))
    return np.broadcast_to(t, (n, *np.broadcast_shapes(t.shape[1:], shape)))
