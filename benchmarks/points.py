"""Points scaling: what checking the card formula costs per point, method by method.

The formula is the lecture card's f(x) = cos(sin(x**2) + 3*x**2), one variable, evaluated on
K = 10^2, 10^3, ..., 10^6 points x ~ Uniform(-2, 2) (`np.random.default_rng(0)`), float64. Every
method computes the whole batch at once through the method registry (`methods.REGISTRY[name].run`
on a `methods.Context`), no Python loop over points:

    reverse        evaluate(graph, pts) + run(ctx with those values)   (reverse reuses them)
    forward, central, richardson, complex
                   run(ctx with values=None)                           (they evaluate themselves)
    symbolic       symbolic.evaluate_float(prep, pts) only; `symbolic.prepare` (SymPy diff +
                   lambdify, once per formula) is timed separately and reported as a note
    one evaluation evaluate(graph, pts) alone: every node's value, no derivative

How to read it: each cell is a RATIO, the method's median time over the median time of the
hand-written numpy baseline on the same points,

    t = x*x; s = np.sin(t); u = s + 3*t; f = np.cos(u); fp = -np.sin(u)*(np.cos(t)*2*x + 6*x)

(f and f' together), the two measured interleaved (baseline, method, baseline, method, ...) in
the same process, so load on the shared machine hits both alike. "2.0×" = twice the cost of
writing f and f' by hand in numpy. At small K both are dominated by per-call Python overhead
(the ratio is large and says little about arithmetic); at large K the ratio is the work per
point. The baseline's absolute time is the last row; the first row times the baseline against
itself, so its distance from 1.00× is the noise of the machine at the time. Medians of several
repeats, each repeat timing enough calls to last >= ~20 ms (fewer repeats at large K, and the
cell's first call counts as a repeat when it is slow).

Each (method, K) cell runs in a fresh subprocess with its address space capped at the process's
size + 6 GiB (RLIMIT_AS) and the first call limited to 120 s (SIGALRM): a cell that hits either
is skipped, and the table says so. The memory column is the growth of peak RSS (ru_maxrss) over
the method's first call, after imports and the points exist, and its ratio to hand numpy's.
Correctness is checked once per cell: max relative error of the method's df/dx against the
hand-written fp, over points where |fp| >= 1e-6 max|fp| (central ~1e-6 and richardson ~1e-10
are expected: finite differences).

The package is copied to a temporary directory when the run starts and every subprocess imports
that copy, so the whole run measures one version even while the package is being edited; the
JSON records the git commit and which package files differed from it.

    python benchmarks/points.py                     # K up to 10^6, about 3-5 minutes
    python benchmarks/points.py --max-points 100000
    python benchmarks/points.py --quick             # K up to 10^4, smoke run
    python benchmarks/points.py --json /tmp/points.json

Writes benchmarks/points.json (absolute seconds, ratios, errors, memory, skips, versions).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FORMULA = "cos(sin(x**2)+3*x**2)"
ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "gradcheck_cli"
METHODS = ("reverse", "forward", "symbolic", "central", "richardson", "complex")
ROWS = ("one evaluation", *METHODS)
MEMORY_CAP = 6 * 2**30  # bytes of address space a cell may add
FIRST_CALL_LIMIT = 120  # seconds
SAMPLE_SECONDS = 0.02  # one repeat times enough calls to last about this long
CELL_BUDGET = 20.0  # seconds of repeats per cell, beyond the first call (at least MIN_REPEATS)
MIN_REPEATS = 3
REL_FLOOR = 1e-6  # relative error over points with |fp| >= REL_FLOOR * max|fp|


def repeats_for(k: int, quick: bool) -> int:
    """Repeats per cell: fewer for big K (each is slower and less noisy)."""
    if quick:
        return 5
    return 15 if k <= 1_000 else 9 if k <= 10_000 else 7 if k <= 100_000 else 5


def points(k: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-2, 2, k)


def baseline(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hand-written numpy f and f'."""
    t = x * x
    s = np.sin(t)
    u = s + 3 * t
    f = np.cos(u)
    fp = -np.sin(u) * (np.cos(t) * 2 * x + 6 * x)
    return f, fp


# ------------------------------------------------------------------------------ worker (one cell)


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _sample(fn: Callable[[], Any], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def _rel_error(g: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    g = np.asarray(g, dtype=np.float64)
    with np.errstate(all="ignore"):
        scale = float(np.max(np.abs(ref)))
        mask = np.abs(ref) >= REL_FLOOR * scale
        rel = np.abs(g[mask] - ref[mask]) / np.abs(ref[mask])
        norm = float(np.max(np.abs(g - ref))) / scale if scale else float("nan")
    return {"max_rel": float(np.max(rel)) if rel.size else float("nan"), "normwise": norm,
            "nonfinite": int(np.count_nonzero(~np.isfinite(g)))}


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one (method, K) cell; returns a JSON-able dict."""
    import gradcheck_cli
    from gradcheck_cli import parse
    from gradcheck_cli.graph import evaluate
    from gradcheck_cli.methods import REGISTRY, Context

    name, k, quick = spec["method"], spec["k"], spec["quick"]
    out: dict[str, Any] = {"method": name, "k": k, "package": gradcheck_cli.__file__}
    graph = parse(FORMULA)
    x = points(k)
    pts = {"x": x}

    if name == "numpy":
        def run() -> Any:
            return baseline(x)

        def grad(r: Any) -> np.ndarray:
            return r[1]
    elif name == "one evaluation":
        def run() -> Any:
            return evaluate(graph, pts)

        def grad(r: Any) -> np.ndarray:
            return r[graph.output]  # f, not f': checked against the hand-written f
    elif name == "symbolic":
        from gradcheck_cli import symbolic

        t0 = time.perf_counter()
        prep = symbolic.prepare(graph, ["x"])
        out["prepare_seconds"] = time.perf_counter() - t0

        def run() -> Any:
            return symbolic.evaluate_float(prep, pts)

        def grad(r: Any) -> np.ndarray:
            return r["x"]
    elif name == "reverse":
        method = REGISTRY[name]

        def run() -> Any:
            values = evaluate(graph, pts)
            return method.run(Context(graph, pts, ["x"], np.float64, None, values))

        def grad(r: Any) -> np.ndarray:
            return r.values["x"]
    else:
        method = REGISTRY[name]
        ctx = Context(graph, pts, ["x"], np.float64, None, None)

        def run() -> Any:
            return method.run(ctx)

        def grad(r: Any) -> np.ndarray:
            if r.values is None:
                raise RuntimeError(f"{name} returned no values: {r.note}")
            return r.values["x"]

    # First call: memory, the time limit, correctness.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)  # the soft limit only: it can be restored
    cap = _vm_size() + MEMORY_CAP
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    signal.signal(signal.SIGALRM, _on_alarm)
    rss0 = _maxrss()
    signal.alarm(FIRST_CALL_LIMIT)
    t0 = time.perf_counter()
    try:
        result = run()
    except _Timeout:
        out["skip"] = f"first call over {FIRST_CALL_LIMIT} s"
        return out
    except MemoryError:
        out["skip"] = f"over {MEMORY_CAP / 2**30:.0f} GiB of address space"
        return out
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    first = time.perf_counter() - t0
    out["first_call_seconds"] = first
    out["peak_rss_growth_bytes"] = _maxrss() - rss0
    f_ref, fp_ref = baseline(x)
    out["error"] = _rel_error(grad(result), f_ref if name == "one evaluation" else fp_ref)
    del result

    # Repeats, interleaved with the baseline.
    def number_for(fn: Callable[[], Any]) -> int:
        one = _sample(fn, 1)
        return max(1, math.ceil(SAMPLE_SECONDS / max(one, 1e-9)))

    n_base = number_for(lambda: baseline(x))
    n_meth = 1 if first > SAMPLE_SECONDS else number_for(run)
    per_repeat = first * n_meth + SAMPLE_SECONDS  # the method's calls, then the baseline's
    repeats = max(MIN_REPEATS, min(repeats_for(k, quick), int(CELL_BUDGET / per_repeat)))
    base_t: list[float] = []
    meth_t: list[float] = []
    if first > 2.0:  # a slow first call is a fair sample: warm-up is negligible next to it
        meth_t.append(first)
        base_t.append(_sample(lambda: baseline(x), n_base))
    while len(meth_t) < repeats:
        base_t.append(_sample(lambda: baseline(x), n_base))
        meth_t.append(_sample(run, n_meth))
    out.update(
        repeats=len(meth_t), calls_per_repeat={"method": n_meth, "baseline": n_base},
        method_seconds=meth_t, baseline_seconds=base_t,
        method_median=statistics.median(meth_t), baseline_median=statistics.median(base_t),
    )
    out["ratio"] = out["method_median"] / out["baseline_median"]
    out["paired_ratio_median"] = statistics.median(m / b for m, b in zip(meth_t, base_t))
    return out


# ------------------------------------------------------------------------------ driver


def _snapshot(dest: Path) -> dict[str, Any]:
    """Copy the package to dest; say which commit it is and which files differ from it."""
    shutil.copytree(ROOT / PACKAGE, dest / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for p in sorted((dest / PACKAGE).rglob("*.py")):
        digest.update(p.relative_to(dest).as_posix().encode() + b"\0" + p.read_bytes())
    info: dict[str, Any] = {"sha256": digest.hexdigest()}
    try:
        git = ["git", "-C", str(ROOT)]
        info["commit"] = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                                        check=True).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", PACKAGE], capture_output=True,
                                text=True, check=True).stdout
        info["differs_from_commit"] = status.splitlines()  # git status --porcelain: "XY path"
    except (OSError, subprocess.CalledProcessError) as exc:
        info["git"] = f"unavailable: {exc}"
    return info


def run_cell(method: str, k: int, quick: bool, pythonpath: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": pythonpath + os.pathsep + os.environ.get("PYTHONPATH", "")}
    spec = json.dumps({"method": method, "k": k, "quick": quick})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", spec]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=FIRST_CALL_LIMIT + 4 * CELL_BUDGET + 60)
    except subprocess.TimeoutExpired:
        return {"method": method, "k": k, "skip": "subprocess timed out"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"method": method, "k": k, "skip": f"worker failed: {tail[0]}"}
    return json.loads(lines[-1])


def _ratio(r: float) -> str:
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×" if r < 100 else f"{r:.0f}×"


def _seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _bytes(b: float) -> str:
    return f"{b / 2**20:.1f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def _skip_cell(cell: dict[str, Any]) -> str:
    return f"skipped ({cell['skip']})"


def report(cells: dict[tuple[str, int], dict[str, Any]], ks: list[int]) -> str:
    head = "| method | " + " | ".join(f"K = 10^{round(math.log10(k))}" if k == 10 ** round(math.log10(k))
                                      else f"K = {k}" for k in ks) + " |"
    lines = ["Cost relative to hand-written numpy f + f' (median time ratio; lower is better)", "",
             head, "|" + "---|" * (len(ks) + 1)]
    for row in ("numpy", *ROWS):
        cs = [cells[row, k] for k in ks]
        label = "numpy vs itself (noise)" if row == "numpy" else row
        lines.append(f"| {label} | " + " | ".join(
            _skip_cell(c) if "skip" in c else _ratio(c["ratio"]) for c in cs) + " |")
    base = [statistics.median([c["baseline_median"] for (m, kk), c in cells.items()
                               if kk == k and "baseline_median" in c] or [math.nan]) for k in ks]
    lines.append("| *numpy baseline (absolute)* | " + " | ".join(_seconds(b) for b in base) + " |")

    kmax = ks[-1]
    lines += ["", f"At K = {kmax}: peak RSS growth over the first call (and ÷ hand numpy's), "
              "first-call time, worst error (max relative error vs hand-written f'; f for one "
              "evaluation, over all K)", "",
              "| method | peak RSS growth | ÷ numpy's | first call | max rel error |",
              "|---|---|---|---|---|"]
    base_mem = cells["numpy", kmax].get("peak_rss_growth_bytes")
    for row in ("numpy", *ROWS):
        c = cells[row, kmax]
        errs = [cells[row, k]["error"]["max_rel"] for k in ks if "error" in cells[row, k]]
        err = f"{max(errs):.1e}" if errs else "—"
        if "skip" in c:
            lines.append(f"| {row} | {_skip_cell(c)} | — | — | {err} |")
        else:
            mem = c["peak_rss_growth_bytes"]
            times = _ratio(mem / base_mem) if base_mem else "—"
            lines.append(f"| {row} | {_bytes(mem)} | {times} | {_seconds(c['first_call_seconds'])} | {err} |")
    prep = [cells["symbolic", k].get("prepare_seconds") for k in ks]
    prep = [p for p in prep if p is not None]
    if prep:
        lines += ["", f"symbolic: one-time SymPy prepare (diff + lambdify, not in the ratios): "
                  f"median {_seconds(statistics.median(prep))} over {len(prep)} fresh processes"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-points", type=int, default=10**6, help="largest K (powers of 10 from 100)")
    ap.add_argument("--quick", action="store_true", help="K up to 10^4, fewer repeats (smoke run)")
    ap.add_argument("--json", type=Path, default=Path(__file__).with_suffix(".json"),
                    help="where to write the results (default: benchmarks/points.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    top = min(args.max_points, 10**4) if args.quick else args.max_points
    ks = [10**e for e in range(2, 10) if 10**e <= top] or [max(1, top)]
    start = time.perf_counter()
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gradcheck_points_") as tmp:
        snapshot = _snapshot(Path(tmp))
        for k in ks:
            for row in ("numpy", *ROWS):
                c = run_cell(row, k, args.quick, tmp)
                cells[row, k] = c
                what = c.get("skip") or f"{_ratio(c['ratio'])} ({c['repeats']} repeats)"
                print(f"  K={k:>8} {row:<15} {what}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start

    text = report(cells, ks)
    print(text)
    print(f"\n(total {elapsed:.0f} s; JSON: {args.json})")

    import sympy

    payload = {
        "benchmark": "points scaling", "formula": FORMULA,
        "points": "np.random.default_rng(0).uniform(-2, 2, K), float64",
        "baseline": "t = x*x; s = sin(t); u = s + 3*t; f = cos(u); fp = -sin(u)*(cos(t)*2*x + 6*x)",
        "ratio": "median method seconds / median baseline seconds, interleaved in the same process",
        "rel_error": f"max |g - fp| / |fp| over |fp| >= {REL_FLOOR:g} max|fp| (one evaluation: vs f)",
        "memory": "ru_maxrss growth over the first call, fresh process per cell",
        "limits": {"address_space_added_bytes": MEMORY_CAP, "first_call_seconds": FIRST_CALL_LIMIT},
        "ks": ks, "quick": args.quick, "total_seconds": elapsed,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "sympy": sympy.__version__,
                     "platform": platform.platform(), "cpus": os.cpu_count()},
        "package_snapshot": snapshot,
        "skips": [{"method": m, "k": k, "why": c["skip"]} for (m, k), c in cells.items() if "skip" in c],
        "cells": [cells[m, k] for k in ks for m in ("numpy", *ROWS)],
        "table": text,
    }
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
