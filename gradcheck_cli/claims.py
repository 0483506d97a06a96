"""Claimed derivatives (homework): a formula someone wrote for ∂f/∂v, checked and diagnosed.

`--expect NAME=FORMULA` goes through the same safe parser as the formula; a claim may only use
the formula's variables. The claim is a method of the registry (kind "claim", `methods.py`):
evaluated at every point in float64 and judged against the reference like any other column,
with the AD methods and finite differences as supporting evidence that the reference is right.

After judging, each claim gets a named verdict with its evidence (`judge_claims`):
- *correct*: every judged point passes;
- *wrong*: a witness (the worst failing point as a pasteable `--at`, the claimed and the true
  value) and, where one fits every judged point, a diagnosis: a **sign error** (claim = −truth),
  **off by a constant factor k** (often a missing chain-rule factor), **off by a constant c**,
  or **the derivative with respect to another variable**. A factor or an offset needs at least
  three points to be told apart from a coincidence (one point fits any of them);
- *cannot-judge*: no point had a reference (the derivative does not exist there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GradcheckError
from .graph import Graph, some_names
from .limits import Limits
from .parse import parse

SAME = 1e-7  # relative agreement for a diagnosis to fit every judged point
MIN_POINTS = 3  # points needed before calling a wrong claim off by a factor or a constant


def parse_claims(expect: Mapping[str, str], graph: Graph, limits: Limits) -> dict[str, Graph]:
    """Each claim parsed; a claim for a name that is not a variable, or one using a name the
    formula does not have, is bad input naming the stray name."""
    claims: dict[str, Graph] = {}
    for v, text in expect.items():
        if v not in graph.var_nodes:
            raise GradcheckError(
                "unknown-variable",
                f"--expect gives a derivative with respect to {some_names([v])!r}, which is not a "
                f"variable of the formula (its variables: {some_names(graph.variables)}).")
        if not isinstance(text, str):
            raise GradcheckError("bad-value", f"the claim for ∂f/∂{v} must be a formula (text).")
        try:
            claim = parse(text, limits)
        except GradcheckError as err:
            raise GradcheckError(err.kind, f"in the claim for ∂f/∂{v}: {err.message}",
                                 column=err.column, source=err.source) from None
        stray = [w for w in claim.variables if w not in graph.var_nodes]
        if stray:
            raise GradcheckError(
                "unknown-variable",
                f"the claim for ∂f/∂{v} uses {some_names(stray, 3)}, which the formula does not have "
                f"(its variables: {some_names(graph.variables)}); a claim may only use the formula's "
                "variables.")
        claims[v] = claim
    return claims


def parse_expect(items: Sequence[str]) -> dict[str, str]:
    """`--expect x="log(y)"` (repeatable) -> {"x": "log(y)"}; the formula may hold any '='."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise GradcheckError("bad-value", "--expect takes NAME=FORMULA, e.g. --expect x=\"2*x\".")
        if name in out:
            raise GradcheckError("bad-value", f"--expect gives ∂f/∂{name} twice.")
        out[name] = text
    return out


@dataclass
class ClaimVerdict:
    variable: str
    formula: str
    verdict: str  # correct | wrong | cannot-judge
    checked: int  # points where it was judged
    failing: int
    witness: dict[str, Any] | None = None  # at (an --at text), claimed, true
    diagnosis: str | None = None
    proof: str | None = None  # SymPy: proved | not proved | too large; None when not run
    diagnosis_kind: str | None = None  # one of DIAGNOSES
    undefined: dict[str, Any] | None = None  # where the claim is undefined but ∂f/∂v is not

    def to_dict(self) -> dict[str, Any]:
        witness = None if self.witness is None else {
            k: (x if not isinstance(x, float) or math.isfinite(x) else ("nan" if x != x else
                                                                          "inf" if x > 0 else "-inf"))
            for k, x in self.witness.items()}  # strict JSON: a claim may be inf or nan there
        formula = self.formula if len(self.formula) <= 10_000 else self.formula[:10_000] + "…"
        return {"variable": self.variable, "formula": formula, "verdict": self.verdict,
                "checked": self.checked, "failing": self.failing, "witness": witness,
                "diagnosis": self.diagnosis, "diagnosis_kind": self.diagnosis_kind, "proof": self.proof,
                "undefined": self.undefined}


@dataclass
class Undefined:
    """Cells where a claim is undefined (nan or ±inf) while ∂f/∂v is defined."""

    cells: np.ndarray  # (K,) bool
    isolated: np.ndarray  # (K,) bool: the claim is defined and right on both sides (tested cells)
    accepted: np.ndarray  # (K,) bool: accepted under the policy


def undefined_cells(graph: Graph, claim_graphs: Mapping[str, Graph], points: Mapping[str, np.ndarray],
                    claimed: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray],
                    failing: Mapping[str, np.ndarray], policy: str, seed: int = 0) -> dict[str, Undefined]:
    """For every claim, the failing cells where the claim is undefined and ∂f/∂v is not, and
    whether each is an isolated point: the claim is evaluated a small step to each side (along
    one random direction through every variable, at two distances) and must be defined there
    and agree with reverse-mode ∂f/∂v at the same side points. A point where a random draw
    lands is never isolated in practice; the special points probed on purpose can be."""
    from .interpret import Values, evaluate_output
    from .reverse import gradient

    out: dict[str, Undefined] = {}
    names = list(graph.variables)
    for v, claim in claim_graphs.items():
        if v not in failing:
            continue
        with np.errstate(all="ignore"):
            cells = failing[v] & ~np.isfinite(claimed[v]) & np.isfinite(truth[v])
        isolated = np.zeros_like(cells)
        tested = np.flatnonzero(cells)[:MAX_SIDE_TESTS]
        if len(tested) and names:
            rng = np.random.default_rng(seed)
            d = rng.normal(size=len(names))
            d /= np.linalg.norm(d)
            side = {n: [] for n in names}
            for k in tested:
                for h in SIDE_STEPS:
                    for sign in (-1.0, 1.0):
                        for j, n in enumerate(names):
                            x = float(np.asarray(points[n])[k]) if np.ndim(points[n]) else float(points[n])
                            side[n].append(x + sign * h * max(1.0, abs(x)) * d[j])
            at = {n: np.array(xs) for n, xs in side.items()}
            m = len(SIDE_STEPS) * 2
            with np.errstate(all="ignore"):
                c = np.broadcast_to(evaluate_output(claim, Values(at)), (len(tested) * m,))
                g = gradient(graph, at, [v])[v]
                close = np.abs(c - g) <= SIDE_RTOL * np.maximum(1.0, np.abs(g))
                ok = np.isfinite(c) & np.isfinite(g) & close
            isolated[tested] = ok.reshape(len(tested), m).all(axis=1)
        accepted = {"accept": cells, "reject": np.zeros_like(cells), "isolated": isolated}[policy]
        out[v] = Undefined(cells, isolated, accepted.copy())
    return out


def _fits(a: np.ndarray, b: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - b) <= SAME * np.maximum(np.abs(a), np.abs(b)) + 1e-300))


def _nice(x: float) -> str:
    return f"{x:.6g}"


# Stable names of the diagnoses (JSON `diagnosis_kind`, a check file's `diagnosis = "..."`).
DIAGNOSES = ("sign", "factor", "offset", "wrong-variable", "missing-term", "extra-term", "wrong-term",
             "undefined")
# Where a claim is undefined but ∂f/∂v is not: accept isolated points only (a removable
# singularity such as (x²−1)/(x−1) for x+1), accept every such point, or reject them all.
WHERE_UNDEFINED = ("isolated", "accept", "reject")
SIDE_STEPS = (1e-7, 1e-4)  # relative distances of the side points that tell an isolated point
SIDE_RTOL = 1e-6  # agreement of the claim with ∂f/∂v at the side points
MAX_SIDE_TESTS = 64


def diagnose(claimed: np.ndarray, truth: np.ndarray,
             others: Mapping[str, np.ndarray]) -> tuple[str, str] | None:
    """What a wrong claim is, if one explanation fits every judged point: (kind, text)."""
    if len(truth) == 0:
        return None
    if np.any(truth != 0) and _fits(claimed, -truth):
        return "sign", "a sign error: the claim is −∂f/∂v"
    for w, t in others.items():
        if _fits(claimed, t) and not _fits(claimed, truth):
            return "wrong-variable", f"the derivative with respect to {w}, not this variable"
    if len(truth) >= MIN_POINTS:
        nonzero = truth != 0
        if nonzero.all():
            with np.errstate(all="ignore"):
                ratio = claimed / truth
            k = float(np.median(ratio))
            if np.isfinite(k) and k not in (0, 1) and _fits(ratio, np.full_like(ratio, k)):
                return "factor", (f"off by a constant factor {_nice(k)} (claim = {_nice(k)} × ∂f/∂v; "
                                  "often a missing or extra chain-rule factor)")
        diff = claimed - truth
        c = float(np.median(diff))
        scale = float(np.max(np.abs(truth))) if len(truth) else 0.0
        if np.isfinite(c) and abs(c) > SAME * scale and np.all(np.abs(diff - c) <= SAME * max(scale, abs(c))):
            return "offset", f"off by a constant {_nice(c)} (claim = ∂f/∂v + {_nice(c)})"
    return None


def judge_claims(
    formulas: Mapping[str, str],
    claimed: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
    references: Mapping[str, np.ndarray],
    at_text: Any,
    pass_code: int,
    fail_code: int,
    proofs: Mapping[str, str] | None = None,
    terms: Mapping[str, tuple[str, str]] | None = None,
    undefined: Mapping[str, Undefined] | None = None,
    point_note: Any = None,
) -> dict[str, ClaimVerdict]:
    """The named verdict of every claim, from the claim column's judged cells (cells where
    the claim is undefined and that the policy accepted are no longer failing)."""
    out: dict[str, ClaimVerdict] = {}
    for v, formula in formulas.items():
        c = np.asarray(claimed[v], dtype=np.float64)
        code = codes[v]
        und = (undefined or {}).get(v)
        accepted = und.accepted if und is not None else np.zeros(len(code), bool)
        judged = (code == pass_code) | (code == fail_code) | accepted
        failing = (code == fail_code) & ~accepted
        where = (_undefined_evidence(und, at_text, references[v])
                 if und is not None and und.cells.any() else None)
        compared = (code == pass_code) | (code == fail_code)
        # an isolated point was compared on both sides of it; otherwise something must be compared
        sides = und is not None and bool((und.accepted & und.isolated).any())
        if not judged.any() or (not compared.any() and not failing.any() and not sides):
            # nothing compared: a claim undefined at every point is not "equal" anywhere
            out[v] = ClaimVerdict(v, formula, "cannot-judge", 0, 0,
                                  undefined=where if und is not None and und.cells.any() else None)
            continue
        if not failing.any():
            verdict = "equal-except-undefined" if accepted.any() else "correct"
            out[v] = ClaimVerdict(v, formula, verdict, int(judged.sum()), 0, undefined=where)
            if accepted.any():
                out[v].diagnosis = where["text"].replace("∂f/∂v", f"∂f/∂{v}")  # type: ignore[index]
            continue
        if und is not None and not (failing & ~und.cells).any():
            k = int(np.flatnonzero(failing)[0])
            witness = {"at": at_text(k), "claimed": float(c[k]), "true": float(np.asarray(references[v])[k]),
                       "probe": point_note(k) if point_note is not None else None}
            text = where["text"].replace("∂f/∂v", f"∂f/∂{v}")  # type: ignore[index]
            out[v] = ClaimVerdict(v, formula, "wrong", int(judged.sum()), int(failing.sum()), witness,
                                  f"undefined where the derivative is not: {text}",
                                  diagnosis_kind="undefined", undefined=where)
            continue
        truth = np.asarray(references[v], dtype=np.float64)
        with np.errstate(all="ignore"):
            gap = np.where(failing, np.abs(c - truth), -1.0)
        gap = np.where(failing & ~np.isfinite(gap), np.inf, gap)
        k = int(np.argmax(gap))
        witness = {"at": at_text(k), "claimed": float(c[k]), "true": float(truth[k]),
                   "probe": point_note(k) if point_note is not None else None}
        ok = judged & np.isfinite(truth) & np.isfinite(c)
        others = {w: np.asarray(references[w], dtype=np.float64)[ok] for w in references
                  if w != v and np.isfinite(np.asarray(references[w])[ok]).all()}
        found = diagnose(c[ok], truth[ok], others)
        kind, text = found if found is not None else (None, None)
        term = (terms or {}).get(v)
        if found is None and term is not None:  # SymPy found the one term that is off
            kind = f"{term[0]}-term"
            text = {"missing": f"a missing term: ∂f/∂v = claim + {term[1]}",
                    "extra": f"an extra term: claim = ∂f/∂v + {term[1]}",
                    "wrong": f"one term is wrong: {term[1]} (the rest of the claim is right)",
                    }[term[0]]
        if text is not None:
            text = text.replace("∂f/∂v", f"∂f/∂{v}")
        out[v] = ClaimVerdict(v, formula, "wrong", int(judged.sum()), int(failing.sum()), witness, text,
                              diagnosis_kind=kind)
    for v, c in out.items():
        c.proof = (proofs or {}).get(v)
        undefined_only = c.diagnosis_kind == "undefined" or (c.verdict == "cannot-judge" and c.undefined)
        if c.proof == "proved" and c.verdict in ("wrong", "cannot-judge") and not undefined_only:
            # SymPy proves claim = ∂f/∂v: numbers that disagree are float64 rounding in the
            # formula as written (cancellation), not a wrong derivative (check._proved_claims)
            c.verdict, c.diagnosis_kind, c.witness = "correct", None, None
            c.diagnosis = (f"SymPy proves it equal to ∂f/∂{v}; where its float64 value disagrees, "
                           "that is rounding in the formula as written (the cells marked unreliable)")
    return out


def _undefined_evidence(und: Undefined, at_text: Any, truth: np.ndarray) -> dict[str, Any]:
    ks = np.flatnonzero(und.cells)
    isolated = bool(und.isolated[ks].all())
    shown_points = [at_text(int(k)) for k in ks[:10]]
    first = int(ks[0])
    where = (f"at {len(ks)} isolated point{'s' if len(ks) != 1 else ''}" if isolated
             else f"at {len(ks)} point{'s' if len(ks) != 1 else ''}, not all isolated (on part of the box)")
    text = (f"the claim is undefined {where}, e.g. --at {shown_points[0]}, where ∂f/∂v = "
            f"{_nice(float(truth[first]))}" + (" (a removable singularity)" if isolated else
                                               ": its domain is smaller than the derivative's"))
    return {"count": int(len(ks)), "isolated": isolated, "at": shown_points, "text": text}
