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

from .dual import Dual, Duals, union
from .graph import Graph
from .interpret import float_partials_of, float_tangent, float_walk, point_floats, walk

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
        along = tangents_at_one_point(graph, point, seeds, dtype, out_index)
        if along is not None:
            got = along.reshape((len(chunk),) + np.shape(along)[1:])
            grads.update({name: got[k].astype(dtype) for k, name in enumerate(chunk)})
            continue
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
    got = _float_values(graph, point, dtype, out)
    if got is None:
        return None
    values, shape = got
    return {name: np.full(shape, float_tangent(graph, values, name, out), dtype=dtype) for name in wrt}


def _float_values(graph: Graph, point: Mapping[str, np.ndarray], dtype: type, out: int
                  ) -> tuple[list[float], tuple[int, ...]] | None:
    """Every node's value up to `out` as Python floats at one float64 point, and the point's batch
    shape; None unless it is one float64 point where every value is finite."""
    got = point_floats(point, dtype)
    if got is None:
        return None
    floats, shape = got
    values = float_walk(graph, floats, out)
    return None if values is None else (values, shape)


def tangents_at_one_point(
    graph: Graph, point: Mapping[str, np.ndarray], seeds: Mapping[str, np.ndarray], dtype: type,
    output: int | None = None,
) -> np.ndarray | None:
    """The output's tangent along each of the D seeded directions (`seeds[v]`, shape (D,)), as
    (D, *batch shape) at one point in float64: the values and local partials as Python floats
    (`interpret.float_walk`, `float_partials`: numpy's bit for bit), the tangents as numpy (D,)
    arrays with the same products, masks, sums and order as `dual.apply`, so the same numbers
    as the numpy walk of `Duals` at a fifth of its cost (a numpy 0-d call per value and partial
    was most of it). None where that walk must decide: not one float64 point, or a value that
    is not finite."""
    out = graph.output if output is None else output
    got = _float_values(graph, point, dtype, out)
    if got is None:
        return None
    values, shape = got
    d = len(next(iter(seeds.values()))) if seeds else 0
    nodes = graph.nodes
    last = graph.last_use
    tangent: list[np.ndarray | None] = [None] * (out + 1)
    support: list[np.ndarray | None] = [None] * (out + 1)  # as Dual.support: None, every direction
    partials = float_partials_of(graph, values)
    with np.errstate(all="ignore"):
        for i in range(out + 1):
            node = nodes[i]
            if node.op == "var":
                seed = seeds.get(node.name)  # type: ignore[arg-type]
                if seed is not None and np.any(seed):
                    tangent[i] = np.asarray(seed, dtype=np.float64)
                    live = tangent[i] != 0
                    support[i] = None if live.all() else live
                continue
            args = node.args
            if not args or all(tangent[a] is None for a in args):
                continue
            parts = partials(i)
            t: np.ndarray | None = None
            sup: np.ndarray | None = None
            first = True
            for j, a in enumerate(args):
                ta = tangent[a]
                if ta is None:
                    continue
                term = parts[j] * ta
                if support[a] is not None:  # structural zeros stay exactly 0 (no 0 · ∞)
                    term = np.where(support[a], term, 0.0)
                t = term if t is None else t + term
                sup = support[a] if first else union(sup, support[a])
                first = False
            tangent[i], support[i] = t, sup
            for a in args:
                if last[a] == i and a != out:  # free a tangent after its last use
                    tangent[a] = support[a] = None
    result = tangent[out]
    if result is None:
        return np.zeros((d,) + shape)
    return np.broadcast_to(result.reshape((d,) + (1,) * len(shape)), (d,) + shape).copy()
