"""The Python API's arguments, checked as strictly as the CLI's flags: options, method names,
the point (plain numbers or equal-length arrays, each within the working dtype) and --wrt. Bad
input is a GradcheckError naming the argument, never a traceback."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import claims
from .errors import GradcheckError
from .graph import Graph, natural_key, some_names
from .limits import Limits
from .methods import DEFAULT_METHODS, METHODS, REFERENCES, REGISTRY
from .parse import CONSTANT_NAMES

if TYPE_CHECKING:
    from .check import Options

DTYPES = {"float64": np.float64, "float32": np.float32}


def number(name: str, value: Any, *, positive: bool = False, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise GradcheckError("usage", f"{name} must be a number, not {str(value)[:40]!r}.") from None
    if isinstance(value, bool) or not math.isfinite(x) or x < 0 or (positive and x == 0):
        what = "a finite number above 0" if positive else "a finite number, 0 or more"
        raise GradcheckError("usage", f"{name} must be {what}, not {value!r}.")
    return x


def options(opts: Options) -> Options:
    """The API's options, checked as strictly as the CLI's flags (bad ones are usage errors)."""
    methods = opts.methods
    if isinstance(methods, str):  # "reverse,forward" as well as ["reverse", "forward"]
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    wrt = opts.wrt
    if isinstance(wrt, str):  # "x,y", not the letters of "xy"
        wrt = [w.strip() for w in wrt.split(",") if w.strip()]
    if not isinstance(opts.limits, Limits):
        raise GradcheckError("usage", "limits must be a gradcheck Limits object.")
    if not 1 <= opts.limits.max_digits <= 4000:  # Python itself refuses ints past 4,300 digits
        raise GradcheckError("usage", f"max_digits must be from 1 to 4000, not {opts.limits.max_digits}.")
    if opts.where_undefined not in claims.WHERE_UNDEFINED:
        raise GradcheckError("usage", f"where_undefined must be one of {', '.join(claims.WHERE_UNDEFINED)}, "
                             f"not {opts.where_undefined!r}.")
    digits = opts.exact_digits
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 1000:
        raise GradcheckError("usage", f"exact_digits must be a whole number from 1 to 1000, not {digits!r}.")
    return replace(
        opts,
        methods=methods,
        wrt=wrt,
        rtol=number("rtol", opts.rtol),
        atol=number("atol", opts.atol),
        step=number("the step", opts.step, positive=True),
        timeout=number("timeout", opts.timeout, positive=True),
        symbolic_timeout=number("symbolic_timeout", opts.symbolic_timeout, positive=True,
                                 allow_none=False),
    )


def method_names(opts: Options) -> list[str]:
    if opts.dtype not in DTYPES:
        raise GradcheckError("usage", f"unknown dtype {opts.dtype!r}; choose one of {', '.join(DTYPES)}.")
    names = list(DEFAULT_METHODS if opts.methods is None else opts.methods)
    if names == ["all"]:
        names = list(METHODS)
    if not names:
        raise GradcheckError("usage", "no methods chosen; the methods are " + ", ".join(METHODS) + ".")
    for name in names:
        if name not in REGISTRY:
            raise GradcheckError("usage", f"unknown method {name!r}; the methods are {', '.join(METHODS)}.")
    if opts.reference in ("reverse", "forward"):
        raise GradcheckError(
            "usage", f"--reference {opts.reference}: the reference is never an AD method (they are what "
            f"is being checked); choose one of {', '.join(REFERENCES)}.")
    if opts.reference not in REFERENCES:
        raise GradcheckError(
            "usage", f"unknown reference {opts.reference!r}; choose one of {', '.join(REFERENCES)}.")
    return [n for n in METHODS if n in names]


def in_dtype(name: str, values: np.ndarray, dtype: type) -> np.ndarray:
    """The values rounded to the working dtype (as float64 arrays): a value that does not
    survive the rounding (1e39 or 1e-46 in float32) is bad input, not a silent inf or 0."""
    with np.errstate(all="ignore"):
        rounded = np.asarray(values, dtype=dtype)
    lost = ~np.isfinite(rounded) | ((rounded == 0) & (np.asarray(values) != 0))
    if lost.any():
        x = float(np.asarray(values)[lost][0])
        info = np.finfo(dtype)
        raise GradcheckError(
            "bad-value", f"the value of {name}, {x:g}, is outside the range of {np.dtype(dtype).name} "
            f"(about {float(info.smallest_subnormal):.1e} to {float(info.max):.1e} in magnitude).")
    return rounded.astype(np.float64)


def point(graph: Graph, given: Mapping[str, Any], require_all: bool) -> tuple[dict[str, np.ndarray], bool]:
    """The point as arrays (K,) of float64, and whether it was given as arrays."""
    for name in given:
        if name in CONSTANT_NAMES:
            raise GradcheckError(
                "bad-variable",
                f"{name!r} is a constant ({'pi' if name == 'pi' else 'E = 2.718...'}) and cannot "
                "be given a value; rename the variable.",
            )
        if name not in graph.var_nodes:
            raise GradcheckError(
                "unknown-variable",
                f"the point gives a value for {some_names([name])!r}, which is not a variable of the "
                f"formula (its variables: {some_names(graph.variables)}).",
            )
    missing = [v for v in graph.variables if v not in given]
    if missing and require_all:
        raise GradcheckError(
            "missing-value",
            f"no value for {some_names(missing)}: give every variable a value with "
            f"--at, e.g. --at {','.join(f'{v}=1.0' for v in missing[:5])}"
            + (" (or draw them with --sample N)." if len(missing) > 5 else "."),
        )
    names = sorted(given, key=natural_key)
    if all(type(given[n]) in (float, int) for n in names):  # plain numbers (a 33,488-variable
        # net's point): checked at once; anything else, one by one below, for its message
        try:
            at_once = np.array([given[n] for n in names], dtype=np.float64)
        except OverflowError:
            at_once = None
        if at_once is not None and np.isfinite(at_once).all():
            return {n: at_once[i:i + 1].copy() for i, n in enumerate(names)}, False
    arrays: dict[str, np.ndarray] = {}
    batched = False
    for name in names:
        value = given[name]
        if isinstance(value, bool) or isinstance(value, (str, bytes)):
            raise GradcheckError("bad-value", f"the value of {name} must be a finite number, not {value!r}.")
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise GradcheckError("bad-value", f"the value of {name} must be a finite number, not "
                                 f"{str(value)[:80]!r}.") from None
        if arr.ndim > 1 or (arr.ndim == 1 and len(arr) == 0):
            raise GradcheckError("bad-value",
                                 f"the value of {name} must be a number or a 1-d array of points.")
        if not np.all(np.isfinite(arr)):
            raise GradcheckError("bad-value", f"the value of {name} must be a finite number, not "
                                 f"{str(value)[:80]!r}.")
        batched = batched or arr.ndim == 1
        arrays[name] = np.atleast_1d(arr)
    sizes = {len(a) for a in arrays.values() if len(a) != 1}
    if len(sizes) > 1:
        raise GradcheckError("bad-value", "the arrays of points have different lengths: "
                             + ", ".join(f"{v}: {len(a)}" for v, a in arrays.items()) + ".")
    k = sizes.pop() if sizes else 1
    return {v: np.broadcast_to(a, (k,)).copy() for v, a in arrays.items()}, batched


def wrt(graph: Graph, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return list(graph.variables)
    if not names:
        raise GradcheckError("usage", "--wrt names no variable; leave it out to check them all.")
    seen: list[str] = []
    for name in names:
        if name not in graph.var_nodes:
            raise GradcheckError(
                "unknown-variable",
                f"--wrt names {some_names([name])!r}, which is not a variable of the formula "
                f"(its variables: {some_names(graph.variables)}).",
            )
        if name not in seen:
            seen.append(name)
    return seen
