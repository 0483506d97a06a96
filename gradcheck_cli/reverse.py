"""Reverse-mode AD (backpropagation) over the graph.

Convention, as in the lecture notes: one forward sweep stores every node's value u_i; then
every adjoint dy/du starts at 0 and dy/dy = 1, and nodes are visited in reverse topological
order; for u_i = g_i(v_1..v_N) each dy/dv_j is incremented by (dy/du_i)(du_i/dv_j), the local
partial coming from `rules.RULES`. Gradients add where a value branches (`x*x`). One backward
sweep gives the partial with respect to every input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .graph import Graph, evaluate
from .rules import RULES


def backward(graph: Graph, values: Sequence[np.ndarray], wrt: Sequence[str]) -> list[np.ndarray | None]:
    """Adjoint dy/du of every node (None where it is structurally zero)."""
    needs = graph.depends_on(wrt)
    adjoint: list[np.ndarray | None] = [None] * len(graph.nodes)
    adjoint[graph.output] = np.ones_like(values[graph.output])
    with np.errstate(all="ignore"):
        for i in range(graph.output, -1, -1):
            upstream = adjoint[i]
            node = graph.nodes[i]
            if upstream is None or not node.args:
                continue
            args = tuple(values[a] for a in node.args)
            rule = RULES[node.op]
            for j, a in enumerate(node.args):
                if not needs[a]:
                    continue
                contribution = upstream * rule.partial(j, values[i], args)
                adjoint[a] = contribution if adjoint[a] is None else adjoint[a] + contribution
    return adjoint


def gradient(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """∂f/∂v for every v in `wrt`, by one forward and one backward sweep."""
    values = evaluate(graph, point, dtype)
    adjoint = backward(graph, values, wrt)
    zero = np.zeros_like(values[graph.output])
    out = {}
    for name in wrt:
        idx = graph.var_nodes.get(name)
        adj = adjoint[idx] if idx is not None else None
        out[name] = np.broadcast_to(adj, zero.shape).copy() if adj is not None else zero.copy()
    return out
