"""Check files: a formula and its point in a small TOML file, so examples can be run by name.

    # the sigmoid neuron of the lecture notes
    expression = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
    at = { w0 = 2, x0 = -1, w1 = -3, x1 = -2, w2 = -3 }

Keys are checked strictly (an unknown key is an error, so a typo is not silently ignored). The
file is only read as data (tomllib); its formula goes through the same safe parser as any other.
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GradcheckError

_KEYS = {"expression", "at", "description", "wrt"}
MAX_FILE_BYTES = 10_000_000


@dataclass
class CheckFile:
    expression: str
    at: dict[str, float]
    description: str = ""
    wrt: list[str] | None = field(default=None)


def load(path: str | Path) -> CheckFile:
    p = Path(path)
    try:
        with open(p, "rb") as handle:
            # A device or FIFO reports size 0 and never ends (a committed symlink to /dev/zero):
            # only regular files, and never more than the cap.
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise GradcheckError("bad-file", f"{str(p)!r} is not a regular file.")
            raw = handle.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise GradcheckError("bad-file", f"{str(p)!r} is larger than {MAX_FILE_BYTES} bytes.")
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise GradcheckError("bad-file", f"no such check file: {str(p)!r}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GradcheckError("bad-file", f"cannot read {str(p)!r}: {exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise GradcheckError("bad-file", f"{str(p)!r} is not valid TOML: {exc}.") from None
    except RecursionError:
        raise GradcheckError("bad-file", f"{str(p)!r} nests its TOML values too deeply.") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise GradcheckError(
            "bad-file", f"{str(p)!r} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(sorted(_KEYS))}.",
        )
    expr = data.get("expression")
    if not isinstance(expr, str):
        raise GradcheckError("bad-file", f"{str(p)!r} needs expression = \"...\" (a string).")
    at = data.get("at", {})
    if not isinstance(at, dict):
        raise GradcheckError("bad-file", f"in {str(p)!r}, at must be a table such as at = {{ x = 1.5 }}.")
    point: dict[str, float] = {}
    for name, value in at.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GradcheckError(
                "bad-value", f"in {str(p)!r}, the value of {name!r} must be a finite number, not {value!r}."
            )
        point[name] = float(value)
    wrt = data.get("wrt")
    if wrt is not None and not (isinstance(wrt, list) and all(isinstance(w, str) for w in wrt)):
        raise GradcheckError("bad-file", f"in {str(p)!r}, wrt must be a list of variable names.")
    description = data.get("description", "")
    return CheckFile(expr, point, str(description), wrt)
