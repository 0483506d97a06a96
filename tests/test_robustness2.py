"""Robustness, round two: no silent pass, no traceback, every failure one clear message.

Each test is a reproduction from the "Robustness round two" issue, with the exit code and
message it must have now. Some run the real command in a subprocess (closed stdout, a full
disk, an ASCII locale), the rest in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gradcheck_cli import GradcheckError, check
from gradcheck_cli import cli as cli_module
from gradcheck_cli.cli import cli, main

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, columns: int = 200) -> Result:
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, list(args))


def strict(text: str) -> dict:
    def no(token: str) -> None:
        raise ValueError(token)

    return json.loads(text, parse_constant=no)


def gradcheck(*args: str, env: dict[str, str] | None = None, stdout: int | None = subprocess.PIPE,
              shell_redirect: str | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}
    if shell_redirect is not None:
        command = " ".join([sys.executable, "-m", "gradcheck_cli", *(repr(a) for a in args), shell_redirect])
        return subprocess.run(["bash", "-c", command], capture_output=True, env=full_env, timeout=120)
    return subprocess.run([sys.executable, "-m", "gradcheck_cli", *args], stdout=stdout,
                          stderr=subprocess.PIPE, env=full_env, timeout=120)


# ---------------------------------------------------------------- silent passes, wrong exits


@pytest.mark.parametrize(("expr", "at"), [("-tanh(x)", "x=0.5"), ("-x*h", "x=0.5,h=2"),
                                         ("-log(h)", "h=2"), ("-sinh(x)*2", "x=0.5")])
def test_a_formula_starting_with_a_minus_is_checked_not_help(expr: str, at: str) -> None:
    result = run(expr, "--at", at, "--format", "json")
    assert result.exit_code == 0, result.output
    data = strict(result.stdout)
    assert data["expression"] == expr and data["verdict"] == "pass"


def test_double_dash_makes_the_rest_the_formula() -> None:
    result = run("--at", "x=2", "--", "--x", "--format", "json")
    # after "--" everything is the formula: "--format" is not an option there
    assert result.exit_code == 2
    result = run("--at", "x=2", "--format", "json", "--", "--x")
    assert result.exit_code == 0, result.output
    data = strict(result.stdout)
    assert data["expression"] == "--x" and data["methods"][0]["gradient"] == {"x": 1.0}


def test_a_mistyped_option_suggests_the_right_one() -> None:
    result = run("x", "--att", "x=1")
    assert result.exit_code == 2 and "--att" in result.output and "--at" in result.output
    assert "Did you mean" in result.output


def test_bidi_characters_in_click_errors_are_escaped(capsys) -> None:
    code, out, err = _main(["x", "--a\u202et", "x=1"], capsys)
    assert code == 2 and "\u202e" not in err and "\\u202e" in err


@pytest.mark.parametrize(("value", "dtype"), [("x=1e39", "float32"), ("x=1e-46", "float32")])
def test_a_point_that_does_not_survive_the_dtype_is_bad_input(value: str, dtype: str) -> None:
    result = run("x*y", "--at", value + ",y=2", "--dtype", dtype)
    assert result.exit_code == 2 and "outside the range of float32" in result.output


def test_check_file_value_that_does_not_survive_float32_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('expression = "x*2"\nat = { x = 1e39 }\n', encoding="utf-8")
    result = run("--file", str(path), "--dtype", "float32")
    assert result.exit_code == 2 and "float32" in result.output


def test_every_repeated_file_is_run_not_silently_dropped(tmp_path: Path) -> None:
    # v2: --file F --file G runs both (v1 refused; before that, the last silently won)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('expression = "x"\nat = { x = 1 }\n', encoding="utf-8")
    b.write_text('expression = "x +"\nat = { x = 0 }\n', encoding="utf-8")
    result = run("--file", str(a), "--file", str(b), "--format", "json")
    body = json.loads(result.stdout)
    assert [c["name"] for c in body["checks"]] == ["a", "b"]
    assert [c["outcome"] for c in body["checks"]] == ["pass", "error"]
    assert "expression: " in body["checks"][1]["error"]["message"]
    assert result.exit_code == 2 and body["exit_code"] == 2


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_an_internal_error_is_one_line_and_its_own_exit_code(monkeypatch, capsys) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(cli_module, "check", broken)
    code, out, err = _main(["x", "--at", "x=1"], capsys)
    assert code == 4 and "internal error" in err and "planted bug" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = _main(["x", "--at", "x=1", "--format", "json"], capsys)
    assert code == 4 and strict(out)["error"]["kind"] == "internal"
    with pytest.raises(RuntimeError):  # --debug shows the real exception
        main(["x", "--at", "x=1", "--debug"])


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "check", interrupted)
    code, out, err = _main(["x", "--at", "x=1"], capsys)
    assert code == 130 and "interrupted" in err
    code, out, err = _main(["x", "--at", "x=1", "--format", "json"], capsys)
    assert code == 130 and strict(out)["error"]["kind"] == "interrupted"


# ---------------------------------------------------------------- output that never breaks


def test_closed_stdout_is_an_error_on_stderr_not_a_traceback() -> None:
    proc = gradcheck("x", "--at", "x=1", shell_redirect=">&-")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert b"cannot write the report" in proc.stderr


def test_a_full_disk_is_an_error_on_stderr_not_a_traceback() -> None:
    proc = gradcheck("x", "--at", "x=1", shell_redirect=">/dev/full")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert b"No space left" in proc.stderr


def test_an_ascii_locale_gets_an_ascii_table() -> None:
    proc = gradcheck("relu(x)*y", "--at", "x=0,y=2",
                     env={"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("ascii")  # pure ASCII
    assert "df/d" in text and " ok" in text and "Traceback" not in text


def test_junit_write_failure_does_not_hide_the_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "no" / "such" / "dir" / "r.xml"
    result = run("log(x)", "--at", "x=-1", "--format", "json", "--junit", str(bad))
    assert result.exit_code == 2
    assert strict(result.stdout)["error"]["kind"] == "undefined"
    assert "also" in result.stderr and "cannot write" in result.stderr


def test_junit_is_written_on_click_usage_errors_too(tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.xml"
    code, out, err = _main(["x", "--att", "x=1", "--junit", str(path)], capsys)
    assert code == 2 and path.exists() and "<error" in path.read_text(encoding="utf-8")


def test_empty_junit_path_is_refused() -> None:
    result = run("x", "--at", "x=1", "--junit", "")
    assert result.exit_code == 2 and "--junit" in result.output


def test_a_huge_timeout_does_not_overflow() -> None:
    result = run("x", "--at", "x=1", "--timeout", "1e10")
    assert result.exit_code == 0, result.output


def test_max_digits_beyond_what_python_can_read_is_refused() -> None:
    result = run("x", "--at", "x=1", "--max-digits", "5000")
    assert result.exit_code == 2


@pytest.mark.parametrize("columns", [120, 80, 60, 30, 10])
def test_no_number_is_split_across_lines_at_any_width(columns: int) -> None:
    result = run("cos(sin(x**2)+3*x**2)", "--at", "x=1.5", columns=columns)
    assert result.exit_code == 0
    assert "-6.740922185" in result.output  # whole, on one line
    assert "0.320169535" in result.output


def test_markdown_escapes_underscores() -> None:
    result = run("__init__*x", "--at", "__init__=2,x=3", "--format", "markdown")
    assert result.exit_code == 0 and "\\_\\_init\\_\\_" in result.output


def test_json_formulas_are_one_line_strings() -> None:
    result = run("sin(x)*y", "--at", "x=1,y=2", "--show-formula", "--format", "json")
    data = strict(result.stdout)
    assert data["formulas"] == {"x": "y*cos(x)", "y": "sin(x)"}


def test_minus_zero_prints_as_zero() -> None:
    result = run("-x*0", "--at", "x=1")
    assert result.exit_code == 0 and "-0 " not in result.output and "-0\n" not in result.output


def test_one_method_reads_right() -> None:
    result = run("x*x", "--at", "x=2", "--methods", "reverse")
    assert "the one method that ran, reverse, agrees" in result.output


def test_a_constant_formula_says_so() -> None:
    result = run("2+3")
    assert result.exit_code == 3 and "no variables" in result.output


# ---------------------------------------------------------------- the exact reference


def test_the_exact_reference_does_not_invent_a_zero() -> None:
    report = check("gelu(x)", {"x": -25.0})
    assert report.exact is not None and report.exact["x"].startswith("-1.91")
    assert report.verdict == "pass"


def test_a_derivative_rounding_decides_is_not_called_not_differentiable() -> None:
    report = check("sin(x*1e300)", {"x": 1e8})
    assert not any(d.kind == "nondifferentiable" for d in report.diagnostics)
    assert report.method("reverse").status == {"x": "cannot-judge"}
    assert "not determined in float arithmetic" in report.method("reverse").why("x", 0)


# ---------------------------------------------------------------- the Python API


def test_api_takes_strings_for_lists_and_numpy_scalars() -> None:
    report = check("x*y", {"x": np.float32(1.5), "y": np.int64(2)}, wrt="x,y", methods="reverse,forward",
                   reference="complex")
    assert report.wrt == ["x", "y"] and [m.name for m in report.methods] == ["reverse", "forward"]
    assert report.method("reverse").gradient == {"x": 2.0, "y": 1.5}


@pytest.mark.parametrize("options", [{"step": 0.0}, {"rtol": -1.0}, {"atol": -1e-3}])
def test_api_refuses_zero_steps_and_negative_tolerances(options: dict) -> None:
    with pytest.raises(GradcheckError):
        check("x*x", {"x": 1.0}, **options)


def test_report_to_dict_and_to_json_and_description() -> None:
    report = check("x*x", {"x": 2.0}, description="the square", methods="reverse", reference="complex")
    assert report.to_dict()["description"] == "the square"
    assert strict(report.to_json())["verdict"] == "pass"


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_the_check_file_description_is_shown_in_every_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text('description = "the lecture neuron"\nexpression = "x*2"\nat = { x = 1 }\n',
                    encoding="utf-8")
    result = run("--file", str(path), "--format", fmt)
    assert result.exit_code == 0 and "the lecture neuron" in result.output


def test_junit_writes_a_long_formula_once(tmp_path: Path) -> None:
    # 300 variables: the formula was repeated in every one of 1,200 test cases
    formula = "+".join(f"x{i}*y{i}" for i in range(150))
    at = ",".join(f"{v}{i}=1" for i in range(150) for v in "xy")
    path = tmp_path / "r.xml"
    result = run(formula, "--at", at, "--methods", "reverse,forward", "--reference", "complex",
                 "--junit", str(path))
    assert result.exit_code == 0, result.output[-500:]
    text = path.read_text(encoding="utf-8")
    assert text.count(formula) == 1  # as the suite's property, once
    assert text.count("<testcase") == 600 and "characters" in text


def test_past_a_documented_size_the_slow_methods_are_skipped_with_a_note() -> None:
    # 2,000 variables × 8,000 nodes: the finite differences would take minutes
    n = 2000
    formula = "+".join(f"sin(x{i})*x{i + 1}" for i in range(n))
    point = {f"x{i}": 0.1 * ((i % 7) - 3) for i in range(n + 1)}
    report = check(formula, point)
    # v2 (many variables): central checks random directions and a sample of the variables
    # instead of being skipped, and says so; every direction agrees with reverse mode
    central = report.method("central")
    assert central.values is not None
    assert sum(1 for v in report.wrt if central.status[v] in ("pass", "unreliable")) == 16
    by = {d["method"]: d for d in report.directional}
    assert by["reverse"]["checked"] == "8 random directions and 16 of 2,001 variables"
    assert by["reverse"]["failed"] == 0 and by["reverse"]["passed"] == 8
    assert report.method("reverse").ok is True
    # one note for all the partials that could not be judged, not one per variable
    notes = [d for d in report.diagnostics if d.kind == "no-reference"]
    assert len(notes) <= 1
