"""Homework in CI: files of many checks with expected outcomes, a class's answers, the reports CI
reads (JUnit, markdown, JSON, CSV), and the diagnoses SymPy finds (a missing, extra or wrong
term). Expected counts come from the example files' own planted mistakes."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck_cli import check
from gradcheck_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "sample_expressions"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def strict_json(text: str):
    def refuse(token: str) -> None:
        raise AssertionError(f"non-RFC-8259 token {token}")
    return json.loads(text, parse_constant=refuse)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- the examples ----------------------------------------------------------------------------


def test_the_homework_examples_confirm_every_right_answer_and_catch_every_planted_mistake(
        tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    result = run("--file", str(EXAMPLES / "homework.toml"), "--format", "json", "--junit", str(junit))
    body = strict_json(result.stdout)
    assert result.exit_code == 0, result.stdout[-2000:]
    outcomes = {c["name"]: (c["outcome"], c["ok"]) for c in body["checks"]}
    right = ["sigmoid'", "tanh'", "softplus'", "calculus quiz", "logistic loss", "quadratic loss"]
    assert all(outcomes[n] == ("correct", True) for n in right)
    planted = {"sign error": "sign", "missing chain-rule factor": "factor", "constant offset": "offset",
               "wrong variable": "wrong-variable", "missing product-rule term": "missing-term"}
    for name, kind in planted.items():
        assert outcomes[name] == ("wrong", True), name
        check_ = next(c for c in body["checks"] if c["name"] == name)
        kinds = [c["diagnosis_kind"] for c in check_["report"]["claims"].values()]
        assert kind in kinds
    assert body["summary"]["checks"] == 11 and body["summary"]["as_expected"] == 11
    # JUnit: one test case per check, none failing
    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 11 and root.get("tests") == "11" and root.get("failures") == "0"


def test_the_class_example_grades_each_student(tmp_path: Path) -> None:
    problems = str(EXAMPLES / "class" / "problems.toml")
    answers = str(EXAMPLES / "class" / "answers" / "*.toml")
    result = run("--file", problems, "--answers", answers, "--format", "json")
    assert result.exit_code == 1  # some answers are wrong
    body = strict_json(result.stdout)
    grades = {s["student"]: {p: g["grade"] for p, g in s["grades"].items()} for s in body["students"]}
    assert grades == {
        "alice": {"p1": "correct", "p2": "correct", "p3": "correct"},
        "bob": {"p1": "wrong", "p2": "correct", "p3": "wrong"},
        "carol": {"p1": "correct", "p2": "wrong", "p3": "missing"},
    }
    scores = {s["student"]: s["score"] for s in body["students"]}
    assert scores == {"alice": 3, "bob": 1, "carol": 1}
    carol = next(s for s in body["students"] if s["student"] == "carol")
    assert carol["grades"]["p2"]["diagnoses"] == {"x": "sign"}
    # bob's p1 keeps sin(x²) and gets the chain-rule term wrong: SymPy names the wrong term
    bob = next(s for s in body["students"] if s["student"] == "bob")
    assert bob["grades"]["p1"]["diagnoses"] == {"x": "wrong-term"}
    assert "2*x**2*cos(x**2)" in bob["grades"]["p1"]["detail"]
    # CSV for a grade book
    result = run("--file", problems, "--answers", answers, "--format", "csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["student", "p1", "p2", "p3", "score", "out_of"]
    assert rows[1] == ["alice", "correct", "correct", "correct", "3", "3"]
    assert rows[3][0] == "carol" and rows[3][2] == "wrong:sign" and rows[3][3] == "missing"
    # JUnit: one test case per student × problem
    junit = tmp_path / "class.xml"
    run("--file", problems, "--answers", answers, "--junit", str(junit))
    root = ET.parse(junit).getroot()
    assert len(root.findall("./testsuite")) == 3
    assert root.get("tests") == "9" and root.get("failures") == "4"
    bob_p1 = root.find("./testsuite[@name='bob']/testcase[@name='p1']/failure")
    assert bob_p1 is not None and "--at x=" in bob_p1.get("message", "")
    # the table names every problem and student
    table = run("--file", problems, "--answers", answers).stdout
    assert "alice" in table and "3/3" in table and "carol / p3: missing" in table


def test_one_students_file_that_is_all_correct_exits_0(tmp_path: Path) -> None:
    problems = str(EXAMPLES / "class" / "problems.toml")
    result = run("--file", problems, "--answers", str(EXAMPLES / "class" / "answers" / "alice.toml"))
    assert result.exit_code == 0


def test_an_answer_that_does_not_parse_is_invalid_not_bad_input(tmp_path: Path) -> None:
    problems = write(tmp_path, "p.toml", '[[check]]\nname = "p"\nexpression = "x**2"\nsample = 5\nseed = 1\n')
    a = write(tmp_path, "a.toml", '[answers]\np = "2*x +"\n')
    b = write(tmp_path, "b.toml", '[answers]\np = "2*y"\n')
    result = run("--file", str(problems), "--answers", str(a), "--answers", str(b), "--format", "json")
    body = strict_json(result.stdout)
    assert result.exit_code == 1
    assert [s["grades"]["p"]["grade"] for s in body["students"]] == ["invalid", "invalid"]
    assert "y" in body["students"][1]["grades"]["p"]["detail"]


def test_answers_need_one_problems_file_and_a_bad_problems_file_is_exit_2(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", '[answers]\np = "2*x"\n')
    assert run("--answers", str(a)).exit_code == 2
    bad = write(tmp_path, "p.toml", '[[check]]\nname = "p"\nexpresion = "x**2"\n')
    result = run("--file", str(bad), "--answers", str(a))
    assert result.exit_code == 2 and "expresion" in result.output and "expression" in result.output
    assert run("--file", str(bad), "--answers", str(tmp_path / "none*.toml")).exit_code == 2


# ---- files of many checks --------------------------------------------------------------------

SUITE = """
title = "t"
[defaults]
sample = 12
seed = 7

[[check]]
name = "right"
expression = "x**3"
claims = { x = "3*x**2" }

[[check]]
name = "caught"
expression = "x**3"
claims = { x = "3*x" }
expect = "wrong"

[[check]]
name = "missed"
expression = "x**3"
claims = { x = "3*x**2" }
expect = "wrong"

[[check]]
name = "typo"
expression = "x"
smaple = 3

[[check]]
name = "at a point"
expression = "(x+y)*z"
at = { x = -2, y = 5, z = -4 }
"""


def test_a_file_of_many_checks_holds_each_to_its_expectation(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", SUITE)
    junit = tmp_path / "j.xml"
    result = run("--file", str(f), "--format", "json", "--junit", str(junit))
    body = strict_json(result.stdout)
    got = {c["name"]: (c["outcome"], c["ok"]) for c in body["checks"]}
    assert got == {"right": ("correct", True), "caught": ("wrong", True), "missed": ("correct", False),
                   "typo": ("error", False), "at a point": ("pass", True)}
    # a malformed check names the check and the key, and the rest still ran
    typo = next(c for c in body["checks"] if c["name"] == "typo")
    assert "check 4 ('typo')" in typo["error"]["message"] and "'smaple'" in typo["error"]["message"]
    assert "did you mean 'sample'" in typo["error"]["message"]
    assert result.exit_code == 2 and body["summary"]["errors"] == 1
    # the point check used the lecture's values: df/dx = z = -4, df/dz = x + y = 3
    point = next(c for c in body["checks"] if c["name"] == "at a point")["report"]
    assert point["points"] == 1 and point["methods"][0]["gradient"] == {"x": -4.0, "y": -4.0, "z": 3.0}
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "5" and root.get("failures") == "1" and root.get("errors") == "1"
    failure = root.find(".//testcase[@name='missed']/failure")
    assert failure is not None and "expected wrong, got correct" in failure.get("message", "")


def test_exit_codes_of_a_file(tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.toml", '[[check]]\nexpression = "x**2"\nclaims = { x = "2*x" }\nsample = 5\n'
               'seed = 1\n[[check]]\nexpression = "x**2"\nclaims = { x = "x" }\nexpect = "wrong"\n'
               'diagnosis = "factor"\nsample = 5\nseed = 1\n')
    assert run("--file", str(ok)).exit_code == 0
    wrong_kind = write(tmp_path, "k.toml", '[[check]]\nexpression = "x**2"\nclaims = { x = "x" }\n'
                       'expect = "wrong"\ndiagnosis = "sign"\nsample = 5\nseed = 1\n')
    result = run("--file", str(wrong_kind))
    assert result.exit_code == 1 and "expected the diagnosis 'sign'" in result.stdout


@pytest.mark.parametrize(("body", "key"), [
    ('[[check]]\nexpression = "x"\nexpect = "maybe"\n', "expect"),
    ('[[check]]\nexpression = "x"\nexpect = "wrong"\n', "expect"),  # no claims: pass/fail only
    ('[[check]]\nexpression = "x"\nclaims = { x = "1" }\ndiagnosis = "sign"\n', "diagnosis"),
    ('[[check]]\nexpression = "x"\nsample = 0\n', "sample"),
    ('[[check]]\nexpression = "x"\nsample = 3\ndomain = { x = [2, 1] }\n', "2"),
    ('[[check]]\nexpression = "x"\nmethods = ["reverse", "magic"]\n', "methods"),
    ('[[check]]\nexpression = "x"\nat = { x = 1 }\npoints = [{ x = 1 }]\n', "points"),
    ('[[check]]\nexpression = "x"\npoints = [{ x = 1 }, { y = 1 }]\n', "points"),
    ('[[check]]\nname = "a"\nexpression = "x"\n[[check]]\nname = "a"\nexpression = "x"\n', "name"),
    ('[[check]]\nname = "a"\n', "expression"),
    ('[[check]]\nexpression = "x"\nclaims = "2"\n', "claims"),
])
def test_malformed_checks_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    f = write(tmp_path, "m.toml", body)
    result = run("--file", str(f), "--format", "json")
    out = strict_json(result.stdout)
    assert result.exit_code == 2
    errors = [c["error"]["message"] for c in out["checks"] if c["error"]]
    assert errors and key in errors[-1], errors


def test_points_given_in_a_file_are_all_checked(tmp_path: Path) -> None:
    f = write(tmp_path, "p.toml", '[[check]]\nexpression = "x**3"\nclaims = { x = "3*x**2" }\n'
              'points = [{ x = 1 }, { x = 2 }, { x = -0.5 }]\n')
    body = strict_json(run("--file", str(f), "--format", "json").stdout)
    claim = body["checks"][0]["report"]["claims"]["x"]
    assert claim["verdict"] == "correct" and claim["checked"] == 3


def test_markdown_and_csv_summaries(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", SUITE)
    md = run("--file", str(f), "--format", "markdown").stdout
    assert md.startswith("### gradcheck: t") and "| ✗ | missed |" in md and "5 checks: 3 as expected" in md
    rows = list(csv.reader(io.StringIO(run("--file", str(f), "--format", "csv").stdout)))
    assert rows[0][:3] == ["file", "check", "expression"] and len(rows) == 6


def test_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", '[[check]]\nname = "=HYPERLINK(1)"\nexpression = "-x"\nat = { x = 1 }\n')
    rows = list(csv.reader(io.StringIO(run("--file", str(f), "--format", "csv").stdout)))
    assert rows[1][1] == "'=HYPERLINK(1)" and rows[1][2] == "'-x"


def test_csv_needs_a_file() -> None:
    assert run("x", "--at", "x=1", "--format", "csv").exit_code == 2


def test_seeded_runs_are_reproducible(tmp_path: Path) -> None:
    f = write(tmp_path, "s.toml", SUITE)
    a = strict_json(run("--file", str(f), "--format", "json").stdout)
    b = strict_json(run("--file", str(f), "--format", "json").stdout)
    witness = [c["report"]["claims"]["x"]["witness"] for c in (a, b)
               for c in [next(x for x in c["checks"] if x["name"] == "caught")]]
    assert witness[0] == witness[1] and witness[0] is not None


# ---- diagnoses SymPy finds -------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "claim", "kind", "text"), [
    ("x*sin(x)", "sin(x)", "missing-term", "x*cos(x)"),                      # product rule, half
    ("x**2*exp(x)", "2*x*exp(x) + x**2*exp(x) + exp(x)", "extra-term", "exp(x)"),
    ("x*sin(x**2)", "sin(x**2) + x*cos(x**2)", "wrong-term", "2*x**2*cos(x**2)"),  # chain rule
])
def test_term_diagnoses(expr: str, claim: str, kind: str, text: str) -> None:
    c = check(expr, expect={"x": claim}, sample=8, seed=5).claims["x"]
    assert c.verdict == "wrong" and c.diagnosis_kind == kind and text in (c.diagnosis or "")


def test_no_term_diagnosis_on_a_correct_answer() -> None:
    c = check("x*sin(x**2)", expect={"x": "sin(x**2) + 2*x**2*cos(x**2)"}, sample=8, seed=5).claims["x"]
    assert c.verdict == "correct" and c.diagnosis is None and c.diagnosis_kind is None


# ---- equal except where the claim is undefined ------------------------------------------------


def test_a_removable_singularity_is_equal_except_at_an_isolated_point() -> None:
    # f = x²/2 + x, f' = x + 1; the claim (x²−1)/(x−1) is x + 1 except at x = 1 (0/0)
    pts = {"x": np.array([1.0, 0.5, -1.2])}
    report = check("x**2/2 + x", pts, expect={"x": "(x**2-1)/(x-1)"})
    c = report.claims["x"]
    assert report.verdict == "pass" and c.verdict == "equal-except-undefined"
    assert c.undefined == {"count": 1, "isolated": True, "at": ["x=1.0"], "text": c.undefined["text"]}
    assert "∂f/∂v = 2 " in c.undefined["text"] and "removable singularity" in c.diagnosis
    rejected = check("x**2/2 + x", pts, expect={"x": "(x**2-1)/(x-1)"}, where_undefined="reject")
    r = rejected.claims["x"]
    assert rejected.verdict == "fail" and r.verdict == "wrong" and r.diagnosis_kind == "undefined"
    assert r.witness is not None and r.witness["true"] == 2.0 and r.failing == 1


def test_a_claim_undefined_on_part_of_the_box_is_wrong_unless_accepted() -> None:
    # d/dx log|x| = 1/x everywhere but 0; exp(-log(x)) is 1/x only for x > 0
    report = check("log(abs(x))", sample=30, seed=2, expect={"x": "exp(-log(x))"})
    c = report.claims["x"]
    assert c.verdict == "wrong" and c.diagnosis_kind == "undefined" and c.undefined["isolated"] is False
    assert all(float(a.split("=")[1]) < 0 for a in c.undefined["at"])
    accepted = check("log(abs(x))", sample=30, seed=2, expect={"x": "exp(-log(x))"}, where_undefined="accept")
    assert accepted.claims["x"].verdict == "equal-except-undefined" and accepted.verdict == "pass"


def test_where_undefined_on_the_command_line() -> None:
    args = ["x**2/2+x", "--at", "x=1", "--expect", "x=(x**2-1)/(x-1)"]
    assert run(*args).exit_code == 0
    assert run(*args, "--where-undefined", "reject").exit_code == 1
    body = strict_json(run(*args, "--format", "json").stdout)
    assert body["claims"]["x"]["verdict"] == "equal-except-undefined"
    claim_method = next(m for m in body["methods"] if m["name"] == "claim")
    assert claim_method["cells"] == {"x": "undefined-accepted"}


@pytest.mark.parametrize(("expr", "at", "where"), [
    ("cot(x)", "x=0", "a pole of cot (undefined at u = kπ)"),
    ("csc(2*x)", "x=0", "a pole of csc"),
    ("atanh(x)", "x=1", "a pole of atanh (undefined at u = ±1)"),
])
def test_a_pole_is_named_as_a_pole(expr: str, at: str, where: str) -> None:
    result = run(expr, "--at", at)
    assert result.exit_code == 2 and where in result.output


# ---- two processes for a large file ----------------------------------------------------------


def _specs(n: int):
    from gradcheck_cli import suite
    body = "\n".join(f'[[check]]\nname = "c{i}"\nexpression = "x**{i % 4 + 2} + {i}*x"\n'
                     f'claims = {{ x = "{i % 4 + 2}*x**{i % 4 + 1} + {i if i % 5 else i + 1}" }}\n'
                     f'points = [{{ x = 0.5 }}, {{ x = 1.5 }}, {{ x = -1 }}]\n' for i in range(n))
    return suite, body


def test_two_processes_give_the_same_outcomes_in_the_same_order(tmp_path: Path) -> None:
    suite, body = _specs(20)
    specs = suite.load(write(tmp_path, "s.toml", body)).specs
    one = suite.run_all(specs, {}, check, processes=1)
    seen: list[str] = []
    two = suite.run_all(specs, {}, check, processes=2, progress=lambda o: seen.append(o.spec.name))
    def key(outcomes):
        return [(o.spec.name, o.outcome, o.detail) for o in outcomes]
    assert key(one) == key(two)
    assert sorted(seen) == sorted(o.spec.name for o in one)
    # every fifth check claims the constant i + 1 instead of i: wrong, off by 1
    assert [o.outcome for o in two] == ["wrong" if i % 5 == 0 else "correct" for i in range(20)]


def test_a_second_process_that_dies_leaves_its_checks_to_the_first(tmp_path: Path) -> None:
    import os
    suite, body = _specs(12)
    specs = suite.load(write(tmp_path, "s.toml", body)).specs
    parent = os.getpid()

    def dying(*args, **kwargs):
        if os.getpid() != parent:
            os._exit(1)
        return check(*args, **kwargs)

    out = suite.run_all(specs, {}, dying, processes=2)
    assert [o.spec.name for o in out] == [f"c{i}" for i in range(12)]
    assert [o.outcome for o in out] == ["wrong" if i % 5 == 0 else "correct" for i in range(12)]


def test_errors_survive_the_trip_between_processes() -> None:
    import pickle

    from gradcheck_cli import GradcheckError
    e = pickle.loads(pickle.dumps(GradcheckError("syntax", "bad", column=3, source="x+")))
    assert (e.kind, e.message, e.column, e.source) == ("syntax", "bad", 3, "x+")


# ---- a box that is mostly undefined ----------------------------------------------------------


@pytest.mark.parametrize(("expr", "lo", "width"), [
    ("sqrt(x-5)", 5.0, 4.0),      # undefined on the whole default box: the run x > 5, box-wide
    ("asin(x-5)", 4.0, 2.0),      # defined only on [4, 6]
])
def test_an_undefined_box_suggests_one_where_f_is_defined(expr: str, lo: float, width: float) -> None:
    result = run(expr, "--sample", "10", "--seed", "1")
    assert result.exit_code == 2
    hint = result.output.split("--domain x=")[1].split(".\n")[0].rstrip(".")
    a, b = (float(t) for t in hint.split(":"))
    assert lo <= a < lo + 0.01 and abs((b - a) - width) < 0.01
    assert run(expr, "--sample", "10", "--seed", "1", "--domain", f"x={a}:{b}").exit_code == 0


def test_a_mostly_undefined_box_says_how_much_and_where_instead() -> None:
    body = strict_json(run("sqrt(x-1.9)", "--sample", "40", "--seed", "3", "--format", "json").stdout)
    sample = body["sample"]
    assert sample["defined_fraction"] < 0.1 and sample["redrawn"] > 0
    a, b = (float(t) for t in sample["suggested_domain"].split("x=")[1].split(":"))
    assert 1.9 < a < 1.91 and b == 2.0
    kinds = ("undefined-points", "redrawn-points")
    note = next(d["message"] for d in body["diagnostics"] if d["kind"] in kinds)
    assert "--domain x=" in note and "of the box" in note


def test_progress_shows_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import io as _io
    import sys

    from gradcheck_cli import runfiles
    with runfiles.progress_bar(10, "checks") as advance:
        assert advance is None  # stderr is not a terminal under pytest: nothing extra
    f = write(tmp_path, "s.toml", SUITE)
    result = CliRunner().invoke(cli, ["--file", str(f)], catch_exceptions=False)
    assert result.stderr == ""

    class Terminal(_io.StringIO):
        def isatty(self) -> bool:
            return True
    fake = Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    with runfiles.progress_bar(3, "checks") as advance:
        assert advance is not None
        for _ in range(3):
            advance(None)
    with runfiles.progress_bar(1, "checks") as advance:
        assert advance is None  # one check: no bar


# ---- probing the special points --------------------------------------------------------------

NEAR_POLE = "x + 1 + 1e-12/(x - 1.234567)**2"  # = f' except within ~1e-6 of 1.234567


def test_probing_finds_a_claim_wrong_only_near_a_denominator_zero() -> None:
    # uniform sampling alone misses it (what WeBWorK-style checking would accept) ...
    for seed in range(5):
        blind = check("x**2/2 + x", sample=20, seed=seed, expect={"x": NEAR_POLE}, probe=False)
        assert blind.claims["x"].verdict == "correct"
    # ... the probed points at the zero of its denominator and beside it catch it
    for seed in range(5):
        report = check("x**2/2 + x", sample=20, seed=seed, expect={"x": NEAR_POLE})
        c = report.claims["x"]
        assert c.verdict == "wrong" and report.verdict == "fail"
        assert c.witness is not None and abs(float(c.witness["at"].split("=")[1]) - 1.234567) < 1e-3
        assert "1.234567" in (c.witness["probe"] or "")
        assert report.sample is not None and len(report.sample.probes) >= 3
        assert report.size == 20 + len(report.sample.probes)
    assert c.diagnosis_kind == "extra-term" and "(x - 1234567/1000000)**2)" in (c.diagnosis or "")


def test_probing_confirms_a_removable_singularity_at_its_point() -> None:
    report = check("x**2/2 + x", sample=20, seed=1, expect={"x": "(x**2-1)/(x-1)"})
    c = report.claims["x"]
    assert c.verdict == "equal-except-undefined" and c.undefined["at"] == ["x=1.0"]


def test_redraws_are_counted_and_a_seed_repeats_the_points() -> None:
    a = check("sqrt(x)", sample=50, seed=11, methods=["reverse"])
    b = check("sqrt(x)", sample=50, seed=11, methods=["reverse"])
    assert a.sample is not None and a.sample.redrawn > 0 and a.sample.dropped == 0
    assert a.size == 50 and np.all(a.points["x"] > 0)
    assert np.array_equal(a.points["x"], b.points["x"]) and a.sample.redrawn == b.sample.redrawn
    c = check("sqrt(x)", sample=50, seed=12, methods=["reverse"])
    assert not np.array_equal(a.points["x"], c.points["x"])
