"""Symbolic differentiation: SymPy's own `diff`, an oracle independent of `rules.py`.

The graph is rebuilt as a SymPy expression by the one interpreter (each operation's meaning
comes from `functions.py`, written with SymPy's own functions, in SymPy's canonical evaluated
form: see `functions.OPERATORS` for why), SymPy differentiates it with its own chain rule, and
the derivatives are lambdified once, with common subexpressions shared (`cse=True`), and
evaluated on the whole batch of points as numpy arrays. Variables are SymPy `Dummy` symbols: a
user's variable names are never turned into code.

The exact reference is the same derivatives evaluated by mpmath at rising precision, point by
point (`exact_values`).

SymPy recurses over expression depth and can hang or exhaust memory on hostile input, so all
of it runs in the shared worker process (`worker.py`) with a large stack, a time budget and a
memory budget; whatever stops it is reported as a note ("could not run"), never as a crash.

The worker never needs numpy for a check of up to `PROGRAM_MAX_POINTS` points (unless the
derivatives are huge), so it does not import it (numpy's import would be a fifth of a short
check's time, on its critical path):
- the request carries the graph and the points as plain tuples, lists and floats (`Plain*`),
  and the worker rebuilds the SymPy expression from them node by node, as `interpret.walk`
  does from a `Graph` (whose module imports numpy);
- instead of running the lambdified float64 function itself, the worker prints the very source
  lambdify would generate (same printer, same settings, same `cse`) and sends it back as a
  *program*: that source's syntax tree, checked to use only arithmetic, literals, its own
  temporaries and a fixed set of numpy functions (`_PROGRAM_NAMES`), as nested tuples. The
  parent runs it with numpy (`_run_program`): the same operations on the same values in the same
  order as the lambdified function, so the same float64 bits, and nothing is compiled or
  executed. A derivative whose source uses anything else falls back to lambdify in the worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, NamedTuple

from . import worker as workers
from .functions import meaning_of

if TYPE_CHECKING:
    from .graph import Graph, Node

SYMBOLIC_TIMEOUT = 10.0  # seconds, --symbolic-timeout
SYMBOLIC_MEMORY = workers.DEFAULT_MEMORY  # bytes, --symbolic-memory (in MiB on the command line)
EXACT_DIGITS = 30
EXACT_MAX_DPS = 3_000  # the most working digits the exact evaluation climbs to
ZERO_CHECK_DPS = 400  # an exact 0 is believed from this many working digits on
PROGRAM_MAX_POINTS = 10_000  # up to this many points the parent evaluates SymPy's float64 program
PROGRAM_MAX_NODES = 20_000  # a larger program is lambdified in the worker (the parent's time is
PROGRAM_MAX_WORK = 5_000_000  # not SymPy's budget: at most ~20k numpy calls, nodes x points 5e6)
PROGRAM_MAX_DEPTH = 150  # and so is one nested deeper (the parent runs it recursively)


class _Sympy:
    """The interpretation that carries SymPy expressions (each operation's meaning from
    `functions.py`)."""

    def __init__(self, sp: Any, symbols: dict[str, Any]) -> None:
        self.sp, self.symbols = sp, symbols

    def var(self, i: int, node: Node) -> Any:
        expr = self.symbols.get(node.name)  # type: ignore[arg-type]
        if expr is None:
            expr = self.symbols[node.name] = self.sp.Symbol(node.name, real=True)  # type: ignore[index]
        return expr

    def const(self, i: int, node: Node) -> Any:
        sp = self.sp
        if node.name == "pi":
            return sp.pi
        if node.name == "E":
            return sp.E
        assert node.exact is not None
        return sp.Rational(node.exact.numerator, node.exact.denominator)

    def op(self, i: int, node: Node, args: tuple[Any, ...]) -> Any:
        expr = meaning_of(node.op)(self.sp, *args)
        hash(expr)  # SymPy hashes recursively but caches: prime it bottom-up, never deep
        return expr


def to_sympy(graph: Graph | PlainGraph, symbols: Mapping[str, Any] | None = None,
             output: int | None = None) -> Any:
    """The graph as a SymPy expression (variables real; `symbols` overrides)."""
    import sympy as sp

    out = graph.output if output is None else output
    interp = _Sympy(sp, dict(symbols or {}))
    if isinstance(graph, PlainGraph):
        return _walk_plain(graph, interp, out)[out]
    from .interpret import walk

    return walk(graph, interp, upto=out)[out]


class PlainNode(NamedTuple):
    """A graph node as plain data (`graph.Node`'s fields): what a request to the worker carries,
    so that unpickling it imports neither graph.py nor numpy."""

    op: str
    args: tuple[int, ...]
    name: str | None
    exact: Fraction | None


class PlainGraph(NamedTuple):
    """What the symbolic work reads of a `Graph`, as plain data (see `PlainNode`)."""

    nodes: tuple[PlainNode, ...]
    variables: tuple[str, ...]
    output: int

    @classmethod
    def of(cls, graph: Graph) -> PlainGraph:
        return cls(tuple(PlainNode(*n) for n in graph.nodes), tuple(graph.variables), graph.output)


def _walk_plain(graph: PlainGraph, interp: _Sympy, upto: int) -> list[Any]:
    """`interpret.walk` over a `PlainGraph` (the same dispatch: var, const, operation)."""
    out: list[Any] = []
    for i in range(upto + 1):
        node = graph.nodes[i]
        if node.op == "var":
            out.append(interp.var(i, node))  # type: ignore[arg-type]
        elif node.op == "const":
            out.append(interp.const(i, node))  # type: ignore[arg-type]
        else:
            out.append(interp.op(i, node, tuple(out[a] for a in node.args)))  # type: ignore[arg-type]
    return out


class PlainPoints(NamedTuple):
    """A small batch of points as plain floats: the broadcast shape, and per variable its values
    flattened (C order) to that shape."""

    shape: tuple[int, ...]
    flat: dict[str, list[float]]

    @classmethod
    def of(cls, points: Mapping[str, Any], order: Sequence[str]) -> PlainPoints:
        import numpy as np

        shape = np.broadcast_shapes(*(np.shape(points[v]) for v in order)) if order else ()
        return cls(tuple(shape), {v: np.broadcast_to(np.asarray(points[v], dtype=np.float64), shape)
                                  .ravel().tolist() for v in order})

    @property
    def count(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def arrays(self) -> dict[str, Any]:
        import numpy as np

        return {v: np.asarray(x, dtype=np.float64).reshape(self.shape) for v, x in self.flat.items()}


def _size(points: Mapping[str, Any], order: Sequence[str]) -> int:
    import numpy as np

    return int(np.prod(np.broadcast_shapes(*(np.shape(points[v]) for v in order)))) if order else 1


def _dirac_numpy(x: Any, *order: Any) -> Any:
    # d/dx sign(x) = 2 DiracDelta(x) (cbrt's meaning): 0 off the origin, infinite on it
    import numpy as np

    return np.where(np.asarray(x) == 0, np.inf, 0.0)


def _modules() -> list[Any]:
    # numpy the module, not the string "numpy": the string makes lambdify run `from numpy import
    # *`, which loads numpy's lazy submodules (f2py, testing: 0.25 s, once per worker); the
    # module gives the same printer and the same functions
    import numpy as np

    from .rules import erf as _erf_numpy

    return [{"erf": _erf_numpy, "DiracDelta": _dirac_numpy}, np]


@dataclass
class Prepared:
    """SymPy's derivatives of one output with respect to `wrt`, ready to evaluate."""

    order: list[str]  # the lambdified functions' arguments: every variable, in graph order
    wrt: list[str]
    args: list[Any]  # Dummy symbols, in `order`
    derivs: list[Any]
    float_fn: Any  # None when `program` stands in for it
    names: dict[Any, Any]  # Dummy -> a Symbol with the user's name, for showing formulas only
    mp_fn: Any = None
    mp_each: dict[str, Any] = field(default_factory=dict)
    program: Program | None = None  # the float64 function as a program the parent runs


def prepare(graph: Graph | PlainGraph, wrt: Sequence[str], output: int | None = None, *,
            program_points: int | None = None) -> Prepared:
    """SymPy's derivatives, and the float64 function evaluating them: lambdified, or, given
    `program_points` (the batch size), a `Program` the parent runs with numpy instead when it
    can be had (small enough for the batch: `PROGRAM_MAX_WORK`)."""
    import sympy as sp

    dummies = {name: sp.Dummy(real=True) for name in graph.variables}
    expr = to_sympy(graph, dummies, output)
    derivs = [sp.diff(expr, dummies[v]) if v in dummies else sp.S.Zero for v in wrt]
    order = list(graph.variables)
    args = [dummies[v] for v in order]
    most = min(PROGRAM_MAX_NODES, PROGRAM_MAX_WORK // max(1, program_points or 1))
    prog = _float_program(args, derivs, most) if program_points is not None else None
    fn = None if prog is not None else sp.lambdify(args, derivs, modules=_modules(), cse=True)
    names = {d: sp.Symbol(name, real=True) for name, d in dummies.items()}
    return Prepared(order, list(wrt), args, derivs, fn, names, program=prog)


def evaluate_float(prep: Prepared, points: Mapping[str, Any]) -> dict[str, Any]:
    """The float64 derivatives on the batch (arrays; plain floats for a scalar point). A
    complex result (a real formula leaving the reals) is nan."""
    fn = prep.float_fn
    if fn is None:
        assert prep.program is not None
        fn = prep.program.function()
    return _float_gradient(fn, prep.order, prep.wrt, points)


def _float_gradient(fn: Any, order: Sequence[str], wrt: Sequence[str],
                    points: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    with np.errstate(all="ignore"):
        raw = fn(*(np.asarray(points[v], dtype=np.float64) for v in order))
    shape = np.broadcast_shapes(*(np.shape(points[v]) for v in order)) if order else ()
    grad: dict[str, Any] = {}
    for v, value in zip(wrt, raw):
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            arr = np.where(arr.imag == 0, arr.real, np.nan)
        arr = np.broadcast_to(arr.astype(np.float64), shape).copy()
        grad[v] = float(arr) if shape == () else arr
    return grad


# ---------------------------------------------------------------- the float64 program

# The global names a program may use, each resolved as in the lambdified function's namespace
# (`_modules`: our erf and DiracDelta over numpy's own names; functools.reduce, which numpy's
# printer imports). Everything SymPy's derivatives of the functions in functions.py print to;
# a derivative printing to any other name is lambdified in the worker as before.
_PROGRAM_NAMES = frozenset({
    "erf", "DiracDelta", "reduce",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
    "arcsinh", "arccosh", "arctanh", "exp", "expm1", "exp2", "log", "log1p", "log2", "log10",
    "sqrt", "cbrt", "power", "abs", "absolute", "sign", "heaviside", "select", "where",
    "maximum", "minimum", "amax", "amin", "greater", "greater_equal", "less", "less_equal",
    "equal", "not_equal", "logical_and", "logical_or", "logical_not", "logical_xor",
    "isnan", "isinf", "isfinite", "real", "imag", "conjugate", "pi", "e", "nan", "inf",
})


class Program(NamedTuple):
    """A float64 function as data: `temps` are its assignments in order (temporary k is the
    k-th), `result` the list it returns. A tree is a tuple: ("arg", j) the j-th argument,
    ("tmp", k), ("const", value), ("name", global name), ("bin", op, a, b), ("unary", op, a),
    ("call", f, (args...), ((keyword, value)...)), ("list", (items...)), ("tuple", (items...)),
    ("reduce-of", ufunc) for `ufunc.reduce`."""

    arity: int
    temps: tuple[Any, ...]
    result: Any

    def function(self) -> Any:
        """A callable on numpy arrays, like the lambdified function (run in the parent)."""
        return lambda *arrays: _run_program(self, arrays)


class _NotAProgram(Exception):
    """The source uses something a `Program` does not hold."""


def _float_program(args: list[Any], derivs: list[Any], max_nodes: int) -> Program | None:
    """The source lambdify would generate for `derivs` (the printer `lambdify(args, derivs,
    modules=_modules(), cse=True)` chooses, with its settings; the same `cse`) as a `Program`,
    or None when it uses anything a program does not hold or has more than `max_nodes` nodes
    (lambdify then runs in the worker)."""
    import ast

    try:  # lambdify's own steps (sympy.utilities.lambdify); should a SymPy release move them,
        # lambdify itself runs in the worker, as before
        from sympy.printing.numpy import NumPyPrinter
        from sympy.simplify.cse_main import cse
        from sympy.utilities.lambdify import _EvaluatorPrinter

        printer = NumPyPrinter({"fully_qualified_modules": False, "inline": True,
                                "allow_unknown_functions": True,
                                "user_functions": {"erf": "erf", "DiracDelta": "DiracDelta"}})
        cses, exprs = cse(derivs, list=False)
        source = _EvaluatorPrinter(printer, False).doprint("_lambdifygenerated", args, exprs, cses=cses)
    except (ImportError, AttributeError, TypeError):
        return None
    if not isinstance(source, str) or len(source) > 100 * max_nodes:  # too large: not worth parsing twice
        return None
    try:
        tree = ast.parse(source)
        fn = tree.body[0]
        if len(tree.body) != 1 or not isinstance(fn, ast.FunctionDef):
            raise _NotAProgram
        slots: dict[str, tuple[str, int]] = {a.arg: ("arg", j) for j, a in enumerate(fn.args.args)}
        if len(slots) != len(args) or fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs:
            raise _NotAProgram
        temps: list[Any] = []
        count = [0, max_nodes]
        for stmt in fn.body[:-1]:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                raise _NotAProgram
            temps.append(_program_tree(stmt.value, slots, count, 0))
            slots[stmt.targets[0].id] = ("tmp", len(temps) - 1)
        last = fn.body[-1]
        if not isinstance(last, ast.Return) or last.value is None:
            raise _NotAProgram
        result = _program_tree(last.value, slots, count, 0)
        if result[0] != "list" or len(result[1]) != len(derivs):
            raise _NotAProgram
    except (_NotAProgram, SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    return Program(len(args), tuple(temps), result)


def _program_tree(node: Any, slots: Mapping[str, tuple[str, int]], count: list[int], depth: int) -> Any:
    import ast

    count[0] += 1  # [nodes so far, the most allowed]
    if count[0] > count[1] or depth > PROGRAM_MAX_DEPTH:
        raise _NotAProgram

    def sub(n: Any) -> Any:
        return _program_tree(n, slots, count, depth + 1)

    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float, complex, bool) and node.value is not None:
            raise _NotAProgram
        return ("const", node.value)
    if isinstance(node, ast.Name):
        if node.id in slots:
            return slots[node.id]
        if node.id not in _PROGRAM_NAMES:
            raise _NotAProgram
        return ("name", node.id)
    if isinstance(node, ast.BinOp):
        op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}.get(type(node.op))
        if op is None:
            raise _NotAProgram
        return ("bin", op, sub(node.left), sub(node.right))
    if isinstance(node, ast.UnaryOp):
        op = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}.get(type(node.op))
        if op is None:
            raise _NotAProgram
        return ("unary", op, sub(node.operand))
    if isinstance(node, ast.Call):
        if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            raise _NotAProgram
        return ("call", sub(node.func), tuple(sub(a) for a in node.args),
                tuple((k.arg, sub(k.value)) for k in node.keywords))
    if isinstance(node, (ast.List, ast.Tuple)):
        if any(isinstance(a, ast.Starred) for a in node.elts):
            raise _NotAProgram
        return ("list" if isinstance(node, ast.List) else "tuple", tuple(sub(a) for a in node.elts))
    if isinstance(node, ast.Attribute) and node.attr == "reduce" and isinstance(node.value, ast.Name) \
            and node.value.id in ("logical_and", "logical_or", "logical_xor", "maximum", "minimum"):
        return ("reduce-of", sub(node.value))
    raise _NotAProgram


_NAMESPACE: dict[str, Any] = {}


def _program_namespace() -> dict[str, Any]:
    """`_PROGRAM_NAMES` resolved as lambdify resolves them (see `_modules`)."""
    if not _NAMESPACE:
        import functools

        import numpy as np

        from .rules import erf as _erf_numpy

        ours = {"erf": _erf_numpy, "DiracDelta": _dirac_numpy}
        numpy_names = np.__dict__
        for name in _PROGRAM_NAMES:
            if name in ours:
                _NAMESPACE[name] = ours[name]
            elif name in numpy_names:
                _NAMESPACE[name] = numpy_names[name]
            elif name == "reduce":
                _NAMESPACE[name] = functools.reduce
    return _NAMESPACE


def _run_program(program: Program, arrays: Sequence[Any]) -> Any:
    """What the lambdified function returns for these arguments: every operation Python would
    do running its source, on the same values, in the same order."""
    import operator

    if len(arrays) != program.arity:
        raise TypeError(f"the program takes {program.arity} arguments, not {len(arrays)}")
    namespace = _program_namespace()
    binary = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "**": operator.pow}
    unary = {"-": operator.neg, "+": operator.pos, "not": operator.not_}
    temps: list[Any] = []

    def run(t: Any) -> Any:
        kind = t[0]
        if kind == "arg":
            return arrays[t[1]]
        if kind == "tmp":
            return temps[t[1]]
        if kind == "const":
            return t[1]
        if kind == "name":
            try:
                return namespace[t[1]]
            except KeyError:
                raise NameError(f"name '{t[1]}' is not defined") from None
        if kind == "bin":
            return binary[t[1]](run(t[2]), run(t[3]))
        if kind == "unary":
            return unary[t[1]](run(t[2]))
        if kind == "call":
            fn = run(t[1])
            return fn(*[run(a) for a in t[2]], **{k: run(v) for k, v in t[3]})
        if kind == "list":
            return [run(a) for a in t[1]]
        if kind == "tuple":
            return tuple(run(a) for a in t[1])
        if kind == "reduce-of":
            return run(t[1]).reduce
        raise ValueError(f"not a program: {kind!r}")

    for t in program.temps:
        temps.append(run(t))
    return run(program.result)


def formula_texts(prep: Prepared) -> dict[str, str]:
    import sympy as sp

    return {v: sp.pretty(d.xreplace(prep.names), use_unicode=True) for v, d in zip(prep.wrt, prep.derivs)}


def formula_latex(prep: Prepared) -> dict[str, str]:
    """SymPy's derivatives as LaTeX (--show-formula --latex: for a handout or a notebook)."""
    import sympy as sp

    return {v: sp.latex(d.xreplace(prep.names)) for v, d in zip(prep.wrt, prep.derivs)}


def _short(prep: Prepared, j: int, limit: int = 80) -> str:
    """SymPy's derivative j as one line of text, cut to `limit` characters."""
    import sympy as sp

    d = prep.derivs[j]
    if sp.count_ops(d, visual=False) > 200:
        return "(a long formula)"
    text = sp.sstr(d.xreplace(prep.names))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stages(
    graph: Graph | PlainGraph,
    points: Mapping[str, Any] | PlainPoints,
    wrt: Sequence[str],
    formulas: bool = False,
    exact_digits: int | None = None,
    exact_points: Sequence[int] | None = None,
    output: int | None = None,
    state: dict[str, Any] | None = None,
    claims: Mapping[str, Graph | PlainGraph] | None = None,
) -> Iterator[tuple[str, Any]]:
    """The symbolic work, stage by stage: ("float", gradient on the batch), then optionally
    ("formulas", pretty text) and, for each point index k of `exact_points` (all points by
    default), ("exact", (k, {v: decimal text}, {v: why it is nan})). Raises on failure; the
    parent turns failures and budgets into notes.

    Given `PlainPoints` (the worker, for a small batch), the first stage is ("float-program",
    `Program`) instead whenever the derivatives' float64 function can be one: the parent runs
    it (`Job`), and numpy is never imported here."""
    plain = points if isinstance(points, PlainPoints) else None
    prep = prepare(graph, wrt, output, program_points=plain.count if plain is not None else None)
    if state is not None:
        state["prepared"] = prep
    if prep.program is not None:
        yield "float-program", prep.program
    else:
        yield "float", evaluate_float(prep, plain.arrays() if plain is not None else points)
    if formulas:
        yield "formulas", formula_texts(prep)
        yield "formula-lines", {v: _short(prep, j, 10_000) for j, v in enumerate(prep.wrt)}
        yield "formula-latex", formula_latex(prep)
    if exact_digits:
        yield from _exact_stage(prep, points, exact_digits, exact_points)
    if claims:
        flat = _flat_points(prep, points)
        count = min(3, len(flat[0])) if flat else 0
        firsts = [[float(col[j]) for col in flat] for j in range(count)]
        yield from _proof_stage(prep, claims, firsts)


def _flat_points(prep: Prepared, points: Mapping[str, Any] | PlainPoints) -> list[Any]:
    """Each variable's values (in `prep.order`), broadcast to the batch and flattened."""
    if isinstance(points, PlainPoints):
        return [points.flat[v] for v in prep.order]
    import numpy as np

    shape = np.broadcast_shapes(*(np.shape(points[v]) for v in prep.order)) if prep.order else ()
    return [np.broadcast_to(np.asarray(points[v], dtype=np.float64), shape).ravel() for v in prep.order]


PROOF_MAX_OPS = 400  # a claim and derivative larger than this are not simplified (too slow)


def _proof_stage(prep: Prepared, claims: Mapping[str, Graph],
                 points: Sequence[Sequence[float]] = ()) -> Iterator[tuple[str, Any]]:
    """("proof", (v, "proved" | "not proved" | "too large")): whether SymPy turns claim − ∂f/∂v
    into 0. Last, so a slow simplify never costs the exact reference. Cheapest first: most
    right answers are SymPy's own derivative once built (the difference is 0 as it stands), or
    a rational function of the same exponentials (cancel(together(·)), 2 ms where simplify takes
    130); a difference that is clearly not 0 at one of `points` (30 digits) is wrong, and
    simplify is not asked to prove what is false; only then simplify."""
    import sympy as sp

    dummies = dict(zip(prep.order, prep.args))
    for v, claim in claims.items():
        if v not in prep.wrt:
            continue
        derivative = prep.derivs[prep.wrt.index(v)]
        expr = to_sympy(claim, dummies)
        if sp.count_ops(expr, visual=False) + sp.count_ops(derivative, visual=False) > PROOF_MAX_OPS:
            yield "proof", (v, "too large")
            continue
        difference = expr - derivative
        zero = (difference == 0 or sp.cancel(sp.together(difference)) == 0
                or (not _clearly_nonzero(sp, prep, difference, points) and sp.simplify(difference) == 0))
        yield "proof", (v, "proved" if zero else "not proved")
        if not zero:
            term = _one_term_off(sp, expr, derivative)
            if term is not None:
                kind, texts = term[0], [sp.sstr(t.xreplace(prep.names)) for t in term[1:]]
                yield "term", (v, kind, " → ".join(texts) if kind == "wrong" else texts[0])


TERMS_TRIED = 8  # terms of the derivative (or of the claim) tried as the one missing (or extra)


def _clearly_nonzero(sp: Any, prep: Prepared, difference: Any, points: Sequence[Sequence[float]]) -> bool:
    """Whether `difference` is far from 0 (relative to its terms) at one of the first three
    points, evaluated to 30 digits: then it is not identically 0."""
    terms = sp.Add.make_args(difference)
    for point in list(points)[:3]:
        subs = dict(zip(prep.args, (sp.Float(x, 30) for x in point)))
        try:
            value = complex(difference.evalf(30, subs=subs))
            size = sum(abs(complex(t.evalf(30, subs=subs))) for t in terms)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        if abs(value) > 1e-20 * max(size, 1e-300) and abs(value) == abs(value):
            return True
    return False


def _one_term_off(sp: Any, claim: Any, derivative: Any) -> tuple[Any, ...] | None:
    """("missing", t) when claim = ∂f/∂v − t for a term t of ∂f/∂v (a product-rule or chain-rule
    term left out), ("extra", t) when claim − t = ∂f/∂v for a term t of the claim, ("wrong", a, b)
    when the claim has every term of ∂f/∂v but one, a where b belongs. Each try is one cheap
    difference test (expand, then simplify only if that did not decide)."""
    def same(a: Any, b: Any) -> bool:
        d = sp.expand(a - b)
        return d == 0 or sp.cancel(sp.together(d)) == 0

    for kind, whole, other in (("missing", derivative, claim), ("extra", claim, derivative)):
        # the terms as written first (a student's 1e-12/(x-a)**2 stays one readable term)
        for terms in (sp.Add.make_args(whole), sp.Add.make_args(sp.expand(whole))):
            if len(terms) < 2:
                continue
            for t in terms[:TERMS_TRIED]:
                if same(whole - t, other):
                    return kind, t
    mine, true = set(sp.Add.make_args(sp.expand(claim))), set(sp.Add.make_args(sp.expand(derivative)))
    if len(mine - true) == 1 and len(true - mine) == 1 and len(mine & true) >= 1:
        return "wrong", next(iter(mine - true)), next(iter(true - mine))
    return None


def _exact_stage(
    prep: Prepared, points: Mapping[str, Any] | PlainPoints, digits: int, indices: Sequence[int] | None,
    labels: Sequence[int] | None = None,
) -> Iterator[tuple[str, Any]]:
    """("exact", (label, texts, why)) for each point index of `indices` (all by default); the
    label is the index itself unless `labels` renames them (a subset of a larger batch)."""
    if isinstance(points, PlainPoints):
        count = points.count
    else:
        import numpy as np

        shape = np.broadcast_shapes(*(np.shape(points[v]) for v in prep.order)) if prep.order else ()
        count = int(np.prod(shape)) if shape else 1
    flat = dict(zip(prep.order, _flat_points(prep, points)))
    for j, k in enumerate(range(count) if indices is None else indices):
        values = [float(flat[v][k]) for v in prep.order]
        label = int(k) if labels is None else int(labels[j])
        yield "exact", (label, *exact_values(prep, values, digits))


def _session(state: dict[str, Any], graph: Graph | PlainGraph, points: Mapping[str, Any] | PlainPoints,
             wrt: Sequence[str], formulas: bool, exact_digits: int | None,
             exact_points: Sequence[int] | None, output: int | None,
             claims: Mapping[str, Graph | PlainGraph] | None = None) -> Iterator[tuple[str, Any]]:
    """Worker request: a new formula (forgets the previous one) and its first stages."""
    state.clear()
    yield from stages(graph, points, wrt, formulas, exact_digits, exact_points, output, state=state,
                      claims=claims)


def _more_exact(
    state: dict[str, Any], points: Mapping[str, Any] | PlainPoints, digits: int, labels: Sequence[int]
) -> Iterator[tuple[str, Any]]:
    """Worker request: the exact derivative at more points (`points` holds just those, and
    `labels` their indices in the batch) of the formula of the session."""
    yield from _exact_stage(state["prepared"], points, digits, None, labels)


def _request_points(points: Mapping[str, Any], order: Sequence[str]) -> Any:
    """Points as a request carries them: plain floats for a small batch (the worker then needs
    no numpy), float64 arrays otherwise."""
    import numpy as np

    if _size(points, order) <= PROGRAM_MAX_POINTS:
        return PlainPoints.of(points, order)
    return {v: np.asarray(points[v], dtype=np.float64) for v in order}


def warm() -> Iterator[None]:
    """What a worker does before its first request (each `yield` is a point where it stops if a
    request is already waiting): import SymPy and this module, then pay the first-use costs of
    a request on a tiny formula (SymPy loads modules on its first sum, first printed program and
    first lambdify). Never numpy: a small batch does not need it (see the module docstring)."""
    import sympy  # noqa: F401

    yield
    x = PlainGraph((PlainNode("var", (), "x", None), PlainNode("sin", (0,), None, None),
                    PlainNode("mul", (1, 0), None, None), PlainNode("const", (), None, Fraction(1)),
                    PlainNode("add", (2, 3), None, None)), ("x",), 4)
    for _ in stages(x, PlainPoints((), {"x": [0.5]}), ["x"], exact_digits=EXACT_DIGITS):
        yield


class ExactUnavailable(Exception):
    """The exact derivative cannot be evaluated here (the message says why)."""


def _mpmath_namespace(mpmath: Any) -> dict[str, Any]:
    def heaviside(x: Any, at_zero: Any = None) -> Any:
        # SymPy's convention: Heaviside(0) = 1/2.
        if x == 0:
            return mpmath.mpf(1) / 2 if at_zero is None else at_zero
        return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)

    def dirac(x: Any, *order: Any) -> Any:
        return mpmath.inf if x == 0 else mpmath.mpf(0)

    return {"Heaviside": heaviside, "DiracDelta": dirac}


def _mp_lambdify(prep: Prepared, derivs: Any) -> Any:
    import mpmath
    import sympy as sp

    return sp.lambdify(prep.args, derivs, modules=[_mpmath_namespace(mpmath), "mpmath"], cse=True)


def _evaluate_mp(prep: Prepared, point: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """All derivatives at one point in mpmath at the current precision. A derivative that
    divides by zero there is nan, with why (the others are still computed)."""
    import mpmath

    if prep.mp_fn is None:
        prep.mp_fn = _mp_lambdify(prep, prep.derivs)
    try:
        return [mpmath.mpmathify(v) for v in prep.mp_fn(*point)], {}
    except ZeroDivisionError:
        pass
    out, why = [], {}
    for j, v in enumerate(prep.wrt):
        fn = prep.mp_each.get(v)
        if fn is None:
            fn = prep.mp_each[v] = _mp_lambdify(prep, prep.derivs[j])
        try:
            out.append(mpmath.mpmathify(fn(*point)))
        except ZeroDivisionError:
            out.append(mpmath.mpf("nan"))
            why[v] = f"SymPy's derivative, {_short(prep, j)}, divides by zero here"
    return out, why


def exact_values(prep: Prepared, point: list[float], digits: int) -> tuple[dict[str, str], dict[str, str]]:
    """Each derivative at one point to `digits` significant digits, by evaluating it with
    mpmath at rising working precision until two precisions agree (so cancellation cannot
    fake digits); and, for a derivative that is nan there, why.

    The point is the float64 value itself, exactly (every float is a binary rational that
    mpmath holds exactly), so this is the true derivative at the very point the float methods
    were given."""
    import mpmath

    out: dict[str, str] = {}
    why: dict[str, str] = {}
    previous = None
    dps_low = 0
    tolerance = mpmath.mpf(10) ** (-digits - 1)
    values: list[Any] = []
    # Cancellation can hide a value below every precision tried: gelu'(-38) = (1 + erf(-27))/2
    # + ... needs ~320 digits before 1 + erf(-27) = 1e-318 shows. So the precision doubles
    # while a value is still moving, up to EXACT_MAX_DPS.
    ladder = [digits + 15]
    while ladder[-1] * 2 <= EXACT_MAX_DPS:
        ladder.append(ladder[-1] * 2)
    for dps in ladder:
        with mpmath.workdps(dps):
            values, broken = _evaluate_mp(prep, [mpmath.mpf(x) for x in point])
        why.update(broken)
        if previous is not None:
            # Two exact zeros agree too easily: a cancellation (1/2 + erf(-27)/2 at 45 digits)
            # is exactly 0 until the precision resolves it. A zero is believed only from
            # ZERO_CHECK_DPS digits on, enough to resolve any float64-sized value next to O(1)
            # terms (10^-324 needs ~360 digits).
            pending = [
                v for v, a, b in zip(prep.wrt, previous, values)
                if v not in out and (not _agree(mpmath, a, b, tolerance, dps_low)
                                     or (a == 0 and b == 0 and dps < ZERO_CHECK_DPS))
            ]
            for v, b in zip(prep.wrt, values):
                if v not in out and v not in pending:
                    out[v] = _text(mpmath, b, digits)
            if not pending:
                break
        previous, dps_low = values, dps
    else:
        # Still moving after the last precision: only values indistinguishable from zero do
        # that (noise of 10^-dps around a true 0, as in cos(x)**2 + sin(x)**2 - 1).
        for v, b in zip(prep.wrt, values):
            if v in out:
                continue
            if abs(b) < mpmath.mpf(10) ** (-dps_low // 2):
                out[v] = "0"
            else:  # never a made-up value: say it did not converge, and the cell falls back
                out[v] = "nan"
                why[v] = (f"the exact evaluation did not settle within {dps_low:,} digits "
                          "(cancellation too deep); the reference falls back")
    for j, v in enumerate(prep.wrt):
        if out[v] == "nan" and v not in why:
            text = _short(prep, j)
            why[v] = ("SymPy's derivative is nan for this formula" if text == "nan"
                      else f"SymPy's derivative, {text}, is undefined here")
    return out, {v: w for v, w in why.items() if out[v] == "nan"}


def _agree(mpmath: Any, a: Any, b: Any, tolerance: Any, dps_low: int) -> bool:
    if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
        return a == b or (mpmath.isnan(a) and mpmath.isnan(b))
    if isinstance(a, mpmath.mpc) or isinstance(b, mpmath.mpc):
        return False
    scale = max(abs(a), abs(b))
    return abs(a - b) <= tolerance * scale


def _text(mpmath: Any, value: Any, digits: int) -> str:
    if isinstance(value, mpmath.mpc):
        return "nan" if value.imag != 0 else _text(mpmath, value.real, digits)
    if mpmath.isnan(value):
        return "nan"
    if mpmath.isinf(value):
        return "inf" if value > 0 else "-inf"
    return mpmath.nstr(value, digits, strip_zeros=False)


# --------------------------------------------------------------------------------------------
# The parent's side
# --------------------------------------------------------------------------------------------


@dataclass
class SymbolicResult:
    gradient: dict[str, Any] | None  # per variable: an array over the batch (a float for one point)
    note: str | None = None  # why the float64 derivative could not be had
    formulas: dict[str, str] = field(default_factory=dict)  # name -> pretty derivative
    formula_lines: dict[str, str] = field(default_factory=dict)  # name -> one-line derivative
    formula_latex: dict[str, str] = field(default_factory=dict)  # name -> LaTeX
    exact: dict[int, dict[str, str]] = field(default_factory=dict)  # point -> name -> digits
    exact_why: dict[int, dict[str, str]] = field(default_factory=dict)  # point -> name -> why nan
    exact_note: str | None = None  # why the exact derivative could not be had (everywhere left)
    proofs: dict[str, str] = field(default_factory=dict)  # claimed v -> proved | not proved | too large
    terms: dict[str, tuple[str, str]] = field(default_factory=dict)  # v -> (missing | extra, term)
    skipped: bool = False  # stopped by its budget (time or memory), not by SymPy itself


def _flag(kind: str | None) -> str:
    return {"timeout": " (raise it with --symbolic-timeout)",
            "memory": " (raise it with --symbolic-memory)"}.get(kind or "", "")


class Job:
    """The symbolic work of one check, running in the shared worker while the parent goes on."""

    def __init__(self, memory: int | None, budget: float) -> None:
        self.worker = workers.shared(memory, warm)
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.wants_exact = False
        self.result = SymbolicResult(None)
        self.broken = False  # the worker was stopped: no more requests
        self.order: list[str] = []
        self.wrt: list[str] = []
        self.points: dict[str, Any] = {}

    def start(self, graph: Graph, points: Mapping[str, Any], wrt: Sequence[str], *,
              formulas: bool, exact_digits: int | None, exact_points: Sequence[int] | None,
              output: int | None = None, claims: Mapping[str, Graph] | None = None) -> None:
        import numpy as np

        self.order, self.wrt = list(graph.variables), list(wrt)
        self.points = {v: np.asarray(points[v], dtype=np.float64) for v in self.order}
        self.worker.send(_session, (PlainGraph.of(graph), _request_points(self.points, self.order),
                                    self.wrt, formulas, exact_digits, exact_points, output,
                                    {v: PlainGraph.of(c) for v, c in (claims or {}).items()}))
        self.wants_exact = bool(exact_digits)

    def finish(self, deadline: float) -> SymbolicResult:
        """Wait for the session until the budget or `deadline` (monotonic), whichever is first."""
        outcome = self.worker.collect(min(self.deadline, deadline), "SymPy", self.budget)
        self._take(outcome, first=True)
        return self.result

    def more_exact(self, points: Mapping[str, Any], digits: int, labels: Sequence[int],
                   deadline: float) -> SymbolicResult:
        """The exact derivative at more points: `points` holds just those, `labels` their
        indices in the batch (the keys they get in `result.exact`)."""
        if self.broken or self.result.gradient is None or not labels:
            return self.result
        self.worker.send(_more_exact, (_request_points(points, self.order), digits, list(labels)))
        outcome = self.worker.collect(min(self.deadline, deadline), "SymPy", self.budget)
        self._take(outcome, first=False)
        return self.result

    def _take(self, outcome: workers.Outcome, first: bool) -> None:
        r = self.result
        reason, kind = outcome.reason, outcome.kind
        for item, value in outcome.values:
            if item == "float-program":
                failed = self._run(value)
                if failed is not None:  # as if the worker had failed there (it used to run it)
                    reason, kind = failed
                    break
            elif item == "float":
                r.gradient = value
            elif item == "formulas":
                r.formulas = value
            elif item == "formula-lines":
                r.formula_lines = value
            elif item == "formula-latex":
                r.formula_latex = value
            elif item == "proof":
                r.proofs[value[0]] = value[1]
            elif item == "term":
                r.terms[value[0]] = (value[1], value[2])
            elif item == "exact":
                k, texts, why = value
                r.exact[k] = texts
                if why:
                    r.exact_why[k] = why
        if reason is not None:
            self.broken = True
            r.skipped = r.skipped or kind in ("timeout", "memory")
            reason = reason + _flag(kind)
            if first and r.gradient is None:
                r.note = reason
            if self.wants_exact:
                r.exact_note = reason

    def _run(self, program: Program) -> tuple[str, str] | None:
        """SymPy's float64 derivatives on the batch, from the worker's program (see the module
        docstring); or what the worker would have said, had running them failed there."""
        try:
            self.result.gradient = _float_gradient(program.function(), self.order, self.wrt, self.points)
        except RecursionError:
            return "SymPy failed: recursed deeper than the worker allows", "error"
        except MemoryError:
            return f"SymPy exceeded its memory budget of {(self.worker.memory or 0) / 2**20:g} MiB", "memory"
        except Exception as exc:  # reported as the worker reports a failure, never raised
            import traceback

            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return f"SymPy failed: {detail[:500]}", "error"
        return None


def gradient(
    graph: Graph,
    point: Mapping[str, Any],
    wrt: Sequence[str],
    *,
    formulas: bool = False,
    exact_digits: int | None = None,
    timeout: float = SYMBOLIC_TIMEOUT,
    memory: int | None = SYMBOLIC_MEMORY,
) -> SymbolicResult:
    """sympy.diff of the formula with respect to each of `wrt`, evaluated at `point` (scalars
    or arrays), in the shared worker under a time and memory budget."""
    job = Job(memory, timeout)
    job.start(graph, point, wrt, formulas=formulas, exact_digits=exact_digits, exact_points=None)
    result = job.finish(job.deadline)
    import numpy as np

    if result.gradient is not None and all(np.ndim(point[v]) == 0 for v in graph.variables):
        result.gradient = {k: float(v) for k, v in result.gradient.items()}
    return result
