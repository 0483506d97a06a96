"""Human-readable text for graph nodes and for what went wrong at one of them.

`node_texts` prints every node as a formula fragment bottom-up (a loop, no recursion), cutting
long fragments so a DAG with heavy sharing cannot blow up into exponential text.
"""

from __future__ import annotations

from .graph import Graph, Node, Trouble

_INFIX = {"add": (" + ", 1), "sub": (" - ", 1), "mul": ("*", 2), "div": ("/", 2), "pow": ("**", 4)}
ATOM = 5  # the precedence of a text that never needs parentheses


class Texts:
    """The interpretation that carries formula text and its precedence (trace.py names steps
    on top of it)."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len

    def var(self, i: int, node: Node) -> tuple[str, int]:
        return node.name or "?", ATOM

    def const(self, i: int, node: Node) -> tuple[str, int]:
        t = node.name if node.name else const_text(node.exact)
        return t, 3 if t.startswith("-") else ATOM

    def op(self, i: int, node: Node, args: tuple[tuple[str, int], ...]) -> tuple[str, int]:
        a = [t for t, _ in args]
        p = [q for _, q in args]
        if node.op in _INFIX:
            sym, q = _INFIX[node.op]
            left = a[0] if p[0] > q or (p[0] == q and node.op != "pow") else f"({a[0]})"
            right_ok = p[1] > q or (p[1] == q and node.op in ("add", "mul", "pow"))
            right = a[1] if right_ok else f"({a[1]})"
            t = f"{left}{sym}{right}"
        elif node.op == "neg":
            t, q = ("-" + a[0] if p[0] >= 3 else f"-({a[0]})"), 3
        else:
            t, q = f"{node.op}({', '.join(a)})", ATOM
        if len(t) > self.max_len:
            t, q = t[: self.max_len - 3] + "...", ATOM
        return t, q


def node_texts(graph: Graph, max_len: int = 60, upto: int | None = None) -> list[str]:
    """A formula fragment for each node (up to index `upto`), at most `max_len` characters."""
    from .interpret import walk

    return [t for t, _ in walk(graph, Texts(max_len), upto=upto)]


def const_text(value: object) -> str:
    """A constant's exact value as the decimal text it was written as."""
    from fractions import Fraction

    assert isinstance(value, Fraction)
    if value.denominator == 1:
        return str(value.numerator)
    # Every literal is a decimal, so its exact decimal expansion re-parses to the same number.
    d, k = value.denominator, 0
    while 10**k % d and k < 2000:
        k += 1
    if 10**k % d:  # not a decimal (only from an API caller): a parenthesised quotient
        return f"({value.numerator}/{value.denominator})"
    digits = str(abs(value.numerator) * (10**k // d)).rjust(k + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-k]}.{digits[-k:]}"


def describe_trouble(graph: Graph, trouble: Trouble) -> str:
    """E.g. "log(u) with u = -0.5 gives nan, in log(x - 2)"."""
    node = graph.nodes[trouble.node]
    names = ["u", "v", "w"] if len(trouble.inputs) <= 3 else [f"u{i}" for i in range(len(trouble.inputs))]
    ins = ", ".join(f"{n} = {x:.6g}" for n, x in zip(names, trouble.inputs))
    if node.op in _INFIX:
        form = f"u{_INFIX[node.op][0].strip()}v"
    elif node.op == "neg":
        form = "-u"
    else:
        form = f"{node.op}({', '.join(names[: len(trouble.inputs)])})"
    texts = node_texts(graph, upto=trouble.node)
    what = _what_happened(node.op, trouble)
    if node.op == "div" and trouble.inputs[1] == 0:
        divisor = graph.nodes[node.args[1]]
        if divisor.op not in ("var", "const"):
            what += f"; the divisor {texts[node.args[1]]} underflowed to 0"
    message = f"{form} with {ins} {what}, in {texts[trouble.node]}"
    hint = stable_hint(graph, trouble.node)
    return message + (f". {hint}" if hint else "")


def _what_happened(op: str, trouble: Trouble) -> str:
    v, ins = trouble.value, trouble.inputs
    if v != v:
        if op == "pow" and ins[0] < 0:
            return "is undefined (nan): a negative base to a fractional power"
        if op == "div" and ins[0] == 0 and ins[1] == 0:
            return "is undefined (nan): 0/0"
        return "is undefined (nan)"
    if op == "div" and ins[1] == 0:
        return f"divides by zero ({v:g})"
    if op == "log" and ins[0] == 0:
        return "is -inf (log of zero)"
    if op == "pow" and ins[0] == 0:
        return f"is {v:g} (zero to a negative power)"
    if op in _POLES and ins and ins[0] in _POLES[op]:
        return f"is {v:g}: a pole of {op} (undefined at {_POLES[op][ins[0]]})"
    return f"overflows to {v:g}"


# Functions with poles at points a float can hold exactly (tan and sec have theirs at odd
# multiples of π/2, which no float is: there they are large, not infinite). log2/log10 of 0 too.
_POLES = {
    "cot": {0.0: "u = kπ"}, "csc": {0.0: "u = kπ"}, "atanh": {1.0: "u = ±1", -1.0: "u = ±1"},
    "log2": {0.0: "u = 0"}, "log10": {0.0: "u = 0"},
}


def _is_one(graph: Graph, i: int) -> bool:
    n = graph.nodes[i]
    return n.op == "const" and n.exact == 1


def stable_hint(graph: Graph, bad: int) -> str | None:
    """When an exp overflows inside a hand-written softplus or sigmoid, name the library
    primitive that computes the same thing stably."""
    if graph.nodes[bad].op != "exp":
        return None
    users: dict[int, list[int]] = {}
    for i, n in enumerate(graph.nodes):
        for a in n.args:
            users.setdefault(a, []).append(i)
    texts = node_texts(graph)
    u = texts[graph.nodes[bad].args[0]]
    for plus in users.get(bad, []):
        p = graph.nodes[plus]
        if p.op != "add" or not any(_is_one(graph, a) for a in p.args):
            continue
        for outer in users.get(plus, []):
            o = graph.nodes[outer]
            if o.op == "log":
                return (f"log(1 + exp(u)) overflows for large u: write softplus({u}), which "
                        "gradcheck computes stably")
            if o.op == "div" and o.args[1] == plus and _is_one(graph, o.args[0]):
                arg = u[1:] if u.startswith("-") else f"-({u})"
                return (f"1/(1 + exp(u)) overflows for large u: write sigmoid({arg}), which "
                        "gradcheck computes stably")
    return None
