"""Accuracy of every method at default settings, against the exact derivative.

For each formula of a corpus (lecture examples, activations, smooth, wide, deep and
ill-conditioned families) and each variable, the exact derivative is SymPy's, evaluated with
mpmath to 30 significant digits at the float64 point; every method's *true* relative error is
measured against it (absolute where the derivative is 0). For the finite-difference methods it
also counts how often their own error estimate really bounds the true error (estimate ≥ true
error), and how often 4× the estimate does (the verdict rule).

    python benchmarks/accuracy.py            # markdown table on stdout
    python benchmarks/accuracy.py --json     # raw numbers

Accuracy, not speed: the numbers do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import mpmath
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradcheck_cli import finite, forward, parse, reverse, symbolic  # noqa: E402

WIDE = " + ".join(f"sin({k}*x + {k}*y/10)" for k in range(1, 41))
DEEP = "x"
for _ in range(40):
    DEEP = f"sin(0.9*{DEEP} + 0.1)"

CORPUS: list[tuple[str, str, dict[str, float]]] = [
    # lecture examples
    ("lecture", "cos(sin(x**2)+3*x**2)", {"x": 1.5}),
    ("lecture", "(x+y)*z", {"x": -2, "y": 5, "z": -4}),
    ("lecture", "1/(1+exp(-(w0*x0+w1*x1+w2)))", {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}),
    ("lecture", "exp(x*z) + x*z/log(x) + sin(log(x))/exp(x*z)", {"x": 2, "z": 3}),
    ("lecture", "0.5*(v0*tanh(w00*a0 + w01*a1) + v1*tanh(w10*a0 + w11*a1) - y)**2",
     {"a0": 1.0, "a1": 0.1, "w00": 1, "w01": -3, "w10": 0.2, "w11": 1, "v0": 1, "v1": -1, "y": 0.5}),
    ("lecture", "t*log(sigmoid(a*x)) + (1-t)*log(1-sigmoid(a*x))", {"t": 1, "a": 0.5, "x": 2.0}),
    # activations
    ("activation", "sigmoid(x)", {"x": 2.0}),
    ("activation", "sigmoid(x)", {"x": -30.0}),
    ("activation", "softplus(x)", {"x": 3.0}),
    ("activation", "swish(x)", {"x": -1.5}),
    ("activation", "gelu(x)", {"x": 0.7}),
    ("activation", "gelu(x)", {"x": -4.0}),
    ("activation", "tanh(x)", {"x": 0.3}),
    ("activation", "elu(x)", {"x": -0.5}),
    ("activation", "leaky_relu(x)", {"x": -2.0}),
    ("activation", "relu(x)", {"x": 1.3}),
    ("activation", "hard_swish(x)", {"x": 1.2}),
    ("activation", "erf(x)", {"x": 0.4}),
    # smooth
    ("smooth", "sin(x)*exp(y)", {"x": 0.7, "y": -0.3}),
    ("smooth", "log(1+x**2)", {"x": 2.5}),
    ("smooth", "atan(x/y)", {"x": 1.0, "y": 3.0}),
    ("smooth", "sqrt(x**2+y**2)", {"x": 3.0, "y": 4.0}),
    ("smooth", "x**3 - 2*x*y + y**2", {"x": 1.1, "y": -0.4}),
    ("smooth", "sin(x)", {"x": 1e6}),
    ("smooth", "exp(-x**2/2)", {"x": 0.01}),
    # wide and deep
    ("wide", WIDE, {"x": 0.3, "y": 0.2}),
    ("deep", DEEP, {"x": 0.5}),
    # ill-conditioned
    ("ill-conditioned", "tan(x)", {"x": 1.5707}),
    ("ill-conditioned", "exp(40*x)", {"x": 1.0}),
    ("ill-conditioned", "log(x)", {"x": 1e-8}),
    ("ill-conditioned", "1/(x-1)", {"x": 1.000001}),
    ("ill-conditioned", "x**20", {"x": 3.0}),
    ("ill-conditioned", "sin(1/x)", {"x": 0.01}),
]

FD_METHODS = ("central", "richardson", "complex")
METHODS = ("reverse", "forward", "symbolic", *FD_METHODS)


def true_error(g: float, exact: mpmath.mpf) -> float:
    if not math.isfinite(g):
        return math.inf
    with mpmath.workdps(40):
        diff = abs(mpmath.mpf(g) - exact)
        return float(diff / abs(exact)) if exact != 0 else float(diff)


def run_case(expr: str, point: dict[str, float]) -> list[dict[str, object]]:
    graph = parse(expr)
    wrt = list(graph.variables)
    arrays = {k: np.asarray(float(v)) for k, v in point.items()}
    stages = dict(symbolic.stages(graph, {k: float(v) for k, v in point.items()}, wrt, False, 30))
    exact = {v: mpmath.mpf(stages["exact"][1][v]) for v in wrt}  # (point, digits, why)
    results: dict[str, tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]] = {
        "reverse": (reverse.gradient(graph, arrays, wrt), None),
        "forward": (forward.gradient(graph, arrays, wrt), None),
        "symbolic": ({v: np.asarray(g) for v, g in stages["float"].items()}, None),
    }
    for name, fn in (("central", finite.central), ("richardson", finite.richardson),
                     ("complex", finite.complex_step)):
        r = fn(graph, arrays, wrt)
        results[name] = (r.gradient, r.estimate)
    rows = []
    for v in wrt:
        for name, (grad, est) in results.items():
            if grad is None:
                rows.append({"expr": expr, "var": v, "method": name, "ran": False})
                continue
            g = float(grad[v])
            err = true_error(g, exact[v])
            abs_err = float(abs(mpmath.mpf(g) - exact[v])) if math.isfinite(g) else math.inf
            row: dict[str, object] = {"expr": expr, "var": v, "method": name, "ran": True,
                                      "error": err}
            if est is not None:
                e = float(est[v])
                row["bounded"] = abs_err <= e
                row["bounded4"] = abs_err <= 4 * e + 8 * 2.2e-16 * abs(float(exact[v]))
            rows.append(row)
    return rows


def summarise(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    out = []
    for m in METHODS:
        mine = [r for r in rows if r["method"] == m]
        ran = [r for r in mine if r["ran"]]
        errors = sorted(float(r["error"]) for r in ran)  # type: ignore[arg-type]
        entry: dict[str, object] = {
            "method": m,
            "values": len(mine),
            "ran": len(ran),
            "median": statistics.median(errors) if errors else None,
            "worst": errors[-1] if errors else None,
        }
        if m in FD_METHODS and ran:
            entry["bounded"] = sum(bool(r["bounded"]) for r in ran) / len(ran)
            entry["bounded4"] = sum(bool(r["bounded4"]) for r in ran) / len(ran)
        out.append(entry)
    return out


def markdown(summary: list[dict[str, object]], cases: int) -> str:
    def e(x: object) -> str:
        return "—" if x is None else f"{float(x):.1e}"  # type: ignore[arg-type]

    def pct(x: object) -> str:
        return "—" if x is None else f"{100 * float(x):.0f}%"  # type: ignore[arg-type]

    lines = [
        f"{cases} formulas, true error against the exact derivative (30 digits):",
        "",
        "| method | values | ran | median error | worst error "
        "| estimate ≥ true error | 4×estimate ≥ true error |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['method']} | {s['values']} | {s['ran']} | {e(s['median'])} | {e(s['worst'])} "
            f"| {pct(s.get('bounded'))} | {pct(s.get('bounded4'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print raw rows and summary as JSON")
    args = parser.parse_args()
    sys.setrecursionlimit(20000)
    rows: list[dict[str, object]] = []
    for _family, expr, point in CORPUS:
        rows += run_case(expr, point)
    summary = summarise(rows)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=1, default=str))
    else:
        print(markdown(summary, len(CORPUS)))
        worst = sorted((r for r in rows if r["ran"]), key=lambda r: -float(r["error"]))[:8]  # type: ignore[arg-type]
        print("\nWorst true errors:\n")
        for r in worst:
            print(f"- {r['method']}: {float(r['error']):.1e} for d/d{r['var']} of {str(r['expr'])[:60]}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
