"""Regression tests for the adversarial review of the homework and teaching features (each
test is a defect that was found, reproduced through the real command)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from gradcheck_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CLASS = ROOT / "sample_expressions" / "class"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def strict(text: str):
    def refuse(token: str) -> None:
        raise AssertionError(f"non-RFC-8259 token {token}")

    return json.loads(text, parse_constant=refuse)


def write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text, encoding="utf-8")
    return tmp / name


def test_a_claim_that_is_infinite_at_its_witness_is_strict_json() -> None:
    r = run("x*y", "--at", "x=1,y=2", "--expect", "x=1/(x-x)", "--format", "json")
    body = strict(r.stdout)
    assert r.exit_code == 1 and body["claims"]["x"]["witness"]["claimed"] in ("inf", "nan")


def test_an_empty_answer_is_missing_not_a_pass(tmp_path: Path) -> None:
    a = write(tmp_path, "dave.toml", "[answers]\np1 = {}\np2 = {}\np3 = {}\n")
    r = run("--file", str(CLASS / "problems.toml"), "--answers", str(a), "--format", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert r.exit_code == 1 and rows[1][:4] == ["dave", "missing", "missing", "missing"]
    assert run("--file", str(CLASS / "problems.toml"), "--answers", str(a)).exit_code == 1


def test_a_claim_undefined_everywhere_is_never_accepted_as_equal() -> None:
    r = run(
        "x**2",
        "--expect",
        "x=sqrt(-1-x**2)",
        "--sample",
        "10",
        "--seed",
        "1",
        "--where-undefined",
        "accept",
        "--format",
        "json",
    )
    body = strict(r.stdout)
    assert body["claims"]["x"]["verdict"] == "cannot-judge" and r.exit_code == 3


def test_a_claim_for_a_partial_left_out_is_refused() -> None:
    r = run("x*y", "--at", "x=1,y=2", "--wrt", "x", "--expect", "x=y", "--expect", "y=999")
    assert r.exit_code == 2 and "--wrt" in r.output


def test_several_outputs_are_refused_for_now() -> None:
    r = run("c = x; d = 2*c; f = 3*c", "--at", "x=1", "--output", "d,f")
    assert r.exit_code == 2 and "one output" in r.output


def test_taylor_at_a_kink_does_not_fail_and_a_failing_taylor_fails_everywhere(tmp_path: Path) -> None:
    body = strict(run("abs(x)", "--at", "x=0", "--taylor", "--format", "json").stdout)
    assert body["verdict"] == "pass" and "not differentiable" in body["taylor"]["note"]
    from dataclasses import replace

    import pytest

    from gradcheck_cli import rules

    mp = pytest.MonkeyPatch()
    try:
        mp.setitem(rules.RULES, "sin", replace(rules.RULES["sin"], partials=(lambda o, x: -rules.np.cos(x),)))
        junit = tmp_path / "t.xml"
        r = run(
            "sin(x)*x",
            "--at",
            "x=0.7",
            "--taylor",
            "--methods",
            "reverse",
            "--reference",
            "complex",
            "--format",
            "json",
            "--junit",
            str(junit),
        )
        body = strict(r.stdout)
        assert r.exit_code == 1 and body["verdict"] == "fail" and body["ok"] is False
        assert any(d["kind"] == "taylor" for d in body["diagnostics"])
        assert (
            ET.parse(junit).getroot().find(".//testcase[@name='Taylor-remainder test']/failure") is not None
        )
    finally:
        mp.undo()


def test_equal_answers_get_equal_grades_without_a_seed(tmp_path: Path) -> None:
    problems = write(
        tmp_path,
        "p.toml",
        '[[check]]\nname = "p"\nexpression = "x**2"\nsample = 1\ndomain = { x = [-2, 0] }\n',
    )
    for i in range(6):
        write(tmp_path, f"s{i}.toml", '[answers]\np = "2*x + 1e-3*exp(10*x)"\n')
    r = run("--file", str(problems), "--answers", str(tmp_path / "s*.toml"), "--format", "csv")
    grades = {row[1] for row in list(csv.reader(io.StringIO(r.stdout)))[1:]}
    assert len(grades) == 1


def test_one_broken_answers_file_is_that_students_problem(tmp_path: Path) -> None:
    answers = tmp_path / "answers"
    answers.mkdir()
    write(answers, "zed.toml", "[answers]\np1 = sin(x)\n")  # not TOML: unquoted
    write(
        answers,
        "amy.toml",
        (CLASS / "answers" / "alice.toml").read_text(encoding="utf-8").replace("alice", "amy"),
    )
    r = run("--file", str(CLASS / "problems.toml"), "--answers", str(answers / "*.toml"), "--format", "csv")
    rows = {row[0]: row for row in list(csv.reader(io.StringIO(r.stdout)))[1:]}
    assert r.exit_code == 1 and rows["amy"][1:4] == ["correct"] * 3 and rows["zed"][1] == "invalid"


def test_control_and_bidi_characters_never_reach_the_outputs(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "s.toml",
        'title = "T\\u001b[2J\\u202eevil"\n[[check]]\nname = "n\\u001b]0;x\\u0007"\n'
        'expression = "x"\nat = { x = 1 }\n',
    )
    for fmt in ("table", "markdown", "csv"):
        out = run("--file", str(f), "--format", fmt).stdout
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out, fmt


def test_a_slow_check_in_a_file_is_stopped_and_the_others_run(tmp_path: Path) -> None:
    slow = "+".join(f"sin(x*{i}+y)" for i in range(200))
    f = write(
        tmp_path,
        "s.toml",
        f'[[check]]\nname = "slow"\nexpression = "{slow}"\nsample = 20000\nseed = 1\n'
        'methods = ["richardson"]\ntimeout = 1\n[[check]]\nname = "fast"\nexpression = "x"\nat = { x = 1 }\n',
    )
    body = strict(run("--file", str(f), "--format", "json").stdout)
    by = {c["name"]: c for c in body["checks"]}
    assert by["slow"]["outcome"] == "error" and "time limit" in by["slow"]["error"]["message"]
    assert by["fast"]["outcome"] == "pass"


def test_teaching_flags_and_float32_are_refused_where_they_do_not_apply(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", '[[check]]\nexpression = "x"\nat = { x = 1 }\n')
    assert run("--file", str(f), "--trace").exit_code == 2
    assert run("x**2", "--at", "x=1", "--trace", "--dtype", "float32").exit_code == 2


def test_csv_of_a_single_check_file() -> None:
    r = run("--file", str(ROOT / "sample_expressions" / "add_mul.toml"), "--format", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert r.exit_code == 0 and rows[0][:2] == ["file", "check"] and rows[1][4] == "pass"


def test_an_unwritable_junit_file_is_one_json_error(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", '[[check]]\nexpression = "x"\nat = { x = 1 }\n')
    r = run("--file", str(f), "--format", "json", "--junit", str(tmp_path / "no" / "such" / "j.xml"))
    body = strict(r.stdout)
    assert r.exit_code == 2 and set(body) == {"error"}


def test_sample_on_the_command_line_draws_every_check(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "s.toml",
        '[[check]]\nexpression = "x*y"\nat = { x = 1, y = 2 }\n'
        '[[check]]\nexpression = "x**2"\npoints = [{ x = 1 }, { x = 2 }]\n',
    )
    body = strict(run("--file", str(f), "--sample", "5", "--seed", "1", "--format", "json").stdout)
    assert [c["outcome"] for c in body["checks"]] == ["pass", "pass"]
    assert [c["report"]["points"] for c in body["checks"]] == [5, 5]


def test_an_answer_over_a_limit_is_invalid_not_the_problems_fault(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", '[answers]\np1 = "((((((((((x))))))))))"\n')
    r = run(
        "--file", str(CLASS / "problems.toml"), "--answers", str(a), "--max-depth", "8", "--format", "csv"
    )
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert r.exit_code == 1 and rows[1][1] == "invalid"


def test_a_zero_claim_is_not_off_by_a_factor_of_zero() -> None:
    body = strict(
        run("x*sin(x**2)", "--expect", "x=0", "--sample", "10", "--seed", "1", "--format", "json").stdout
    )
    assert body["claims"]["x"]["diagnosis_kind"] != "factor"


def test_a_claim_proved_by_sympy_is_not_wrong_where_float64_cancels() -> None:
    r = run(
        "sin(x)",
        "--expect",
        "x=cos(x) + (x+1)**2 - x**2 - 2*x - 1",
        "--at",
        "x=100000000.3",
        "--format",
        "json",
    )
    body = strict(r.stdout)
    c = body["claims"]["x"]
    assert r.exit_code == 0 and c["verdict"] == "correct" and c["proof"] == "proved"
    assert "rounding" in c["diagnosis"]


def test_a_checks_description_shows_in_the_table_markdown_and_csv(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", '[[check]]\nname = "n"\ndescription = "the lecture example"\n'
              'expression = "x"\nat = { x = 1 }\n[[check]]\nexpression = "y"\nat = { y = 1 }\n')
    for fmt in ("table", "markdown"):
        assert "the lecture example" in run("--file", str(f), "--format", fmt).stdout, fmt
    rows = list(csv.reader(io.StringIO(run("--file", str(f), "--format", "csv").stdout)))
    assert rows[0][-1] == "description" and rows[1][-1] == "the lecture example" and rows[2][-1] == ""


def test_an_unnamed_check_never_takes_a_name_another_check_is_given(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", '[[check]]\nexpression = "x"\nat = { x = 1 }\n'
              '[[check]]\nexpression = "y"\nat = { y = 1 }\n'
              '[[check]]\nname = "check 2"\nexpression = "z"\nat = { z = 1 }\n')
    body = strict(run("--file", str(f), "--format", "json").stdout)
    assert [c["name"] for c in body["checks"]] == ["check 1", "check 2 (unnamed)", "check 2"]
    assert [c["outcome"] for c in body["checks"]] == ["pass", "pass", "pass"]
    empty = write(tmp_path, "e.toml", '[[check]]\nname = "  "\nexpression = "x"\nat = { x = 1 }\n')
    out = strict(run("--file", str(empty), "--format", "json").stdout)
    assert out["checks"][0]["outcome"] == "error" and "name" in out["checks"][0]["error"]["message"]


def test_empty_file_names_and_output_names_are_refused() -> None:
    for args in (["--graph", ""], ["--sweep-plot", " "], ["--output", ","]):
        r = run("a = x; b = 2*a", "--at", "x=1", *args)
        assert r.exit_code == 2 and args[0] in r.output, args
