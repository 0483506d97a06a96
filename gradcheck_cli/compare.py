"""Judge every method against the reference: errors, tolerances, verdicts, diagnostics.

The reference is the exact derivative (SymPy's, evaluated to 30 significant digits with mpmath)
when it could be computed in budget, so every column, the float64 symbolic one included, shows
its true error; otherwise it is a method (symbolic first). Errors against the exact reference
are computed in high precision, not after rounding the reference to float64.

A value g passes against the reference r when |g - r| <= atol + rtol*|r| (numpy's isclose). The
error shown is relative, |g - r| / |r|, except where r = 0, where it is the absolute |g - r| and
is labelled so. Defaults are per method: the exact methods (reverse, forward, symbolic) differ
only by floating-point rounding and get a tight tolerance; central differences carry truncation
and rounding error of order eps**(2/3) and get a looser one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import mpmath
import numpy as np

from .report import Diagnostic, MethodReport

EXACT_TOLERANCE = (1e-9, 1e-12)
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "reverse": EXACT_TOLERANCE,
    "forward": EXACT_TOLERANCE,
    "symbolic": EXACT_TOLERANCE,
    "central": (1e-6, 1e-7),
    "richardson": (1e-9, 1e-11),
    "complex": EXACT_TOLERANCE,
}
# A finite difference is judged by its own error estimate, not by a fixed rtol: it passes when
# |g - r| <= ESTIMATE_FACTOR * estimate + floor, the floor being a few ulps of the reference
# (plus a tiny absolute term for r = 0). --rtol/--atol, when given, replace this rule.
ESTIMATE_FACTOR = 4.0
ESTIMATE_FLOOR_ULPS = 8.0
# float32 (--dtype float32): eps is 1.2e-7 instead of 2.2e-16, so exact methods agree to
# about 1e-5 relative and central differences (h = cbrt(eps)·max(1,|x|) = 5e-3) to about 1e-3.
FLOAT32_TOLERANCES: dict[str, tuple[float, float]] = {
    "reverse": (1e-4, 1e-6),
    "forward": (1e-4, 1e-6),
    "symbolic": EXACT_TOLERANCE,  # the oracle stays in float64
    "central": (5e-3, 1e-4),
    "richardson": (1e-4, 1e-6),
    "complex": (1e-4, 1e-6),
}
REFERENCE_PREFERENCE = ("symbolic", "forward", "reverse", "central")


def judge(g: float, r: float | str, rtol: float, atol: float) -> tuple[float, str, bool]:
    """(error, "relative" | "absolute", passed) for one value against its reference; `r` may be
    decimal text with more digits than a float holds (the exact reference)."""
    exact = mpmath.mpf(r) if isinstance(r, str) else None
    rf = float(r)
    kind = "absolute" if rf == 0 or not math.isfinite(rf) else "relative"
    if not (math.isfinite(g) and math.isfinite(rf)):
        same = g == rf  # the same infinity on both sides agrees; nan never does
        return (0.0 if same else math.inf), kind, same
    if exact is not None:
        with mpmath.workdps(40):
            diff = float(abs(mpmath.mpf(g) - exact))
            error = diff if kind == "absolute" else float(abs(mpmath.mpf(g) - exact) / abs(exact))
    else:
        diff = abs(g - rf)
        error = diff if kind == "absolute" else diff / abs(rf)
    return error, kind, diff <= atol + rtol * abs(rf)


def _eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def _too_uncertain(g: float, estimate: float, dtype: str) -> bool:
    """A finite difference that itself says it is off by more than 100·cbrt(eps) relative
    (6e-4 in float64) is no witness either way: unreliable, not a failure of the derivative."""
    return not math.isfinite(estimate) or estimate > 100 * _eps(dtype) ** (1 / 3) * abs(g)


def _step_text(m: MethodReport, v: str) -> str:
    return f"h = {m.step[v]:.3g} " if m.step and v in m.step else ""


def _within_estimate(g: float, r: float, estimate: float, dtype: str) -> bool:
    if not (math.isfinite(g) and math.isfinite(r)):
        return g == r
    floor = ESTIMATE_FLOOR_ULPS * _eps(dtype) * abs(r) + 1e-300
    if not math.isfinite(estimate):  # no estimate: no pass (compare marks it unreliable)
        return False
    return abs(g - r) <= ESTIMATE_FACTOR * estimate + floor


def judge_interval(
    g: float, left: float, right: float, rtol: float, atol: float
) -> tuple[float, str, bool]:
    """At a kink: any value between the one-sided derivatives (inclusive) is a valid choice.
    The error is the distance from g to that interval."""
    lo, hi = min(left, right), max(left, right)
    if not math.isfinite(g):
        return math.inf, "interval", False
    distance = max(lo - g, 0.0, g - hi) + 0.0
    return distance, "interval", distance <= atol + rtol * max(abs(lo), abs(hi))


def choose_reference(
    methods: Sequence[MethodReport], requested: str
) -> tuple[MethodReport | None, list[Diagnostic]]:
    """The requested reference if it ran, else the first that did, with a diagnostic saying so."""
    by_name = {m.name: m for m in methods}
    wanted = by_name.get(requested)
    if wanted is not None and wanted.ran:
        return wanted, []
    for name in REFERENCE_PREFERENCE:
        m = by_name.get(name)
        if m is not None and m.ran:
            return m, [Diagnostic(
                "reference-fallback",
                f"the reference {requested} could not run; {m.name} is the reference instead.",
            )]
    return None, []


def compare(
    methods: Sequence[MethodReport],
    wrt: Sequence[str],
    requested_reference: str,
    rtol: float | None = None,
    atol: float | None = None,
    exact: Mapping[str, str] | None = None,
    intervals: Mapping[str, tuple[float, float]] | None = None,
    straddles: Mapping[str, Mapping[str, str]] | None = None,
    dtype: str = "float64",
    explained: frozenset[str] = frozenset(),
) -> tuple[str | None, bool, list[Diagnostic]]:
    """Fill each method's errors and verdicts in place; return (reference, ok, diagnostics).

    With `exact` (decimal text per variable), that is the reference for every method. Where f
    has a kink in v, `intervals[v]` = (left, right) one-sided derivatives and any value between
    them passes. `straddles[method][v]` says why a finite difference in v is not a fair witness
    (its step straddles a kink): a value that would fail there is marked unreliable instead.
    Methods in `explained` could not run for a reason the caller already reported: one cause,
    one note."""
    intervals = intervals or {}
    straddles = straddles or {}
    if exact is not None:
        reference, diagnostics = None, []
    else:
        reference, diagnostics = choose_reference(methods, requested_reference)
    for m in methods:
        table = FLOAT32_TOLERANCES if dtype == "float32" else DEFAULT_TOLERANCES
        d_rtol, d_atol = table.get(m.name, EXACT_TOLERANCE)
        m.rtol = d_rtol if rtol is None else rtol
        m.atol = d_atol if atol is None else atol
        if not m.ran and m.name not in explained:
            diagnostics.append(Diagnostic("method-failed", f"{m.name} could not run: {m.note}"))
    if exact is not None:
        ref: Mapping[str, float | str] = exact
        ref_name = "exact"
    elif reference is None:
        return None, False, diagnostics
    else:
        assert reference.gradient is not None
        ref, ref_name = reference.gradient, reference.name
    for v in wrt:
        if not math.isfinite(float(ref[v])):
            diagnostics.append(Diagnostic(
                "nonfinite-derivative",
                f"the reference derivative with respect to {v} is {ref[v]}: f is not "
                "differentiable there in floating point.",
            ))
    ok = True
    for m in methods:
        if not m.ran:
            continue
        assert m.gradient is not None
        m.error, m.error_kind, m.passed, m.unreliable = {}, {}, {}, {}
        assert m.unreliable is not None
        for v in wrt:
            g = m.gradient[v]
            if v in intervals:
                error, kind, passed = judge_interval(g, *intervals[v], m.rtol, m.atol)
            else:
                error, kind, passed = judge(g, ref[v], m.rtol, m.atol)
                if m.estimate is not None and rtol is None and atol is None:
                    passed = _within_estimate(g, float(ref[v]), m.estimate[v], dtype)
                    m.judged_by = "estimate"
                    if not passed and _too_uncertain(g, m.estimate[v], dtype):
                        m.unreliable[v] = (
                            f"its own error estimate, ±{m.estimate[v]:.2g}, is too large to judge "
                            f"by (the step {_step_text(m, v)}does not suit how fast f changes here)"
                        )
                        passed = None
            why = straddles.get(m.name, {}).get(v)
            m.error[v], m.error_kind[v] = error, kind
            if not passed and why is not None:
                m.unreliable[v] = why
                m.passed[v] = None
            else:
                m.passed[v] = passed
        m.ok = all(p is not False for p in m.passed.values())
        ok = ok and m.ok
    return ref_name, ok, diagnostics
