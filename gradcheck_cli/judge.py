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
    # (block, row) when these arrays are row `row` of `assemble`'s (variables, K) block arrays:
    # judge_cells then reads a block of variables' references as slices, not row by row
    rows: tuple[ReferenceRows, int] | None = field(default=None, repr=False, compare=False)


@dataclass
class ReferenceRows:
    """The references of a block of variables as (variables, K) arrays (see `Reference.rows`)."""

    hi: np.ndarray
    lo: np.ndarray
    uncertainty: np.ndarray
    source: np.ndarray
    why: np.ndarray
    overflow: np.ndarray


@dataclass
class Cells:
    code: dict[str, np.ndarray]  # v -> (K,) uint8
    error: dict[str, np.ndarray]  # v -> (K,) float64
    kind: dict[str, np.ndarray]  # v -> (K,) uint8: RELATIVE, ABSOLUTE, INTERVAL
    why: dict[str, np.ndarray]  # v -> (K,) int32 reason index, -1 none
    # the same codes and reasons as (variables, K) arrays whose rows `code` and `why` are (views),
    # for the checks that look at every variable at once (a 33,488-variable verdict is one call)
    code_rows: np.ndarray | None = None
    why_rows: np.ndarray | None = None

    def blocks(self, wrt: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(codes, reasons) of the variables `wrt` (all of them, in that order) as (len(wrt), K)
        arrays whose rows are the cells: writing to them writes the cells."""
        k = len(next(iter(self.code.values()))) if self.code else 0
        if set(self.code) != set(wrt):  # not the variables judged: copies, for reading
            return (stack_rows([self.code[v] for v in wrt], k, 0, np.uint8),
                    stack_rows([self.why[v] for v in wrt], k, -1, np.int32))
        if self.code_rows is None or self.why_rows is None or list(self.code) != list(wrt):
            self.code_rows = stack_rows([self.code[v] for v in wrt], k, 0, np.uint8)
            self.why_rows = stack_rows([self.why[v] for v in wrt], k, -1, np.int32)
            self.code = dict(zip(wrt, self.code_rows))
            self.why = dict(zip(wrt, self.why_rows))
        return self.code_rows, self.why_rows


def row_blocks(rows: int, k: int) -> list[slice]:
    """Slices of `rows` variables, each a block of at most BLOCK_CELLS cells (one variable at
    least): memory stays bounded at 10⁶ points, numpy calls few at 10⁴ variables."""
    step = max(1, BLOCK_CELLS // max(k, 1))
    return [slice(a, a + step) for a in range(0, rows, step)]


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
    names = list(guess)
    blocks = []
    norm = np.zeros(k)
    with np.errstate(all="ignore"):
        for part in row_blocks(len(names), k):  # a block of variables at a time
            a = np.abs(stack_rows([guess[v] for v in names[part]], k, np.nan, np.float64))
            size = np.where(np.isfinite(a), a, 0.0)
            norm = np.fmax(norm, size.max(axis=0, initial=0.0))
            blocks.append(size)
        xs = np.zeros(k)
        given = list(points.values())
        for part in row_blocks(len(given), k):
            xs = np.fmax(xs, np.abs(stack_rows(given[part], k, 0.0, np.float64)).max(axis=0, initial=0.0))
        fallback = np.abs(np.asarray(f, dtype=np.float64)) / np.maximum(1.0, xs)
    norm = np.where(norm > 0, norm, np.where(np.isfinite(fallback), fallback, 0.0))
    batch = float(norm.max()) if k else 0.0
    norm = np.where(norm > 0, norm, batch if batch > 0 else 1.0)
    out: dict[str, np.ndarray] = {}
    for part, size in zip(row_blocks(len(names), k), blocks):
        out.update(zip(names[part], np.where(size > 0, size, norm)))
    return out


BLOCK_CELLS = 1 << 18  # cells judged at once: many variables share numpy calls, memory stays bounded


def stack_rows(arrays: Sequence[np.ndarray | None], k: int, fill: float | bool | int, dtype: type
               ) -> np.ndarray:
    """(len(arrays), k): each array (or `fill` where None) as a row (the (variables, K) blocks
    every many-variable step works on)."""
    out = np.empty((len(arrays), k), dtype=dtype)
    for r, a in enumerate(arrays):
        out[r] = fill if a is None else a
    return out


def _shared_rows(rf: Sequence[Reference], k: int) -> ReferenceRows | None:
    """The references `rf` as slices of one `assemble` block, when they are its consecutive
    rows (the usual case: judge_cells' blocks are assemble's); else None."""
    if not rf or rf[0].rows is None:
        return None
    block, first = rf[0].rows
    if not all(r.rows is not None and r.rows[0] is block and r.rows[1] == first + j
               for j, r in enumerate(rf)):
        return None
    part = slice(first, first + len(rf))
    if block.hi.shape[1:] != (k,):
        return None
    return ReferenceRows(block.hi[part], block.lo[part], block.uncertainty[part], block.source[part],
                         block.why[part], block.overflow[part])


def _present(items: Sequence[object]) -> np.ndarray:
    """(rows, 1) bool: which items are given (not None), to mask a row-wise update."""
    return np.array([a is not None for a in items], dtype=bool)[:, None]


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
    an AD or symbolic value within 4× of it from the reference passes.

    Variables are judged a block at a time as (variables, points) arrays: a check of 33,488
    variables at one point costs a few numpy calls per block, not per variable. Each variable's
    cells are rows (views) of the block's arrays."""
    names = list(refs)
    k = len(next(iter(sigmas.values()))) if sigmas else 0
    code = np.full((len(names), k), NOTRUN, dtype=np.uint8)
    error = np.full((len(names), k), np.nan)
    ekind = np.zeros((len(names), k), dtype=np.uint8)
    why = np.full((len(names), k), -1, dtype=np.int32)
    if values is None:
        why[:] = not_run_why
    else:
        for part in row_blocks(len(names), k):
            _judge_block(names[part], k, name, kind, values, bad, bad_why, estimate, step, refs, special,
                         sigmas, rtol, atol, by_estimate, eps, reasons, rounding,
                         code[part], error[part], ekind[part], why[part])
    return Cells(dict(zip(names, code)), dict(zip(names, error)), dict(zip(names, ekind)),
                 dict(zip(names, why)), code, why)


_UNDETERMINED = ("f′ is not determined in float arithmetic here: rounding one step by eps changes it "
                 "completely (the formula is too ill-conditioned at this point to check any float code)")
_BY_ROUNDING = ("within the float rounding of this formula: a correct derivative code moves by "
                "this much when its steps round differently (the formula is ill-conditioned here)")
_WIDE = ("its own error estimate is too large to judge by (the step does not suit how "
         "fast f changes here)")


def _judge_block(
    vs: Sequence[str], k: int, name: str, kind: str, values: Mapping[str, np.ndarray],
    bad: Mapping[str, np.ndarray], bad_why: Mapping[str, int], estimate: Mapping[str, np.ndarray] | None,
    step: Mapping[str, np.ndarray] | None, refs: Mapping[str, Reference], special: Mapping[str, Special],
    sigmas: Mapping[str, np.ndarray], rtol: float, atol: float | None, by_estimate: bool, eps: float,
    reasons: Reasons, rounding: Mapping[str, np.ndarray] | None,
    c: np.ndarray, e: np.ndarray, ek: np.ndarray, w: np.ndarray,
) -> None:
    """judge_cells for the variables `vs`, writing into the (len(vs), k) blocks c, e, ek, w."""
    info = np.finfo(np.float32 if eps > 1e-10 else np.float64)
    subnormal, tiny = float(info.smallest_subnormal), float(info.tiny)
    rf = [refs[v] for v in vs]
    shared = _shared_rows(rf, k)
    g = stack_rows([values[v] for v in vs], k, np.nan, np.float64)
    ran = ~stack_rows([bad.get(v) for v in vs], k, False, bool)
    w[...] = np.where(ran, -1, np.array([bad_why.get(v, -1) for v in vs], dtype=np.int32)[:, None])
    if shared is not None:  # read only below
        over, hi, lo, unc = shared.overflow, shared.hi, shared.lo, shared.uncertainty
    else:
        over = stack_rows([r.overflow for r in rf], k, False, bool)
        hi = stack_rows([r.hi for r in rf], k, np.nan, np.float64)
        lo = stack_rows([r.lo for r in rf], k, 0.0, np.float64)
        unc = stack_rows([r.uncertainty for r in rf], k, 0.0, np.float64)
    sigma = stack_rows([sigmas[v] for v in vs], k, np.nan, np.float64)
    has_ref = np.isfinite(hi) | over
    with np.errstate(all="ignore"):
        diff = np.abs((g - hi) - lo)
        diff = np.where(np.isnan(diff) & (g == hi), 0.0, diff)  # same infinity
        # a true derivative beyond the dtype's range: its infinity of the right sign is right
        diff = np.where(over & np.isinf(g) & (np.sign(g) == np.sign(hi)), 0.0, diff)
        absolute = hi == 0
        e[...] = np.where(absolute, diff, diff / np.abs(hi))
        ek[...] = np.where(absolute, ABSOLUTE, RELATIVE)
        r_abs = np.abs(hi)
        rounds = rounding is not None and not (by_estimate and estimate is not None)
        est = too_wide = None
        if by_estimate and estimate is not None:
            est = stack_rows([estimate[v] for v in vs], k, np.inf, np.float64)
            allowed = ESTIMATE_FACTOR * est + ESTIMATE_FLOOR_ULPS * eps * r_abs + 1e-300
            too_wide = (ESTIMATE_FACTOR * est > decide_threshold(eps) * np.fmax(sigma, np.abs(g))) & (g != hi)
            too_wide |= ~np.isfinite(est)
        else:
            floor = atol if atol is not None else abs(rtol) * sigma
            # below the normal range floats keep only absolute precision: a few dozen steps
            # of the subnormal range is what a correct compound partial can lose there
            allowed = abs(rtol) * r_abs + floor + SUBNORMAL_STEPS * subnormal
            # a subnormal derivative has only a few significant bits in any float code:
            # there only its sign and size (within a factor 2) are checked
            allowed = allowed + np.where(r_abs < tiny, 0.5 * r_abs, 0.0)
            plain = diff <= allowed + unc
            if rounds:
                assert rounding is not None
                measured = _present([rounding.get(v) for v in vs])
                resp = stack_rows([rounding.get(v) for v in vs], k, 0.0, np.float64)
                allowed = np.where(measured, allowed + ESTIMATE_FACTOR * resp, allowed)
        passed = diff <= allowed + unc
    judged = ran & has_ref
    c[...] = np.where(judged, np.where(passed, PASS, FAIL), c)
    if rounds:
        undetermined = judged & np.isinf(resp) & measured
        if undetermined.any():
            c[undetermined] = NOJUDGE
            w[undetermined] = reasons.add(_UNDETERMINED)
        by_rounding = judged & passed & ~plain & ~undetermined
        if by_rounding.any():
            w[by_rounding] = reasons.add(_BY_ROUNDING)
    unref = ran & ~has_ref
    c[unref] = NOJUDGE
    w[unref] = (shared.why if shared is not None else stack_rows([r.why for r in rf], k, -1, np.int32))[unref]
    # the method is the reference here
    is_ref = judged & (shared.source == name if shared is not None else
                       np.array([r.source == name for r in rf], dtype=bool).reshape(len(vs), k))
    c[is_ref] = REFERENCE
    e[is_ref] = 0.0
    if too_wide is not None:
        wide = judged & ~is_ref & too_wide
        if wide.any():
            c[wide] = UNRELIABLE
            w[wide] = reasons.add(_WIDE)
    sps = [special.get(v) or Special() for v in vs]
    if kind == "finite-difference" and step is not None and any(sp.straddle is not None for sp in sps):
        straddle = stack_rows([sp.straddle for sp in sps], k, np.inf, np.float64)
        across = ran & (straddle < np.abs(stack_rows([step[v] for v in vs], k, np.nan, np.float64)))
        across &= ~stack_rows([sp.corner for sp in sps], k, False, bool)
        across &= ~stack_rows([sp.agree for sp in sps], k, False, bool)  # on the kink, both sides alike
        c[across & (c != REFERENCE)] = UNRELIABLE
        sw = _present([sp.straddle_why for sp in sps]) & across & (c == UNRELIABLE)
        w[sw] = stack_rows([sp.straddle_why for sp in sps], k, -1, np.int32)[sw]
    if any(sp.corner is not None and sp.interval is not None for sp in sps):
        both = [sp.interval if sp.corner is not None else None for sp in sps]
        left = stack_rows([i[0] if i is not None else None for i in both], k, np.nan, np.float64)
        right = stack_rows([i[1] if i is not None else None for i in both], k, np.nan, np.float64)
        at = stack_rows([sp.corner if sp.interval is not None else None for sp in sps], k, False, bool) & ran
        lo_i, hi_i = np.fmin(left, right), np.fmax(left, right)
        with np.errstate(all="ignore"):
            dist = np.fmax(np.fmax(lo_i - g, g - hi_i), 0.0) + 0.0
            tol = abs(rtol) * np.fmax(np.abs(lo_i), np.abs(hi_i)) + (atol or 0.0) + (
                ESTIMATE_FACTOR * est if est is not None else 0.0)
        inside = at & (dist <= tol)
        c[inside] = KINK
        e[at] = dist[at]
        ek[at] = INTERVAL
        broke = at & ~np.isfinite(g)  # 0 · ∞ at a corner: the chain rule gives nothing
        c[broke] = NONDIFF
        nw = broke & _present([sp.nondiff_why for sp in sps])
        w[nw] = stack_rows([sp.nondiff_why for sp in sps], k, -1, np.int32)[nw]
        c[at & ~inside & ~broke] = FAIL
    if any(sp.nondiff is not None for sp in sps):
        nd = stack_rows([sp.nondiff for sp in sps], k, False, bool) & ran
        c[nd] = NONDIFF
        nw = nd & _present([sp.nondiff_why for sp in sps])
        w[nw] = stack_rows([sp.nondiff_why for sp in sps], k, -1, np.int32)[nw]
    if kind != "finite-difference" and any(sp.agree is not None and sp.agreed is not None for sp in sps):
        pairs = [(sp.agree, sp.agreed) if sp.agree is not None and sp.agreed is not None else (None, None)
                 for sp in sps]
        agreed = stack_rows([p[1] for p in pairs], k, np.nan, np.float64)
        conv = stack_rows([p[0] for p in pairs], k, False, bool) & (c == FAIL)
        with np.errstate(all="ignore"):
            conv &= np.abs(g - agreed) > abs(rtol) * np.abs(agreed) + abs(rtol) * sigma
        c[conv] = CONVENTION
        cw = conv & _present([sp.convention_why for sp in sps])
        w[cw] = stack_rows([sp.convention_why for sp in sps], k, -1, np.int32)[cw]


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


def usable_everywhere(
    wrt: Sequence[str], k: int, values: Mapping[str, np.ndarray], estimate: Mapping[str, np.ndarray] | None,
    bad: Mapping[str, np.ndarray] | None, eps: float,
) -> np.ndarray:
    """(k,) bool: the points where `usable_reference` holds for every variable of `wrt`."""
    out = np.ones(k, dtype=bool)
    for part in row_blocks(len(wrt), k):
        vs = wrt[part]
        g = stack_rows([values[v] for v in vs], k, np.nan, np.float64)
        est = stack_rows([estimate[v] for v in vs], k, np.inf, np.float64) if estimate is not None else None
        b = stack_rows([bad.get(v) for v in vs], k, False, bool) if bad is not None else None
        out &= usable_reference(g, est, b, eps).all(axis=0)
    return out


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
    (4·estimate ≤ DECIDE·max(|value|, σ)). A block of variables at a time, as in judge_cells."""
    refs: dict[str, Reference] = {}
    none_why = reasons.add(none_text)
    for part in row_blocks(len(wrt), k):
        vs = list(wrt[part])
        n = len(vs)
        hi = np.full((n, k), np.nan)
        lo = np.zeros((n, k))
        unc = np.zeros((n, k))
        src = np.full((n, k), "", dtype=object)
        why = np.full((n, k), -1, dtype=np.int32)
        over = np.zeros((n, k), dtype=bool)
        if exact is not None:
            ex = [exact.get(v) for v in vs]
            e_hi = stack_rows([x[0] if x is not None else None for x in ex], k, np.nan, np.float64)
            e_lo = stack_rows([x[1] if x is not None else None for x in ex], k, 0.0, np.float64)
            over = stack_rows([x[2] if x is not None else None for x in ex], k, False, bool)
            ok = np.isfinite(e_hi) | over
            hi[ok], lo[ok], src[ok] = e_hi[ok], e_lo[ok], "exact"
            if exact_why is not None:
                given = stack_rows([exact_why.get(v) for v in vs], k, -1, np.int32)
                why = np.where(given >= 0, given, why)
        sigma = stack_rows([sigmas[v] for v in vs], k, np.nan, np.float64)
        for name, values, estimate, bad in candidates:
            if values is None:
                continue
            todo = src == ""
            if not todo.any():
                break
            g = stack_rows([values[v] for v in vs], k, np.nan, np.float64)
            est = None if estimate is None else stack_rows([estimate[v] for v in vs], k, np.inf, np.float64)
            b = None if bad is None else stack_rows([bad.get(v) for v in vs], k, False, bool)
            usable = todo & usable_reference(g, est, b, eps, sigma)
            if est is not None:
                unc = np.where(usable, ESTIMATE_FACTOR * np.where(np.isfinite(est), est, 0.0), unc)
            hi[usable], src[usable] = g[usable], name
        why[(src == "") & (why < 0)] = none_why
        block = ReferenceRows(hi, lo, unc, src, why, over)
        for i, v in enumerate(vs):
            refs[v] = Reference(hi[i], lo[i], unc[i], src[i], why[i], over[i], (block, i))
    return refs
