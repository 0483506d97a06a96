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
