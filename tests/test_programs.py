"""Programs with named steps (`t = x^2; J = cos(t)`): what they compute, the names they keep,
their versions, warnings and errors.

Every value is checked against one computed independently here with `math` (or micrograd's
published numbers), never against the parser's own reading of the same text; gradients go
through the real check (`gradcheck_cli.check.check`), where reverse mode is judged against
SymPy's exact derivative.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli.check import check
from gradcheck_cli.errors import GradcheckError
from gradcheck_cli.graph import Graph, evaluate
from gradcheck_cli.parse import ProgramError, parse

LECTURE = "t = x^2; u1 = sin(t); u2 = 3*t; u = u1 + u2; J = cos(u)"

# micrograd's test_more_ops, as a student copies it (engine.py's Value ops as our syntax)
MICROGRAD = (Path(__file__).resolve().parent.parent / "sample_expressions" / "programs"
             / "micrograd_more_ops.txt").read_text(encoding="utf-8")

# micrograd's test_sanity_check
MICROGRAD_SANITY = """\
x = -4.0
z = 2 * x + 2 + x
q = relu(z) + z * x
h = relu(z * z)
y = h + q + q * x
"""


def values(graph: Graph, **point: float) -> list[float]:
    """Every node's value at the point (the graph's defaults fill in what is not given)."""
    full = {**graph.defaults, **point}
    return [float(np.ravel(v)[0]) for v in evaluate(graph, {k: np.asarray(v) for k, v in full.items()})]


def output_value(graph: Graph, **point: float) -> float:
    return values(graph, **point)[graph.output]


def step(graph: Graph, label: str):
    return next(s for s in graph.steps if s.label == label)


def error_of(text: str, **kw: object) -> GradcheckError:
    with pytest.raises(GradcheckError) as info:
        parse(text, **kw)  # type: ignore[arg-type]
    return info.value


# ---------------------------------------------------------------------------------------------
# The lecture's staged program and the (x+y)z circuit
# ---------------------------------------------------------------------------------------------


def test_lecture_program_computes_the_staged_J() -> None:
    g = parse(LECTURE)
    x = 1.5
    t = x * x
    u = math.sin(t) + 3 * t
    assert output_value(g, x=x) == pytest.approx(math.cos(math.sin(2.25) + 6.75), rel=1e-15)
    vals = values(g, x=x)
    for label, want in [("t", t), ("u1", math.sin(t)), ("u2", 3 * t), ("u", u), ("J", math.cos(u))]:
        assert vals[g.node_of(label)] == pytest.approx(want, rel=1e-15), label
    assert g.variables == ("x",)
    assert g.output_names == ("J",) and g.output == g.node_of("J")
    assert sorted(g.labels.values()) == ["J", "t", "u", "u1", "u2"]
    assert [(s.label, s.line, s.column, s.text) for s in g.steps] == [
        ("t", 1, 1, "t = x^2"), ("u1", 1, 10, "u1 = sin(t)"), ("u2", 1, 23, "u2 = 3*t"),
        ("u", 1, 33, "u = u1 + u2"), ("J", 1, 46, "J = cos(u)")]
    assert g.warnings == ()


def test_lecture_program_gradient_through_check() -> None:
    x = 1.5
    t = x * x
    u = math.sin(t) + 3 * t
    want = -math.sin(u) * (math.cos(t) + 3) * 2 * x  # dJ/du · (du1/dt + du2/dt) · dt/dx
    report = check(LECTURE, {"x": x})
    assert report.verdict == "pass"
    assert report.method("reverse").gradient["x"] == pytest.approx(want, rel=1e-13)
    # the same function as one formula gives the same graph size and gradient
    same = check("cos(sin(x^2)+3*x^2)", {"x": x})
    assert same.method("reverse").gradient["x"] == report.method("reverse").gradient["x"]


def test_circuit_program() -> None:
    g = parse("q = x + y; f = q*z")
    vals = values(g, x=-2, y=5, z=-4)
    assert vals[g.node_of("q")] == 3 and vals[g.output] == -12
    report = check("q = x + y; f = q*z", {"x": -2, "y": 5, "z": -4})
    assert report.verdict == "pass"
    assert report.method("reverse").gradient == {"x": -4.0, "y": -4.0, "z": 3.0}


# ---------------------------------------------------------------------------------------------
# micrograd's programs: inputs with defaults, +=, a shadowed constant
# ---------------------------------------------------------------------------------------------


def test_micrograd_program_values_and_gradients() -> None:
    g = parse(MICROGRAD)
    assert g.variables == ("a", "b")
    assert g.defaults == {"a": -4.0, "b": 2.0}
    assert g.output_names == ("g",) and g.output == g.node_of("g") == g.node_of("g#2")
    assert output_value(g) == pytest.approx(24.70408163265306, rel=1e-14)
    report = check(MICROGRAD, dict(g.defaults))
    assert report.verdict == "pass"
    grad = report.method("reverse").gradient
    assert grad["a"] == pytest.approx(138.83381924198252, rel=1e-13)
    assert grad["b"] == pytest.approx(645.5772594752186, rel=1e-13)
    # the defaults are only defaults: another point gives another value
    assert output_value(g, a=-3.0) != pytest.approx(24.70408163265306)


def test_micrograd_sanity_program() -> None:
    g = parse(MICROGRAD_SANITY)
    assert g.defaults == {"x": -4.0} and output_value(g) == -20.0
    report = check(MICROGRAD_SANITY, {"x": -4.0})
    assert report.method("reverse").gradient["x"] == 46.0


def test_micrograd_versions_and_shadow_warning() -> None:
    g = parse(MICROGRAD)
    assert [s.label for s in g.steps] == ["a", "b", "c", "d", "c#2", "c#3", "d#2", "d#3", "e", "f", "g",
                                          "g#2"]
    # line 13: after the sample file's 4 comment lines
    assert [(w.kind, w.line, w.column) for w in g.warnings] == [("shadows-constant", 13, 1)]
    assert "Euler" in g.warnings[0].message and str(g.warnings[0]).startswith("line 13, column 1: ")
    vals = values(g)
    a, b = -4.0, 2.0
    c = a + b
    d = a * b + b**3
    c2 = c + c + 1
    c3 = c2 + 1 + c2 + (-a)
    d2 = d + d * 2 + max(b + a, 0)
    d3 = d2 + 3 * d2 + max(b - a, 0)
    for label, want in [("c", c), ("c#2", c2), ("c#3", c3), ("d#2", d2), ("d#3", d3), ("e", c3 - d3)]:
        assert vals[step(g, label).node] == want, label
    assert g.node_of("c") == g.node_of("c#3")  # as an output, a bare name is its last version


# ---------------------------------------------------------------------------------------------
# Reassignment and the augmented assignments
# ---------------------------------------------------------------------------------------------


def test_reassignment_versions() -> None:
    g = parse("c = x\nc = c*2\nc += 1\nJ = c")
    assert [s.label for s in g.steps] == ["c", "c#2", "c#3", "J"]
    vals = values(g, x=5.0)
    assert [vals[s.node] for s in g.steps] == [5.0, 10.0, 11.0, 11.0]
    assert g.node_of("c#2") is not None and vals[g.node_of("c#2")] == 10.0


@pytest.mark.parametrize("text,want", [
    ("c = x; c += y*2", 3 + 4 * 2),
    ("c = x; c -= y + 1", 3 - (4 + 1)),    # c - (y + 1), not c - y + 1
    ("c = x; c *= y + 1", 3 * (4 + 1)),    # c * (y + 1), not c*y + 1
    ("c = x; c /= y * 2", 3 / (4 * 2)),    # c / (y * 2), not c/y * 2
    ("c = x; c -= -y", 3 + 4),
])
def test_augmented_assignment_wraps_the_right_side(text: str, want: float) -> None:
    g = parse(text)
    assert output_value(g, x=3.0, y=4.0) == pytest.approx(want, rel=1e-15)
    assert [s.label for s in g.steps] == ["c", "c#2"]


def test_plain_number_inputs() -> None:
    g = parse("a = 3\nb = a*x")
    assert g.variables == ("a", "x") and g.defaults == {"a": 3.0}
    assert step(g, "a").default == 3.0 and step(g, "b").default is None
    # a later plain number is a constant step, and so is an expression of numbers
    g = parse("a = x\nf = a\na = 2\nb = 2*3\nJ = a*b*f")
    assert g.variables == ("x",) and g.defaults == {} and output_value(g, x=1.5) == 18.0
    # a constant's name is never an input: `pi = 3` is a constant step (and a warning)
    g = parse("pi = 3\nf = pi*x")
    assert g.variables == ("x",) and output_value(g, x=2.0) == 6.0
    assert [w.kind for w in g.warnings] == ["shadows-constant"]


def test_constant_means_the_constant_before_it_is_shadowed() -> None:
    g = parse("y = e*x\ne = 2*x\nz = e + y")
    x = 1.5
    assert output_value(g, x=x) == pytest.approx(2 * x + math.e * x, rel=1e-15)
    (w,) = g.warnings
    assert (w.kind, w.line, w.column) == ("shadows-constant", 2, 1)


# ---------------------------------------------------------------------------------------------
# Names: aliases and equal right-hand sides keep every label
# ---------------------------------------------------------------------------------------------


def test_equal_right_hand_sides_keep_both_names() -> None:
    g = parse("a = x*y; b = x*y; f = a + b")
    node = g.node_of("a")
    assert g.node_of("b") == node  # one node (hash-consed) ...
    assert g.names_of(node) == ("a", "b")  # ... and both names
    assert g.labels[node] == "a"
    assert output_value(g, x=2.0, y=3.0) == 12.0
    assert g.warnings == ()


def test_alias_keeps_its_name() -> None:
    g = parse("a = sin(x); b = a; f = b*2")
    assert g.node_of("b") == g.node_of("a") and g.names_of(g.node_of("a")) == ("a", "b")
    assert [s.label for s in g.steps] == ["a", "b", "f"]


def test_alias_of_an_input_does_not_rename_it() -> None:
    g = parse("b = x; f = b*b")
    x = g.var_nodes["x"]
    assert g.names_of(x) == ("b",) and x not in g.labels  # x keeps its own name
    assert g.variables == ("x",) and output_value(g, x=3.0) == 9.0


def test_output_choice() -> None:
    g = parse("q = x + y; f = q*z", outputs=["q", "f"])
    assert g.output_names == ("q", "f") and len(g.outputs) == 2
    vals = values(g, x=-2, y=5, z=-4)
    assert [vals[o] for o in g.outputs] == [3.0, -12.0]
    g = parse("c = x; c = c*2; J = c + 1", outputs=["c#2"])  # a label names one version
    assert output_value(g, x=3.0) == 6.0 and g.output_names == ("c",)
    assert [w.message for w in g.warnings] == [
        "step 'J' is never used: no later step reads it and it is not an output"]
    # a step no output needs is still recorded, without a node
    assert step(g, "J").node is None


# ---------------------------------------------------------------------------------------------
# Warnings and comments
# ---------------------------------------------------------------------------------------------


def test_unused_step_warnings() -> None:
    g = parse("t = x^2\nu = sin(x)\nJ = cos(t)")
    (w,) = g.warnings
    assert (w.kind, w.line, w.column) == ("unused-step", 2, 1) and "'u'" in w.message
    g = parse("c = x\nc = 2*x\nJ = c")  # overwritten before anything read it
    (w,) = g.warnings
    assert (w.kind, w.line) == ("unused-step", 1) and "assigned again at line 2" in w.message


def test_comments_and_blank_lines() -> None:
    text = "# the lecture's J\n\nt = x^2   # square = t\n  # σ′ = σ(1−σ) is fine in a comment\nJ = cos(t) #"
    g = parse(text)
    assert output_value(g, x=1.5) == pytest.approx(math.cos(2.25), rel=1e-15)
    assert [(s.label, s.line, s.column, s.text) for s in g.steps] == [
        ("t", 3, 1, "t = x^2"), ("J", 5, 1, "J = cos(t)")]


def test_statement_over_lines_inside_parentheses_and_crlf() -> None:
    g = parse("a = x\r\nb = (a +  # more\r\n     1)\r\nJ = b*2\r\n")
    assert output_value(g, x=1.0) == 4.0
    assert step(g, "b").text == "b = (a + 1)" and (step(g, "J").line, step(g, "J").column) == (4, 1)


def test_a_formula_is_unchanged() -> None:
    g = parse("sin(x)*x + x")
    assert g.steps == () and g.labels == {} and g.warnings == () and g.defaults == {}
    assert g.output_names == ()
    assert [n.op for n in g.nodes] == ["var", "sin", "mul", "add"]


# ---------------------------------------------------------------------------------------------
# Errors: kind, line, column and the caret on that line
# ---------------------------------------------------------------------------------------------

ERRORS = [
    # (program, kind, line, column, words the message must contain)
    ("y = 2*c\nc = 3", "undefined-name", 1, 7, ["'c'", "before it is assigned", "line 2"]),
    ("x = x + 1", "undefined-name", 1, 5, ["'x'", "before it is assigned"]),
    ("a = 1\nc += a", "undefined-name", 2, 1, ["'c'", "before it is assigned"]),
    ("t = x\n\nsin = t", "syntax", 3, 1, ["'sin'", "function"]),
    ("t = x\nJ = cos(t))", "syntax", 2, 11, ["unmatched ')'"]),
    ("t = x\nJ = cos(t", "syntax", 2, 8, ["cos(", "never closed"]),
    ("t = x\nJ = 2*t y", "syntax", 2, 9, ["expected an operator"]),
    ("a = b = x", "syntax", 1, 7, ["'='"]),
    ("x == y", "syntax", 1, 3, ["U+003D", "EQUALS SIGN", "comparisons"]),
    ("t = x; t*2", "syntax", 1, 8, ["`name = formula`"]),
    ("t = x\n+ 1", "syntax", 2, 1, ["parentheses"]),
    ("t = x\nu = t @ 2", "syntax", 2, 7, ["U+0040"]),
    ("t = x\nu = t.y", "syntax", 2, 6, ["U+002E"]),
    ("t = x\nu = f(t)", "unknown-function", 2, 5, ["'f'"]),
    ("t = x\nu = t +", "syntax", 2, 8, ["statement ends"]),
    ("# only = a comment", "syntax", 1, 19, ["no statements"]),
]


@pytest.mark.parametrize("text,kind,line,column,words", ERRORS, ids=[e[0][:30] for e in ERRORS])
def test_program_errors(text: str, kind: str, line: int, column: int, words: list[str]) -> None:
    err = error_of(text)
    assert isinstance(err, ProgramError)
    assert (err.kind, err.line, err.line_column) == (kind, line, column), err.message
    assert f"line {line}, column {column}" in err.message
    for word in words:
        assert word in err.message
    # `column` counts in the whole text, like a formula's
    assert err.source == text
    assert err.column == sum(len(s) + 1 for s in text.split("\n")[: line - 1]) + column
    # the caret shows that line, under that column
    source_line = text.split("\n")[line - 1]
    caret = err.caret()
    assert caret is not None
    shown, marker = caret.split("\n")
    assert shown == "  " + source_line and marker.index("^") == 2 + column - 1


def test_unknown_output_names_it() -> None:
    err = error_of("q = x + y; f = q*z", outputs=["g"])
    assert err.kind == "unknown-output" and "'g'" in err.message and "q, f" in err.message
    err = error_of("q = x + y; f = q*z", outputs=["x"])
    assert "'x' is an input" in err.message
    err = error_of("x*y", outputs=["f"])
    assert err.kind == "unknown-output" and "a formula has no named steps" in err.message


def test_a_long_program_parses() -> None:
    n = 20_000  # far deeper than Python's recursion limit, without any recursion
    text = "\n".join(["u0 = x"] + [f"u{i} = sin(u{i - 1})*x + x" for i in range(1, n + 1)])
    g = parse(text)
    assert len(g.nodes) == 3 * n + 1 and len(g.steps) == n + 1 and g.warnings == ()
    assert (g.steps[-1].line, g.steps[-1].label) == (n + 1, f"u{n}")
    u = 0.3
    for _ in range(n):
        u = math.sin(u) * 0.3 + 0.3
    assert output_value(g, x=0.3) == pytest.approx(u, rel=1e-12)


@pytest.mark.parametrize("text,line,column", [
    ("cos(sin(x**2)\n+3*x**2 +)\n", 2, 10),  # a formula over lines, read from a file
    ("(x\n  + y\n  +* z)", 3, 4),
    ("x +\n\n  @", 3, 3),
])
def test_a_formula_of_several_lines_reports_the_line(text: str, line: int, column: int) -> None:
    err = error_of(text)
    assert (err.line, err.line_column) == (line, column), err.message
    assert f"line {line}, column {column}" in err.message
    shown, marker = err.caret().split("\n")
    assert shown == "  " + text.split("\n")[line - 1] and marker.index("^") == 2 + column - 1


def test_a_formula_on_one_line_still_reports_only_the_column() -> None:
    err = error_of("x +* 2\n")  # a file's final newline makes no second line
    assert "column 4" in err.message and "line" not in err.message


def test_a_value_for_an_input_the_output_does_not_need_is_unused_not_an_error() -> None:
    """`--output c` of `c = 3*z; y = x*c`: x is an input of the program, not of c."""
    report = check("c = 3*z; y = x*c", {"x": 1.0, "z": 2.0}, outputs=["c"])
    assert report.verdict == "pass" and report.wrt == ["z"]
    assert report.method("reverse").values["z"].tolist() == [3.0]
    notes = [d.message for d in report.diagnostics if d.kind == "unused-input"]
    assert notes == ["x is an input of the program that c does not depend on: the value given is not used."]
    with pytest.raises(GradcheckError, match="'q'"):  # a name the program never uses is still refused
        check("c = 3*z; y = x*c", {"z": 2.0, "q": 1.0}, outputs=["c"])
