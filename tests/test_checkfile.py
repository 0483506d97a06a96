"""Check files from strangers, end to end through the real CLI (click's CliRunner on
`gradcheck_cli.cli.cli`): numbers beyond float64, byte-order marks, FIFOs and devices, huge
values, keys and names, control and bidi characters, typos in keys, and `description`.

Every refusal is exit code 2 with one short line on stderr that names the problem (and no
traceback), and under --format json exactly one strict JSON object {"error": {...}}.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gradcheck_cli import checkfile, suite
from gradcheck_cli.cli import cli
from gradcheck_cli.errors import GradcheckError

MAX_LINE = 300  # characters in one error line, whatever the file holds
BIG = 9_000_000


@pytest.fixture(autouse=True)
def _no_stray_alarm() -> Iterator[None]:
    """The CLI arms SIGALRM for --timeout; never let one outlive a test."""
    yield
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def run(args: list[str]) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, args, color=True)


def strict_json(text: str) -> dict:
    """Exactly one strict-JSON object and nothing else."""
    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    obj, end = json.JSONDecoder(parse_constant=reject).raw_decode(text.lstrip())
    assert text.lstrip()[end:].strip() == "", text[:300]
    assert isinstance(obj, dict)
    return obj


def non_printable(text: str) -> list[str]:
    return [repr(c) for c in text if c != "\n" and not c.isprintable()]


def refused(path: Path, kind: str, needles: list[str], absent: list[str] = ()) -> str:
    """Run --file PATH in both formats; check the refusal; return the table-format line."""
    result = run(["--file", str(path)])
    detail = (result.exit_code, result.stdout[:500], result.stderr[:500], repr(result.exception))
    assert result.exit_code == 2, detail
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    assert "Traceback" not in result.output, detail
    assert result.stdout == "", detail
    line = result.stderr
    assert line.startswith("gradcheck: error: ") and line.count("\n") == 1, detail
    assert len(line) <= MAX_LINE, (len(line), line[:500])
    assert not non_printable(line), non_printable(line)
    for needle in needles:
        assert needle in line, (needle, line)
    for needle in absent:
        assert needle not in line, (needle, line)

    result = run(["--file", str(path), "--format", "json"])
    detail = (result.exit_code, result.stdout[:500], result.stderr[:500], repr(result.exception))
    assert result.exit_code == 2, detail
    assert "Traceback" not in result.output, detail
    error = strict_json(result.stdout)
    assert set(error) == {"error"}, error
    assert error["error"]["kind"] == kind, error
    assert len(error["error"]["message"]) <= MAX_LINE, len(error["error"]["message"])
    for needle in needles:
        assert needle in error["error"]["message"], (needle, error)
    return line


def write(tmp_path: Path, content: str | bytes, name: str = "check.toml") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def accepted(path: Path) -> dict:
    result = run(["--file", str(path), "--format", "json"])
    assert result.exit_code == 0, (result.stdout[:500], result.stderr[:500], repr(result.exception))
    return strict_json(result.stdout)


# --------------------------------------------------------------------------------------------
# 1. Numbers that do not survive the conversion to float64
# --------------------------------------------------------------------------------------------

FLOAT64 = "outside the range of float64"


@pytest.mark.parametrize("literal", ["1" + "0" * 400, "-1" + "0" * 400, "0x" + "f" * 300,
                                     "179769313486231580793728971405303415079934132710037826936173778980"
                                     "444968292764750946649017977587207096330286416692887910946555547851"
                                     "940402630657488671505820681908902000708383676273854845817711531764"
                                     "475730270069855571366959622842914819860834936475292719074168444365"
                                     "510704342711559699508093042880177904174497792"])  # 2**1024 - 2**970
def test_integer_beyond_float64_is_refused(tmp_path: Path, literal: str) -> None:
    path = write(tmp_path, f'expression = "x"\nat = {{ x = {literal} }}\n')
    refused(path, "bad-value", ["'x'", FLOAT64])


def test_integer_beyond_pythons_digit_limit_is_refused(tmp_path: Path) -> None:
    """tomllib's own int() raises ValueError past 4,300 digits: no traceback."""
    path = write(tmp_path, 'expression = "x"\nat = { x = 1' + "0" * 5000 + " }\n")
    refused(path, "bad-value", ["4,300 digits", FLOAT64])
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\ndescription = 1' + "0" * 9000 + "\n")
    refused(path, "bad-value", ["4,300 digits"])


@pytest.mark.parametrize("literal", ["1e-400", "-1e-400", "2e-324", "1.0e400", "-9e999", "1_0.0e-4_00"])
def test_float_literal_that_underflows_or_overflows_is_refused(tmp_path: Path, literal: str) -> None:
    """Like `--at x=1e-400`: a literal that becomes 0 or inf is not silently replaced."""
    path = write(tmp_path, f'expression = "x"\nat = {{ x = {literal} }}\n')
    refused(path, "bad-value", ["'x'", literal, FLOAT64])


def test_float_literal_that_is_long_is_cut_in_the_message(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = 0.' + "0" * 500_000 + "1 }\n")
    refused(path, "bad-value", ["'x'", FLOAT64, "…", "500,003 characters"])


@pytest.mark.parametrize("literal,value", [("0.0", 0.0), ("-0e-400", 0.0), ("0e999", 0.0),
                                           ("1e-310", 1e-310), ("1.7e308", 1.7e308), ("12", 12.0)])
def test_numbers_within_float64_are_accepted(tmp_path: Path, literal: str, value: float) -> None:
    path = write(tmp_path, f'expression = "x"\nat = {{ x = {literal} }}\n')
    assert checkfile.load(path).at == {"x": value}


@pytest.mark.parametrize("literal", ["inf", "-inf", "nan", "+nan"])
def test_inf_and_nan_are_refused(tmp_path: Path, literal: str) -> None:
    path = write(tmp_path, f'expression = "x"\nat = {{ x = {literal} }}\n')
    refused(path, "bad-value", ["'x'", "finite number"])


# --------------------------------------------------------------------------------------------
# 2. Byte-order marks
# --------------------------------------------------------------------------------------------


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, b'\xef\xbb\xbfexpression = "x*y"\nat = { x = 2, y = 3 }\n')
    report = accepted(path)
    assert report["point"] == {"x": 2.0, "y": 3.0}


def test_utf16_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\n'.encode("utf-16"))
    refused(path, "bad-file", ["UTF-16", "UTF-8"])


def test_a_bom_after_the_start_is_still_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, b'expression = "x"\n\xef\xbb\xbfat = { x = 1 }\n')
    refused(path, "bad-file", ["not valid TOML"])


# --------------------------------------------------------------------------------------------
# 3. FIFOs, devices, directories: refused before opening, at once
# --------------------------------------------------------------------------------------------


def _within(seconds: float, target: Callable[[], Result]) -> tuple[threading.Thread, dict[str, Result]]:
    box: dict[str, Result] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", target()), daemon=True)
    thread.start()
    thread.join(seconds)
    return thread, box


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_fifo_without_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "check.toml"
    os.mkfifo(fifo)
    # In a thread (CliRunner is not thread-bound): a blocked open() must not hang the suite.
    thread, box = _within(5, lambda: CliRunner().invoke(cli, ["--file", str(fifo), "--format", "json"]))
    if thread.is_alive():  # unblock the reader before failing
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
        pytest.fail("opening a FIFO without a writer blocked")
    result = box["result"]
    assert result.exit_code == 2, (result.stdout, result.stderr, repr(result.exception))
    error = strict_json(result.stdout)["error"]
    assert error["kind"] == "bad-file"
    assert "named pipe" in error["message"] and "check.toml" in error["message"]
    refused(fifo, "bad-file", ["named pipe", "not a regular file", "check.toml"])


def test_device_is_refused_at_once(tmp_path: Path) -> None:
    link = tmp_path / "check.toml"
    link.symlink_to("/dev/zero")
    refused(link, "bad-file", ["character device", "check.toml"])


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GradcheckError, match="is a directory"):
        checkfile.load(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "nope.toml", "bad-file", ["no such check file", "nope.toml"])


@pytest.mark.parametrize("name,needle", [("a\x00b.toml", "NUL"), ("n" * 300 + ".toml", "cannot read")])
def test_unusable_path_is_refused(tmp_path: Path, name: str, needle: str) -> None:
    with pytest.raises(GradcheckError, match=needle) as caught:
        checkfile.load(str(tmp_path / name))
    assert caught.value.kind == "bad-file"
    assert len(caught.value.message) <= MAX_LINE
    assert not non_printable(caught.value.message)


# --------------------------------------------------------------------------------------------
# 4. Echoed text is short and inert
# --------------------------------------------------------------------------------------------


def test_huge_string_value_is_cut(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = "' + "a" * BIG + '" }\n')
    refused(path, "bad-value", ["'x'", "finite number", "…", "9,000,000 characters"])


def test_huge_non_string_expression_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "expression = [" + "1," * 1_000_000 + "]\nat = { x = 1 }\n")
    refused(path, "bad-file", ["expression", "an array of 1,000,000 item(s)"])
    path = write(tmp_path, "expression = 1" + "0" * 4000 + "\n")
    refused(path, "bad-file", ["expression", "4,001 characters"])


def test_huge_unknown_key_is_cut(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\n' + "k" * BIG + " = 1\n")
    refused(path, "bad-file", ["unknown key", "…", "9,000,000 characters", "known keys are"])


def test_many_unknown_keys_are_counted_not_listed(tmp_path: Path) -> None:
    keys = "".join(f"key{i} = 1\n" for i in range(10_000))
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\n' + keys)
    refused(path, "bad-file", ["unknown key", "and 9,997 more"])


def test_huge_variable_name_is_refused_and_cut(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = 1, ' + "k" * BIG + " = 1 }\n")
    refused(path, "bad-value", ["longer than the 200 characters", "9,000,000 characters"])
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\nwrt = ["' + "w" * BIG + '"]\n')
    refused(path, "bad-value", ["wrt", "longer than the 200 characters", "9,000,000 characters"])


def test_duplicate_huge_key_in_tomls_own_message_is_cut(tmp_path: Path) -> None:
    key = "d" * 4_000_000
    path = write(tmp_path, f'expression = "x"\n[{key}]\n[{key}]\n')
    refused(path, "bad-file", ["not valid TOML", "Cannot declare", "…"])
    path = write(tmp_path, f'expression = "x"\nat = {{ {key} = 1, {key} = 2 }}\n')
    refused(path, "bad-file", ["not valid TOML", "Duplicate inline table key", "…"])


@pytest.mark.parametrize("evil", ["\u202e", "\x1b[2J", "\u2066", "\x9b", "\u200f", "\u2028", "\x00"])
def test_control_and_bidi_characters_are_escaped(tmp_path: Path, evil: str) -> None:
    # in an unknown key, in a string value, in a value's name: escaped, never raw
    toml = "".join(f"\\u{ord(c):04x}" for c in evil)  # a TOML escape: the loaded text holds `evil`
    path = write(tmp_path, f'expression = "x"\nat = {{ x = 1 }}\n"k{toml}" = 1\n')
    refused(path, "bad-file", ["unknown key", "'k\\"], absent=[evil])
    path = write(tmp_path, f'expression = "x"\nat = {{ x = "{toml}" }}\n')
    refused(path, "bad-value", ["'x'", "not '\\"], absent=[evil])
    raw = 'expression = "x"\nat = { x = 1 }\n' + evil + "\n"  # raw in the file: invalid TOML
    refused(write(tmp_path, raw), "bad-file", ["not valid TOML"], absent=[evil])


def test_path_with_control_characters_is_escaped(tmp_path: Path) -> None:
    refused(tmp_path / "a\u202eb\x1bc.toml", "bad-file", ["no such check file", "\\u202e", "\\x1b"])


# --------------------------------------------------------------------------------------------
# 5. Unknown keys suggest the closest known key
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typo,meant", [("expresion", "expression"), ("Expression", "expression"),
                                        ("descripton", "description"), ("wrtt", "wrt"), ("At", "at")])
def test_unknown_key_suggests_the_closest(tmp_path: Path, typo: str, meant: str) -> None:
    content = f'{typo} = "x"\n' if typo.lower().startswith("exp") else f'expression = "x"\n{typo} = "x"\n'
    path = write(tmp_path, content)
    refused(path, "bad-file", [f"'{typo}'", f"did you mean '{meant}'?"])


def test_unrelated_unknown_key_suggests_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\nfoo = 1\n')
    refused(path, "bad-file", ["'foo'", "known keys are at, description, expression, wrt"],
            absent=["did you mean"])


# --------------------------------------------------------------------------------------------
# 6. description
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,shown", [("3", "not 3"), ("[1, 2]", "an array of 2"),
                                         ("{ a = 1 }", "a table of 1"), ("true", "not True"),
                                         ("1979-05-27", "date")])
def test_description_must_be_a_string(tmp_path: Path, value: str, shown: str) -> None:
    path = write(tmp_path, f'expression = "x"\nat = {{ x = 1 }}\ndescription = {value}\n')
    refused(path, "bad-file", ["description must be a string", shown])


def test_long_description_is_kept_cut_and_escaped(tmp_path: Path) -> None:
    path = write(tmp_path, 'expression = "x"\nat = { x = 1 }\ndescription = "'
                 + "\\u202e\\u001b" + "d" * BIG + '"\n')
    description = checkfile.load(path).description
    assert len(description) <= checkfile.MAX_DESCRIPTION_CHARS + 40
    assert description.startswith("\\u202e\\x1b")
    assert description.endswith("… (9,000,002 characters)")
    assert not non_printable(description)
    accepted(path)


def test_short_description_is_kept_as_is(tmp_path: Path) -> None:
    content = 'expression = "x"\nat = { x = 1 }\ndescription = """\nline one\nit\'s \\\\ two"""\n'
    path = write(tmp_path, content)
    assert checkfile.load(path).description == "line one\nit's \\ two"


def test_sample_check_files_still_load() -> None:
    root = Path(__file__).resolve().parent.parent / "sample_expressions"
    files = sorted(root.glob("*.toml"))
    assert files
    for path in files:
        loaded = suite.load(path)
        assert loaded.specs and all(s.expression and s.error is None for s in loaded.specs)
