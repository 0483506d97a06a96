"""Adversarial input, end to end: what a stranger's homework can throw at `gradcheck` in CI.

Driven through click's CliRunner on `gradcheck_cli.cli.cli` (and, where the real process
matters, `python -m gradcheck_cli` with a wall-clock bound). One table of hostile inputs:
code-execution attempts, resource bombs, unicode tricks, bad --at values, reserved names and
rich markup, each with its exit code, the words its message must contain, its error kind and a
time bound. The same table is replayed under --format json, where every error must be exactly
one JSON object on stdout. Separate tests cover: nothing executes (canary files), gradients
with reserved names, raw bytes of every echo (no terminal control character reaches the
terminal), numeric flags, check files, and JUnit XML.

CliRunner(color=True) is used wherever raw bytes matter: without it click strips ANSI escape
sequences from non-terminal output, which would hide an unescaped ESC that a real terminal gets.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gradcheck_cli.cli import cli, main


@pytest.fixture(autouse=True)
def _no_stray_alarm() -> Iterator[None]:
    """The CLI arms SIGALRM for --timeout; never let one outlive a test, even a failing one."""
    yield
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def run(args: list[str] | tuple[str, ...], color: bool = False) -> tuple[Result, float]:
    start = time.monotonic()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), color=color)
    return result, time.monotonic() - start


def assert_clean(result: Result, code: int) -> None:
    detail = (result.exit_code, result.stdout[-2000:], result.stderr[-2000:], repr(result.exception))
    assert result.exit_code == code, detail
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    assert "Traceback" not in result.output, detail


def one_json_object(text: str) -> dict:
    """Exactly one strict-JSON object and nothing else (whitespace aside)."""
    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    decoder = json.JSONDecoder(parse_constant=reject)
    obj, end = decoder.raw_decode(text.lstrip())
    assert text.lstrip()[end:].strip() == "", f"more than one JSON value: {text[:300]!r}"
    assert isinstance(obj, dict)
    return obj


def control_characters(text: str) -> list[str]:
    """Characters a terminal would act on or hide (all but newline): C0/C1 controls, DEL,
    bidi overrides, zero-width and other non-printable characters."""
    return [repr(c) for c in text if c != "\n" and not c.isprintable()]


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    kind: str | None  # error kind under --format json (None when the check runs)
    needles: tuple[str, ...] = ()  # the error message must contain each
    bound: float = 5.0  # seconds of wall clock
    column: int | None = None  # the JSON error's column
    shown: tuple[str, ...] = ()  # must appear in the text-mode stderr (caret line, literally)


def c(id: str, formula: str, *needles: str, kind: str = "syntax", column: int | None = None,
      at: str | None = None, extra: tuple[str, ...] = (), bound: float = 5.0,
      shown: tuple[str, ...] = ()) -> Case:
    args = (formula,) + (("--at", at) if at else ()) + extra
    if column is not None:
        needles = needles + (f"column {column}",)
    return Case(id, args, 2, kind, needles, bound, column, shown)


def at(id: str, value: str, *needles: str, formula: str = "x", kind: str = "bad-value") -> Case:
    return Case(id, (formula, "--at", value), 2, kind, needles)


DEEP = 100_001
SLOW_N = 3000  # --full central differences on 3000 variables: minutes without the timeout (without
# --full, 3000 variables are checked along random directions in well under a second)
SLOW_FORMULA = "+".join(f"x{i}*x{i}" for i in range(SLOW_N))
SLOW_POINT = ",".join(f"x{i}=1" for i in range(SLOW_N))

CODE_EXECUTION = [
    c("import-system", "__import__('os').system('echo pwned')", "U+0027", "APOSTROPHE", column=12),
    c("subclasses", "().__class__.__bases__[0].__subclasses__()", "U+002E", "FULL STOP", column=3),
    c("exec-call", "exec('1')", "U+0027", column=6),
    c("lambda", "lambda: 1", "U+003A", "COLON", column=7),
    c("dunder-attr", "x.__class__", "U+002E", column=2, at="x=1"),
    c("comprehension", "[x for x in y]", "U+005B", "LEFT SQUARE BRACKET", column=1),
    c("conditional", "x if y else z", "expected an operator", "'if'", column=3),
    c("statements", "x; y", "U+003B", "SEMICOLON", column=2),
    c("comparison", "x == y", "U+003D", "EQUALS SIGN", column=3),
    c("string", "'str'", "U+0027", column=1),
    c("subscript", "x[0]", "U+005B", column=2),
    c("attribute", "x.real", "U+002E", column=2),
    c("matmul", "x @ y", "U+0040", "COMMERCIAL AT", column=3),
    c("backticks", "`x`", "U+0060", "GRAVE ACCENT", column=1),
    c("double-quotes", 'open("/etc/passwd")', "U+0022", "QUOTATION MARK", column=6),
    c("comment", "x # rm -rf /", "U+0023", "NUMBER SIGN", column=3),
    c("walrus", "(x := 1)", "U+003A", column=4),
    c("dict", "{x}", "U+007B", "LEFT CURLY BRACKET", column=1),
    c("floordiv", "x // y", "expected a number, name or '('", "'/'", column=4),
    c("backslash", "x\\\n+ y", "U+005C", "REVERSE SOLIDUS", column=2),
    c("func-globals", "sin.__globals__", "U+002E", column=4),
    c("call-result", "sin(x)(y)", "expected an operator", "'('", column=7),
    c("juxtaposition", "x y", "expected an operator", "'y'", "explicit '*'", column=3),
    c("eval-as-function", "eval(x)", "'eval' is not a known function", kind="unknown-function",
      column=1, at="x=1"),
    c("import-as-function", "__import__(os)", "'__import__' is not a known function",
      kind="unknown-function", column=1),
    c("print-as-function", "print(x)", "'print' is not a known function", kind="unknown-function",
      column=1),
    c("getattr-as-function", "getattr(x, y)", "'getattr' is not a known function",
      kind="unknown-function", column=1),
]

RESOURCE_BOMBS = [
    c("power-tower", "9**9**9**9", "not finite", "overflows", kind="undefined"),
    c("power-tower-10", "10**10**10", "not finite", "overflows", kind="undefined"),
    c("factorial", "factorial(10**8)", "'factorial' is not a known function",
      kind="unknown-function", column=1),
    c("exp-tower", "exp(exp(exp(10)))", "not finite", "exp(u)", kind="undefined"),
    c("huge-exponent", "x**99999999", "99999999", "--max-exponent", kind="limit", at="x=1",
      column=2),
    c("huge-negative-exponent", "x**-99999999", "--max-exponent", kind="limit", at="x=1"),
    c("huge-exponent-inner", "2**(x**99999)", "--max-exponent", kind="limit", at="x=1"),
    c("deep-parens", "(" * DEEP + "x" + ")" * DEEP, "--max-depth", "100000", kind="limit",
      at="x=1", bound=20),
    c("deep-calls", "sin(" * DEEP + "x" + ")" * DEEP, "--max-depth", kind="limit", at="x=1",
      bound=20),
    Case("deep-unary", ("--at", "x=1", "- " * DEEP + "x"), 2, "limit", ("--max-depth",), 20),
    c("depth-flag", "(((((x)))))", "--max-depth", "nests deeper than 4", kind="limit",
      extra=("--max-depth", "4")),
    c("length-3MB", "x+" * 1_500_000 + "x", "--max-length", "3000001", kind="limit", at="x=1",
      bound=20),
    c("length-flag", "x+x+xx", "--max-length", "6 characters", kind="limit", extra=("--max-length", "5")),
    c("digits-1000", "1" * 1000 + "*x", "--max-digits", "1000 digits", kind="limit", at="x=1",
      column=1),
    c("digits-flag", "123456*x", "--max-digits", "6 digits", kind="limit", at="x=1",
      extra=("--max-digits", "5")),
    c("exponent-digits", "1e" + "9" * 5000, "outside the range of float64", kind="bad-number",
      column=1),
    # leading zeros must not slip a 4301-digit exponent past the guard into int()
    # (every digit of a literal counts against --max-digits, the exponent's too)
    c("exponent-zeros", "x*1e-" + "0" * 4301 + "1", "--max-digits", kind="limit", at="x=1",
      column=3),
    c("exponent-zeros-2", "1e" + "0" * 4301, "--max-digits", kind="limit", column=1),
    c("literal-overflow", "1e400*x", "outside the range of float64", kind="bad-number", at="x=1"),
    c("literal-underflow", "1e-400*x", "outside the range of float64", kind="bad-number", at="x=1"),
    Case("timeout", (SLOW_FORMULA, "--at", SLOW_POINT, "--timeout", "1", "--full", "--methods",
                     "reverse,central", "--reference", "complex"),
         2, "limit", ("time limit", "--timeout"), 10),
]

UNICODE = [
    c("cyrillic-ha", "x+\u0445", "U+0445", "CYRILLIC SMALL LETTER HA", "ASCII", column=3),
    c("fullwidth-x", "\uff58**2", "U+FF58", "FULLWIDTH LATIN SMALL LETTER X", column=1),
    c("minus-sign", "x \u2212 1", "U+2212", "MINUS SIGN", "'-'", column=3),
    c("zero-width-space", "x\u200b+1", "U+200B", "ZERO WIDTH SPACE", column=2),
    c("rtl-override", "x\u202e+1", "U+202E", "RIGHT-TO-LEFT OVERRIDE", column=2),
    c("greek-omicron", "\u03bf+1", "U+03BF", "GREEK SMALL LETTER OMICRON", column=1),
    c("nul", "x+\x00", "U+0000", "control character", column=3),
    c("esc", "x\x1b[31m", "U+001B", "control character", column=2),
    c("bel", "x\x07", "U+0007", "control character", column=2),
    c("del", "x\x7f", "U+007F", column=2),
    c("combining-accent", "x\u0301", "U+0301", "COMBINING ACUTE ACCENT", column=2),
    c("math-italic-x", "\U0001d465+1", "U+1D465", "MATHEMATICAL ITALIC SMALL X", column=1),
    c("bom", "x\ufeff", "U+FEFF", "ZERO WIDTH NO-BREAK SPACE", column=2),
    c("nbsp", "x\u00a0+1", "U+00A0", "NO-BREAK SPACE", column=2),
    c("line-separator", "x\u2028+1", "U+2028", "LINE SEPARATOR", column=2),
    c("surrogate", "x\udcff+1", "U+DCFF", column=2),  # what undecodable argv bytes become
]

BAD_AT = [
    at("nan", "x=nan", "x", "'nan'", "decimal"),
    at("NaN", "x=NaN", "x", "'NaN'"),
    at("inf", "x=inf", "x", "'inf'"),
    at("-inf", "x=-inf", "x", "'-inf'"),
    at("Infinity", "x=Infinity", "x", "'Infinity'"),
    at("1e999", "x=1e999", "x", "1e999", "float64"),
    at("-1e999", "x=-1e999", "x", "float64"),
    at("1e-400", "x=1e-400", "x", "1e-400"),
    at("underscore", "x=1_000", "x", "'1_000'"),
    at("fullwidth-digit", "x=\uff11", "the value of x"),
    at("arabic-indic-digit", "x=\u0661", "the value of x"),
    at("unicode-minus", "x=\u22121", "the value of x"),
    at("hex", "x=0x10", "x", "'0x10'"),
    at("fraction", "x=1/2", "x", "'1/2'"),
    at("dangling-exponent", "x=1e", "x", "'1e'"),
    at("double-minus", "x=--1", "x", "'--1'"),
    at("pi-value", "x=pi", "x", "'pi'"),
    at("two-dots", "x=1.2.3", "x", "'1.2.3'"),
    at("complex", "x=1j", "x", "'1j'"),
    at("expression", "x=__import__('os')", "x", "not a decimal number"),
    at("empty-value", "x=", "no value for x", kind="missing-value"),
    at("blank-value", "x= ", "no value for x", kind="missing-value"),
    at("empty", "", "empty assignment"),
    at("blank", " ", "empty assignment"),
    at("no-equals", "x", "NAME=VALUE"),
    at("no-name", "=1", "''", "not a variable name"),
    at("digit-name", "1x=1", "'1x'", "not a variable name"),
    at("unicode-name", "\u0445=1", "not a variable name"),
    at("duplicate", "x=1,x=2", "x is given a value twice"),
    Case("duplicate-flags", ("x", "--at", "x=1", "--at", "x=2"), 2, "bad-value", ("x", "twice")),
    at("unknown-variable", "x=1,z=3", "'z'", "not a variable of the formula", formula="x",
       kind="unknown-variable"),
    at("missing-variable", "x=1", "no value for y", formula="x*y", kind="missing-value"),
]

RESERVED = [
    at("pi-given", "x=1,pi=3", "'pi' is a constant", formula="x*pi", kind="bad-variable"),
    at("E-given", "x=1,E=1", "'E' is a constant", formula="x*E", kind="bad-variable"),
    at("e-given", "x=1,e=2", "'e' is a constant", formula="x*e", kind="bad-variable"),
    at("pi-given-unused", "x=1,pi=3", "'pi' is a constant", formula="x", kind="bad-variable"),
    c("pi-called", "pi(x)", "'pi' is a constant", kind="unknown-function", column=1),
    c("e-called", "e(x)", "'e' is a constant", kind="unknown-function", column=1),
    c("function-as-variable", "sin*x", "'sin' is a function", at="x=1", column=1),
]

MARKUP = [
    c("markup-formula", "[bold red]x", "U+005B", column=1, shown=("[bold red]x",)),
    c("markup-formula-2", "x+[/]", "U+005B", column=3, at="x=1", shown=("x+[/]",)),
    at("markup-value", "x=[bold]1", "'[bold]1'"),
    at("markup-name", "[red]x=1", "'[red]x'", "not a variable name"),
    Case("markup-wrt", ("x", "--at", "x=1", "--wrt", "[red]y"), 2, "unknown-variable",
         ("'[red]y'",)),
    Case("markup-methods", ("x", "--at", "x=1", "--methods", "[blink]m"), 2, "usage",
         ("'[blink]m'",)),
    at("esc-value", "x=\x1b[31m", "'\\x1b[31m'"),
    at("esc-name", "\x1b[31m=1", "'\\x1b[31m'", "not a variable name"),
]

ERROR_CASES = CODE_EXECUTION + RESOURCE_BOMBS + UNICODE + BAD_AT + RESERVED + MARKUP


def _ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


@pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_error_text(case: Case) -> None:
    result, seconds = run(case.args)
    assert_clean(result, case.code)
    assert seconds < case.bound, f"{case.id} took {seconds:.1f} s (bound {case.bound} s)"
    assert result.stdout == ""
    first = result.stderr.splitlines()[0] if result.stderr else ""
    assert first.startswith("gradcheck: error: "), result.stderr[:500]
    for needle in case.needles + case.shown:
        assert needle in result.stderr, (needle, result.stderr[:1000])
    assert not control_characters(result.stderr), control_characters(result.stderr)


@pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_error_json(case: Case) -> None:
    result, seconds = run(case.args + ("--format", "json"))
    assert_clean(result, case.code)
    assert seconds < case.bound
    assert result.stderr == ""
    body = one_json_object(result.stdout)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"kind", "message"} <= set(error), error
    assert isinstance(error["kind"], str) and isinstance(error["message"], str)
    assert error["kind"] == case.kind, error
    for needle in case.needles:
        assert needle in error["message"], (needle, error["message"][:1000])
    if case.column is not None:
        assert error["column"] == case.column


# --------------------------------------------------------------------------------------------
# Nothing executes
# --------------------------------------------------------------------------------------------

PAYLOAD = "__import__('os').system('touch PWNED')"


def _gradcheck(args: list[str], cwd: Path, timeout: float = 60,
               limit_memory: int | None = None) -> tuple[subprocess.CompletedProcess[bytes], float]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "200"}

    def limits() -> None:
        if limit_memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "gradcheck_cli", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout, preexec_fn=limits)
    return proc, time.monotonic() - start


def test_payloads_execute_nothing_in_a_real_process(tmp_path: Path) -> None:
    """Had any of these reached eval/sympify/parse_expr, PWNED would exist."""
    checkfile = tmp_path / "check.toml"
    checkfile.write_text(
        f'expression = "{PAYLOAD}"\nat = {{ x = 1 }}\n', encoding="utf-8")
    keyfile = tmp_path / "key.toml"
    keyfile.write_text(
        f'expression = "x"\nat = {{ x = 1, "{PAYLOAD}" = 2 }}\n'
        f'wrt = ["{PAYLOAD}"]\n', encoding="utf-8")
    runs = [
        [PAYLOAD],
        ["x", "--at", f"x={PAYLOAD}"],
        ["x", "--at", f"{PAYLOAD}=1"],
        ["x", "--at", "x=1", "--wrt", PAYLOAD],
        ["--file", str(checkfile)],
        ["--file", str(keyfile)],
    ]
    for args in runs:
        proc, seconds = _gradcheck(args, tmp_path)
        assert proc.returncode == 2, (args, proc.stderr[-1000:])
        assert b"Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert seconds < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["check.toml", "key.toml"]


def test_payloads_call_no_code_runner_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with eval/exec/compile/os.system/subprocess replaced by tripwires."""
    import builtins

    calls: list[str] = []

    def tripwire(name: str):
        def trip(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} was called")
        return trip

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, tripwire(name))
    monkeypatch.setattr(os, "system", tripwire("os.system"))
    monkeypatch.setattr(os, "popen", tripwire("os.popen"))
    monkeypatch.setattr(subprocess, "Popen", tripwire("subprocess.Popen"))
    for args in (
        [PAYLOAD], ["exec('1')"], ["lambda: 1"], ["x", "--at", f"x={PAYLOAD}"],
        ["x", "--at", "x=1", "--wrt", PAYLOAD], ["x", "--at", "x=1", "--methods", PAYLOAD],
    ):
        result, _ = run(args)
        assert_clean(result, 2)
    assert calls == []


# --------------------------------------------------------------------------------------------
# What must work: reserved-looking names are plain variables, and big-but-legal input finishes
# --------------------------------------------------------------------------------------------

GOOD = [
    # formula, --at, hand gradient, value, extra flags
    ("S*N + I*beta", "S=2,N=3,I=5,beta=7", {"S": 3, "N": 2, "I": 7, "beta": 5}, 41, ()),
    ("gamma*Q + O*E1 + lambda_**2", "gamma=2,Q=3,O=5,E1=7,lambda_=11",
     {"gamma": 3, "Q": 2, "O": 7, "E1": 5, "lambda_": 22}, 162, ()),
    ("oo*zoo + nan*inf + lambda*exec", "oo=2,zoo=3,nan=5,inf=7,lambda=11,exec=13",
     {"oo": 3, "zoo": 2, "nan": 7, "inf": 5, "lambda": 13, "exec": 11}, 184, ()),
    ("red*bold + x\t+\ny", "red=2,bold=3,x=5,y=7", {"red": 3, "bold": 2, "x": 1, "y": 1}, 18, ()),
    # at the exponent limit; central differences are left out: their truncation error on
    # x**10000 is ~6e-4 (a property of finite differences, not of the input)
    ("x**10000", "x=1", {"x": 10000}, 1, ("--methods", "reverse,forward,symbolic")),
]


@pytest.mark.parametrize("formula,point,gradient,value,extra", GOOD, ids=[g[0][:20] for g in GOOD])
def test_reserved_looking_names_are_plain_variables(formula: str, point: str, gradient: dict[str, float],
                                                   value: float, extra: tuple[str, ...]) -> None:
    result, seconds = run([formula, "--at", point, "--format", "json", *extra])
    assert_clean(result, 0)
    assert seconds < 20
    report = one_json_object(result.stdout)
    assert report["ok"] is True
    assert report["value"] == value
    assert set(report["wrt"]) == set(gradient)
    assert report["reference"] == "exact"
    for m in report["methods"]:
        rel = 1e-6 if m["name"] == "central" else 1e-12
        assert m["gradient"] == pytest.approx(gradient, rel=rel), m["name"]


def test_markup_named_variables_print_as_text() -> None:
    result, _ = run(["red*bold", "--at", "red=2,bold=3"], color=True)
    assert_clean(result, 0)
    assert "red*bold" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert any(row.split("│")[1].strip() == "red" for row in rows), result.stdout
    assert any(row.split("│")[1].strip() == "bold" for row in rows), result.stdout


def test_symbolic_over_budget_is_skipped_not_fatal() -> None:
    # 300 nested sines take SymPy tens of seconds; the check goes on without it.
    formula = "sin(" * 300 + "x" + ")" * 300
    # by default SymPy is skipped up front (nodes x depth is past its budget) ...
    result, _ = run([formula, "--at", "x=0.5", "--format", "json"])
    notes = [d["message"] for d in one_json_object(result.stdout)["diagnostics"]]
    assert any("depth 300" in n and "--methods symbolic" in n for n in notes), notes
    # ... and asked for by name, it runs under its budget and is skipped when that runs out
    result, seconds = run([formula, "--at", "x=0.5", "--symbolic-timeout", "0.5",
                           "--methods", "reverse,forward,symbolic,central", "--format", "json"])
    assert_clean(result, 0)
    assert seconds < 10
    report = one_json_object(result.stdout)
    skipped = [d for d in report["diagnostics"] if d["kind"] == "symbolic-skipped"]
    assert len(skipped) == 1, report["diagnostics"]
    assert "0.5 s" in skipped[0]["message"] and "--symbolic-timeout" in skipped[0]["message"]
    symbolic = next(m for m in report["methods"] if m["name"] == "symbolic")
    assert symbolic["gradient"] is None
    reverse = next(m for m in report["methods"] if m["name"] == "reverse")
    # d/dx of 300 nested sines at 0.5, by the chain rule in float64: prod cos(s_k)
    import math
    s, d = 0.5, 1.0
    for _ in range(300):
        d *= math.cos(s)
        s = math.sin(s)
    assert reverse["gradient"]["x"] == pytest.approx(d, rel=1e-12)
    assert report["value"] == pytest.approx(s, rel=1e-15)


def test_hundred_thousand_nodes_finish_in_bounded_time() -> None:
    formula = "+".join(["x"] * 100_000)
    result, seconds = run([formula, "--at", "x=0.5", "--symbolic-timeout", "1", "--format", "json"])
    assert_clean(result, 0)
    assert seconds < 30, f"took {seconds:.1f} s"
    report = one_json_object(result.stdout)
    assert report["graph"]["nodes"] == 100_000
    assert report["value"] == 50_000
    for m in report["methods"]:
        if m["name"] in ("reverse", "forward"):
            assert m["gradient"] == {"x": 100_000}


# --------------------------------------------------------------------------------------------
# Echo: raw bytes as a terminal would get them
# --------------------------------------------------------------------------------------------

ECHO = [
    ("formula-esc", ["\x1b[31mx"]),
    ("formula-osc-title", ["x\x1b]0;pwned\x07"]),
    ("formula-clear-screen", ["x+\x1b[2J)"]),
    ("formula-nul", ["x+\x00"]),
    ("formula-cr", ["x+\r)"]),
    ("formula-backspace", ["x\x08\x08y"]),
    ("formula-rtl-override", ["x\u202e+1"]),
    ("formula-zero-width", ["x\u200b+1"]),
    ("formula-c1-csi", ["x\x9b31m"]),
    ("at-value", ["x", "--at", "x=\x1b[31m"]),
    ("at-name", ["x", "--at", "\x1b[31m=1"]),
    ("at-name-bel", ["x", "--at", "x=1,y\x07=2"]),
    ("at-empty", ["x", "--at", "\x1b[2J,"]),
    ("wrt", ["x", "--at", "x=1", "--wrt", "\x1b[2J"]),
    ("methods", ["x", "--at", "x=1", "--methods", "\x1b[2J"]),
]


@pytest.mark.parametrize("args", [e[1] for e in ECHO], ids=[e[0] for e in ECHO])
def test_echo_has_no_raw_control_characters(args: list[str]) -> None:
    result, _ = run(args, color=True)  # as on a terminal: click strips nothing
    assert_clean(result, 2)
    raw = result.stderr_bytes
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\x00" not in raw and b"\r" not in raw, raw
    assert not control_characters(result.stderr), (control_characters(result.stderr), raw)
    if any("\x1b" in a for a in args):
        assert "\\x1b" in result.stderr  # named, escaped


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_success_output_has_no_raw_control_characters(fmt: str) -> None:
    # \r and \t are whitespace in a formula; the formula is echoed in every format.
    result, _ = run(["x\r+\ty", "--at", "x=1,y=2", "--methods", "reverse,forward",
                     "--reference", "complex", "--format", fmt], color=True)
    assert_clean(result, 0)
    assert "x" in result.stdout and "y" in result.stdout
    # a tab is harmless layout; \r (and any other control character) is not
    shown = [ch for ch in control_characters(result.stdout) if ch != repr("\t")]
    assert not shown, (shown, result.stdout[:300])


def test_click_usage_errors_do_not_echo_control_characters(tmp_path: Path) -> None:
    # click's own "unexpected extra argument (...)" message, as the real program prints it.
    proc, _ = _gradcheck(["x", "y\x07\x1b]0;pwned\x07"], tmp_path)
    assert proc.returncode == 2
    assert b"\x07" not in proc.stderr and b"\x1b" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------------------------------
# Numeric flags: nan/inf are bad input (exit 2 naming the flag), never a crash or a verdict
# --------------------------------------------------------------------------------------------

FLAGS = [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--symbolic-timeout", "nan"),
    ("--rtol", "nan"), ("--atol", "nan"), ("--step", "nan"), ("--step", "inf"),
]


@pytest.mark.parametrize("fmt", ["table", "json"])
@pytest.mark.parametrize("flag,value", FLAGS, ids=[f"{f}={v}" for f, v in FLAGS])
def test_non_finite_flag_values_are_bad_input(flag: str, value: str, fmt: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["x*y", "--at", "x=1,y=2", flag, value, "--format", fmt])
    out, err = capsys.readouterr()
    assert exc.value.code == 2, (out[-500:], err[-500:])
    if fmt == "json":
        error = one_json_object(out)["error"]
        assert flag in error["message"], error
    else:
        assert flag in err, err


# --------------------------------------------------------------------------------------------
# Check files
# --------------------------------------------------------------------------------------------

CHECK_FILES = [
    # id, file content (bytes), kind, needles
    ("malformed", b'expression = "x\nat = { x = 1 }\n', "bad-file", ["not valid TOML"]),
    ("unknown-key", b'expresion = "x"\nat = { x = 1 }\n', "bad-file", ["'expresion'", "unknown key"]),
    ("expression-number", b'expression = 1\nat = { x = 1 }\n', "bad-file", ["a string"]),
    ("expression-array", b'expression = ["x"]\n', "bad-file", ["a string"]),
    ("expression-missing", b'at = { x = 1 }\n', "bad-file", ["a string"]),
    ("value-nan", b'expression = "x"\nat = { x = nan }\n', "bad-value", ["'x'", "finite", "nan"]),
    ("value-inf", b'expression = "x"\nat = { x = inf }\n', "bad-value", ["'x'", "inf"]),
    ("value-minus-inf", b'expression = "x"\nat = { x = -inf }\n', "bad-value", ["'x'", "-inf"]),
    ("value-bool", b'expression = "x"\nat = { x = true }\n', "bad-value", ["'x'", "True"]),
    ("value-string", b'expression = "x"\nat = { x = "1.5" }\n', "bad-value", ["'x'", "'1.5'"]),
    ("value-date", b'expression = "x"\nat = { x = 1979-05-27 }\n', "bad-value", ["'x'"]),
    ("at-not-table", b'expression = "x"\nat = 3\n', "bad-file", ["at must be a table"]),
    ("wrt-not-list", b'expression = "x"\nat = { x = 1 }\nwrt = "x"\n', "bad-file", ["wrt"]),
    ("pi-given", b'expression = "x*pi"\nat = { x = 1, pi = 3 }\n', "bad-variable", ["'pi' is a constant"]),
    ("esc-key", b'expression = "x"\nat = { x = 1, "\\u001b[31m" = 2 }\n', "unknown-variable",
     ["'\\x1b[31m'"]),
    ("payload-expression", f'expression = "{PAYLOAD}"\n'.encode(), "syntax", ["U+0027", "column 12"]),
    ("control-expression", b'expression = "x\\u001b[2J"\nat = { x = 1 }\n', "syntax", ["U+001B"]),
    ("not-utf8", b'expression = "x\xff"\n', "bad-file", ["cannot read"]),
    ("deep-arrays", b'expression = "x"\nat = { x = 1 }\ndescription = ' + b"[" * 5000 + b"]" * 5000
     + b"\n", "bad-file", ["check.toml"]),
    ("deep-tables", b'expression = "x"\nat = { x = 1 }\ndescription = ' + b"{a=" * 3000 + b"1"
     + b"}" * 3000 + b"\n", "bad-file", ["check.toml"]),
]


@pytest.mark.parametrize("fmt", ["table", "json"])
@pytest.mark.parametrize("content,kind,needles", [f[1:] for f in CHECK_FILES],
                         ids=[f[0] for f in CHECK_FILES])
def test_check_file_errors(tmp_path: Path, content: bytes, kind: str, needles: list[str],
                           fmt: str) -> None:
    path = tmp_path / "check.toml"
    path.write_bytes(content)
    result, seconds = run(["--file", str(path), "--format", fmt], color=True)
    assert_clean(result, 2)
    assert seconds < 10
    if fmt == "json":
        error = one_json_object(result.stdout)["error"]
        assert error["kind"] == kind, error
        message = error["message"]
    else:
        message = result.stderr
        assert not control_characters(message), control_characters(message)
    for needle in needles:
        assert needle in message, (needle, message[:1000])
    assert not (tmp_path / "PWNED").exists()


def test_check_file_missing_and_oversized(tmp_path: Path) -> None:
    result, _ = run(["--file", str(tmp_path / "nope.toml")])
    assert_clean(result, 2)
    assert "no such check file" in result.stderr
    big = tmp_path / "big.toml"
    big.write_bytes(b'expression = "x"\n' + b"#" * 10_000_001 + b"\n")
    result, seconds = run(["--file", str(big)])
    assert_clean(result, 2)
    assert "larger than" in result.stderr
    assert seconds < 10


def test_check_file_that_is_a_device_is_bounded(tmp_path: Path) -> None:
    """A homework repo can commit a symlink to /dev/zero: stat() says 0 bytes, reading never
    ends. Run with a 2 GiB address-space cap so a failure cannot take the machine with it."""
    link = tmp_path / "check.toml"
    link.symlink_to("/dev/zero")
    proc, seconds = _gradcheck(["--file", str(link), "--timeout", "10"], tmp_path,
                               limit_memory=2 * 2**30)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert b"Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert b"check.toml" in proc.stderr
    assert seconds < 20


def test_check_file_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    # a FIFO with no writer used to block until --timeout (120 s by default): refused before
    # it is opened
    fifo = tmp_path / "check.toml"
    os.mkfifo(fifo)
    proc, seconds = _gradcheck(["--file", str(fifo)], tmp_path, timeout=30)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert b"FIFO" in proc.stderr or b"not a regular file" in proc.stderr
    assert seconds < 15


def test_check_file_values_are_overridden_by_at(tmp_path: Path) -> None:
    path = tmp_path / "check.toml"
    path.write_text('expression = "S*N"\nat = { S = 2, N = 3 }\n', encoding="utf-8")
    result, _ = run(["--file", str(path), "--at", "N=5", "--format", "json"])
    assert_clean(result, 0)
    report = one_json_object(result.stdout)
    assert report["point"] == {"N": 5.0, "S": 2.0}
    assert report["methods"][0]["gradient"] == {"N": 2.0, "S": 5.0}


# --------------------------------------------------------------------------------------------
# JUnit XML: written on errors too, always well-formed, user text escaped
# --------------------------------------------------------------------------------------------

JUNIT = [
    ("control", ["x\x1b[31m\x00"], "\\x1b"),
    ("markup-and-xml", ["x", "--at", "x=]]></error><x a='&"], "]]>"),
    ("surrogate", ["x\udcff+1"], "U+DCFF"),
]


@pytest.mark.parametrize("args,needle", [j[1:] for j in JUNIT], ids=[j[0] for j in JUNIT])
def test_junit_on_hostile_input_is_well_formed(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "report.xml"
    result, _ = run(["--junit", str(out), *args])
    assert_clean(result, 2)
    root = ET.parse(out).getroot()
    errors = root.findall(".//error")
    assert len(errors) == 1
    assert needle in errors[0].get("message", "") + root.find(".//testcase").get("name", "")


# --------------------------------------------------------------------------------------------
# The Python API (gradcheck_cli.check) is an entry point too: bad values are GradcheckErrors
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [2**1024, 10**400, -(10**309), float("nan"), float("inf"), "1.5", None,
                                   True], ids=lambda v: f"{type(v).__name__}-{str(v)[:8]}")
def test_api_point_values_outside_float64_are_bad_values(value: object) -> None:
    from gradcheck_cli import GradcheckError, check

    with pytest.raises(GradcheckError) as exc:
        check("x", {"x": value})
    assert exc.value.kind == "bad-value"
    assert "x" in exc.value.message


# --------------------------------------------------------------------------------------------
# Round two: arguments that looked like options, echoes that could drive a terminal, a CI job
# that could pass without a check (each through the real command, as a CI job runs it)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("formula", "at"), [
    ("-tanh(x)", "x=0.5"), ("-x*h", "x=1,h=2"), ("-log(h)", "h=2"), ("-sinh(x)*2", "x=0.5"),
    ("-h", "h=3"), ("-v", "v=1"),
])
def test_a_formula_that_looks_like_short_options_is_checked(tmp_path: Path, formula: str, at: str) -> None:
    # "-h" and "-v" alone are the formula only after "--" (as -h is --help)
    args = ["--at", at, "--format", "json", "--", formula] if formula in ("-h", "-v") else \
        [formula, "--at", at, "--format", "json"]
    proc, _ = _gradcheck(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-500:]
    report = one_json_object(proc.stdout.decode())
    assert report["expression"] == formula and report["verdict"] == "pass"


@pytest.mark.parametrize("option", ["--a\u202et", "--at\u200b", "--\u202ejson"])
def test_unknown_options_with_invisible_characters_are_escaped(tmp_path: Path, option: str) -> None:
    proc, _ = _gradcheck(["x", option, "x=1"], tmp_path)
    assert proc.returncode == 2
    text = proc.stderr.decode("utf-8", errors="replace")
    assert "\u202e" not in text and "\u200b" not in text and "Traceback" not in text


def test_a_typo_in_an_option_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    proc, _ = _gradcheck(["x", "--att", "x=1", "--format", "json"], tmp_path)
    assert proc.returncode == 2
    error = one_json_object(proc.stdout.decode())["error"]
    assert error["kind"] == "usage" and "--at" in error["message"]
