"""The one table of primitive rules: each operation's value and its local partial derivatives.

Both AD modes read this table and nothing else about derivatives: reverse mode multiplies a
partial by the adjoint flowing back, forward mode by the tangent flowing forward. The symbolic
and finite-difference methods never read it; they are the independent oracles that catch a
wrong entry here (and `tests/test_rules.py` checks every entry against `sympy.diff`).

Conventions:
- `value(*args)` takes numpy arrays (any shape, broadcast: the batch of points is the leading
  axis) and returns one. Every rule is elementwise, so a node's shape is its arguments'
  broadcast shape (`graph._shape_of`); a later rule that is not elementwise (sum, matmul) will
  give its own shape, JVP and VJP.
- `partials[j](out, *args)` is d(out)/d(args[j]); it receives the node's own output `out` so
  exp, sigmoid, tanh, sqrt reuse it. An n-ary rule (max, min) has one partial
  `partials[0](j, out, *args)` for every argument; what all of a node's partials share (max's
  tie count) is its `shared(out, args)`, computed once per node, so m arguments cost O(m).
- Values are computed stably where the primitive is a library function (sigmoid(-800) and
  softplus(800) are exact); what a user writes out by hand keeps its own numerics.
- Partials are numpy functions of numpy arrays; they are not written in the table's own ops,
  so they cannot be differentiated again yet (Hessians by forward-over-reverse will need that;
  `Dual` values do not pass through a partial).
- At a kink the AD value is one one-sided derivative, chosen as PyTorch does: relu'(0) = 0,
  abs'(0) = 0, leaky_relu'(0) = slope, hard_swish'(±3) = the inner branch's slope, ties in
  max/min share the gradient evenly.
  A non-smooth rule also gives `directional` and `gap`, for the kink analysis (kinks.py).
- `complex_value`, where set, is the same function written so that it accepts complex arrays
  (for the complex-step method in finite.py). It is set only where `value`'s stable real form
  is not complex-capable (np.abs/np.where on the sign of x, math.erf); everywhere else `value`
  itself works on complex numbers. It never replaces `value` for real arguments.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any  # numpy array (or, later, an array of dual numbers)

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_erf_scalar = np.frompyfunc(math.erf, 1, 1)
_erfc_scalar = np.frompyfunc(math.erfc, 1, 1)


def erf(x: Array) -> Array:
    """Elementwise erf (numpy has none; math.erf is correctly rounded to within 1 ulp)."""
    x = np.asarray(x)
    return np.asarray(_erf_scalar(x), dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def erfc(x: Array) -> Array:
    """Elementwise 1 - erf(x), accurate where erf(x) is near 1 (no cancellation)."""
    x = np.asarray(x)
    return np.asarray(_erfc_scalar(x), dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def sigmoid(x: Array) -> Array:
    # exp of a non-positive number never overflows, so both tails are exact.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def softplus(x: Array) -> Array:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid_complex(z: Array) -> Array:
    # The split of `sigmoid` on the sign of Re z, each branch analytic: exp never sees an
    # argument with positive real part, so it cannot overflow.
    z = np.asarray(z)
    pos = z.real >= 0
    e = np.exp(np.where(pos, -z, z))
    return np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def _swish_complex(z: Array) -> Array:
    # sigmoid first, then z times it: numpy may swap the operands of `z * temporary` in place
    # for large arrays, and a complex product is not bit for bit commutative, so this order
    # keeps the complex step's bits the same at any chunk size
    s = _sigmoid_complex(z)
    return z * s


def _log1p_complex(z: Array) -> Array:
    # numpy's complex log1p is log(1 + z), which loses the real part of a tiny z; this keeps it:
    # |1 + z|**2 = 1 + a*(2 + a) + b*b and arg(1 + z) = atan2(b, 1 + a).
    a, b = z.real, z.imag
    return 0.5 * np.log1p(a * (2.0 + a) + b * b) + 1j * np.arctan2(b, 1.0 + a)


def _softplus_complex(z: Array) -> Array:
    # softplus(z) = max(Re z, 0) + log1p(exp(-|Re z|)), the max and |.| taken on Re z only.
    z = np.asarray(z)
    pos = z.real >= 0
    return np.where(pos, z, 0.0) + _log1p_complex(np.exp(np.where(pos, -z, z)))


def _mpmath_complex_one(fn: Callable[[Any, Any], Any], z: complex, flat: bool) -> complex:
    import mpmath  # only the complex-step method needs it (a SymPy dependency anyway)

    # mpmath's error is relative to |fn(z)|, while the imaginary part a complex step looks at
    # is h fn'(Re z): smaller by |z| / |Im z| (1e32 for h = eps² |x|, far more for a tangent
    # that is already small), and, where fn is `flat` (erf, near ±1 where erf' = e^(-x²) is
    # tiny), by e^(-x²) more (capped where h e^(-x²) underflows anyway). Start with that many
    # digits and a float's worth on top; then double until two evaluations agree. (Starting
    # low, both would give an imaginary part of 0 and agree.)
    scale = math.log10(abs(z)) - math.log10(abs(z.imag)) if z.imag and z.real else 0.0
    dps = 30 + int(min(max(scale, 0.0), 700.0))
    if flat:
        dps += int(min(z.real**2, 800.0) / math.log(10))
    previous = None
    for _ in range(6):
        with mpmath.workdps(dps):
            w = complex(fn(mpmath, mpmath.mpc(z.real, z.imag)))
        if previous is not None and all(
            abs(u - v) <= 2.0**-53 * abs(u) for u, v in ((w.real, previous.real), (w.imag, previous.imag))
        ):
            break
        previous, dps = w, 2 * dps
    return w


def _mpmath_complex(fn: Callable[[Any, Any], Any], z: Array, flat: bool = False,
                    taylor: Callable[[Any, Any], tuple[Any, Any, Any, Any]] | None = None) -> Array:
    """fn(mpmath, z) elementwise on a complex array, rounded once to complex (the arrays are small).

    With `taylor(mp, x)` = (f, f′, f″, f‴) at a real x: where Im z is tiny (a complex step),
    f(x + iy) = f - y²/2 f″ + i (y f′ - y³/6 f‴) + O(y⁴ f⁗), evaluated in mpmath at 40 digits
    from real functions only. |y| (|x| + 1) <= 1e-12 makes the next terms smaller than 1e-48
    relative to the ones kept, so this is as accurate as the direct evaluation, which needs
    hundreds of digits there (erf(25 + 1e-30 i): ~0.2 s an element)."""
    z = np.asarray(z)
    out = np.empty(z.shape, dtype=z.dtype if z.dtype.kind == "c" else np.complex128)
    for index, v in np.ndenumerate(z):
        w = complex(v)
        if taylor is not None and _tiny_imaginary(w):
            out[index] = _taylor_complex_one(taylor, w)
        else:
            out[index] = _mpmath_complex_one(fn, w, flat)
    return out


def _tiny_imaginary(z: complex) -> bool:
    return math.isfinite(z.real) and math.isfinite(z.imag) and abs(z.real) <= 1e4 \
        and abs(z.imag) * (abs(z.real) + 1.0) <= 1e-12


def _taylor_complex_one(taylor: Callable[[Any, Any], tuple[Any, Any, Any, Any]], z: complex) -> complex:
    import mpmath

    with mpmath.workdps(40):
        x, y = mpmath.mpf(z.real), mpmath.mpf(z.imag)
        f0, f1, f2, f3 = taylor(mpmath, x)
        return complex(mpmath.mpc(f0 - y * y / 2 * f2, y * f1 - y**3 / 6 * f3))


def _erf_taylor(mp: Any, x: Any) -> tuple[Any, Any, Any, Any]:
    d1 = 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)  # erf′ = 2/√π e^(-x²)
    return mp.erf(x), d1, -2 * x * d1, (4 * x * x - 2) * d1


def _gelu_taylor(mp: Any, x: Any) -> tuple[Any, Any, Any, Any]:
    # gelu = x Φ(x), Φ(x) = erfc(-x/√2)/2 (no cancellation in the left tail), φ = Φ′
    cdf = mp.erfc(-x / mp.sqrt(2)) / 2
    pdf = mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)
    return x * cdf, cdf + x * pdf, pdf * (2 - x * x), pdf * (x**3 - 4 * x)


def erf_complex(z: Array) -> Array:
    """Elementwise erf of complex arrays."""
    return _mpmath_complex(lambda mp, w: mp.erf(w), z, flat=True, taylor=_erf_taylor)


def gelu_complex(z: Array) -> Array:
    """Elementwise gelu of complex arrays, all of it in mpmath: in float arithmetic, z/√2 would be
    rounded before erfc, which moves erfc(21) (gelu at -30) by 1e-13 relative."""
    return _mpmath_complex(lambda mp, w: w * mp.erfc(-w / mp.sqrt(2)) / 2, z, taylor=_gelu_taylor)


def _tie_count(out: Array, args: tuple[Array, ...]) -> Array:
    """How many arguments of max (min) equal its value, per point."""
    ties = sum((a == out) * 1.0 for a in args)
    return ties


def _max_partial(j: int, out: Array, *args: Array, shared: Array | None = None) -> Array:
    """∂max/∂args[j]: ties share evenly. `shared` is the tie count (`_tie_count`), computed once
    per node by `Rule.partial` rather than once per argument (which made a node of m arguments
    cost m² comparisons)."""
    ties = _tie_count(out, args) if shared is None else shared
    return (args[j] == out) / ties


# One entry per thread: the last n-ary node's (rule, out, args) and what its partials share.
# Both AD modes ask for every partial of a node in a row, with the same `args` tuple.
_SHARED = threading.local()


@dataclass(frozen=True)
class Rule:
    value: Callable[..., Array]
    partials: tuple[Callable[..., Array], ...]
    arity: int | None = 1  # None: any number of arguments (n-ary, one shared partial)
    smooth: bool = True
    # Non-smooth rules only. `directional(out, args, tangents)` is the one-sided directional
    # derivative, exact at a kink too (it picks the branch the tangent moves into);
    # `gap(args, tangents)` is (g, dg): a signed distance that is 0 exactly at the nearest
    # kink, and its tangent, so the distance to the kink along a direction is |g / dg|.
    directional: Callable[..., Array] | None = None
    gap: Callable[..., tuple[Array, Array]] | None = None
    complex_value: Callable[..., Array] | None = None  # `value` for complex arguments, if it differs
    # n-ary rules only: shared(out, args) is what all partials of one node have in common
    # (max's tie count), passed to the partial as `shared=`, computed once per node
    shared: Callable[..., Array] | None = None

    def partial(self, j: int, out: Array, args: tuple[Array, ...]) -> Array:
        if self.arity is None:
            if self.shared is None:
                return self.partials[0](j, out, *args)
            # identity, not equality: the entry holds `out` and `args` themselves, so neither
            # can be freed and its id reused while the entry lives
            entry = getattr(_SHARED, "entry", None)
            if entry is None or entry[0] is not self or entry[1] is not out or entry[2] is not args:
                entry = (self, out, args, self.shared(out, args))
                _SHARED.entry = entry
            return self.partials[0](j, out, *args, shared=entry[3])
        return self.partials[j](out, *args)


def _rule(value: Callable[..., Array], *partials: Callable[..., Array], **kw: Any) -> Rule:
    arity = kw.pop("arity", len(partials))
    return Rule(value, tuple(partials), arity=arity, **kw)


RULES: dict[str, Rule] = {
    # arithmetic (the parser keeps - and / as typed, so they are primitives too)
    "add": _rule(np.add, lambda o, a, b: np.ones_like(o), lambda o, a, b: np.ones_like(o)),
    "sub": _rule(np.subtract, lambda o, a, b: np.ones_like(o), lambda o, a, b: -np.ones_like(o)),
    "mul": _rule(np.multiply, lambda o, a, b: b, lambda o, a, b: a),
    "div": _rule(np.divide, lambda o, a, b: 1.0 / b, lambda o, a, b: -o / b),
    "neg": _rule(np.negative, lambda o, a: -np.ones_like(o)),
    # b = 0: the partial is 0 even at a = 0, where b * a**(b-1) would be 0 * inf.
    # ∂/∂b at a = 0, b > 0 is the limit 0 (a**b ≡ 0 for a = 0, b > 0; u**v log u -> 0):
    # 0 * log(0) would be 0 * -inf = nan (autograd's own test: 0**y at y = 0.4556).
    "pow": _rule(
        np.power,
        lambda o, a, b: np.where(b == 0, 0.0, b * a ** (b - 1)),
        lambda o, a, b: np.where((a == 0) & (b > 0), 0.0, o * np.log(a)),
    ),
    # elementary functions
    "sin": _rule(np.sin, lambda o, x: np.cos(x)),
    "cos": _rule(np.cos, lambda o, x: -np.sin(x)),
    "tan": _rule(np.tan, lambda o, x: 1.0 + o * o),
    "asin": _rule(np.arcsin, lambda o, x: 1.0 / np.sqrt(1.0 - x * x)),
    "acos": _rule(np.arccos, lambda o, x: -1.0 / np.sqrt(1.0 - x * x)),
    "atan": _rule(np.arctan, lambda o, x: 1.0 / (1.0 + x * x)),
    "sinh": _rule(np.sinh, lambda o, x: np.cosh(x)),
    "cosh": _rule(np.cosh, lambda o, x: np.sinh(x)),
    # sech² directly: 1 - tanh² cancels to 0 for |x| > 19
    "tanh": _rule(np.tanh, lambda o, x: np.cosh(x) ** -2.0),
    "exp": _rule(np.exp, lambda o, x: o),
    "log": _rule(np.log, lambda o, x: 1.0 / x),
    "sqrt": _rule(np.sqrt, lambda o, x: 0.5 / o),
    "erf": _rule(erf, lambda o, x: _TWO_OVER_SQRT_PI * np.exp(-x * x), complex_value=erf_complex),
    # the functions of a calculus course (homework answers are written with them)
    "sec": _rule(lambda x: 1.0 / np.cos(x), lambda o, x: o * np.tan(x)),
    "csc": _rule(lambda x: 1.0 / np.sin(x), lambda o, x: -o / np.tan(x)),
    "cot": _rule(lambda x: np.cos(x) / np.sin(x), lambda o, x: -(1.0 + o * o)),
    # asec x = acos(1/x), acsc x = asin(1/x), acot x = atan(1/x) (SymPy's conventions)
    "asec": _rule(lambda x: np.arccos(1.0 / x), lambda o, x: 1.0 / (np.abs(x) * np.sqrt(x * x - 1.0))),
    "acsc": _rule(lambda x: np.arcsin(1.0 / x), lambda o, x: -1.0 / (np.abs(x) * np.sqrt(x * x - 1.0))),
    "acot": _rule(lambda x: np.arctan(1.0 / x), lambda o, x: -1.0 / (1.0 + x * x)),
    "asinh": _rule(np.arcsinh, lambda o, x: 1.0 / np.sqrt(x * x + 1.0)),
    # sqrt(x - 1) sqrt(x + 1), not sqrt(x² - 1), which loses x - 1 near 1
    "acosh": _rule(np.arccosh, lambda o, x: 1.0 / (np.sqrt(x - 1.0) * np.sqrt(x + 1.0))),
    "atanh": _rule(np.arctanh, lambda o, x: 1.0 / ((1.0 - x) * (1.0 + x))),
    "log2": _rule(np.log2, lambda o, x: 1.0 / (x * _LN2)),
    "log10": _rule(np.log10, lambda o, x: 1.0 / (x * _LN10)),
    # the real cube root (cbrt(-8) = -2); infinite slope at 0
    "cbrt": _rule(np.cbrt, lambda o, x: 1.0 / (3.0 * o * o), complex_value=lambda z: _cbrt_complex(z)),
    # atan2(y, x): the angle of (x, y)
    "atan2": _rule(np.arctan2, lambda o, y, x: x / (x * x + y * y), lambda o, y, x: -y / (x * x + y * y),
                   complex_value=lambda y, x: _atan2_complex(y, x)),
    # non-smooth
    "abs": _rule(
        np.abs, lambda o, x: np.sign(x), smooth=False,
        directional=lambda o, a, t: np.where(a[0] == 0, np.abs(t[0]), np.sign(a[0]) * t[0]),
        gap=lambda a, t: (a[0], t[0]),
    ),
    "max": _rule(
        lambda *a: _reduce(np.maximum, a), _max_partial, arity=None, smooth=False, shared=_tie_count,
        directional=lambda o, a, t: _tied_tangent(np.max, o, a, t),
        gap=lambda a, t: _top_two_gap(a, t, largest=True),
    ),
    "min": _rule(
        lambda *a: _reduce(np.minimum, a), _max_partial, arity=None, smooth=False, shared=_tie_count,
        directional=lambda o, a, t: _tied_tangent(np.min, o, a, t),
        gap=lambda a, t: _top_two_gap(a, t, largest=False),
    ),
    # activations of the lecture notes
    # σ(x)σ(-x), not o(1 - o), which cancels to 0 for x > 37
    "sigmoid": _rule(sigmoid, lambda o, x: sigmoid(x) * sigmoid(-x), complex_value=_sigmoid_complex),
    "relu": _rule(
        lambda x: np.maximum(x, 0), lambda o, x: (x > 0) * 1.0, smooth=False,
        directional=lambda o, a, t: np.where(a[0] == 0, np.maximum(t[0], 0), (a[0] > 0) * t[0]),
        gap=lambda a, t: (a[0], t[0]),
    ),
    "leaky_relu": _rule(
        lambda x, s: np.where(x > 0, x, s * x),
        lambda o, x, s: np.where(x > 0, 1.0, s),
        lambda o, x, s: np.where(x > 0, 0.0, x),
        smooth=False,
        # at x = 0 the slope's own tangent is multiplied by x = 0
        directional=lambda o, a, t: np.where(
            (a[0] > 0) | ((a[0] == 0) & (t[0] > 0)), t[0], a[1] * t[0] + a[0] * t[1]
        ),
        gap=lambda a, t: (a[0], t[0]),
    ),
    "elu": _rule(
        # expm1 of min(x, 0): the branch np.where discards must not overflow either.
        lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
        lambda o, x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0))),
        lambda o, x, a: np.where(x > 0, 0.0, np.expm1(np.minimum(x, 0))),
        smooth=False,
        directional=lambda o, a, t: np.where(
            (a[0] > 0) | ((a[0] == 0) & (t[0] > 0)),
            t[0],
            a[1] * np.exp(np.minimum(a[0], 0)) * t[0] + np.expm1(np.minimum(a[0], 0)) * t[1],
        ),
        gap=lambda a, t: (a[0], t[0]),
    ),
    "softplus": _rule(softplus, lambda o, x: sigmoid(x), complex_value=_softplus_complex),
    "swish": _rule(
        lambda x: x * sigmoid(x), lambda o, x: sigmoid(x) * (1.0 + x * sigmoid(-x)),
        complex_value=_swish_complex,
    ),
    # erfc(-x/√2) = 1 + erf(x/√2) without cancellation in the left tail
    "gelu": _rule(
        lambda x: 0.5 * x * erfc(-x / _SQRT2),
        lambda o, x: 0.5 * erfc(-x / _SQRT2) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x),
        complex_value=gelu_complex,
    ),
    "hard_swish": _rule(
        lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        lambda o, x: np.where(x < -3.0, 0.0, np.where(x <= 3.0, (2.0 * x + 3.0) / 6.0, 1.0)),
        smooth=False,
        directional=lambda o, a, t: t[0] * _hard_swish_slope(a[0], t[0]),
        gap=lambda a, t: (np.where(np.abs(a[0] + 3) < np.abs(a[0] - 3), a[0] + 3, a[0] - 3), t[0]),
    ),
}


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _cbrt_complex(z: Array) -> Array:
    """The real cube root continued into the complex plane near the real axis (for the complex
    step): the principal z**(1/3) is not real for negative z, -(-z)**(1/3) is."""
    z = np.asarray(z, dtype=complex)
    pos = z.real >= 0
    return np.where(pos, np.where(pos, z, 1) ** (1 / 3), -(np.where(pos, 1, -z) ** (1 / 3)))


def _atan2_complex(y: Array, x: Array) -> Array:
    """atan2 near the real plane: atan(y/x) plus the quadrant's constant (locally analytic)."""
    y, x = np.asarray(y), np.asarray(x)
    shift = np.where(np.real(x) < 0, np.where(np.real(y) >= 0, math.pi, -math.pi), 0.0)
    return np.arctan(y / x) + shift


def _hard_swish_slope(x: Array, t: Array) -> Array:
    """The slope on the side of x that the tangent t moves into."""
    right = t > 0
    left_slope = np.where(x <= -3.0, 0.0, np.where(x <= 3.0, (2.0 * x + 3.0) / 6.0, 1.0))
    right_slope = np.where(x < -3.0, 0.0, np.where(x < 3.0, (2.0 * x + 3.0) / 6.0, 1.0))
    return np.where(right, right_slope, left_slope)


def _tied_tangent(pick: Callable[..., Array], out: Array, args: tuple[Array, ...],
                  tangents: tuple[Array, ...]) -> Array:
    """max (min) of the tangents of the arguments tied at the max (min): the directional
    derivative of max(a, b) where a = b is max(da, db)."""
    shape = np.broadcast_shapes(np.shape(out), *(np.shape(t) for t in tangents))
    fill = -np.inf if pick is np.max else np.inf
    stacked = np.stack([np.where(a == out, np.broadcast_to(t, shape), fill)
                        for a, t in zip(args, tangents)])
    return pick(stacked, axis=0)


def _top_two_gap(args: tuple[Array, ...], tangents: tuple[Array, ...], largest: bool) -> tuple[Array, Array]:
    """Signed difference between the best and second-best argument, and its tangent (the
    tangents carry a leading axis of directions, the arguments do not). Only the two tangents
    picked at each point are read (not a stack of all m): O(directions) per distinct pick."""
    a = np.stack(np.broadcast_arrays(*args))
    order = np.argsort(-a if largest else a, axis=0, kind="stable")
    first, second = order[:1], order[1:2]
    g = np.take_along_axis(a, first, 0)[0] - np.take_along_axis(a, second, 0)[0]
    d = tangents[0].shape[0]
    shape = np.broadcast_shapes(*(np.shape(t)[1:] for t in tangents), a.shape[1:])
    dg = _pick(tangents, np.broadcast_to(first[0], shape), d, shape) \
        - _pick(tangents, np.broadcast_to(second[0], shape), d, shape)
    return g, dg


def _pick(tangents: tuple[Array, ...], index: Array, d: int, shape: tuple[int, ...]) -> Array:
    """(d, *shape): at each point p, tangents[index[p]] (tangents (d, ...) broadcast to shape)."""
    picks = np.unique(index)
    if len(picks) == 1:
        return np.array(np.broadcast_to(tangents[int(picks[0])], (d, *shape)), dtype=float)
    out = np.empty((d, *shape))
    for u in picks:
        mask = np.broadcast_to(index == u, (d, *shape))
        out[mask] = np.broadcast_to(tangents[int(u)], (d, *shape))[mask]
    return out


def _reduce(f: Callable[[Array, Array], Array], args: tuple[Array, ...]) -> Array:
    out = args[0]
    for a in args[1:]:
        out = f(out, a)
    return out
