"""The computation DAG: a flat tuple of nodes in topological order.

Convention: node i's arguments are nodes with indices smaller than i, so evaluation is one loop
forward over the tuple and backpropagation is the same loop reversed; nothing here recurses
over the formula's depth. Structurally equal subexpressions are one node: the builder interns
every node by (op, args, constant), so `sin(x)*sin(x)` has one `sin` node used twice.

A node is a variable (`var`, with its name), a constant (`const`, with an exact rational value,
or the named constants `pi` and `E`), or an operation whose name is a key of `rules.RULES`.
The graph is built once and read by one interpreter (`interpret.py`) for every method.

A program's named steps (`t = x^2; J = cos(t)`) are recorded beside the nodes, never as nodes:
hash-consing may give two steps one node (`a = x*y; b = x*y`, or the alias `b = a`), and both
names stay visible — `labels` gives a node its first step's name, `names_of` every name, and
`steps` every statement in program order with its line, column and text.

Speed: building is linear in the number of nodes and cheap per node (10^5 nodes in well under
a second): a node is a named tuple, hashed and compared in C, and the interning table is keyed
by plain tuples equal to it, so a node that already exists is found without constructing one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from .rules import RULES

NAMED_CONSTANTS = {"pi": math.pi, "E": math.e}


class Node(NamedTuple):
    """One node. A named tuple rather than a dataclass for speed alone: constructing, hashing
    and comparing one is done in C (a frozen dataclass costs ~3x more per node, which a
    10^5-node formula pays several times over)."""

    op: str
    args: tuple[int, ...] = ()
    name: str | None = None  # variable name, or "pi"/"E" for a named constant
    exact: Fraction | None = None  # a numeric literal, exactly as typed

    def constant_value(self) -> float:
        if self.name is not None:
            return NAMED_CONSTANTS[self.name]
        assert self.exact is not None
        return float(self.exact)


Shape = tuple[int, ...]
_as_node = tuple.__new__  # Node from a 4-tuple without NamedTuple's Python-level __new__


class Step(NamedTuple):
    """One statement of a program, `name = formula` (or `name += formula`, ...).

    `label` names this version of `name`: the first assignment is `c`, the next `c#2`, and so
    on. `node` is the node holding its value (several steps may share one: hash-consing merges
    equal right-hand sides and aliases), or None when no output depends on it. `line` and
    `column` (1-based) locate the name being assigned; `text` is the statement as written.
    `default` is set for an input step, one that assigns a plain number (`a = -4.0`): the node
    is then the variable `name`, and the number is its value unless the point gives another."""

    label: str
    name: str
    node: int | None
    line: int
    column: int
    text: str
    default: float | None = None


@dataclass(frozen=True)
class ProgramWarning:
    """Something legal but probably unintended in a program: `kind` is a stable identifier
    ("shadows-constant", "unused-step"), `message` is for people. `str()` gives one line."""

    kind: str
    message: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class Graph:
    """An immutable DAG, the IR every method reads.

    - `nodes`: topological order, hash-consed.
    - `outputs`: the nodes whose values are the function's outputs (one for a formula; a program
      may name several, and a Jacobian is one gradient per output). `output` is the first.
    - `labels`: node index -> step name, for programs with named steps (empty for a formula):
      the first step whose value the node is. An input keeps its own name (the alias step
      `b = x` does not rename x), and a node several steps share shows the first; `names_of(i)`
      gives all of them.
    - `steps`: every statement of a program in order (`Step`: label `c#2`, line, column, text,
      the node or None); `output_names`: the step name of each output (empty for a formula).
    - `defaults`: the value of each input a program assigns a plain number (`a = -4.0`), used
      where the point gives none.
    - `unused_inputs`: a program's inputs that no output depends on (`--output c` of
      `c = 3; y = x*c` leaves x out): a value given for one is not an error, only unused.
    - `warnings`: what the parser found legal but suspicious (`ProgramWarning`: a constant
      shadowed from a line on, a step nothing reads); the CLI prints them, JSON lists them.
    - `shapes`: the value shape of every node, computed when the graph is built (like JAX's
      abstract evaluation), so a shape error names its operation before anything is evaluated.
      Every node is a scalar, `()`, for now; vectors and matrices will only add shapes.

    The batch of points is *not* a shape: at run time a node's value is an array broadcastable
    to `(K, *shape)`, K the number of points, the batch axis leading (a constant stays
    unbatched and broadcasts). A later reduction over a node's shape never touches axis 0.
    """

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    variables: tuple[str, ...]  # free variables, sorted naturally (x2 before x10)
    var_nodes: Mapping[str, int] = field(repr=False)
    labels: Mapping[int, str] = field(default_factory=dict, repr=False)
    shapes: tuple[Shape, ...] = field(default=(), repr=False)
    steps: tuple[Step, ...] = field(default=(), repr=False)
    output_names: tuple[str, ...] = ()
    defaults: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[ProgramWarning, ...] = field(default=(), repr=False)
    unused_inputs: tuple[str, ...] = field(default=(), repr=False)

    @property
    def output(self) -> int:
        return self.outputs[0]

    @cached_property
    def _names(self) -> dict[int, tuple[str, ...]]:
        names: dict[int, list[str]] = {}
        for step in self.steps:
            if step.node is not None:
                names.setdefault(step.node, []).append(step.label)
        return {i: tuple(n) for i, n in names.items()}

    def names_of(self, index: int) -> tuple[str, ...]:
        """Every step label whose value is node `index`, in program order (empty if none)."""
        return self._names.get(index, ())

    def node_of(self, name: str) -> int | None:
        """The node of a step: a version label (`c`, `c#2`) names that version, except that a
        bare name that was reassigned means its last version, as an output does (`--output c`).
        None when no such step exists or no output needs it."""
        found = None
        for step in self.steps:
            if step.name == name or step.label == name:
                found = step
                if step.label == name and "#" in name:
                    break
        return None if found is None else found.node

    def __len__(self) -> int:
        return len(self.nodes)

    def depends_on(self, names: Sequence[str]) -> list[bool]:
        """For every node, whether its value depends on any of the variables `names`."""
        wanted = {self.var_nodes[n] for n in names if n in self.var_nodes}
        dep = [False] * len(self.nodes)
        for i, node in enumerate(self.nodes):
            dep[i] = i in wanted or any(dep[a] for a in node.args)
        return dep

    @cached_property
    def last_use(self) -> tuple[int, ...]:
        """For every node, the index of the last node that reads it (itself if none does):
        a walk that only needs the outputs can free a value after that step."""
        last = list(range(len(self.nodes)))
        for i, node in enumerate(self.nodes):
            for a in node.args:
                last[a] = i
        return tuple(last)

    def depth(self) -> int:
        """Longest path from a leaf to the output (a leaf has depth 0)."""
        d = [0] * len(self.nodes)
        for i, node in enumerate(self.nodes):
            if node.args:
                d[i] = 1 + max(d[a] for a in node.args)
        return d[self.output]


def some_names(names: Sequence[str], most: int = 10, width: int = 40) -> str:
    """Names for a message: at most `most`, each cut to `width` characters, and how many more
    (a formula may have 30,000 variables; an error line must stay one line)."""
    shown = [n if len(n) <= width else n[: width - 1] + "…" for n in list(names)[:most]]
    more = len(names) - len(shown)
    return (", ".join(shown) or "none") + (f" and {more:,} more" if more > 0 else "")


def natural_key(name: str) -> list[object]:
    """Sort key that puts x2 before x10. Digit runs compare by length, then text (after leading
    zeros), never through int(): a name may carry thousands of digits."""
    parts: list[object] = []
    for i, p in enumerate(re.split(r"([0-9]+)", name)):
        if i % 2:  # a run of digits
            s = p.lstrip("0")
            parts.append((len(s), s, len(p)))
        else:
            parts.append(p)
    return parts


class GraphBuilder:
    """Interns nodes as they are created, children before parents, so the order is topological."""

    def __init__(self) -> None:
        self._nodes: list[Node] = []
        self._vars: dict[str, int] = {}
        # Keyed by the node itself; a plain tuple equal to a Node hashes and compares equal to
        # it, so a lookup needs no Node (see the module docstring).
        self._index: dict[tuple[object, ...], int] = {}

    def _intern(self, key: tuple[Any, ...]) -> int:
        found = self._index.get(key)
        if found is None:
            found = len(self._nodes)
            node = _as_node(Node, key)
            self._nodes.append(node)
            self._index[node] = found
        return found

    def var(self, name: str) -> int:
        index = self._vars.get(name)
        if index is None:
            index = self._vars[name] = self._intern(("var", (), name, None))
        return index

    def const(self, value: Fraction) -> int:
        return self._intern(("const", (), None, Fraction(value)))

    def named_const(self, name: str) -> int:
        return self._intern(("const", (), name, None))

    def op(self, op: str, args: Sequence[int]) -> int:
        """The node op(*args), made once (the parser's hot path: kept to one call)."""
        key = (op, args if type(args) is tuple else tuple(args), None, None)
        found = self._index.get(key)
        if found is None:
            if op not in RULES:
                raise KeyError(f"no differentiation rule for {op!r}")
            # A typed negative literal is a number, not an operation: -2 in x**-2 stays a constant.
            if op == "neg":
                arg = self._nodes[key[1][0]]
                if arg.op == "const" and arg.exact is not None:
                    return self.const(-arg.exact)
            found = len(self._nodes)
            node = _as_node(Node, key)
            self._nodes.append(node)
            self._index[node] = found
        return found

    def node(self, index: int) -> Node:
        return self._nodes[index]

    def __len__(self) -> int:
        return len(self._nodes)

    def build(
        self,
        output: int | Sequence[int],
        labels: Mapping[int, str] | None = None,
        *,
        steps: Sequence[Step] = (),
        output_names: Sequence[str] = (),
        defaults: Mapping[str, float] | None = None,
        warnings: Sequence[ProgramWarning] = (),
    ) -> Graph:
        """The graph of `output` (one node index, or several): only what the outputs need, in
        topological order. `labels` names steps (node index -> name) and `steps` records a
        program's statements, both with this builder's indices; a step no output needs keeps
        its record with node None."""
        outputs = (output,) if isinstance(output, int) else tuple(output)
        if not outputs:
            raise ValueError("a graph needs at least one output")
        built = self._nodes
        last = max(outputs)
        needed = bytearray(last + 1)
        for o in outputs:
            needed[o] = 1
        for i in range(last, -1, -1):
            if needed[i]:
                for a in built[i].args:
                    needed[a] = 1
        remap: list[int] = [-1] * (last + 1)
        if needed.count(1) == len(built):  # nothing to drop: indices stay, nodes are reused
            nodes = list(built)
            remap = list(range(len(built)))
        else:
            nodes = []
            for i, node in enumerate(built[: last + 1]):
                if needed[i]:
                    remap[i] = len(nodes)
                    args = node.args
                    if args:
                        new_args = tuple([remap[a] for a in args])
                        if new_args != args:
                            node = node._replace(args=new_args)
                    nodes.append(node)
        var_nodes = {name: remap[i] for name, i in sorted(self._vars.items(), key=itemgetter(1))
                     if i <= last and remap[i] >= 0}
        variables = tuple(sorted(var_nodes, key=natural_key))

        def moved(i: int | None) -> int | None:
            return remap[i] if i is not None and i <= last and remap[i] >= 0 else None

        if len(nodes) == len(built):  # every index stays
            kept, moved_steps = dict(labels or {}), tuple(steps)
        else:
            kept = {remap[i]: name for i, name in (labels or {}).items() if moved(i) is not None}
            moved_steps = tuple(s._replace(node=moved(s.node)) for s in steps)
        return Graph(
            tuple(nodes), tuple(remap[o] for o in outputs), variables, var_nodes,
            kept, _shapes(nodes), steps=moved_steps,
            output_names=tuple(output_names),
            defaults={v: x for v, x in (defaults or {}).items() if v in var_nodes},
            warnings=tuple(warnings),
            unused_inputs=tuple(sorted((v for v in self._vars if v not in var_nodes), key=natural_key)),
        )


def _shapes(nodes: Sequence[Node]) -> tuple[Shape, ...]:
    """Every node's shape. Every leaf is a scalar today (a variable or a constant carries no
    shape) and `_shape_of` broadcasts scalars to a scalar, so every node is `()` and the walk
    over `_shape_of` is not taken: for 10^5 nodes it would cost more than building the rest.
    When leaves get shapes, this becomes that walk, children before parents."""
    return ((),) * len(nodes)


def _shape_of(node: Node, arg_shapes: Sequence[Shape]) -> Shape:
    """A node's value shape from its arguments' (scalars only today: variables and constants
    are scalars, and every rule is elementwise, so shapes broadcast)."""
    if not node.args:
        return ()
    try:
        return tuple(np.broadcast_shapes(*arg_shapes))
    except ValueError:
        raise ValueError(f"{node.op}: argument shapes {list(arg_shapes)} do not broadcast") from None


@dataclass(frozen=True)
class Trouble:
    """The first step whose value is not finite although its inputs are."""

    node: int
    op: str
    inputs: tuple[float, ...]
    value: float


def evaluate(
    graph: Graph, point: Mapping[str, np.ndarray], dtype: type = np.float64
) -> list[np.ndarray]:
    """Every node's value at `point` (numpy arrays, broadcast together). Never raises on
    overflow or domain errors: those give inf/nan, which `first_trouble` locates."""
    from .interpret import Values, walk

    return walk(graph, Values(point, dtype))


def at_point(values: Sequence[np.ndarray], k: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Every node's value at point k of a batch of `shape` (unbatched constants as they are):
    what `first_trouble` needs to explain one point rather than the first of the batch."""
    return [np.ravel(np.broadcast_to(v, shape))[k:k + 1] if np.ndim(v) else v for v in values]


def first_trouble(graph: Graph, values: Sequence[np.ndarray]) -> Trouble | None:
    """Where a value first stops being finite, if anywhere (for one point: the first of K)."""
    for i, node in enumerate(graph.nodes):
        v = values[i]
        if node.args and not np.all(np.isfinite(v)):
            bad = np.flatnonzero(~np.isfinite(np.broadcast_to(v, np.shape(v) or (1,))))[0]
            ins = tuple(
                float(np.broadcast_to(values[a], np.shape(v) or (1,)).ravel()[bad]) for a in node.args
            )
            if all(math.isfinite(x) for x in ins):
                return Trouble(i, node.op, ins, float(np.ravel(v)[bad]))
    return None


def output_trouble(graph: Graph, values: Sequence[np.ndarray]) -> Trouble | None:
    """Where f's value goes wrong, if f itself is not finite (an intermediate overflow that
    f recovers from, like exp(800) inside 1/(1+exp(800)), is not trouble for f's value)."""
    if np.all(np.isfinite(values[graph.output])):
        return None
    return first_trouble(graph, values)
