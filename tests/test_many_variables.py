"""Many variables: past methods.MANY_VARIABLES the finite differences and forward mode check
∇f·d along random directions and a random subset of variables, and the check says exactly what
was checked; a wrong partial anywhere moves ∇f·d and fails the check. --full checks them all."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gradcheck_cli import check, rules

NET = " + ".join(f"v{j}*tanh(" + " + ".join(f"w{j}_{i}*x{i}" for i in range(10)) + ")" for j in range(10))


def point(seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    names = [f"v{j}" for j in range(10)] + [f"w{j}_{i}" for j in range(10) for i in range(10)] + \
        [f"x{i}" for i in range(10)]
    return {n: float(rng.uniform(-1, 1)) for n in names}


def test_a_net_with_120_variables_checks_directions_and_says_so() -> None:
    report = check(NET, point(), methods=["reverse", "forward", "central", "complex"], reference="complex")
    assert report.verdict == "pass"
    by = {d["method"]: d for d in report.directional}
    assert set(by) == {"reverse", "forward", "central"} and by["reverse"]["reference"] == "complex"
    assert all(d["failed"] == 0 and d["passed"] == 8 for d in by.values())
    assert by["reverse"]["checked"] == "8 random directions and 16 of 120 variables"
    central = report.method("central")
    assert sum(1 for v in report.wrt if central.status[v] == "pass") == 16  # the sampled variables
    assert sum(1 for v in report.wrt if central.status[v] == "not-run") == 104


def test_a_wrong_partial_is_caught_along_the_directions(monkeypatch: pytest.MonkeyPatch) -> None:
    # tanh' planted as 1 - tanh: reverse and forward both use it; the complex step does not
    wrong = replace(rules.RULES["tanh"], partials=(lambda o, x: 1 - o,))
    monkeypatch.setitem(rules.RULES, "tanh", wrong)
    report = check(NET, point(), methods=["reverse", "forward", "complex"], reference="complex")
    by = {d["method"]: d for d in report.directional}
    assert report.verdict == "fail"
    assert by["reverse"]["failed"] > 0 and by["forward"]["failed"] > 0
    w = by["reverse"]["worst"]
    assert w is not None and abs(w["value"] - w["reference"]) > 1e-6


def test_full_checks_every_variable() -> None:
    report = check(NET, point(), methods=["reverse", "central"], reference="complex", full=True)
    assert report.directional == [] and report.verdict == "pass"
    central = report.method("central")
    assert all(central.status[v] == "pass" for v in report.wrt)
