"""Property-based tests: the four derivative methods agree on smooth formulas, reverse mode
matches a 30-digit reference, the parser and `check` fail only with GradcheckError, and the
node printer's output re-parses to the same function.

Tolerances are derived from error models, not tuned (see `exact_tolerance` and `central_bound`).

Open bugs (each pinned by a plain `test_regression_*` test at the end of this file, failing
until fixed) are kept out of the properties while EXCLUDE_KNOWN_BUGS is True, so a property
failure means something new. Set it to False to let the properties hunt for them as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
import sympy as sp  # imported up front: the forked symbolic worker then starts with it loaded
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from strategies import (
    any_text,
    near_valid_formulas,
    points,
    smooth_formulas,
    valid_formulas,
)

from gradcheck_cli import GradcheckError, Graph, Report, check, finite, forward, parse, reverse
from gradcheck_cli.explain import node_texts
from gradcheck_cli.graph import evaluate
from gradcheck_cli.rules import RULES
from gradcheck_cli.symbolic import to_sympy

EXCLUDE_KNOWN_BUGS = False

EPS = float(np.finfo(np.float64).eps)

# --------------------------------------------------------------------------------------------
# Error models
# --------------------------------------------------------------------------------------------


def _arrays(point: Mapping[str, float]) -> dict[str, np.ndarray]:
    return {k: np.asarray(float(v), dtype=np.float64) for k, v in point.items()}


def abs_adjoints(
    graph: Graph, values: Sequence[np.ndarray], *, floor_one: bool, through_constants: bool
) -> list[float]:
    """For every node, the sum over all paths from it to the output of the product of
    g(|local partial|) along the path, g(p) = max(1, p) when `floor_one`, else p. This is the
    backward sweep of reverse mode with every partial replaced by its absolute value, so it
    bounds |adjoint| and measures the size of the terms reverse/forward mode add up.
    Without `through_constants`, edges into subexpressions free of variables are skipped."""
    needs = graph.depends_on(graph.variables)
    adj = [0.0] * len(graph.nodes)
    adj[graph.output] = 1.0
    with np.errstate(all="ignore"):
        for i in range(graph.output, -1, -1):
            node = graph.nodes[i]
            if adj[i] == 0.0 or not node.args:
                continue
            args = tuple(values[a] for a in node.args)
            rule = RULES[node.op]
            for j, a in enumerate(node.args):
                if not (needs[a] or through_constants):
                    continue
                p = abs(float(rule.partial(j, values[i], args)))
                if not math.isfinite(p):  # e.g. d(a**b)/db = log(a) for a constant b, a < 0
                    p = math.inf if needs[a] else 0.0
                adj[a] += adj[i] * (max(1.0, p) if floor_one else p)
    return adj


def derivative_scales(graph: Graph, values: Sequence[np.ndarray]) -> dict[str, float]:
    """Per variable, the magnitude S against which rounding in a derivative is measured.

    Reverse, forward and symbolic all add up one term per path (products of local partials)
    in different orders and groupings, so their results differ by about n*eps*sum|terms| (n
    the path length), which is arbitrarily larger than eps*|result| when terms cancel
    (sin(x)**2 + cos(x)**2 has derivative 0 = sum of two terms of size |sin 2x|). Some partials
    are themselves computed with cancellation (tanh' = 1 - o*o, sigmoid' = o*(1 - o),
    swish' = s*(1 + x*(1 - s))): their error is O(eps) absolute, not relative. Taking
    max(1, |partial|) on each edge covers both: S = sum over paths of prod max(1, |partial|)."""
    adj = abs_adjoints(graph, values, floor_one=True, through_constants=False)
    return {v: adj[i] for v, i in graph.var_nodes.items()}


def exact_tolerance(a: float, b: float, scale: float) -> float:
    """Two exact methods agree when |a - b| <= 1e-10*max(|a|, |b|) + 1e-12*S.

    1e-10 relative is ~5e5 ulps: ample for the few dozen roundings of a formula of this size
    when nothing cancels. 1e-12*S is ~4500*eps*S: covers n*eps*S for paths up to ~100 long
    (formulas here are at most ~15 deep) with a wide margin, and nothing looser."""
    return 1e-10 * max(abs(a), abs(b)) + 1e-12 * scale


def rounding_bound(graph: Graph, values: Sequence[np.ndarray], *, through_constants: bool) -> float:
    """First-order bound on the rounding error of evaluating f in float64:
    |f_computed - f| <~ sum_i |df/du_i| * |error in u_i|, and each operation errs by at most a
    few ulps of its result (4*eps covers numpy's transcendental functions and erf)."""
    adj = abs_adjoints(graph, values, floor_one=False, through_constants=through_constants)
    return 4 * EPS * sum(
        adj[i] * abs(float(values[i])) for i, node in enumerate(graph.nodes) if node.args
    )


def central_bound(
    graph: Graph, point: Mapping[str, float], name: str, h: float, reference: float, scale: float
) -> float:
    """Error model of the centred difference (f(x+h) - f(x-h)) / 2h with the step h it used:

    truncation  h**2/6 * |f'''(x)|, with f''' estimated by a second difference of the exact
                (reverse-mode) derivative with step k = 1e-3*max(1, |x|) (its own O(k**2) error
                and its rounding noise, ~1e-12*S/k**2 * h**2, are negligible);
    rounding    (|e(x+h)| + |e(x-h)|) / 2h <= E/h with E the rounding bound of f at x (errors
                of parts of f that do not depend on x are identical at x+-h and cancel);
    and the error of the reference itself. A safety factor 10 covers the bounds' constants."""
    x = float(point[name])
    k = 1e-3 * max(1.0, abs(x))
    g = [float(reverse.gradient(graph, _arrays({**point, name: x + s * k}), [name])[name])
         for s in (-1, 0, 1)]
    third = abs(g[2] - 2 * g[1] + g[0]) / (k * k)
    values = evaluate(graph, _arrays(point))
    rounding = rounding_bound(graph, values, through_constants=False)
    return 10 * (h * h / 6 * third + rounding / h) + exact_tolerance(reference, reference, scale)


def _power_of_zero_product(graph: Graph, point: Mapping[str, float]) -> bool:
    """Whether some power's base is a product or quotient that is exactly 0 at the point: there
    SymPy's derivative of the unevaluated power divides by the base (0/0 = nan), see
    test_regression_symbolic_power_of_product_at_zero."""
    values = evaluate(graph, _arrays(point))
    return any(
        node.op == "pow" and graph.nodes[node.args[0]].op in ("mul", "div")
        and float(values[node.args[0]]) == 0.0
        for node in graph.nodes
    )


# --------------------------------------------------------------------------------------------
# 1. Reverse, forward, symbolic and central agree on smooth formulas
# --------------------------------------------------------------------------------------------

SMOOTH = smooth_formulas(zero_exponent=not EXCLUDE_KNOWN_BUGS)


@settings(max_examples=200, deadline=None)
@given(SMOOTH)
def test_reverse_forward_and_central_agree(case: tuple[str, dict[str, float]]) -> None:
    """The cheap methods, called directly, on many formulas (no SymPy)."""
    text, point = case
    graph = parse(text)
    arrays = _arrays(point)
    wrt = list(graph.variables)
    rev = reverse.gradient(graph, arrays, wrt)
    fwd = forward.gradient(graph, arrays, wrt)
    fd = finite.central(graph, arrays, wrt)
    assert fd.gradient is not None, fd.note
    scales = derivative_scales(graph, evaluate(graph, arrays))
    for v in wrt:
        r, f, c = float(rev[v]), float(fwd[v]), float(fd.gradient[v])
        assert abs(r - f) <= exact_tolerance(r, f, scales[v]), (v, r, f)
        bound = central_bound(graph, point, v, float(fd.step[v]), r, scales[v])
        assert abs(c - r) <= bound, (v, c, r, bound)


@settings(max_examples=20, deadline=None)
@given(SMOOTH)
def test_check_methods_agree_and_report_ok(case: tuple[str, dict[str, float]]) -> None:
    """All four methods through `check` (SymPy included), and its verdict: on a smooth formula
    at a point inside every domain, nothing may fail (check judges central differences by
    their own error estimate, so a formula that bends fast is no excuse either)."""
    text, point = case
    graph = parse(text)
    if EXCLUDE_KNOWN_BUGS:
        assume(not _power_of_zero_product(graph, point))
    report = check(text, point)
    scales = derivative_scales(graph, evaluate(graph, _arrays(point)))
    grads = {name: report.method(name).gradient for name in ("reverse", "forward", "symbolic", "central")}
    assert all(g is not None for g in grads.values()), [(m.name, m.note) for m in report.methods]
    central = report.method("central")
    for v in graph.variables:
        exact = [grads[name][v] for name in ("reverse", "forward", "symbolic")]
        for a in exact:
            for b in exact:
                assert abs(a - b) <= exact_tolerance(a, b, scales[v]), (v, exact)
        bound = central_bound(graph, point, v, central.step[v], exact[0], scales[v])
        assert abs(grads["central"][v] - exact[0]) <= bound, (v, grads["central"][v], exact[0], bound)
    assert report.ok, (report.diagnostics, [(m.name, m.error, m.passed) for m in report.methods])


# --------------------------------------------------------------------------------------------
# 2. Reverse mode against an independent 30-digit reference (SymPy diff + mpmath evalf)
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(SMOOTH)
def test_reverse_matches_30_digit_reference(case: tuple[str, dict[str, float]]) -> None:
    text, point = case
    graph = parse(text)
    if EXCLUDE_KNOWN_BUGS:
        assume(not _power_of_zero_product(graph, point))  # the reference would be nan
    symbols = {v: sp.Symbol(v, real=True) for v in graph.variables}
    expr = to_sympy(graph, symbols)
    # The point exactly as the float methods see it: binary rationals, no decimal rounding.
    subs = {symbols[v]: sp.Rational(*float(point[v]).as_integer_ratio()) for v in graph.variables}
    arrays = _arrays(point)
    rev = reverse.gradient(graph, arrays, list(graph.variables))
    scales = derivative_scales(graph, evaluate(graph, arrays))
    for v in graph.variables:
        ref = expr.diff(symbols[v]).evalf(30, subs=subs)
        assert ref.is_real and ref.is_finite, (v, ref)
        got = float(rev[v])
        err = abs(sp.Float(got, 30) - ref)
        # 1e-9 relative: one float64 method against the truth, plus the absolute rounding
        # floor justified in derivative_scales (the truth may be 0 where terms cancel).
        assert err <= 1e-9 * abs(ref) + 1e-12 * scales[v], (v, got, ref)


# --------------------------------------------------------------------------------------------
# 3. Parser and check robustness: a Graph/Report or a GradcheckError, nothing else
# --------------------------------------------------------------------------------------------

def assert_parses_or_gradcheck_error(text: str) -> Graph | None:
    """parse(text) returns a Graph of an ASCII text, or raises a well-formed GradcheckError."""
    try:
        graph = parse(text)
    except GradcheckError as exc:
        assert isinstance(exc.kind, str) and exc.kind
        assert isinstance(exc.message, str) and exc.message
        if exc.column is not None:
            assert exc.source == text
            assert 1 <= exc.column <= len(text) + 1, (exc.column, len(text))
            assert exc.caret() is not None
        return None
    assert isinstance(graph, Graph)
    # The grammar is an ASCII whitelist ("formulas are plain ASCII"); see
    # test_regression_unicode_digits for the hole this found.
    assert text.isascii(), repr(text)
    return graph


@settings(max_examples=300, deadline=None)
@given(any_text())
def test_parse_any_text_gives_graph_or_gradcheck_error(text: str) -> None:
    assert_parses_or_gradcheck_error(text)


@settings(max_examples=200, deadline=None)
@given(near_valid_formulas())
def test_parse_near_valid_gives_graph_or_gradcheck_error(text: str) -> None:
    assert_parses_or_gradcheck_error(text)


@settings(max_examples=100, deadline=None)
@given(valid_formulas())
def test_valid_formulas_parse(text: str) -> None:
    """The generator's grammar and the parser's agree: valid text parses."""
    assert isinstance(parse(text), Graph)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_check_gives_report_or_gradcheck_error(data: st.DataObject) -> None:
    text = data.draw(st.one_of(valid_formulas(), valid_formulas(max_depth=2), near_valid_formulas(),
                               any_text()), label="text")
    graph = assert_parses_or_gradcheck_error(text)
    if graph is None:
        event("text does not parse")
        return
    point = data.draw(points(graph.variables), label="point")
    try:
        # A short SymPy budget: the property is about what check() raises, and the budget's
        # own way out (a note, not an exception) is part of it.
        report = check(text, point, symbolic_timeout=5.0)
    except GradcheckError as exc:
        assert exc.kind and exc.message
        event(f"GradcheckError {exc.kind}")
        return
    event(f"Report ok={report.ok}")
    assert isinstance(report, Report)
    assert isinstance(report.ok, bool)
    assert set(report.point) == set(graph.variables)
    assert {m.name for m in report.methods} <= {"reverse", "forward", "symbolic", "central"}


# --------------------------------------------------------------------------------------------
# 4. The node printer: its text re-parses to the same function
# --------------------------------------------------------------------------------------------


def _printed(graph: Graph) -> str:
    return node_texts(graph, max_len=10**6)[graph.output]


@settings(max_examples=150, deadline=None)
@given(smooth_formulas(long_constants=not EXCLUDE_KNOWN_BUGS, zero_exponent=not EXCLUDE_KNOWN_BUGS))
def test_printed_formula_reparses_to_same_value(case: tuple[str, dict[str, float]]) -> None:
    text, point = case
    graph = parse(text)
    printed = _printed(graph)
    again = parse(printed)
    assert again.variables == graph.variables
    arrays = _arrays(point)
    v1, v2 = evaluate(graph, arrays), evaluate(again, arrays)
    f1, f2 = float(v1[graph.output]), float(v2[again.output])
    # The printer drops parentheses around associative operands (a + (b + c) prints as
    # a + b + c), so the re-parsed graph may round differently, within both rounding bounds.
    tol = rounding_bound(graph, v1, through_constants=True) + rounding_bound(
        again, v2, through_constants=True)
    assert abs(f1 - f2) <= tol, (printed, f1, f2, tol)
    # Printing is a fixpoint: printing the re-parsed graph gives the same text.
    assert _printed(again) == printed


@settings(max_examples=150, deadline=None)
@given(valid_formulas(long_constants=not EXCLUDE_KNOWN_BUGS))
def test_printed_valid_formula_reparses(text: str) -> None:
    """Over the whole grammar (non-smooth functions, n-ary max/min, optional arguments,
    signs): the printed text parses again, to a formula over the same variables."""
    try:
        graph = parse(text)
    except GradcheckError:
        return
    printed = _printed(graph)
    again = parse(printed)
    assert again.variables == graph.variables
    assert _printed(again) == printed


# --------------------------------------------------------------------------------------------
# Regression tests for bugs the properties found (plain tests: a failing one is an open bug)
# --------------------------------------------------------------------------------------------


def test_regression_literal_beyond_float_range() -> None:
    """parse("1e309") raised OverflowError from float(Fraction) instead of GradcheckError (the
    range check only refused exponents beyond 400). Fixed upstream in 2482ade."""
    with pytest.raises(GradcheckError) as info:
        parse("1e309")
    assert info.value.kind == "bad-number"


def test_regression_literal_with_long_exponent() -> None:
    """An exponent with more than 4300 digits made int() raise ValueError (Python's
    int_max_str_digits), not a GradcheckError: the length check added in 2482ade stripped
    leading zeros before counting, so 1e000...0001 still reached int(). Fixed upstream in
    15a6b71."""
    with pytest.raises(GradcheckError):
        parse("1e" + "0" * 4300 + "1")


def test_regression_unicode_digits() -> None:
    """The tokenizer's \\d matched any Unicode decimal digit, so fullwidth or Arabic-Indic
    digits were silently read as numbers, although formulas are plain ASCII. Fixed upstream
    in 2482ade."""
    with pytest.raises(GradcheckError) as info:
        parse("x*\uff13")  # FULLWIDTH DIGIT THREE
    assert info.value.kind == "syntax"


def test_regression_zero_power_derivative_at_zero() -> None:
    """d/dx x**0 = 0, but the pow rule b*a**(b-1) gives 0*inf = nan at x = 0 in both AD modes,
    so check() reports a failure on a correct formula."""
    report = check("x**0", {"x": 0.0})
    assert report.method("reverse").gradient == {"x": 0.0}
    assert report.method("forward").gradient == {"x": 0.0}
    assert report.ok


def test_regression_printer_long_decimal_constant() -> None:
    """A literal that is not exactly a float and has a repr of 18+ characters (any 17+ digit
    decimal, even a float's own repr such as 0.10000000000000002) is printed as "n/d" without
    parentheses, so 2/0.12345678901234567 prints as 2/12345678901234567/100000000000000000
    (= 1.6e-33) and x**0.12345678901234567 as x**12345678901234567/... (an exponent-limit
    error). node_texts feeds the "in ..." part of error messages."""
    graph = parse("2/0.12345678901234567")
    again = parse(_printed(graph))
    assert float(evaluate(again, {})[again.output]) == pytest.approx(16.2, rel=1e-3)


def test_regression_symbolic_power_of_product_at_zero() -> None:
    """f = (x*y)**2 is a polynomial, df/dx = 2*x*y**2 = 0 at (0, 1). SymPy differentiates the
    unevaluated Pow(Mul(x, y), 2) as 2*(x**2*y**2)/x, which is 0/0 = nan at x = 0, so the
    symbolic method and the exact reference both give nan, check() falls back to symbolic as
    the reference, says "f is not differentiable there" and fails a correct gradient. (Also
    (x/y)**2, (sin(x)*cos(x))**2 and (x*y)**1 at x = 0; found by the 30-digit property.)"""
    report = check("(x*y)**2", {"x": 0.0, "y": 1.0})
    assert report.method("symbolic").gradient == {"x": 0.0, "y": 0.0}
    assert report.ok


def test_regression_huge_integer_point_value() -> None:
    """check() accepts int values, but math.isfinite(10**400) raised OverflowError. Fixed
    upstream in 15a6b71."""
    with pytest.raises(GradcheckError) as info:
        check("x", {"x": 10**400})
    assert info.value.kind == "bad-value"
