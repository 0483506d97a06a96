"""The `gradcheck` command: output formats, exit codes, and every way to give it bad input.

Driven in-process through click's CliRunner (the `cli` command), and for a few cases as a real
subprocess (`python -m gradcheck_cli`, i.e. `main()`), where click's own usage errors must also
come out as JSON under --format json. Expected numbers are lecture values or mpmath at 30 digits.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import mpmath
import pytest
import sympy  # noqa: F401  # imported once here, so symbolic's forked workers need not import it
from click.testing import CliRunner, Result

from gradcheck_cli.cli import cli

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["reverse", "forward", "symbolic", "central"]
COLUMNS = ["exact", *METHODS]  # "exact": the 30-digit reference column, when it is shown
NO_SYMBOLIC = ["--methods", "reverse,forward,central", "--reference", "complex"]  # fast runs
NONFINITE = {"nan", "inf", "-inf"}


def run(*args: str) -> Result:
    # wide terminal so no number is folded across lines in the table
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


def _reject_constant(token: str) -> None:
    raise ValueError(f"non-standard JSON token {token}")


def strict_json(text: str) -> dict:
    """RFC 8259 only: NaN, Infinity and -Infinity are rejected."""
    return json.loads(text, parse_constant=_reject_constant)


def assert_clean_exit(result: Result, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# The card examples, with 30-digit references written out by hand
# --------------------------------------------------------------------------------------------

def exact_card():
    with mpmath.workdps(30):
        x = mpmath.mpf(1.5)
        t = x**2
        u = mpmath.sin(t) + 3 * t
        return mpmath.cos(u), {"x": -mpmath.sin(u) * (mpmath.cos(t) * 2 * x + 6 * x)}


def exact_add_mul():
    return mpmath.mpf(-12), {"x": mpmath.mpf(-4), "y": mpmath.mpf(-4), "z": mpmath.mpf(3)}


def exact_neuron():
    with mpmath.workdps(30):
        s = 1 / (1 + mpmath.exp(-1))  # w0*x0 + w1*x1 + w2 = 1
        ds = s * (1 - s)
        return s, {"w0": -ds, "x0": 2 * ds, "w1": -2 * ds, "x1": -3 * ds, "w2": ds}


CARDS = [
    pytest.param("cos(sin(x**2)+3*x**2)", "x=1.5", exact_card, {"x": "-6.7409"}, id="card"),
    pytest.param("(x+y)*z", "x=-2,y=5,z=-4", exact_add_mul, {"x": "-4", "y": "-4", "z": "3"},
                 id="add-mul"),
    pytest.param("1/(1+exp(-(w0*x0+w1*x1+w2)))", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3", exact_neuron,
                 {"x0": "0.393", "w0": "-0.197"}, id="neuron"),
]


def _split(line: str, bar: str) -> list[str]:
    return [c.strip() for c in line.strip().strip(bar).split(bar)]


def table_rows(output: str) -> dict[str, dict[str, str]]:
    """Variable -> column name -> the first text line of its cell, from rich's box-drawn table."""
    headers = [_split(ln, "┃") for ln in output.splitlines() if ln.startswith("┃")]
    names = []
    for col in zip(*headers):
        words = " ".join(col).split()
        names.append(next((w for w in words if w in COLUMNS), " ".join(words)))
    rows: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        if line.startswith("│"):
            cells = _split(line, "│")
            if cells[0]:
                rows[cells[0]] = dict(zip(names[1:], cells[1:]))
    return rows


def _matches_lecture(value: float, lecture: str) -> bool:
    decimals = len(lecture.split(".")[1]) if "." in lecture else 0
    return abs(value - float(lecture)) <= 10.0**-decimals / 2 + 1e-12


@pytest.mark.parametrize(("expr", "at", "exact", "lecture"), CARDS)
def test_table_shows_lecture_values(expr, at, exact, lecture):
    result = run(expr, "--at", at)
    assert_clean_exit(result, 0)
    value, grad = exact()
    rows = table_rows(result.stdout)
    assert set(rows) == set(grad)
    for v, want in grad.items():
        cells = rows[v]
        assert set(METHODS) <= set(cells) <= set(COLUMNS)
        for name, cell in cells.items():
            got = float(cell)
            tol = 1e-8 if name != "central" else 1e-7  # 10 significant digits are shown
            assert math.isclose(got, float(want), rel_tol=tol, abs_tol=1e-12), (v, name, cell)
        if v in lecture:
            assert _matches_lecture(float(cells["reverse"]), lecture[v])
    m = re.search(r"^f\(.*\) = (\S+)$", result.stdout, re.M)
    assert m and math.isclose(float(m.group(1)), float(value), rel_tol=1e-8)
    assert "✓" in result.stdout and "✗" not in result.stdout


@pytest.mark.parametrize(("expr", "at", "exact", "lecture"), CARDS)
def test_json_schema_and_values(expr, at, exact, lecture):
    result = run(expr, "--at", at, "--format", "json")
    assert_clean_exit(result, 0)
    data = strict_json(result.stdout)
    for key in ("expression", "point", "value", "wrt", "reference", "methods", "ok", "diagnostics"):
        assert key in data, key
    value, grad = exact()
    assert data["expression"] == expr
    assert data["point"] == {k: float(v) for k, v in (p.split("=") for p in at.split(","))}
    assert math.isclose(data["value"], float(value), rel_tol=1e-14)
    assert sorted(data["wrt"]) == sorted(grad)
    assert data["reference"] in ("exact", "symbolic")
    if data["reference"] == "exact":  # the 30-digit reference, against ours
        with mpmath.workdps(30):
            for v, want in grad.items():
                assert mpmath.almosteq(mpmath.mpf(data["exact"][v]), want, rel_eps=1e-25), v
    assert data["ok"] is True
    assert data["diagnostics"] == []
    assert [m["name"] for m in data["methods"]] == METHODS
    for m in data["methods"]:
        assert m["ok"] is True
        tol = 1e-13 if m["name"] != "central" else 1e-7
        for v, want in grad.items():
            assert math.isclose(m["gradient"][v], float(want), rel_tol=tol), (m["name"], v)
    central = data["methods"][3]
    assert set(central["step"]) == set(grad)
    for h in central["step"].values():
        assert 0 < h < 1e-3


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


@pytest.mark.parametrize(("expr", "inf"), [("sqrt(x)", "inf"), ("-sqrt(x)", "-inf")])
def test_json_method_that_could_not_run_and_infinities(expr, inf):
    result = run("--at", "x=0", "--format", "json", "--", expr)
    assert_clean_exit(result, 0)  # every method that ran agrees: d/dx is infinite at 0
    data = strict_json(result.stdout)
    by_name = {m["name"]: m for m in data["methods"]}
    for name in ("reverse", "forward", "symbolic"):
        assert by_name[name]["gradient"] == {"x": inf}, name
    central = by_name["central"]
    assert central["gradient"] is None
    assert central["ok"] is None
    assert isinstance(central["note"], str) and "x-h" in central["note"]
    assert "step" in central
    assert any("central" in d["message"] for d in data["diagnostics"])


def test_json_nan_is_a_string():
    """d/dy x**y at x = 0 is 0*log(0) in floating point: nan somewhere, written as "nan"."""
    result = run("x**y", "--at", "x=0,y=2", "--format", "json")
    assert result.exit_code in (0, 1) and "Traceback" not in result.output
    data = strict_json(result.stdout)
    assert "nan" in _strings([m["gradient"] for m in data["methods"]])
    for m in data["methods"]:
        for g in (m["gradient"] or {}).values():
            assert isinstance(g, float) or g in NONFINITE


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

def test_markdown_table():
    result = run("1/(1+exp(-(w0*x0+w1*x1+w2)))", "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3",
                 "--format", "markdown")
    assert_clean_exit(result, 0)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[0] == "∂f/∂"
    names = [h.split()[0] for h in header[1:]]
    assert [n for n in names if n != "exact"] == METHODS and set(names) <= set(COLUMNS)
    assert sum("reference" in h for h in header) == 1
    assert re.fullmatch(r"\|-{3,}(\|-{3,}:?)+\|", lines[1].replace(" ", ""))
    body = lines[2:]
    _, grad = exact_neuron()
    assert [row.strip("|").split("|")[0].strip() for row in body] == ["w0", "w1", "w2", "x0", "x1"]
    for row in body:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(header)
        for name, cell in zip(names, cells[1:]):
            tol = 1e-8 if name != "central" else 1e-7
            assert math.isclose(float(cell.split()[0]), float(grad[cells[0]]), rel_tol=tol)


# --------------------------------------------------------------------------------------------
# Exit 1: a disagreement
# --------------------------------------------------------------------------------------------

def test_disagreement_exits_1_and_names_the_method():
    # with zero tolerance, central's truncation error alone is a disagreement with Richardson
    # (whose own error estimate, ~1e-13, is far below central's ~1e-10 error)
    args = ["exp(x)*sin(x)", "--at", "x=0.7", "--methods", "central", "--reference", "richardson",
            "--rtol", "0", "--atol", "0"]
    result = run(*args)
    assert_clean_exit(result, 1)
    verdict = result.stdout.strip().splitlines()[-1]
    assert "✗" in verdict and "central" in verdict and "richardson" in verdict
    data = strict_json(run(*args, "--format", "json").stdout)
    assert data["ok"] is False
    central = next(m for m in data["methods"] if m["name"] == "central")
    assert central["ok"] is False and central["passed"] == {"x": False}


def test_default_tolerance_accepts_central():
    result = run("exp(x)*sin(x)", "--at", "x=0.7", "--methods", "central", "--reference", "complex")
    assert_clean_exit(result, 0)


# --------------------------------------------------------------------------------------------
# Exit 2: bad input, one message, no traceback; one JSON object under --format json
# --------------------------------------------------------------------------------------------

ERRORS = [
    pytest.param(["alpha+beta", "--at", "alpha=1,beta=2,zeta=3"], "unknown-variable", ["zeta"],
                 id="unknown-variable"),
    pytest.param(["alpha+beta", "--at", "alpha=1"], "missing-value", ["beta"], id="missing-value"),
    pytest.param(["alpha", "--at", "alpha="], "missing-value", ["alpha"], id="empty-value"),
    pytest.param(["alpha", "--at", "alpha=abc"], "bad-value", ["alpha", "abc"], id="abc"),
    pytest.param(["alpha", "--at", "alpha=nan"], "bad-value", ["alpha", "nan"], id="nan"),
    pytest.param(["alpha", "--at", "alpha=inf"], "bad-value", ["alpha", "inf"], id="inf"),
    pytest.param(["alpha", "--at", "alpha=-inf"], "bad-value", ["alpha", "inf"], id="-inf"),
    pytest.param(["alpha", "--at", "alpha=1e999"], "bad-value", ["alpha", "1e999"], id="1e999"),
    pytest.param(["alpha", "--at", "alpha=1_000"], "bad-value", ["alpha", "1_000"], id="underscore"),
    pytest.param(["alpha", "--at", "alpha=\uff11"], "bad-value", ["alpha", "\uff11"], id="fullwidth"),
    pytest.param(["alpha", "--at", "alpha=1,alpha=2"], "bad-value", ["alpha"], id="duplicate"),
    pytest.param(["alpha", "--at", "alpha=1", "--at", "alpha=2"], "bad-value", ["alpha"],
                 id="duplicate-across-at"),
    pytest.param(["alpha", "--at", "alpha"], "bad-value", ["alpha", "="], id="no-equals"),
    pytest.param(["", "--at", "x=1"], "syntax", ["empty"], id="empty-formula"),
    pytest.param(["   ", "--at", "x=1"], "syntax", ["empty"], id="blank-formula"),
    pytest.param(["log(x)", "--at", "x=-1"], "undefined", ["log"], id="log-negative"),
    pytest.param(["1/0"], "undefined", ["zero"], id="divide-by-zero"),
    pytest.param(["1/x", "--at", "x=0"], "undefined", ["zero"], id="divide-by-zero-at-point"),
    pytest.param(["frobnicate(x)", "--at", "x=1"], "unknown-function", ["frobnicate"],
                 id="unknown-function"),
    pytest.param(["x+*2", "--at", "x=1"], "syntax", ["column 3"], id="syntax"),
    pytest.param(["pi*x", "--at", "pi=3,x=1"], "bad-variable", ["pi"], id="constant-pi"),
    pytest.param(["x", "--at", "x=1", "--wrt", "omega"], "unknown-variable", ["omega"],
                 id="unknown-wrt"),
    pytest.param(["x", "--at", "x=1", "--methods", "reverse,magic"], "usage", ["magic"],
                 id="unknown-method"),
]


@pytest.mark.parametrize(("args", "kind", "needles"), ERRORS)
def test_error_text(args, kind, needles):
    result = run(*args)
    assert_clean_exit(result, 2)
    assert result.stdout == ""
    assert result.stderr.startswith("gradcheck: error: ")
    for needle in needles:
        assert needle in result.stderr, needle


@pytest.mark.parametrize(("args", "kind", "needles"), ERRORS)
def test_error_json(args, kind, needles):
    result = run(*args, "--format", "json")
    assert_clean_exit(result, 2)
    assert result.stderr == ""
    data = strict_json(result.stdout)  # exactly one JSON value: json.loads rejects trailing data
    assert set(data) == {"error"}
    assert data["error"]["kind"] == kind
    for needle in needles:
        assert needle in data["error"]["message"], needle


def test_syntax_error_caret_points_at_the_column():
    formula = "sin(x) + * 2"
    result = run(formula, "--at", "x=1")
    assert_clean_exit(result, 2)
    lines = result.stderr.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.strip() == formula)
    caret = lines[i + 1]
    assert caret.strip() == "^"
    assert caret.index("^") == lines[i].index("*")
    data = strict_json(run(formula, "--at", "x=1", "--format", "json").stdout)
    assert data["error"]["column"] == formula.index("*") + 1


def test_tiny_value_is_not_silently_zero():
    """1e-400 is below float64's range, as 1e999 is above it: refused, never silently 0.
    (A formula literal 1e-400 is refused too.) Otherwise log(x) at x=1e-400 reports log(0)."""
    assert run("x*1e-400", "--at", "x=1").exit_code == 2
    result = run("log(x)", "--at", "x=1e-400")
    assert_clean_exit(result, 2)
    assert "1e-400" in result.stderr


def test_empty_wrt_does_not_claim_the_formula_has_no_variables():
    """--wrt "" names no variable: refuse it, or check them all; never say there are none."""
    result = run("x*y", "--at", "x=1,y=2", "--wrt", "", "--format", "json")
    data = strict_json(result.stdout)
    if result.exit_code == 2:
        assert "error" in data
    else:
        assert data["wrt"] == ["x", "y"]


def test_formula_starting_with_minus():
    """A loss is often written with a leading minus; click must not take it for an option."""
    result = run("--at", "x=2", "--format", "json", "--", "-log(x)")  # the workaround works
    assert_clean_exit(result, 0)
    assert strict_json(result.stdout)["methods"][0]["gradient"] == {"x": -0.5}
    result = run("-log(x)", "--at", "x=2", "--format", "json")
    assert_clean_exit(result, 0)
    assert strict_json(result.stdout)["methods"][0]["gradient"] == {"x": -0.5}


# --------------------------------------------------------------------------------------------
# Rich markup in user text is literal
# --------------------------------------------------------------------------------------------

def test_markup_like_variable_names_are_plain_text():
    result = run("bold*red + sin(bold)", "--at", "bold=2,red=3", *NO_SYMBOLIC)
    assert_clean_exit(result, 0)
    rows = table_rows(result.stdout)
    assert set(rows) == {"bold", "red"}
    assert math.isclose(float(rows["bold"]["reverse"]), 3 + math.cos(2), rel_tol=1e-8)
    assert float(rows["red"]["reverse"]) == 2.0
    assert "gradcheck bold*red + sin(bold)" in result.stdout


@pytest.mark.parametrize(("args", "literal"), [
    (["[bold red]x", "--at", "x=1"], "[bold red]x"),
    (["x", "--at", "[bold red]=1"], "[bold red]"),
    (["x", "--at", "x=[red]1[/red]"], "[red]1[/red]"),
    (["[red](x)", "--at", "x=1"], "[red](x)"),
])
def test_markup_in_error_messages_is_printed_literally(args, literal):
    result = run(*args)
    assert_clean_exit(result, 2)
    assert literal in result.stderr
    first = result.stderr.splitlines()[0].removeprefix("gradcheck: error: ")
    data = strict_json(run(*args, "--format", "json").stdout)
    assert data["error"]["message"] == first  # the same message, and JSON keeps it literal


# --------------------------------------------------------------------------------------------
# Options: --wrt, --step, --digits, --show-formula
# --------------------------------------------------------------------------------------------

def test_wrt_restricts_rows():
    result = run("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "z,x", *NO_SYMBOLIC)
    assert_clean_exit(result, 0)
    rows = table_rows(result.stdout)
    assert set(rows) == {"x", "z"}
    assert float(rows["x"]["reverse"]) == -4.0 and float(rows["z"]["reverse"]) == 3.0
    data = strict_json(run("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "z,x", *NO_SYMBOLIC,
                           "--format", "json").stdout)
    assert sorted(data["wrt"]) == ["x", "z"]
    for m in data["methods"]:
        assert set(m["gradient"]) == {"x", "z"}


def test_step_sets_central_step():
    h = 0.01
    data = strict_json(run("cos(sin(x**2)+3*x**2)", "--at", "x=1.5", "--step", str(h), *NO_SYMBOLIC,
                           "--format", "json").stdout)
    central = next(m for m in data["methods"] if m["name"] == "central")
    assert math.isclose(central["step"]["x"], h, rel_tol=1e-12)
    # the central difference itself, with this step, at 30 digits
    with mpmath.workdps(30):
        f = lambda t: mpmath.cos(mpmath.sin(t**2) + 3 * t**2)  # noqa: E731
        x, hh = mpmath.mpf(1.5), mpmath.mpf(central["step"]["x"])
        want = (f(x + hh) - f(x - hh)) / (2 * hh)
    assert math.isclose(central["gradient"]["x"], float(want), rel_tol=1e-10)
    # and with h = 0.01 the truncation error is visible against the true derivative
    _, grad = exact_card()
    assert abs(central["gradient"]["x"] - float(grad["x"])) > 1e-5


@pytest.mark.parametrize("digits", [3, 5, 12])
def test_digits(digits):
    result = run("cos(sin(x**2)+3*x**2)", "--at", "x=1.5", "--digits", str(digits), *NO_SYMBOLIC)
    assert_clean_exit(result, 0)
    value, grad = exact_card()
    want = mpmath.nstr(grad["x"], digits)
    cells = table_rows(result.stdout)["x"]
    for name in ("reverse", "forward"):  # central differs from the 9th digit on
        assert cells[name] == want
    assert f"f(x=1.5) = {mpmath.nstr(value, digits)}" in result.stdout


def test_show_formula():
    # the formula has no cos: it can only come from the printed derivative x*cos(x) + sin(x)
    plain = run("sin(x)*x", "--at", "x=1")
    assert_clean_exit(plain, 0)
    assert "cos" not in plain.stdout
    shown = run("sin(x)*x", "--at", "x=1", "--show-formula")
    assert_clean_exit(shown, 0)
    assert "cos(x)" in shown.stdout and "∂f/∂x" in shown.stdout
    data = strict_json(run("sin(x)*x", "--at", "x=1", "--show-formula", "--format", "json").stdout)
    assert "cos(x)" in data["formulas"]["x"]


# --------------------------------------------------------------------------------------------
# The real entry point, as a subprocess: python -m gradcheck_cli
# --------------------------------------------------------------------------------------------

def python_m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gradcheck_cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_subprocess_success_json():
    proc = python_m("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = strict_json(proc.stdout)
    assert data["value"] == -12.0
    for m in data["methods"][:3]:
        assert m["gradient"] == {"x": -4.0, "y": -4.0, "z": 3.0}


@pytest.mark.parametrize("args", [
    ["x", "--at", "x=1", "--reference", "magic", "--format", "json"],
    ["x", "--at", "x=1", "--digits", "0", "--format=json"],
    ["x", "--at", "x=1", "--no-such-option", "--format", "json"],
], ids=["bad-choice", "out-of-range", "unknown-option"])
def test_subprocess_usage_error_as_json(args):
    proc = python_m(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    data = strict_json(proc.stdout)
    assert set(data) == {"error"}
    assert data["error"]["kind"] and data["error"]["message"]
    bad = {"--reference": "magic", "--digits": "--digits", "--no-such-option": "--no-such-option"}
    assert any(opt in args and word in data["error"]["message"] for opt, word in bad.items())


def test_subprocess_usage_error_text():
    proc = python_m("x", "--at", "x=1", "--digits", "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--digits" in proc.stderr and "Traceback" not in proc.stderr
