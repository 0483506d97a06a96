"""Numerical truth: the exact reference, kinks, unreliable finite differences, float32,
explanations of bad values, JUnit and grouped help. Expected values are hand-derived or computed
here with mpmath, never copied from the code under test."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import mpmath
import numpy as np
import pytest
import sympy  # noqa: F401  (imported once here so forked SymPy workers start warm)
from click.testing import CliRunner

from gradcheck_cli import check
from gradcheck_cli.cli import cli
from gradcheck_cli.kinks import analyse
from gradcheck_cli.parse import parse


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


# ---------------------------------------------------------------- exact reference, 25 digits

def _mp_card(x: mpmath.mpf) -> mpmath.mpf:
    # d/dx cos(sin(x²) + 3x²) = -sin(sin(x²) + 3x²) · (2x cos(x²) + 6x)
    return -mpmath.sin(mpmath.sin(x**2) + 3 * x**2) * (2 * x * mpmath.cos(x**2) + 6 * x)


def _mp_neuron_x0() -> mpmath.mpf:
    s = 1 / (1 + mpmath.e ** -1)  # the sum w0 x0 + w1 x1 + w2 is 1
    return 2 * s * (1 - s)  # w0 · σ'(1)


@pytest.mark.parametrize(
    "expr, point, var, truth",
    [
        ("cos(sin(x**2)+3*x**2)", {"x": 1.5}, "x", lambda: _mp_card(mpmath.mpf("1.5"))),
        ("1/(1+exp(-(w0*x0+w1*x1+w2)))", {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}, "x0",
         _mp_neuron_x0),
        ("sigmoid(x)", {"x": -800.0}, "x",
         lambda: mpmath.e ** -800 / (1 + mpmath.e ** -800) ** 2),
        ("softplus(x)", {"x": 800.0}, "x", lambda: 1 / (1 + mpmath.e ** -800)),
    ],
)
def test_exact_reference_agrees_with_mpmath_to_25_digits(expr, point, var, truth) -> None:
    report = check(expr, point)
    assert report.reference == "exact"
    assert report.exact is not None
    with mpmath.workdps(50):
        want = truth()
        got = mpmath.mpf(report.exact[var])
        assert abs(got - want) <= mpmath.mpf(10) ** -25 * abs(want)


def test_sigmoid_and_softplus_at_800_are_exact_in_every_ad_mode() -> None:
    with mpmath.workdps(50):
        d_sig = float(mpmath.e ** -800 / (1 + mpmath.e ** -800) ** 2)  # underflows to 0.0
        d_soft = float(1 / (1 + mpmath.e ** -800))  # 1.0 to float64
    r = check("sigmoid(x)", {"x": -800.0})
    s = check("softplus(x)", {"x": 800.0})
    for m in ("reverse", "forward"):
        assert r.method(m).gradient == {"x": d_sig}
        assert s.method(m).gradient == {"x": d_soft}
    assert r.value == 0.0 and s.value == 800.0
    assert r.ok and s.ok


def test_table_title_names_the_reference() -> None:
    result = run("x**2", "--at", "x=3")
    assert result.exit_code == 0
    assert "reference: exact (30 digits)" in result.output.splitlines()[1]
    fallback = run("x**2", "--at", "x=3", "--reference", "richardson")
    assert "reference: richardson" in fallback.output
    # the reference is never an AD method: they are what is being checked
    refused = run("x**2", "--at", "x=3", "--reference", "forward")
    assert refused.exit_code == 2 and "never an AD method" in refused.output


# ---------------------------------------------------------------- kinks

@pytest.mark.parametrize(
    "expr, point, var, left, right",
    [
        ("relu(x)", {"x": 0.0}, "x", 0.0, 1.0),
        ("abs(x)", {"x": 0.0}, "x", -1.0, 1.0),
        ("3*abs(x)", {"x": 0.0}, "x", -3.0, 3.0),
        ("max(x, y)", {"x": 2.0, "y": 2.0}, "x", 0.0, 1.0),
        ("min(x, y)", {"x": 2.0, "y": 2.0}, "y", 1.0, 0.0),
        ("hard_swish(x)", {"x": -3.0}, "x", 0.0, -0.5),  # left: flat 0; right: (2x+3)/6
        ("hard_swish(x)", {"x": 3.0}, "x", 1.5, 1.0),  # left: (2x+3)/6; right: slope 1
        ("leaky_relu(x)", {"x": 0.0}, "x", 0.01, 1.0),
        ("elu(x, 2)", {"x": 0.0}, "x", 2.0, 1.0),
        ("relu(x)*y", {"x": 0.0, "y": 2.0}, "x", 0.0, 2.0),
        ("relu(2 - x)", {"x": 2.0}, "x", -1.0, 0.0),
    ],
)
def test_kinks_give_one_sided_derivatives_and_exit_0(expr, point, var, left, right) -> None:
    report = check(expr, point)
    assert report.one_sided[var] == (left, right)
    kinds = [d.kind for d in report.diagnostics]
    assert "nondifferentiable" in kinds
    message = next(d.message for d in report.diagnostics
                   if d.kind == "nondifferentiable" and f"in {var}:" in d.message)
    assert f"∂f/∂{var}⁻ = {left:g}" in message and f"∂f/∂{var}⁺ = {right:g}" in message
    assert report.ok  # every method's value lies between the one-sided derivatives
    at = ",".join(f"{k}={v}" for k, v in point.items())
    assert run(expr, "--at", at).exit_code == 0
    strict = run(expr, "--at", at, "--strict")
    assert strict.exit_code == 1


def test_kink_json_carries_a_nondifferentiable_diagnostic() -> None:
    result = run("relu(x)", "--at", "x=0", "--format", "json")
    data = json.loads(result.output)
    assert result.exit_code == 0
    assert data["one_sided"] == {"x": {"left": 0.0, "right": 1.0}}
    assert any(d["kind"] == "nondifferentiable" for d in data["diagnostics"])


def _one_cell(g: float, ref: float, *, estimate: float | None = None,
              interval: tuple[float, float] | None = None) -> tuple[str, float]:
    """Judge one value against one reference with judge.judge_cells: (cell name, error)."""
    from gradcheck_cli import judge

    one = lambda x: np.array([x], dtype=float)  # noqa: E731
    ref_ = judge.Reference(one(ref), one(0.0), one(0.0), np.array(["exact"], dtype=object),
                           np.array([-1], dtype=np.int32))
    special = judge.Special()
    if interval is not None:
        special = judge.Special(interval=(one(interval[0]), one(interval[1])),
                                corner=np.array([True]))
    kind = "finite-difference" if estimate is not None else "ad"
    cells = judge.judge_cells(
        "m", kind, {"x": one(g)}, {}, {}, {"x": one(estimate)} if estimate is not None else None,
        None, {"x": ref_}, {"x": special}, {"x": one(1.0)}, 1e-9, None, estimate is not None,
        float(np.finfo(np.float64).eps), judge.Reasons())
    return judge.CELL_NAMES[int(cells.code["x"][0])], float(cells.error["x"][0])


def test_a_value_outside_the_one_sided_interval_fails() -> None:
    # at a kink any value between the one-sided derivatives (inclusive) is a valid choice
    assert _one_cell(0.0, math.nan, interval=(0.0, 1.0))[0] == "kink"
    assert _one_cell(1.0, math.nan, interval=(0.0, 1.0))[0] == "kink"
    assert _one_cell(0.5, math.nan, interval=(1.0, 0.0))[0] == "kink"
    assert _one_cell(1.5, math.nan, interval=(0.0, 1.0)) == ("fail", 0.5)


def test_nearest_kink_distance_is_linearised_along_each_variable() -> None:
    graph = parse("relu(2*x - y)")
    analysis = analyse(graph, {"x": np.asarray(1.0), "y": np.asarray(1.9)}, ["x", "y"])
    # gap g = 2x - y = 0.1; dg/dx = 2, dg/dy = -1: distances 0.05 and 0.1
    assert analysis.nearest["x"][0] == pytest.approx(0.05)
    assert analysis.nearest["y"][0] == pytest.approx(0.1)
    assert analysis.at_point == []


def test_central_straddling_a_kink_is_unreliable_not_failed() -> None:
    report = check("relu(x - 1e-7)", {"x": 0.0})
    central = report.method("central")
    assert central.passed == {"x": None}
    assert central.unreliable is not None and "straddles a kink" in central.unreliable["x"]
    assert report.ok


def test_complex_step_refuses_abs_and_says_why() -> None:
    report = check("abs(x) + x", {"x": 1.0}, methods=["reverse", "complex"])
    m = report.method("complex")
    assert m.gradient is None and m.ok is None
    assert "abs" in (m.note or "")
    assert report.ok  # a method that could not run is not a disagreement


def test_finite_difference_with_a_hopeless_step_is_unreliable_not_failed() -> None:
    # sin(x) at 1e6: h = cbrt(eps)·1e6 ≈ 6 spans a whole period; the estimate knows it.
    report = check("sin(x)", {"x": 1e6})
    central = report.method("central")
    assert central.passed == {"x": None}
    assert "too large to judge" in (central.unreliable or {})["x"]
    assert report.ok
    rich = check("sin(x)", {"x": 1e6}, methods=["richardson"])
    assert rich.method("richardson").passed == {"x": True}
    assert rich.method("richardson").gradient["x"] == pytest.approx(float(mpmath.cos(10**6)), rel=1e-9)


# ---------------------------------------------------------------- why a value is bad

def test_overflow_message_for_log_one_plus_exp_names_the_step_and_the_fix() -> None:
    result = run("log(1+exp(x))", "--at", "x=800")
    assert result.exit_code == 2
    assert "exp(u) with u = 800 overflows to inf, in exp(x)" in result.stderr
    assert "softplus(x)" in result.stderr
    assert run("softplus(x)", "--at", "x=800").exit_code == 0


@pytest.mark.parametrize(
    "expr, at, words",
    [
        ("log(x - 2)", "x=1.5", ["log(u) with u = -0.5", "in log(x - 2)"]),
        ("1/exp(x)", "x=-800", ["divides by zero", "the divisor exp(x) underflowed to 0"]),
        ("x/x", "x=0", ["0/0"]),
        ("(-x)**0.5", "x=1", ["negative base to a fractional power"]),
    ],
)
def test_undefined_operations_are_named(expr: str, at: str, words: list[str]) -> None:
    result = run(expr, "--at", at)
    assert result.exit_code == 2
    for w in words:
        assert w in result.stderr


def test_intermediate_overflow_with_a_finite_value_is_a_diagnostic() -> None:
    report = check("1/(1+exp(-x))", {"x": -800.0})
    assert report.value == 0.0
    notes = [d for d in report.diagnostics if d.kind == "overflow"]
    assert any("exp(u) with u = 800" in d.message and "sigmoid(x)" in d.message for d in notes)


# ---------------------------------------------------------------- float32

def test_float32_defaults() -> None:
    report = check("cos(sin(x**2)+3*x**2)", {"x": 1.5}, dtype="float32")
    central = report.method("central")
    eps32 = float(np.finfo(np.float32).eps)
    # the step comes from float32's eps: cbrt(eps32)·max(1, 1.5), as float32 can represent
    # x ± h (the step reported is the distance actually used, so within float32 rounding)
    assert central.step["x"] == pytest.approx(np.cbrt(eps32) * 1.5, rel=1e-4)
    assert report.method("reverse").rtol == 1e-4
    assert report.dtype == "float32"
    # reverse mode in float32 really is float32: its error is float32-sized, not float64-sized
    with mpmath.workdps(30):
        truth = _mp_card(mpmath.mpf(float(np.float32(1.5))))
    err = abs(report.method("reverse").gradient["x"] - float(truth)) / abs(float(truth))
    assert 1e-12 < err < 1e-5
    assert report.ok


def test_float32_rounds_the_point() -> None:
    report = check("x", {"x": 0.1}, dtype="float32")
    assert report.point == {"x": float(np.float32(0.1))}


# ---------------------------------------------------------------- JUnit

def test_junit_report_and_error_file(tmp_path) -> None:
    good = tmp_path / "good.xml"
    assert run("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--junit", str(good)).exit_code == 0
    suite = ET.parse(good).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "12" and suite.get("failures") == "0"
    bad = tmp_path / "bad.xml"
    result = run("log(x)", "--at", "x=-1", "--junit", str(bad))
    assert result.exit_code == 2
    suite = ET.parse(bad).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and error.get("type") == "undefined" and "log" in error.get("message", "")
    fail = tmp_path / "fail.xml"
    assert run("relu(x)", "--at", "x=0", "--strict", "--junit", str(fail)).exit_code == 1
    suite = ET.parse(fail).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


# ---------------------------------------------------------------- help

def test_help_groups_every_option_once() -> None:
    text = run("--help").output
    sections = ["Formula and point:", "Methods and verdict:", "Output:", "Limits:"]
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    for option in ["--file", "--at", "--wrt", "--methods", "--reference", "--rtol", "--atol",
                   "--step", "--dtype", "--strict", "--format", "--digits", "--show-formula",
                   "--junit", "--timeout", "--symbolic-timeout", "--symbolic-memory",
                   "--max-length", "--max-depth", "--max-digits", "--max-exponent"]:
        assert text.count(f"  {option} ") + text.count(f"  {option}\n") == 1, option


# ---------------------------------------------------------------- regressions

def test_regression_sympy_nested_sum_with_pi() -> None:
    """SymPy 1.14 differentiated the *unevaluated* sin((x + x) + (z + pi)) as -2*cos(x + x),
    dropping z and pi, so the exact reference was wrong and correct AD columns 'failed'. SymPy
    now gets canonical (evaluated) expressions."""
    report = check("sin((x + x) + (z + pi))", {"x": 0.3, "z": 1.0})
    with mpmath.workdps(40):
        c = mpmath.cos(mpmath.mpf(0.6) + 1 + mpmath.pi)
        assert abs(mpmath.mpf(report.exact["x"]) - 2 * c) < mpmath.mpf(10) ** -28
        assert abs(mpmath.mpf(report.exact["z"]) - c) < mpmath.mpf(10) ** -28
    assert report.ok


def test_regression_no_estimate_is_no_pass() -> None:
    """A finite difference that cannot estimate its error (estimate inf) used to pass any value;
    it is unreliable instead."""
    assert _one_cell(123.0, 1.0, estimate=math.inf)[0] == "unreliable"
    assert _one_cell(1.0 + 1e-12, 1.0, estimate=1e-12)[0] == "pass"
    assert _one_cell(1.0 + 1e-10, 1.0, estimate=1e-12)[0] == "fail"
    # an estimate too large to decide is never a pass, even when the value is within it
    assert _one_cell(1.1, 1.0, estimate=0.5)[0] == "unreliable"
