"""Claimed derivatives (--expect): named verdicts, witnesses and diagnoses.

Each diagnosis is planted by hand (a textbook mistake) and must be named; a correct answer must
get no diagnosis and exit 0. Values are hand derivatives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck_cli import GradcheckError, check
from gradcheck_cli.cli import cli


def claim(expr: str, expect: dict[str, str], **kw: object):
    return check(expr, expect=expect, sample=40, seed=3, **kw)


@pytest.mark.parametrize(("expr", "expect"), [
    ("sigmoid(x)", {"x": "sigmoid(x)*(1-sigmoid(x))"}),
    ("tanh(x)", {"x": "1 - tanh(x)**2"}),
    ("softplus(x)", {"x": "sigmoid(x)"}),
    ("x*log(y)", {"x": "log(y)", "y": "x/y"}),
])
def test_a_correct_claim_is_correct_everywhere(expr: str, expect: dict[str, str]) -> None:
    domain = {"y": (0.1, 5.0)} if "y" in expr else None
    report = claim(expr, expect, domain=domain)
    assert report.verdict == "pass"
    for v in expect:
        c = report.claims[v]
        assert c.verdict == "correct" and c.checked == 40 and c.diagnosis is None


@pytest.mark.parametrize(("expr", "wrong", "diagnosis"), [
    ("sin(x**2)", "-2*x*cos(x**2)", "sign error"),
    ("exp(2*x)", "exp(2*x)", "constant factor 0.5"),
    ("sin(3*x)", "cos(3*x)", "constant factor 0.333333"),
    ("x**2+3*x", "2*x+5", "off by a constant 2"),
])
def test_each_planted_mistake_is_named(expr: str, wrong: str, diagnosis: str) -> None:
    report = claim(expr, {"x": wrong})
    c = report.claims["x"]
    assert report.verdict == "fail" and c.verdict == "wrong"
    assert c.diagnosis is not None and diagnosis in c.diagnosis
    # the witness is a real point where the claim is wrong, as a pasteable --at
    x = float(c.witness["at"].split("=")[1])
    assert c.witness["claimed"] != pytest.approx(c.witness["true"], rel=1e-6)
    recheck = check(expr, {"x": x}, expect={"x": wrong})
    assert recheck.claims["x"].verdict == "wrong"


def test_the_derivative_with_respect_to_the_wrong_variable_is_named() -> None:
    report = claim("x*y**2", {"x": "2*x*y"})
    assert "with respect to y" in report.claims["x"].diagnosis


def test_a_claim_wrong_only_somewhere_fails_exactly_there() -> None:
    # |x|' claimed as 1: right for x > 0, wrong (by a sign) for x < 0
    report = claim("x*x/2", {"x": "abs(x)"})
    col = report.method("claim")
    wrong = report.points["x"] < 0
    assert ((col.cells.code["x"] == 1) == wrong).all()
    assert report.claims["x"].failing == int(wrong.sum())


def test_claims_may_only_use_the_formulas_variables() -> None:
    with pytest.raises(GradcheckError) as err:
        check("x**2", {"x": 1.0}, expect={"x": "2*z"})
    assert err.value.kind == "unknown-variable" and "z" in err.value.message
    with pytest.raises(GradcheckError) as err:
        check("x**2", {"x": 1.0}, expect={"q": "2*x"})
    assert "q" in err.value.message


def test_a_claim_with_a_syntax_error_names_the_claim() -> None:
    with pytest.raises(GradcheckError) as err:
        check("x**2", {"x": 1.0}, expect={"x": "2x"})
    assert "claim for ∂f/∂x" in err.value.message


def test_cli_expect_json_and_exit_codes() -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["x*log(y)", "--expect", "x=log(y)", "--expect", "y=x/y", "--sample", "30",
                               "--domain", "x=-3:3,y=0.1:5", "--seed", "1", "--format", "json"])
    assert good.exit_code == 0
    data = json.loads(good.stdout)
    assert data["claims"]["x"]["verdict"] == "correct" and data["claims"]["y"]["verdict"] == "correct"
    bad = runner.invoke(cli, ["sin(x**2)", "--expect", "x=cos(x**2)", "--at", "x=1.2"])
    assert bad.exit_code == 1 and "claim ∂f/∂x = cos(x**2): ✗ wrong" in " ".join(bad.output.split())
    assert runner.invoke(cli, ["x", "--expect", "nonsense", "--at", "x=1"]).exit_code == 2


def test_a_claim_at_one_point_is_not_called_a_factor_by_coincidence() -> None:
    report = check("exp(2*x)", {"x": 0.3}, expect={"x": "exp(2*x)"})
    assert report.claims["x"].verdict == "wrong" and report.claims["x"].diagnosis is None


def test_claims_over_arrays() -> None:
    report = check("x**3", {"x": np.array([1.0, 2.0, -1.0])}, expect={"x": "3*x**2"})
    assert report.claims["x"].verdict == "correct" and report.claims["x"].checked == 3


def test_a_textbook_answer_with_csc_and_cot_is_checked() -> None:
    # d/dx (1 - cot x)/(1 + cot x) = 2 csc² x / (1 + cot x)², written the textbook way
    report = check("(1-cot(x))/(1+cot(x))", sample=30, seed=2, domain={"x": (0.1, 1.4)},
                   expect={"x": "2*csc(x)**2/(1 + cot(x))**2"})
    assert report.verdict == "pass" and report.claims["x"].verdict == "correct"


@pytest.mark.parametrize(("expr", "at", "want"), [
    ("cbrt(x)", {"x": -8.0}, 1 / 12),  # (1/3)·(-8)^(-2/3) = 1/12
    ("log2(x)", {"x": 4.0}, 1 / (4 * np.log(2))),
    ("atan2(y, x)", {"x": 1.0, "y": 1.0}, -0.5),  # ∂/∂x = -y/(x²+y²)
    ("acosh(x)", {"x": 2.0}, 1 / np.sqrt(3)),
])
def test_calculus_functions_have_their_hand_derivatives(expr: str, at: dict, want: float) -> None:
    report = check(expr, at)
    assert report.verdict == "pass"
    assert report.method("reverse").gradient["x"] == pytest.approx(want, rel=1e-14)


def test_sympy_proves_a_correct_claim_and_not_a_wrong_one() -> None:
    good = check("tanh(x)", {"x": 0.4}, expect={"x": "1 - tanh(x)**2"})
    assert good.claims["x"].verdict == "correct" and good.claims["x"].proof == "proved"
    bad = check("sin(x**2)", {"x": 1.0}, expect={"x": "cos(x**2)"})
    assert bad.claims["x"].verdict == "wrong" and bad.claims["x"].proof == "not proved"
