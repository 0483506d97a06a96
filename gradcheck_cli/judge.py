"""The verdict, computed with numpy over all points: per method × variable × point a cell code.

Codes (stable JSON names in `CELL_NAMES`):
- `pass` / `fail`: judged against the reference at that cell;
- `unreliable`: a finite difference whose own error estimate is too large to decide
  (4·estimate > DECIDE·max(σ, |g|), σ the gradient's size at the point, unless g equals the
  reference exactly), or whose step straddles a kink — never a ✓;
- `kink`: at a point where f has a kink in that variable, the value lies between the one-sided
  derivatives (any such value is a valid choice; `--strict` fails it);
- `convention`: at a switching point of a non-smooth primitive where both one-sided
  derivatives agree (f is differentiable there) but an AD or SymPy convention (min's even
  split of a tie, relu′(0) = 0, Heaviside(0) = 1/2) gave another value;
- `nondifferentiable`: f has no derivative there (an infinite slope, or the chain rule's
  0 · ∞ at a corner such as `sqrt(x**2)` at 0); no value can be wrong; `--strict` fails it;
- `cannot-judge`: no reference at that cell (nan exact derivative and no finite-difference
  fallback), with the reason;
- `not-run`: the method could not compute that cell (with the reason);
- `reference`: the method *is* the reference at that cell.

The reference per cell (never an AD method): the exact derivative (30 digits, kept as a
double-double hi + lo so errors are exact-relative in float64 arithmetic) where finite; else
SymPy's float64 value, the complex step, Richardson, in that order, where they ran, are finite
and (finite differences) reliable; a finite-difference reference widens the tolerance by 4× its
own estimate. Where none is finite, the one-sided probe (`probe.py`) decides whether f is
smooth there (its settled value becomes the reference), has a kink, or an infinite slope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PASS, FAIL, UNRELIABLE, KINK, CONVENTION, NONDIFF, NOJUDGE, NOTRUN, REFERENCE, UNDEFINED = range(10)
CELL_NAMES = ("pass", "fail", "unreliable", "kink", "convention", "nondifferentiable",
              "cannot-judge", "not-run", "reference", "undefined-accepted")
# UNDEFINED: a claimed derivative undefined where ∂f/∂v is defined, at a point the
# --where-undefined policy accepts (a removable singularity); claims only.
JUDGED = (PASS, FAIL, KINK, CONVENTION, NONDIFF, UNDEFINED)  # a conclusion about the derivative
LENIENT = (KINK, CONVENTION, NONDIFF)  # pass, unless --strict
RELATIVE, ABSOLUTE, INTERVAL = range(3)
ERROR_KINDS = ("relative", "absolute", "interval")

ESTIMATE_FACTOR = 4.0  # a finite difference passes within 4× its own estimate ...
ESTIMATE_FLOOR_ULPS = 8.0  # ... plus 8 ulps of the reference
SUBNORMAL_STEPS = 64  # an AD or symbolic value may be off by 64 × the smallest subnormal


def decide_threshold(eps: float) -> float:
    """A finite difference whose estimate is above 100·cbrt(eps) (6e-4 in float64) of the
    gradient's size is too uncertain to decide anything (it could not tell a right derivative
    from one that is off by a typical mistake)."""
    return 100 * eps ** (1 / 3)


@dataclass
class Reasons:
    """Reason texts, shared by index: cells hold an int index, -1 for none (cheap at 10⁶ points)."""

    texts: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def add(self, text: str) -> int:
        i = self._index.get(text)
        if i is None:
            i = self._index[text] = len(self.texts)
            self.texts.append(text)
        return i


@dataclass
class Reference:
    """The reference of one variable over the batch."""

    hi: np.ndarray  # (K,) float64, nan where there is none
    lo: np.ndarray  # (K,) low part of the exact value (0 when not exact)
    uncertainty: np.ndarray  # (K,) absolute: 4× a finite difference's estimate, else 0
    source: np.ndarray  # (K,) object: "exact", "symbolic", "complex", ..., "" for none
    why: np.ndarray  # (K,) int: reason index where there is none (or a fallback note)
    overflow: np.ndarray | None = None  # (K,) bool: the exact value is beyond the working dtype


@dataclass
class Cells:
    code: dict[str, np.ndarray]  # v -> (K,) uint8
    error: dict[str, np.ndarray]  # v -> (K,) float64
    kind: dict[str, np.ndarray]  # v -> (K,) uint8: RELATIVE, ABSOLUTE, INTERVAL
    why: dict[str, np.ndarray]  # v -> (K,) int32 reason index, -1 none


@dataclass
class Special:
    """What is known about f itself at a cell, beyond the reference (from kinks and the probe)."""

    interval: tuple[np.ndarray, np.ndarray] | None = None  # (left, right) where `corner`
    corner: np.ndarray | None = None  # (K,) bool: f has a kink in this variable here
    agree: np.ndarray | None = None  # (K,) bool: on a kink node, one-sided derivatives agree
    agreed: np.ndarray | None = None  # (K,) their common value
    convention_why: np.ndarray | None = None  # (K,) int reason index for convention cells
    nondiff: np.ndarray | None = None  # (K,) bool: no derivative (infinite slope, ...)
    nondiff_why: np.ndarray | None = None  # (K,) int
    straddle: np.ndarray | None = None  # (K,) float: distance to the nearest kink along v
    straddle_why: np.ndarray | None = None  # (K,) int


def scale(guess: Mapping[str, np.ndarray], f: np.ndarray, points: Mapping[str, np.ndarray]
          ) -> dict[str, np.ndarray]:
    """σ per variable and point, the size the absolute floor and the finite differences'
    reliability scale with: |∂f/∂v| there (from `guess`, the best value known), so a relative
    error is meaningful at any magnitude, however small the partial next to the others; where it
    is 0 (or unknown), the largest |∂f/∂w| over the variables there; where the whole gradient is
    0, |f| / max(1, max |x|); where that is 0 too, the largest of the batch; with nothing
    anywhere, 1 (natural units)."""
    k = len(f)
    sizes = {}
    norm = np.zeros(k)
    with np.errstate(all="ignore"):
        for v, g in guess.items():
            a = np.abs(np.asarray(g, dtype=np.float64))
            sizes[v] = np.where(np.isfinite(a), a, 0.0)
            norm = np.fmax(norm, sizes[v])
        xs = np.zeros(k)
        for p in points.values():
            xs = np.fmax(xs, np.abs(np.asarray(p, dtype=np.float64)))
        fallback = np.abs(np.asarray(f, dtype=np.float64)) / np.maximum(1.0, xs)
    norm = np.where(norm > 0, norm, np.where(np.isfinite(fallback), fallback, 0.0))
    batch = float(norm.max()) if k else 0.0
    norm = np.where(norm > 0, norm, batch if batch > 0 else 1.0)
    return {v: np.where(sz > 0, sz, norm) for v, sz in sizes.items()}


def judge_cells(
    name: str,
    kind: str,
    values: Mapping[str, np.ndarray] | None,
    bad: Mapping[str, np.ndarray],
    bad_why: Mapping[str, int],
    estimate: Mapping[str, np.ndarray] | None,
    step: Mapping[str, np.ndarray] | None,
    refs: Mapping[str, Reference],
    special: Mapping[str, Special],
    sigmas: Mapping[str, np.ndarray],
    rtol: float,
    atol: float | None,
    by_estimate: bool,  # judged by its own estimate (a finite difference, no --rtol/--atol given)
    eps: float,
    reasons: Reasons,
    not_run_why: int = -1,
    rounding: Mapping[str, np.ndarray] | None = None,
) -> Cells:
    """Every cell of one method (see the module docstring for the codes). `rounding[v]` is the
    derivative's float rounding response where it was measured (`reverse.rounding_response`):
    an AD or symbolic value within 4× of it from the reference passes."""
    code: dict[str, np.ndarray] = {}
    error: dict[str, np.ndarray] = {}
    ekind: dict[str, np.ndarray] = {}
    why: dict[str, np.ndarray] = {}
    k = len(next(iter(sigmas.values()))) if sigmas else 0
    info = np.finfo(np.float32 if eps > 1e-10 else np.float64)
    subnormal, tiny = float(info.smallest_subnormal), float(info.tiny)
    for v, ref in refs.items():
        sigma = sigmas[v]
        c = np.full(k, NOTRUN, dtype=np.uint8)
        e = np.full(k, np.nan)
        ek = np.zeros(k, dtype=np.uint8)
        w = np.full(k, -1, dtype=np.int32)
        if values is None:
            w[:] = not_run_why
            code[v], error[v], ekind[v], why[v] = c, e, ek, w
            continue
        g = np.asarray(values[v], dtype=np.float64)
        ran = ~np.asarray(bad.get(v, np.zeros(k, dtype=bool)))
        w[~ran] = bad_why.get(v, -1)
        over = ref.overflow if ref.overflow is not None else np.zeros(k, dtype=bool)
        has_ref = np.isfinite(ref.hi) | over
        with np.errstate(all="ignore"):
            diff = np.abs((g - ref.hi) - ref.lo)
            diff = np.where(np.isnan(diff) & (g == ref.hi), 0.0, diff)  # same infinity
            # a true derivative beyond the dtype's range: its infinity of the right sign is right
            diff = np.where(over & np.isinf(g) & (np.sign(g) == np.sign(ref.hi)), 0.0, diff)
            absolute = ref.hi == 0
            e[:] = np.where(absolute, diff, diff / np.abs(ref.hi))
            ek[:] = np.where(absolute, ABSOLUTE, RELATIVE)
            r_abs = np.abs(ref.hi)
            if by_estimate and estimate is not None:
                est = np.asarray(estimate[v], dtype=np.float64)
                allowed = ESTIMATE_FACTOR * est + ESTIMATE_FLOOR_ULPS * eps * r_abs + 1e-300
                too_wide = (ESTIMATE_FACTOR * est > decide_threshold(eps) * np.fmax(sigma, np.abs(g))) \
                    & (g != ref.hi)
                too_wide |= ~np.isfinite(est)
            else:
                floor = atol if atol is not None else abs(rtol) * sigma
                # below the normal range floats keep only absolute precision: a few dozen steps
                # of the subnormal range is what a correct compound partial can lose there
                allowed = abs(rtol) * r_abs + floor + SUBNORMAL_STEPS * subnormal
                # a subnormal derivative has only a few significant bits in any float code:
                # there only its sign and size (within a factor 2) are checked
                allowed = allowed + np.where(r_abs < tiny, 0.5 * r_abs, 0.0)
                plain = diff <= allowed + ref.uncertainty
                if rounding is not None and v in rounding:
                    allowed = allowed + ESTIMATE_FACTOR * rounding[v]
                too_wide = np.zeros(k, dtype=bool)
            passed = diff <= allowed + ref.uncertainty
        judged = ran & has_ref
        c[judged] = np.where(passed[judged], PASS, FAIL)
        if not (by_estimate and estimate is not None) and rounding is not None and v in rounding:
            undetermined = judged & np.isinf(rounding[v])
            c[undetermined] = NOJUDGE
            w[undetermined] = reasons.add(
                "f′ is not determined in float arithmetic here: rounding one step by eps changes it "
                "completely (the formula is too ill-conditioned at this point to check any float code)")
            by_rounding = judged & passed & ~plain & ~undetermined
            if by_rounding.any():
                w[by_rounding] = reasons.add(
                    "within the float rounding of this formula: a correct derivative code moves by "
                    "this much when its steps round differently (the formula is ill-conditioned here)")
        c[ran & ~has_ref] = NOJUDGE
        w[ran & ~has_ref] = ref.why[ran & ~has_ref]
        # the method is the reference here
        is_ref = judged & (ref.source == name)
        c[is_ref] = REFERENCE
        e[is_ref] = 0.0
        sp = special.get(v, Special())
        if by_estimate:
            wide = judged & ~is_ref & too_wide
            c[wide] = UNRELIABLE
            w[wide] = reasons.add(
                "its own error estimate is too large to judge by (the step does not suit how "
                "fast f changes here)")
        if kind == "finite-difference":
            if sp.straddle is not None and step is not None:
                across = ran & (sp.straddle < np.abs(np.asarray(step[v], dtype=np.float64)))
                if sp.corner is not None:
                    across &= ~sp.corner
                if sp.agree is not None:  # on the kink itself, both sides alike: a fair witness
                    across &= ~sp.agree
                c[across & (c != REFERENCE)] = UNRELIABLE
                if sp.straddle_why is not None:
                    w[across & (c == UNRELIABLE)] = sp.straddle_why[across & (c == UNRELIABLE)]
        if sp.corner is not None and sp.interval is not None:
            lo = np.fmin(*sp.interval)
            hi = np.fmax(*sp.interval)
            with np.errstate(all="ignore"):
                dist = np.fmax(np.fmax(lo - g, g - hi), 0.0) + 0.0
                tol = (abs(rtol) * np.fmax(np.abs(lo), np.abs(hi)) + (atol or 0.0)
                       + (ESTIMATE_FACTOR * np.asarray(estimate[v]) if by_estimate and estimate is not None
                          else 0.0))
            at = sp.corner & ran
            inside = at & (dist <= tol)
            c[inside] = KINK
            e[at] = dist[at]
            ek[at] = INTERVAL
            broke = at & ~np.isfinite(g)  # 0 · ∞ at a corner: the chain rule gives nothing
            c[broke] = NONDIFF
            if sp.nondiff_why is not None:
                w[broke] = sp.nondiff_why[broke]
            c[at & ~inside & ~broke] = FAIL
        if sp.nondiff is not None:
            nd = sp.nondiff & ran
            c[nd] = NONDIFF
            if sp.nondiff_why is not None:
                w[nd] = sp.nondiff_why[nd]
        if sp.agree is not None and sp.agreed is not None and kind != "finite-difference":
            conv = sp.agree & (c == FAIL)
            with np.errstate(all="ignore"):
                conv &= np.abs(g - sp.agreed) > abs(rtol) * np.abs(sp.agreed) + abs(rtol) * sigma
            c[conv] = CONVENTION
            if sp.convention_why is not None:
                w[conv] = sp.convention_why[conv]
        code[v], error[v], ekind[v], why[v] = c, e, ek, w
    return Cells(code, error, ekind, why)


def usable_reference(g: np.ndarray, estimate: np.ndarray | None, bad: np.ndarray | None, eps: float,
                     sigma: np.ndarray | None = None) -> np.ndarray:
    """Where a method's values can serve as the reference: finite, computed, and (a finite
    difference) with an estimate small enough to decide: 4·estimate ≤ DECIDE·max(|g|, σ)."""
    ok = np.isfinite(g)
    if bad is not None:
        ok &= ~np.asarray(bad)
    if estimate is not None:
        size = np.abs(g) if sigma is None else np.fmax(np.abs(g), sigma)
        with np.errstate(all="ignore"):
            ok &= np.isfinite(estimate) & (ESTIMATE_FACTOR * estimate <= decide_threshold(eps) * size)
    return ok


def assemble(
    wrt: Sequence[str],
    k: int,
    exact: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    exact_why: Mapping[str, np.ndarray] | None,
    candidates: Sequence[tuple[str, Mapping[str, np.ndarray] | None, Mapping[str, np.ndarray] | None,
                               Mapping[str, np.ndarray] | None]],
    eps: float,
    reasons: Reasons,
    sigmas: Mapping[str, np.ndarray],
    none_text: str = "no reference: the exact derivative is not finite here and no "
                     "finite-difference fallback could run",
) -> dict[str, Reference]:
    """The reference per variable and point: the exact value where finite, else the first
    candidate (name, values, estimate, bad) that is finite and, with an estimate, reliable
    (4·estimate ≤ DECIDE·max(|value|, σ))."""
    refs: dict[str, Reference] = {}
    none_why = reasons.add(none_text)
    for v in wrt:
        hi = np.full(k, np.nan)
        lo = np.zeros(k)
        unc = np.zeros(k)
        src = np.full(k, "", dtype=object)
        why = np.full(k, -1, dtype=np.int32)
        over = np.zeros(k, dtype=bool)
        if exact is not None and v in exact:
            e_hi, e_lo, over = exact[v]
            ok = np.isfinite(e_hi) | over
            hi[ok], lo[ok], src[ok] = e_hi[ok], e_lo[ok], "exact"
            if exact_why is not None and v in exact_why:
                why[:] = np.where(exact_why[v] >= 0, exact_why[v], why)
        for name, values, estimate, bad in candidates:
            if values is None:
                continue
            todo = src == ""
            if not todo.any():
                break
            g = np.asarray(values[v], dtype=np.float64)
            est = np.asarray(estimate[v], dtype=np.float64) if estimate is not None else None
            usable = todo & usable_reference(g, est, bad.get(v) if bad is not None else None, eps, sigmas[v])
            if est is not None:
                unc = np.where(usable, ESTIMATE_FACTOR * np.where(np.isfinite(est), est, 0.0), unc)
            hi[usable], src[usable] = g[usable], name
        why[(src == "") & (why < 0)] = none_why
        refs[v] = Reference(hi, lo, unc, src, why, over)
    return refs
