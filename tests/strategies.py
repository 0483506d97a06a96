"""Reusable hypothesis strategies for gradcheck formulas.

Public strategies (all documented below):

- `smooth_formulas()`   -> (text, point): a formula over smooth primitives and a point where every
                           primitive is defined, with moderate values, by construction.
- `valid_formulas()`    -> text: any syntactically valid formula over the whole grammar (all
                           functions, optional and n-ary arguments, ``^``, unary ``+``), with no
                           promise about domains.
- `any_text()`          -> text: anything at all, for fuzzing the parser (grammar tokens, ASCII,
                           unicode look-alikes, control characters, edge-case numbers).
- `near_valid_formulas()` -> text: a valid formula with a few random characters inserted,
                           deleted or replaced.
- `points(variables)`   -> dict: arbitrary values (nan, inf, huge, tiny) for the given names,
                           optionally with names missing or extra.
- `numbers()`           -> text of a numeric literal in any of the accepted spellings.

How `smooth_formulas` guarantees domains: every generated subexpression carries an interval
[lo, hi] that encloses its value for every point in the box |v| <= POINT_RADIUS + BOX_MARGIN
(interval arithmetic, conservative). A primitive with a restricted domain is only applied to a
subexpression whose interval lies inside the domain with a margin; otherwise the argument is
first transformed into a safe form (`1 + u**2`, `exp(tanh(u))`, `2 + cos(u)`, `0.9*tanh(u)`, ...).
Each subexpression also carries `slope`, a bound on the sum over variables of |d e/d v| on
the box (chain rule with interval bounds of every primitive's derivative). Whenever an interval
grows beyond `MAGNITUDE_CAP` the subexpression is squashed by a bounded function (tanh, atan,
erf, sin); whenever the slope bound exceeds `max_slope` (default `SLOPE_CAP`) the new node is
dropped and one of its operands is used instead. So values stay moderate and nothing
oscillates or bends faster than finite differences with h ~ 6e-6 can resolve (on sin(1e5*x)
central differences must disagree, by their nature, not by a bug). The margin around the box
means the formula is also smooth at the finite-difference probes x +- h (h ~ 6e-6*max(1, |x|))
and at 1e-3-sized steps around the point.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")
Numbers = st.SearchStrategy[str]

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

#: Default variable pool: short names, a name with a digit, and one that sorts "naturally" late.
VARIABLES: tuple[str, ...] = ("x", "y", "z", "w1", "x10")

#: Smooth unary primitives `smooth_formulas` may call.
SMOOTH_FUNCTIONS: tuple[str, ...] = (
    "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt", "erf",
    "sigmoid", "softplus", "swish", "gelu", "asin", "acos",
)

#: Every callable name of the grammar with its (min, max) argument count (None: unbounded).
#: Kept here, not imported from the package, so the strategies are an independent statement
#: of the grammar.
FUNCTION_ARITY: dict[str, tuple[int, int | None]] = {
    **{name: (1, 1) for name in SMOOTH_FUNCTIONS},
    "abs": (1, 1), "relu": (1, 1), "hard_swish": (1, 1), "silu": (1, 1),
    "leaky_relu": (1, 2), "elu": (1, 2), "max": (2, None), "min": (2, None),
}

CONSTANT_NAMES: tuple[str, ...] = ("pi", "e", "E")

#: Points are drawn from [-POINT_RADIUS, POINT_RADIUS]; domains are guaranteed on a box larger
#: by BOX_MARGIN so finite-difference probes and small steps around the point stay inside.
POINT_RADIUS = 2.5
BOX_MARGIN = 0.01
#: Largest |value| any subexpression may reach (by its conservative interval) before squashing.
MAGNITUDE_CAP = 1e3
#: Largest bound on sum_v |d e/d v| any subexpression may have (see the module docstring).
SLOPE_CAP = 100.0
#: Positive/nonzero arguments (log, sqrt, division, real powers) stay at least this far from 0.
MARGIN = 0.1

# Precedence levels, as in the parser: + - < * / < unary sign < ** ^ < atom.
ADD, MUL, UNARY, POW, ATOM = 1, 2, 3, 4, 5

# Unicode that looks like grammar, plus control and exotic whitespace / digits.
LOOKALIKES: tuple[str, ...] = (
    "\u2212", "\u2013", "\u2014", "\u00d7", "\u22c5", "\u00b7", "\u00f7", "\u00b2", "\u00b3",
    "\u0445", "\u03c0", "\uff58", "\uff13", "\u0663", "\u096a", "\u00a0", "\u2009", "\u3000",
    "\u2028", "\ufeff", "\u200b", "\U0001d465", "\u00e9", "e\u0301", "\u212f",
)
CONTROL: tuple[str, ...] = ("\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\r")


def choose(draw: st.DrawFn, options: Sequence[T]) -> T:
    """One of `options`, shrinking towards the first. (Cheaper than building a fresh
    `st.sampled_from` inside a composite: `st.integers` strategies are cached by hypothesis.)"""
    return options[draw(st.integers(0, len(options) - 1))]


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

_SHORT_DECIMALS = ("0.5", "1.5", "2.25", ".5", "3.", "0.25", "0.1", "2.5", "0.75", "1.0", "0.3")


def _long_decimal() -> st.SearchStrategy[str]:
    """17-20 significant digits: more than a float64 holds, so the literal is not a float."""
    return st.builds(
        lambda whole, frac: f"{whole}.{frac}",
        st.integers(0, 3),
        st.integers(10**16, 10**20 - 1).map(str),
    )


@functools.cache
def numbers(
    *, long: bool = True, scientific: bool = True, named: bool = True, huge: bool = False
) -> st.SearchStrategy[str]:
    """Text of a non-negative numeric literal (a sign is a separate token in the grammar).

    Small integers, short decimals (``.5``, ``3.``), scientific notation (``2.5e-1``, ``1E1``),
    the named constants ``pi``/``e``/``E`` (when `named`), long decimals with more digits than a
    float holds (when `long`), and, when `huge`, literals at the edges of float64's range and of
    the parser's limits (``1e308``, ``1e-320``, 400-digit integers, ``1e309``, ...), some of
    which must be rejected with a GradcheckError.
    """
    parts: list[st.SearchStrategy[str]] = [
        st.integers(0, 12).map(str),
        st.sampled_from(_SHORT_DECIMALS),
    ]
    if scientific:
        parts.append(st.builds(
            lambda m, e, sign, letter: f"{m}{letter}{sign}{e}",
            st.sampled_from(("1", "2.5", "5", "1.25", ".5")), st.integers(0, 3),
            st.sampled_from(("", "-", "+")), st.sampled_from(("e", "E")),
        ))
    if named:
        parts.append(st.sampled_from(CONSTANT_NAMES))
    if long:
        parts.append(_long_decimal())
    if huge:
        parts.append(st.sampled_from((
            "1e308", "1.7976931348623157e308", "1e-320", "5e-324", "2e-324", "1e-330", "1e309",
            "1e400", "1e401", "1e-401", "9" * 400, "9" * 401, "9" * 310, "0." + "0" * 399 + "1",
            "1e" + "0" * 400 + "5", "1e" + "0" * 4300 + "1", "0e999", "0" * 500,
        )))
        parts.append(st.builds(lambda n, e: f"{n}e{e}", st.integers(1, 99), st.integers(-420, 420)))
    return st.one_of(parts)


def number_value(text: str) -> float:
    """The float a literal produced by `numbers()` denotes (for interval bookkeeping)."""
    if text == "pi":
        return math.pi
    if text in ("e", "E"):
        return math.e
    return float(Fraction(text))


# --------------------------------------------------------------------------------------------
# Expressions with an enclosing interval (the machinery behind smooth_formulas)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A formula fragment: its text, the precedence of its top operator, an interval [lo, hi]
    that encloses its value on the whole point box, the variables it uses, and `slope`, an
    upper bound of sum_v |d value / d v| on the box."""

    text: str
    prec: int
    lo: float
    hi: float
    variables: frozenset[str] = frozenset()
    slope: float = 0.0

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    @property
    def gap(self) -> float:
        """min |value| on the box (0 when the interval contains 0)."""
        return 0.0 if self.lo <= 0.0 <= self.hi else min(abs(self.lo), abs(self.hi))


def _wrap(e: Expr, need: bool) -> str:
    return f"({e.text})" if need else e.text


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _cosh_range(lo: float, hi: float) -> tuple[float, float]:
    near = 0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))
    return math.cosh(near), math.cosh(max(abs(lo), abs(hi)))


def _swish_range(lo: float, hi: float) -> tuple[float, float]:
    # swish is increasing on [-1.2785, inf), its minimum is -0.27846 and it is < 0 for x < 0.
    low = lo * _sigmoid(lo) if lo >= -1.2785 else -0.2785
    return low, max(hi * _sigmoid(hi), 0.0)


def _gelu(x: float) -> float:
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def _gelu_range(lo: float, hi: float) -> tuple[float, float]:
    # gelu is increasing on [-0.7518, inf), its minimum is -0.16997 and it is < 0 for x < 0.
    low = _gelu(lo) if lo >= -0.7518 else -0.1700
    return low, max(_gelu(hi), 0.0)


def _monotone(f: Callable[[float], float]) -> Callable[[float, float], tuple[float, float]]:
    return lambda lo, hi: (f(lo), f(hi))


_RANGE: dict[str, Callable[[float, float], tuple[float, float]]] = {
    "sin": lambda lo, hi: (-1.0, 1.0),
    "cos": lambda lo, hi: (-1.0, 1.0),
    "tan": _monotone(math.tan),
    "atan": _monotone(math.atan),
    "sinh": _monotone(math.sinh),
    "cosh": _cosh_range,
    "tanh": _monotone(math.tanh),
    "exp": _monotone(math.exp),
    "log": _monotone(math.log),
    "sqrt": _monotone(math.sqrt),
    "erf": _monotone(math.erf),
    "sigmoid": _monotone(_sigmoid),
    "softplus": _monotone(_softplus),
    "swish": _swish_range,
    "gelu": _gelu_range,
    "asin": _monotone(math.asin),
    "acos": lambda lo, hi: (math.acos(hi), math.acos(lo)),
}

def _tan_slope(lo: float, hi: float) -> float:
    return 1.0 + max(math.tan(lo) ** 2, math.tan(hi) ** 2)


def _gap(lo: float, hi: float) -> float:
    return 0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))


#: max |f'(t)| for t in [lo, hi], for each primitive.
_SLOPE: dict[str, Callable[[float, float], float]] = {
    "sin": lambda lo, hi: 1.0,
    "cos": lambda lo, hi: 1.0,
    "tan": _tan_slope,
    "atan": lambda lo, hi: 1.0 / (1.0 + _gap(lo, hi) ** 2),
    "sinh": lambda lo, hi: math.cosh(max(abs(lo), abs(hi))),
    "cosh": lambda lo, hi: math.cosh(max(abs(lo), abs(hi))),
    "tanh": lambda lo, hi: 1.0,
    "exp": lambda lo, hi: math.exp(hi),
    "log": lambda lo, hi: 1.0 / lo,
    "sqrt": lambda lo, hi: 0.5 / math.sqrt(lo),
    "erf": lambda lo, hi: 2.0 / math.sqrt(math.pi),
    "sigmoid": lambda lo, hi: 0.25,
    "softplus": lambda lo, hi: 1.0,
    "swish": lambda lo, hi: 1.1,  # max swish' = 1.0998
    "gelu": lambda lo, hi: 1.13,  # max gelu' = 1.1289
    "asin": lambda lo, hi: 1.0 / math.sqrt(1.0 - max(abs(lo), abs(hi)) ** 2),
    "acos": lambda lo, hi: 1.0 / math.sqrt(1.0 - max(abs(lo), abs(hi)) ** 2),
}

#: How each primitive's argument must be bounded: (kind, parameter).
#:   ("any", _)        any real argument;
#:   ("bounded", B)    |arg| <= B (exp, sinh, cosh: values moderate; tan: away from pi/2;
#:                      sigmoid & co: their SymPy meaning exp(-x) must not overflow);
#:   ("positive", _)   arg >= MARGIN;   ("unit", _)  |arg| <= 0.95.
_DOMAIN: dict[str, tuple[str, float]] = {
    "sin": ("any", 0), "cos": ("any", 0), "atan": ("any", 0), "tanh": ("any", 0),
    "erf": ("any", 0), "tan": ("bounded", 1.2), "exp": ("bounded", 4.0),
    "sinh": ("bounded", 4.0), "cosh": ("bounded", 4.0), "sigmoid": ("bounded", 30.0),
    "softplus": ("bounded", 30.0), "swish": ("bounded", 30.0), "gelu": ("bounded", 30.0),
    "log": ("positive", 0), "sqrt": ("positive", 0), "asin": ("unit", 0), "acos": ("unit", 0),
}


def const(text: str) -> Expr:
    v = number_value(text)
    return Expr(text, ATOM, v, v)


def var(name: str, radius: float = POINT_RADIUS + BOX_MARGIN) -> Expr:
    return Expr(name, ATOM, -radius, radius, frozenset({name}), 1.0)


def call(name: str, a: Expr) -> Expr:
    lo, hi = _RANGE[name](a.lo, a.hi)
    return Expr(f"{name}({a.text})", ATOM, lo, hi, a.variables, _SLOPE[name](a.lo, a.hi) * a.slope)


def neg(a: Expr) -> Expr:
    return Expr("-" + _wrap(a, a.prec < UNARY), UNARY, -a.hi, -a.lo, a.variables, a.slope)


def paren(a: Expr) -> Expr:
    return Expr(f"({a.text})", ATOM, a.lo, a.hi, a.variables, a.slope)


def binary(op: str, a: Expr, b: Expr, space: str = " ") -> Expr:
    """a op b for op in + - * /, with the fewest parentheses that keep the tree's meaning
    (the right operand of an equal-precedence operator is parenthesised: a - (b - c))."""
    q = ADD if op in "+-" else MUL
    text = f"{_wrap(a, a.prec < q)}{space}{op}{space}{_wrap(b, b.prec <= q)}"
    slope = a.slope + b.slope
    if op == "+":
        lo, hi = a.lo + b.lo, a.hi + b.hi
    elif op == "-":
        lo, hi = a.lo - b.hi, a.hi - b.lo
    else:
        if op == "/":
            assert b.lo > 0 or b.hi < 0, "division by an interval containing 0"
            corners = [x / y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
            slope = a.slope / b.gap + a.mag * b.slope / b.gap**2
        else:
            corners = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
            slope = a.slope * b.mag + b.slope * a.mag
        lo, hi = min(corners), max(corners)
    return Expr(text, q, lo, hi, a.variables | b.variables, slope)


def _pow_text(a: Expr, b: Expr, caret: bool) -> str:
    return f"{_wrap(a, a.prec <= POW)}{'^' if caret else '**'}{_wrap(b, b.prec < UNARY)}"


def int_power(a: Expr, n: int, caret: bool = False) -> Expr:
    """a**n for an integer literal n (negative n needs an interval excluding 0)."""
    b = Expr(str(n), UNARY if n < 0 else ATOM, n, n)
    lo, hi = a.lo, a.hi
    if n < 0:
        assert lo > 0 or hi < 0
        lo, hi = 1.0 / hi, 1.0 / lo
        slope = -n * a.slope / a.gap ** (1 - n)
    else:
        slope = n * a.slope * a.mag ** (n - 1) if n else 0.0
    m = abs(n)
    if m == 0:
        rng = (1.0, 1.0)
    elif m % 2 == 1 or lo >= 0:
        rng = (lo**m, hi**m)
    elif hi <= 0:
        rng = (hi**m, lo**m)
    else:
        rng = (0.0, max(-lo, hi) ** m)
    return Expr(_pow_text(a, b, caret), POW, rng[0], rng[1], a.variables, slope)


def real_power(a: Expr, b: Expr, caret: bool = False) -> Expr:
    """a**b for a positive base (any real exponent). a**b = exp(b*log a) is bilinear in
    (b, log a), so its extremes over the box are at the corners."""
    assert a.lo > 0
    corners = [x**y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    # d(a**b) = a**b * (b/a da + log(a) db)
    log_mag = max(abs(math.log(a.lo)), abs(math.log(a.hi)))
    slope = max(corners) * (b.mag * a.slope / a.lo + log_mag * b.slope)
    return Expr(_pow_text(a, b, caret), POW, min(corners), max(corners), a.variables | b.variables,
                slope)


# --------------------------------------------------------------------------------------------
# smooth_formulas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    variables: tuple[str, ...]
    functions: tuple[str, ...]
    long_constants: bool
    zero_exponent: bool
    caret: bool
    whitespace: bool
    redundant_parens: bool
    radius: float
    max_slope: float


_SQUASHERS = ("tanh", "atan", "erf", "sin")


def _leaf(draw: st.DrawFn, cfg: _Config) -> Expr:
    if draw(st.integers(0, 2)) < 2:  # two thirds variables
        return var(choose(draw, cfg.variables), cfg.radius + BOX_MARGIN)
    return const(draw(numbers(long=cfg.long_constants)))


def _space(draw: st.DrawFn, cfg: _Config, default: str) -> str:
    return choose(draw, (default, "", " ")) if cfg.whitespace else default


def _cap(draw: st.DrawFn, cfg: _Config, e: Expr, fallback: Expr) -> Expr:
    """e, squashed when its values may exceed MAGNITUDE_CAP; `fallback` (an operand, within
    both caps) when its slope bound exceeds the configured maximum."""
    if e.mag > MAGNITUDE_CAP:
        e = call(choose(draw, _SQUASHERS), e)
    return e if e.slope <= cfg.max_slope else fallback


def _bounded(draw: st.DrawFn, u: Expr, limit: float) -> Expr:
    """u itself when |u| <= limit, else u squashed into [-1, 1] (or [-pi/2, pi/2] when allowed)."""
    if u.mag <= limit and draw(st.booleans()):
        return u
    options = [w for w in _SQUASHERS if w != "atan" or limit >= math.pi / 2]
    return call(choose(draw, options), u)


def _positive(draw: st.DrawFn, cfg: _Config, u: Expr) -> Expr:
    """An expression >= MARGIN on the whole box, built from u."""
    sp = _space(draw, cfg, " ")
    one, two = const("1"), const("2")
    caret = cfg.caret and draw(st.booleans())
    options: list[Callable[[], Expr]] = [
        lambda: binary("+", one, int_power(_bounded(draw, u, 30.0), 2, caret), sp),
        lambda: call("exp", _bounded(draw, u, 2.0)),
        lambda: binary("+", two, call("cos", u), sp),
        lambda: binary("+", two, call("sin", u), sp),
        lambda: call("cosh", _bounded(draw, u, 2.0)),
        lambda: binary("+", call("tanh", u), two, sp),
    ]
    if u.lo >= MARGIN:
        options.insert(0, lambda: u)
    if _sigmoid(u.lo) >= MARGIN and u.hi <= 30:
        options.append(lambda: call("sigmoid", u))
    if _softplus(u.lo) >= MARGIN and u.hi <= 30:
        options.append(lambda: call("softplus", u))
    return choose(draw, options)()


def _unit(draw: st.DrawFn, cfg: _Config, u: Expr) -> Expr:
    """An expression within [-0.95, 0.95] on the whole box, built from u."""
    sp = _space(draw, cfg, "")
    c = const(choose(draw, ("0.9", "0.5", ".75")))
    options: list[Callable[[], Expr]] = [
        lambda: binary("*", c, call(choose(draw, ("tanh", "sin", "erf", "cos")), u), sp),
        lambda: binary("*", call(choose(draw, ("tanh", "sin")), u), c, sp),
        lambda: binary("/", call("tanh", u), const("1.5"), sp),
    ]
    if u.mag <= 0.95:
        options.insert(0, lambda: u)
    return choose(draw, options)()


def _nonzero(draw: st.DrawFn, cfg: _Config, u: Expr) -> Expr:
    """An expression with |value| >= MARGIN on the whole box, built from u."""
    if (u.lo >= MARGIN or u.hi <= -MARGIN) and draw(st.booleans()):
        return u
    p = _positive(draw, cfg, u)
    return neg(p) if draw(st.integers(0, 3)) == 0 else p


def _prepare_argument(draw: st.DrawFn, cfg: _Config, name: str, u: Expr) -> Expr:
    kind, limit = _DOMAIN[name]
    if kind == "bounded":
        return _bounded(draw, u, limit)
    if kind == "positive":
        return _positive(draw, cfg, u)
    if kind == "unit":
        return _unit(draw, cfg, u)
    return u


def _smooth(draw: st.DrawFn, cfg: _Config, depth: int, budget: list[int]) -> Expr:
    if depth <= 0 or budget[0] <= 0:
        return _leaf(draw, cfg)
    budget[0] -= 1
    kind = choose(draw, ("leaf", "call", "binary", "pow", "call", "binary", "neg", "paren"))
    if kind == "leaf":
        return _leaf(draw, cfg)
    if kind == "paren":
        inner = _smooth(draw, cfg, depth - 1, budget)
        return paren(inner) if cfg.redundant_parens else inner
    if kind == "neg":
        return neg(_smooth(draw, cfg, depth - 1, budget))
    if kind == "call":
        name = choose(draw, cfg.functions)
        u = _smooth(draw, cfg, depth - 1, budget)
        return _cap(draw, cfg, call(name, _prepare_argument(draw, cfg, name, u)), u)
    if kind == "binary":
        op = choose(draw, "+-*/")
        a = _smooth(draw, cfg, depth - 1, budget)
        b = _smooth(draw, cfg, depth - 1, budget)
        if op == "/":
            b = _nonzero(draw, cfg, b)
        return _cap(draw, cfg, binary(op, a, b, _space(draw, cfg, " " if op in "+-" else "")), a)
    # pow
    caret = cfg.caret and draw(st.integers(0, 3)) == 0
    raw = base = _smooth(draw, cfg, depth - 1, budget)
    if draw(st.booleans()):  # small integer exponent
        n = choose(draw, (2, 3, 1, 4, -1, -2, -3, 0) if cfg.zero_exponent else (2, 3, 1, 4, -1, -2, -3))
        if n < 0 or base.mag > 5.0:
            base = _bounded(draw, base, 5.0)
        if n < 0:
            base = _nonzero(draw, cfg, base)
        return _cap(draw, cfg, int_power(base, n, caret), raw)
    # real exponent: positive base, exponent a constant or a bounded expression
    base = _positive(draw, cfg, base if base.mag <= 30 else call("tanh", base))
    if draw(st.booleans()):
        exponent = const(choose(draw, ("0.5", "1.5", "2.5", "0.25", "3", "2", "pi", "e")))
        if draw(st.booleans()):
            exponent = neg(exponent)
    else:
        exponent = _bounded(draw, _smooth(draw, cfg, depth - 1, budget), 3.0)
    return _cap(draw, cfg, real_power(base, exponent, caret), raw)


@functools.cache
def _coordinates(radius: float) -> st.SearchStrategy[float]:
    return st.floats(-radius, radius, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def smooth_formulas(
    draw: st.DrawFn,
    *,
    variables: Sequence[str] = VARIABLES,
    functions: Sequence[str] = SMOOTH_FUNCTIONS,
    max_depth: int = 4,
    max_nodes: int = 16,
    radius: float = POINT_RADIUS,
    long_constants: bool = True,
    zero_exponent: bool = True,
    caret: bool = True,
    whitespace: bool = True,
    redundant_parens: bool = True,
    max_slope: float = SLOPE_CAP,
) -> tuple[str, dict[str, float]]:
    """A smooth formula and a point inside every primitive's domain: (text, {name: value}).

    The formula uses + - * /, ``**`` or ``^`` with a small integer exponent (-3..4; 0 only when
    `zero_exponent`) or a real exponent on a positive base, unary minus, redundant parentheses
    and the `functions` (default: all smooth primitives), over `variables`. `max_depth` bounds
    the generator's nesting (each level may add up to three graph levels for a safe-argument
    wrapper such as ``log(1 + u**2)``); `max_nodes` bounds how many composite steps are drawn.
    Constants include long decimals (more digits than a float holds) when `long_constants`.
    Every variable of the formula gets a value in [-radius, radius]; the formula uses at
    least one variable. `max_slope` bounds sum_v |df/dv| on the point box (a bound computed by
    interval arithmetic, so actual slopes are usually far smaller). See the module docstring
    for how domains and magnitudes are guaranteed.
    """
    cfg = _Config(tuple(variables), tuple(functions), long_constants, zero_exponent, caret,
                  whitespace, redundant_parens, radius, max_slope)
    e = _smooth(draw, cfg, max_depth, [max_nodes])
    if not e.variables:
        v = var(choose(draw, cfg.variables), radius + BOX_MARGIN)
        e = binary(choose(draw, "+-*"), e, v) if draw(st.booleans()) else binary("+", v, e)
    coordinate = _coordinates(radius)
    point = {name: draw(coordinate) for name in sorted(e.variables)}
    return e.text, point


# --------------------------------------------------------------------------------------------
# valid_formulas: the whole grammar, no domain promise
# --------------------------------------------------------------------------------------------

_FUNCTION_NAMES = tuple(sorted(FUNCTION_ARITY))
_NAME_POOL = ("x", "y", "z", "w1", "x10", "a_b", "_t", "X", "theta", "x2", "sinx", "pi2", "E1")


def _valid(draw: st.DrawFn, depth: int, budget: list[int], names: Sequence[str], nums: Numbers) -> Expr:
    if depth <= 0 or budget[0] <= 0 or draw(st.integers(0, 4)) == 0:
        if draw(st.booleans()):
            return Expr(choose(draw, names), ATOM, 0, 0)
        return Expr(draw(nums), ATOM, 0, 0)
    budget[0] -= 1
    kind = choose(draw, ("call", "binary", "pow", "sign", "paren"))
    if kind == "call":
        name = choose(draw, _FUNCTION_NAMES)
        lo, hi = FUNCTION_ARITY[name]
        n = draw(st.integers(lo, hi if hi is not None else lo + 2))
        args = [_valid(draw, depth - 1, budget, names, nums) for _ in range(n)]
        sep = choose(draw, (", ", ",", " , "))
        return Expr(f"{name}({sep.join(a.text for a in args)})", ATOM, 0, 0)
    if kind == "sign":
        a = _valid(draw, depth - 1, budget, names, nums)
        sign = choose(draw, "-+")
        return Expr(sign + _wrap(a, a.prec < UNARY), UNARY, 0, 0)
    if kind == "paren":
        return paren(_valid(draw, depth - 1, budget, names, nums))
    a = _valid(draw, depth - 1, budget, names, nums)
    b = _valid(draw, depth - 1, budget, names, nums)
    if kind == "pow":
        return Expr(_pow_text(a, b, draw(st.booleans())), POW, 0, 0)
    op = choose(draw, "+-*/")
    q = ADD if op in "+-" else MUL
    space = choose(draw, ("", " ", "  ", "\t"))
    return Expr(f"{_wrap(a, a.prec < q)}{space}{op}{space}{_wrap(b, b.prec <= q)}", q, 0, 0)


@st.composite
def valid_formulas(
    draw: st.DrawFn,
    *,
    variables: Sequence[str] = _NAME_POOL,
    max_depth: int = 4,
    max_nodes: int = 12,
    huge_numbers: bool = False,
    long_constants: bool = True,
) -> str:
    """A syntactically valid formula over the whole grammar: every function (with optional
    and n-ary arguments), ``**`` and ``^``, unary ``+``/``-``, named constants and numeric
    literals in every spelling. Domains are not guaranteed (``log(-1)`` may appear), and with
    `huge_numbers` literals at the edge of float64's range (some invalid) may appear too;
    `long_constants`: decimals with more digits than a float holds."""
    nums = numbers(huge=huge_numbers, long=long_constants)
    return _valid(draw, max_depth, [max_nodes], variables, nums).text


# --------------------------------------------------------------------------------------------
# Fuzzing text
# --------------------------------------------------------------------------------------------

GRAMMAR_TOKENS: tuple[str, ...] = (
    "x", "y", "w1", "x10", "_", "a", "e", "E", "pi", "1", "0", "2.5", ".5", "3.", "1e3", "1e-3",
    "e5", "E+2", "**", "^", "*", "/", "+", "-", "(", ")", ",", " ", "\t", "\n", "  ",
    *sorted(FUNCTION_ARITY), "foo", "sin(", "max(", "((", "))", ",,", "**-", "--",
)


@functools.cache
def any_text(*, max_size: int = 40, huge_numbers: bool = True) -> st.SearchStrategy[str]:
    """Arbitrary text for the parser: grammar-token soup (mixed with look-alike unicode,
    control characters and random characters), plain ASCII, fully arbitrary unicode, and the
    edge-case literals of `numbers(huge=True)` (when `huge_numbers`) spliced into token soup."""
    pieces = st.one_of(
        st.sampled_from(GRAMMAR_TOKENS),
        st.sampled_from(LOOKALIKES),
        st.sampled_from(CONTROL),
        st.characters(),
        numbers(huge=huge_numbers),
    )
    return st.one_of(
        st.lists(pieces, max_size=max_size).map("".join),
        st.lists(st.sampled_from(GRAMMAR_TOKENS), max_size=max_size).map("".join),
        st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=max_size),
        st.text(max_size=max_size),
    )


@functools.cache
def _near_valid_base() -> st.SearchStrategy[str]:
    return st.one_of(valid_formulas(), smooth_formulas(max_depth=3).map(lambda t: t[0]))


_MUTATION_CHARS = st.one_of(
    st.sampled_from(tuple("()+-*/^,.eE0123456789 xyz_\t")),
    st.sampled_from(LOOKALIKES + CONTROL),
    st.characters(),
)


@st.composite
def near_valid_formulas(draw: st.DrawFn, *, max_mutations: int = 3) -> str:
    """A valid formula (from `valid_formulas` or `smooth_formulas`) with 1..max_mutations random
    characters inserted, deleted or replaced (grammar characters, look-alikes, anything)."""
    text = draw(_near_valid_base())
    for _ in range(draw(st.integers(1, max_mutations))):
        action = choose(draw, ("insert", "delete", "replace"))
        if action == "insert" or not text:
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(_MUTATION_CHARS) + text[i:]
        else:
            i = draw(st.integers(0, len(text) - 1))
            new = draw(_MUTATION_CHARS) if action == "replace" else ""
            text = text[:i] + new + text[i + 1:]
    return text


# --------------------------------------------------------------------------------------------
# Points
# --------------------------------------------------------------------------------------------


@functools.cache
def _point_values(finite_only: bool, integers: bool, huge_integers: bool) -> st.SearchStrategy[float | int]:
    parts: list[st.SearchStrategy[float | int]] = [
        st.floats(allow_nan=not finite_only, allow_infinity=not finite_only),
        st.floats(-3, 3),
        st.sampled_from((0.0, -0.0, 1.0, -1.0)),
    ]
    if integers:
        parts.append(st.integers(-1000, 1000))
    if huge_integers:
        parts.append(st.sampled_from((10**400, -(10**309), 2**1024)))
    return st.one_of(parts)


@st.composite
def points(
    draw: st.DrawFn,
    variables: Sequence[str],
    *,
    finite_only: bool = False,
    integers: bool = True,
    huge_integers: bool = True,
    allow_missing: bool = True,
    allow_extra: bool = True,
) -> dict[str, float | int]:
    """Values for `variables`: any float (nan, +-inf, huge, subnormal, -0.0) unless
    `finite_only`, small Python ints when `integers`, ints beyond float64's range when
    `huge_integers`; with `allow_missing` a variable may be left out, with `allow_extra` an
    unknown name or a constant name (``pi``, ``e``) may be added."""
    value = _point_values(finite_only, integers, huge_integers)
    point = {}
    for name in variables:
        if allow_missing and draw(st.integers(0, 9)) == 0:
            continue
        point[name] = draw(value)
    if allow_extra and draw(st.integers(0, 9)) == 0:
        point[choose(draw, ("zz", "pi", "e", "E", "q1"))] = draw(value)
    return point


__all__ = [
    "ADD", "ATOM", "BOX_MARGIN", "CONSTANT_NAMES", "CONTROL", "Expr", "FUNCTION_ARITY",
    "GRAMMAR_TOKENS", "LOOKALIKES", "MAGNITUDE_CAP", "MARGIN", "SLOPE_CAP", "MUL", "POINT_RADIUS", "POW",
    "SMOOTH_FUNCTIONS", "UNARY", "VARIABLES", "any_text", "binary", "call", "const", "int_power",
    "near_valid_formulas", "neg", "number_value", "numbers", "paren", "points", "real_power",
    "smooth_formulas", "valid_formulas", "var",
]
