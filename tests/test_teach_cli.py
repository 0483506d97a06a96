"""The teaching flags through the real command: programs with named steps, --trace, --graph,
--sweep, --taylor. Values are the lecture's, recomputed here with math."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "sample_expressions" / "programs"
STAGED = "t = x^2; u1 = sin(t); u2 = 3*t; u = u1 + u2; J = cos(u)"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_the_staged_program_traces_the_lecture_steps() -> None:
    x = 1.5
    t = x * x
    u1, u2 = math.sin(t), 3 * t
    u = u1 + u2
    dj_du = -math.sin(u)
    via_u1 = dj_du * math.cos(t)
    via_u2 = dj_du * 3
    result = run(STAGED, "--at", "x=1.5", "--trace")
    assert result.exit_code == 0
    out = result.stdout
    for step, value in (("t", t), ("u1", u1), ("u2", u2), ("u", u), ("J", math.cos(u))):
        assert any(line.split()[:1] == [step] and f"{value:.10g}"[:8] in line for line in out.splitlines())
    assert f"dJ/dt += dJ/du1 · du1/dt = {dj_du:.10g} · {math.cos(t):.10g} = {via_u1:.10g}" in out
    assert f"dJ/dt += dJ/du2 · du2/dt = {dj_du:.10g} · 3 = {via_u2:.10g}" in out
    assert f"→ dJ/dt = {via_u1 + via_u2:.10g} (all 2 contributions added" in out
    assert f"dJ/dx = {(via_u1 + via_u2) * 2 * x:.10g}" in out
    # the trace comes first, the verdict last
    assert out.index("forward pass") < out.index("backward pass") < out.index("✓ all 4 methods")


def test_trace_takes_an_optional_value_and_never_eats_the_formula() -> None:
    a = run("--trace", "x**3", "--at", "x=2")
    assert a.exit_code == 0 and "dx**3/dx" not in a.stdout and "forward pass" in a.stdout
    b = run("--trace", "forward", "x**3", "--at", "x=2", "--format", "json")
    body = json.loads(b.stdout)
    assert body["trace"]["kind"] == "forward-trace" and body["trace"]["derivative"] == 12.0
    c = run("x**3", "--at", "x=2", "--trace", "--format", "json")
    assert json.loads(c.stdout)["trace"]["kind"] == "trace"


def test_micrograd_programs_give_micrograds_values() -> None:
    body = json.loads(run("--program", str(PROGRAMS / "micrograd_more_ops.txt"), "--format", "json").stdout)
    assert body["value"] == pytest.approx(24.70408163265306, rel=1e-15)
    grad = body["methods"][0]["gradient"]
    assert grad["a"] == pytest.approx(138.83381924198252, rel=1e-13)
    assert grad["b"] == pytest.approx(645.5772594752186, rel=1e-13)
    assert body["verdict"] == "pass" and body["point"] == {"a": -4.0, "b": 2.0}
    assert [w for w in body["warnings"] if "Euler" in w]  # e = c - d shadows the constant
    sanity = json.loads(run("--program", str(PROGRAMS / "micrograd_sanity.txt"), "--format", "json").stdout)
    assert sanity["value"] == -20.0 and sanity["methods"][0]["gradient"] == {"x": 46.0}
    # --at overrides a default
    other = json.loads(run("--program", str(PROGRAMS / "micrograd_sanity.txt"), "--at", "x=1",
                           "--format", "json").stdout)
    assert other["point"] == {"x": 1.0}


def test_output_chooses_the_step() -> None:
    body = json.loads(run("q = x + y; f = q*z", "--at", "x=-2,y=5", "--output", "q",
                          "--format", "json").stdout)
    assert body["output"] == "q" and body["value"] == 3.0
    assert body["methods"][0]["gradient"] == {"x": 1.0, "y": 1.0}  # q does not depend on z
    bad = run("q = x + y; f = q*z", "--at", "x=-2,y=5,z=-4", "--output", "r")
    assert bad.exit_code == 2 and "r" in bad.output


def test_the_graph_as_dot_and_mermaid(tmp_path: Path) -> None:
    dot = tmp_path / "g.dot"
    result = run("q = x + y; f = q*z", "--at", "x=-2,y=5,z=-4", "--graph", str(dot))
    assert result.exit_code == 0 and f"wrote {dot}" in "".join(result.stdout.split("\n"))
    text = dot.read_text(encoding="utf-8")
    assert text.startswith("digraph") and "-12" in text and "-4" in text and ">q<" in text or "q" in text
    mmd = tmp_path / "g.mmd"
    assert run("q = x + y; f = q*z", "--at", "x=-2,y=5,z=-4", "--graph", str(mmd)).exit_code == 0
    assert mmd.read_text(encoding="utf-8").startswith(("graph", "flowchart"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (.ci/run installs it)")
def test_the_graph_as_svg(tmp_path: Path) -> None:
    svg = tmp_path / "g.svg"
    assert run("q = x + y; f = q*z", "--at", "x=-2,y=5,z=-4", "--graph", str(svg)).exit_code == 0
    assert "<svg" in svg.read_text(encoding="utf-8")


def test_without_graphviz_an_svg_is_a_clear_error_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    svg = tmp_path / "g.svg"
    result = run("x*y", "--at", "x=1,y=2", "--graph", str(svg))
    assert result.exit_code == 2 and "Graphviz" in result.output and not svg.exists()
    assert "✓" not in result.stdout  # the error alone, before any report


def test_sweep_and_its_plot(tmp_path: Path) -> None:
    plot = tmp_path / "v.svg"
    result = run("cos(sin(x**2)+3*x**2)", "--at", "x=1.5", "--sweep", "--sweep-plot", str(plot),
                 "--format", "json")
    body = json.loads(result.stdout)
    assert result.exit_code == 0 and "<svg" in plot.read_text(encoding="utf-8")
    var = body["sweep"]["variables"][0]
    assert var["name"] == "x" and str(var["reference"]).startswith("-6.74092218514321")
    central = var["methods"]["central"]
    # the V: the best central step lies within two decades of cbrt(eps)·max(1, |x|)
    assert abs(math.log10(central["best"]["step"] / (2.2e-16 ** (1 / 3) * 1.5))) <= 2
    assert run("cos(sin(x**2)+3*x**2)", "--at", "x=1.5", "--sweep").exit_code == 0


def test_taylor_passes_a_right_gradient_and_fails_a_planted_wrong_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.loads(run("cos(sin(x**2)+3*x**2)", "--at", "x=1.5", "--taylor", "--format", "json").stdout)
    assert body["taylor"]["verdict"] == "pass" and body["taylor"]["order"] == pytest.approx(2, abs=0.2)
    from dataclasses import replace

    from gradcheck_cli import rules
    wrong = replace(rules.RULES["sin"], partials=(lambda o, x: -rules.np.cos(x),))
    monkeypatch.setitem(rules.RULES, "sin", wrong)
    result = run("sin(x)*x", "--at", "x=0.7", "--taylor", "--methods", "reverse", "--format", "json")
    body = json.loads(result.stdout)
    assert result.exit_code == 1 and body["taylor"]["verdict"] == "fail"
    assert body["taylor"]["order"] == pytest.approx(1, abs=0.2)


def test_teaching_flags_need_one_point() -> None:
    result = run("x**2", "--sample", "5", "--seed", "1", "--trace")
    assert result.exit_code == 2 and "one point" in result.output


def test_program_errors_name_line_and_column() -> None:
    r = run("a = b*2\nb = x + 1", "--at", "x=1")  # b read on line 1, assigned on line 2
    assert r.exit_code == 2 and "line 1" in r.output and "b" in r.output
    r = run("sin = x", "--at", "x=1")
    assert r.exit_code == 2 and "sin" in r.output


def test_show_formula_step_by_step_and_in_latex() -> None:
    body = json.loads(run(STAGED, "--at", "x=1.5", "--show-formula", "--latex", "--methods", "reverse",
                          "--format", "json").stdout)
    assert body["step_partials"] == ["∂t/∂x = 2*x", "∂u1/∂t = cos(t)", "∂u2/∂t = 3", "∂u/∂u1 = 1",
                                     "∂u/∂u2 = 1", "∂J/∂u = -sin(u)"]
    latex = body["formulas_latex"]["x"]
    assert "\\sin" in latex and "\\cos" in latex and "x^{2}" in latex
    table = run(STAGED, "--at", "x=1.5", "--latex", "--methods", "reverse").stdout
    assert "step by step:" in table and "(symbolic, LaTeX)" in table


def test_the_sweep_says_when_there_is_no_derivative_to_converge_to() -> None:
    """|x-1|·x at 1 has one-sided derivatives -1 and 1: the V-curve measures the distance to the
    AD convention (0), and the study says so; a smooth point has no such note."""
    result = run("abs(x-1)*x", "--at", "x=1", "--sweep")
    text = " ".join(result.output.split())
    assert "note: f has a kink here in x (one-sided derivatives -1 and 1)" in text
    result = run("sqrt(x)+x", "--at", "x=0", "--sweep")
    text = " ".join(result.output.split())
    assert "note: f has no derivative here in x: f has an infinite slope here" in text
    data = json.loads(run("abs(x-1)*x", "--at", "x=1", "--sweep", "--format", "json").output)
    assert "one-sided derivatives -1 and 1" in data["sweep"]["variables"][0]["note"]
    data = json.loads(run("x**2", "--at", "x=1", "--sweep", "--format", "json").output)
    assert data["sweep"]["variables"][0]["note"] is None
