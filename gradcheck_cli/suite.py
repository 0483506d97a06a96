"""Files of many checks: `[defaults]` and `[[check]]` tables, each check run and held to its
expected outcome, so a file of known-bad answers passes CI when every one is caught.

    [defaults]                      # optional: keys every check below starts from
    sample = 20
    domain = { x = [-2, 2] }

    [[check]]
    name = "sigmoid"                # unique in the file (default: "check N")
    expression = "sigmoid(x)"
    claims = { x = "sigmoid(x)*(1-sigmoid(x))" }

    [[check]]
    name = "sigmoid, sign error"
    expression = "sigmoid(x)"
    claims = { x = "-sigmoid(x)*(1-sigmoid(x))" }
    expect = "wrong"                # the check passes when the claim is caught
    diagnosis = "sign"              # ... and diagnosed so

A check's *outcome* is its claims' verdict when it has claims (correct, wrong, or cannot-judge:
every claim correct is correct, one wrong is wrong) and the gradient check's verdict otherwise
(pass, fail, inconclusive). It *meets its expectation* when the outcome is the expected one
(default: correct with claims, pass without) and, if `diagnosis` is given, a wrong claim has
that diagnosis. A check that cannot be run at all (a bad key, a formula that does not parse) is
an *error*: it names the check and the key, and the other checks still run.

The single-check files of v1 (top-level `expression`, `at`, `wrt`, `description`) are read
unchanged: `checkfile.load`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import checkfile
from .checkfile import shown, shown_path
from .claims import DIAGNOSES, WHERE_UNDEFINED
from .errors import GradcheckError
from .limits import time_limit
from .methods import METHODS, REFERENCES
from .report import Report
from .sampling import MAX_SAMPLE, check_interval, parse_domain

OUTCOMES = ("pass", "fail", "inconclusive", "correct", "wrong", "cannot-judge")
CLAIM_OUTCOMES = ("correct", "wrong", "cannot-judge")
# What a check may set (also in [defaults]); `name`, `expect` and `diagnosis` are per check.
CHECK_KEYS = ("at", "atol", "claims", "description", "diagnosis", "domain", "dtype", "expect",
              "expression", "formula", "methods", "name", "points", "reference", "rtol", "sample",
              "seed", "step", "strict", "timeout", "where_undefined", "wrt")
_PER_CHECK = ("name", "expect", "diagnosis", "expression", "formula", "claims", "at", "points")
FILE_KEYS = ("check", "defaults", "description", "title")
MAX_NAME = 200
MAX_CHECKS = 100_000


@dataclass
class CheckSpec:
    """One check of a file, validated: the arguments of `check.check`, plus what it is held to."""

    name: str
    source: str  # the file, as shown in messages
    index: int  # 1-based position in its file
    expression: str = ""
    point: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of check()
    expect: str | None = None  # None: correct with claims, pass without
    diagnosis: str | None = None
    description: str = ""
    error: GradcheckError | None = None  # the check could not be read: it is an error

    @property
    def expected(self) -> str:
        if self.expect is not None:
            return self.expect
        return "correct" if self.options.get("expect") else "pass"


@dataclass
class Suite:
    title: str
    specs: list[CheckSpec]
    legacy: bool = False  # a v1 single-check file (top-level expression)


@dataclass
class Outcome:
    """What became of one check."""

    spec: CheckSpec
    outcome: str  # one of OUTCOMES, or "error"
    ok: bool  # met its expectation
    report: Report | None = None
    error: GradcheckError | None = None
    detail: str = ""  # one line: the witness and diagnosis, the verdict, or the error
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def is_suite(data: Mapping[str, Any]) -> bool:
    return "check" in data or "defaults" in data


def _where(spec: CheckSpec) -> str:
    return f"{spec.source}, check {spec.index} ({shown(spec.name, 40)})"


def _bad(where: str, key: str, what: str) -> GradcheckError:
    return GradcheckError("bad-file", f"in {where}, {key} {what}.")


def _string(value: Any, where: str, key: str, most: int = 100_000) -> str:
    if not isinstance(value, str):
        raise _bad(where, key, f"must be a string, not {checkfile.describe(value)}")
    if len(value) > most:
        raise _bad(where, key, f"is longer than {most:,} characters")
    return value


def _names(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [p.strip() for p in value.split(",") if p.strip()]
    if not (isinstance(value, list) and all(isinstance(w, str) for w in value)):
        raise _bad(where, key, f"must be a list of names such as [\"x\", \"y\"], not "
                   f"{checkfile.describe(value)}")
    return [checkfile.name(w, where, f"the {key} entry") for w in value]


def _float(value: Any, where: str, key: str, *, positive: bool = False) -> float:
    x = checkfile.number(key, value, where)
    if x < 0 or (positive and x == 0):
        raise _bad(where, key, f"must be {'above' if positive else 'at least'} 0, not {x:g}")
    return x


def _int(value: Any, where: str, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(where, key, f"must be a whole number from {lo:,} to {hi:,}, not "
                   f"{checkfile.describe(value)}")
    return value


def _domain(value: Any, where: str) -> dict[str, tuple[float, float]]:
    if isinstance(value, str):
        try:
            return parse_domain([value])
        except GradcheckError as err:
            raise GradcheckError(err.kind, f"in {where}, domain: {err.message}") from None
    if not isinstance(value, dict):
        raise _bad(where, "domain", "must be a table such as domain = { x = [-3, 3] } or a string "
                   f"such as \"x=-3:3\", not {checkfile.describe(value)}")
    out: dict[str, tuple[float, float]] = {}
    for name, ends in value.items():
        name = checkfile.name(name, where, "the domain name")
        if isinstance(ends, str):
            lo_text, colon, hi_text = ends.partition(":")
            if not colon:
                raise _bad(where, f"domain.{name}", f"must be [LO, HI] or \"LO:HI\", not {shown(ends, 30)}")
            ends = [checkfile.parse_float_text(lo_text.strip(), where, f"domain.{name}"),
                    checkfile.parse_float_text(hi_text.strip(), where, f"domain.{name}")]
        if not (isinstance(ends, list) and len(ends) == 2):
            raise _bad(where, f"domain.{name}", "must be two numbers [LO, HI], not "
                       f"{checkfile.describe(ends)}")
        lo, hi = (checkfile.number(f"domain.{name}", e, where) for e in ends)
        try:
            check_interval(name, lo, hi)
        except GradcheckError as err:
            raise GradcheckError(err.kind, f"in {where}, {err.message}") from None
        out[name] = (lo, hi)
    return out


def _points(value: Any, where: str) -> dict[str, Any]:
    if not (isinstance(value, list) and value and all(isinstance(p, dict) for p in value)):
        raise _bad(where, "points", "must be a non-empty list of tables such as "
                   f"points = [{{ x = 1 }}, {{ x = 2 }}], not {checkfile.describe(value)}")
    names = list(value[0])
    for j, p in enumerate(value, 1):
        if sorted(p) != sorted(names):
            raise _bad(where, "points", f"must give the same names at every point (point {j} differs "
                       "from the first)")
    return {checkfile.name(n, where, "the name"): np.array([checkfile.number(n, p[n], where)
                                                           for p in value]) for n in names}


_CHOICES = {"reference": REFERENCES, "dtype": ("float64", "float32"), "where_undefined": WHERE_UNDEFINED}


def _options(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The check() keyword arguments a table sets (defaults or one check)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("rtol", "atol"):
            out[key] = _float(value, where, key)
        elif key in ("step", "timeout"):
            out[key] = _float(value, where, key, positive=True)
        elif key == "sample":
            out[key] = _int(value, where, key, 1, MAX_SAMPLE)
        elif key == "seed":
            out[key] = _int(value, where, key, 0, 2**32 - 1)
        elif key == "domain":
            out[key] = _domain(value, where)
        elif key == "wrt":
            out[key] = _names(value, where, key)
        elif key == "methods":
            names = ["all"] if value == "all" else _names(value, where, key)
            bad = [m for m in names if m not in (*METHODS, "all")]
            if bad:
                raise _bad(where, key, f"has {shown(bad[0], 30)}, which is not a method ("
                           f"{', '.join(METHODS)}, or all)")
            out[key] = list(METHODS) if names == ["all"] else names
        elif key in _CHOICES:
            if not isinstance(value, str) or value not in _CHOICES[key]:
                raise _bad(where, key, f"must be one of {', '.join(_CHOICES[key])}, not "
                           f"{checkfile.describe(value)}")
            out[key] = value
        elif key == "strict":
            if not isinstance(value, bool):
                raise _bad(where, key, f"must be true or false, not {checkfile.describe(value)}")
            out[key] = value
        elif key == "description":
            out[key] = checkfile.description(value, where)
    return out


def _claims(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _bad(where, "claims", "must be a table such as claims = { x = \"2*x\" }, not "
                   f"{checkfile.describe(value)}")
    return {checkfile.name(v, where, "the claim's variable"): _string(text, where, f"claims.{v}")
            for v, text in value.items()}


def _spec(data: Any, defaults: Mapping[str, Any], source: str, index: int, names: set[str],
          explicit: Set[str] = frozenset()) -> CheckSpec:
    # an unnamed check's default name never takes a name the file gives another check
    default = f"check {index}"
    while default in explicit:
        default += " (unnamed)"
    spec = CheckSpec(name=default, source=source, index=index)
    if not isinstance(data, dict):
        spec.error = GradcheckError("bad-file", f"in {source}, check {index} must be a table ([[check]]), "
                                    f"not {checkfile.describe(data)}.")
        return spec
    try:
        if "name" in data:
            spec.name = " ".join(_string(data["name"], f"{source}, check {index}", "name", MAX_NAME).split())
            if not spec.name:
                raise _bad(f"{source}, check {index}", "name", "is empty")
        where = _where(spec)
        if spec.name in names:
            raise _bad(where, "name", "is the name of an earlier check; names must be unique")
        names.add(spec.name)
        checkfile.unknown_keys(data, CHECK_KEYS, where)
        if "expression" in data and "formula" in data:
            raise _bad(where, "formula", "and expression are the same key; give one")
        text = data.get("expression", data.get("formula"))
        if text is None:
            raise GradcheckError("bad-file", f"in {where}, expression = \"...\" is missing.")
        spec.expression = _string(text, where, "expression")
        if "at" in data and "points" in data:
            raise _bad(where, "points", "and at both give the points; give one")
        if "at" in data:
            if not isinstance(data["at"], dict):
                raise _bad(where, "at", f"must be a table such as at = {{ x = 1.5 }}, not "
                           f"{checkfile.describe(data['at'])}")
            spec.point = {checkfile.name(n, where, "the name"): checkfile.number(n, x, where)
                          for n, x in data["at"].items()}
        elif "points" in data:
            spec.point = _points(data["points"], where)
        options = {**defaults, **_options({k: v for k, v in data.items() if k not in _PER_CHECK}, where)}
        if "claims" in data:
            options["expect"] = _claims(data["claims"], where)
        if "expect" in data:
            if data["expect"] not in OUTCOMES:
                raise _bad(where, "expect", f"must be one of {', '.join(OUTCOMES)}, not "
                           f"{checkfile.describe(data['expect'])}")
            spec.expect = data["expect"]
            claimed = bool(options.get("expect"))
            if claimed != (spec.expect in CLAIM_OUTCOMES):
                raise _bad(where, "expect", f"= {spec.expect!r} is an outcome of a check "
                           f"{'without' if claimed else 'with'} claims; "
                           + ("use correct, wrong or cannot-judge" if claimed else "use pass, fail or "
                              "inconclusive (or give claims)"))
        if "diagnosis" in data:
            if data["diagnosis"] not in DIAGNOSES:
                raise _bad(where, "diagnosis", f"must be one of {', '.join(DIAGNOSES)}, not "
                           f"{checkfile.describe(data['diagnosis'])}")
            if spec.expected != "wrong":
                raise _bad(where, "diagnosis", "needs expect = \"wrong\" (only a wrong claim is diagnosed)")
            spec.diagnosis = data["diagnosis"]
        if "points" in data and "sample" in data:
            raise _bad(where, "points", "and sample both give the points; give one")
        if ("at" in data or "points" in data) and "sample" not in data:
            # a check at given points is not sampled, whatever [defaults] says
            for key in ("sample", "seed", "domain"):
                options.pop(key, None)
        spec.description = options.pop("description", "")
        spec.options = options
    except GradcheckError as err:
        spec.error = err
    return spec


def load(path: str | Path) -> Suite:
    """A check file of either kind, as a suite. A file that cannot be read or is not TOML raises
    (the caller counts the whole file as one error); a bad check is kept with its error."""
    where = shown_path(str(path))
    data = checkfile.read_toml(path)
    if not is_suite(data):
        one = checkfile.from_data(data, where)
        spec = CheckSpec(name=Path(str(path)).stem, source=where, index=1, expression=one.expression,
                         point=dict(one.at), description=one.description)
        if one.wrt is not None:
            spec.options["wrt"] = one.wrt
        return Suite(title=one.description or spec.name, specs=[spec], legacy=True)
    checkfile.unknown_keys(data, FILE_KEYS, where)
    title = data.get("title", "")
    title = _string(title, where, "title", 200) if title else Path(str(path)).stem
    defaults_data = data.get("defaults", {})
    if not isinstance(defaults_data, dict):
        raise _bad(where, "defaults", "must be a table ([defaults]), not "
                   f"{checkfile.describe(defaults_data)}")
    checkfile.unknown_keys(defaults_data, [k for k in CHECK_KEYS if k not in _PER_CHECK],
                           f"{where}, [defaults]")
    defaults = _options(defaults_data, f"{where}, [defaults]")
    defaults.pop("description", None)
    checks = data.get("check", [])
    if not isinstance(checks, list):
        raise _bad(where, "check", "must be an array of tables ([[check]])")
    if not checks:
        raise GradcheckError("bad-file", f"{where} has no [[check]] tables.")
    if len(checks) > MAX_CHECKS:
        raise GradcheckError("bad-file", f"{where} has {len(checks):,} checks, more than {MAX_CHECKS:,}.")
    names: set[str] = set()
    explicit = {" ".join(c["name"].split()) for c in checks
                if isinstance(c, dict) and isinstance(c.get("name"), str)}
    specs = [_spec(c, defaults, where, i, names, explicit) for i, c in enumerate(checks, 1)]
    return Suite(title=title, specs=specs)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def outcome_of(report: Report, spec: CheckSpec) -> tuple[str, str]:
    """(outcome, one-line detail) of a finished check."""
    from .render import verdict_text

    claims = list(report.claims.values())
    if not claims:
        return report.verdict, verdict_text(report)
    wrong = [c for c in claims if c.verdict == "wrong"]
    if wrong:
        parts = []
        for c in wrong:
            w = c.witness or {}
            parts.append(f"∂f/∂{c.variable}: wrong at --at {w.get('at')} (claimed "
                         f"{w.get('claimed', math.nan):.6g}, true {w.get('true', math.nan):.6g})"
                         + (f"; {c.diagnosis}" if c.diagnosis else ""))
        return "wrong", "; ".join(parts)
    if all(c.verdict in ("correct", "equal-except-undefined") for c in claims):
        proved = all(c.proof == "proved" for c in claims)
        points = min(c.checked for c in claims)
        undefined = [f"∂f/∂{c.variable}: {c.diagnosis}" for c in claims if c.verdict != "correct"]
        return "correct", f"correct at {points} point{'s' if points != 1 else ''}" + (
            " (SymPy proves it)" if proved else "") + "".join(f"; {u}" for u in undefined)
    return "cannot-judge", "; ".join(f"∂f/∂{c.variable}: {c.verdict}" for c in claims)


def run_one(spec: CheckSpec, overrides: Mapping[str, Any], run: Callable[..., Report]) -> Outcome:
    """Run one check; every failure becomes an outcome, never an exception (but Ctrl-C)."""
    import time

    started = time.monotonic()
    if spec.error is not None:
        return Outcome(spec, "error", False, error=spec.error, detail=spec.error.message)
    options = {**spec.options, **overrides}
    options.setdefault("timeout", DEFAULT_TIMEOUT)
    if spec.description:
        options["description"] = spec.description
    # --sample on the command line draws every variable of every check, as for a single file
    point = {} if "sample" in overrides else spec.point
    try:
        seconds = float(options["timeout"])
        with time_limit(seconds, f"the check did not finish within its time limit of {seconds:g} s "
                        "(timeout = ... in the file, or --timeout)."):
            report = run(spec.expression, point, **options)
    except GradcheckError as err:
        key = "expression: " if err.source is not None and err.source == spec.expression else ""
        err = GradcheckError(err.kind, f"in {_where(spec)}, {key}{err.message}", column=err.column,
                             source=err.source)
        return Outcome(spec, "error", False, error=err, detail=err.message,
                       seconds=time.monotonic() - started)
    outcome, detail = outcome_of(report, spec)
    ok = outcome == spec.expected
    if ok and spec.diagnosis is not None:
        kinds = {c.diagnosis_kind for c in report.claims.values() if c.verdict == "wrong"}
        if spec.diagnosis not in kinds:
            ok = False
            detail += f" — expected the diagnosis {spec.diagnosis!r}"
    return Outcome(spec, outcome, ok, report=report, detail=detail, seconds=time.monotonic() - started)


# A file this large runs its checks in several processes (each with its own SymPy worker) on a
# machine with two cores or more: below it, forking and another SymPy import do not pay.
PARALLEL_MIN = 48
MAX_PROCESSES = 4
_CHUNK = 8  # checks per message from the second process: a smooth progress bar


DEFAULT_TIMEOUT = 120.0  # seconds per check, as --timeout for one check


def run_all(specs: Sequence[CheckSpec], overrides: Mapping[str, Any], run: Callable[..., Report],
            progress: Callable[[Outcome], None] | None = None, processes: int | None = None,
            ) -> list[Outcome]:
    """Every check, in order. A large file on a machine with two cores or more is dealt out
    round-robin to this process and forked helpers (each with its own SymPy worker), which send
    their outcomes back in chunks; if one dies, this process runs what it left. A check waits
    on its SymPy worker for part of its time, so one process more than cores keeps them busy."""
    if processes is None:
        cores = os.cpu_count() or 1
        processes = min(cores + 1, MAX_PROCESSES) if len(specs) >= PARALLEL_MIN and cores >= 2 else 1
    tell = progress or (lambda o: None)
    if processes < 2 or "fork" not in multiprocessing.get_all_start_methods():
        out = []
        for spec in specs:
            out.append(run_one(spec, overrides, run))
            tell(out[-1])
        return out
    ctx = multiprocessing.get_context("fork")
    shares = [list(range(j, len(specs), processes)) for j in range(1, processes)]
    pipes, children, got = [], [], []
    for share in shares:
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_second, args=([specs[i] for i in share], overrides, run, send),
                            daemon=False)
        child.start()
        send.close()
        pipes.append(receive)
        children.append(child)
        got.append(0)  # outcomes received from this helper, in order
    results: dict[int, Outcome] = {}
    alive = [True] * len(shares)

    def drain(c: int, block: bool) -> bool:
        receive = pipes[c]
        while block or receive.poll():
            try:
                batch = receive.recv()
            except (EOFError, OSError):
                return False
            if batch is None:
                return False
            for o in batch:
                results[shares[c][got[c]]] = o
                got[c] += 1
                tell(o)
        return True

    try:
        for i in range(0, len(specs), processes):
            results[i] = run_one(specs[i], overrides, run)
            tell(results[i])
            for c in range(len(shares)):
                if alive[c]:
                    alive[c] = drain(c, False)
        for c in range(len(shares)):
            if alive[c]:
                drain(c, True)
    finally:
        for receive, child in zip(pipes, children):
            receive.close()
            if child.is_alive():
                child.terminate()
            child.join()
    for c, share in enumerate(shares):
        for i in share[got[c]:]:  # a helper died: run what it left
            results[i] = run_one(specs[i], overrides, run)
            tell(results[i])
    return [results[i] for i in range(len(specs))]


def _second(specs: Sequence[CheckSpec], overrides: Mapping[str, Any], run: Callable[..., Report],
            send: Any) -> None:
    """The second process: Ctrl-C is the first process's to handle (it ends this one)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    batch: list[Outcome] = []
    try:
        for spec in specs:
            batch.append(run_one(spec, overrides, run))
            if len(batch) == _CHUNK:
                send.send(batch)
                batch = []
        send.send(batch)
        send.send(None)
    except (BrokenPipeError, OSError):
        pass
    finally:
        send.close()


def exit_code(outcomes: Sequence[Outcome], file_errors: int = 0) -> int:
    """2 if any check (or file) is an error, else 1 if any missed its expectation with a real
    outcome, else 3 if one missed it only for want of a verdict, else 0."""
    if file_errors or any(o.outcome == "error" for o in outcomes):
        return 2
    missed = [o for o in outcomes if not o.ok]
    if any(o.outcome not in ("inconclusive", "cannot-judge") or o.spec.expected in ("inconclusive",
                                                                                    "cannot-judge")
           for o in missed):
        return 1
    return 3 if missed else 0
