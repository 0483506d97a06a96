"""Check files: a formula and its point in a small TOML file, so examples can be run by name.

    # the sigmoid neuron of the lecture notes
    expression = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
    at = { w0 = 2, x0 = -1, w1 = -3, x1 = -2, w2 = -3 }
    wrt = ["w0", "w1", "w2"]          # optional
    description = "sigmoid neuron"    # optional, a string

Keys are checked strictly: an unknown key is an error that suggests the closest known key, so a
typo is not silently ignored. The file is only read as data (tomllib); its formula goes through
the same safe parser as any other.

Check files come from strangers (homework repositories in CI), so reading one is bounded and
every problem is one short `GradcheckError` (exit 2), never a traceback or a hang:

- only regular files are read, and the type is checked with stat() *before* opening, so a
  named pipe with no writer, a device or a directory is refused at once (the file is then
  opened non-blocking and checked again, in case it was swapped in between); at most
  MAX_FILE_BYTES are read;
- UTF-8 only; a leading UTF-8 byte-order mark is accepted (Windows editors write one), a
  UTF-16 file is refused with a hint;
- every value in `at` must be a number that float64 holds, as `--at` demands: nan/inf,
  integers beyond float64 (or beyond Python's 4,300-digit limit) and float literals that
  overflow to inf or underflow to 0 (`1e-400`; seen through tomllib's parse_float hook) are
  refused, not silently replaced; names in `at` and `wrt` have at most MAX_NAME_CHARS;
- `description` must be a string; it is kept with non-printable characters escaped and cut
  to MAX_DESCRIPTION_CHARS, so whoever shows it can do so safely;
- every piece of user text a message echoes (path, key, name, value, tomllib's own message)
  is cut to a few dozen characters with "…" and its full length, and its control, bidi and
  other non-printable characters are escaped, so an error is one short, inert line.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GradcheckError

_KEYS = ("at", "description", "expression", "wrt")
MAX_FILE_BYTES = 10_000_000
MAX_NAME_CHARS = 200  # a variable name in `at` or `wrt`
MAX_DESCRIPTION_CHARS = 500
_SHOW = 60  # characters of one echoed piece of user text
_UTF8_BOM = "\ufeff"


@dataclass
class CheckFile:
    expression: str
    at: dict[str, float]
    description: str = ""
    wrt: list[str] | None = field(default=None)


# --------------------------------------------------------------------------------------------
# Echoing user text
# --------------------------------------------------------------------------------------------


def _escape_char(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _piece(c: str, keep: str) -> str:
    if c in keep:
        return c
    if c == "\\" or c == "'":
        return "\\" + c
    return c if c.isprintable() else _escape_char(c)


def _escaped_prefix(text: str, limit: int, keep: str = "") -> tuple[str, bool]:
    """At most `limit` characters of output: `text` with non-printable characters (controls,
    bidi overrides, zero-width and line separators, lone surrogates) escaped, backslashes and
    quotes as in repr. True when `text` was cut."""
    out: list[str] = []
    used = 0
    for c in text:
        piece = _piece(c, keep)
        if used + len(piece) > limit:
            return "".join(out), True
        out.append(piece)
        used += len(piece)
    return "".join(out), False


def shown(text: str, limit: int = _SHOW) -> str:
    """User text inside a message: quoted, escaped, and cut to about `limit` characters with
    "…" and the full length."""
    body, cut = _escaped_prefix(text, limit)
    return f"'{body}…' ({len(text):,} characters)" if cut else f"'{body}'"


def _inert(text: str, limit: int) -> str:
    """Text that is already quoted as needed (an OS or tomllib message): only escaped and cut."""
    body, cut = _escaped_prefix(text, limit, keep="'\\")
    return f"{body}… ({len(text):,} characters)" if cut else body


def _cut(text: str) -> str:
    """An ASCII literal (a number), cut like `shown` but unquoted."""
    return text if len(text) <= _SHOW else f"{text[:_SHOW]}… ({len(text):,} characters)"


def shown_path(path: str, limit: int = 100) -> str:
    """A path inside a message: like `shown`, but a long one keeps its end (the file name)."""
    body, cut = _escaped_prefix(path, limit)
    if not cut:
        return f"'{body}'"
    pieces = [_piece(c, "") for c in path[-limit:]]
    used = sum(map(len, pieces))
    while used > limit:  # escapes made it wider
        used -= len(pieces.pop(0))
    return f"'…{''.join(pieces)}' ({len(path):,} characters)"


def _shown_int(value: int) -> str:
    if abs(value).bit_length() > 14_000:  # str() is refused past 4,300 digits (and slow)
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1:,} digits"
    return _cut(str(value))


def _describe(value: Any) -> str:
    """A TOML value in a message, bounded: scalars shown (cut), containers named."""
    if isinstance(value, _FloatLiteral):
        return _cut(value.text)
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return _shown_int(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return f"a table of {len(value):,} key(s)"
    if isinstance(value, list):
        return f"an array of {len(value):,} item(s)"
    return f"a TOML {type(value).__name__} ({shown(str(value))})"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class _FloatLiteral:
    """A float literal that does not survive float(): nonzero digits that round to 0, or a
    finite literal that overflows to inf. Kept as text so the message can quote it."""

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_float(text: str) -> float | _FloatLiteral:
    """tomllib's parse_float hook: it sees the literal, so `1e-400` (silently 0.0 by default)
    and `1e400` (silently inf) can be refused like `--at x=1e-400`. inf and nan stay floats and
    are refused as not finite."""
    value = float(text)
    lowered = text.lower()
    if "inf" in lowered or "nan" in lowered:
        return value
    mantissa = lowered.partition("e")[0]
    if math.isinf(value) or (value == 0 and any(c in "123456789" for c in mantissa)):
        return _FloatLiteral(text)
    return value


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_regular(where: str, mode: int) -> GradcheckError:
    return GradcheckError(
        "bad-file", f"{where} is {_file_kind(mode)}, not a regular file: check files are read only "
        "from regular files.",
    )


def _read(p: Path, where: str, most: int = MAX_FILE_BYTES) -> bytes:
    try:
        # stat() first: opening a FIFO with no writer blocks, and a device never ends (a
        # committed symlink to /dev/zero reports size 0).
        mode = os.stat(p).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(where, mode)
        # Non-blocking, and checked again on the open descriptor, in case the path was
        # replaced by a FIFO or device between the stat() and the open().
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise _not_regular(where, mode)
            raw = handle.read(most + 1)
    except FileNotFoundError:
        raise GradcheckError("bad-file", f"no such check file: {where}.") from None
    except ValueError:  # a NUL character in the path (possible from Python, not from a shell)
        raise GradcheckError("bad-file", f"cannot read {where}: a path cannot hold NUL.") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GradcheckError("bad-file", f"cannot read {where}: {_inert(reason, 100)}.") from None
    if len(raw) > most:
        raise GradcheckError("bad-file", f"{where} is larger than {most:,} bytes.")
    return raw


def _decode(raw: bytes, where: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GradcheckError(
            "bad-file", f"cannot read {where}: it is UTF-16 (it starts with a UTF-16 byte-order "
            "mark); save it as UTF-8.",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GradcheckError(
            "bad-file", f"cannot read {where}: it is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start:,}); save it as UTF-8.",
        ) from None
    # Editors on Windows start UTF-8 files with a byte-order mark, which TOML does not allow.
    return text.removeprefix(_UTF8_BOM)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text, parse_float=_parse_float)
    except tomllib.TOMLDecodeError as exc:
        # tomllib quotes keys in some messages ("Cannot declare ('a', 'b') twice"): cut it.
        raise GradcheckError(
            "bad-file", f"{where} is not valid TOML: {_inert(str(exc), 160)}."
        ) from None
    except ValueError as exc:  # int() of a literal past Python's 4,300-digit limit
        if "integer string conversion" in str(exc):
            raise GradcheckError(
                "bad-value", f"{where} has an integer literal of more than 4,300 digits, far outside "
                "the range of float64 (about 5e-324 to 1.8e308 in magnitude).",
            ) from None
        raise GradcheckError(
            "bad-file", f"{where} is not valid TOML: {_inert(str(exc), 160)}."
        ) from None
    except RecursionError:
        raise GradcheckError("bad-file", f"{where} nests its TOML values too deeply.") from None


# --------------------------------------------------------------------------------------------
# Validating
# --------------------------------------------------------------------------------------------


def unknown_keys(data: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    """An unknown key is an error naming it and the closest known key: a typo is never
    silently ignored."""
    unknown = sorted(k for k in data if k not in known)
    if not unknown:
        return
    parts = []
    for key in unknown[:3]:
        part = shown(key, 40)
        if len(key) <= 40:
            close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
            if close:
                part += f" (did you mean {close[0]!r}?)"
        parts.append(part)
    if len(unknown) > 3:
        parts.append(f"and {len(unknown) - 3:,} more")
    raise GradcheckError(
        "bad-file", f"{where} has unknown key(s) {', '.join(parts)}; known keys are {', '.join(known)}.",
    )


def _name(name: str, where: str, what: str) -> str:
    if len(name) > MAX_NAME_CHARS:
        raise GradcheckError(
            "bad-value", f"in {where}, {what} {shown(name, 30)} is longer than the {MAX_NAME_CHARS} "
            "characters a variable name may have.",
        )
    return name


def _number(name: str, value: Any, where: str) -> float:
    what = f"in {where}, the value of {shown(name, 40)}"
    if isinstance(value, _FloatLiteral) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 1024
    ):
        raise GradcheckError(
            "bad-value", f"{what}, {_describe(value)}, is outside the range of float64 "
            "(about 5e-324 to 1.8e308 in magnitude).",
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GradcheckError("bad-value", f"{what} must be a finite number, not {_describe(value)}.")
    try:
        number = float(value)
    except OverflowError:  # an int just above float64's largest value (2**1024 - 2**970 and up)
        raise GradcheckError(
            "bad-value", f"{what}, {_describe(value)}, is outside the range of float64 "
            "(about 5e-324 to 1.8e308 in magnitude).",
        ) from None
    if not math.isfinite(number):
        raise GradcheckError("bad-value", f"{what} must be a finite number, not {_describe(value)}.")
    return number


def _description(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise GradcheckError(
            "bad-file", f"in {where}, description must be a string such as description = \"...\", "
            f"not {_describe(value)}.",
        )
    # Kept escaped and cut, so every output format can show it as it is (newlines kept).
    body, cut = _escaped_prefix(value.strip(), MAX_DESCRIPTION_CHARS, keep="\n'\\")
    return f"{body}… ({len(value):,} characters)" if cut else body


# Public readers, shared with the files of many checks (suite.py) and of answers (grading.py).
describe = _describe
name = _name
number = _number
description = _description


def read_bounded(path: str | Path, where: str, most: int) -> bytes:
    """A file's bytes, read as a check file is (regular files only), at most `most` of them."""
    return _read(Path(path), where, most)


decode = _decode


def parse_float_text(text: str, where: str, key: str) -> float:
    """A number written as text inside a check file ("0.1" in "0.1:5"), read strictly."""
    from .inputs import parse_decimal

    try:
        return parse_decimal(text, key)
    except GradcheckError as err:
        raise GradcheckError(err.kind, f"in {where}, {err.message}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A check file's TOML, read with every bound above."""
    where = shown_path(str(path))
    return _parse(_decode(_read(Path(path), where), where), where)


def load(path: str | Path) -> CheckFile:
    where = shown_path(str(path))
    return from_data(read_toml(path), where)


def from_data(data: dict[str, Any], where: str) -> CheckFile:
    """A single-check file (v1's format) from its parsed TOML."""
    unknown_keys(data, _KEYS, where)
    expr = data.get("expression")
    if not isinstance(expr, str):
        got = "it is missing" if expr is None else f"not {_describe(expr)}"
        raise GradcheckError("bad-file", f"{where} needs expression = \"...\" (a string); {got}.")
    at = data.get("at", {})
    if not isinstance(at, dict):
        raise GradcheckError(
            "bad-file", f"in {where}, at must be a table such as at = {{ x = 1.5 }}, not {_describe(at)}."
        )
    point = {_name(name, where, "the name"): _number(name, value, where) for name, value in at.items()}
    wrt = data.get("wrt")
    if wrt is not None:
        if not (isinstance(wrt, list) and all(isinstance(w, str) for w in wrt)):
            raise GradcheckError(
                "bad-file", f"in {where}, wrt must be a list of variable names such as wrt = [\"x\"], "
                f"not {_describe(wrt)}.",
            )
        wrt = [_name(w, where, "the wrt entry") for w in wrt]
    description = _description(data.get("description", ""), where)
    return CheckFile(expr, point, description, wrt)
