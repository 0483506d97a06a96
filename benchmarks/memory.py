"""Peak memory and time of every method on the largest formulas the documented limits allow.

    python benchmarks/memory.py                 # every case (about 30 minutes on 2 cores)
    python benchmarks/memory.py --quick         # the small cases only
    python benchmarks/memory.py --only wide     # cases whose name contains "wide"

Each (case, method) runs in a fresh Python process, capped by RLIMIT_AS (--memory, default
8 GiB) and a wall-clock limit (--time, default 120 s); a run that hits either is recorded as
over the limit, never left out. The child parses the formula, evaluates it once (what every
check does first: "base" is the resident memory then, "prepared_peak" the peak so far), runs the
one method on one point, and reports its own peak resident memory (VmHWM) and the method's
time. Printed as a markdown table and written to benchmarks/memory.json.

Cases:
- chain: a sum of n terms sin(c_i*x + y)*z (3 variables, a graph as deep as it is long), at
  10^3, 10^4, 10^5 nodes and at the largest length --max-length allows (2,000,000 characters);
- relu chain: the same with relu for sin (100,000 kinks, 3 variables), at the longest length;
- wide: sum of sin(x_i)*x_{i+1}, 10,000 and 30,000 variables;
- max: max(x_1, ..., x_n), all tied (at 1.0), n = 3,000 and 10,000;
- relu: relu(x_1) + ... + relu(x_n) at 0, n = 6,000 and 30,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("reverse", "forward", "central", "richardson", "complex", "kinks")
MAX_LENGTH = 2_000_000


def chain(nodes: int, fn: str = "sin") -> tuple[str, dict[str, float]]:
    """About `nodes` graph nodes (6 a term), or the longest that fits MAX_LENGTH if nodes is 0."""
    terms = []
    length = 0
    i = 0
    while True:
        t = f"{fn}({1 + i * 1e-6:.7f}*x+y)*z"
        if nodes and 6 * len(terms) >= nodes:
            break
        if not nodes and length + len(t) + 1 > MAX_LENGTH:
            break
        terms.append(t)
        length += len(t) + 1
        i += 1
    return "+".join(terms), {"x": 0.7, "y": 0.3, "z": 1.1}


def wide(n: int) -> tuple[str, dict[str, float]]:
    point = {f"x{i}": 0.5 + i * 1e-5 for i in range(n)}
    return "+".join(f"sin(x{i})*x{(i + 1) % n}" for i in range(n)), point


def max_tied(n: int) -> tuple[str, dict[str, float]]:
    return "max(" + ",".join(f"x{i}" for i in range(n)) + ")", {f"x{i}": 1.0 for i in range(n)}


def relu_sum(n: int) -> tuple[str, dict[str, float]]:
    return "+".join(f"relu(x{i})" for i in range(n)), {f"x{i}": 0.0 for i in range(n)}


CASES = {
    "chain 1e3": lambda: chain(1_000),
    "chain 1e4": lambda: chain(10_000),
    "chain 1e5": lambda: chain(100_000),
    "chain max-length": lambda: chain(0),
    "relu chain max-length": lambda: chain(0, "relu"),
    "wide 10k": lambda: wide(10_000),
    "wide 30k": lambda: wide(30_000),
    "max 3k tied": lambda: max_tied(3_000),
    "max 10k tied": lambda: max_tied(10_000),
    "relu 6k at 0": lambda: relu_sum(6_000),
    "relu 30k at 0": lambda: relu_sum(30_000),
}
QUICK = ("chain 1e3", "chain 1e4", "max 3k tied", "relu 6k at 0")


def _status(key: str) -> int:
    """VmHWM or VmRSS of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(case: str, method: str) -> None:
    import numpy as np

    from gradcheck_cli import kinks
    from gradcheck_cli.graph import evaluate
    from gradcheck_cli.methods import REGISTRY, Context
    from gradcheck_cli.parse import parse

    expr, point = CASES[case]()
    t0 = time.perf_counter()
    graph = parse(expr)
    arrays = {v: np.asarray([x], dtype=np.float64) for v, x in point.items()}
    wrt = list(point)
    values = evaluate(graph, arrays, np.float64)
    prepare = time.perf_counter() - t0
    base, prepared_peak = _status("VmRSS"), _status("VmHWM")
    t0 = time.perf_counter()
    if method == "kinks":
        kinks.analyse(graph, arrays, wrt)
    else:
        res = REGISTRY[method].run(Context(graph, arrays, wrt, np.float64, None, values))
        if res.values is None:
            print(json.dumps({"note": res.note}), flush=True)
    seconds = time.perf_counter() - t0
    print(json.dumps({"chars": len(expr), "nodes": len(graph), "variables": len(wrt),
                      "prepare_s": prepare, "seconds": seconds, "base": base,
                      "prepared_peak": prepared_peak,
                      "peak": _status("VmHWM")}), flush=True)


def run(case: str, method: str, memory: int, limit: float) -> dict:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", case, method], capture_output=True,
                              text=True, timeout=limit, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return {"case": case, "method": method, "status": f"over the time limit ({limit:.0f} s)"}
    out: dict = {"case": case, "method": method, "wall": time.perf_counter() - started}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    if proc.returncode != 0 or "peak" not in out:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        memory_error = "MemoryError" in proc.stderr or proc.returncode in (-9, -11) \
            or "Unable to allocate" in proc.stderr
        out["status"] = (f"over the memory limit ({memory >> 30} GiB)" if memory_error
                         else f"failed (exit {proc.returncode}): {tail[:120]}")
    else:
        out["status"] = "ok" if "note" not in out else f"ok, did not run: {out['note'][:80]}"
    return out


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def table(rows: list[dict]) -> str:
    lines = ["| case | chars | nodes | variables | method | time (s) | peak RSS (MiB) | over base (MiB) "
             "| status |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for r in rows:
        ok = "peak" in r
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["case"], f"{r['chars']:,}" if "chars" in r else "", f"{r['nodes']:,}" if "nodes" in r else "",
            f"{r['variables']:,}" if "variables" in r else "", r["method"],
            f"{r['seconds']:.2f}" if ok else "—", _mib(r["peak"]) if ok else "—",
            _mib(r["peak"] - r["base"]) if ok else "—", r["status"]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="cases whose name contains this")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--memory", type=float, default=8.0, help="GiB of address space per run")
    ap.add_argument("--time", type=float, default=120.0, help="seconds per run")
    ap.add_argument("--out", default=str(Path(__file__).with_name("memory.json")))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    cases = [c for c in (QUICK if args.quick else CASES) if args.only is None or args.only in c]
    rows = []
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for case in cases:
        for method in args.methods.split(","):
            r = run(case, method, int(args.memory * 2**30), args.time)
            rows.append(r)
            print(f"{case:18} {method:10} {r.get('seconds', float('nan')):8.2f} s "
                  f"{_mib(r['peak']) if 'peak' in r else '—':>8} MiB  {r['status']}", flush=True)
    # runs of other cases from earlier invocations are kept
    done = {(x["case"], x["method"]) for x in rows}
    kept = [r for r in previous.get("runs", []) if (r["case"], r["method"]) not in done]
    order = {c: i for i, c in enumerate(CASES)}
    everything = sorted(kept + rows, key=lambda r: (order.get(r["case"], 99), METHODS.index(r["method"])
                                                    if r["method"] in METHODS else 99))
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    Path(args.out).write_text(json.dumps({"machine": machine,
                                          "memory_limit_gib": args.memory, "time_limit_s": args.time,
                                          "runs": everything}, indent=1) + "\n")
    print()
    print(table(everything))


if __name__ == "__main__":
    main()
