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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .dual import Duals, expand
from .explain import node_texts
from .graph import Graph
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
    eye = np.eye(len(wrt))
    # One walk of dual numbers in the 2n directions +e_v, -e_v: the values, the tangents for
    # the gaps, and the one-sided derivatives, all at once.
    seeds = {v: np.concatenate([eye[k], -eye[k]]) for k, v in enumerate(wrt)}
    duals = walk(graph, Duals(point64, seeds, np.float64, directional=True))
    n = len(wrt)
    with np.errstate(all="ignore"):
        for i in kinky:
            node = graph.nodes[i]
            rule = RULES[node.op]
            assert rule.gap is not None
            args = tuple(duals[a].value for a in node.args)
            shape = np.shape(duals[i].value)
            tangents = tuple(_tangent(duals[a].tangent, 2 * n, shape) for a in node.args)
            g, dg = rule.gap(args, tangents)
            g = _batch(g, k_points)
            at = g == 0
            if at.any():
                result.at_point.append(Kink(i, node.op, texts[i], at))
            for k, v in enumerate(wrt):
                slope = _batch(np.asarray(dg)[k], k_points)
                distance = np.where(slope == 0, np.inf, np.abs(g / np.where(slope == 0, 1.0, slope)))
                if v not in result.nearest:
                    result.nearest[v] = (distance, np.full(k_points, i))
                else:
                    best, where = result.nearest[v]
                    closer = distance < best
                    result.nearest[v] = (np.where(closer, distance, best), np.where(closer, i, where))
        if result.at_point:
            out = duals[graph.output]
            t = _tangent(out.tangent, 2 * n, np.shape(out.value))
            for k, v in enumerate(wrt):
                # + 0.0 turns -0.0 into 0.0: a left derivative of "-0" reads like a bug
                result.one_sided[v] = (-_batch(t[n + k], k_points) + 0.0, _batch(t[k], k_points) + 0.0)
    return result


def _tangent(t: np.ndarray | None, n: int, shape: tuple[int, ...]) -> np.ndarray:
    if t is None:
        return np.zeros((n, *shape))
    t = expand(t, len(shape))
    return np.broadcast_to(t, (n, *np.broadcast_shapes(t.shape[1:], shape)))
