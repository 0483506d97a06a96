"""The one interpreter: a walk over the graph's nodes in topological order, and the same walk
reversed for the backward sweep.

Every method differs only in *what it carries* through the walk, never in the walk itself
(the shape of JAX's `eval_jaxpr`): an `Interpretation` says what a variable, a constant and an
operation become. The carriers are

- `Values`: numpy arrays, the batch of points on the leading axis (evaluation);
- `Shifted`: `Values` with one variable replaced (finite differences), optionally evaluated in
  complex arithmetic where it depends on that variable (the complex step) and with every
  rounded result moved by a chosen amount (the rounding model of the error estimates);
- `dual.Duals`: dual numbers, value and tangents (forward mode, and the one-sided directional
  sweeps of the kink analysis);
- in other modules: SymPy expressions (`symbolic.to_sympy`) and formula text
  (`explain.node_texts`).

A node kind is added in one place: `walk` dispatches on `var`, `const` and operations, and an
operation's meaning is its entry in `rules.RULES`.

`backward` is the reversed walk of reverse-mode AD. It offers every edge it crosses to an
optional observer (node, argument, upstream adjoint, local partial, contribution, the
argument's adjoint after adding it), so the step-by-step trace, graph pictures and
explanations read the real sweep instead of running another. Zero convention, shared with
forward mode: a structurally zero adjoint (None: the node does not lead to the output)
contributes nothing; a numeric zero multiplies like any number, so 0 · ∞ shows up as nan in
both modes and can be explained.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from fractions import Fraction
from typing import Any, Protocol, TypeVar

import numpy as np

from .graph import Graph, Node
from .rules import RULES

T = TypeVar("T")


class Interpretation(Protocol[T]):
    """What a walk carries: how a variable, a constant and an operation are interpreted."""

    def var(self, i: int, node: Node) -> T: ...

    def const(self, i: int, node: Node) -> T: ...

    def op(self, i: int, node: Node, args: tuple[T, ...]) -> T: ...


def walk(
    graph: Graph,
    interp: Interpretation[T],
    *,
    upto: int | None = None,
    keep: Container[int] | None = None,
) -> list[T]:
    """Interpret every node (up to `upto`), children before parents.

    With `keep`, a value is dropped (set to None) after its last use unless its index is in
    `keep`: evaluating 10⁵ nodes at 10⁶ points then holds only the live values."""
    n = len(graph.nodes) if upto is None else upto + 1
    out: list[Any] = [None] * n
    last = graph.last_use if keep is not None else None
    with np.errstate(all="ignore"):
        for i in range(n):
            node = graph.nodes[i]
            if node.op == "var":
                out[i] = interp.var(i, node)
            elif node.op == "const":
                out[i] = interp.const(i, node)
            else:
                out[i] = interp.op(i, node, tuple(out[a] for a in node.args))
                if last is not None:
                    for a in node.args:
                        if last[a] == i and a not in keep:  # type: ignore[operator]
                            out[a] = None
    return out


# An edge observer: (node i, position j, argument a, the adjoint of i flowing back, the local
# partial ∂u_i/∂u_a, the contribution (their product), and the adjoint of a after adding it)
Observer = Callable[[int, int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def backward(
    graph: Graph,
    values: Sequence[np.ndarray],
    wrt: Sequence[str],
    *,
    output: int | None = None,
    observer: Observer | None = None,
    perturb: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
) -> list[np.ndarray | None]:
    """Adjoint d(output)/du of every node (None where it is structurally zero), by the reversed
    walk: each node's adjoint times each local partial from `rules.RULES` is added into its
    argument's adjoint (gradients add where a value branches). Only edges that lead back to a
    variable of `wrt` are crossed. `perturb(i, j, partial)`, if given, replaces each local
    partial (the rounding model moves every partial by a chosen amount)."""
    out = graph.output if output is None else output
    needs = graph.depends_on(wrt)
    adjoint: list[np.ndarray | None] = [None] * len(graph.nodes)
    adjoint[out] = np.ones_like(values[out])
    with np.errstate(all="ignore"):
        for i in range(out, -1, -1):
            upstream = adjoint[i]
            node = graph.nodes[i]
            if upstream is None or not node.args:
                continue
            args = tuple(values[a] for a in node.args)
            rule = RULES[node.op]
            for j, a in enumerate(node.args):
                if not needs[a]:
                    continue
                partial = rule.partial(j, values[i], args)
                if perturb is not None:
                    partial = perturb(i, j, partial)
                contribution = upstream * partial
                adjoint[a] = contribution if adjoint[a] is None else adjoint[a] + contribution
                if observer is not None:
                    observer(i, j, a, upstream, partial, contribution, adjoint[a])
    return adjoint


# --------------------------------------------------------------------------------------------
# Carriers of plain values
# --------------------------------------------------------------------------------------------


class Values:
    """numpy values at a batch of points: `point` maps each variable to an array (K,) or a
    scalar; constants stay unbatched. Domain errors and overflow give nan/inf, never raise."""

    def __init__(self, point: Mapping[str, Any], dtype: type = np.float64) -> None:
        self.point = point
        self.dtype = dtype

    def var(self, i: int, node: Node) -> np.ndarray:
        return np.asarray(self.point[node.name], dtype=self.dtype)  # type: ignore[index]

    def const(self, i: int, node: Node) -> np.ndarray:
        return np.asarray(node.constant_value(), dtype=self.dtype)

    def op(self, i: int, node: Node, args: tuple[np.ndarray, ...]) -> np.ndarray:
        return np.asarray(RULES[node.op].value(*args))


class NotComplexCapable(Exception):
    """An operation that cannot be evaluated in complex arithmetic (the message names it)."""


class Shifted(Values):
    """Values with the variable `name` at `xs` (extra leading axes broadcast over the batch).

    With `dep` (graph.depends_on([name])) xs is complex and the nodes that depend on it are
    evaluated in complex arithmetic, by `Rule.complex_value` where the real implementation is
    not complex-capable; `NotComplexCapable` if a primitive cannot be. With `signs` (two arrays
    of shape (trials, nodes): real parts, imaginary parts), every rounded value — each
    operation's result, each constant a float cannot hold — is moved by ±`size` times its
    possible rounding error: eps relative, and one step of the subnormal range absolute (a
    result that underflowed is off by that much, not by eps of itself); one trial per row,
    along a new leading axis."""

    def __init__(
        self,
        point: Mapping[str, Any],
        name: str,
        xs: np.ndarray,
        dtype: type,
        dep: Sequence[bool] | None = None,
        signs: tuple[np.ndarray, np.ndarray] | None = None,
        size: float = 0.0,
    ) -> None:
        super().__init__(point, dtype)
        self.name, self.xs, self.dep, self.signs = name, xs, dep, signs
        self.lead = (-1,) + (1,) * np.ndim(xs)
        self.size = size * float(np.finfo(dtype).eps)
        self.floor = self.size * float(np.finfo(dtype).tiny)

    def var(self, i: int, node: Node) -> np.ndarray:
        return self.xs if node.name == self.name else super().var(i, node)

    def const(self, i: int, node: Node) -> np.ndarray:
        v = super().const(i, node)
        rounded = node.name is not None or node.exact != Fraction(float(v))
        return self._perturb(i, v, 1.0) if rounded else v

    def op(self, i: int, node: Node, args: tuple[np.ndarray, ...]) -> np.ndarray:
        rule = RULES[node.op]
        in_complex = self.dep is not None and self.dep[i]
        fn = (rule.complex_value or rule.value) if in_complex else rule.value
        try:
            v = np.asarray(fn(*args))
        except (TypeError, ValueError):
            v = None
        if v is None or (in_complex and v.dtype.kind != "c"):
            raise NotComplexCapable(f"complex step cannot evaluate {node.op} in complex arithmetic")
        ulps: Any = 1.0
        if in_complex and node.op == "pow":
            # complex u**v is exp(v log u), off by about |v log |u|| eps, not eps
            a, b = (np.real(x).astype(np.float64) for x in args)
            ulps = np.maximum(1.0, np.abs(b * np.log(np.where(a == 0, 1.0, np.abs(a)))))
        return self._perturb(i, v, ulps)

    def _perturb(self, i: int, v: np.ndarray, ulps: Any) -> np.ndarray:
        if self.signs is None:
            return v
        dtype = self.dtype
        re_sign = self.signs[0][:, i].reshape(self.lead)
        im_sign = self.signs[1][:, i].reshape(self.lead)
        re = (1 + self.size * ulps * re_sign).astype(dtype)
        re_floor = (self.floor * re_sign).astype(dtype)
        if v.dtype.kind == "c":
            im = (1 + self.size * ulps * im_sign).astype(dtype)
            return (v.real * re + re_floor) + 1j * (v.imag * im + (self.floor * im_sign).astype(dtype))
        return v * re + re_floor


def evaluate_output(
    graph: Graph, interp: Interpretation[np.ndarray], output: int | None = None
) -> np.ndarray:
    """The value of one output only, freeing intermediate values as the walk goes."""
    out = graph.output if output is None else output
    return walk(graph, interp, upto=out, keep={out})[out]
