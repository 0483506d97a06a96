"""One-sided difference quotients at shrinking steps: what f does where the chain rule breaks.

Where the AD methods give nan or inf (0 · ∞ in `sqrt(x**2)` at 0, the infinite slope of
`sqrt(x)` at 0) or no reference is finite, the only safe witness is f itself. For each such
cell (variable v, point k) this looks at

    R(h) = (f(x + h e_v) - f(x)) / h,   L(h) = (f(x) - f(x - h e_v)) / h,
    h = max(1, |x_v|) · 10^-j,  j = 2 … 8,

values of f only (no rule of the table is used, so this stays independent of the AD), and
classifies the cell:

- `smooth`: both sides settle on the same value d — f is differentiable there, f′ ≈ d;
- `kink`: both settle, on different values — a corner, one-sided derivatives (L, R);
- `infinite`: a side grows without bound as h shrinks (|q| up by ≥ 2× per decade over the last
  three decades, or an infinite quotient) — an infinite slope;
- `one-sided`: f is defined on one side only (the edge of its domain) and settles there;
- `undefined`: f is not finite on either side at any step;
- `unknown`: nothing above is clear.

A side "settles" when two consecutive extrapolated quotients, (10 q(h/10) - q(h)) / 9 (which
removes the O(h) error of a one-sided quotient), differ by at most 1e-4 relative or not at all
(the remaining error falls 100× per decade, until rounding, which grows as eps·|f|/h, takes
over; 1e-4 is far above both at the best step), or differ by at most 1e-8 of the quotients'
own size over the steps (a limit of 0 reached through rounding noise), or when the quotients
shrink steadily to 1e-3 of that size (a limit of 0 approached as √h, x·sqrt(x) at 0). The
estimate of a settled side is that difference (or the last quotient).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .graph import Graph
from .interpret import Values, evaluate_output

EXPONENTS = np.arange(2, 9)  # h = max(1, |x|) · 10^-j
SETTLED = 1e-4
GROWTH = 2.0


@dataclass
class Probe:
    kind: np.ndarray  # (n,) object: smooth | kink | infinite | one-sided | undefined | unknown
    left: np.ndarray  # (n,) the settled left derivative (nan if none)
    right: np.ndarray
    estimate: np.ndarray  # (n,) uncertainty of the settled value(s)


def _side(q: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """q: (steps, n) quotients at shrinking steps; noise: their rounding noise, (eps |f| + a few
    subnormal steps) / h. Returns (defined, infinite, value, estimate)."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(q)
        defined = finite.all(axis=0)
        a = np.abs(q)
        # growth that rounding noise explains (it grows as 1/h too) is no infinite slope
        grows = ((a[-3:] >= GROWTH * a[-4:-1]) & (a[-3:] > 0)).all(axis=0) & (a[-1] > 1e3 * noise[-1])
        infinite = (np.isinf(q).any(axis=0) & ~np.isnan(q).any(axis=0)) | (defined & grows)
        # One Richardson step removes the O(h) term: q(h) = d + c h + O(h²) gives
        # d ≈ (10 q(h/10) - q(h)) / 9, so a side whose limit is 0 (f = x² at 0) settles too.
        e = (10 * q[1:] - q[:-1]) / 9
        diff = np.abs(e[1:] - e[:-1])
        scale = np.maximum(np.abs(e[1:]), 1e-300)
        rel = np.where(np.isfinite(diff), diff / scale, np.inf)
        best = np.argmin(rel, axis=0)
        pick = np.arange(q.shape[1])
        value = e[1:][best, pick]
        estimate = np.fmax(diff[best, pick], 4 * noise[2:][best, pick])
        # absolutely, too: a limit of 0 approached with rounding noise (sqrt(x**4) at 0) or as
        # √h (x*sqrt(x) at 0), small against the quotients' own size over the steps
        size = np.max(np.where(np.isfinite(a), a, 0.0), axis=0)
        last = np.abs(q[-1])
        vanishing = defined & (last <= 1e-3 * size) & np.all(np.diff(a[-4:], axis=0) <= 0, axis=0)
        value = np.where(vanishing & ~(rel[best, pick] <= SETTLED), 0.0, value)
        estimate = np.where(vanishing & ~(rel[best, pick] <= SETTLED), last, estimate)
        settled = defined & ~infinite & ((rel[best, pick] <= SETTLED) | (diff[best, pick] == 0)
                                         | (diff[best, pick] <= 1e-8 * size) | vanishing
                                         | (diff[best, pick] <= 4 * noise[2:][best, pick]))
    return defined, infinite, np.where(settled, value, np.nan), np.where(settled, estimate, np.inf)


def one_sided(
    graph: Graph, points: Mapping[str, np.ndarray], name: str, index: np.ndarray, dtype: type = np.float64
) -> Probe:
    """Classify the cells (name, k) for k in `index` (see the module docstring)."""
    sub = {v: np.asarray(p, dtype=dtype)[index] for v, p in points.items()}
    x = sub[name]
    n = len(x)
    # steps relative to |x| when it is small (1/x at 1e-160 changes on the scale 1e-160)
    unit = np.where((x != 0) & (np.abs(x) < 1), np.abs(x), np.maximum(1.0, np.abs(x)))
    h = (unit * 10.0 ** -EXPONENTS[:, None]).astype(dtype)  # (steps, n)
    with np.errstate(all="ignore"):
        xp, xm = (x + h).astype(dtype), (x - h).astype(dtype)
        shifted = {v: np.broadcast_to(p, h.shape) for v, p in sub.items()}
        f0 = np.broadcast_to(evaluate_output(graph, Values(sub, dtype)), (n,)).astype(np.float64)
        fp = np.broadcast_to(evaluate_output(graph, Values({**shifted, name: xp}, dtype)), h.shape)
        fm = np.broadcast_to(evaluate_output(graph, Values({**shifted, name: xm}, dtype)), h.shape)
        right = (fp.astype(np.float64) - f0) / (xp.astype(np.float64) - x)
        left = (f0 - fm.astype(np.float64)) / (x - xm.astype(np.float64))
    info = np.finfo(np.float64)
    with np.errstate(all="ignore"):
        base = info.eps * np.abs(f0) + 64 * float(info.smallest_subnormal)
        r_noise = (base + info.eps * np.abs(fp.astype(np.float64))) / np.abs(xp.astype(np.float64) - x)
        l_noise = (base + info.eps * np.abs(fm.astype(np.float64))) / np.abs(x - xm.astype(np.float64))
    r_def, r_inf, r_val, r_est = _side(right, r_noise)
    l_def, l_inf, l_val, l_est = _side(left, l_noise)
    kind = np.full(n, "unknown", dtype=object)
    both = np.isfinite(r_val) & np.isfinite(l_val)
    with np.errstate(all="ignore"):
        spread = SETTLED * np.maximum(np.abs(r_val), np.abs(l_val))
        agree = np.abs(r_val - l_val) <= 4 * (r_est + l_est) + spread
    kind[both & agree] = "smooth"
    kind[both & ~agree] = "kink"
    kind[(np.isfinite(r_val) & ~l_def & ~l_inf) | (np.isfinite(l_val) & ~r_def & ~r_inf)] = "one-sided"
    kind[r_inf | l_inf] = "infinite"
    kind[~r_def & ~l_def & ~r_inf & ~l_inf] = "undefined"
    return Probe(kind, l_val, r_val, np.maximum(np.where(np.isfinite(l_est), l_est, 0),
                                                 np.where(np.isfinite(r_est), r_est, 0)))
