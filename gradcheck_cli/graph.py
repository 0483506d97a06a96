"""The computation DAG: a flat tuple of nodes in topological order.

Convention: node i's arguments are nodes with indices smaller than i, so evaluation is one loop
forward over the tuple and backpropagation is the same loop reversed; nothing here recurses
over the formula's depth. Structurally equal subexpressions are one node: the builder interns
every node by (op, args, constant), so `sin(x)*sin(x)` has one `sin` node used twice.

A node is a variable (`var`, with its name), a constant (`const`, with an exact rational value,
or the named constants `pi` and `E`), or an operation whose name is a key of `rules.RULES`.
The graph is built once and read by one interpreter (`interpret.py`) for every method.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np

from .rules import RULES

NAMED_CONSTANTS = {"pi": math.pi, "E": math.e}


@dataclass(frozen=True, slots=True)
class Node:
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


@dataclass(frozen=True)
class Graph:
    """An immutable DAG, the IR every method reads.

    - `nodes`: topological order, hash-consed.
    - `outputs`: the nodes whose values are the function's outputs (one for a formula; a program
      may name several, and a Jacobian is one gradient per output). `output` is the first.
    - `labels`: node index -> step name, for programs with named steps (empty for a formula).
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

    @property
    def output(self) -> int:
        return self.outputs[0]

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
        self._index: dict[Node, int] = {}

    def _intern(self, node: Node) -> int:
        found = self._index.get(node)
        if found is not None:
            return found
        self._nodes.append(node)
        self._index[node] = len(self._nodes) - 1
        return len(self._nodes) - 1

    def var(self, name: str) -> int:
        return self._intern(Node("var", name=name))

    def const(self, value: Fraction) -> int:
        return self._intern(Node("const", exact=Fraction(value)))

    def named_const(self, name: str) -> int:
        return self._intern(Node("const", name=name))

    def op(self, op: str, args: Sequence[int]) -> int:
        if op not in RULES:
            raise KeyError(f"no differentiation rule for {op!r}")
        args = tuple(args)
        # A typed negative literal is a number, not an operation: -2 in x**-2 stays a constant.
        if op == "neg" and self._nodes[args[0]].op == "const" and self._nodes[args[0]].exact is not None:
            return self.const(-self._nodes[args[0]].exact)
        return self._intern(Node(op, args))

    def node(self, index: int) -> Node:
        return self._nodes[index]

    def build(self, output: int | Sequence[int], labels: Mapping[int, str] | None = None) -> Graph:
        """The graph of `output` (one node index, or several): only what the outputs need, in
        topological order. `labels` names steps (node index -> name) for programs."""
        outputs = (output,) if isinstance(output, int) else tuple(output)
        if not outputs:
            raise ValueError("a graph needs at least one output")
        needed = [False] * len(self._nodes)
        for o in outputs:
            needed[o] = True
        last = max(outputs)
        for i in range(last, -1, -1):
            if needed[i]:
                for a in self._nodes[i].args:
                    needed[a] = True
        remap: dict[int, int] = {}
        nodes: list[Node] = []
        shapes: list[Shape] = []
        for i, node in enumerate(self._nodes[: last + 1]):
            if needed[i]:
                remap[i] = len(nodes)
                nodes.append(Node(node.op, tuple(remap[a] for a in node.args), node.name, node.exact))
                shapes.append(_shape_of(node, [shapes[remap[a]] for a in node.args]))
        var_nodes = {n.name: i for i, n in enumerate(nodes) if n.op == "var"}
        variables = tuple(sorted(var_nodes, key=natural_key))  # type: ignore[arg-type]
        kept = {remap[i]: name for i, name in (labels or {}).items() if i in remap}
        return Graph(tuple(nodes), tuple(remap[o] for o in outputs), variables,
                     var_nodes, kept, tuple(shapes))  # type: ignore[arg-type]


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
