"""Fuzz the check-file path end to end: random and mutated TOML check files through the real CLI.

Not collected by pytest (the file name does not match test_*.py). Run it by hand or nightly:

    python tests/fuzz_checkfiles.py --count 2000 --seed 1
    python tests/fuzz_checkfiles.py --count 100000 --seed 7 --max-seconds 3600

Each case writes one file and runs `gradcheck --file F --format json` in-process (click's
CliRunner on gradcheck_cli.cli.cli). Files come from these generators, mixed:

  valid      well-formed check files: small formulas, numbers in every TOML spelling (hex,
             octal, underscores, exponents), optional wrt and description
  mutated    a valid file with a few byte-level edits (flips, inserts, deletions, duplicated
             slices, spliced tokens such as quotes, brackets, BOMs, 1e-400)
  numbers    values at and beyond float64's edges: integers of 300 to 6,000 digits, 1e±400,
             subnormals, long fractions, inf/nan, 2**1024 - 2**970
  nesting    arrays and inline tables nested 10 to 3,000 deep, in every key
  unicode    control, bidi, zero-width, look-alike and astral characters in keys, names, values
             and descriptions, both raw and as TOML escapes (lone surrogates included)
  bom        UTF-8 and UTF-16 byte-order marks, at the start, twice, or in the middle
  types      every key with every TOML type (dates, times, booleans, tables, arrays)
  huge       large strings, keys and tables (up to about 1 MB); formulas with thousands of
             variables and a name in `at` or `wrt` that is not one of them

For every case:
  - the exit code is one of 0, 1, 2, 3 and the command raised nothing but SystemExit;
  - no "Traceback" anywhere in the output;
  - stdout is exactly one strict JSON object (NaN/Infinity rejected);
  - an exit code 2 comes with {"error": {"kind": ..., "message": ...}} whose message has no
    non-printable characters and at most MAX_MESSAGE characters;
  - the case takes at most --max-case-seconds;
  - no silent pass: a file accepted with exit code 0 or 1 has no value in `at` that float64
    turns into 0 or inf (judged independently, with decimal.Decimal).

Prints counts (cases per generator, exit codes, error kinds, violations by kind) and exits 1 if
there was any violation, printing the first few failing files (as repr, cut) and their output.
"""

from __future__ import annotations

import argparse
import collections
import decimal
import json
import math
import random
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gradcheck_cli.cli import cli

MAX_MESSAGE = 400

FORMULAS = [
    "x", "x*y", "sin(x)*y + exp(-x)", "1/(1+exp(-(w0*x0+w1*x1+w2)))", "x**2 + y**2", "log(x)",
    "sqrt(x)", "tanh(x)*relu(y)", "max(x, y)", "abs(x)", "x/y", "exp(x)", "2", "-x", "x^3",
]
NAMES = ["x", "y", "w0", "w1", "w2", "x0", "x1", "pi", "e", "z", "_a", "x_1"]
ODD = [
    "\u202e", "\u2066", "\u2069", "\u200f", "\u200b", "\u200d", "\ufeff", "\x1b[31m", "\x00", "\x07",
    "\x7f", "\x9b", "\u2028", "\u2029", "\u0445", "\u03bf", "\uff58", "\U0001f600", "e\u0301", "\t",
    "\r", "\\", "'", '"', "\U0010ffff", "\ufffd", "\u00a0",
]
TOKENS = [
    b'"', b"'", b"[", b"]", b"{", b"}", b"=", b"\n", b",", b".", b"#", b"\xef\xbb\xbf", b"\xff\xfe",
    b"1e-400", b"1e400", b"0x", b"inf", b"nan", b"9" * 500, b'"""', b"'''", b"\\u", b"\\ud800",
    b"[[at]]", b"[at]", b"at.x = 1\n", b"\x00", b"\xc3", b"\xed\xa0\x80", b"\r\n", b"\t",
]


def number(rng: random.Random) -> str:
    """A TOML number literal, mostly within float64, sometimes far outside."""
    pick = rng.random()
    if pick < 0.35:
        return repr(rng.choice([rng.uniform(-10, 10), rng.randint(-100, 100), 0.5, -2.0]))
    choices = [
        lambda: str(rng.randint(-(10**20), 10**20)),
        lambda: f"{rng.uniform(1, 9):.3f}e{rng.randint(-330, 330)}",
        lambda: f"1e{rng.choice([-400, -324, -323, 308, 309, 400, 99999])}",
        lambda: rng.choice(["-", "+", ""]) + "1" + "0" * rng.choice([300, 308, 309, 400, 4299, 4300, 6000]),
        lambda: "0x" + "f" * rng.choice([10, 256, 257, 300, 5000]),
        lambda: "0o" + "7" * rng.choice([10, 342, 400]),
        lambda: "0b" + "1" * rng.choice([10, 1024, 1025, 2000]),
        lambda: "1_000_000.000_1",
        lambda: "0." + "0" * rng.choice([10, 323, 400, 5000]) + "1",
        lambda: rng.choice(["inf", "-inf", "+inf", "nan", "-nan", "+nan"]),
        lambda: "5e-324",
        lambda: "2.4e-324",
        lambda: "179769313486231580793728971405303415079934132710037826936173778980444968292764750946"
                "6490179775872070963302864166928879109465555478519404026306574886715058206819089020007"
                "0838367627385484581771153176447573027006985557136695962284291481986083493647529271907"
                "4168444365510704342711559699508093042880177904174497792",
        lambda: "1.7976931348623157e308",
        lambda: "-0.0",
        lambda: "1979-05-27",
        lambda: "07:32:00",
        lambda: "true",
        lambda: '"1.5"',
        lambda: "[1, 2]",
        lambda: "{ a = 1 }",
    ]
    return rng.choice(choices)()


def toml_string(text: str, rng: random.Random) -> str:
    """`text` as a TOML basic string, escaping what TOML requires (and sometimes more)."""
    out = []
    for c in text:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F or (rng.random() < 0.3 and ord(c) > 0x7F):
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def key(text: str, rng: random.Random) -> str:
    if all(c.isascii() and (c.isalnum() or c in "_-") for c in text) and text:
        return text
    return toml_string(text, rng)


def odd_text(rng: random.Random, n: int = 3) -> str:
    return "".join(rng.choice(ODD + NAMES) for _ in range(rng.randint(1, n)))


def gen_valid(rng: random.Random) -> bytes:
    formula = rng.choice(FORMULAS)
    names = [n for n in NAMES if n in formula.replace("exp", "").replace("max", "")] or ["x"]
    at = ", ".join(f"{n} = {repr(rng.uniform(0.1, 3)) if rng.random() < 0.8 else rng.randint(1, 9)}"
                   for n in names)
    lines = [f"expression = {toml_string(formula, rng)}", f"at = {{ {at} }}"]
    if rng.random() < 0.3:
        lines.append(f"wrt = [{', '.join(toml_string(n, rng) for n in names[:1])}]")
    if rng.random() < 0.3:
        lines.append(f"description = {toml_string('example ' + str(rng.randint(0, 99)), rng)}")
    if rng.random() < 0.2:
        lines.insert(0, "# a comment")
    rng.shuffle(lines)
    return ("\n".join(lines) + "\n").encode()


def gen_mutated(rng: random.Random) -> bytes:
    data = bytearray(gen_valid(rng))
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randint(0, len(data))
        if op < 0.2 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randint(0, 7)
        elif op < 0.4:
            data[pos:pos] = bytes([rng.randint(0, 255)])
        elif op < 0.55 and data:
            del data[pos:pos + rng.randint(1, 5)]
        elif op < 0.7 and data:
            start = rng.randint(0, len(data) - 1)
            data[pos:pos] = data[start:start + rng.randint(1, 20)] * rng.randint(1, 3)
        else:
            data[pos:pos] = rng.choice(TOKENS)
    return bytes(data)


def gen_numbers(rng: random.Random) -> bytes:
    names = rng.sample(["x", "y", "z"], rng.randint(1, 3))
    at = ", ".join(f"{n} = {number(rng)}" for n in names)
    expr = "+".join(names)
    extra = f"\ndescription = {number(rng)}" if rng.random() < 0.15 else ""
    return f'expression = "{expr}"\nat = {{ {at} }}{extra}\n'.encode()


def gen_nesting(rng: random.Random) -> bytes:
    depth = rng.choice([10, 100, 500, 998, 999, 1000, 1500, 3000])
    if rng.random() < 0.5:
        value = "[" * depth + "1" + "]" * depth
    else:
        value = "{a=" * depth + "1" + "}" * depth
    where = rng.choice(["expression", "at", "description", "wrt", "x", "other"])
    lines = {"expression": 'expression = "x"', "at": "at = { x = 1 }"}
    if where == "x":
        lines["at"] = f"at = {{ x = {value} }}"
    elif where == "other":
        lines["other"] = f"other = {value}"
    else:
        lines[where] = f"{where} = {value}"
    if rng.random() < 0.3:  # dotted keys and table headers, deep
        dotted = ".".join(["a"] * rng.choice([10, 500, 3000]))
        lines["dotted"] = f"[{dotted}]\nb = 1" if rng.random() < 0.5 else f"{dotted} = 1"
    return ("\n".join(lines.values()) + "\n").encode()


def gen_unicode(rng: random.Random) -> bytes:
    target = rng.choice(["key", "name", "value", "description", "expression", "wrt", "raw"])
    text = odd_text(rng)
    lines = {"expression": 'expression = "x"', "at": "at = { x = 1 }"}
    if target == "key":
        lines["k"] = f"{key(text, rng)} = 1"
    elif target == "name":
        lines["at"] = f"at = {{ x = 1, {key(text, rng)} = 2 }}"
    elif target == "value":
        lines["at"] = f"at = {{ x = {toml_string(text, rng)} }}"
    elif target == "description":
        lines["d"] = f"description = {toml_string(text, rng)}"
    elif target == "expression":
        lines["expression"] = f"expression = {toml_string('x+' + text, rng)}"
    elif target == "wrt":
        lines["w"] = f"wrt = [{toml_string(text, rng)}]"
    else:  # raw in the file, outside any string
        lines["r"] = text
    data = "\n".join(lines.values()) + "\n"
    if rng.random() < 0.2:  # a lone surrogate as a TOML escape
        data = data.replace('"x"', '"x\\ud800"', 1)
    return data.encode("utf-8", "surrogatepass")


def gen_bom(rng: random.Random) -> bytes:
    body = gen_valid(rng)
    pick = rng.randint(0, 5)
    if pick == 0:
        return b"\xef\xbb\xbf" + body
    if pick == 1:
        return b"\xef\xbb\xbf\xef\xbb\xbf" + body
    if pick == 2:
        return body.decode().encode("utf-16")
    if pick == 3:
        return body.decode().encode("utf-16-be")
    if pick == 4:
        cut = rng.randint(0, len(body))
        return body[:cut] + b"\xef\xbb\xbf" + body[cut:]
    return b"\xef\xbb\xbf" + gen_mutated(rng)


def gen_types(rng: random.Random) -> bytes:
    values = ['"x"', "1", "1.5", "true", "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "[]",
              '["x"]', "[1, 2]", "{}", "{ x = 1 }", '{ x = "1" }', "[[1], [2]]", '"""\nx\n"""', "'x'"]
    lines = {k: f"{k} = {rng.choice(values)}" for k in ("expression", "at", "wrt", "description")
             if rng.random() < 0.8}
    if rng.random() < 0.3:
        lines["extra"] = f"{rng.choice(['expresion', 'At', 'wrtt', 'descripton', 'foo', 'EXPRESSION'])} = 1"
    if rng.random() < 0.2:
        lines["at"] = "[at]\nx = 1"
    return ("\n".join(lines.values()) + "\n").encode()


def gen_huge(rng: random.Random) -> bytes:
    size = rng.choice([10_000, 100_000, 1_000_000])
    target = rng.choice(["value", "key", "name", "expression", "description", "wrt", "keys", "dupkey",
                         "many-variables"])
    lines = {"expression": 'expression = "x"', "at": "at = { x = 1 }"}
    if target == "value":
        lines["at"] = 'at = { x = "' + "a" * size + '" }'
    elif target == "key":
        lines["k"] = "k" * size + " = 1"
    elif target == "name":
        lines["at"] = "at = { x = 1, " + "n" * size + " = 1 }"
    elif target == "expression":
        lines["expression"] = "expression = " + rng.choice(['"' + "x+" * (size // 2) + 'x"',
                                                            "[" + "1," * (size // 2) + "]"])
    elif target == "description":
        lines["d"] = 'description = "' + "\\u202e" * (size // 6) + '"'
    elif target == "wrt":
        lines["w"] = "wrt = [" + '"x",' * (size // 4) + "]"
    elif target == "keys":
        lines["ks"] = "".join(f"k{i} = 1\n" for i in range(size // 10))
    elif target == "many-variables":  # a name the formula lacks, among thousands it has
        names = [f"v{i}" for i in range(size // 40)]
        lines["expression"] = f'expression = "{"+".join(names)}"'
        if rng.random() < 0.5:
            lines["at"] = "at = { nope = 1 }"
        else:
            lines["at"] = 'at = { v0 = 1 }\nwrt = ["nope"]'
    else:
        lines["dup"] = f"[{'d' * size}]\n[{'d' * size}]"
    return ("\n".join(lines.values()) + "\n").encode()


GENERATORS: dict[str, Callable[[random.Random], bytes]] = {
    "valid": gen_valid, "mutated": gen_mutated, "numbers": gen_numbers, "nesting": gen_nesting,
    "unicode": gen_unicode, "bom": gen_bom, "types": gen_types, "huge": gen_huge,
}
WEIGHTS = {"valid": 2, "mutated": 5, "numbers": 4, "nesting": 1, "unicode": 3, "bom": 1, "types": 2,
           "huge": 0.5}


def strict_json(text: str) -> object:
    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    obj, end = json.JSONDecoder(parse_constant=reject).raw_decode(text.lstrip())
    if text.lstrip()[end:].strip():
        raise ValueError("more than one JSON value")
    return obj


def lost_values(data: bytes) -> list[str]:
    """Values in `at` that float64 cannot hold (nonzero but rounding to 0, or beyond its range),
    decided with exact decimals: a run that accepted them passed silently."""
    try:
        at = tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"), parse_float=decimal.Decimal).get("at")
    except Exception:  # noqa: BLE001 - not this oracle's business
        return []
    if not isinstance(at, dict):
        return []
    lost = []
    for name, value in at.items():
        if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
            continue
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            continue
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        if math.isinf(as_float) or (as_float == 0 and value != 0):
            lost.append(name)
    return lost


def judge(result, seconds: float, max_seconds: float, data: bytes) -> tuple[list[str], str | None]:
    """Violations of one run, and the error kind (when exit code 2)."""
    problems = []
    kind = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"exception {type(result.exception).__name__}")
    if result.exit_code not in (0, 1, 2, 3):
        problems.append(f"exit code {result.exit_code}")
    if "Traceback" in result.output:
        problems.append("traceback in output")
    try:
        obj = strict_json(result.stdout)
        if not isinstance(obj, dict):
            problems.append("stdout JSON is not an object")
        elif result.exit_code == 2:
            error = obj.get("error")
            if not isinstance(error, dict) or set(error) - {"kind", "message", "column"}:
                problems.append("exit 2 without one {'error': {...}} object")
            else:
                kind = str(error.get("kind"))
                message = str(error.get("message", ""))
                if len(message) > MAX_MESSAGE:
                    problems.append(f"message longer than {MAX_MESSAGE} ({kind})")
                if any(c != "\n" and not c.isprintable() for c in message):
                    problems.append(f"non-printable character in message ({kind})")
    except ValueError as exc:
        problems.append(f"stdout is not one strict JSON object ({str(exc)[:60]})")
    if result.exit_code in (0, 1) and lost_values(data):
        problems.append("silent pass: a value in `at` does not survive float64")
    if seconds > max_seconds:
        problems.append(f"slow: {seconds:.1f} s")
    return problems, kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--max-case-seconds", type=float, default=20.0)
    parser.add_argument("--show", type=int, default=5, help="failing cases to print")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    names = list(GENERATORS)
    weights = [WEIGHTS[n] for n in names]
    per_source: collections.Counter[str] = collections.Counter()
    exits: collections.Counter[int] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    violations: collections.Counter[str] = collections.Counter()
    failures: list[tuple[str, bytes, list[str], str]] = []
    runner = CliRunner(env={"COLUMNS": "120"})
    start = time.monotonic()
    done = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-checkfiles-") as tmp:
        path = Path(tmp) / "check.toml"
        for i in range(args.count):
            if args.max_seconds is not None and time.monotonic() - start > args.max_seconds:
                break
            source = rng.choices(names, weights)[0]
            data = GENERATORS[source](rng)
            path.write_bytes(data)
            t0 = time.monotonic()
            result = runner.invoke(cli, ["--file", str(path), "--format", "json", "--timeout", "10"])
            seconds = time.monotonic() - t0
            if hasattr(signal, "setitimer"):  # never let the CLI's alarm outlive a case
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
            problems, kind = judge(result, seconds, args.max_case_seconds, data)
            done += 1
            per_source[source] += 1
            exits[result.exit_code] += 1
            if kind:
                kinds[kind] += 1
            for problem in problems:
                violations[f"{source}: {problem}"] += 1
            if problems and len(failures) < args.show:
                detail = result.output[-1500:]
                if result.exc_info and not isinstance(result.exception, SystemExit):
                    import traceback

                    detail += "".join(traceback.format_exception(*result.exc_info))[-2500:]
                failures.append((f"case {i} ({source})", data, problems, detail))

    print(f"cases: {done} in {time.monotonic() - start:.1f} s (seed {args.seed})")
    print("per generator: " + ", ".join(f"{k} {v}" for k, v in sorted(per_source.items())))
    print("exit codes: " + ", ".join(f"{k}: {v}" for k, v in sorted(exits.items())))
    print("error kinds: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    total = sum(violations.values())
    print(f"violations: {total}")
    for name, n in violations.most_common():
        print(f"  {n:6d}  {name}")
    for title, data, problems, detail in failures:
        shown = repr(data[:300]) + (f" … ({len(data):,} bytes)" if len(data) > 300 else "")
        print(f"\n--- {title}: {'; '.join(problems)}\nfile: {shown}\noutput:\n{detail}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
