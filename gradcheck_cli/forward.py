"""Forward-mode AD: dual numbers pushed through the graph in topological order.

One sweep with a vector of tangents: input v_k is seeded with the unit tangent e_k, so after the
sweep the output's tangent entry k is ∂f/∂v_k. (Equivalent to one sweep per input direction,
with the directions stacked on a leading axis.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .dual import Dual, apply
from .graph import Graph


def sweep(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], dtype: type = np.float64
) -> list[Dual]:
    """The dual number of every node, tangents seeded with the unit vectors of `wrt`."""
    shape = np.broadcast_shapes(*(np.shape(point[v]) for v in graph.variables)) if graph.variables else ()
    seeds = np.eye(len(wrt), dtype=dtype).reshape((len(wrt), len(wrt)) + (1,) * len(shape))
    position = {name: k for k, name in enumerate(wrt)}
    duals: list[Dual] = []
    for node in graph.nodes:
        if node.op == "var":
            value = np.asarray(point[node.name], dtype=dtype)
            k = position.get(node.name)
            tangent = None if k is None else np.broadcast_to(seeds[k], (len(wrt),) + shape)
            duals.append(Dual(value, tangent))
        elif node.op == "const":
            duals.append(Dual(np.asarray(node.constant_value(), dtype=dtype)))
        else:
            duals.append(apply(node.op, *(duals[a] for a in node.args)))
    return duals


def gradient(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], dtype: type = np.float64
) -> dict[str, np.ndarray]:
    out = sweep(graph, point, wrt, dtype)[graph.output]
    shape = np.shape(out.value)
    if out.tangent is None:
        return {name: np.zeros(shape, dtype=dtype) for name in wrt}
    t = np.broadcast_to(out.tangent, (len(wrt),) + shape)
    return {name: t[k].copy() for k, name in enumerate(wrt)}
