"""One check: a formula and a batch of points in, every method's gradient and a verdict out.

The order of work, under one time budget (`timeout`):
1. parse; start SymPy in the shared worker at once (its import and differentiation overlap
   everything below), unless the graph is too large for it (`SYMBOLIC_MAX_NODES`) and it was
   not asked for by name;
2. evaluate f at every point (a point where f is undefined is bad input; sampled points were
   redrawn before);
3. the fast methods, all points at once: reverse (reusing step 2's values), forward, the
   finite differences;
4. the kink analysis, and collect SymPy with whatever budget is left (skipped with a note when
   it runs out, never an error);
5. the reference per cell (`judge.assemble`), computing the complex step or Richardson only
   where a fallback is needed; the one-sided probe where nothing else is finite or the AD broke;
6. judge every cell; past `EXACT_ALL_POINTS` points, fetch the exact derivative at the failing
   and the worst points and judge again;
7. the verdict: fail if any cell fails (or, with `strict`, a kink/convention/nondifferentiable
   cell), inconclusive if no cell could be judged, else pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import mpmath
import numpy as np

from . import claims, diagnose, judge, kinks, probe, reverse, sampling, symbolic, validate
from .errors import GradcheckError
from .explain import describe_trouble, node_texts
from .graph import Graph, at_point, evaluate, first_trouble, some_names
from .interpret import backward
from .judge import Reasons, Reference, Special
from .limits import DEFAULT_LIMITS, Limits
from .methods import (
    FINITE_MAX_WORK,
    METHODS,  # re-exported: gradcheck_cli.METHODS
    REFERENCE_CHAIN,
    REGISTRY,
    Context,
    MethodResult,
)
from .parse import parse
from .report import Diagnostic, MethodReport, Report, Sample
from .validate import DTYPES

__all__ = ["METHODS", "Options", "check"]

# SymPy's cost explodes with the graph's size (benchmarks/sympy_scaling.py); above this it is
# skipped at once unless asked for by name (--methods symbolic, --reference exact|symbolic).
SYMBOLIC_MAX_NODES = 4_000
# ... and sooner for deep or many-variable graphs: its derivative and exact evaluation grow with
# nodes × depth (a deep chain takes the whole 10 s budget at about 170 nodes) and with nodes ×
# variables (a net at about 300 nodes and 100 variables); past this estimate it is skipped.
SYMBOLIC_MAX_WORK = 20_000
# The exact reference runs at every point up to this many points; past it, at the failing and
# the worst points only (at most EXACT_FOCUS of them), so its cost stays bounded.
EXACT_ALL_POINTS = 100
EXACT_FOCUS = 20


@dataclass(frozen=True)
class Options:
    """Everything that tunes a check; the CLI's flags map onto these one to one."""

    wrt: Sequence[str] | None = None  # default: every variable
    methods: Sequence[str] | None = None  # None: DEFAULT_METHODS; "all" for every one
    reference: str = "auto"  # exact where it can be had, else the REFERENCE_CHAIN
    rtol: float | None = None  # None: each method's default (methods.REGISTRY)
    atol: float | None = None  # None: rtol × the gradient's size at the point
    step: float | None = None  # central difference step; None: cbrt(eps)*max(1,|x|)
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    show_formula: bool = False
    symbolic_timeout: float = symbolic.SYMBOLIC_TIMEOUT
    symbolic_memory: int | None = symbolic.SYMBOLIC_MEMORY
    exact_digits: int = symbolic.EXACT_DIGITS
    strict: bool = False  # a point where f is not differentiable fails the check
    dtype: str = "float64"  # float32: AD and finite differences run in float32
    timeout: float | None = None  # seconds for the whole check (SymPy gets what is left)
    sample: int | None = None  # draw this many points (the point given fixes variables)
    domain: Mapping[str, tuple[float, float]] | None = None  # per variable (LO, HI)
    seed: int | None = None
    description: str = ""  # shown in every output format (a check file's description)
    expect: Mapping[str, str] | None = None  # claimed derivatives, v -> formula (homework)
    where_undefined: str = "isolated"  # a claim undefined where ∂f/∂v is not: claims.WHERE_UNDEFINED
    probe: bool = True  # with claims and sample: also check at the special points (special_points.py)
    outputs: Sequence[str] | None = None  # a program's output steps (default: its last statement)
    full: bool = False  # many variables: check every one (not random directions and a subset)
    latex: bool = False  # --show-formula in LaTeX


def check(expression: str, point: Mapping[str, Any] | None = None, **options: Any) -> Report:
    """Check the gradient of `expression` at `point` — plain numbers for one point, or arrays of
    equal length for many — or at `sample` drawn points. Raises GradcheckError on bad input.

    Keyword arguments are the fields of `Options`."""
    started = time.monotonic()
    try:
        opts = replace(Options(), **options)
    except TypeError as exc:
        raise GradcheckError("usage", str(exc)) from None
    opts = validate.options(opts)
    deadline = started + opts.timeout if opts.timeout is not None else math.inf
    names = validate.method_names(opts)
    graph = parse(expression, opts.limits, outputs=list(opts.outputs) if opts.outputs else None)
    claim_graphs = claims.parse_claims(opts.expect or {}, graph, opts.limits)
    if claim_graphs:
        names = [*names, "claim"]
    wrt = validate.wrt(graph, opts.wrt)
    unchecked = [v for v in claim_graphs if v not in wrt]
    if unchecked:
        raise GradcheckError("usage", f"a claim is given for ∂f/∂{some_names(unchecked, 3)}, which --wrt "
                             f"leaves out (checked: {some_names(wrt)}); add it to --wrt or drop the claim.")
    if len(graph.outputs) > 1:
        raise GradcheckError("usage", f"--output names {len(graph.outputs)} steps "
                             f"({', '.join(graph.output_names)}); a check has one output for now (a "
                             "Jacobian check will take several): check them one at a time.")
    dtype = DTYPES[opts.dtype]
    point = dict(point or {})
    # a value for a program input the chosen output does not depend on is unused, not wrong
    unused = [v for v in point if v in graph.unused_inputs]
    point = {v: x for v, x in point.items() if v not in unused}
    if opts.sample is None:  # a program's `a = -4.0` is an input with a default value
        point = {**{v: x for v, x in graph.defaults.items() if v not in point}, **point}

    sample: Sample | None = None
    if opts.sample is not None:
        given, many = validate.point(graph, point, require_all=False)
        if many:
            raise GradcheckError("usage", "with sample=N the points are drawn; give plain numbers "
                                 "(not arrays) for the variables to keep fixed.")
        seed = opts.seed if opts.seed is not None else sampling.new_seed()
        drawn = sampling.draw(graph, opts.sample, opts.domain or {}, seed,
                              {v: float(x) for v, x in point.items()}, dtype)
        points = drawn.points
        probe_why: list[str] = []
        if claim_graphs and opts.probe:
            # homework: besides the random points, the points where answers typically differ
            # (zeros of denominators, log and sqrt arguments, kinks) and each side of them
            from . import special_points

            found = special_points.special_points(
                [graph, *claim_graphs.values()], drawn.points, drawn.domain, rng=seed,
                labels=["f", *(f"the claim for ∂f/∂{v}" for v in claim_graphs)]).where_defined(0)
            if len(found.why):
                points = {v: np.asarray(p, dtype=dtype) for v, p in found.appended_to(drawn.points).items()}
                probe_why = list(found.why)
        sample = Sample(opts.sample, seed, drawn.domain, drawn.redrawn, drawn.dropped,
                        drawn.undefined_where, drawn.defined_fraction, drawn.hint, probe_why)
        batched = True
    else:
        if opts.domain:
            raise GradcheckError("usage", "--domain needs --sample N (the number of points to draw).")
        points, batched = validate.point(graph, point, require_all=True)
        # In float32 the point itself is what a float32 model sees: rounded to float32. Every
        # method, and the exact reference, is taken at that same point.
        points = {v: validate.in_dtype(v, p, dtype) for v, p in points.items()}
    k = len(next(iter(points.values()))) if points else 1
    arrays = {v: np.asarray(p, dtype=dtype) for v, p in points.items()}

    wants_exact = opts.reference in ("auto", "exact")
    asked = opts.methods is not None and "symbolic" in names or opts.reference in ("exact", "symbolic")
    too_big_why = _symbolic_too_big(graph, wrt)
    too_big = too_big_why is not None and not asked
    needs_symbolic = bool(wrt) and not too_big and (
        "symbolic" in names or opts.reference in ("auto", "exact", "symbolic"))
    # The worker is forked (and imports SymPy) now; the request goes out once the point is
    # known to be good, so bad input never abandons a request (which would cost a new worker).
    job = symbolic.Job(opts.symbolic_memory, opts.symbolic_timeout) if needs_symbolic else None

    diagnostics: list[Diagnostic] = []
    if unused:
        what = graph.output_names[0] if graph.output_names else "the output"
        diagnostics.append(Diagnostic(
            "unused-input", f"{some_names(unused)} {'is an input' if len(unused) == 1 else 'are inputs'} of "
            f"the program that {what} does not depend on: the value given is not used."))
    values = evaluate(graph, arrays, dtype)
    f = np.broadcast_to(values[graph.output], (k,)).astype(np.float64)
    _refuse_undefined(graph, values, f, points, diagnostics, dtype)
    if job is not None:
        job.start(graph, points, wrt, formulas=opts.show_formula,
                  exact_digits=opts.exact_digits if wants_exact else None,
                  exact_points=None if k <= EXACT_ALL_POINTS else [], claims=claim_graphs)

    ctx = Context(graph, arrays, wrt, dtype, opts.step, values, claims=claim_graphs, full=opts.full)
    results: dict[str, MethodResult] = {}
    for name in names:
        if name == "symbolic":
            continue
        asked_for = opts.methods is not None and name in opts.methods
        skip = None if asked_for else REGISTRY[name].too_big(len(graph), len(wrt), k, opts.full)
        results[name] = MethodResult(None, skip) if skip else REGISTRY[name].run(ctx)
    kink = kinks.analyse(graph, arrays, wrt) if wrt else kinks.KinkAnalysis(points=k)

    sym: symbolic.SymbolicResult | None = None
    if job is not None:
        margin = 0.1 * (opts.timeout or 0.0)
        sym = job.finish(deadline - margin)
        if sym.skipped or (sym.gradient is None and sym.note):
            diagnostics.append(Diagnostic("symbolic-skipped",
                                          f"SymPy was skipped: {sym.note or sym.exact_note}."))
    elif too_big and ("symbolic" in names or wants_exact):
        diagnostics.append(Diagnostic(
            "symbolic-skipped",
            f"SymPy was skipped: {too_big_why}, where its cost explodes (benchmarks/sympy_scaling.py; "
            "ask for it with --methods symbolic or --reference exact)."))
    ctx.symbolic = sym
    if "symbolic" in names:
        results["symbolic"] = REGISTRY["symbolic"].run(ctx)
        if too_big:
            results["symbolic"].note = f"skipped: {too_big_why}"

    state = _Judging(graph, ctx, points, f, wrt, names, opts, results, kink, sym, job, deadline)
    state.run()
    for _ in range(6):  # refine where something fails: rounding, a float reference, exact values
        changed = state.add_rounding()
        changed = state.distrust_float_reference() or changed
        if not changed and state.needs_more_exact():
            changed = state.more_exact()
        if not changed:
            break
        state.run()
    diagnostics += state.diagnostics
    if sample is not None and sample.dropped:
        diagnostics.append(Diagnostic(
            "undefined-points",
            f"f was undefined at {sample.dropped} of {sample.n} drawn points even after "
            f"{sampling.REDRAWS} rounds of redraws ({sample.undefined_where}); they were not checked"
            + (f"; f is defined on {_share(sample.defined_fraction)} of the box: {sample.hint} "
               "would check where it is" if sample.hint else "") + "."))
    elif sample is not None and sample.redrawn:
        diagnostics.append(Diagnostic(
            "redrawn-points",
            f"{sample.redrawn} draws fell where f is undefined and were redrawn "
            f"({sample.undefined_where})"
            + (f"; f is defined on {_share(sample.defined_fraction)} of the box: {sample.hint} "
               "would check where it is" if sample.hint else "") + "."))
    methods = [state.reports[n] for n in names]
    for m in methods:
        m.batched = batched
    undefined: dict[str, claims.Undefined] = {}
    if claim_graphs:
        undefined = _accept_undefined(graph, claim_graphs, points, state, wrt, opts.where_undefined)
        _proved_claims(state, sym.proofs if sym is not None else {})
    directional = _judge_directions(results, wrt, state.reports)
    verdict = _verdict(methods, wrt, opts.strict)
    if verdict != "fail" and any(d["failed"] for d in directional):
        verdict = "fail"
    elif verdict == "inconclusive" and any(d["passed"] for d in directional):
        verdict = "pass"
    claim_verdicts = {}
    if claim_graphs:
        col = state.reports["claim"]
        assert col.values is not None and col.cells is not None
        claim_verdicts = claims.judge_claims(
            {v: opts.expect[v] for v in claim_graphs if v in wrt},  # type: ignore[index]
            col.values, col.cells.code, {v: r.hi for v, r in state.refs.items()},
            lambda k: ",".join(f"{v}={float(points[v][k])!r}" for v in points), judge.PASS, judge.FAIL,
            sym.proofs if sym is not None else {}, sym.terms if sym is not None else {}, undefined,
            lambda k: sample.probes[k - sample.n] if sample is not None and k >= sample.n else None)
    unjudged = [v for v, c in claim_verdicts.items() if c.verdict == "cannot-judge"]
    if unjudged and verdict == "pass":  # the claim was the question, and nothing answered it
        verdict = "inconclusive"
        diagnostics.append(Diagnostic("inconclusive", f"the claim for ∂f/∂{', ∂f/∂'.join(unjudged)} could "
                                      "not be compared at any point."))
    elif verdict == "inconclusive":
        diagnostics.append(Diagnostic("inconclusive", _inconclusive_why(methods, wrt)))
    return Report(
        expression=expression,
        points=points,
        f=f,
        wrt=list(wrt),
        reference=state.main_reference,
        methods=methods,
        verdict=verdict,
        diagnostics=diagnostics,
        formulas=sym.formulas if sym is not None else {},
        formula_lines=sym.formula_lines if sym is not None else {},
        formula_latex=sym.formula_latex if sym is not None else {},
        latex=opts.latex,
        step_partials=_step_partials(graph) if opts.show_formula and graph.steps else [],
        description=str(opts.description or ""),
        exact_text=sym.exact if sym is not None else {},
        reference_source={v: r.source for v, r in state.refs.items()},
        reference_values={v: r.hi for v, r in state.refs.items()},
        reference_note=state.reference_note,
        kinks={v: (state.corner.get(v, np.zeros(k, bool)), *state.intervals[v]) for v in state.intervals},
        strict=opts.strict,
        dtype=opts.dtype,
        nodes=len(graph),
        depth=graph.depth(),
        batched=batched,
        sample=sample,
        reasons=state.reasons.texts,
        claims=claim_verdicts,
        warnings=[str(w) for w in graph.warnings],
        directional=directional,
        output_name=graph.output_names[0] if graph.output_names else None,
    )


class _Judging:
    """Steps 5–6 of the module docstring, re-runnable when more exact values arrive."""

    def __init__(self, graph: Graph, ctx: Context, points: Mapping[str, np.ndarray], f: np.ndarray,
                 wrt: Sequence[str], names: Sequence[str], opts: Options,
                 results: dict[str, MethodResult], kink: kinks.KinkAnalysis,
                 sym: symbolic.SymbolicResult | None, job: symbolic.Job | None, deadline: float) -> None:
        self.graph, self.ctx, self.points, self.f, self.wrt = graph, ctx, points, f, wrt
        self.names, self.opts, self.results, self.kink = names, opts, results, kink
        self.sym, self.job, self.deadline = sym, job, deadline
        self.k = len(f)
        self.eps = float(np.finfo(DTYPES[opts.dtype]).eps)
        self.reasons = Reasons()
        self.fallbacks: dict[str, MethodResult] = {}  # reference fallbacks not asked for ...
        self.fallback_at: dict[str, np.ndarray] = {}  # ... and the points they were computed at
        self.diagnostics: list[Diagnostic] = []
        self.reports: dict[str, MethodReport] = {}
        self.refs: dict[str, Reference] = {}
        self.corner: dict[str, np.ndarray] = {}
        self.intervals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.main_reference = "none"
        self.reference_note = ""
        self._texts: list[str] | None = None
        self.rounding: dict[str, np.ndarray] = {v: np.zeros(self.k) for v in wrt}
        self.rounded = np.zeros(self.k, dtype=bool)  # points whose rounding response is known
        self.distrust: dict[str, np.ndarray] = {}  # cells where SymPy's float64 value is off
        self.overflow_notes: dict[str, str] = {}
        self.requested: set[int] = set()  # points whose exact value was asked for

    @property
    def texts(self) -> list[str]:
        """Every node's formula text, made when a reason first names a node (10⁵ nodes: 0.3 s)."""
        if self._texts is None:
            self._texts = node_texts(self.graph)
        return self._texts

    # ---------------------------------------------------------------- the reference
    def _exact(self) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                              dict[str, np.ndarray]] | None:
        if self.sym is None or not self.sym.exact or self.opts.reference not in ("auto", "exact"):
            return None
        exact: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        why: dict[str, np.ndarray] = {}
        top = float(np.finfo(DTYPES[self.opts.dtype]).max)
        for v in self.wrt:
            hi = np.full(self.k, np.nan)
            lo = np.zeros(self.k)
            over = np.zeros(self.k, dtype=bool)
            w = np.full(self.k, -1, dtype=np.int32)
            for p, texts in self.sym.exact.items():
                hi[p], lo[p] = _double_double(texts[v])
                # a finite derivative beyond the working dtype's range (1/x at 1e-160: -1e320)
                over[p] = texts[v] not in ("nan", "inf", "-inf") and not abs(hi[p]) <= top
                note = self.sym.exact_why.get(p, {}).get(v)
                if note is not None:
                    w[p] = self.reasons.add(note)
            exact[v], why[v] = (hi, lo, over), w
            if over.any():
                p = int(np.flatnonzero(over)[0])
                self.overflow_notes[v] = (
                    f"the exact ∂f/∂{v}, {mpmath.nstr(mpmath.mpf(self.sym.exact[p][v]), 4)}, is beyond "
                    f"{self.opts.dtype}'s range"
                    + (f" at {int(over.sum())} of {self.k} points" if self.k > 1 else "")
                    + ": an infinity of its sign is the right answer there")
        return exact, why

    def _fallback(self, name: str, need: np.ndarray) -> MethodResult | None:
        """A reference-capable method's result, computed only at the points `need` if it was
        not requested (NaN elsewhere)."""
        if name in self.results:
            return self.results[name]
        if name == "symbolic":
            return REGISTRY["symbolic"].run(self.ctx) if self.sym is not None else None
        if not need.any():
            return None
        if REGISTRY[name].too_big(len(self.graph), len(self.wrt), int(need.sum()), self.opts.full):
            return None  # past its size limit: not even as a fallback reference
        have = self.fallbacks.get(name)
        if have is not None and not (need & ~self.fallback_at[name]).any():
            return have
        index = np.flatnonzero(need)
        sub = REGISTRY[name].run(self.ctx.subset(index))
        full = MethodResult({}, sub.note, None, {}, {}, sub.why)
        for v in self.wrt:
            g = np.full(self.k, np.nan)
            e = np.full(self.k, np.inf)
            b = np.ones(self.k, dtype=bool)
            if sub.values is not None:
                g[index] = sub.values[v]
                assert sub.estimate is not None
                e[index] = sub.estimate[v]
                b[index] = sub.bad.get(v, np.zeros(len(index), dtype=bool))
            full.values[v], full.estimate[v], full.bad[v] = g, e, b  # type: ignore[index]
        self.fallback_at[name] = need.copy()
        self.fallbacks[name] = full
        return full

    def _references(self) -> dict[str, Reference]:
        chosen = self.opts.reference
        exact = self._exact()
        order = list(REFERENCE_CHAIN)
        if chosen not in ("auto", "exact"):
            order = [chosen] + [n for n in order if n != chosen]
        candidates = []
        need = np.ones(self.k, dtype=bool)
        if exact is not None:
            need = ~np.logical_and.reduce([np.isfinite(exact[0][v][0]) for v in self.wrt]) \
                if self.wrt else np.zeros(self.k, bool)
        for name in order:
            res = self._fallback(name, need)
            if res is None or res.values is None:
                continue
            values = res.values
            if name == "symbolic" and any(d.any() for d in self.distrust.values()):
                values = {v: np.where(self.distrust.get(v, False), np.nan, g) for v, g in values.items()}
            candidates.append((name, values, res.estimate if REGISTRY[name].by_estimate else None,
                               res.bad))
            est = res.estimate if REGISTRY[name].by_estimate else None
            got = judge.usable_everywhere(self.wrt, self.k, values, est, res.bad, self.eps)
            need = need & ~got
        # σ from the best value known per cell: exact, else the first finite candidate
        guess: dict[str, np.ndarray] = {}
        for part in judge.row_blocks(len(self.wrt), self.k):
            names = self.wrt[part]
            g = judge.stack_rows([exact[0][v][0] for v in names] if exact else [None] * len(names),
                                 self.k, np.nan, np.float64)
            for _, vals, _, _ in candidates:
                if vals is not None:
                    g = np.where(np.isfinite(g), g,
                                 judge.stack_rows([vals[v] for v in names], self.k, np.nan, np.float64))
            guess.update(zip(names, g))
        self.sigma = judge.scale(guess, self.f, self.points)
        if exact is not None:
            none = ("no reference: the exact derivative is not finite here and no finite-difference "
                    "fallback could run")
        else:
            sympy = ("SymPy was skipped" if self.sym is None or self.sym.gradient is None
                     else "SymPy's value is not finite here")
            fds = [n for n in ("complex", "richardson") if REGISTRY[n].too_big(
                len(self.graph), len(self.wrt), self.k)]
            fd = ("the finite differences are past their size limit" if len(fds) == 2
                  else "no finite difference gave a reliable value")
            none = f"no reference: {sympy}, and {fd}"
        return judge.assemble(self.wrt, self.k, exact[0] if exact else None,
                              exact[1] if exact else None, candidates, self.eps, self.reasons,
                              self.sigma, none)

    # ---------------------------------------------------------------- what f does
    def _specials(self, refs: dict[str, Reference]) -> dict[str, Special]:
        k, kink = self.k, self.kink
        specials: dict[str, Special] = {v: Special() for v in self.wrt}
        nondiff = kink.nondifferentiable()
        on = kink.on_kink
        for v in self.wrt:
            sp = specials[v]
            if v in kink.one_sided:
                left, right = kink.one_sided[v]
                corner = nondiff.get(v, np.zeros(k, dtype=bool))
                sp.corner, sp.interval = corner.copy(), (left.copy(), right.copy())
                sp.agree = on & ~corner
                sp.agreed = right
                if sp.agree.any():
                    sp.convention_why = np.full(k, -1, dtype=np.int32)
                    for p in np.flatnonzero(sp.agree)[:1000]:
                        sp.convention_why[p] = self.reasons.add(
                            f"an AD convention at the switching point of {kink.where(int(p))}: "
                            f"f is differentiable here, f′ = {right[p]:.6g} from both sides")
            if v in kink.nearest:
                distance, node = kink.nearest[v]
                sp.straddle = distance
                sp.straddle_why = np.full(k, -1, dtype=np.int32)
                for i in np.unique(node):
                    sp.straddle_why[node == i] = self.reasons.add(
                        f"its step straddles a kink of {self.texts[int(i)]}")
        self._probe(refs, specials)
        return specials

    def _probe(self, refs: dict[str, Reference], specials: dict[str, Special]) -> None:
        """Cells with no finite reference, or where an AD method is not finite, are classified
        by one-sided difference quotients (probe.py)."""
        ad_bad: dict[str, np.ndarray] = {}  # the variables where an AD value is not finite
        none = np.zeros(self.k, bool)
        for name, res in self.results.items():
            if REGISTRY[name].kind == "ad" and res.values is not None:
                for part in judge.row_blocks(len(self.wrt), self.k):
                    names = self.wrt[part]
                    g = judge.stack_rows([res.values[v] for v in names], self.k, np.nan, np.float64)
                    # a cell the method left out on purpose (a many-variable check) is no breakdown
                    left_out = judge.stack_rows([res.bad.get(v) for v in names], self.k, False, bool)
                    bad = ~np.isfinite(g) & ~left_out
                    for r in np.flatnonzero(bad.any(axis=1)):
                        ad_bad[names[r]] = ad_bad.get(names[r], none) | bad[r]
        breakdown = self._breakdown(ad_bad)
        # The probe costs 15 evaluations of f per cell: within the finite differences' size
        # limit (cells where the AD broke first, then those without a reference).
        budget = int(FINITE_MAX_WORK // (15 * max(1, len(self.graph))))
        # the variables with a cell to probe, found a block at a time (33,488 variables: a few
        # numpy calls), in order: the budget goes to the first ones, as a loop over all would
        todo_vars: list[str] = []
        # no reference by design (a many-variable check's unsampled variables): probed only
        # where an AD value broke down (15 evaluations a cell would buy 15 more sampled ones)
        unsampled = diagnose.unsampled_variables(self)
        by_design = np.array([v in unsampled for v in self.wrt], dtype=bool)
        for part in judge.row_blocks(len(self.wrt), self.k):
            names = self.wrt[part]
            hi = judge.stack_rows([refs[v].hi for v in names], self.k, np.nan, np.float64)
            broke_rows = judge.stack_rows([ad_bad.get(v) for v in names], self.k, False, bool)
            no_ref = ~np.isfinite(hi) & ~by_design[part, None]
            any_todo = (no_ref | broke_rows).any(axis=1)
            todo_vars += [v for v, t in zip(names, any_todo) if t]
        for v in todo_vars:
            if budget <= 0:
                break  # nothing more can be probed (each variable below would probe no cell)
            ref, sp = refs[v], specials[v]
            broke = ad_bad.get(v, np.zeros(self.k, bool))
            todo = broke if v in unsampled else ~np.isfinite(ref.hi) | broke
            if sp.corner is not None:
                todo &= ~sp.corner
            if ref.overflow is not None:
                todo &= ~ref.overflow  # the exact value is known, only too large for floats
            index = np.concatenate([np.flatnonzero(todo & broke), np.flatnonzero(todo & ~broke)])
            index = np.sort(index[:max(0, min(budget, 10_000))])
            budget -= len(index)
            if not len(index):
                continue
            p = probe.one_sided(self.graph, self.points, v, index)
            nd = np.zeros(self.k, dtype=bool)
            nd_why = sp.nondiff_why if sp.nondiff_why is not None else np.full(self.k, -1, np.int32)
            for j, cell in enumerate(index):
                kind = p.kind[j]
                bd = breakdown.get((v, int(cell)))
                if kind == "infinite":
                    nd[cell] = True
                    nd_why[cell] = self.reasons.add(
                        "f has an infinite slope here (the one-sided difference quotients grow "
                        "without bound)" + (f"; {bd}" if bd else ""))
                elif kind == "kink":
                    sp.corner = sp.corner if sp.corner is not None else np.zeros(self.k, bool)
                    if sp.interval is None:
                        sp.interval = (np.full(self.k, np.nan), np.full(self.k, np.nan))
                    sp.corner[cell] = True
                    sp.interval[0][cell], sp.interval[1][cell] = p.left[j], p.right[j]
                    nd_why[cell] = self.reasons.add(
                        (bd + "; " if bd else "") + f"f has a corner here: one-sided derivatives "
                        f"{p.left[j]:.6g} and {p.right[j]:.6g}")
                elif kind == "one-sided":
                    nd[cell] = True
                    nd_why[cell] = self.reasons.add(
                        "f is defined on one side of this point only (the edge of its domain)")
                elif kind == "smooth":
                    if not np.isfinite(ref.hi[cell]):
                        ref.hi[cell] = (p.left[j] + p.right[j]) / 2
                        ref.uncertainty[cell] = judge.ESTIMATE_FACTOR * p.estimate[j] + \
                            1e-6 * abs(ref.hi[cell])
                        ref.source[cell] = "one-sided"
                    if bd:
                        for res_name in self.results:
                            if REGISTRY[res_name].kind == "ad":
                                self._ad_note[(res_name, v, int(cell))] = self.reasons.add(
                                    f"{bd}; f is differentiable here (f′ = {ref.hi[cell]:.6g} from "
                                    "both sides), so this is a failure of the chain rule, not of f")
                elif kind == "undefined":
                    ref.why[cell] = self.reasons.add(
                        f"f is undefined on both sides of this point along {v}, so ∂f/∂{v} does not exist")
                else:
                    ref.why[cell] = self.reasons.add(
                        f"no reference: the exact derivative is not finite here and the one-sided "
                        f"difference quotients along {v} do not settle")
            if nd.any():
                sp.nondiff = nd
            sp.nondiff_why = nd_why

    def _breakdown(self, ad_bad: Mapping[str, np.ndarray]) -> dict[tuple[str, int], str]:
        """Where the backward sweep multiplies 0 by ∞ (or ∞ by 0): edge text per (v, point)."""
        out: dict[tuple[str, int], str] = {}
        bad_points = np.zeros(self.k, dtype=bool)
        for b in ad_bad.values():
            bad_points |= b
        index = np.flatnonzero(bad_points)[:1000]
        if not len(index):
            return out
        sub = {v: p[index] for v, p in self.ctx.points.items()}
        values = evaluate(self.graph, sub, self.ctx.dtype)
        found: dict[int, str] = {}
        graph = self.graph

        n = len(index)
        origin: dict[int, str] = {}  # per point: the first step whose partial is infinite
        previous: dict[int, np.ndarray] = {}  # node -> its adjoint so far

        def infinite_step(i: int, j: int, p: int) -> str:
            node = graph.nodes[i]
            arg = float(np.broadcast_to(values[node.args[j]], (n,))[p])
            form = f"{node.op}(u)" if len(node.args) == 1 else f"{node.op}(…) with u = argument {j + 1}"
            return f"{form} at u = {arg:.6g} (in {self.texts[i]})"

        def observe(i: int, j: int, a: int, upstream: Any, partial: Any, contribution: Any,
                    adjoint: Any) -> None:
            up, part = np.broadcast_to(upstream, (n,)), np.broadcast_to(partial, (n,))
            con = np.broadcast_to(contribution, (n,))
            for p in np.flatnonzero(np.isinf(part) & np.isfinite(up) & (up != 0)):
                origin.setdefault(int(p), infinite_step(i, j, int(p)))
            hit = np.isnan(con) & ~np.isnan(up) & ~np.isnan(part)
            for p in np.flatnonzero(hit):
                if int(p) in found:
                    continue
                where = (infinite_step(i, j, int(p)) if np.isinf(part[p])
                         else origin.get(int(p), self.texts[i]))
                found[int(p)] = f"0 · ∞ in {where}: the chain rule breaks down here"
            # ∞ - ∞: two infinite contributions of opposite signs meet where a value branches
            after = np.broadcast_to(adjoint, (n,))
            before = previous.get(a)
            was = np.broadcast_to(before, (n,)) if before is not None else np.zeros(n)
            clash = np.isnan(after) & ~np.isnan(con) & ~np.isnan(was) & np.isinf(con) & np.isinf(was)
            for p in np.flatnonzero(clash):
                found.setdefault(int(p), f"∞ - ∞ where {self.texts[a]} branches (its adjoint gets "
                                         "infinite contributions of both signs): the chain rule breaks "
                                         "down here")
            previous[a] = np.array(after)

        backward(graph, values, self.wrt, observer=observe)
        for v, b in ad_bad.items():
            for j, p in enumerate(index):
                if b[p] and j in found:
                    out[(v, int(p))] = found[j]
        return out

    # ---------------------------------------------------------------- judging
    def run(self) -> None:
        self._ad_note: dict[tuple[str, str, int], int] = {}
        self.diagnostics = []
        refs = self._references()
        specials = self._specials(refs)
        sigma = self.sigma
        self.refs = refs
        for v in self.wrt:
            sp = specials[v]
            if sp.corner is not None and sp.interval is not None:
                self.corner[v] = sp.corner
                self.intervals[v] = sp.interval
        self.reports = {}
        opts = self.opts
        for name in self.names:
            method = REGISTRY[name]
            res = self.results[name]
            rtol_d, atol_d = method.tolerances[opts.dtype]
            rtol = rtol_d if opts.rtol is None else opts.rtol
            by_estimate = method.by_estimate and opts.rtol is None and opts.atol is None
            bad_why = {v: self.reasons.add(w) for v, w in res.why.items()}
            not_run = self.reasons.add(f"could not run: {res.note}") if res.note else -1
            cells = judge.judge_cells(
                name, method.kind, res.values, res.bad, bad_why, res.estimate, res.step, refs,
                specials, sigma, rtol, opts.atol, by_estimate, self.eps, self.reasons, not_run,
                self.rounding if method.kind != "finite-difference" else None)
            for (m, v, p), why in self._ad_note.items():
                if m == name:
                    cells.why[v][p] = why
            self.reports[name] = MethodReport(
                name, method.kind, res.values, res.note, res.step, res.estimate, cells,
                self.reasons.texts, "estimate" if by_estimate else "tolerance", rtol,
                opts.atol if opts.atol is not None else rtol, opts.atol is None)
        self._oracles_are_witnesses(refs)
        diagnose.describe_reference(self, refs, EXACT_ALL_POINTS)
        diagnose.diagnose(self, specials)

    def _oracles_are_witnesses(self, refs: dict[str, Reference]) -> None:
        """SymPy's float64 value and the finite differences are witnesses, not the code under
        test. Against the exact reference:
        - SymPy's float64 value is the exact reference's own formula evaluated in float64, so a
          disagreement is float64 trouble in that evaluation (an underflow, cancellation), never
          a wrong derivative: the cell is unreliable, with that reason;
        - a finite difference that disagrees while every AD method agrees at that cell has met
          what its error model cannot see (a kink or pole inside its step, a step longer than
          the scale on which f changes): unreliable, with that reason, not a failure of f′."""
        ad = [m.cells.blocks(self.wrt)[0] for n, m in self.reports.items()
              if REGISTRY[n].kind == "ad" and m.cells is not None]
        for name, m in self.reports.items():
            kind = REGISTRY[name].kind
            if kind in ("ad", "claim") or m.cells is None:
                continue
            codes, whys = m.cells.blocks(self.wrt)
            # a block of variables at a time (all of them at one point): rows of the cells
            for part in judge.row_blocks(len(self.wrt), self.k):
                c, w = codes[part], whys[part]
                if not (c == judge.FAIL).any():
                    continue
                names = self.wrt[part]
                exact = judge.stack_rows([refs[v].source == "exact" for v in names], self.k, False, bool)
                agree = np.full(c.shape, bool(ad))
                for a in ad:
                    agree &= a[part] == judge.PASS
                if kind == "symbolic":
                    off = (c == judge.FAIL) & exact
                    why = ("SymPy's float64 value of its own formula is off here (float64 under- or "
                           "overflow, or cancellation in that formula); the exact value is the same "
                           "formula at 30 digits")
                    also = (c == judge.FAIL) & ~exact & agree
                    if also.any():
                        c[also] = judge.UNRELIABLE
                        w[also] = self.reasons.add(
                            "SymPy's float64 value disagrees with the reference while the AD methods "
                            "agree with it (float64 trouble in SymPy's formula, most likely)")
                else:
                    # f′ not determined in floats here (rounding decides it): no finite
                    # difference can witness it either
                    undetermined = np.isinf(judge.stack_rows([self.rounding[v] for v in names], self.k, 0.0,
                                                             np.float64)) & self.rounded
                    off = (c == judge.FAIL) & exact & (agree | undetermined)
                    why = ("it disagrees with the exact derivative while the AD methods agree with it: "
                           "something inside its step (a kink, a pole, a scale shorter than the step) "
                           "escapes its error estimate")
                if off.any():
                    c[off] = judge.UNRELIABLE
                    w[off] = self.reasons.add(why)

    def add_rounding(self) -> bool:
        """Measure the derivative's float rounding response at the points where an AD or
        symbolic cell fails and it is not known yet; True if there were any."""
        failing = np.zeros(self.k, dtype=bool)
        for name, m in self.reports.items():
            if REGISTRY[name].kind != "finite-difference" and m.cells is not None:
                codes = m.cells.blocks(self.wrt)[0]
                for part in judge.row_blocks(len(self.wrt), self.k):
                    failing |= (codes[part] == judge.FAIL).any(axis=0)
        todo = np.flatnonzero(failing & ~self.rounded)
        if not len(todo):
            return False
        sub = {v: p[todo] for v, p in self.ctx.points.items()}
        response = reverse.rounding_response(self.graph, sub, self.wrt, self.ctx.dtype)
        for v in self.wrt:
            self.rounding[v][todo] = response[v]
        self.rounded[todo] = True
        return True

    def distrust_float_reference(self) -> bool:
        """Where SymPy's float64 value is the reference and an AD cell still fails, ask a
        finite difference: if one is reliable there and disagrees with SymPy's value, it is
        SymPy's float64 evaluation that is off (an underflow, an overflow, cancellation in its
        formula), so that cell falls back to the finite difference. True if any did."""
        if not self.refs:
            return False
        changed = False
        ad = [m.cells.blocks(self.wrt)[0] for name, m in self.reports.items()
              if REGISTRY[name].kind == "ad" and m.cells is not None]
        for v in self._failing_variables(ad):
            ref = self.refs[v]
            failing = np.zeros(self.k, dtype=bool)
            for name, m in self.reports.items():
                if REGISTRY[name].kind == "ad" and m.cells is not None:
                    failing |= m.cells.code[v] == judge.FAIL
            suspect = failing & (ref.source == "symbolic") & ~self.distrust.setdefault(
                v, np.zeros(self.k, dtype=bool))
            if not suspect.any():
                continue
            for name in ("complex", "richardson"):
                res = self._fallback(name, suspect)
                if res is None or res.values is None or res.estimate is None:
                    continue
                fd = np.asarray(res.values[v], dtype=np.float64)
                est = np.asarray(res.estimate[v], dtype=np.float64)
                with np.errstate(all="ignore"):
                    reliable = np.isfinite(fd) & np.isfinite(est) & ~np.asarray(res.bad.get(v, False)) & (
                        judge.ESTIMATE_FACTOR * est <= judge.decide_threshold(self.eps) * np.abs(fd))
                    off = np.abs(fd - ref.hi) > judge.ESTIMATE_FACTOR * est + 1e-9 * np.abs(fd)
                hit = suspect & reliable & off
                if hit.any():
                    self.distrust[v] |= hit
                    sym = self.results.get("symbolic")
                    if sym is not None and sym.values is not None:
                        tiny = np.abs(sym.values[v]) < np.finfo(np.float64).tiny
                        under = hit & tiny
                        if under.any():
                            sym.bad[v] = np.asarray(sym.bad.get(v, np.zeros(self.k, bool))) | under
                            sym.why.setdefault(v, "SymPy's float64 evaluation underflows here (an "
                                               "intermediate of its formula overflows or underflows), "
                                               "though the derivative is not 0")
                    changed = True
                suspect &= ~hit & ~reliable
                if not suspect.any():
                    break
        return changed

    def _failing_variables(self, codes: Sequence[np.ndarray]) -> list[str]:
        """The variables, in order, with a failing cell in any of these (variables, K) code
        arrays (a block of variables at a time, not a loop over 33,488 of them)."""
        hit = np.zeros(len(self.wrt), dtype=bool)
        for c in codes:
            for part in judge.row_blocks(len(self.wrt), self.k):
                hit[part] |= (c[part] == judge.FAIL).any(axis=1)
        return [self.wrt[i] for i in np.flatnonzero(hit)]

    def needs_more_exact(self) -> bool:
        return (len(self.requested) < EXACT_FOCUS * 8 and self.k > EXACT_ALL_POINTS
                and self.job is not None and self.sym is not None
                and self.sym.gradient is not None and not self.job.broken
                and self.opts.reference in ("auto", "exact"))

    def more_exact(self) -> bool:
        """Past EXACT_ALL_POINTS: the exact derivative at the failing and the worst points
        (the worst first: largest error, nan and inf before everything)."""
        assert self.job is not None
        chosen: list[int] = []
        for m in self.reports.values():
            if m.cells is None:
                continue
            for v in self.wrt:
                err = m.cells.error[v]
                rank = np.where(np.isfinite(err), err, np.inf)
                fails = np.flatnonzero(m.cells.code[v] == judge.FAIL)
                worst_fails = fails[np.argsort(-rank[fails], kind="stable")][:EXACT_FOCUS]
                chosen += [int(p) for p in worst_fails]
                judged = np.flatnonzero(np.isin(m.cells.code[v], (judge.PASS, judge.FAIL)))
                if len(judged):
                    chosen.append(int(judged[np.argmax(rank[judged])]))
        chosen = [p for p in dict.fromkeys(chosen) if p not in self.requested][: EXACT_FOCUS * 4]
        if not chosen:
            return False
        self.requested.update(chosen)
        sub = {v: np.asarray(p, dtype=np.float64)[chosen] for v, p in self.points.items()}
        self.sym = self.job.more_exact(sub, self.opts.exact_digits, chosen, self.deadline)
        return True

    # ---------------------------------------------------------------- words


def _judge_directions(results: Mapping[str, MethodResult], wrt: Sequence[str],
                      reports: Mapping[str, MethodReport]) -> list[dict[str, Any]]:
    """A many-variable check (methods.sampled): reverse mode's ∇f·d along each random direction d
    against the complex step's (no cancellation: its error is rounding-sized), else the
    central difference's (within 4× its own error estimate); forward mode and the other finite
    difference are judged against the same reference. The scale of ∇f·d is Σ|∂f/∂vᵢ·dᵢ|, so a
    direction whose terms cancel is judged as strictly as the terms themselves."""
    rev = results.get("reverse")
    with_dirs = {n: r for n, r in results.items() if r.directional is not None and r.directions is not None}
    if rev is None or rev.values is None or not with_dirs:
        return []
    ref_name = next((n for n in ("complex", "central") if n in with_dirs), None)
    if ref_name is None:
        return []
    ref = with_dirs[ref_name]
    d = ref.directions
    assert d is not None and ref.directional is not None
    g = np.stack([np.asarray(rev.values[v], dtype=np.float64) for v in wrt], axis=1)  # (K, n)
    with np.errstate(all="ignore"):
        along = g @ d.T  # (K, k)
        scale = np.abs(g) @ np.abs(d).T
    ref_bad = ref.directional_bad if ref.directional_bad is not None else np.zeros(along.shape, bool)
    uncertainty = (judge.ESTIMATE_FACTOR * ref.directional_estimate
                   if ref_name == "central" and ref.directional_estimate is not None else 0.0)
    out = []
    candidates: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | float]] = [
        ("reverse", along, np.zeros(along.shape, bool), 0.0)]
    for name, r in with_dirs.items():
        if name == ref_name:
            continue
        own = (judge.ESTIMATE_FACTOR * r.directional_estimate
               if r.directional_estimate is not None and REGISTRY[name].kind == "finite-difference" else 0.0)
        bad = r.directional_bad if r.directional_bad is not None else np.zeros(along.shape, bool)
        candidates.append((name, r.directional, bad, own))
    for name, value, bad, own in candidates:
        rtol = reports[name].rtol if name in reports else 1e-9
        with np.errstate(all="ignore"):
            gap = np.abs(value - ref.directional)
            allowed = rtol * scale + uncertainty + own + 8 * np.finfo(np.float64).eps * scale
            judged = ~bad & ~ref_bad & np.isfinite(ref.directional) & np.isfinite(allowed)
            failing = judged & ~(gap <= allowed)
        worst = None
        if failing.any():
            k, j = np.unravel_index(int(np.argmax(np.where(failing, gap, -1.0))), failing.shape)
            worst = {"direction": int(j) + 1, "point": int(k), "value": float(value[k, j]),
                     "reference": float(ref.directional[k, j])}
        out.append({"method": name, "reference": ref_name, "checked": ref.checked,
                    "directions": int(d.shape[0]), "passed": int((judged & ~failing).sum()),
                    "failed": int(failing.sum()), "not_judged": int((~judged).sum()), "worst": worst})
    return out


def _step_partials(graph: Graph) -> list[str]:
    """A program's derivative step by step, as the lecture writes it (∂J/∂u = -sin(u)): each
    step's local partials, from the trace's one table of partial formulas."""
    from .trace import partial_text, step_names

    names = step_names(graph, graph.output)
    out = []
    for i, node in enumerate(graph.nodes[: graph.output + 1]):
        if not node.args or i not in graph.labels and i != graph.output:
            continue
        for j, a in enumerate(node.args):
            if graph.nodes[a].op == "const":
                continue
            out.append(f"∂{names.name[i]}/∂{names.name[a]} = {partial_text(node.op, j, names.args[i])}")
    return out


def _symbolic_too_big(graph: Graph, wrt: Sequence[str]) -> str | None:
    """Why SymPy would not finish within its budget on this graph, or None (benchmarks/
    sympy_scaling.py measured where it takes its whole 10 s)."""
    if len(graph) > SYMBOLIC_MAX_NODES:
        return f"the graph has {len(graph):,} nodes (over {SYMBOLIC_MAX_NODES:,})"
    depth = graph.depth()
    work = len(graph) * max(depth, len(wrt), 1)
    if work > SYMBOLIC_MAX_WORK:
        return (f"the graph has {len(graph):,} nodes, depth {depth:,} and {len(wrt):,} variables (nodes × "
                f"max(depth, variables) = {work:,}, over {SYMBOLIC_MAX_WORK:,})")
    return None


def _share(fraction: float) -> str:
    return "under 1%" if fraction < 0.01 else f"about {fraction:.0%}"


def _proved_claims(state: _Judging, proofs: Mapping[str, str]) -> None:
    """A claim SymPy proves equal to ∂f/∂v is right as a formula: where its float64 value is
    off, that is rounding in the formula as written, so those cells are unreliable (with why),
    not a failure of the claim."""
    col = state.reports["claim"]
    if col.cells is None or col.values is None:
        return
    for v, proof in proofs.items():
        if proof == "proved" and v in col.cells.code:
            # where the claim is nan or inf it is undefined (a removable singularity, say): that
            # is --where-undefined's business, not rounding
            failing = (col.cells.code[v] == judge.FAIL) & np.isfinite(col.values[v])
            if failing.any():
                col.cells.code[v][failing] = judge.UNRELIABLE
                col.cells.why[v][failing] = state.reasons.add(
                    "SymPy proves the claim equal to the derivative; its float64 value loses accuracy here "
                    "(rounding in the formula as written)")


def _accept_undefined(graph: Graph, claim_graphs: Mapping[str, Graph], points: Mapping[str, np.ndarray],
                      state: _Judging, wrt: Sequence[str], policy: str) -> dict[str, claims.Undefined]:
    """Cells where a claim is undefined but ∂f/∂v is not; those the policy accepts become
    `undefined-accepted` cells with the reason, so the verdict follows."""
    col = state.reports["claim"]
    if col.values is None or col.cells is None:
        return {}
    failing = {v: col.cells.code[v] == judge.FAIL for v in claim_graphs if v in wrt}
    found = claims.undefined_cells(graph, {v: g for v, g in claim_graphs.items() if v in failing}, points,
                                   col.values, {v: r.hi for v, r in state.refs.items()}, failing, policy)
    for v, und in found.items():
        if und.accepted.any():
            why = state.reasons.add(f"the claim is undefined here, where ∂f/∂{v} is not; accepted "
                                    f"(--where-undefined {policy})")
            col.cells.code[v][und.accepted] = judge.UNDEFINED
            col.cells.why[v][und.accepted] = why
    return found


def _double_double(text: str) -> tuple[float, float]:
    """A decimal string as hi + lo, two float64s whose sum carries ~32 significant digits."""
    if text in ("nan", "inf", "-inf"):
        return float(text), 0.0
    with mpmath.workdps(50):
        x = mpmath.mpf(text)
        hi = float(x)
        if not math.isfinite(hi):
            return hi, 0.0
        return hi, float(x - mpmath.mpf(hi))


def _verdict(methods: Sequence[MethodReport], wrt: Sequence[str], strict: bool) -> str:
    judged = False
    for m in methods:
        if m.cells is None or not m.ran:
            continue
        c, _ = m.cells.blocks(wrt)
        if np.any(c == judge.FAIL) or (strict and np.isin(c, judge.LENIENT).any()):
            return "fail"
        judged = judged or bool(np.isin(c, judge.JUDGED).any())
    return "pass" if judged else "inconclusive"


def _inconclusive_why(methods: Sequence[MethodReport], wrt: Sequence[str]) -> str:
    if not wrt:
        return "nothing to check: the formula has no variables."
    if not any(m.ran for m in methods):
        notes = "; ".join(f"{m.name}: {m.note}" for m in methods)
        return f"no method could run ({notes}), so nothing was checked."
    return ("no value could be judged: every cell is unreliable, not run, or has no reference "
            "(see the notes above), so nothing was checked.")


def _refuse_undefined(graph: Graph, values: Sequence[np.ndarray], f: np.ndarray,
                      points: Mapping[str, np.ndarray], diagnostics: list[Diagnostic],
                      dtype: type = np.float64) -> None:
    k = len(f)
    bad = np.flatnonzero(~np.isfinite(f))
    if len(bad):
        p = int(bad[0])
        trouble = first_trouble(graph, at_point(values, p, (k,)))
        what = describe_trouble(graph, trouble) if trouble is not None else "f is not finite"
        where = "at this point" if k == 1 else \
            f"at point {p + 1} of {k} (" + ",".join(f"{v}={float(a[p]):g}" for v, a in points.items()) + ")"
        in_dtype = ""
        if dtype is not np.float64:
            top = float(np.finfo(dtype).max)
            in_dtype = f" in {np.dtype(dtype).name} (--dtype; its range ends near {top:.1e})"
        raise GradcheckError("undefined", f"the formula is not finite {where}{in_dtype}: {what}.")
    if getattr(values, "floats", None) is not None:
        return  # one point, walked with Python floats: the walk fell back to numpy on any nan or inf
    for i, node in enumerate(graph.nodes):
        v = values[i]
        if node.args and not np.all(np.isfinite(v)):
            trouble = first_trouble(graph, at_point(values, 0, (k,)))
            if trouble is None:
                bad_p = int(np.flatnonzero(~np.isfinite(np.broadcast_to(v, (k,))))[0])
                trouble = first_trouble(graph, at_point(values, bad_p, (k,)))
            if trouble is not None:
                diagnostics.append(Diagnostic(
                    "overflow",
                    f"f is finite here but a step of it is not: {describe_trouble(graph, trouble)}. "
                    "Derivatives through that step may be nan or inf."))
            return
