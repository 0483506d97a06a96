"""The strict readers of values typed on the command line: `--at NAME=VALUE,...` and the ends
of `--domain NAME=LO:HI`. Plain ASCII decimals only: float() alone would also take "nan",
"inf", "1_000" and fullwidth digits."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import GradcheckError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def shown(text: str) -> str:
    """User text inside a message: quoted, with control characters escaped."""
    return repr(text)


def parse_name(name: str, flag: str) -> str:
    if not _NAME.match(name):
        raise GradcheckError(
            "bad-value", f"{shown(name)} in {flag} is not a variable name "
            "(ASCII letters, digits and _, not starting with a digit).",
        )
    return name


def parse_decimal(text: str, what: str) -> float:
    """A plain decimal within float64's range (an underflow to 0 or overflow is refused)."""
    if not text:
        raise GradcheckError("missing-value", f"no value for {what}.")
    if not _DECIMAL.match(text):
        raise GradcheckError(
            "bad-value", f"{what}, {shown(text)}, is not a decimal number (examples: 2, -0.5, 1e-3).",
        )
    value = float(text)
    mantissa = text.lower().partition("e")[0]
    underflow = value == 0 and any(c in "123456789" for c in mantissa)
    if value in (float("inf"), float("-inf")) or underflow:
        raise GradcheckError(
            "bad-value", f"{what}, {text}, is outside the range of float64 "
            "(about 5e-324 to 1.8e308 in magnitude).",
        )
    return value


def parse_assignments(items: Sequence[str]) -> dict[str, float]:
    """`--at x=1.5,y=-2 --at z=3` → {"x": 1.5, "y": -2.0, "z": 3.0}, strictly."""
    point: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                raise GradcheckError("bad-value", f"empty assignment in --at {shown(item)}.")
            name, eq, text = part.partition("=")
            name, text = name.strip(), text.strip()
            if not eq:
                raise GradcheckError(
                    "bad-value", f"--at expects NAME=VALUE, got {shown(part)} (no '=')."
                )
            parse_name(name, "--at")
            if not text:
                raise GradcheckError("missing-value", f"--at gives no value for {name}.")
            value = parse_decimal(text, f"the value of {name}")
            if name in point:
                raise GradcheckError("bad-value", f"{name} is given a value twice in --at.")
            point[name] = value
    return point


def read_formula(source: str, max_length: int) -> str:
    """A formula or program from a file, or from standard input when `source` is "-": for
    texts longer than a command line allows (128 KiB per argument). Read like a check file
    (regular files only, bounded, UTF-8) and at most `max_length` characters (--max-length)."""
    import sys

    from .checkfile import decode, read_bounded, shown_path

    if source == "-":
        where = "standard input"
        stream = sys.stdin.buffer if sys.stdin is not None else None
        if stream is None:
            raise GradcheckError("bad-file", "the formula is to be read from standard input, which is "
                                 "closed.")
        raw = stream.read(4 * max_length + 4)
    else:
        where = shown_path(source)
        raw = read_bounded(source, where, 4 * max_length + 4)
    text = decode(raw, where)
    if len(text) > max_length:
        raise GradcheckError("limit", f"the formula from {where} is longer than {max_length:,} characters "
                             "(raise it with --max-length).")
    if not text.strip():
        raise GradcheckError("syntax", f"the formula from {where} is empty.")
    if "#" in text:
        # A file may comment a plain formula too (a program's comments are its own syntax):
        # each comment becomes blanks, so every error still points at the right column.
        blanked = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), text)
        if "=" not in blanked:
            return blanked
    return text
