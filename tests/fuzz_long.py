"""Long fuzz run of the parser, the AD methods, --at parsing and the whole check.

Not collected by pytest (the file name does not match test_*.py). Run it by hand or nightly:

    python tests/fuzz_long.py --count 100000               # the long run (~35 min on 2 cores)
    python tests/fuzz_long.py --count 2000 --seed 1        # a quick one
    python tests/fuzz_long.py --count 100000 --check-every 200 --max-seconds 3600

Formulas come from the hypothesis strategies in tests/strategies.py, mixed: `any_text` (token
soup, look-alike unicode, control characters, arbitrary text), `near_valid_formulas` (valid
formulas with a few characters mutated), `valid_formulas(huge_numbers=True)` (the whole
grammar, literals at float64's edges) and `smooth_formulas` (with a point in the domain).

For every formula:
  - parse() must return a graph or raise GradcheckError; anything else is a failure. Every
    GradcheckError must be presentable: its message and caret have no control characters, its
    column (when given) lies within the text.
  - a formula that parses gets reverse- and forward-mode gradients at a point drawn by
    `strategies.points` (nan, inf, huge, subnormal values included): they must not raise.
  - an `--at` text (arbitrary, or NAME=arbitrary) goes through cli.parse_assignments, which must
    return floats that are finite or raise GradcheckError.
About one in --check-every parsed formulas (sampled) also goes through the full check() (SymPy in its worker
with a short budget, the exact reference, finite differences): GradcheckError is a fine answer,
anything else is a failure.

Prints counts (formulas tried, parsed, GradcheckError by kind, checks run and their verdicts,
failures) and exits 1 if there was any failure, with the first failing inputs and tracebacks.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
import traceback
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import strategies as S  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gradcheck_cli import forward, reverse  # noqa: E402
from gradcheck_cli.check import check  # noqa: E402
from gradcheck_cli.cli import parse_assignments  # noqa: E402
from gradcheck_cli.errors import GradcheckError  # noqa: E402
from gradcheck_cli.parse import parse  # noqa: E402

SOURCES = ("any_text", "near_valid", "valid_huge", "smooth")


class _TimeUp(Exception):
    """Raised to stop hypothesis when --max-seconds has passed."""


class Tally:
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.kinds: collections.Counter[str] = collections.Counter()
        self.check_kinds: collections.Counter[str] = collections.Counter()
        self.at_kinds: collections.Counter[str] = collections.Counter()
        # one entry per distinct failure (what failed and the exception's last line): count,
        # shortest input seen, its traceback
        self.failures: dict[tuple[str, str], list] = {}

    def fail(self, what: str, text: object, detail: str | None = None) -> None:
        self.counts["failures"] += 1
        detail = detail or traceback.format_exc()
        key = (what, detail.strip().splitlines()[-1][:120])
        shown = repr(text)
        entry = self.failures.setdefault(key, [0, shown, detail])
        entry[0] += 1
        if len(shown) < len(entry[1]):
            entry[1], entry[2] = shown, detail


def _presentable(err: GradcheckError, text: str, tally: Tally, what: str) -> None:
    bad = [c for c in err.message if not c.isprintable()]
    if bad:
        tally.fail(f"{what}: control character in message", text, f"{err.kind}: {err.message!r}")
    if err.column is not None and not 1 <= err.column <= len(text) + 1:
        tally.fail(f"{what}: column out of range", text, f"column {err.column} of {len(text)}")
    caret = err.caret()
    if caret is not None and any(c != "\n" and not c.isprintable() for c in caret):
        tally.fail(f"{what}: control character in caret", text, repr(caret))


def _fuzz_parse_and_ad(data: st.DataObject, tally: Tally, check_every: int) -> None:
    source = SOURCES[data.draw(st.integers(0, len(SOURCES) - 1), label="source")]
    point: dict[str, float] | None = None
    if source == "any_text":
        text = data.draw(S.any_text(), label="text")
    elif source == "near_valid":
        text = data.draw(S.near_valid_formulas(), label="text")
    elif source == "valid_huge":
        text = data.draw(S.valid_formulas(huge_numbers=True), label="text")
    else:
        text, point = data.draw(S.smooth_formulas(), label="formula")
    tally.counts["formulas tried"] += 1
    tally.counts[f"from {source}"] += 1

    try:
        graph = parse(text)
    except GradcheckError as err:
        tally.kinds[err.kind] += 1
        _presentable(err, text, tally, "parse")
        return
    except Exception:
        tally.fail("parse raised a non-GradcheckError", text)
        return
    tally.counts["parsed OK"] += 1

    if point is None:
        drawn = data.draw(S.points(graph.variables, allow_missing=False, allow_extra=False,
                                   huge_integers=False), label="point")
        point = {k: float(v) for k, v in drawn.items()}
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in point.items()}
    wrt = list(graph.variables)
    try:
        with np.errstate(all="ignore"):
            rev = reverse.gradient(graph, arrays, wrt)
            fwd = forward.gradient(graph, arrays, wrt)
        tally.counts["reverse+forward run"] += 1
        finite = all(math.isfinite(float(v)) for v in point.values())
        if finite and source == "smooth":
            for v in wrt:
                a, b = float(rev[v]), float(fwd[v])
                if math.isfinite(a) and math.isfinite(b) and abs(a - b) > 1e-8 * max(1.0, abs(a), abs(b)):
                    tally.counts["reverse/forward differ (smooth)"] += 1
                    tally.fail("reverse and forward disagree on a smooth formula", (text, point),
                               f"{v}: reverse {a!r}, forward {b!r}")
    except Exception:
        tally.fail("reverse/forward raised", (text, point))
        return

    # Sampled by a hash of the text: generation must depend on the data only (not on a
    # counter), and a drawn integer would not do (hypothesis favours 0 and boundary values).
    if check_every and zlib.crc32(text.encode("utf-8", "surrogatepass")) % check_every == 0:
        _full_check(data, text, graph.variables, point if source == "smooth" else None, tally)


def _full_check(data: st.DataObject, text: str, variables: tuple[str, ...],
                point: dict[str, float] | None, tally: Tally) -> None:
    if point is None:
        point = data.draw(S.points(variables), label="check point")
    tally.counts["full checks"] += 1
    try:
        report = check(text, point, symbolic_timeout=2.0, symbolic_memory=512 * 2**20)
    except GradcheckError as err:
        tally.check_kinds[f"error {err.kind}"] += 1
        _presentable(err, text, tally, "check")
        return
    except Exception:
        tally.fail("check raised a non-GradcheckError", (text, point))
        return
    tally.check_kinds["agree" if report.ok else "disagree"] += 1
    for d in report.diagnostics:
        tally.check_kinds[f"note {d.kind}"] += 1


def _fuzz_at(data: st.DataObject, tally: Tally) -> None:
    raw = data.draw(S.any_text(max_size=12), label="at text")
    item = raw if data.draw(st.booleans(), label="raw at") else f"x={raw}"
    tally.counts["--at texts tried"] += 1
    try:
        point = parse_assignments([item])
    except GradcheckError as err:
        tally.at_kinds[err.kind] += 1
        if any(not c.isprintable() for c in err.message):
            tally.fail("--at: control character in message", item, err.message)
        return
    except Exception:
        tally.fail("parse_assignments raised a non-GradcheckError", item)
        return
    tally.at_kinds["accepted"] += 1
    for name, value in point.items():
        if not (isinstance(value, float) and math.isfinite(value)):
            tally.fail("--at accepted a non-finite value", item, f"{name} = {value!r}")


def run(count: int, check_every: int, seed_value: int | None, max_seconds: float | None) -> Tally:
    tally = Tally()
    start = time.monotonic()

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            raise _TimeUp
        _fuzz_parse_and_ad(data, tally, check_every)
        _fuzz_at(data, tally)
        done = tally.counts["formulas tried"]
        if done and done % 10_000 == 0:
            print(f"  ... {done} formulas, {tally.counts['failures']} failures, "
                  f"{time.monotonic() - start:.0f} s", flush=True)

    if seed_value is not None:
        fuzz = seed(seed_value)(fuzz)
    try:
        fuzz()
    except _TimeUp:
        tally.counts["stopped by --max-seconds"] = 1
    tally.counts["seconds"] = round(time.monotonic() - start)
    return tally


def report(tally: Tally) -> int:
    def section(title: str, counter: collections.Counter[str]) -> None:
        print(title)
        for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {key:<40} {n}")

    section("counts:", tally.counts)
    section("parse: GradcheckError by kind:", tally.kinds)
    section("full check outcomes:", tally.check_kinds)
    section("--at outcomes:", tally.at_kinds)
    if tally.failures:
        print(f"\nFAILURES: {tally.counts['failures']} in {len(tally.failures)} distinct kinds")
        for (what, last), (n, text, detail) in tally.failures.items():
            print(f"\n--- {what} ({n} times): {last}\n    shortest input: {text[:400]}\n{detail}")
        return 1
    print("\nno failures")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="formulas to try (default 100000)")
    parser.add_argument("--check-every", type=int, default=500,
                        help="run the full check (SymPy included) on about one in N parsed "
                             "formulas (default 500; 0: never)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, for a repeatable run")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop drawing new work after this many seconds")
    args = parser.parse_args()
    print(f"fuzzing {args.count} formulas (full check on ~1 in {args.check_every} parsed)", flush=True)
    tally = run(args.count, args.check_every, args.seed, args.max_seconds)
    sys.exit(report(tally))


if __name__ == "__main__":
    main()
