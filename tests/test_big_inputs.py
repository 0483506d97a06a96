"""Big inputs travel: a formula longer than a command line allows comes from standard input
(`gradcheck - --at ...`) or a file (`--program PATH`), and every output echoes a capped form."""

from __future__ import annotations

import json
import math
from pathlib import Path

from click.testing import CliRunner

from gradcheck_cli.cli import cli
from gradcheck_cli.render import capped


def chain(n: int) -> str:
    u = "x"
    for _ in range(n):
        u = f"sin({u})*x + x"
    return u


def value_and_slope(n: int, x: float) -> tuple[float, float]:
    u, du = x, 1.0  # u_{k+1} = sin(u_k)·x + x, by hand
    for _ in range(n):
        u, du = math.sin(u) * x + x, math.cos(u) * du * x + math.sin(u) + 1
    return u, du


def test_a_formula_from_standard_input_longer_than_an_argument_may_be(tmp_path: Path) -> None:
    text = chain(12000)  # about 144,000 characters: more than one argv entry may hold
    assert len(text) > 128 * 1024
    result = CliRunner().invoke(cli, ["-", "--at", "x=0.5", "--methods", "reverse", "--format", "json"],
                                input=text)
    assert result.exit_code == 0, result.output[-500:]
    body = json.loads(result.stdout)
    f, slope = value_and_slope(12000, 0.5)
    assert math.isclose(body["value"], f, rel_tol=1e-12)
    assert math.isclose(body["methods"][0]["gradient"]["x"], slope, rel_tol=1e-9)
    assert body["expression_chars"] == len(text) and len(body["expression"]) < 10_100
    assert body["expression"].endswith(f"… ({len(text):,} characters)")
    # the same from a file; the table's title is capped too
    path = tmp_path / "f.txt"
    path.write_text(text, encoding="utf-8")
    table = CliRunner().invoke(cli, ["--program", str(path), "--at", "x=0.5", "--methods", "reverse"])
    joined = "".join(table.stdout.split())  # the title folds at the table's width
    assert table.exit_code == 0 and f"({len(text):,}characters)" in joined
    assert len(table.stdout) < 20_000


def test_bad_input_from_standard_input_and_files(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["-", "--at", "x=1"], input="x**2 +")
    assert r.exit_code == 2 and "column 7" in r.output
    r = CliRunner().invoke(cli, ["-", "--at", "x=1"], input="   ")
    assert r.exit_code == 2 and "empty" in r.output
    r = CliRunner().invoke(cli, ["-", "--at", "x=1", "--max-length", "5"], input="x*x*x*x")
    assert r.exit_code == 2 and "--max-length" in r.output
    r = CliRunner().invoke(cli, ["--program", str(tmp_path / "none.txt"), "--at", "x=1"])
    assert r.exit_code == 2 and "none.txt" in r.output
    r = CliRunner().invoke(cli, ["x", "--program", "-", "--at", "x=1"], input="x")
    assert r.exit_code == 2 and "not both" in r.output
    (tmp_path / "latin1.txt").write_bytes(b"x*\xe9")
    r = CliRunner().invoke(cli, ["--program", str(tmp_path / "latin1.txt"), "--at", "x=1"])
    assert r.exit_code == 2 and "UTF-8" in r.output


def test_capped_titles() -> None:
    assert capped("x*y") == "x*y"
    assert capped("t = x**2\nu = sin(t)  # a step\n\nJ = cos(u)") == "t = x**2; u = sin(t); J = cos(u)"
    long = "x+" * 500 + "x"
    assert capped(long).endswith("… (1,001 characters)") and len(capped(long)) < 230


def test_a_formula_from_a_file_may_have_comments(tmp_path) -> None:
    """Comments are program syntax, and a file may comment a plain formula too; on the command
    line `x # ...` is still refused (test_adversarial)."""
    path = tmp_path / "card.txt"
    path.write_text("# the lecture's card formula\ncos(sin(x**2)+3*x**2)  # J\n")
    result = CliRunner().invoke(cli, ["--program", str(path), "--at", "x=1.5", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] == "pass"
    # J'(1.5) = -sin(sin(2.25) + 6.75) · (cos(2.25)·3 + 9): the lecture's value
    want = -math.sin(math.sin(2.25) + 6.75) * (math.cos(2.25) * 3 + 9)
    reverse = next(m for m in data["methods"] if m["name"] == "reverse")
    assert math.isclose(float(data["exact"]["x"]), want, rel_tol=1e-14)
    assert math.isclose(reverse["gradient"]["x"], want, rel_tol=1e-14)
    result = CliRunner().invoke(cli, ["-", "--at", "x=1"], input="# a comment = not a program\nx +* 2\n")
    assert result.exit_code == 2 and "found '*'" in result.output
