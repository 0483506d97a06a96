"""Reverse-mode AD (backpropagation) over the graph.

Convention, as in the lecture notes: one forward walk stores every node's value u_i; then
every adjoint dy/du starts at 0 and dy/dy = 1, and nodes are visited in reverse topological
order; for u_i = g_i(v_1..v_N) each dy/dv_j is incremented by (dy/du_i)(du_i/dv_j), the local
partial coming from `rules.RULES`. Gradients add where a value branches (`x*x`). One backward
sweep gives the partial with respect to every input. Both walks are `interpret.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .graph import Graph, evaluate
from .interpret import Observer, PointValues, backward, float_backward


def gradient_from_values(
    graph: Graph,
    values: Sequence[np.ndarray],
    wrt: Sequence[str],
    output: int | None = None,
    observer: Observer | None = None,
    perturb: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """∂f/∂v for every v in `wrt` by one backward sweep over already computed values."""
    out = graph.output if output is None else output
    if isinstance(values, PointValues) and observer is None and perturb is None:
        # one point: the backward sweep on Python floats (interpret.py's fast path)
        adj = float_backward(graph, values.floats, wrt, out)
        shape = np.shape(values[out])
        return {name: np.full(shape, adj[graph.var_nodes[name]] if name in graph.var_nodes
                              and adj[graph.var_nodes[name]] is not None else 0.0) for name in wrt}
    adjoint = backward(graph, values, wrt, output=out, observer=observer, perturb=perturb)
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


def rounding_response(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """How far the gradient moves when every rounded value of the forward walk and every local
    partial of the backward sweep is off by eps relative: the largest over sign patterns (as for
    the finite differences' estimates, `finite._rounding_response`), per variable, over the
    batch. It models the float rounding a correct derivative code cannot avoid: near a zero of
    f′ (sin(u) with u rounded) or where the formula cancels (1e-3·(cosh(y) - sinh(y)) at y = 20)
    an exact derivative and a correct float one differ by this much, and no more."""
    from .finite import PERTURBATION, _sign_patterns
    from .interpret import Shifted, walk

    shape = np.broadcast_shapes(*(np.shape(p) for p in point.values())) if point else ()
    edges: dict[tuple[int, int], int] = {}
    for i, node in enumerate(graph.nodes):
        for j in range(len(node.args)):
            edges[(i, j)] = len(edges)
    n = len(graph.nodes)
    signs = _sign_patterns(n + len(edges))
    lead = (-1,) + (1,) * len(shape)
    nominal = gradient(graph, point, wrt, dtype)

    def deviation(scale: float) -> dict[str, np.ndarray]:
        """How far the gradient moves with every rounding moved by ±scale eps."""
        size = scale * float(np.finfo(dtype).eps)
        floor = size * float(np.finfo(dtype).tiny)  # a partial that underflowed: off absolutely
        interp = Shifted(point, "", np.zeros(shape), dtype, signs=(signs[:, :n], signs[:, :n]),
                         size=scale)

        def perturb(i: int, j: int, partial: np.ndarray) -> np.ndarray:
            sign = signs[:, n + edges[(i, j)]].reshape(lead)
            return partial * (1 + size * sign) + floor * sign

        moved = gradient_from_values(graph, walk(graph, interp), wrt, perturb=perturb)
        out = {}
        with np.errstate(all="ignore"):
            for v in wrt:
                g = np.asarray(nominal[v], dtype=np.float64)
                m = np.asarray(moved[v], dtype=np.float64)
                dev = np.abs(m - g).max(axis=0) if m.ndim > g.ndim else np.abs(m - g)
                out[v] = np.where(np.isfinite(dev), dev, np.inf)
        return out

    big, small = deviation(PERTURBATION), deviation(PERTURBATION / 64)
    out = {}
    with np.errstate(all="ignore"):
        for v in wrt:
            # A well-conditioned gradient moves 64× more under a 64× larger move. One that moves
            # about as much either way is decided by rounding alone (sin(x*1e300) at 1e8: any
            # eps in the argument changes cos completely): ρ = inf, "not determined in floats".
            saturated = (small[v] > 0) & (big[v] < 8 * small[v])
            rho = np.where(saturated, np.inf, big[v] / PERTURBATION)
            # a gradient that is not finite is no rounding matter (0 · ∞ is judged as it is)
            rho = np.where(np.isfinite(np.asarray(nominal[v], dtype=np.float64)), rho, 0.0)
            out[v] = np.broadcast_to(rho, shape).copy()
    return out
