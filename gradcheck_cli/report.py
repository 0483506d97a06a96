"""The result of a check, as plain data: what every renderer (table, JSON, markdown) reads.

Numbers are Python floats (a single point) so a Report can be inspected, compared in tests and
serialised without numpy. A method that could not run has `gradient = None`, `ok = None` and a
`note` saying why; it is never shown as a silent NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Diagnostic:
    kind: str  # stable identifier: symbolic-skipped, method-failed, reference-fallback, ...
    message: str


@dataclass
class MethodReport:
    name: str  # stable identifier: reverse, forward, symbolic, central
    gradient: dict[str, float] | None
    note: str | None = None  # why the method could not run
    step: dict[str, float] | None = None  # finite differences: the step used per variable
    estimate: dict[str, float] | None = None  # finite differences: own absolute-error estimate
    judged_by: str = "tolerance"  # "tolerance" (rtol/atol) or "estimate" (its own estimate)
    error: dict[str, float] | None = None  # relative error, or absolute where the reference is 0
    error_kind: dict[str, str] | None = None  # per variable: relative, absolute or interval
    passed: dict[str, bool | None] | None = None  # per variable; None: unreliable, not judged
    unreliable: dict[str, str] | None = None  # per variable: why this value is no fair witness
    ok: bool | None = None  # all variables pass; None when the method did not run
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def ran(self) -> bool:
        return self.gradient is not None


@dataclass
class Report:
    expression: str
    point: dict[str, float]
    value: float
    wrt: list[str]
    reference: str
    methods: list[MethodReport]
    ok: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)
    formulas: dict[str, str] = field(default_factory=dict)  # symbolic derivative, pretty text
    exact: dict[str, str] | None = None  # the exact reference's digits, when it is the reference
    one_sided: dict[str, tuple[float, float]] = field(default_factory=dict)  # kinks: (left, right)
    strict: bool = False  # a nondifferentiable point counts as a failure
    dtype: str = "float64"  # precision of the AD and finite-difference methods
    nodes: int = 0  # size of the computation graph
    depth: int = 0

    def method(self, name: str) -> MethodReport:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)
