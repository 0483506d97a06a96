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

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "formula": self.formula, "verdict": self.verdict,
                "checked": self.checked, "failing": self.failing, "witness": self.witness,
                "diagnosis": self.diagnosis, "diagnosis_kind": self.diagnosis_kind, "proof": self.proof}


def _fits(a: np.ndarray, b: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - b) <= SAME * np.maximum(np.abs(a), np.abs(b)) + 1e-300))


def _nice(x: float) -> str:
    return f"{x:.6g}"


# Stable names of the diagnoses (JSON `diagnosis_kind`, a check file's `diagnosis = "..."`).
DIAGNOSES = ("sign", "factor", "offset", "wrong-variable", "missing-term", "extra-term", "wrong-term")


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
            if np.isfinite(k) and k != 1 and _fits(ratio, np.full_like(ratio, k)):
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
) -> dict[str, ClaimVerdict]:
    """The named verdict of every claim, from the claim column's judged cells."""
    out: dict[str, ClaimVerdict] = {}
    for v, formula in formulas.items():
        c = np.asarray(claimed[v], dtype=np.float64)
        code = codes[v]
        judged = (code == pass_code) | (code == fail_code)
        failing = code == fail_code
        if not judged.any():
            out[v] = ClaimVerdict(v, formula, "cannot-judge", 0, 0)
            continue
        if not failing.any():
            out[v] = ClaimVerdict(v, formula, "correct", int(judged.sum()), 0)
            continue
        truth = np.asarray(references[v], dtype=np.float64)
        with np.errstate(all="ignore"):
            gap = np.where(failing, np.abs(c - truth), -1.0)
        gap = np.where(failing & ~np.isfinite(gap), np.inf, gap)
        k = int(np.argmax(gap))
        witness = {"at": at_text(k), "claimed": float(c[k]), "true": float(truth[k])}
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
    return out
