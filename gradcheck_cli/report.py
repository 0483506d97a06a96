"""The result of a check, as plain data: what every renderer (table, JSON, markdown, JUnit) reads.

Arrays inside: every per-point quantity is a numpy array over the batch of K points (K = 1 for
one point), and every cell (method × variable × point) has a code from `judge.CELL_NAMES`.
For a check at one point given as plain numbers, the v1 views (`point`, `value`,
`MethodReport.gradient`, `error`, `passed`, ...) are plain floats and dicts; for a batch they
are arrays. A method that could not run has no values and a `note` saying why; it is never
shown as a silent NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .judge import (
    CELL_NAMES,
    ERROR_KINDS,
    FAIL,
    JUDGED,
    LENIENT,
    PASS,
    REFERENCE,
    UNRELIABLE,
    Cells,
)


@dataclass
class Diagnostic:
    kind: str  # stable identifier: symbolic-skipped, method-failed, reference-fallback, ...
    message: str


def _view(a: np.ndarray, batched: bool) -> Any:
    if batched:
        return a.copy()
    x = a[0]
    return x.item() if isinstance(x, np.generic) else x


@dataclass
class MethodReport:
    name: str  # stable identifier: reverse, forward, symbolic, central, richardson, complex
    kind: str  # ad | symbolic | finite-difference
    values: dict[str, np.ndarray] | None  # v -> (K,)
    note: str | None = None  # why the method could not run at all
    steps: dict[str, np.ndarray] | None = None  # finite differences: step per variable (K,)
    estimates: dict[str, np.ndarray] | None = None  # own absolute-error estimate (K,)
    cells: Cells | None = None
    reasons: list[str] = field(default_factory=list)  # shared with the report
    judged_by: str = "tolerance"  # "tolerance" (rtol/atol) or "estimate" (its own estimate)
    rtol: float = 0.0
    atol: float = 0.0  # the absolute floor: rtol × the gradient's size unless --atol was given
    atol_scaled: bool = True  # atol is relative to the gradient's size (not absolute)
    batched: bool = False

    @property
    def ran(self) -> bool:
        return self.values is not None

    def why(self, v: str, k: int) -> str | None:
        if self.cells is None:
            return self.note
        i = int(self.cells.why[v][k])
        return self.reasons[i] if i >= 0 else None

    # ---- v1 views: plain numbers for one point, arrays for a batch ----
    @property
    def gradient(self) -> dict[str, Any] | None:
        if self.values is None:
            return None
        return {v: _view(a, self.batched) for v, a in self.values.items()}

    @property
    def step(self) -> dict[str, Any] | None:
        return None if self.steps is None else {v: _view(a, self.batched) for v, a in self.steps.items()}

    @property
    def estimate(self) -> dict[str, Any] | None:
        if self.estimates is None or self.values is None:
            return None
        return {v: _view(a, self.batched) for v, a in self.estimates.items()}

    @property
    def error(self) -> dict[str, Any] | None:
        if self.cells is None or self.values is None:
            return None
        return {v: _view(a, self.batched) for v, a in self.cells.error.items()}

    @property
    def error_kind(self) -> dict[str, Any] | None:
        if self.cells is None or self.values is None:
            return None
        names = np.array(ERROR_KINDS, dtype=object)
        return {v: _view(names[a], self.batched) for v, a in self.cells.kind.items()}

    @property
    def status(self) -> dict[str, Any] | None:
        """Per variable, the cell's name (`judge.CELL_NAMES`)."""
        if self.cells is None:
            return None
        names = np.array(CELL_NAMES, dtype=object)
        return {v: _view(names[a], self.batched) for v, a in self.cells.code.items()}

    @property
    def passed(self) -> dict[str, Any] | None:
        """v1's view: True (passed or accepted), False (failed), None (not judged)."""
        if self.cells is None or self.values is None:
            return None
        out = {}
        for v, c in self.cells.code.items():
            p = np.where(c == FAIL, False, np.where(np.isin(c, (PASS, REFERENCE, *LENIENT)), True, None))
            out[v] = _view(p.astype(object), self.batched)
        return out

    @property
    def unreliable(self) -> dict[str, str]:
        """Per variable, why a value is no fair witness (the first such point)."""
        out: dict[str, str] = {}
        if self.cells is None:
            return out
        for v, c in self.cells.code.items():
            hit = np.flatnonzero(c == UNRELIABLE)
            if len(hit):
                out[v] = self.why(v, int(hit[0])) or "unreliable"
        return out

    @property
    def ok(self) -> bool | None:
        """No cell fails; None when the method did not run."""
        if self.values is None or self.cells is None:
            return None
        return not any(np.any(c == FAIL) for c in self.cells.code.values())

    def count(self, v: str, codes: tuple[int, ...]) -> int:
        assert self.cells is not None
        return int(np.isin(self.cells.code[v], codes).sum())


@dataclass
class Sample:
    """How the points were drawn (`--sample`)."""

    n: int
    seed: int
    domain: dict[str, tuple[float, float]]
    redrawn: int = 0  # draws replaced because f was undefined there
    dropped: int = 0  # points still undefined after the last redraw (not checked)
    undefined_where: str | None = None  # why f was undefined at a typical bad draw
    defined_fraction: float = 1.0  # of the box, as the first stratified draw saw it
    hint: str | None = None  # a --domain where f is defined, when much of the box is not
    probes: list[str] = field(default_factory=list)  # why each probed point (after the n drawn)


@dataclass
class Report:
    expression: str
    points: dict[str, np.ndarray]  # v -> (K,), the points every method was given
    f: np.ndarray  # (K,) f at the points
    wrt: list[str]
    reference: str  # the main reference's name (the most used source), or "none"
    methods: list[MethodReport]
    verdict: str  # pass | fail | inconclusive
    diagnostics: list[Diagnostic] = field(default_factory=list)
    formulas: dict[str, str] = field(default_factory=dict)  # symbolic derivative, pretty text
    formula_lines: dict[str, str] = field(default_factory=dict)  # the same, one line each (JSON)
    formula_latex: dict[str, str] = field(default_factory=dict)  # the same in LaTeX
    latex: bool = False  # show the formulas as LaTeX (--latex)
    step_partials: list[str] = field(default_factory=list)  # a program: ∂J/∂u = -sin(u), ...
    description: str = ""  # the check file's description
    exact_text: dict[int, dict[str, str]] = field(default_factory=dict)  # point -> v -> digits
    reference_source: dict[str, np.ndarray] = field(default_factory=dict)  # v -> (K,) source names
    reference_values: dict[str, np.ndarray] = field(default_factory=dict)  # v -> (K,) float64
    reference_note: str = ""  # why this reference
    kinks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    strict: bool = False  # a nondifferentiable point counts as a failure
    dtype: str = "float64"  # precision of the AD and finite-difference methods
    nodes: int = 0  # size of the computation graph
    depth: int = 0
    batched: bool = False  # the points were given (or drawn) as arrays
    sample: Sample | None = None
    reasons: list[str] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)  # v -> claims.ClaimVerdict
    warnings: list[str] = field(default_factory=list)  # a program's suspicious steps (parse.py)
    output_name: str | None = None  # a program's output step
    # many variables: each method's ∇f·d along random directions against the reference's
    directional: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.f)

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    @property
    def point(self) -> dict[str, Any]:
        return {v: _view(a, self.batched) for v, a in self.points.items()}

    @property
    def value(self) -> Any:
        return _view(self.f, self.batched)

    @property
    def exact(self) -> dict[str, str] | None:
        """v1's view: the exact digits at the (single) point, when the exact is the reference."""
        if self.batched or self.reference != "exact" or 0 not in self.exact_text:
            return None
        return self.exact_text[0]

    @property
    def one_sided(self) -> dict[str, Any]:
        """At a kink: per variable (left, right); one point: floats, many: arrays (nan off the kink)."""
        out = {}
        for v, (corner, left, right) in self.kinks.items():
            if self.batched:
                out[v] = (np.where(corner, left, np.nan), np.where(corner, right, np.nan))
            elif corner[0]:
                out[v] = (float(left[0]), float(right[0]))
        return out

    def to_dict(self, per_point: bool = False) -> dict[str, Any]:
        """The report as the JSON object `--format json` prints (strict: no NaN or Infinity)."""
        from .render import report_dict

        return report_dict(self, per_point)

    def to_json(self, per_point: bool = False) -> str:
        from .render import to_json

        return to_json(self, per_point)

    def method(self, name: str) -> MethodReport:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)

    def judged_cells(self) -> int:
        return sum(m.count(v, JUDGED) for m in self.methods if m.cells is not None for v in self.wrt)

    def at_text(self, k: int) -> str:
        """Point k as a pasteable --at value."""
        return ",".join(f"{v}={float(self.points[v][k])!r}" for v in self.points)


__all__ = ["Diagnostic", "MethodReport", "Report", "Sample"]
