"""Centered finite differences: an oracle that uses only values of f, never a derivative.

∂f/∂x_i ≈ (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), with h_i = cbrt(eps) * max(1, |x_i|) by
default: the step that balances the O(h²) truncation error against the O(eps/h) rounding
error. The shifted points are rounded to floats first and the divisor is their actual distance,
so the step the formula uses is exactly the step the arithmetic used.

Two more value-only methods, and an error estimate for each (`FiniteResult.estimate`: a bound
on the absolute error per variable that the method works out about itself):
- `central`: truncation |f'''| h²/6, with f''' from central differences at h and 2h, plus
  rounding (eps (|f(x+h)| + |f(x-h)|) + the measured noise of evaluating f) / 2h.
- `richardson`: central differences at steps h0, h0/2, h0/4, ... (h0 = 0.1 max(1, |x|)) and a
  Neville tableau that eliminates h², h⁴, ...; the entry with the smallest estimate wins, the
  estimate being how far it moved from its neighbours plus its propagated rounding.
- `complex_step`: Im f(x + ih) / h with h = eps² max(1, |x|): no subtraction, so no
  cancellation, and exact to rounding for an analytic formula. It refuses a formula whose
  x-dependent part has a non-analytic primitive (`Rule.smooth` is False) or sits on a branch
  point (sqrt(0), asin(±1), a negative base to a power that depends on x).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .explain import describe_trouble
from .graph import Graph, evaluate, first_trouble, output_trouble
from .rules import RULES


@dataclass
class FiniteResult:
    gradient: dict[str, np.ndarray] | None
    step: dict[str, np.ndarray]
    note: str | None = None
    # The method's own estimate of its absolute error, per variable (float64).
    estimate: dict[str, np.ndarray] | None = None


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
    estimate: dict[str, np.ndarray] = {}
    for name in wrt:
        x = np.asarray(point.get(name, 0.0), dtype=dtype)
        h = np.asarray(step, dtype=dtype) if step is not None else default_step(x, dtype)
        if name not in graph.var_nodes:  # f does not depend on it
            grad[name] = np.zeros_like(x)
            steps[name] = h
            estimate[name] = np.zeros(np.shape(x))
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
        estimate[name] = _central_estimate(graph, point, name, h, (xp, xm), fs, dtype)
    return FiniteResult(grad, steps, estimate=estimate)
