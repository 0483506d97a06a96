"""Reverse-mode AD (backpropagation) over the graph.

Convention, as in the lecture notes: one forward walk stores every node's value u_i; then
every adjoint dy/du starts at 0 and dy/dy = 1, and nodes are visited in reverse topological
order; for u_i = g_i(v_1..v_N) each dy/dv_j is incremented by (dy/du_i)(du_i/dv_j), the local
partial coming from `rules.RULES`. Gradients add where a value branches (`x*x`). One backward
sweep gives the partial with respect to every input. Both walks are `interpret.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .graph import Graph, evaluate
from .interpret import Observer, backward


def gradient_from_values(
    graph: Graph,
    values: Sequence[np.ndarray],
    wrt: Sequence[str],
    output: int | None = None,
    observer: Observer | None = None,
) -> dict[str, np.ndarray]:
    """∂f/∂v for every v in `wrt` by one backward sweep over already computed values."""
    out = graph.output if output is None else output
    adjoint = backward(graph, values, wrt, output=out, observer=observer)
    zero = np.zeros_like(values[out])
    grads = {}
    for name in wrt:
        idx = graph.var_nodes.get(name)
        adj = adjoint[idx] if idx is not None else None
        grads[name] = np.broadcast_to(adj, zero.shape).copy() if adj is not None else zero.copy()
    return grads


def gradient(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """∂f/∂v for every v in `wrt`, by one forward and one backward sweep."""
    return gradient_from_values(graph, evaluate(graph, point, dtype), wrt)
