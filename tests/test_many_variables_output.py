"""What a check of many variables prints: a table of the partials that say something (failing
first, at most render.TABLE_ROWS), the point's text capped, every value still in JSON; and the
unsampled variables of a directional check are not probed one by one."""

from __future__ import annotations

import json
import re

import numpy as np
from click.testing import CliRunner

from gradcheck_cli import render
from gradcheck_cli.check import check
from gradcheck_cli.cli import cli
from gradcheck_cli.rules import RULES, Rule

N = 60  # 120 variables: past the 64 of a directional check, past a table's 50 rows


def _program() -> str:
    lines = [f"a{i} = {i + 0.5}" for i in range(N)] + [f"x{i} = {(i - N / 2) / 20}" for i in range(N)]
    return "\n".join(lines + ["f = " + " + ".join(f"a{i}*tanh(x{i})" for i in range(N))]) + "\n"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _rows(out: str) -> list[str]:
    return re.findall(r"^[│|] ([ax]\d+) ", out, flags=re.M)


def test_the_table_shows_the_checked_partials_and_says_what_it_leaves_out() -> None:
    result = run("-", input=_program())
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert 16 <= len(rows) <= render.TABLE_ROWS
    hidden = 2 * N - len(rows)
    assert f"{hidden:,} more partials not shown (none of them failing); --format json has them all" in \
        " ".join(result.output.split())
    assert "… and 108 more) =" in result.output  # the point's text: 12 variables named
    # JSON keeps all 120, with reverse mode's exact values: ∂f/∂a_i = tanh(x_i)
    data = json.loads(run("-", "--format", "json", input=_program()).output)
    reverse = next(m for m in data["methods"] if m["name"] == "reverse")
    assert len(reverse["gradient"]) == 2 * N
    assert reverse["gradient"]["a7"] == float(np.tanh((7 - N / 2) / 20))


def test_unsampled_variables_are_not_probed_for_a_reference() -> None:
    """Their missing reference is by design: the check judges the sampled 16 one by one (and all
    of them along the directions), not 15 more evaluations a cell for a few more."""
    text = _program().splitlines()[-1][4:]
    point = {f"a{i}": i + 0.5 for i in range(N)} | {f"x{i}": (i - N / 2) / 20 for i in range(N)}
    report = check(text, point)
    assert report.verdict == "pass"
    judged = [v for v in report.wrt if report.method("reverse").cells.code[v][0] == 0]
    assert len(judged) == 16
    assert {report.method("reverse").cells.code[v][0] for v in report.wrt if v not in judged} == {6}
    assert "on the 16 of 120 partials that could be judged" in render.verdict_text(report)


def test_failing_partials_come_first_and_the_rest_are_counted(monkeypatch) -> None:
    """A planted wrong rule (tanh' with the wrong sign where its argument is above -1.4) makes
    ∂f/∂x_i wrong for 57 of the 60 x_i under --full: the table shows 50 of them and says the
    other 7 fail too."""
    good = RULES["tanh"]
    wrong_partial = (lambda o, x: np.where(x > -1.4, o * o - 1, 1 - o * o),)
    monkeypatch.setitem(RULES, "tanh", Rule(good.value, wrong_partial))
    result = run("-", "--full", "--methods", "reverse,central", input=_program())
    assert result.exit_code == 1
    rows = _rows(result.output)
    wrong = [f"x{i}" for i in range(N) if (i - N / 2) / 20 > -1.4]
    assert len(wrong) == 57 and len(rows) == render.TABLE_ROWS
    assert rows == wrong[:render.TABLE_ROWS]  # in the formula's order, failing ones only
    assert "70 more partials not shown (7 of them failing); --format json has them all" in \
        " ".join(result.output.split())
