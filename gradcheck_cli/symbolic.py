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
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import worker as workers
from .functions import meaning_of
from .graph import Graph, Node
from .interpret import walk
from .rules import erf as _erf_numpy

SYMBOLIC_TIMEOUT = 10.0  # seconds, --symbolic-timeout
SYMBOLIC_MEMORY = workers.DEFAULT_MEMORY  # bytes, --symbolic-memory (in MiB on the command line)
EXACT_DIGITS = 30
EXACT_MAX_DPS = 3_000  # the most working digits the exact evaluation climbs to
ZERO_CHECK_DPS = 400  # an exact 0 is believed from this many working digits on


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


def to_sympy(graph: Graph, symbols: Mapping[str, Any] | None = None, output: int | None = None) -> Any:
    """The graph as a SymPy expression (variables real; `symbols` overrides)."""
    import sympy as sp

    out = graph.output if output is None else output
    return walk(graph, _Sympy(sp, dict(symbols or {})), upto=out)[out]


def _dirac_numpy(x: Any, *order: Any) -> Any:
    # d/dx sign(x) = 2 DiracDelta(x) (cbrt's meaning): 0 off the origin, infinite on it
    return np.where(np.asarray(x) == 0, np.inf, 0.0)


def _modules() -> list[Any]:
    # numpy the module, not the string "numpy": the string makes lambdify run `from numpy import
    # *`, which loads numpy's lazy submodules (f2py, testing: 0.25 s, once per worker); the
    # module gives the same printer and the same functions
    return [{"erf": _erf_numpy, "DiracDelta": _dirac_numpy}, np]


@dataclass
class Prepared:
    """SymPy's derivatives of one output with respect to `wrt`, ready to evaluate."""

    order: list[str]  # the lambdified functions' arguments: every variable, in graph order
    wrt: list[str]
    args: list[Any]  # Dummy symbols, in `order`
    derivs: list[Any]
    float_fn: Any
    names: dict[Any, Any]  # Dummy -> a Symbol with the user's name, for showing formulas only
    mp_fn: Any = None
    mp_each: dict[str, Any] = field(default_factory=dict)


def prepare(graph: Graph, wrt: Sequence[str], output: int | None = None) -> Prepared:
    import sympy as sp

    dummies = {name: sp.Dummy(real=True) for name in graph.variables}
    expr = to_sympy(graph, dummies, output)
    derivs = [sp.diff(expr, dummies[v]) if v in dummies else sp.S.Zero for v in wrt]
    order = list(graph.variables)
    args = [dummies[v] for v in order]
    fn = sp.lambdify(args, derivs, modules=_modules(), cse=True)
    names = {d: sp.Symbol(name, real=True) for name, d in dummies.items()}
    return Prepared(order, list(wrt), args, derivs, fn, names)


def evaluate_float(prep: Prepared, points: Mapping[str, Any]) -> dict[str, Any]:
    """The float64 derivatives on the batch (arrays; plain floats for a scalar point). A
    complex result (a real formula leaving the reals) is nan."""
    with np.errstate(all="ignore"):
        raw = prep.float_fn(*(np.asarray(points[v], dtype=np.float64) for v in prep.order))
    shape = np.broadcast_shapes(*(np.shape(points[v]) for v in prep.order)) if prep.order else ()
    grad: dict[str, Any] = {}
    for v, value in zip(prep.wrt, raw):
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            arr = np.where(arr.imag == 0, arr.real, np.nan)
        arr = np.broadcast_to(arr.astype(np.float64), shape).copy()
        grad[v] = float(arr) if shape == () else arr
    return grad


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
    graph: Graph,
    points: Mapping[str, Any],
    wrt: Sequence[str],
    formulas: bool = False,
    exact_digits: int | None = None,
    exact_points: Sequence[int] | None = None,
    output: int | None = None,
    state: dict[str, Any] | None = None,
    claims: Mapping[str, Graph] | None = None,
) -> Iterator[tuple[str, Any]]:
    """The symbolic work, stage by stage: ("float", gradient on the batch), then optionally
    ("formulas", pretty text) and, for each point index k of `exact_points` (all points by
    default), ("exact", (k, {v: decimal text}, {v: why it is nan})). Raises on failure; the
    parent turns failures and budgets into notes."""
    prep = prepare(graph, wrt, output)
    if state is not None:
        state["prepared"] = prep
    yield "float", evaluate_float(prep, points)
    if formulas:
        yield "formulas", formula_texts(prep)
        yield "formula-lines", {v: _short(prep, j, 10_000) for j, v in enumerate(prep.wrt)}
        yield "formula-latex", formula_latex(prep)
    if exact_digits:
        yield from _exact_stage(prep, points, exact_digits, exact_points)
    if claims:
        shape = np.broadcast_shapes(*(np.shape(points[v]) for v in prep.order)) if prep.order else ()
        flat = [np.broadcast_to(np.asarray(points[v], dtype=np.float64), shape).ravel()[:3]
                for v in prep.order]
        firsts = [[float(col[j]) for col in flat] for j in range(min(3, len(flat[0])) if flat else 0)]
        yield from _proof_stage(prep, claims, firsts)


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
    prep: Prepared, points: Mapping[str, Any], digits: int, indices: Sequence[int] | None,
    labels: Sequence[int] | None = None,
) -> Iterator[tuple[str, Any]]:
    """("exact", (label, texts, why)) for each point index of `indices` (all by default); the
    label is the index itself unless `labels` renames them (a subset of a larger batch)."""
    shape = np.broadcast_shapes(*(np.shape(points[v]) for v in prep.order)) if prep.order else ()
    flat = {v: np.broadcast_to(np.asarray(points[v], dtype=np.float64), shape).ravel()
            for v in prep.order}
    count = int(np.prod(shape)) if shape else 1
    for j, k in enumerate(range(count) if indices is None else indices):
        values = [float(flat[v][k]) for v in prep.order]
        label = int(k) if labels is None else int(labels[j])
        yield "exact", (label, *exact_values(prep, values, digits))


def _session(state: dict[str, Any], graph: Graph, points: Mapping[str, Any], wrt: Sequence[str],
             formulas: bool, exact_digits: int | None, exact_points: Sequence[int] | None,
             output: int | None, claims: Mapping[str, Graph] | None = None,
             ) -> Iterator[tuple[str, Any]]:
    """Worker request: a new formula (forgets the previous one) and its first stages."""
    state.clear()
    yield from stages(graph, points, wrt, formulas, exact_digits, exact_points, output, state=state,
                      claims=claims)


def _more_exact(
    state: dict[str, Any], points: Mapping[str, Any], digits: int, labels: Sequence[int]
) -> Iterator[tuple[str, Any]]:
    """Worker request: the exact derivative at more points (`points` holds just those, and
    `labels` their indices in the batch) of the formula of the session."""
    yield from _exact_stage(state["prepared"], points, digits, None, labels)


def _warm() -> None:
    import mpmath  # noqa: F401
    import sympy  # noqa: F401


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
        self.worker = workers.shared(memory, _warm)
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.wants_exact = False
        self.result = SymbolicResult(None)
        self.broken = False  # the worker was stopped: no more requests

    def start(self, graph: Graph, points: Mapping[str, Any], wrt: Sequence[str], *,
              formulas: bool, exact_digits: int | None, exact_points: Sequence[int] | None,
              output: int | None = None, claims: Mapping[str, Graph] | None = None) -> None:
        points = {v: np.asarray(points[v], dtype=np.float64) for v in graph.variables}
        self.worker.send(_session, (graph, points, list(wrt), formulas, exact_digits,
                                    exact_points, output, dict(claims or {})))
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
        self.worker.send(_more_exact, (dict(points), digits, list(labels)))
        outcome = self.worker.collect(min(self.deadline, deadline), "SymPy", self.budget)
        self._take(outcome, first=False)
        return self.result

    def _take(self, outcome: workers.Outcome, first: bool) -> None:
        r = self.result
        for kind, value in outcome.values:
            if kind == "float":
                r.gradient = value
            elif kind == "formulas":
                r.formulas = value
            elif kind == "formula-lines":
                r.formula_lines = value
            elif kind == "formula-latex":
                r.formula_latex = value
            elif kind == "proof":
                r.proofs[value[0]] = value[1]
            elif kind == "term":
                r.terms[value[0]] = (value[1], value[2])
            elif kind == "exact":
                k, texts, why = value
                r.exact[k] = texts
                if why:
                    r.exact_why[k] = why
        if outcome.reason is not None:
            self.broken = True
            r.skipped = r.skipped or outcome.kind in ("timeout", "memory")
            reason = outcome.reason + _flag(outcome.kind)
            if first and r.gradient is None:
                r.note = reason
            if self.wants_exact:
                r.exact_note = reason


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
    if result.gradient is not None and all(np.ndim(point[v]) == 0 for v in graph.variables):
        result.gradient = {k: float(v) for k, v in result.gradient.items()}
    return result
