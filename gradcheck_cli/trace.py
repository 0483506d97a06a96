"""The step-by-step trace of backpropagation, as the lecture notes write it.

Convention (the notes'): the forward pass visits the steps in topological order and stores
each value u_i = g_i(v_1..v_N); the backward pass starts from dJ/dJ = 1, visits the steps in
reverse order, and for every argument v_j of a step u_i adds the contribution
dJ/du_i · ∂u_i/∂v_j into dJ/dv_j:

    dJ/dt += dJ/du1 · du1/dt = -0.4237 · 0.2172 = -0.09203

so gradients visibly add where a value branches (t feeds u1 and u2: two contributions).

Every number comes from the real sweeps: the values from the one interpreter's walk
(`interpret.walk`), the upstream adjoints, local partials, contributions and accumulated
adjoints from the observer of `interpret.backward` — the trace never recomputes a derivative
its own way. The forward-mode trace (`trace_forward`) carries dual numbers through the same
walk (`dual.Duals`) along one direction and shows each tangent as the sum of its terms.

Names: a step's name is its label in `graph.labels` (a program's `t = x^2`, versions `c#2`);
a variable is its name, a constant its number; an unnamed operation is its formula text
(`explain`'s text, with named steps written by their names), and an unnamed output is `f`.
The local partial's formula text (`∂u1/∂t = cos(t)`) comes from `PARTIAL_TEXT`, the one table
of derivative formulas as text, kept beside `rules.RULES` by a test that evaluates every
smooth entry against the rule's own partial.

Numbers are shown with significant digits (`%.6g` by default), so a small gradient is never
shown as 0 (micrograd's `draw_dot` prints 0.0000 for 3e-5); JSON keeps full floats, and a
number that is not finite is the string "nan", "inf" or "-inf" (strict RFC 8259, as in every
gradcheck JSON report).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .dual import Dual, Duals, apply
from .errors import GradcheckError
from .explain import ATOM, Texts, const_text
from .graph import Graph, Node
from .interpret import Values, backward, walk
from .render import json_number, to_ascii
from .rules import RULES

MAX_STEPS = 5000  # a trace is for reading: a formula of more nodes is refused with a message
VALUE_STYLE = "cyan"  # the forward value, in the trace and in the graph picture
GRADIENT_STYLE = "magenta"  # the gradient (adjoint)


def num(x: float | None, digits: int = 6) -> str:
    """`%.{digits}g`: significant digits, so 3e-05 stays 3e-05 (never 0); -0 is 0."""
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


# --------------------------------------------------------------------------------------------
# The local partials as formula text: one table, one entry per rule
# --------------------------------------------------------------------------------------------
# Fields: {a}, {b} the first and second argument as written; {A}, {B} the same in parentheses
# unless it is an atom (a name, a number, a call); {x}/{X} the argument the partial is taken
# with respect to (the n-ary max and min). Smooth entries are formulas gradcheck itself parses
# (tests/test_teach.py evaluates each one against the rule's partial); the non-smooth ones say
# which branch applies in words, with the kink convention of rules.py.

PartialText = str | Callable[[int, Sequence["Arg"]], str]


@dataclass(frozen=True)
class Arg:
    """An argument's text: `text` as written, `prec` its precedence (explain's: 5 an atom), and
    `exact` its value when it is a typed number (pow's constant exponent reads better folded)."""

    text: str
    prec: int = ATOM
    exact: Fraction | None = None

    @property
    def wrapped(self) -> str:
        return self.text if self.prec >= ATOM else f"({self.text})"


def _pow_text(j: int, args: Sequence[Arg]) -> str:
    a, b = args
    if j == 1:
        return f"{a.wrapped}**{b.wrapped}*log({a.text})"
    if b.exact is not None:  # x**2 -> 2*x, x**3 -> 3*x**2, x**-1 -> -1*x**(-2)
        n = b.exact
        if n == 0:
            return "0"
        if n == 1:
            return "1"
        lead = const_text(n)
        lead = lead if n > 0 else f"({lead})"
        m = n - 1
        power = "" if m == 1 else f"**{const_text(m)}" if m > 0 else f"**({const_text(m)})"
        return f"{lead}*{a.wrapped}{power}"
    return f"{b.wrapped}*{a.wrapped}**({b.text} - 1)"


PARTIAL_TEXT: dict[str, tuple[PartialText, ...]] = {
    "add": ("1", "1"),
    "sub": ("1", "-1"),
    "mul": ("{b}", "{a}"),
    "div": ("1/{B}", "-{A}/{B}**2"),
    "neg": ("-1",),
    "pow": (_pow_text, _pow_text),
    "sin": ("cos({a})",),
    "cos": ("-sin({a})",),
    "tan": ("1 + tan({a})**2",),
    "asin": ("1/sqrt(1 - {A}**2)",),
    "acos": ("-1/sqrt(1 - {A}**2)",),
    "atan": ("1/(1 + {A}**2)",),
    "sinh": ("cosh({a})",),
    "cosh": ("sinh({a})",),
    "tanh": ("1 - tanh({a})**2",),
    "exp": ("exp({a})",),
    "log": ("1/{A}",),
    "sqrt": ("1/(2*sqrt({a}))",),
    "erf": ("2/sqrt(pi)*exp(-{A}**2)",),
    "sec": ("sec({a})*tan({a})",),
    "csc": ("-csc({a})*cot({a})",),
    "cot": ("-(1 + cot({a})**2)",),
    "asec": ("1/(abs({a})*sqrt({A}**2 - 1))",),
    "acsc": ("-1/(abs({a})*sqrt({A}**2 - 1))",),
    "acot": ("-1/(1 + {A}**2)",),
    "asinh": ("1/sqrt({A}**2 + 1)",),
    "acosh": ("1/sqrt({A}**2 - 1)",),
    "atanh": ("1/(1 - {A}**2)",),
    "log2": ("1/({A}*log(2))",),
    "log10": ("1/({A}*log(10))",),
    "cbrt": ("1/(3*cbrt({a})**2)",),
    "atan2": ("{B}/({A}**2 + {B}**2)", "-{A}/({A}**2 + {B}**2)"),
    "abs": ("sign({a}) (0 at 0)",),
    "max": ("1 if {x} is the largest argument, else 0 (ties share it)",),
    "min": ("1 if {x} is the smallest argument, else 0 (ties share it)",),
    "sigmoid": ("sigmoid({a})*(1 - sigmoid({a}))",),
    "relu": ("1 if {a} > 0, else 0",),
    "leaky_relu": ("1 if {a} > 0, else {b}", "0 if {a} > 0, else {a}"),
    "elu": ("1 if {a} > 0, else {B}*exp({a})", "0 if {a} > 0, else exp({a}) - 1"),
    "softplus": ("sigmoid({a})",),
    "swish": ("sigmoid({a})*(1 + {A}*(1 - sigmoid({a})))",),
    "gelu": ("(1 + erf({A}/sqrt(2)))/2 + {A}*exp(-{A}**2/2)/sqrt(2*pi)",),
    "hard_swish": ("0 if {a} < -3, (2*{A} + 3)/6 if {a} <= 3, else 1",),
}


def partial_text(op: str, j: int, args: Sequence[Arg]) -> str:
    """The formula of ∂op/∂args[j] in terms of the arguments' texts ("cos(t)")."""
    entries = PARTIAL_TEXT.get(op)
    if entries is None:
        return f"∂{op}/∂arg{j + 1}"  # a rule added without its text (a test catches this)
    entry = entries[0] if RULES[op].arity is None else entries[j]
    if callable(entry):
        return entry(j, args)
    fields = {"x": args[j].text, "X": args[j].wrapped}
    for key, k in (("a", 0), ("b", 1)):
        if k < len(args):
            fields[key], fields[key.upper()] = args[k].text, args[k].wrapped
    return entry.format(**fields)


# --------------------------------------------------------------------------------------------
# Names and texts of the steps
# --------------------------------------------------------------------------------------------


class _Named(Texts):
    """explain's formula text, where a named step is an atom written by its name."""

    def __init__(self, labels: Mapping[int, str], max_len: int) -> None:
        super().__init__(max_len)
        self.labels = labels

    def var(self, i: int, node: Node) -> tuple[str, int]:
        return (self.labels[i], ATOM) if i in self.labels else super().var(i, node)

    def const(self, i: int, node: Node) -> tuple[str, int]:
        return (self.labels[i], ATOM) if i in self.labels else super().const(i, node)

    def op(self, i: int, node: Node, args: tuple[tuple[str, int], ...]) -> tuple[str, int]:
        return (self.labels[i], ATOM) if i in self.labels else super().op(i, node, args)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_#]*")


@dataclass(frozen=True)
class Names:
    """For every node: `name` (how other steps refer to it), `expression` (what it computes,
    in terms of its arguments' names), and `args` (each argument as an `Arg`)."""

    name: tuple[str, ...]
    expression: tuple[str, ...]
    args: tuple[tuple[Arg, ...], ...]
    output_name: str


def step_names(graph: Graph, output: int, max_len: int = 60) -> Names:
    """The names and expressions of every node (see the module docstring)."""
    namer = _Named(graph.labels, max_len)
    texts = walk(graph, namer)
    plain = Texts(max_len)
    names: list[str] = []
    expressions: list[str] = []
    args: list[tuple[Arg, ...]] = []
    for i, node in enumerate(graph.nodes):
        names.append(texts[i][0])
        a = tuple(_arg(graph, texts, k) for k in node.args)
        args.append(a)
        if node.op == "var":
            expressions.append(node.name or "?")
        elif node.op == "const":
            expressions.append(plain.const(i, node)[0])
        else:
            expressions.append(plain.op(i, node, tuple((x.text, x.prec) for x in a))[0])
    out_name = names[output]
    if output in graph.outputs and graph.output_names:
        # `a = x*y; J = a`: the output is J, a name of the same node. But a bare name that was
        # reassigned (`g`, whose last version is `g#2`) would read as the first version: keep
        # the node's own label then.
        named = graph.output_names[graph.outputs.index(output)]
        if named in graph.names_of(output):
            out_name = named
    elif output not in graph.labels and graph.nodes[output].op != "var":
        out_name = "f" if "f" not in graph.var_nodes else "out"
        names[output] = out_name
    return Names(tuple(names), tuple(expressions), tuple(args), out_name)


def _arg(graph: Graph, texts: Sequence[tuple[str, int]], k: int) -> Arg:
    """Node k as an argument: its text and precedence, and its value if it is a typed number."""
    node = graph.nodes[k]
    typed = node.op == "const" and node.name is None and k not in graph.labels
    return Arg(texts[k][0], texts[k][1], node.exact if typed else None)


def dname(name: str) -> str:
    """A name in Leibniz notation: dJ/dt, but dJ/d(x**2)."""
    return name if _IDENT.fullmatch(name) else f"({name})"


# --------------------------------------------------------------------------------------------
# The trace: data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the forward pass."""

    index: int
    name: str
    kind: str  # "input", "constant" (only a named one is a step), "operation"
    op: str | None  # the rule's name, None for an input or a constant
    expression: str  # "sin(t)"; an input's own name; a constant's number
    inputs: tuple[str, ...]
    value: float
    aliases: tuple[str, ...] = ()  # other steps with this value (`b = a`, or the same formula twice)


@dataclass(frozen=True)
class Edge:
    """One edge the backward sweep crossed: the contribution of step `of` to argument `to`."""

    node: int
    position: int  # which argument of the step (x*x has two edges to x)
    argument: int
    of: str
    to: str
    formula: str  # the local partial ∂of/∂to as a formula: "cos(t)"
    partial: float
    upstream: float  # dJ/d(of)
    contribution: float  # upstream · partial
    adjoint: float  # dJ/d(to) after adding the contribution

    def partial_line(self, digits: int = 6) -> str:
        """`∂u1/∂t = cos(t) = 0.217` (`∂u/∂u1 = 1` where the formula is its value)"""
        value = num(self.partial, digits)
        tail = "" if self.formula == value else f" = {value}"
        return f"∂{dname(self.of)}/∂{dname(self.to)} = {self.formula}{tail}"

    def contribution_line(self, output: str, digits: int = 6) -> str:
        """`dJ/dt += dJ/du1 · du1/dt = -0.4237 · 0.2172 = -0.09203`"""
        o, of, to = dname(output), dname(self.of), dname(self.to)
        return (f"d{o}/d{to} += d{o}/d{of} · d{of}/d{to} = {num(self.upstream, digits)} · "
                f"{num(self.partial, digits)} = {num(self.contribution, digits)}")


@dataclass(frozen=True)
class BackStep:
    """One step of the backward pass: its upstream gradient dJ/du and the edges it sends back."""

    index: int
    name: str
    expression: str
    upstream: float
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class Trace:
    output: int
    output_name: str
    point: dict[str, float]
    wrt: tuple[str, ...]
    forward: tuple[Step, ...]
    backward: tuple[BackStep, ...]
    gradient: dict[str, float]
    values: tuple[float, ...]  # every node's value (for the graph picture)
    adjoints: tuple[float | None, ...]  # every node's dJ/du; None where no path leads to wrt
    names: tuple[str, ...]

    @property
    def value(self) -> float:
        return self.values[self.output]

    def contributions(self, name: str) -> list[Edge]:
        """Every contribution added into the adjoint of the step called `name`, in order."""
        return [e for s in self.backward for e in s.edges if e.to == name]


def one_point(graph: Graph, point: Mapping[str, Any]) -> dict[str, float]:
    """The point as plain floats (a batch of one is accepted), every variable given."""
    point = {**graph.defaults, **point}  # a program's `a = -4.0` gives a default value
    missing = [v for v in graph.variables if v not in point]
    if missing:
        raise GradcheckError("missing-value", f"no value for {', '.join(missing[:10])}: give "
                             "every variable a value with --at NAME=VALUE.")
    out = {}
    for name, v in point.items():
        a = np.asarray(v, dtype=np.float64)
        if a.size != 1:
            raise GradcheckError("usage", f"a trace, a graph picture, a step-size study and a "
                                 f"Taylor test are for one point; {name} has {a.size} values.")
        out[name] = float(a.reshape(-1)[0])
    return out


def resolve_output(graph: Graph, output: int | str | None) -> int:
    """A node index from an index, a step name, or None (the graph's first output)."""
    if output is None:
        return graph.output
    if isinstance(output, str):
        found = graph.node_of(output)
        if found is None:
            raise GradcheckError("usage", f"there is no step called {output!r} that can be an output.")
        return found
    if not 0 <= output < len(graph.nodes):
        raise GradcheckError("usage", f"no node {output} in a graph of {len(graph.nodes)} nodes.")
    return output


def _check_size(graph: Graph) -> None:
    if len(graph.nodes) > MAX_STEPS:
        raise GradcheckError("limit", f"the formula has {len(graph.nodes):,} steps; a trace or a "
                             f"picture is for reading and shows at most {MAX_STEPS:,}.")


def trace(
    graph: Graph,
    point: Mapping[str, Any],
    wrt: Sequence[str] | None = None,
    output: int | str | None = None,
) -> Trace:
    """The forward and backward passes of reverse mode at one point, step by step."""
    _check_size(graph)
    p = one_point(graph, point)
    out = resolve_output(graph, output)
    wrt = tuple(graph.variables if wrt is None else wrt)
    names = step_names(graph, out)
    values = walk(graph, Values(p), upto=out)
    edges: list[Edge] = []

    def observe(i: int, j: int, a: int, upstream: np.ndarray, partial: np.ndarray,
                contribution: np.ndarray, adjoint: np.ndarray) -> None:
        edges.append(Edge(i, j, a, names.name[i], names.name[a],
                          partial_text(graph.nodes[i].op, j, names.args[i]), float(partial),
                          float(upstream), float(contribution), float(adjoint)))

    adjoints = backward(graph, values, wrt, output=out, observer=observe)
    needed = needed_nodes(graph, out)
    forward = []
    for i, node in enumerate(graph.nodes[: out + 1]):
        if not needed[i] or (node.op == "const" and i not in graph.labels and i != out):
            continue
        kind = {"var": "input", "const": "constant"}.get(node.op, "operation")
        forward.append(Step(i, names.name[i], kind, node.op if kind == "operation" else None,
                            names.expression[i], tuple(a.text for a in names.args[i]), float(values[i]),
                            _aliases(graph, i, names.name[i])))
    back: list[BackStep] = []
    for e in edges:
        if not back or back[-1].index != e.node:
            back.append(BackStep(e.node, names.name[e.node], names.expression[e.node], e.upstream, ()))
        s = back[-1]
        back[-1] = BackStep(s.index, s.name, s.expression, s.upstream, s.edges + (e,))
    gradient = {}
    for v in wrt:
        k = graph.var_nodes.get(v)
        adj = adjoints[k] if k is not None and k <= out else None
        gradient[v] = float(adj) if adj is not None else 0.0
    all_values = tuple(float(values[i]) if i <= out else math.nan for i in range(len(graph.nodes)))
    all_adjoints = tuple(None if a is None else float(a) for a in adjoints)
    return Trace(out, names.output_name, p, wrt, tuple(forward), tuple(back), gradient,
                 all_values, all_adjoints, names.name)


def _aliases(graph: Graph, i: int, name: str) -> tuple[str, ...]:
    """The other step names of node i (a program's alias `b = a`, or one formula written twice)."""
    return tuple(n for n in graph.names_of(i) if n != name)


def needed_nodes(graph: Graph, out: int) -> list[bool]:
    """The nodes the output depends on (a program may compute steps another output uses)."""
    need = [False] * len(graph.nodes)
    need[out] = True
    for i in range(out, -1, -1):
        if need[i]:
            for a in graph.nodes[i].args:
                need[a] = True
    return need


# --------------------------------------------------------------------------------------------
# Forward mode: dual numbers along one direction
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One term of a tangent: ∂of/∂to · (the tangent of to)."""

    to: str
    position: int
    formula: str
    partial: float
    tangent_in: float
    term: float


@dataclass(frozen=True)
class DualStep:
    index: int
    name: str
    kind: str
    expression: str
    inputs: tuple[str, ...]
    value: float
    tangent: float  # 0 where the step does not depend on the direction (a structural zero)
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class ForwardTrace:
    output: int
    output_name: str
    point: dict[str, float]
    direction: dict[str, float]
    direction_name: str  # "x" for the unit direction of x, else "v"
    steps: tuple[DualStep, ...]

    @property
    def value(self) -> float:
        return next(s.value for s in self.steps if s.index == self.output)

    @property
    def derivative(self) -> float:
        """The directional derivative ∇f·v (∂f/∂x for the unit direction of x)."""
        return next(s.tangent for s in self.steps if s.index == self.output)


class _Recording(Duals):
    """Dual numbers through the one interpreter (`dual.apply` computes each tangent); the terms
    of each tangent are recorded beside it for the trace, from the rule table's partials."""

    def __init__(self, point: Mapping[str, Any], seeds: Mapping[str, np.ndarray]) -> None:
        super().__init__(point, seeds)
        self.terms: dict[int, list[tuple[int, float, float, float]]] = {}

    def op(self, i: int, node: Node, args: tuple[Dual, ...]) -> Dual:
        out = apply(node.op, args)
        rule = RULES[node.op]
        values = tuple(a.value for a in args)
        rows = []
        with np.errstate(all="ignore"):
            for j, a in enumerate(args):
                if a.tangent is None:
                    continue
                partial = float(np.asarray(rule.partial(j, out.value, values)))
                t = float(np.asarray(a.tangent).reshape(-1)[0])
                rows.append((j, partial, t, partial * t))
        self.terms[i] = rows
        return out


def trace_forward(
    graph: Graph,
    point: Mapping[str, Any],
    direction: str | Mapping[str, float],
    output: int | str | None = None,
) -> ForwardTrace:
    """Forward mode at one point: each step's dual number (value, tangent) along `direction`,
    a variable's name (its unit direction: the tangents are ∂u/∂x) or {name: component}."""
    _check_size(graph)
    p = one_point(graph, point)
    out = resolve_output(graph, output)
    if isinstance(direction, str):
        if direction not in graph.variables:
            raise GradcheckError("usage", f"{direction!r} is not a variable of the formula.")
        d, dname = {direction: 1.0}, direction
    else:
        unknown = [v for v in direction if v not in graph.variables]
        if unknown:
            raise GradcheckError("usage", f"not variables of the formula: {', '.join(unknown[:10])}.")
        d, dname = {k: float(v) for k, v in direction.items()}, "v"
        if "v" in graph.variables:
            dname = "direction"
    seeds = {k: np.array([v]) for k, v in d.items()}
    rec = _Recording(p, seeds)
    duals = walk(graph, rec, upto=out)
    names = step_names(graph, out)
    needed = needed_nodes(graph, out)
    steps = []
    for i, node in enumerate(graph.nodes[: out + 1]):
        if not needed[i] or (node.op == "const" and i not in graph.labels and i != out):
            continue
        kind = {"var": "input", "const": "constant"}.get(node.op, "operation")
        dual = duals[i]
        tangent = 0.0 if dual.tangent is None else float(np.asarray(dual.tangent).reshape(-1)[0])
        terms = tuple(Term(names.name[node.args[j]], j, partial_text(node.op, j, names.args[i]),
                           partial, t, term) for j, partial, t, term in rec.terms.get(i, []))
        steps.append(DualStep(i, names.name[i], kind, names.expression[i],
                              tuple(a.text for a in names.args[i]), float(dual.value), tangent, terms))
    return ForwardTrace(out, names.output_name, p, d, dname, tuple(steps))


def term_line(step: DualStep, term: Term, direction: str, digits: int = 6) -> str:
    """`du1/dx += ∂u1/∂t · dt/dx = 0.217 · 3 = 0.651`"""
    s, to, v = dname(step.name), dname(term.to), dname(direction)
    return (f"d{s}/d{v} += ∂{s}/∂{to} · d{to}/d{v} = {num(term.partial, digits)} · "
            f"{num(term.tangent_in, digits)} = {num(term.term, digits)}")


# --------------------------------------------------------------------------------------------
# Renderers: plain text, rich, markdown, JSON
# --------------------------------------------------------------------------------------------


_INDENT = {"start": 2, "step": 2, "partial": 4, "contribution": 4, "running": 6}


def backward_lines(t: Trace, digits: int = 6) -> list[tuple[str, str]]:
    """The backward pass as (kind, text) lines, kind one of start, step, partial, contribution
    and running: where a value feeds several steps, a running line after each contribution
    says what its gradient has summed to so far (gradients add where a value branches)."""
    o = dname(t.output_name)
    total = Counter(e.argument for s in t.backward for e in s.edges)
    seen: Counter[int] = Counter()
    out = [("start", f"d{o}/d{o} = 1")]
    for s in t.backward:
        upstream = f"d{o}/d{dname(s.name)} = {num(s.upstream, digits)}"
        out.append(("step", f"step {_step_text(s)}: upstream {upstream}"))
        for e in s.edges:
            out.append(("partial", e.partial_line(digits)))
            out.append(("contribution", e.contribution_line(t.output_name, digits)))
            n = total[e.argument]
            if n > 1:
                seen[e.argument] += 1
                k = seen[e.argument]
                why = (f"{k} of {n} contributions so far" if k < n
                       else f"all {n} contributions added: gradients add where a value branches")
                out.append(("running", f"→ d{o}/d{dname(e.to)} = {num(e.adjoint, digits)} ({why})"))
    return out


def _step_text(s: BackStep) -> str:
    """`u1 = sin(t)`; an unnamed step is its own formula, written once."""
    return s.name if s.name == s.expression else f"{s.name} = {s.expression}"


def _step_name(s: Step) -> str:
    return s.name + (f" (also {', '.join(s.aliases)})" if s.aliases else "")


def _point_text(point: Mapping[str, float], digits: int) -> str:
    return ", ".join(f"{k}={num(v, digits)}" for k, v in point.items()) or "(no variables)"


def _columns(rows: list[list[str]], head: list[str]) -> list[str]:
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [head, *rows]]


def _forward_rows(t: Trace | ForwardTrace, digits: int) -> tuple[list[str], list[list[str]]]:
    if isinstance(t, Trace):
        head = ["step", "operation", "inputs", "value"]
        return head, [[_step_name(s), s.expression if s.kind == "operation" else s.kind,
                       ", ".join(s.inputs), num(s.value, digits)] for s in t.forward]
    head = ["step", "operation", "inputs", "value", f"tangent d·/d{dname(t.direction_name)}"]
    return head, [[s.name, s.expression if s.kind == "operation" else s.kind, ", ".join(s.inputs),
                   num(s.value, digits), num(s.tangent, digits)] for s in t.steps]


def to_text(t: Trace | ForwardTrace, digits: int = 6) -> str:
    """The trace as plain text (for a pipe, a file or a terminal without colour)."""
    head, rows = _forward_rows(t, digits)
    lines = [f"forward pass at {_point_text(t.point, digits)} (topological order)"]
    lines += _columns(rows, head)
    if isinstance(t, ForwardTrace):
        lines += ["", f"tangents along {_direction_text(t, digits)} (the chain rule, forward)"]
        for s in t.steps:
            for term in s.terms:
                lines.append(f"  {term_line(s, term, t.direction_name, digits)}")
        lines += ["", f"d{dname(t.output_name)}/d{dname(t.direction_name)} = {num(t.derivative, digits)}"]
        return "\n".join(lines) + "\n"
    o = dname(t.output_name)
    lines += ["", "backward pass (reverse order)"]
    lines += [" " * _INDENT[kind] + text for kind, text in backward_lines(t, digits)]
    lines += ["", "gradient"]
    lines += [f"  d{o}/d{dname(v)} = {num(g, digits)}" for v, g in t.gradient.items()]
    return "\n".join(lines) + "\n"


def _direction_text(t: ForwardTrace, digits: int) -> str:
    if t.direction_name in t.direction and len(t.direction) == 1 and t.direction[t.direction_name] == 1:
        return f"d{t.direction_name} = 1 (the unit direction of {t.direction_name})"
    parts = ", ".join(f"{k}: {num(c, digits)}" for k, c in t.direction.items())
    return f"{t.direction_name} = ({parts})"


def to_rich(t: Trace | ForwardTrace, digits: int = 6, ascii_only: bool = False) -> RenderableType:
    """The trace as rich renderables: a table of the forward pass, then the backward pass as
    lines (a line never wraps, so no number is ever split; a narrow terminal crops it). Values
    in one colour, gradients in another; user text enters as `Text`, never as markup."""
    def txt(s: str, style: str = "") -> Text:
        return Text(to_ascii(s) if ascii_only else s, style=style, no_wrap=True, overflow="ignore")

    def cell(s: str, style: str = "") -> Text:
        return Text(to_ascii(s) if ascii_only else s, style=style)

    boxes = box.ASCII2 if ascii_only else box.SIMPLE_HEAD
    head, rows = _forward_rows(t, digits)
    table = Table(box=boxes, title=cell(f"forward pass at {_point_text(t.point, digits)}"),
                  title_justify="left")
    for h in head:
        table.add_column(cell(h), justify="right" if h.startswith(("value", "tangent")) else "left",
                         no_wrap=h.startswith(("value", "tangent")))
    for r in rows:
        cells = [cell(r[0], "bold"), cell(r[1]), cell(r[2]), cell(r[3], VALUE_STYLE)]
        if len(r) > 4:
            cells.append(cell(r[4], GRADIENT_STYLE))
        table.add_row(*cells)
    parts: list[RenderableType] = [table]
    if isinstance(t, ForwardTrace):
        parts.append(txt(f"tangents along {_direction_text(t, digits)}", "bold"))
        for s in t.steps:
            for term in s.terms:
                parts.append(txt("  " + term_line(s, term, t.direction_name, digits)))
        last = f"d{dname(t.output_name)}/d{dname(t.direction_name)} = {num(t.derivative, digits)}"
        parts.append(txt(last, "bold " + GRADIENT_STYLE))
        return Group(*parts)
    o = dname(t.output_name)
    parts.append(txt("backward pass (reverse order)", "bold"))
    styles = {"start": GRADIENT_STYLE, "step": "bold", "running": GRADIENT_STYLE}
    for kind, text in backward_lines(t, digits):
        parts.append(txt(" " * _INDENT[kind] + text, styles.get(kind, "")))
    for v, g in t.gradient.items():
        parts.append(txt(f"d{o}/d{dname(v)} = {num(g, digits)}", "bold " + GRADIENT_STYLE))
    return Group(*parts)


def _code(s: str) -> str:
    return "`" + s.replace("`", "'") + "`"


def to_markdown(t: Trace | ForwardTrace, digits: int = 6) -> str:
    """The trace as markdown (a notebook or a handout): tables, formulas in code spans."""
    head, rows = _forward_rows(t, digits)
    lines = [f"### Forward pass at {_code(_point_text(t.point, digits))}", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|")
    for r in rows:
        lines.append("| " + " | ".join(_code(c) if c else "" for c in r) + " |")
    lines.append("")
    if isinstance(t, ForwardTrace):
        lines += [f"### Tangents along {_code(_direction_text(t, digits))}", ""]
        for s in t.steps:
            for term in s.terms:
                lines.append(f"- {_code(term_line(s, term, t.direction_name, digits))}")
        last = f"d{dname(t.output_name)}/d{dname(t.direction_name)} = {num(t.derivative, digits)}"
        lines += ["", f"**{_code(last)}**"]
        return "\n".join(lines) + "\n"
    o = dname(t.output_name)
    lines += ["### Backward pass (reverse order)", ""]
    bullet = {"start": "- ", "step": "- ", "partial": "  - ", "contribution": "  - ", "running": "    - "}
    lines += [bullet[kind] + _code(text) for kind, text in backward_lines(t, digits)]
    lines += ["", "### Gradient", ""]
    lines += [f"- {_code(f'd{o}/d{dname(v)} = {num(g, digits)}')}" for v, g in t.gradient.items()]
    return "\n".join(lines) + "\n"


def to_dict(t: Trace | ForwardTrace) -> dict[str, Any]:
    """JSON-able data (strict RFC 8259: a non-finite number is "nan", "inf" or "-inf")."""
    common = {"output": t.output_name, "point": {k: json_number(v) for k, v in t.point.items()},
              "value": json_number(t.value)}
    if isinstance(t, ForwardTrace):
        return {"kind": "forward-trace", **common,
                "direction": {k: json_number(v) for k, v in t.direction.items()},
                "steps": [{"step": s.name, "index": s.index, "kind": s.kind, "expression": s.expression,
                           "inputs": list(s.inputs), "value": json_number(s.value),
                           "tangent": json_number(s.tangent),
                           "terms": [{"input": m.to, "position": m.position, "partial_formula": m.formula,
                                      "partial": json_number(m.partial),
                                      "input_tangent": json_number(m.tangent_in),
                                      "term": json_number(m.term),
                                      "text": term_line(s, m, t.direction_name)} for m in s.terms]}
                          for s in t.steps],
                "derivative": json_number(t.derivative)}
    return {
        "kind": "trace", **common, "wrt": list(t.wrt),
        "forward": [{"step": s.name, "index": s.index, "kind": s.kind, "op": s.op,
                     "expression": s.expression, "inputs": list(s.inputs), "value": json_number(s.value),
                     "aliases": list(s.aliases)}
                    for s in t.forward],
        "backward": [{"step": s.name, "index": s.index, "expression": s.expression,
                      "upstream": json_number(s.upstream),
                      "edges": [{"input": e.to, "index": e.argument, "position": e.position,
                                 "partial_formula": e.formula, "partial": json_number(e.partial),
                                 "partial_text": e.partial_line(),
                                 "contribution": json_number(e.contribution),
                                 "contribution_text": e.contribution_line(t.output_name),
                                 "adjoint": json_number(e.adjoint)} for e in s.edges]}
                     for s in t.backward],
        "gradient": {k: json_number(v) for k, v in t.gradient.items()},
    }
