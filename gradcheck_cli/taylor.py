"""The Taylor-remainder test: a check of a gradient that needs no step choice.

Convention (the test adjoint-model developers use): along a direction v,

    r(h) = |f(x + h·v) - f(x) - h·g·v|

is the remainder of the first-order Taylor expansion with the gradient g under test. If g is
the gradient, r(h) = h²/2 |vᵀ∇²f v| + O(h³) shrinks by 4 each time h halves: the observed
order log2(r(h)/r(h/2)) tends to 2 (to 3 where vᵀ∇²f v = 0). If g is wrong along v, the term
h·|(∇f - g)·v| remains and the order tends to 1. Whatever the step range, an order near 2 is
evidence for g and an order near 1 against it — no step has to be tuned.

Directions: a few random unit vectors (seeded, so a run can be repeated), each component scaled
by max(1, |x_i|) so the move is relative to each variable's size. The steps halve from
`h0` = 1e-2 twenty times (down to ~1e-8). Float rounding makes the remainder stop
shrinking once it reaches the rounding error of f: a pair of steps is used only where both
remainders are above NOISE · eps · (|f(x)| + |f(x + h·v)| + |h·g·v|), and the observed order
of a direction is the median of its last (smallest-h) usable orders, which are the most
asymptotic.

Verdict per direction: `pass` for an order >= 1.8 (or a remainder at rounding level for every
h: f is linear along v and g agrees), `fail` for an order <= 1.2, `inconclusive` between, or
when g·v or f is not finite. The test passes when every direction passes and fails when any
direction fails.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .errors import GradcheckError
from .graph import Graph
from .interpret import Values, evaluate_output, walk
from .render import json_number, to_ascii
from .reverse import gradient_from_values
from .trace import dname, num, one_point, resolve_output, step_names

H0 = 1e-2
HALVINGS = 60  # from 1e-2 down to ~1e-20: near a singularity the h² regime starts far below 1e-8
NOISE = 1e3  # a remainder within NOISE·eps of f's size is rounding, not Taylor
SHOWN_COMPONENTS = 8  # of a direction v, in the text (JSON has them all)
LAST = 4  # the order of a direction: median of its last LAST usable orders
PASS_ORDER, FAIL_ORDER = 1.8, 1.2


@dataclass(frozen=True)
class Direction:
    v: dict[str, float]
    slope: float  # g·v, the first-order term's coefficient
    steps: tuple[float, ...]
    remainders: tuple[float, ...]
    usable: tuple[bool, ...]  # the remainder is above rounding level
    orders: tuple[float | None, ...]  # log2(r(h)/r(h/2)) between consecutive steps; None: not usable
    order: float | None
    verdict: str  # pass, fail, inconclusive
    reason: str


@dataclass(frozen=True)
class TaylorResult:
    output_name: str
    point: dict[str, float]
    value: float
    gradient: dict[str, float]
    gradient_source: str  # "reverse" (the default) or "given"
    directions: tuple[Direction, ...]

    @property
    def order(self) -> float | None:
        """The worst (smallest) observed order over the directions."""
        orders = [d.order for d in self.directions if d.order is not None]
        return min(orders) if orders else None

    @property
    def verdict(self) -> str:
        verdicts = {d.verdict for d in self.directions}
        if "fail" in verdicts:
            return "fail"
        return "pass" if verdicts == {"pass"} else "inconclusive"


def taylor(
    graph: Graph,
    point: Mapping[str, Any],
    gradient: Mapping[str, float] | None = None,
    wrt: Sequence[str] | None = None,
    output: int | str | None = None,
    directions: int = 3,
    seed: int = 0,
    h0: float = H0,
    halvings: int = HALVINGS,
) -> TaylorResult:
    """The Taylor-remainder test of `gradient` (default: reverse mode's) at one point."""
    p = one_point(graph, point)
    out = resolve_output(graph, output)
    wrt = list(graph.variables if wrt is None else wrt)
    values = walk(graph, Values(p), upto=out)
    f0 = float(values[out])
    if gradient is None:
        g = {k: float(v) for k, v in gradient_from_values(graph, values, wrt, output=out).items()}
        source = "reverse"
    else:
        missing = [k for k in wrt if k not in gradient]
        if missing:
            raise GradcheckError("usage", f"the gradient to test has no entry for {', '.join(missing[:10])}.")
        g = {k: float(gradient[k]) for k in wrt}
        source = "given"
    rng = np.random.default_rng(seed)
    steps = h0 * 0.5 ** np.arange(halvings + 1)
    eps = float(np.finfo(np.float64).eps)
    found = []
    for _ in range(directions if wrt else 0):  # no variables: nothing to move, inconclusive
        r = rng.standard_normal(len(wrt))
        r /= np.linalg.norm(r) or 1.0
        v = {name: float(r[k] * max(1.0, abs(p.get(name, 0.0)))) for k, name in enumerate(wrt)}
        slope = math.fsum(g[k] * v[k] for k in wrt)
        moved = {**p, **{k: p.get(k, 0.0) + steps * v[k] for k in wrt}}
        with np.errstate(all="ignore"):
            f = np.broadcast_to(np.asarray(evaluate_output(graph, Values(moved), out), dtype=np.float64),
                                steps.shape)
            rem = np.abs(f - f0 - steps * slope)
            noise = NOISE * eps * (abs(f0) + np.abs(f) + np.abs(steps * slope))
        found.append(_judge(v, slope, steps, rem, noise, f0))
    return TaylorResult(step_names(graph, out).output_name, p, f0, g, source, tuple(found))


def _judge(v: dict[str, float], slope: float, steps: np.ndarray, rem: np.ndarray, noise: np.ndarray,
           f0: float) -> Direction:
    usable = np.isfinite(rem) & (rem > noise)
    orders: list[float | None] = []
    for k in range(len(steps) - 1):
        if usable[k] and usable[k + 1]:
            orders.append(math.log2(rem[k] / rem[k + 1]) / math.log2(steps[k] / steps[k + 1]))
        else:
            orders.append(None)
    got = [o for o in orders if o is not None]
    base = (v, slope, tuple(float(h) for h in steps), tuple(float(x) for x in rem),
            tuple(bool(u) for u in usable), tuple(orders))
    if not (math.isfinite(slope) and math.isfinite(f0)) or not np.all(np.isfinite(rem)):
        what = "g·v" if not math.isfinite(slope) else "f"
        return Direction(*base, None, "inconclusive", f"{what} is not finite along this direction")
    if not got:
        if not usable.any():
            return Direction(*base, None, "pass", "the remainder is at rounding level for every h: "
                             "f is linear along v and the gradient agrees")
        return Direction(*base, None, "inconclusive", "too few steps above rounding level to see an order")
    order = statistics.median(got[-LAST:])
    if order >= PASS_ORDER:
        return Direction(*base, order, "pass", f"the remainder shrinks like h^{order:.2f}: the gradient "
                         "is right along v")
    if order <= FAIL_ORDER:
        return Direction(*base, order, "fail", f"the remainder shrinks only like h^{order:.2f}: the "
                         "gradient is wrong along v (a right one gives h^2)")
    return Direction(*base, order, "inconclusive", f"order {order:.2f} is between 1 and 2")


# --------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------


def _order_text(o: float | None) -> str:
    return "—" if o is None else f"{o:.2f}"


def _rows(t: TaylorResult) -> tuple[list[str], list[list[str]]]:
    head = ["h"] + [f"r(h) along v{k + 1}" for k in range(len(t.directions))] + \
        [f"order v{k + 1}" for k in range(len(t.directions))]
    rows = []
    steps = t.directions[0].steps if t.directions else ()
    # the rows that say something: up to two past the last step above rounding level
    last = max((max((k for k, u in enumerate(d.usable) if u), default=0) for d in t.directions), default=0)
    for k, h in enumerate(steps[: last + 3]):
        row = [num(h, 3)]
        row += [num(d.remainders[k], 3) + ("" if d.usable[k] else " (rounding)") for d in t.directions]
        row += [_order_text(d.orders[k - 1]) if k else "" for d in t.directions]
        rows.append(row)
    return head, rows


def _summary(t: TaylorResult) -> list[str]:
    o = dname(t.output_name)
    lines = [f"Taylor remainder r(h) = |{o}(x + h·v) - {o}(x) - h·∇{o}·v|, gradient from "
             f"{'reverse mode' if t.gradient_source == 'reverse' else 'the caller'}"]
    for k, d in enumerate(t.directions):
        shown = list(d.v.items())[:SHOWN_COMPONENTS]  # 30,000 variables must not be 30,000 numbers
        vs = ", ".join(f"{name}: {num(c, 3)}" for name, c in shown) + (
            f", … and {len(d.v) - len(shown):,} more" if len(d.v) > len(shown) else "")
        lines.append(f"v{k + 1} = ({vs}): order {_order_text(d.order)}, {d.verdict}: {d.reason}")
    lines.append(f"observed order {_order_text(t.order)} (2 for a right gradient, 1 for a wrong one): "
                 f"{t.verdict}")
    return lines


def to_text(t: TaylorResult, ascii_only: bool = False) -> str:
    head, rows = _rows(t)
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    table = "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in [head, *rows])
    text = "\n".join(_summary(t)[:1]) + "\n" + table + "\n" + "\n".join(_summary(t)[1:]) + "\n"
    return to_ascii(text) if ascii_only else text


def to_rich(t: TaylorResult, ascii_only: bool = False) -> RenderableType:
    def txt(s: str, style: str = "") -> Text:
        return Text(to_ascii(s) if ascii_only else s, style=style)

    head, rows = _rows(t)
    summary = _summary(t)
    table = Table(box=box.ASCII2 if ascii_only else box.SIMPLE_HEAD, title=txt(summary[0]),
                  title_justify="left")
    for h in head:
        table.add_column(txt(h), justify="right", no_wrap=True)
    for r in rows:
        table.add_row(*(txt(c, "dim" if "rounding" in c else "") for c in r))
    style = {"pass": "bold green", "fail": "bold red"}.get(t.verdict, "bold yellow")
    return Group(table, *(txt(line) for line in summary[1:-1]), txt(summary[-1], style))


def to_markdown(t: TaylorResult) -> str:
    head, rows = _rows(t)
    summary = _summary(t)
    lines = [f"### Taylor test of `∇{dname(t.output_name)}`", "", summary[0].replace("|", "\\|"), ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---:"] * len(head)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    lines += [f"- {line}" for line in summary[1:-1]]
    lines += ["", f"**{summary[-1]}**", ""]
    return "\n".join(lines)


def to_dict(t: TaylorResult) -> dict[str, Any]:
    """JSON-able (strict: non-finite numbers are "nan", "inf", "-inf"; a missing order null)."""
    return {
        "kind": "taylor", "output": t.output_name,
        "point": {k: json_number(x) for k, x in t.point.items()}, "value": json_number(t.value),
        "gradient": {k: json_number(x) for k, x in t.gradient.items()},
        "gradient_source": t.gradient_source,
        "order": None if t.order is None else json_number(t.order), "verdict": t.verdict,
        "directions": [{
            "v": {k: json_number(x) for k, x in d.v.items()}, "slope": json_number(d.slope),
            "steps": list(d.steps), "remainders": [json_number(r) for r in d.remainders],
            "usable": list(d.usable),
            "orders": [None if o is None else json_number(o) for o in d.orders],
            "order": None if d.order is None else json_number(d.order),
            "verdict": d.verdict, "reason": d.reason,
        } for d in t.directions],
    }
