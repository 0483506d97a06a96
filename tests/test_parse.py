"""The formula parser: precedence, the graph it builds, limits and its error messages.

Precedence is checked by evaluating the parsed graph and comparing with values computed by hand
(Python's own precedence, with `^` read as `**`); errors by their kind, 1-based column and caret.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from gradcheck_cli.check import check
from gradcheck_cli.errors import GradcheckError
from gradcheck_cli.functions import FUNCTIONS
from gradcheck_cli.graph import Graph, evaluate
from gradcheck_cli.limits import Limits
from gradcheck_cli.parse import parse


def value_of(text: str, **point: float) -> float:
    graph = parse(text)
    assert set(graph.variables) == set(point), (graph.variables, point)
    values = evaluate(graph, {k: np.asarray(v) for k, v in point.items()})
    return float(values[graph.output])


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def out_node(graph: Graph):
    return graph.nodes[graph.output]


def assert_topological(graph: Graph) -> None:
    for i, node in enumerate(graph.nodes):
        assert all(0 <= a < i for a in node.args), (i, node)
    assert 0 <= graph.output < len(graph.nodes)


# ---------------------------------------------------------------------------------------------
# 1. Precedence and associativity.
# ---------------------------------------------------------------------------------------------

PRECEDENCE = [
    # (formula, point, value computed by hand)
    ("x^2+1", {"x": 3.0}, 10.0),          # ^ is power and binds tighter than +
    ("x^2*2", {"x": 3.0}, 18.0),
    ("2*x^2", {"x": 3.0}, 18.0),
    ("x**2+1", {"x": 3.0}, 10.0),
    ("2**3**2", {}, 512.0),                # right-assoc: 2**9
    ("2^3^2", {}, 512.0),
    ("2**3^2", {}, 512.0),                 # ** and ^ mix, same precedence, right-assoc
    ("2^3**2", {}, 512.0),
    ("(2**3)**2", {}, 64.0),
    ("x**2^3", {"x": 2.0}, 256.0),
    ("-x**2", {"x": 3.0}, -9.0),           # -(x**2)
    ("-x^2", {"x": 3.0}, -9.0),
    ("(-x)**2", {"x": 3.0}, 9.0),
    ("-2**2", {}, -4.0),
    ("(-2)**2", {}, 4.0),
    ("x**-2", {"x": 2.0}, 0.25),           # x**(-2)
    ("x^-2", {"x": 2.0}, 0.25),
    ("2**-3**2", {}, 2.0**-9),             # 2**(-(3**2))
    ("-2**-2", {}, -0.25),
    ("2*-3", {}, -6.0),
    ("2*-x", {"x": 3.0}, -6.0),
    ("2*-x**2", {"x": 3.0}, -18.0),
    ("-x*y", {"x": 2.0, "y": 3.0}, -6.0),
    ("x/-y", {"x": 6.0, "y": 3.0}, -2.0),
    ("x/y/z", {"x": 60.0, "y": 3.0, "z": 4.0}, 5.0),      # (x/y)/z, not x/(y/z) = 80
    ("x/y*z", {"x": 60.0, "y": 3.0, "z": 4.0}, 80.0),     # (x/y)*z, not x/(y*z) = 5
    ("x-y-z", {"x": 10.0, "y": 3.0, "z": 2.0}, 5.0),      # (x-y)-z, not x-(y-z) = 9
    ("x-y+z", {"x": 10.0, "y": 3.0, "z": 2.0}, 9.0),
    ("x - -y", {"x": 10.0, "y": 3.0}, 13.0),
    ("2+3*4", {}, 14.0),
    ("(2+3)*4", {}, 20.0),
    ("2*3+4*5", {}, 26.0),
    ("2**3*2", {}, 16.0),
    ("2*3**2", {}, 18.0),
    ("+x", {"x": 2.0}, 2.0),
    ("+-x", {"x": 2.0}, -2.0),
    ("-+x", {"x": 2.0}, -2.0),
    ("--x", {"x": 2.0}, 2.0),
    ("x+ +y", {"x": 2.0, "y": 5.0}, 7.0),
    ("1.5e3", {}, 1500.0),
    ("1.5E3", {}, 1500.0),
    ("2.5e-2", {}, 0.025),
    ("1e+2", {}, 100.0),
    (".5", {}, 0.5),
    ("3.", {}, 3.0),
    ("3.e2", {}, 300.0),
    (".5*x", {"x": 4.0}, 2.0),
    ("  x \t*\n 2 ", {"x": 4.0}, 8.0),
    ("sin(x)^2 + cos(x)^2", {"x": 0.7}, 1.0),
    ("max(x, y)^2", {"x": -3.0, "y": 2.0}, 4.0),
    ("-max(x, y)", {"x": -3.0, "y": 2.0}, -2.0),
]


@pytest.mark.parametrize("text,point,want", PRECEDENCE, ids=[t for t, _, _ in PRECEDENCE])
def test_precedence_by_value(text: str, point: dict[str, float], want: float) -> None:
    assert value_of(text, **point) == pytest.approx(want, rel=1e-15, abs=0)


@pytest.mark.parametrize(
    "text,top,arg_ops",
    [
        ("x^2+1", "add", ["pow", "const"]),
        ("-x**2", "neg", ["pow"]),
        ("-x*y", "mul", ["neg", "var"]),     # unary minus binds tighter than *
        ("x/y/z", "div", ["div", "var"]),
        ("x-y-z", "sub", ["sub", "var"]),
        ("2**3**2", "pow", ["const", "pow"]),
        ("x**-2", "pow", ["var", "const"]),  # -2 stays a constant, not neg(2)
    ],
)
def test_precedence_by_structure(text: str, top: str, arg_ops: list[str]) -> None:
    g = parse(text)
    node = out_node(g)
    assert node.op == top
    assert [g.nodes[a].op for a in node.args] == arg_ops


def test_negative_literal_exponent_is_an_exact_constant() -> None:
    g = parse("x**-2")
    assert set(ops(g)) == {"var", "const", "pow"}
    assert g.nodes[out_node(g).args[1]].exact == Fraction(-2)


@pytest.mark.parametrize(
    "text,exact",
    [("1.5e3", Fraction(1500)), (".5", Fraction(1, 2)), ("3.", Fraction(3)), ("0.1", Fraction(1, 10)),
     ("2.5e-2", Fraction(1, 40)), ("007", Fraction(7)), ("1E+2", Fraction(100))],
)
def test_literals_are_exact_rationals(text: str, exact: Fraction) -> None:
    g = parse(text)
    assert len(g.nodes) == 1
    node = out_node(g)
    assert (node.op, node.exact, node.name) == ("const", exact, None)


# ---------------------------------------------------------------------------------------------
# 2. The graph keeps what was typed.
# ---------------------------------------------------------------------------------------------


def test_exp_log_is_not_simplified() -> None:
    g = parse("exp(log(x))")
    assert ops(g) == ["var", "log", "exp"]
    assert value_of("exp(log(x))", x=2.0) == pytest.approx(2.0, rel=1e-15)
    assert math.isnan(value_of("exp(log(x))", x=-1.0))


@pytest.mark.parametrize(
    "text,op,point,want",
    [
        ("x - x", "sub", {"x": 3.0}, 0.0),
        ("x / x", "div", {"x": 3.0}, 1.0),
        ("x * 1", "mul", {"x": 3.0}, 3.0),
        ("x + 0", "add", {"x": 3.0}, 3.0),
        ("x ^ 1", "pow", {"x": 3.0}, 3.0),
        ("--x", "neg", {"x": 3.0}, 3.0),
        ("sqrt(x)^2", "pow", {"x": 3.0}, 3.0),
    ],
)
def test_trivial_operations_are_kept(text: str, op: str, point: dict[str, float], want: float) -> None:
    g = parse(text)
    assert out_node(g).op == op
    assert value_of(text, **point) == pytest.approx(want, rel=1e-15)


def test_x_over_x_is_nan_at_zero() -> None:
    assert math.isnan(value_of("x / x", x=0.0))


# ---------------------------------------------------------------------------------------------
# 3. Shared subexpressions and topological order.
# ---------------------------------------------------------------------------------------------


def test_x_times_x_uses_one_variable_node_twice() -> None:
    g = parse("x*x")
    assert ops(g) == ["var", "mul"]
    assert out_node(g).args == (0, 0)
    assert g.variables == ("x",)


def test_repeated_call_is_one_node() -> None:
    g = parse("sin(x)*sin(x)")
    assert ops(g).count("sin") == 1
    a, b = out_node(g).args
    assert a == b and g.nodes[a].op == "sin"


def test_repeated_sum_is_one_node() -> None:
    g = parse("(x+1)*(x+1)+(x+1)")
    x = g.var_nodes["x"]
    one = [i for i, n in enumerate(g.nodes) if n.op == "const" and n.exact == 1]
    assert len(one) == 1
    inner = [i for i, n in enumerate(g.nodes) if n.op == "add" and n.args == (x, one[0])]
    assert len(inner) == 1
    assert ops(g).count("add") == 2 and ops(g).count("mul") == 1 and len(g) == 5
    top = out_node(g)
    assert top.op == "add" and top.args[1] == inner[0]
    assert g.nodes[top.args[0]].args == (inner[0], inner[0])
    assert value_of("(x+1)*(x+1)+(x+1)", x=2.0) == 12.0


def test_equal_constants_and_names_are_shared() -> None:
    g = parse("2*x + 2*y + x")
    assert [n.exact for n in g.nodes if n.op == "const"] == [Fraction(2)]
    assert sum(n.op == "var" for n in g.nodes) == 2
    assert len(parse("pi*x + pi").nodes) == 4  # pi, x, mul, add


TOPO_CORPUS = [
    "x*x", "sin(x)*sin(x)", "(x+1)*(x+1)+(x+1)", "cos(sin(x**2)+3*x**2)", "max(x, y, x*y, sin(x))",
    "exp(log(x)) - x + leaky_relu(x) * elu(y, 2)", "(x+y)*z", "x10 + x2 + x1 + y",
    "-(-(-(x)))", "2**x**y**z", "gelu(hard_swish(x)) / softplus(sigmoid(y))",
]


@pytest.mark.parametrize("text", TOPO_CORPUS)
def test_nodes_are_in_topological_order(text: str) -> None:
    g = parse(text)
    assert_topological(g)
    assert len(set(g.nodes)) == len(g.nodes)  # every node is distinct (interned)
    # every node is reachable from the output (no orphans)
    needed = {g.output}
    for i in range(len(g.nodes) - 1, -1, -1):
        if i in needed:
            needed.update(g.nodes[i].args)
    assert needed == set(range(len(g.nodes)))


def test_variables_are_sorted_naturally() -> None:
    assert parse("x10 + x2 + x1 + y").variables == ("x1", "x2", "x10", "y")
    assert parse("b*a").variables == ("a", "b")


# ---------------------------------------------------------------------------------------------
# 4. Constants, defaults and argument counts.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,name,want", [("pi", "pi", math.pi), ("E", "E", math.e), ("e", "E", math.e)])
def test_named_constants_are_not_variables(text: str, name: str, want: float) -> None:
    g = parse(text)
    assert g.variables == ()
    assert (out_node(g).op, out_node(g).name) == ("const", name)
    assert value_of(text) == want
    assert value_of(f"2*{text}*x", x=1.5) == pytest.approx(3 * want, rel=1e-15)


def test_e_and_E_are_the_same_node() -> None:
    g = parse("e + E")
    assert out_node(g).args[0] == out_node(g).args[1]


def test_names_that_start_like_constants_are_variables() -> None:
    assert parse("pie + ex + E1").variables == ("E1", "ex", "pie")


@pytest.mark.parametrize(
    "text,op,default",
    [("leaky_relu(x)", "leaky_relu", Fraction(1, 100)), ("elu(x)", "elu", Fraction(1))],
)
def test_default_parameter_is_an_exact_constant(text: str, op: str, default: Fraction) -> None:
    g = parse(text)
    node = out_node(g)
    assert node.op == op and len(node.args) == 2
    x, param = (g.nodes[a] for a in node.args)
    assert x.op == "var" and x.name == "x"
    assert param.op == "const" and param.exact == default and param.name is None
    assert g.variables == ("x",)


def test_default_slope_evaluates_as_one_hundredth() -> None:
    assert value_of("leaky_relu(x)", x=-3.0) == pytest.approx(-0.03, rel=1e-15)
    assert value_of("leaky_relu(x, 0.2)", x=-3.0) == pytest.approx(-0.6, rel=1e-15)
    assert value_of("elu(x)", x=-1.0) == pytest.approx(math.expm1(-1.0), rel=1e-15)
    assert value_of("elu(x, 2)", x=-1.0) == pytest.approx(2 * math.expm1(-1.0), rel=1e-15)
    g = parse("leaky_relu(x, 0.2)")
    assert g.nodes[out_node(g).args[1]].exact == Fraction(1, 5)


@pytest.mark.parametrize("fn,want", [("max", 5.0), ("min", -4.0)])
def test_max_min_take_three_or_more_arguments(fn: str, want: float) -> None:
    g = parse(f"{fn}(x, y, z)")
    assert out_node(g).op == fn and len(out_node(g).args) == 3
    assert value_of(f"{fn}(1, 5, -4, 2, 3)") == want
    assert value_of(f"{fn}(x, y, z)", x=1.0, y=5.0, z=-4.0) == want


@pytest.mark.parametrize("text", ["max(x)", "min(x)", "min(2)"])
def test_max_min_reject_one_argument(text: str) -> None:
    with pytest.raises(GradcheckError) as info:
        parse(text)
    assert info.value.kind == "syntax"
    assert info.value.column == 1
    assert "at least 2" in info.value.message


def test_silu_is_swish() -> None:
    assert out_node(parse("silu(x)")).op == "swish"


def test_log_with_a_base_is_a_quotient_of_logs() -> None:
    g = parse("log(x, b)")
    top = out_node(g)
    assert top.op == "div" and [g.nodes[a].op for a in top.args] == ["log", "log"]
    assert [g.nodes[g.nodes[a].args[0]].name for a in top.args] == ["x", "b"]
    assert value_of("log(x, 2)", x=8.0) == pytest.approx(3.0, rel=1e-15)
    assert value_of("log(x, b)", x=1000.0, b=10.0) == pytest.approx(3.0, rel=1e-15)
    assert value_of("log(x, 10)", x=7.0) == pytest.approx(math.log10(7.0), rel=1e-15)
    assert ops(parse("log(x)")) == ["var", "log"]  # one argument: unchanged


def test_log_with_a_base_checks_in_every_method() -> None:
    # the symbolic method reads the same graph, so every column sees log(x)/log(b)
    x, b = 3.0, 5.0
    report = check("log(x, b)", {"x": x, "b": b})
    assert report.verdict == "pass"
    want = {"x": 1 / (x * math.log(b)), "b": -math.log(x) / (b * math.log(b) ** 2)}
    for name in ("reverse", "forward", "symbolic"):
        got = report.method(name).gradient
        assert got == {v: pytest.approx(w, rel=1e-13) for v, w in want.items()}, name


# ---------------------------------------------------------------------------------------------
# 5. Deep nesting.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1000, 10_000])
def test_deep_calls(n: int) -> None:
    g = parse("sin(" * n + "x" + ")" * n)
    assert len(g) == n + 1
    assert g.depth() == n
    assert_topological(g)


@pytest.mark.parametrize("n", [1000, 10_000])
def test_deep_parentheses(n: int) -> None:
    g = parse("(" * n + "x" + ")" * n)
    assert ops(g) == ["var"] and g.depth() == 0
    g = parse("(" * n + "x+1" + ")" * n)
    assert ops(g) == ["var", "const", "add"] and g.depth() == 1


@pytest.mark.parametrize("n", [1000, 1001, 10_000])
def test_deep_unary_minus(n: int) -> None:
    g = parse("-" * n + "x")
    assert len(g) == n + 1 and g.depth() == n
    assert value_of("-" * n + "x", x=2.5) == (2.5 if n % 2 == 0 else -2.5)
    g = parse("-(" * n + "x" + ")" * n)
    assert len(g) == n + 1 and g.depth() == n
    assert value_of("-(" * n + "x" + ")" * n, x=2.5) == (2.5 if n % 2 == 0 else -2.5)


def test_deep_mixed_nesting() -> None:
    n = 1000
    g = parse("exp(-(" * n + "x" + "))" * n)
    assert g.depth() == 2 * n
    assert_topological(g)
    g = parse("(x+" * n + "1" + ")" * n)
    assert g.depth() == n


def test_long_flat_formula_passes_a_depth_limit_of_one() -> None:
    text = "+".join(f"sin(x{i})" for i in range(5000))
    g = parse(text, Limits(max_depth=1))
    assert len(g.variables) == 5000
    assert g.depth() == 5000  # a left-leaning chain of additions, depth counted in nodes


@pytest.mark.parametrize(
    "opener,closer,width",
    [("sin(", ")", 4), ("(", ")", 1), ("-", "", 1), ("exp(", ")", 4)],
)
def test_max_depth_limit(opener: str, closer: str, width: int) -> None:
    limit = 50
    parse(opener * limit + "x" + closer * limit, Limits(max_depth=limit))  # exactly at the limit
    with pytest.raises(GradcheckError) as info:
        parse(opener * (limit + 1) + "x" + closer * (limit + 1), Limits(max_depth=limit))
    err = info.value
    assert err.kind == "limit"
    assert "--max-depth" in err.message and str(limit) in err.message
    assert err.column == limit * width + 1  # the opener that goes one level too deep


def test_default_depth_limit_is_enforced_without_recursion_error() -> None:
    n = Limits().max_depth
    with pytest.raises(GradcheckError) as info:
        parse("(" * (n + 1) + "x" + ")" * (n + 1))
    assert info.value.kind == "limit" and "--max-depth" in info.value.message


# ---------------------------------------------------------------------------------------------
# 6. Syntax errors: kind, column, message and caret.
# ---------------------------------------------------------------------------------------------

ERRORS = [
    # (text, kind, 1-based column, substrings the message must contain)
    ("x)", "syntax", 2, ["unmatched ')'"]),
    ("(x+1))", "syntax", 6, ["unmatched ')'"]),
    ("(x", "syntax", 1, ["never closed"]),
    ("x + (y*(z)", "syntax", 5, ["never closed"]),
    ("sin(x", "syntax", 4, ["never closed"]),
    ("2x", "syntax", 2, ["'*'"]),
    ("x y", "syntax", 3, ["'*'"]),
    ("2(x+1)", "syntax", 2, ["'*'"]),
    ("x +", "syntax", 4, ["ends"]),
    ("x**", "syntax", 4, ["ends"]),
    ("-", "syntax", 2, ["ends"]),
    ("x ++ * y", "syntax", 6, ["'*'"]),
    ("*x", "syntax", 1, ["'*'"]),
    ("()", "syntax", 2, ["')'"]),
    ("sin()", "syntax", 5, ["sin() needs an argument"]),
    ("sin(x,)", "syntax", 7, ["empty argument"]),
    ("max(x,,y)", "syntax", 7, ["empty argument"]),
    ("f(x)", "unknown-function", 1, ["'f'", "sigmoid"] + sorted(FUNCTIONS)),
    ("x + foo(y)", "unknown-function", 5, ["'foo'", "sigmoid"]),
    ("pi(x)", "unknown-function", 1, ["constant"]),
    ("sin", "syntax", 1, ["sin(...)"]),
    ("x + sin * 2", "syntax", 5, ["sin(...)"]),
    ("max(x)", "syntax", 1, ["at least 2", "got 1"]),
    ("y + max(x)", "syntax", 5, ["at least 2"]),
    ("max (x)", "syntax", 1, ["at least 2"]),  # the column of the name, whatever the spacing
    ("sin(x, y)", "syntax", 1, ["takes 1 argument", "got 2"]),
    ("leaky_relu(x, 1, 2)", "syntax", 1, ["1 to 2", "got 3"]),
    (",x", "syntax", 1, ["','"]),
    ("x,y", "syntax", 2, ["outside a function call"]),
    ("(x,y)", "syntax", 3, ["outside a function call"]),
    ("1.2.3", "syntax", 4, ["'.3'"]),
    ("x..5", "syntax", 2, ["U+002E"]),
    ("x == 1", "syntax", 3, ["U+003D", "EQUALS SIGN", "comparisons"]),  # `x = 1` is a program
    ("x; y", "syntax", 2, ["U+003B"]),  # without '=' a text is a formula: no statements ...
    ("x # note", "syntax", 3, ["U+0023"]),  # ... and no comments
    ("log(x, 2, 3)", "syntax", 1, ["1 to 2", "got 3"]),
    ("log()", "syntax", 5, ["log() needs an argument"]),
    ("x % 2", "syntax", 3, ["U+0025"]),
    ("1e999", "bad-number", 1, ["float64"]),
    ("x + 1e-999", "bad-number", 5, ["float64"]),
    ("2e308", "bad-number", 1, ["float64"]),
    ("1e400", "bad-number", 1, ["float64"]),
    ("9" * 309, "bad-number", 1, ["float64"]),
    ("x*1.8e308", "bad-number", 3, ["float64"]),
]


def _raise(text: str, limits: Limits | None = None) -> GradcheckError:
    with pytest.raises(GradcheckError) as info:
        parse(text) if limits is None else parse(text, limits)
    return info.value


def assert_caret_under(err: GradcheckError) -> None:
    """The caret line's '^' sits under the column it reports, in the line just above it."""
    caret = err.caret()
    assert caret is not None
    *above, marker = caret.split("\n")
    shown = above[-1]
    pos = marker.index("^")
    assert marker == " " * pos + "^"
    source = err.source
    assert source is not None
    if err.column <= len(source):
        assert shown[pos] == source[err.column - 1]
        # and it is that occurrence: the text left of the caret ends like the source does
        tail = source[max(0, err.column - 1 - 20): err.column - 1]
        assert shown[:pos].endswith(tail)
    else:  # the end of the formula: one past its last character
        assert pos == len(shown)
        assert shown.endswith(source[-min(len(source), 20):])


@pytest.mark.parametrize("text,kind,column,needles", ERRORS, ids=[repr(e[0])[:40] for e in ERRORS])
def test_syntax_errors(text: str, kind: str, column: int, needles: list[str]) -> None:
    err = _raise(text)
    assert err.kind == kind
    assert err.column == column
    assert err.source == text
    for needle in needles:
        assert needle in err.message
    assert f"column {column}" in err.message
    assert_caret_under(err)


def test_caret_exact_text() -> None:
    err = _raise("x + (y*(z)")
    assert err.caret() == "  x + (y*(z)\n      ^"
    err = _raise("x +")
    assert err.caret() == "  x +\n     ^"


def test_caret_window_in_a_long_formula() -> None:
    text = "x+" * 150 + "x)" + "+x" * 100
    err = _raise(text)
    assert err.column == 302
    assert_caret_under(err)
    shown = err.caret().split("\n")[0]
    assert shown.startswith("  ...") and shown.endswith("...")
    assert len(shown) < 120


def test_huge_exponent_is_a_gradcheck_error() -> None:
    # An exponent with thousands of digits must not escape as ValueError from int().
    text = "1e" + "1" * 5000
    err = _raise(text, Limits(max_length=10_000))
    assert err.kind in ("bad-number", "limit")  # either reading is fine; a traceback is not
    assert err.column == 1


@pytest.mark.parametrize("text", ["", " ", "   \t\n  ", "\r\n"])
def test_empty_formula(text: str) -> None:
    err = _raise(text)
    assert err.kind == "syntax"
    assert "empty" in err.message


def test_limits_digits() -> None:
    limits = Limits(max_digits=5)
    parse("12345 + 1.2345 + 1.2345e300", limits)
    for text, column in [("123456", 1), ("x + 1.23456", 5), ("x*1.00001", 3), ("123456e-3", 1)]:
        err = _raise(text, limits)
        assert err.kind == "limit", text
        assert err.column == column, text
        assert "--max-digits" in err.message and "6 digits" in err.message
        assert_caret_under(err)
    # the default limit: 400 digits
    assert parse("0." + "1" * 399).nodes[0].exact == Fraction(int("1" * 399), 10**399)
    err = _raise("0." + "1" * 401)
    assert err.kind == "limit" and "--max-digits" in err.message


def test_limits_exponent() -> None:
    limits = Limits(max_exponent=3)
    assert value_of("2**3") == 8.0
    parse("x**3 + x**-3 + x**3.5 + x**(1+3)", limits)
    for text, column in [("x**4", 2), ("x^-4", 2), ("y + x ** (4)", 7), ("x**4e0", 2)]:
        err = _raise(text, limits)
        assert err.kind == "limit", text
        assert err.column == column, text
        assert "--max-exponent" in err.message and "4" in err.message
        assert_caret_under(err)
    err = _raise("x**10001")
    assert err.kind == "limit" and "10000" in err.message and "--max-exponent" in err.message


def test_limits_apply_to_each_statement_of_a_program() -> None:
    limits = Limits(max_depth=3, max_digits=5, max_exponent=3)
    parse("a = sin(cos(x))\nb = a**3 + 1.2345", limits)
    for text, kind, line, column in [("a = x\nb = sin(sin(sin(sin(a))))", "limit", 2, 17),
                                     ("a = x\nb = a + 123456", "limit", 2, 9),
                                     ("a = x\nb = a**4", "limit", 2, 6)]:
        err = _raise(text, limits)
        assert (err.kind, err.line, err.line_column) == (kind, line, column), (text, err.message)
        assert f"line {line}, column {column}" in err.message


def test_program_refuses_characters_outside_comments_only() -> None:
    parse("a = x  # naïve − comment; with = and ;\nb = a")
    err = _raise("a = x\nb = a \u2212 1")
    assert (err.kind, err.line, err.line_column, err.column) == ("syntax", 2, 7, 13)
    assert "U+2212" in err.message and "hyphen-minus" in err.message


def test_limits_length() -> None:
    limits = Limits(max_length=4)
    assert len(parse("x+yy", limits).variables) == 2
    err = _raise("x+x+x", limits)
    assert err.kind == "limit"
    assert "--max-length" in err.message and "5" in err.message and "4" in err.message


# ---------------------------------------------------------------------------------------------
# 7. Non-ASCII and control characters.
# ---------------------------------------------------------------------------------------------

BAD_CHARS = [
    # (text, column, substrings of the message)
    ("\u0445+1", 1, ["U+0445", "CYRILLIC SMALL LETTER HA", "column 1", "ASCII"]),
    ("x + \u0445", 5, ["U+0445", "CYRILLIC SMALL LETTER HA", "column 5"]),
    ("x \u2212 1", 3, ["U+2212", "MINUS SIGN", "'-'"]),
    ("x \u2013 1", 3, ["U+2013", "'-'"]),
    ("\uff58**2", 1, ["U+FF58", "FULLWIDTH LATIN SMALL LETTER X"]),
    ("\u03b1*x", 1, ["U+03B1", "GREEK SMALL LETTER ALPHA"]),
    ("x\u00d7y", 2, ["U+00D7", "'*'"]),
    ("x\u00f7y", 2, ["U+00F7", "'/'"]),
    ("x\u00b2", 2, ["U+00B2", "x**2"]),
    ("x*\uff13", 3, ["U+FF13", "FULLWIDTH DIGIT THREE"]),     # a fullwidth digit is not ASCII
    ("x^\u0663", 3, ["U+0663", "ARABIC-INDIC DIGIT THREE"]),
    ("x\x1b", 2, ["U+001B", "control"]),
    ("\x1b[31mx", 1, ["U+001B"]),
    ("x+\x00", 3, ["U+0000"]),
    ("x\x7f", 2, ["U+007F"]),
    ("x\x0b+1", 2, ["U+000B"]),
    ("x\u200b+1", 2, ["U+200B", "ZERO WIDTH SPACE"]),
]


@pytest.mark.parametrize("text,column,needles", BAD_CHARS, ids=[ascii(t) for t, _, _ in BAD_CHARS])
def test_non_ascii_and_control_characters(text: str, column: int, needles: list[str]) -> None:
    err = _raise(text)
    assert err.kind == "syntax"
    assert err.column == column
    for needle in needles:
        assert needle in err.message
    # the message itself never carries a raw control character to the terminal
    assert all(ch.isprintable() for ch in err.message)


@pytest.mark.parametrize("text", ["x\x1b", "\x1b[2J\x1b[31mx + )", "x\x07)", "x\x00"])
def test_caret_does_not_echo_control_characters(text: str) -> None:
    err = _raise(text)
    caret = err.caret()
    assert caret is not None
    assert all(ch.isprintable() or ch == "\n" for ch in caret), ascii(caret)


@pytest.mark.parametrize(
    "text,point,want",
    [("x\t+\ny", {"x": 1.0, "y": 2.0}, 3.0), ("\tx\n", {"x": 4.0}, 4.0),
     ("x\r\n*\r\n2", {"x": 4.0}, 8.0), ("sin(\n  x\n)", {"x": 0.0}, 0.0)],
)
def test_tab_and_newline_are_whitespace(text: str, point: dict[str, float], want: float) -> None:
    assert value_of(text, **point) == want


def test_columns_count_tabs_and_newlines_as_one_character() -> None:
    assert _raise("\t2x").column == 3
    assert _raise("x +\n)").column == 5


@pytest.mark.parametrize("text", ["x\n)", "x +\n  y)", "\tx)", "x\t\t+ )"])
def test_caret_lines_up_on_screen_with_tabs_and_newlines(text: str) -> None:
    # As a terminal shows it: tabs expanded, and the caret under the line holding the error.
    err = _raise(text)
    caret = err.caret()
    assert caret is not None
    *above, marker = caret.expandtabs().split("\n")
    pos = marker.index("^")
    assert above[-1][pos:pos + 1] == text[err.column - 1], ascii(caret)


def test_regression_variable_with_thousands_of_digits_sorts_naturally() -> None:
    """Found by the long fuzz run: natural sorting used int(), which Python refuses beyond
    4,300 digits, so a name like x000…0001 crashed the parser."""
    long_name = "x" + "0" * 4301 + "1"
    graph = parse(f"{long_name} + x10 + x2 + x")
    assert graph.variables == ("x", long_name, "x2", "x10")
