"""Dual numbers: a value and its tangents, pushed through the rule table.

A `Dual` carries `value` (an array of any shape) and `tangent`, an array with one extra leading
axis, one entry per seeded direction (None means all tangents are zero). So forward mode runs
once with a vector of tangents, not once per input. The derivative knowledge is in
`rules.RULES`: `apply` computes the rule's value and multiplies its partials by the tangents,
the chain rule for one node: t_out = sum_j (d out / d arg_j) * t_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rules import RULES


@dataclass(frozen=True)
class Dual:
    value: np.ndarray
    tangent: np.ndarray | None = None

    def __add__(self, other: object) -> Dual:
        return apply("add", self, lift(other))

    def __radd__(self, other: object) -> Dual:
        return apply("add", lift(other), self)

    def __sub__(self, other: object) -> Dual:
        return apply("sub", self, lift(other))

    def __rsub__(self, other: object) -> Dual:
        return apply("sub", lift(other), self)

    def __mul__(self, other: object) -> Dual:
        return apply("mul", self, lift(other))

    def __rmul__(self, other: object) -> Dual:
        return apply("mul", lift(other), self)

    def __truediv__(self, other: object) -> Dual:
        return apply("div", self, lift(other))

    def __rtruediv__(self, other: object) -> Dual:
        return apply("div", lift(other), self)

    def __pow__(self, other: object) -> Dual:
        return apply("pow", self, lift(other))

    def __neg__(self) -> Dual:
        return apply("neg", self)


def lift(x: object) -> Dual:
    return x if isinstance(x, Dual) else Dual(np.asarray(x))


def apply(op: str, *args: Dual) -> Dual:
    """The dual number of op(*args): value from the rule, tangent by the chain rule."""
    rule = RULES[op]
    values = tuple(a.value for a in args)
    with np.errstate(all="ignore"):
        out = np.asarray(rule.value(*values))
        tangent = None
        for j, a in enumerate(args):
            if a.tangent is None:
                continue
            # A zero tangent contributes exactly zero, even against an infinite partial: as if
            # each direction had its own sweep (x*sqrt(y) at y = 0 has ∂/∂x = 0, not nan).
            term = np.where(a.tangent == 0, 0.0, rule.partial(j, out, values) * a.tangent)
            tangent = term if tangent is None else tangent + term
    return Dual(out, tangent)
