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
    "sin": _f("sin", lambda sp, x: sp.sin(x, evaluate=False), "sine"),
    "cos": _f("cos", lambda sp, x: sp.cos(x, evaluate=False), "cosine"),
    "tan": _f("tan", lambda sp, x: sp.tan(x, evaluate=False), "tangent"),
    "asin": _f("asin", lambda sp, x: sp.asin(x, evaluate=False), "inverse sine"),
    "acos": _f("acos", lambda sp, x: sp.acos(x, evaluate=False), "inverse cosine"),
    "atan": _f("atan", lambda sp, x: sp.atan(x, evaluate=False), "inverse tangent"),
    "sinh": _f("sinh", lambda sp, x: sp.sinh(x, evaluate=False), "hyperbolic sine"),
    "cosh": _f("cosh", lambda sp, x: sp.cosh(x, evaluate=False), "hyperbolic cosine"),
    "tanh": _f("tanh", lambda sp, x: sp.tanh(x, evaluate=False), "hyperbolic tangent"),
    "exp": _f("exp", lambda sp, x: sp.exp(x, evaluate=False), "e to the x"),
    "log": _f("log", lambda sp, x: sp.log(x, evaluate=False), "natural logarithm"),
    "sqrt": _f("sqrt", lambda sp, x: sp.Pow(x, sp.S.Half, evaluate=False), "square root"),
    "abs": _f("abs", lambda sp, x: sp.Abs(x, evaluate=False), "absolute value"),
    "erf": _f("erf", lambda sp, x: sp.erf(x, evaluate=False), "error function"),
    "max": Function("max", 2, None, lambda sp, *a: sp.Max(*a, evaluate=False),
                    doc="largest of two or more arguments"),
    "min": Function("min", 2, None, lambda sp, *a: sp.Min(*a, evaluate=False),
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

# Binary operators and unary minus, with their SymPy meaning (kept unevaluated: x - x stays a
# subtraction, so the graph and the formula agree on what is computed).
OPERATORS: dict[str, SympyMeaning] = {
    "add": lambda sp, a, b: sp.Add(a, b, evaluate=False),
    "sub": lambda sp, a, b: sp.Add(a, sp.Mul(-1, b, evaluate=False), evaluate=False),
    "mul": lambda sp, a, b: sp.Mul(a, b, evaluate=False),
    "div": lambda sp, a, b: sp.Mul(a, sp.Pow(b, -1, evaluate=False), evaluate=False),
    "neg": lambda sp, a: sp.Mul(-1, a, evaluate=False),
    "pow": lambda sp, a, b: _power(sp, a, b),
}


def _power(sp: Any, a: Any, b: Any) -> Any:
    # A small integer power is evaluated: SymPy differentiates an unevaluated (x*y)**2 as
    # 2*(x**2*y**2)/x, which is 0/0 at x = 0, but the evaluated x**2*y**2 correctly. Other
    # powers stay unevaluated (9**9**9 must not be computed).
    if b.is_Integer and abs(b) <= 10_000:
        return sp.Pow(a, b)
    return sp.Pow(a, b, evaluate=False)


def meaning_of(op: str) -> SympyMeaning:
    """The SymPy meaning of a graph operation (an operator or a function's op)."""
    if op in OPERATORS:
        return OPERATORS[op]
    for fn in FUNCTIONS.values():
        if fn.op == op:
            return fn.meaning
    raise KeyError(op)
