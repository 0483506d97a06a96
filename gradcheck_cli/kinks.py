"""Non-smooth points: where a kink sits exactly at the point, and how far the nearest one is.

At a kink (relu or abs at 0, a tie in max/min, hard_swish at ±3, ...) f has no derivative,
but it has one-sided derivatives. They are computed exactly by a forward sweep of one-sided
*directional* derivatives: each rule's `directional` picks the branch its input tangent moves
into, and directional derivatives compose along the chain (f is piecewise smooth and locally
Lipschitz), so f'(x; +e_v) is the right derivative in v and -f'(x; -e_v) the left one.

The distance from the point to the nearest kink along each variable is |g / dg| for each
non-smooth node's gap g (zero at its kink); a finite difference whose step is longer than that
straddles the kink and is not a fair witness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .explain import node_texts
from .forward import sweep
from .graph import Graph, evaluate
from .rules import RULES


@dataclass
class Kink:
    node: int
    op: str
    where: str  # the node as formula text, e.g. "relu(x - 1)"


@dataclass
class KinkAnalysis:
    at_point: list[Kink] = field(default_factory=list)  # kinks the point sits exactly on
    one_sided: dict[str, tuple[float, float]] = field(default_factory=dict)  # v -> (left, right)
    nearest: dict[str, tuple[float, str]] = field(default_factory=dict)  # v -> (distance, where)

    def nondifferentiable(self) -> dict[str, tuple[float, float]]:
        """The variables whose one-sided derivatives differ (a real kink in that variable)."""
        return {v: lr for v, lr in self.one_sided.items() if not _same(*lr)}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isfinite(a) and abs(a - b) <= 1e-12 * max(abs(a), abs(b)))


def analyse(graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str]) -> KinkAnalysis:
    result = KinkAnalysis()
    kinky = [i for i, n in enumerate(graph.nodes) if n.op in RULES and not RULES[n.op].smooth]
    if not kinky or not wrt:
        return result
    values = evaluate(graph, point)
    texts = node_texts(graph)
    duals = sweep(graph, point, wrt)
    with np.errstate(all="ignore"):
        for i in kinky:
            node = graph.nodes[i]
            rule = RULES[node.op]
            assert rule.gap is not None
            args = tuple(values[a] for a in node.args)
            tangents = tuple(_tangent(duals[a].tangent, len(wrt), np.shape(values[i]))
                             for a in node.args)
            g, dg = rule.gap(args, tangents)
            if np.all(g == 0):
                result.at_point.append(Kink(i, node.op, texts[i]))
            for k, v in enumerate(wrt):
                slope = float(np.ravel(dg[k])[0])
                if slope == 0:
                    continue
                distance = abs(float(np.ravel(g)[0]) / slope)
                if v not in result.nearest or distance < result.nearest[v][0]:
                    result.nearest[v] = (distance, texts[i])
    if result.at_point:
        result.one_sided = one_sided(graph, values, wrt)
    return result


def _tangent(t: np.ndarray | None, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros((n, *shape)) if t is None else np.broadcast_to(t, (n, *shape))


def one_sided(
    graph: Graph, values: Sequence[np.ndarray], wrt: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """(left, right) derivative of f in each variable, exact, by directional forward sweeps.
    Directions are stacked: +e_v for every v, then -e_v."""
    n = len(wrt)
    directions = np.concatenate([np.eye(n), -np.eye(n)])
    position = {v: k for k, v in enumerate(wrt)}
    tangents: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for i, node in enumerate(graph.nodes):
            if node.op == "var":
                k = position.get(node.name)
                tangents.append(directions[:, k] if k is not None else np.zeros(2 * n))
            elif node.op == "const":
                tangents.append(np.zeros(2 * n))
            else:
                args = tuple(values[a] for a in node.args)
                ts = tuple(tangents[a] for a in node.args)
                tangents.append(np.asarray(
                    RULES[node.op].directional_derivative(values[i], args, ts), dtype=float
                ))
    out = np.broadcast_to(tangents[graph.output], (2 * n,))
    # + 0.0 turns -0.0 into 0.0: a left derivative of "-0" reads like a bug
    return {v: (-float(out[n + k]) + 0.0, float(out[k]) + 0.0) for k, v in enumerate(wrt)}
