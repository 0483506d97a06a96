"""Forward-mode AD: dual numbers carried through the one interpreter in topological order.

Input v_k is seeded with the unit tangent e_k, so after the walk the output's tangent entry k is
∂f/∂v_k: one walk per chunk of at most `CHUNK` directions (equivalent to one walk per input,
with the directions stacked on a leading axis). Chunking bounds memory: a tangent costs
D × K numbers per node, so D is capped and the walk repeated, at the price of re-evaluating the
values once per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .dual import Dual, Duals
from .graph import Graph
from .interpret import float_tangent, float_walk, point_floats, walk

CHUNK = 64  # directions per walk
# At one point in float64, up to this many directions are walked one at a time on Python floats
# (`interpret.float_tangent`, ~0.5 µs a node) rather than together in numpy (~10 µs a node).
FLOAT_DIRECTIONS = 16


def sweep(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    dtype: type = np.float64,
    directional: bool = False,
) -> list[Dual]:
    """The dual number of every node, tangents seeded with the unit vectors of `wrt`."""
    eye = np.eye(len(wrt), dtype=dtype)
    seeds = {name: eye[k] for k, name in enumerate(wrt)}
    return walk(graph, Duals(point, seeds, dtype, directional))


def gradient(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    dtype: type = np.float64,
    output: int | None = None,
) -> dict[str, np.ndarray]:
    """∂f/∂v for every v in `wrt`, shape of the batch, chunk by chunk of directions."""
    out_index = graph.output if output is None else output
    fast = _at_one_point(graph, point, wrt, dtype, out_index)
    if fast is not None:
        return fast
    grads: dict[str, np.ndarray] = {}
    for start in range(0, max(len(wrt), 1), CHUNK):
        chunk = list(wrt[start:start + CHUNK])
        if not chunk:
            break
        eye = np.eye(len(chunk), dtype=dtype)
        seeds = {name: eye[k] for k, name in enumerate(chunk)}
        out = walk(graph, Duals(point, seeds, dtype), upto=out_index, keep={out_index})[out_index]
        shape = np.shape(out.value)
        if out.tangent is None:
            grads.update({name: np.zeros(shape, dtype=dtype) for name in chunk})
            continue
        t = np.broadcast_to(out.tangent, (len(chunk),) + shape)
        grads.update({name: np.asarray(t[k], dtype=dtype).copy() for k, name in enumerate(chunk)})
    return grads


def _at_one_point(
    graph: Graph, point: Mapping[str, np.ndarray], wrt: Sequence[str], dtype: type, out: int
) -> dict[str, np.ndarray] | None:
    """The gradient by float tangent walks, at one point with few directions; None otherwise
    (a value that is not finite, or many directions: the numpy walk decides)."""
    if not wrt or len(wrt) > FLOAT_DIRECTIONS:
        return None
    got = point_floats(point, dtype)
    if got is None:
        return None
    floats, shape = got
    values = float_walk(graph, floats, out)
    if values is None:
        return None
    return {name: np.full(shape, float_tangent(graph, values, name, out), dtype=dtype) for name in wrt}
