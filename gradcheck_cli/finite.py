"""Centered finite differences: an oracle that uses only values of f, never a derivative.

∂f/∂x_i ≈ (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), with h_i = cbrt(eps) * max(1, |x_i|) by
default: the step that balances the O(h²) truncation error against the O(eps/h) rounding
error. The shifted points are rounded to floats first and the divisor is their actual distance,
so the step the formula uses is exactly the step the arithmetic used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .explain import describe_trouble
from .graph import Graph, evaluate, output_trouble


@dataclass
class FiniteResult:
    gradient: dict[str, np.ndarray] | None
    step: dict[str, np.ndarray]
    note: str | None = None


def default_step(x: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    eps = np.finfo(dtype).eps
    return np.cbrt(eps) * np.maximum(1.0, np.abs(x))


def central(
    graph: Graph,
    point: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    step: float | None = None,
    dtype: type = np.float64,
) -> FiniteResult:
    grad: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    for name in wrt:
        x = np.asarray(point.get(name, 0.0), dtype=dtype)
        h = np.asarray(step, dtype=dtype) if step is not None else default_step(x, dtype)
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros_like(x)
            steps[name] = h
            continue
        with np.errstate(all="ignore"):
            xp = (x + h).astype(dtype)
            xm = (x - h).astype(dtype)
        fs = []
        for shifted, sign in ((xp, "+"), (xm, "-")):
            values = evaluate(graph, {**point, name: shifted}, dtype)
            trouble = output_trouble(graph, values)
            if trouble is not None:
                return FiniteResult(
                    None, steps,
                    f"f is not finite at {name}{sign}h ({name} = {float(np.ravel(shifted)[0]):.17g}): "
                    + describe_trouble(graph, trouble),
                )
            fs.append(values[graph.output])
        with np.errstate(all="ignore"):
            grad[name] = ((fs[0] - fs[1]) / (xp - xm)).astype(dtype)
        steps[name] = ((xp - xm) / 2).astype(dtype)
    return FiniteResult(grad, steps)
