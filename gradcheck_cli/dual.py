"""Dual numbers: a value and its tangents, carried through the one interpreter (forward mode).

A `Dual` carries `value` (an array broadcastable to the batch) and `tangent`, an array with one
extra leading axis, one entry per direction (D directions at once, so forward mode runs once
with a vector of tangents, not once per input). The derivative knowledge is in `rules.RULES`:
`apply` computes the rule's value and multiplies its partials by the tangents, the chain rule
for one node: t_out = Σ_j (∂out/∂arg_j) · t_j.

Zero convention (the same as reverse mode's, `interpret.backward`): a tangent that is
*structurally* zero contributes nothing; a numeric zero multiplies like any number. Structure
is tracked per direction: `support[d]` says whether the value depends on direction d at all
(None: on every direction; `tangent` None: on none). So `x*sqrt(y)` at y = 0 has ∂/∂x = 0 (the
x direction never meets sqrt's infinite partial, as in reverse mode), while `sqrt(x**2)` at
x = 0 gives 0 · ∞ = nan in the x direction, exactly as reverse mode does, and the report can
explain it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Node
from .rules import RULES


@dataclass(frozen=True)
class Dual:
    value: np.ndarray
    tangent: np.ndarray | None = None  # (D, ...) or None: structurally zero in every direction
    support: np.ndarray | None = None  # (D,) bool; None: structurally nonzero in every direction


def _masked(term: np.ndarray, support: np.ndarray | None) -> np.ndarray:
    """Rows of directions outside the support are structural zeros: exactly 0, whatever the
    partial was (an infinite partial times a structural zero is no contribution)."""
    if support is None:
        return term
    return np.where(support.reshape((-1,) + (1,) * (np.ndim(term) - 1)), term, 0.0)


def expand(t: np.ndarray, ndim: int) -> np.ndarray:
    """A tangent (D, *s) with value axes added in front of s so it broadcasts against a value of
    `ndim` dimensions (a scalar point's tangent (D,) against a batch (K,) becomes (D, 1))."""
    extra = ndim - (t.ndim - 1)
    return t.reshape((t.shape[0],) + (1,) * extra + t.shape[1:]) if extra > 0 else t


def union(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return None
    both = a | b
    return None if both.all() else both


def apply(node_op: str, args: Sequence[Dual], directional: bool = False) -> Dual:
    """The dual number of op(*args): value from the rule, tangent by the chain rule — or, with
    `directional`, by the rule's one-sided directional derivative where it has one (exact at a
    kink: it picks the branch the tangent moves into)."""
    rule = RULES[node_op]
    values = tuple(a.value for a in args)
    out = np.asarray(rule.value(*values))
    live = [a for a in args if a.tangent is not None]
    if not live:
        return Dual(out)
    if directional and rule.directional is not None:
        d = next(a.tangent for a in live).shape[0]  # type: ignore[union-attr]
        nd = max(np.ndim(out), *(np.ndim(v) for v in values))
        tangents = tuple(expand(a.tangent, nd) if a.tangent is not None else np.zeros((d,) + (1,) * nd)
                         for a in args)
        support = live[0].support
        for a in live[1:]:
            support = union(support, a.support)
        return Dual(out, np.asarray(rule.directional(out, values, tangents), dtype=float), support)
    tangent: np.ndarray | None = None
    support: np.ndarray | None = np.zeros(0, dtype=bool)  # placeholder: replaced by the first term
    first = True
    for j, a in enumerate(args):
        if a.tangent is None:
            continue
        partial = np.asarray(rule.partial(j, out, values))
        term = _masked(partial * expand(a.tangent, partial.ndim), a.support)
        tangent = term if tangent is None else tangent + term
        support = a.support if first else union(support, a.support)
        first = False
    return Dual(out, tangent, support)


class Duals:
    """The interpretation that carries dual numbers. `seeds[name]` is the tangent of a variable
    over the D directions, shape (D,) (broadcast over the batch); a variable without a seed, or
    a zero entry of a seed, is a structural zero in that direction."""

    def __init__(
        self,
        point: Mapping[str, Any],
        seeds: Mapping[str, np.ndarray],
        dtype: type = np.float64,
        directional: bool = False,
    ) -> None:
        self.point, self.seeds, self.dtype, self.directional = point, seeds, dtype, directional

    def var(self, i: int, node: Node) -> Dual:
        value = np.asarray(self.point[node.name], dtype=self.dtype)  # type: ignore[index]
        seed = self.seeds.get(node.name)  # type: ignore[arg-type]
        if seed is None or not np.any(seed):
            return Dual(value)
        seed = np.asarray(seed, dtype=self.dtype)
        tangent = np.broadcast_to(seed.reshape((-1,) + (1,) * np.ndim(value)),
                                  (len(seed),) + np.shape(value))
        support = seed != 0
        return Dual(value, tangent, None if support.all() else support)

    def const(self, i: int, node: Node) -> Dual:
        return Dual(np.asarray(node.constant_value(), dtype=self.dtype))

    def op(self, i: int, node: Node, args: tuple[Dual, ...]) -> Dual:
        return apply(node.op, args, self.directional)
