"""The notes of a check: which reference was used and why, and what else a user should know
about the cells (kinks, missing derivatives, AD conventions, fallbacks, what a many-variable
check left to its random directions). Read from a finished `check._Judging` state."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from . import judge
from .graph import some_names
from .judge import Reasons, Reference, Special
from .report import Diagnostic

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .check import _Judging

_NOT_ONE_BY_ONE = "not checked one by one"  # methods._sampled_result's reason


def describe_reference(state: _Judging, refs: dict[str, Reference], exact_all_points: int) -> None:
    """The reference most cells use, a note on where it comes from, and a note for each cell
    judged against another one (a fallback)."""
    counts: Counter[str] = Counter()
    for r in refs.values():
        counts.update(s for s in r.source if s)
    if not counts:
        state.main_reference = "none"
        state.reference_note = "no reference could be computed"
        return
    state.main_reference = counts.most_common(1)[0][0]
    sym = state.sym
    skipped = sym is None or sym.gradient is None or sym.skipped
    if state.main_reference == "exact":
        state.reference_note = (f"SymPy's derivative evaluated with mpmath to "
                               f"{state.opts.exact_digits} digits")
    elif state.opts.reference not in ("auto", "exact") and state.main_reference == state.opts.reference:
        state.reference_note = f"chosen with --reference {state.opts.reference}"
    elif state.main_reference == "symbolic":
        why = (sym.exact_note if sym is not None and sym.exact_note else "not computed at these points")
        state.reference_note = f"SymPy's float64 derivative (the exact evaluation: {why})"
    elif state.main_reference == "complex":
        state.reference_note = ("the complex step, exact to rounding for this analytic formula "
                               f"({'SymPy was skipped' if skipped else 'SymPy could not evaluate it'})")
    elif state.main_reference == "richardson":
        state.reference_note = ("Richardson extrapolation, judged with its own error estimate "
                               f"({'SymPy was skipped' if skipped else 'SymPy could not evaluate it'}, "
                               "and the complex step gave no reliable value here)")
    else:
        state.reference_note = "one-sided difference quotients (nothing else was finite)"
    chosen = state.opts.reference
    if chosen not in ("auto", state.main_reference):
        res = state.results.get(chosen) or state.fallbacks.get(chosen)
        why = (res.note or next(iter(res.why.values()), None)) if res is not None else None
        if chosen == "exact":
            why = (sym.exact_note or sym.note) if sym is not None else "SymPy was not run"
        state.diagnostics.append(Diagnostic(
            "reference-fallback",
            f"the reference asked for, {chosen}, could not be used"
            + (f" ({why})" if why else "") + f"; judged against {state.main_reference} instead."))
    focused = state.k > exact_all_points and state.main_reference == "symbolic"
    focus = counts.get("exact", 0) if focused else 0
    if focus:
        state.reference_note = (
            f"SymPy's float64 derivative at every point, and the exact derivative "
            f"({state.opts.exact_digits} digits) instead at the {focus} cells of the failing and worst "
            f"points (past {exact_all_points} points the exact reference runs only there)")
    others = {s: n for s, n in counts.items()
              if s != state.main_reference and not (focus and s == "exact")}
    if others:
        state.diagnostics.append(Diagnostic(
            "reference-fallback",
            f"the reference is {state.main_reference} except at "
            + ", ".join(f"{n} cell(s) judged against {s}" for s, n in others.items())
            + _fallback_why(refs, state.reasons, state.main_reference) + "."))

def unsampled_variables(state: _Judging) -> set[str]:
    """The variables no method checked one by one (a many-variable check's directions cover
    them): none has a reference, by design, not by any trouble of f there."""
    sampled = [r for r in state.results.values() if r.checked is not None]
    if not sampled:
        return set()
    return {v for v in state.wrt if all((r.why or {}).get(v, "").startswith(_NOT_ONE_BY_ONE)
                                       for r in sampled)}

def _to_diagnose(state: _Judging, specials: dict[str, Special], unsampled: set[str]) -> list[str]:
    """The variables, in order, that `diagnose` has something to say about: a corner, no
    derivative, a missing reference (sampled variables), an AD convention; found a block of
    variables at a time (the loop over 33,488 variables one by one took 0.7 s)."""
    k = state.k
    out = np.zeros(len(state.wrt), dtype=bool)
    codes = [m.cells.blocks(state.wrt)[0] for m in state.reports.values() if m.cells is not None]
    for part in judge.row_blocks(len(state.wrt), k):
        names = state.wrt[part]
        sps = [specials[v] for v in names]
        refs = [state.refs[v] for v in names]
        missing = ~np.isfinite(judge.stack_rows([r.hi for r in refs], k, np.nan, np.float64))
        missing &= ~judge.stack_rows([r.overflow for r in refs], k, False, bool)
        for given in ([sp.nondiff for sp in sps], [sp.corner for sp in sps]):
            if any(g is not None for g in given):
                missing &= ~judge.stack_rows(given, k, False, bool)
        hit = missing.any(axis=1) & np.array([v not in unsampled for v in names], dtype=bool)
        for c in codes:
            hit |= (c[part] == judge.CONVENTION).any(axis=1)
        hit |= np.array([(sp.corner is not None and sp.interval is not None and bool(sp.corner.any()))
                         or (sp.nondiff is not None and bool(sp.nondiff.any())) for sp in sps],
                        dtype=bool)
        out[part] = hit
    return [v for v, h in zip(state.wrt, out) if h]

def diagnose(state: _Judging, specials: dict[str, Special]) -> None:
    k = state.k
    grouped: dict[tuple[str, str, str], list[str]] = {}
    # many variables: the ones no method looked at one by one (they are in the directions)
    sampled = [r for r in state.results.values() if r.checked is not None]
    unsampled = unsampled_variables(state)
    if unsampled:
        names = ", ".join(sorted(n for n, r in state.results.items() if r.checked is not None))
        state.diagnostics.append(Diagnostic(
            "sampled", f"{len(state.wrt):,} variables: {names} checked {sampled[0].checked}; the other "
            f"{len(unsampled):,} partials they check only together, along the random directions "
            "(reverse mode's own values are judged wherever a reference exists; --full checks every "
            "variable with every method, at one evaluation pair per variable)."))
    for text in state.overflow_notes.values():
        state.diagnostics.append(Diagnostic("overflow", text + "."))
    for v in _to_diagnose(state, specials, unsampled):
        sp = specials[v]
        if sp.corner is not None and sp.corner.any() and sp.interval is not None:
            p = int(np.flatnonzero(sp.corner)[0])
            left, right = sp.interval[0][p], sp.interval[1][p]
            where = state.kink.where(p) or "a corner of f"
            count = int(sp.corner.sum())
            at = f" at {count} of {k} points, e.g." if k > 1 else ""
            state.diagnostics.append(Diagnostic(
                "nondifferentiable",
                f"not differentiable{at} at this point in {v}: ∂f/∂{v}⁻ = {left:g}, "
                f"∂f/∂{v}⁺ = {right:g} (kink at {where}); any value between them is accepted"
                + ("" if not state.opts.strict else ", but --strict counts this as a failure") + "."))
        if sp.nondiff is not None and sp.nondiff.any():
            p = int(np.flatnonzero(sp.nondiff)[0])
            why = state.reasons.texts[sp.nondiff_why[p]] if sp.nondiff_why is not None and \
                sp.nondiff_why[p] >= 0 else "f has no derivative here"
            count = int(sp.nondiff.sum())
            at = f" at {count} of {k} points" if k > 1 else ""
            state.diagnostics.append(Diagnostic(
                "nondifferentiable",
                f"∂f/∂{v} does not exist{at}: {why}"
                + (", and --strict counts this as a failure" if state.opts.strict else "") + "."))
        ref = state.refs[v]
        missing = ~np.isfinite(ref.hi) & ~(ref.overflow if ref.overflow is not None else False)
        if sp.nondiff is not None:
            missing &= ~sp.nondiff
        if sp.corner is not None:
            missing &= ~sp.corner
        if missing.any() and v not in unsampled:
            p = int(np.flatnonzero(missing)[0])
            count = int(missing.sum())
            at = f" at {count} of {k} points" if k > 1 else ""
            grouped.setdefault(("no-reference", state.reasons.texts[ref.why[p]], at), []).append(v)
        for name, m in state.reports.items():
            if m.cells is None:
                continue
            conv = np.flatnonzero(m.cells.code[v] == judge.CONVENTION)
            if len(conv):
                state.diagnostics.append(Diagnostic(
                    "ad-convention", f"{name} on {v}: {m.why(v, int(conv[0]))}"
                    + (f" ({len(conv)} points)" if k > 1 else "") + "."))
    for name, res in state.results.items():
        if name == "claim":  # its own verdicts say it all (claims.judge_claims)
            continue
        if res.values is None and res.note and name != "symbolic":
            state.diagnostics.append(Diagnostic("method-failed", f"{name} could not run: {res.note}"))
        elif res.why:
            for v, w in res.why.items():
                if w.startswith(_NOT_ONE_BY_ONE):
                    continue
                n = int(np.sum(res.bad.get(v, False)))
                if n:
                    at = f" at {n} of {k} points" if k > 1 else ""
                    grouped.setdefault((f"method-failed:{name}", w, at), []).append(v)
    # one line per cause, however many variables share it (10,000 variables, one note)
    for (kind, why, at), names in grouped.items():
        partials = ", ".join(f"∂f/∂{v}" for v in names[:5]) + (
            f" and {len(names) - 5:,} more partials" if len(names) > 5 else "")
        if kind == "no-reference":
            state.diagnostics.append(Diagnostic(kind, f"cannot judge {partials}{at}: {why}."))
        else:
            method = kind.split(":", 1)[1]
            state.diagnostics.append(Diagnostic(
                "method-failed", f"{method} could not run for {some_names(names, 5)}{at}: {why}"))


def _fallback_why(refs: Mapping[str, Reference], reasons: Reasons, main: str) -> str:
    for r in refs.values():
        off = np.flatnonzero((r.source != main) & (r.why >= 0))
        if len(off):
            return f" ({reasons.texts[r.why[off[0]]]})"
    return ""
