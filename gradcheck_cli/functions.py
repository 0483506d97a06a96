"""The names a user may call, what each means mathematically, and how many arguments it takes.

`FUNCTIONS` maps a callable name to the graph operation it becomes (a key of `rules.RULES`),
its argument count, defaults for optional arguments, and its meaning as a SymPy expression built
only from SymPy's own functions. That meaning is what the symbolic method differentiates, so a
wrong entry in `rules.py` cannot agree with itself: SymPy derives its derivative independently.

SymPy is imported lazily (meanings receive the module) so checks that skip the symbolic method
do not pay for importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

SympyMeaning = Callable[..., Any]  # (sympy_module, *sympy_args) -> sympy expression


@dataclass(frozen=True)
class Function:
    op: str
    min_args: int
    max_args: int | None  # None: no upper bound
    meaning: SympyMeaning
    defaults: tuple[Fraction, ...] = ()  # values of the optional trailing arguments
    doc: str = ""


def _f(op: str, meaning: SympyMeaning, doc: str, n: int = 1) -> Function:
    return Function(op, n, n, meaning, doc=doc)


def _piecewise_pos(sp: Any, x: Any, pos: Any, neg: Any) -> Any:
    return sp.Piecewise((pos, x > 0), (neg, True))


FUNCTIONS: dict[str, Function] = {
    "sin": _f("sin", lambda sp, x: sp.sin(x), "sine"),
    "cos": _f("cos", lambda sp, x: sp.cos(x), "cosine"),
    "tan": _f("tan", lambda sp, x: sp.tan(x), "tangent"),
    "asin": _f("asin", lambda sp, x: sp.asin(x), "inverse sine"),
    "acos": _f("acos", lambda sp, x: sp.acos(x), "inverse cosine"),
    "atan": _f("atan", lambda sp, x: sp.atan(x), "inverse tangent"),
    "sinh": _f("sinh", lambda sp, x: sp.sinh(x), "hyperbolic sine"),
    "cosh": _f("cosh", lambda sp, x: sp.cosh(x), "hyperbolic cosine"),
    "tanh": _f("tanh", lambda sp, x: sp.tanh(x), "hyperbolic tangent"),
    "exp": _f("exp", lambda sp, x: sp.exp(x), "e to the x"),
    "log": _f("log", lambda sp, x: sp.log(x), "natural logarithm"),
    "sqrt": _f("sqrt", lambda sp, x: sp.Pow(x, sp.S.Half), "square root"),
    "abs": _f("abs", lambda sp, x: sp.Abs(x), "absolute value"),
    "erf": _f("erf", lambda sp, x: sp.erf(x), "error function"),
    "sec": _f("sec", lambda sp, x: sp.sec(x), "secant, 1/cos(x)"),
    "csc": _f("csc", lambda sp, x: sp.csc(x), "cosecant, 1/sin(x)"),
    "cot": _f("cot", lambda sp, x: sp.cot(x), "cotangent, cos(x)/sin(x)"),
    "asec": _f("asec", lambda sp, x: sp.asec(x), "inverse secant, acos(1/x)"),
    "acsc": _f("acsc", lambda sp, x: sp.acsc(x), "inverse cosecant, asin(1/x)"),
    "acot": _f("acot", lambda sp, x: sp.acot(x), "inverse cotangent, atan(1/x)"),
    "asinh": _f("asinh", lambda sp, x: sp.asinh(x), "inverse hyperbolic sine"),
    "acosh": _f("acosh", lambda sp, x: sp.acosh(x), "inverse hyperbolic cosine (x ≥ 1)"),
    "atanh": _f("atanh", lambda sp, x: sp.atanh(x), "inverse hyperbolic tangent (|x| < 1)"),
    "log2": _f("log2", lambda sp, x: sp.log(x) / sp.log(2), "logarithm base 2"),
    "log10": _f("log10", lambda sp, x: sp.log(x) / sp.log(10), "logarithm base 10"),
    "cbrt": _f("cbrt", lambda sp, x: sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3),
               "real cube root (cbrt(-8) = -2)"),
    "atan2": _f("atan2", lambda sp, y, x: sp.atan2(y, x), "atan2(y, x), the angle of (x, y)", n=2),
    "max": Function("max", 2, None, lambda sp, *a: sp.Max(*a),
                    doc="largest of two or more arguments"),
    "min": Function("min", 2, None, lambda sp, *a: sp.Min(*a),
                    doc="smallest of two or more arguments"),
    "sigmoid": _f("sigmoid", lambda sp, x: 1 / (1 + sp.exp(-x)), "1/(1+exp(-x))"),
    "relu": _f("relu", lambda sp, x: sp.Max(0, x), "max(0, x)"),
    "leaky_relu": Function(
        "leaky_relu", 1, 2, lambda sp, x, s: _piecewise_pos(sp, x, x, s * x),
        defaults=(Fraction(1, 100),), doc="x if x > 0 else slope*x (slope 0.01 by default)",
    ),
    "elu": Function(
        "elu", 1, 2, lambda sp, x, a: _piecewise_pos(sp, x, x, a * (sp.exp(x) - 1)),
        defaults=(Fraction(1),), doc="x if x > 0 else alpha*(exp(x)-1) (alpha 1 by default)",
    ),
    "softplus": _f("softplus", lambda sp, x: sp.log(1 + sp.exp(x)), "log(1+exp(x))"),
    "swish": _f("swish", lambda sp, x: x / (1 + sp.exp(-x)), "x*sigmoid(x)"),
    "gelu": _f("gelu", lambda sp, x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
               "x*(1+erf(x/sqrt(2)))/2, the exact GELU"),
    "hard_swish": _f("hard_swish", lambda sp, x: x * sp.Min(sp.Max(x + 3, 0), 6) / 6,
                     "x*min(max(x+3, 0), 6)/6"),
}
FUNCTIONS["silu"] = FUNCTIONS["swish"]

# Binary operators and unary minus, with their SymPy meaning. SymPy gets its canonical,
# evaluated forms: its functions assume them, and on unevaluated nested sums it differentiates
# wrongly (SymPy 1.14: d/dx sin((x + x) + (z + pi)) came out as -2*cos(x + x)). What is
# computed is fixed by our graph, which keeps the formula as typed; the SymPy expression is
# the same function, only SymPy's oracle view of it.
OPERATORS: dict[str, SympyMeaning] = {
    "add": lambda sp, a, b: sp.Add(a, b),
    "sub": lambda sp, a, b: sp.Add(a, sp.Mul(-1, b)),
    "mul": lambda sp, a, b: sp.Mul(a, b),
    "div": lambda sp, a, b: sp.Mul(a, sp.Pow(b, -1)),
    "neg": lambda sp, a: sp.Mul(-1, a),
    "pow": lambda sp, a, b: _power(sp, a, b),
}


def _power(sp: Any, a: Any, b: Any) -> Any:
    # Evaluated (an unevaluated (x*y)**2 is differentiated as 2*(x**2*y**2)/x, 0/0 at x = 0),
    # except a number to a large integer power, which SymPy would compute exactly (9**9**9).
    if a.is_number and b.is_Integer and abs(b) > 10_000:
        return sp.Pow(a, b, evaluate=False)
    return sp.Pow(a, b)


def meaning_of(op: str) -> SympyMeaning:
    """The SymPy meaning of a graph operation (an operator or a function's op)."""
    if op in OPERATORS:
        return OPERATORS[op]
    for fn in FUNCTIONS.values():
        if fn.op == op:
            return fn.meaning
    raise KeyError(op)
