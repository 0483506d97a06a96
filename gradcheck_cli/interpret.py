"""The one interpreter: a walk over the graph's nodes in topological order, and the same walk
reversed for the backward sweep.

Every method differs only in *what it carries* through the walk, never in the walk itself
(the shape of JAX's `eval_jaxpr`): an `Interpretation` says what a variable, a constant and an
operation become. The carriers are

- `Values`: numpy arrays, the batch of points on the leading axis (evaluation);
- `Shifted`: `Values` with one variable replaced (finite differences), optionally evaluated in
  complex arithmetic where it depends on that variable (the complex step) and with every
  rounded result moved by a chosen amount (the rounding model of the error estimates);
- `dual.Duals`: dual numbers, value and tangents (forward mode, and the one-sided directional
  sweeps of the kink analysis);
- in other modules: SymPy expressions (`symbolic.to_sympy`) and formula text
  (`explain.node_texts`).

A node kind is added in one place: `walk` dispatches on `var`, `const` and operations, and an
operation's meaning is its entry in `rules.RULES`.

`backward` is the reversed walk of reverse-mode AD. It offers every edge it crosses to an
optional observer (node, argument, upstream adjoint, local partial, contribution, the
argument's adjoint after adding it), so the step-by-step trace, graph pictures and
explanations read the real sweep instead of running another. Zero convention, shared with
forward mode: a structurally zero adjoint (None: the node does not lead to the output)
contributes nothing; a numeric zero multiplies like any number, so 0 · ∞ shows up as nan in
both modes and can be explained.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Container, Mapping, Sequence
from fractions import Fraction
from typing import Any, Protocol, TypeVar

import numpy as np

from .graph import Graph, Node
from .rules import RULES

T = TypeVar("T")


class Interpretation(Protocol[T]):
    """What a walk carries: how a variable, a constant and an operation are interpreted."""

    def var(self, i: int, node: Node) -> T: ...

    def const(self, i: int, node: Node) -> T: ...

    def op(self, i: int, node: Node, args: tuple[T, ...]) -> T: ...


def walk(
    graph: Graph,
    interp: Interpretation[T],
    *,
    upto: int | None = None,
    keep: Container[int] | None = None,
) -> list[T]:
    """Interpret every node (up to `upto`), children before parents.

    With `keep`, a value is dropped (set to None) after its last use unless its index is in
    `keep`: evaluating 10⁵ nodes at 10⁶ points then holds only the live values.

    Plain `Values` at one point take the scalar fast path (`float_walk`): the same values,
    bit for bit, computed with Python floats instead of one numpy call per node."""
    n = len(graph.nodes) if upto is None else upto + 1
    if type(interp) is Values:
        fast = _point_values(graph, interp, n, keep)
        if fast is not None:
            return fast  # type: ignore[return-value]
    out: list[Any] = [None] * n
    last = graph.last_use if keep is not None else None
    with np.errstate(all="ignore"):
        for i in range(n):
            node = graph.nodes[i]
            if node.op == "var":
                out[i] = interp.var(i, node)
            elif node.op == "const":
                out[i] = interp.const(i, node)
            else:
                out[i] = interp.op(i, node, tuple(out[a] for a in node.args))
                if last is not None:
                    for a in node.args:
                        if last[a] == i and a not in keep:  # type: ignore[operator]
                            out[a] = None
    return out


# An edge observer: (node i, position j, argument a, the adjoint of i flowing back, the local
# partial ∂u_i/∂u_a, the contribution (their product), and the adjoint of a after adding it)
Observer = Callable[[int, int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def backward(
    graph: Graph,
    values: Sequence[np.ndarray],
    wrt: Sequence[str],
    *,
    output: int | None = None,
    observer: Observer | None = None,
    perturb: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
) -> list[np.ndarray | None]:
    """Adjoint d(output)/du of every node (None where it is structurally zero), by the reversed
    walk: each node's adjoint times each local partial from `rules.RULES` is added into its
    argument's adjoint (gradients add where a value branches). Only edges that lead back to a
    variable of `wrt` are crossed. `perturb(i, j, partial)`, if given, replaces each local
    partial (the rounding model moves every partial by a chosen amount)."""
    out = graph.output if output is None else output
    if isinstance(values, PointValues) and observer is None and perturb is None:
        floats = float_backward(graph, values.floats, wrt, out)
        if floats is not None:
            return [None if a is None else np.full(values.shape, a) for a in floats]
    needs = graph.depends_on(wrt)
    adjoint: list[np.ndarray | None] = [None] * len(graph.nodes)
    adjoint[out] = np.ones_like(values[out])
    with np.errstate(all="ignore"):
        for i in range(out, -1, -1):
            upstream = adjoint[i]
            node = graph.nodes[i]
            if upstream is None or not node.args:
                continue
            args = tuple(values[a] for a in node.args)
            rule = RULES[node.op]
            for j, a in enumerate(node.args):
                if not needs[a]:
                    continue
                partial = rule.partial(j, values[i], args)
                if perturb is not None:
                    partial = perturb(i, j, partial)
                contribution = upstream * partial
                adjoint[a] = contribution if adjoint[a] is None else adjoint[a] + contribution
                if observer is not None:
                    observer(i, j, a, upstream, partial, contribution, adjoint[a])
    return adjoint


# --------------------------------------------------------------------------------------------
# Carriers of plain values
# --------------------------------------------------------------------------------------------


class Values:
    """numpy values at a batch of points: `point` maps each variable to an array (K,) or a
    scalar; constants stay unbatched. Domain errors and overflow give nan/inf, never raise."""

    def __init__(self, point: Mapping[str, Any], dtype: type = np.float64) -> None:
        self.point = point
        self.dtype = dtype

    def var(self, i: int, node: Node) -> np.ndarray:
        return np.asarray(self.point[node.name], dtype=self.dtype)  # type: ignore[index]

    def const(self, i: int, node: Node) -> np.ndarray:
        return np.asarray(node.constant_value(), dtype=self.dtype)

    def op(self, i: int, node: Node, args: tuple[np.ndarray, ...]) -> np.ndarray:
        return np.asarray(RULES[node.op].value(*args))


class NotComplexCapable(Exception):
    """An operation that cannot be evaluated in complex arithmetic (the message names it)."""


class Shifted(Values):
    """Values with the variable `name` at `xs` (extra leading axes broadcast over the batch).

    With `dep` (graph.depends_on([name])) xs is complex and the nodes that depend on it are
    evaluated in complex arithmetic, by `Rule.complex_value` where the real implementation is
    not complex-capable; `NotComplexCapable` if a primitive cannot be. With `signs` (two arrays
    of shape (trials, nodes): real parts, imaginary parts), every rounded value — each
    operation's result, each constant a float cannot hold — is moved by ±`size` times its
    possible rounding error: eps relative, and one step of the subnormal range absolute (a
    result that underflowed is off by that much, not by eps of itself); one trial per row,
    along a new leading axis. `lanes_and_trials` walks a `Shifted` without signs and one with
    them in one pass."""

    def __init__(
        self,
        point: Mapping[str, Any],
        name: str,
        xs: np.ndarray,
        dtype: type,
        dep: Sequence[bool] | None = None,
        signs: tuple[np.ndarray, np.ndarray] | None = None,
        size: float = 0.0,
        memo: dict[Any, Any] | None = None,
    ) -> None:
        super().__init__(point, dtype)
        self.name, self.xs, self.dep, self.signs = name, xs, dep, signs
        self.lead = (-1,) + (1,) * np.ndim(xs)
        eps, tiny = _limits(dtype)
        self.size = size * eps
        self.floor = self.size * tiny
        # `memo`: what a walk computes that does not depend on the points (each constant), kept
        # for the next walk of the same graph on another batch of points (a method walks its
        # points in chunks); what depends on the signs alone is kept by `_layout_memo`
        self.memo: dict[Any, Any] = {} if memo is None else memo
        self._block: dict[tuple[int, bool, int], tuple[np.ndarray, np.ndarray]] = \
            _layout_memo(self, ("factors",)).setdefault("factors", {}) if signs is not None else {}

    def moves(self, node: Node) -> bool:
        """Whether the variable node is away from its point in this walk."""
        return node.name == self.name

    def var(self, i: int, node: Node) -> np.ndarray:
        return self.xs if node.name == self.name else super().var(i, node)

    def const(self, i: int, node: Node) -> np.ndarray:
        v = super().const(i, node)
        return self._perturb(i, v, 1.0) if _rounded(node, v) else v

    def op(self, i: int, node: Node, args: tuple[np.ndarray, ...]) -> np.ndarray:
        v = self.value(i, node, args)
        if self.signs is None:
            return v
        return self._perturb(i, v, self._ulps(i, node, args), _fresh(v, args))

    def value(self, i: int, node: Node, args: Sequence[np.ndarray]) -> np.ndarray:
        """Node i's value from its arguments, before any rounding is moved."""
        rule = RULES[node.op]
        in_complex = self.dep is not None and self.dep[i]
        fn = (rule.complex_value or rule.value) if in_complex else rule.value
        try:
            v = np.asarray(fn(*args))
        except (TypeError, ValueError):
            v = None
        if v is None or (in_complex and v.dtype.kind != "c"):
            raise NotComplexCapable(f"complex step cannot evaluate {node.op} in complex arithmetic")
        return v

    def _ulps(self, i: int, node: Node, args: Sequence[np.ndarray]) -> Any:
        """How many eps node i's result may be off: 1, except a complex pow."""
        if node.op == "pow" and self.dep is not None and self.dep[i]:
            # complex u**v is exp(v log u), off by about |v log |u|| eps, not eps
            a, b = (np.real(x).astype(np.float64) for x in args)
            return np.maximum(1.0, np.abs(b * np.log(np.where(a == 0, 1.0, np.abs(a)))))
        return 1.0

    def _perturb(self, i: int, v: np.ndarray, ulps: Any, fresh: bool = False) -> np.ndarray:
        """v moved by node i's trials; in place when `fresh` (v is a new array no one else holds)
        and already has the trial axis: the same numbers, without a temporary."""
        if self.signs is None:
            return v
        if type(ulps) is float and ulps == 1.0:  # every operation but a complex pow
            fac, floor = self._factors(i, v.dtype.kind == "c")
            if v.dtype.kind != "c":
                if fresh and v.dtype == fac.dtype and v.ndim == fac.ndim and v.shape[0] == fac.shape[0]:
                    v *= fac  # fac is 1 on every other axis: v keeps its shape
                    v += floor
                    return v
                out = v * fac
                out += floor
                return out
            # real and imaginary parts moved independently, on a float view of the parts:
            # two numpy calls instead of eight (the walk's cost at one point is per call)
            if fresh and v.real.dtype == fac.dtype and v.ndim + 1 == fac.ndim and v.shape[0] == fac.shape[0] \
                    and v.flags.c_contiguous:
                parts = v.view(fac.dtype).reshape(v.shape + (2,))
                parts *= fac
                parts += floor
                return v
            w = np.ascontiguousarray(v).reshape(np.shape(v) or (1,))
            parts = w.view(w.real.dtype).reshape(w.shape + (2,)) * fac
            parts += floor
            return parts.view(w.dtype)[..., 0]
        dtype = self.dtype
        re_sign = self.signs[0][:, i].reshape(self.lead)
        im_sign = self.signs[1][:, i].reshape(self.lead)
        re = (1 + self.size * ulps * re_sign).astype(dtype)
        re_floor = (self.floor * re_sign).astype(dtype)
        if v.dtype.kind == "c":
            im = (1 + self.size * ulps * im_sign).astype(dtype)
            return (v.real * re + re_floor) + 1j * (v.imag * im + (self.floor * im_sign).astype(dtype))
        return v * re + re_floor

    def _factors(self, i: int, complex_: bool) -> tuple[np.ndarray, np.ndarray]:
        """Node i's multiplier 1 ± size and floor ± floor (dtype), shaped (trials, 1, ...) to
        broadcast over a value, with a last axis (real, imaginary) when `complex_`; computed for
        a block of nodes at once (a walk goes in node order), one block kept."""
        block = i // _FACTOR_BLOCK
        key = (block, complex_, np.ndim(self.xs))
        got = self._block.get(key)
        if got is None:
            assert self.signs is not None
            a = block * _FACTOR_BLOCK
            b = min(a + _FACTOR_BLOCK, self.signs[0].shape[1])
            s = self.signs[0][:, a:b].T
            lead = (b - a, s.shape[1]) + (1,) * np.ndim(self.xs)
            if complex_:
                s = np.stack([s, self.signs[1][:, a:b].T], axis=-1).reshape(lead + (2,))
            else:
                s = s.reshape(lead)
            got = ((1 + self.size * s).astype(self.dtype), (self.floor * s).astype(self.dtype))
            for k in [k for k in self._block if k[1:] == key[1:]]:
                del self._block[k]  # one block kept of each kind
            self._block[key] = got
        return got[0][i % _FACTOR_BLOCK], got[1][i % _FACTOR_BLOCK]


_FACTOR_BLOCK = 256


def _layout_memo(trials: Shifted, key: tuple[Any, ...]) -> dict[Any, Any]:
    """A dict for what a walk with these signs computes from the signs alone (each node's
    factors, how rows of alike trials are moved and lined up), shared by every walk with the
    same signs, dtype and `key` (its layout of rows): a check of a small formula walks the
    same signs at every chunk and every point, and computing these afresh made a walk of 8
    nodes a third slower. Signs of more than `_LAYOUT_SIGNS` entries (a big graph's, made
    afresh for each walk anyway) get the walk's own memo instead."""
    assert trials.signs is not None
    re, im = trials.signs
    if re.size + im.size > _LAYOUT_SIGNS:
        return trials.memo.setdefault(("layout",) + key, {})
    bases = [a if a.base is None else a.base for a in (re, im)]
    k = tuple((id(b), a.__array_interface__["data"][0], a.shape, a.strides)
              for a, b in zip((re, im), bases)) + (np.dtype(trials.dtype).str, trials.size) + key
    got = _LAYOUTS.pop(k, None)
    if got is None or got[0] is not bases[0] or got[1] is not bases[1]:
        got = (bases[0], bases[1], {})  # (the bases held: their ids stay theirs)
        while len(_LAYOUTS) >= 64:
            try:
                del _LAYOUTS[next(iter(_LAYOUTS))]  # the least recently used
            except (KeyError, StopIteration, RuntimeError):  # another thread at it too
                break
    _LAYOUTS[k] = got
    return got[2]


_LAYOUTS: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, dict[Any, Any]]] = {}
_LAYOUT_SIGNS = 1 << 16


@functools.lru_cache(maxsize=8)
def _limits(dtype: type) -> tuple[float, float]:
    """eps and tiny of a float dtype (np.finfo costs microseconds a call)."""
    info = np.finfo(dtype)
    return float(info.eps), float(info.tiny)


def _rounded(node: Node, v: np.ndarray) -> bool:
    """Whether a constant is rounded: named (pi, e) or not a float exactly (0.1)."""
    return node.name is not None or node.exact != Fraction(float(v))


def _among(v: Any, args: Sequence[Any]) -> bool:
    """Whether v is one of args (by identity: `in` would compare arrays)."""
    for a in args:
        if v is a:
            return True
    return False


def _fresh(v: np.ndarray, args: Sequence[Any]) -> bool:
    """Whether v is a new array of its own, free to be overwritten: not an argument handed
    back (max of one argument is that argument) nor a view of one."""
    if type(v) is not np.ndarray or v.base is not None or not v.flags.writeable:
        return False
    for a in args:
        if v is a:
            return False
    return True


class Along(Shifted):
    """`Shifted` along directions instead of one variable: variable v is x_v + t · d_v, where
    `ts` holds the step t of every lane (leading axes) and `dirs[v]` the direction's entry d_v
    for every lane (broadcast against `ts`); a variable without an entry stays at its point.
    Complex `ts` evaluate in complex arithmetic where `dep` says so (the complex step along a
    direction); `signs` move every rounded value as in `Shifted`."""

    def __init__(self, point: Mapping[str, Any], ts: np.ndarray, dirs: Mapping[str, np.ndarray],
                 dtype: type, dep: Sequence[bool] | None = None,
                 signs: tuple[np.ndarray, np.ndarray] | None = None, size: float = 0.0) -> None:
        super().__init__(point, "", ts, dtype, dep, signs, size)
        self.dirs = dirs

    def moves(self, node: Node) -> bool:
        return node.name in self.dirs

    def var(self, i: int, node: Node) -> np.ndarray:
        x = Values.var(self, i, node)
        d = self.dirs.get(node.name)  # type: ignore[arg-type]
        if d is None:
            return x
        return (x + self.xs * d).astype(self.xs.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Two walks in one pass: lanes of f, and the rounding model's trials
# --------------------------------------------------------------------------------------------
#
# The finite differences walk the graph twice at each batch of points: once for f at their
# lanes (x ± h, ..., a `Shifted` without signs) and once for the rounding model (a `Shifted`
# with signs, its trials on a new leading axis). At one point a walk's cost is per node, about
# a microsecond a numpy call whatever the array holds, so `lanes_and_trials` does both walks
# in one pass and, where it can, one numpy call for both: the lanes and the trials of a node
# in one array of rows (lanes first), the trials' rows moved by their factors and the lanes'
# rows by 1 and -0.0 (v·1 + -0.0 is v bit for bit, -0.0, nan and inf included).
#
# The numbers are those of the two walks bit for bit, because every numpy call sees what one
# of the two walks would have given it, or arrays that differ only in how many rows they hold:
# - a node that does not depend on what the walks move (a constant, another variable, what
#   is computed from those alone) is computed once, as both walks compute it, and the trials'
#   copy moved (`_PAIR` below: its lanes' value and its trials' value);
# - a node whose arguments are rows, or are such unmoved values, is one call over all the rows:
#   elementwise, each row gets what its own walk computes (numpy's loops give an element the
#   same bits wherever it sits in an array, checked for every rule by the tests); what a walk
#   passes unbatched (an exponent of 2 that is a constant: numpy squares instead of calling
#   pow) is passed unbatched here too;
# - a node that mixes rows with a node of the first kind (x**c, with c = 1/3 computed, 1/3 in
#   the lanes and moved in the trials) is two calls, one per walk, except for + - * / and
#   negation, whose results do not depend on the layout.

_PLAIN, _PAIR, _ROWS = 0, 1, 2
# elementwise arithmetic whose bits do not depend on how its operands are laid out (checked for
# real and complex operands by the tests)
_LAYOUT_FREE = frozenset({"add", "sub", "mul", "div", "neg"})
# Below this many values a node (rows × points), one pass (`lanes_and_trials`) saves numpy
# calls; beyond it calls cost their elements, and two walks (the trials' by `trials_output`)
# save elements (the card formula's `central`, 10 rows: the same time at about 700 points).
# It also keeps every array of the one pass under 256 KiB (16,384 complex values), where numpy
# starts to compute `temporary * named` in the temporary's memory, as `named * temporary`
# (NPY_MIN_ELIDE_BYTES): a complex product is not bit for bit commutative (its SIMD loop
# rounds a·d, not b·c, in a·d + b·c), so a rule written with one (swish's complex form,
# z * sigmoid(z)) would give other bits in a bigger array than the two walks'.
_WHOLE_ROWS = 8192


def one_pass(values: int) -> bool:
    """Whether lanes and trials of this many values in all (rows × points) are best walked in
    one pass (`lanes_and_trials`), rather than each on its own (the trials by `trials_output`)."""
    return values < _WHOLE_ROWS


def lanes_and_trials(
    graph: Graph, lanes: Shifted, trials: Shifted, rest: tuple[int, ...], output: int | None = None,
) -> np.ndarray:
    """The output of two walks, `lanes` (no signs) and `trials` (with signs, the same `dep`), as
    one array of rows: the lanes' value, its leading axes of `lanes.xs` flattened, then the
    trials' value, trials × the leading axes of `trials.xs` flattened, each broadcast to
    `rest` (the trailing axes both walks share: the batch of points). Bit for bit what
    `evaluate_output` gives for each (see above); `NotComplexCapable` as it raises it.

    Where lanes and trials hold many values (`one_pass`: a batch of points), a numpy call costs
    its elements, not its overhead: the lanes are walked on their own and the trials by
    `trials_output`, which evaluates alike trials once."""
    assert lanes.signs is None and trials.signs is not None
    assert lanes.dep is trials.dep or list(lanes.dep or ()) == list(trials.dep or ())
    out = graph.output if output is None else output
    nr = len(rest)
    lead_l = tuple(np.shape(lanes.xs)[:np.ndim(lanes.xs) - nr])
    lead_t = (len(trials.signs[0]),) + tuple(np.shape(trials.xs)[:np.ndim(trials.xs) - nr])
    nl, nt = math.prod(lead_l), math.prod(lead_t)
    shape_l, shape_t = lead_l + rest, lead_t + rest
    nd_l = len(shape_l)

    def fuse(lv: np.ndarray, tv: np.ndarray) -> np.ndarray:
        """The rows of both walks' values (broadcast by assignment: np.broadcast_to costs more
        than the copy at one point)."""
        got = np.empty((nl + nt,) + rest, dtype=np.result_type(lv, tv))
        got[:nl].reshape(shape_l)[...] = lv
        got[nl:].reshape(shape_t)[...] = tv
        return got

    if not one_pass((nl + nt) * math.prod(rest)):
        return fuse(evaluate_output(graph, lanes, out), trials_output(graph, trials, rest, out))

    rows = (nl + nt,) + rest
    memo = trials.memo  # this graph's constants
    layout = _layout_memo(trials, (nl, nt, nr))  # what the signs alone give
    factors = layout.get("rows")
    if factors is None:
        factors = layout["rows"] = _RowFactors(trials, nl, nt // lead_t[0], nr)
    nodes = graph.nodes
    last = graph.last_use
    cdep = trials.dep
    vals: list[Any] = [None] * (out + 1)
    kind = bytearray(out + 1)
    as_rows: list[np.ndarray | None] = [None] * (out + 1)  # a pair, as rows (x in x*u)

    def parts(i: int) -> tuple[Any, Any]:
        """Node i's value in the lanes' walk and in the trials' walk."""
        k = kind[i]
        v = vals[i]
        if k == _PLAIN:
            return v, v
        if k == _PAIR:
            return v
        return v[:nl].reshape(shape_l), v[nl:].reshape(shape_t)

    def store(i: int, lv: np.ndarray, tv: np.ndarray) -> None:
        """Two walks' values of node i: one array of rows when both have their rows."""
        if lv.ndim == len(shape_l) and tv.ndim == len(shape_t) and lv.dtype == tv.dtype:
            vals[i], kind[i] = fuse(lv, tv), _ROWS
        else:
            vals[i], kind[i] = (lv, tv), _PAIR

    def move(i: int, v: np.ndarray, argv: Sequence[Any]) -> np.ndarray:
        """A node's rows (v, computed from argv), the trials' rows moved as `Shifted._perturb`
        moves them and the lanes' by 1 and -0.0; in place when v is a new array."""
        c = v.dtype.kind == "c"
        if type(v) is not np.ndarray or v.base is not None or not v.flags.writeable or v.shape != rows \
                or not v.flags.c_contiguous or any(v is a for a in argv):
            w = np.empty(rows, dtype=v.dtype)
            w[...] = v
            v = w
        fac, floor = factors.get(i, c)  # (fac of the walk's dtype: v·fac as `_perturb` computes it)
        if c:
            body = v.view(v.real.dtype).reshape(rows + (2,))
            body *= fac
            body += floor
        else:
            v *= fac
            v += floor
        return v

    with np.errstate(all="ignore"):
        for i in range(out + 1):
            node = nodes[i]
            op = node.op
            if op == "var":
                if lanes.moves(node) or trials.moves(node):
                    store(i, lanes.var(i, node), trials.var(i, node))
                else:
                    vals[i] = lanes.var(i, node)
                continue
            if op == "const":  # the same at every batch of points: kept in the memo
                got = memo.get(("const", i))
                if got is None:
                    v = Values.const(lanes, i, node)
                    got = memo[("const", i)] = ((v, trials._perturb(i, v, 1.0)), _PAIR) \
                        if _rounded(node, v) else (v, _PLAIN)
                vals[i], kind[i] = got
                continue
            args = node.args
            moved = pair = rowed = False
            for a in args:
                k = kind[a]
                if k:
                    moved = True
                    if k == _ROWS:
                        rowed = True
                    else:
                        pair = True
                        if vals[a][0].ndim == nd_l:  # a moved variable's pair: its lanes have rows
                            rowed = True
            if not moved:  # unmoved arguments: computed once, the trials' copy moved
                v = lanes.value(i, node, [vals[a] for a in args])
                vals[i], kind[i] = (v, trials._perturb(i, v, 1.0)), _PAIR
                continue
            argv: list[Any] | None = None
            if not rowed:  # what does not depend on the lanes' moves: one value per walk
                pass
            elif not pair:
                if not (op == "pow" and cdep is not None and cdep[i]):
                    argv = [vals[a] for a in args]
            elif op in _LAYOUT_FREE:  # a pair's two values broadcast to rows (x in x*u), kept
                argv = []
                for a in args:
                    if kind[a] != _PAIR:
                        argv.append(vals[a])
                        continue
                    got = as_rows[a]
                    if got is None:
                        lv, tv = vals[a]
                        if lv.dtype != tv.dtype:
                            argv = None
                            break
                        got = as_rows[a] = fuse(lv, tv)
                    argv.append(got)
            if argv is not None:  # rows: one call (the walk's hot path, inlined)
                v = lanes.value(i, node, argv)
                if v.dtype.kind == "c" or type(v) is not np.ndarray or v.base is not None \
                        or v.shape != rows or not v.flags.writeable or not v.flags.c_contiguous \
                        or v is argv[0] or (len(argv) > 1 and _among(v, argv)):
                    v = move(i, v, argv)
                else:
                    if i // _FACTOR_BLOCK != factors.block or factors.complex_:
                        factors.get(i, False)
                    k = i % _FACTOR_BLOCK
                    v *= factors.got[0][k]
                    v += factors.got[1][k]
                vals[i], kind[i] = v, _ROWS
            else:  # one call per walk
                both = [parts(a) for a in args]
                lv = lanes.op(i, node, tuple(p[0] for p in both))
                store(i, lv, trials.op(i, node, tuple(p[1] for p in both)))
            for a in args:
                if last[a] == i and a != out:
                    vals[a] = as_rows[a] = None
    return vals[out] if kind[out] == _ROWS else fuse(*parts(out))


def trials_output(
    graph: Graph, trials: Shifted, rest: tuple[int, ...], output: int | None = None
) -> np.ndarray:
    """`evaluate_output(graph, trials)` (a `Shifted` with signs), broadcast to (trials, *lead,
    *rest), with alike trials evaluated once: a value is one row per distinct trial and which
    row each trial is (its map). x**2 at x + h is one row before its rounding is moved, two
    after (signs + and -), and sin of it two evaluations, not one a trial (of 4 for 8 nodes:
    the card formula's sin is a fifth of its cost); once every trial differs, rows are in
    trial order and the walk is the plain one. Bit for bit the plain walk's values: each row is
    computed as that walk computes every trial that is it, and rows are taken and moved by the
    same factors."""
    assert trials.signs is not None
    out = graph.output if output is None else output
    nodes = graph.nodes
    last = graph.last_use
    nr = len(rest)
    lead = tuple(np.shape(trials.xs)[:np.ndim(trials.xs) - nr])  # (the walk's own leading axes)
    ntrials = len(trials.signs[0])
    full_shape = (ntrials,) + lead + rest
    rowed_ndim = len(full_shape)
    layout = _layout_memo(trials, ("trials", lead, nr))
    re = trials.signs[0]
    cdep = trials.dep
    vals: list[Any] = [None] * (out + 1)
    maps: list[tuple[int, ...] | None] = [None] * (out + 1)  # None: no rows, or every trial its own

    def rowed(v: Any) -> bool:
        return np.ndim(v) == rowed_ndim

    def move(i: int, v: np.ndarray, m: tuple[int, ...] | None, fresh: bool) -> tuple[np.ndarray, Any]:
        """v (rows per `m`, or none yet) moved by node i's trials: each distinct (row, sign)
        once, as `Shifted._perturb` moves it (real values; complex ones every trial its own)."""
        if (m is None and rowed(v)) or v.dtype.kind == "c":  # every trial its own row: the plain move
            if m is not None:
                v, fresh = v.take(m, axis=0), True
            return trials._perturb(i, v, 1.0, fresh), None
        key = ("move", i, m)
        plan = layout.get(key)
        if plan is None:
            plan = layout[key] = _compact(m or (0,) * ntrials, re[:, i], trials, (ntrials,) + lead, nr)
        src, fac, floor, new = plan
        if m is None:  # no rows yet: v moved into one row per distinct sign, as `_perturb` does
            got = v * fac
        else:
            got = v.take(src, axis=0)
            got *= fac
        got += floor
        return got, new

    with np.errstate(all="ignore"):
        for i in range(out + 1):
            node = nodes[i]
            op = node.op
            if op == "var":
                vals[i] = trials.var(i, node)
                continue
            if op == "const":
                v = Values.const(trials, i, node)
                if _rounded(node, v):
                    vals[i], maps[i] = move(i, np.asarray(v), None, False)
                else:
                    vals[i] = v
                continue
            args = node.args
            argv = [vals[a] for a in args]
            amaps = [maps[a] if rowed(v) else False for a, v in zip(args, argv)]
            m = None
            if cdep is not None and cdep[i]:
                # complex arithmetic: every trial its own, as the plain walk, whose arrays have
                # the same sizes (numpy computes `complex temporary * named` swapped in a big
                # one, not bit for bit the same: see `_WHOLE_ROWS`); and a complex pow is moved
                # by its own ulps
                argv = [v if not am else v.take(am, axis=0) for v, am in zip(argv, amaps)]
                v = trials.value(i, node, argv)
                vals[i] = trials._perturb(i, v, trials._ulps(i, node, argv), _fresh(v, argv))
                maps[i] = None
            else:
                if any(am for am in amaps if am is not False):  # some arguments with alike trials
                    key = ("align",) + tuple(amaps)
                    plan = layout.get(key)
                    if plan is None:
                        plan = layout[key] = _align(tuple(amaps), ntrials)
                    gathers, m = plan
                    for k, idx in gathers:
                        argv[k] = argv[k].take(idx, axis=0)
                v = trials.value(i, node, argv)
                vals[i], maps[i] = move(i, v, m, _fresh(v, argv))
            for a in args:
                if last[a] == i and a != out:
                    vals[a] = None
    v, m = vals[out], maps[out]
    if m is not None:
        v = v.take(m, axis=0)
    return np.broadcast_to(v, full_shape) if not rowed(v) or v.shape != full_shape else v


def _align(
    maps: tuple[Any, ...], ntrials: int
) -> tuple[list[tuple[int, np.ndarray]], tuple[int, ...] | None]:
    """How to line up an operation's arguments in `trials_output` (`maps`: per argument, which of
    its rows each trial is, None for every trial its own, False for no rows): the rows to take
    of each, and which of the result's rows each trial is. Trial t of the result is the
    arguments' rows (m_a[t], ...), each distinct combination once."""
    every = tuple(range(ntrials))
    rowed = [k for k, m in enumerate(maps) if m is not False]
    present = [maps[k] for k in rowed if maps[k] is not None]
    if len(present) == len(rowed) and all(m == present[0] for m in present):
        return [], present[0]  # alike everywhere: the rows as they are
    keys = list(zip(*[maps[k] or every for k in rowed]))
    first = dict.fromkeys(keys)
    if len(first) == ntrials:
        order, result = keys, None
    else:
        order = list(first)
        where = {key: c for c, key in enumerate(order)}
        result = tuple(where[key] for key in keys)
    gathers = []
    for j, k in enumerate(rowed):
        src = tuple(key[j] for key in order)
        if not (maps[k] is None and src == every):
            gathers.append((k, np.array(src, dtype=np.intp)))
    return gathers, result


def _compact(
    m: tuple[int, ...], signs: np.ndarray, trials: Shifted, lead: tuple[int, ...], nr: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """How `trials_output` moves real rows whose trials are alike (trial t is row m[t]) by a
    node's signs (one a trial): the rows to take (each distinct (row, sign) once, in trial
    order once all differ), the factors for them (as `Shifted._factors` makes them), and the
    new map (None once every trial differs)."""
    keys = list(zip(m, signs.tolist()))
    first = dict.fromkeys(keys)
    if len(first) == len(m):
        order: list[tuple[Any, ...]] = keys
        new: tuple[int, ...] | None = None
    else:
        order = list(first)
        where = {key: c for c, key in enumerate(order)}
        new = tuple(where[key] for key in keys)
    s = np.array([key[1] for key in order], dtype=np.float64).reshape((-1,) + (1,) * (len(lead) - 1 + nr))
    fac = (1 + trials.size * s).astype(trials.dtype)
    floor = (trials.floor * s).astype(trials.dtype)
    return np.array([key[0] for key in order], dtype=np.intp), fac, floor, new


class _RowFactors:
    """`Shifted._factors` for the rows of `lanes_and_trials`: 1 and -0.0 for the lanes' rows,
    then each trial's factors repeated over its `inner` rows (one a direction), shaped (rows,
    1, ...) [+ (2,)]: a node's rows are then moved by two calls on arrays of the same shape,
    three times faster than broadcasting a trial's factors over its directions. For a block of
    nodes at once, one block kept."""

    def __init__(self, trials: Shifted, lanes: int, inner: int, rest: int) -> None:
        assert trials.signs is not None
        self.signs, self.size, self.floor, self.dtype = trials.signs, trials.size, trials.floor, trials.dtype
        self.lanes, self.inner, self.rest = lanes, inner, rest
        self.block, self.complex_ = -1, False
        self.got: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))

    def get(self, i: int, complex_: bool) -> tuple[np.ndarray, np.ndarray]:
        block = i // _FACTOR_BLOCK
        if block != self.block or complex_ is not self.complex_:
            t = self
            a = block * _FACTOR_BLOCK
            b = min(a + _FACTOR_BLOCK, t.signs[0].shape[1])
            s = t.signs[0][:, a:b].T  # (nodes, trials)
            if complex_:
                s = np.stack([s, t.signs[1][:, a:b].T], axis=-1)
            # the trials' factors as `_factors` computes them, after the lanes' rows: 1 + size·(-0.0)
            # = 1 and floor·(-0.0) = -0.0
            got = []
            for small, lane in ((1 + t.size * s).astype(t.dtype), 1.0), ((t.floor * s).astype(t.dtype), -0.0):
                full = np.empty((b - a, self.lanes + s.shape[1] * self.inner) + s.shape[2:], dtype=t.dtype)
                full[:, :self.lanes] = lane
                full[:, self.lanes:] = small if self.inner == 1 else np.repeat(small, self.inner, axis=1)
                got.append(full.reshape(full.shape[:2] + (1,) * self.rest + s.shape[2:]))
            self.got = (got[0], got[1])
            self.block, self.complex_ = block, complex_
        k = i % _FACTOR_BLOCK
        return self.got[0][k], self.got[1][k]


def evaluate_output(
    graph: Graph, interp: Interpretation[np.ndarray], output: int | None = None
) -> np.ndarray:
    """The value of one output only, freeing intermediate values as the walk goes."""
    out = graph.output if output is None else output
    return walk(graph, interp, upto=out, keep={out})[out]


# --------------------------------------------------------------------------------------------
# The one-point fast path: Python floats instead of numpy 0-d calls
# --------------------------------------------------------------------------------------------
#
# At one point every node's value is one number, and a numpy call on it costs about 1 µs of
# overhead for nanoseconds of arithmetic: a walk of 10⁵ nodes spends 0.1 s in numpy's call
# machinery, and the backward sweep three times that. `float_walk` and `float_backward` do the
# same walks with Python floats and `math`, and give the same numbers bit for bit:
#
# - `scalar_forms` below is the one table of scalar forms, keyed by op name: each op's value and
#   its partials written on Python floats exactly as `rules.RULES` writes them on arrays (same
#   formula, same order of operations). Two checks make "bit for bit" hold on any machine:
#   every elementary function they call (`_M.sin`, `_M.exp`, ...) is `math`'s only where it
#   agrees with numpy's on thousands of arguments of every scale, and numpy's own (called on
#   one float) where it does not (numpy's SIMD exp, tan, tanh, ... differ from libm's by 1–3
#   ulp on some machines); then every form is checked against its numpy rule on a grid of
#   arguments with signed zeros and domain edges (`_verified`), and a form that differs there is
#   left out: numpy computes that op or partial at that node. A rule added to RULES without a
#   scalar form simply runs through numpy.
# - Only finite numbers are kept as floats: a scalar form that raises (math.log(0), 1/0.0,
#   math.exp(1000)) or returns inf/nan hands the node to numpy (a value: the whole walk is
#   redone by the numpy interpreter, so nan/inf semantics are numpy's, unchanged; a partial:
#   numpy computes that partial, and Python float arithmetic, IEEE like numpy's, carries it).
#
# `walk` takes this path for a plain `Values` interpretation at one point in float64 and hands
# back `PointValues`: the list of numpy values every caller expects, holding the floats too, so
# `backward` (and `forward.gradient`) at that point stay on floats.

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# The elementary functions the scalar forms call, each with numpy's counterpart and the
# arguments to compare them on (an interval, linear and logarithmic).
_ELEMENTARY: dict[str, tuple[Callable[[float], float], Any, tuple[float, float]]] = {
    "sin": (math.sin, np.sin, (-1e4, 1e4)), "cos": (math.cos, np.cos, (-1e4, 1e4)),
    "tan": (math.tan, np.tan, (-1e4, 1e4)), "exp": (math.exp, np.exp, (-700.0, 700.0)),
    "log": (math.log, np.log, (1e-300, 1e300)), "sqrt": (math.sqrt, np.sqrt, (0.0, 1e300)),
    "asin": (math.asin, np.arcsin, (-1.0, 1.0)), "acos": (math.acos, np.arccos, (-1.0, 1.0)),
    "atan": (math.atan, np.arctan, (-1e10, 1e10)), "sinh": (math.sinh, np.sinh, (-700.0, 700.0)),
    "cosh": (math.cosh, np.cosh, (-700.0, 700.0)), "tanh": (math.tanh, np.tanh, (-40.0, 40.0)),
    "asinh": (math.asinh, np.arcsinh, (-1e10, 1e10)), "acosh": (math.acosh, np.arccosh, (1.0, 1e10)),
    "atanh": (math.atanh, np.arctanh, (-0.999999, 0.999999)), "log2": (math.log2, np.log2, (1e-300, 1e300)),
    "log10": (math.log10, np.log10, (1e-300, 1e300)), "erf": (math.erf, None, (0.0, 0.0)),
}


class _M:
    """The elementary functions of the scalar forms, filled in by `_elementary` on first use."""

    sin = cos = tan = exp = log = sqrt = asin = acos = atan = sinh = cosh = tanh = asinh = acosh = \
        atanh = log2 = log10 = erf = staticmethod(math.erf)


def _elementary() -> None:
    """Set every `_M` function to `math`'s if it equals numpy's bit for bit on 1,800 arguments
    spread over its domain and then on 6,000 more (numpy's own log differs from libm's at one
    argument in a thousand on AVX-512 machines), else to numpy's own on one float (slower, the
    same bits)."""
    for name, (mfn, nfn, (lo, hi)) in _ELEMENTARY.items():
        if nfn is None:  # rules.RULES computes it with this very function
            setattr(_M, name, staticmethod(mfn))
            continue
        xs = np.concatenate([np.linspace(lo, hi, 400), np.linspace(-8.0, 8.0, 800)])
        if lo > 0:
            xs = np.concatenate([xs, np.geomspace(lo, hi, 600)])
        elif hi > 1:
            g = np.geomspace(1e-300, hi, 300)
            xs = np.concatenate([xs, g, -g])
        same = _same_bits(mfn, nfn, xs[(xs >= lo) & (xs <= hi)])
        if same:
            fine = np.linspace(max(lo, -30.0), min(hi, 30.0), 6007)
            same = _same_bits(mfn, nfn, np.concatenate([fine[1:-1], fine[1:-1] * 1e-3 + 1.0]))
        setattr(_M, name, staticmethod(mfn if same else (lambda x, f=nfn: float(f(x)))))


def _same_bits(mfn: Callable[[float], float], nfn: Any, xs: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        ours = np.frompyfunc(mfn, 1, 1)(xs).astype(np.float64)
        theirs = nfn(xs)
    return bool(np.array_equal(ours, theirs) and np.array_equal(np.signbit(ours), np.signbit(theirs)))


def _sign(x: float) -> float:
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


def _power(a: float, b: float) -> float | None:
    """a**b where numpy's power is plain arithmetic for a scalar exponent (a square is a*a,
    ...); None elsewhere (numpy's own pow)."""
    if b == 2.0:
        return a * a
    if b == 1.0:
        return a
    if b == 0.0:
        return 1.0
    if b == -1.0:
        return 1.0 / a
    return None


def _pow_base_partial(a: float, b: float) -> float | None:
    if b == 0:
        return 0.0
    p = _power(a, b - 1.0)
    return None if p is None else b * p


def _one(o: float, *args: float) -> float:
    return 1.0


def _minus_one(o: float, *args: float) -> float:
    return -1.0


def _second(o: float, a: float, b: float) -> float:
    return b


def _first(o: float, a: float, b: float) -> float:
    return a


# Partials the sweeps apply without calling them (they are finite whenever the values are):
# 1 · up is up, -1 · up is -up, and mul's partials are its other argument.
_ONE, _MINUS_ONE, _OTHER, _GENERAL = 1, 2, 3, 0
_KIND = {_one: _ONE, _minus_one: _MINUS_ONE, _second: _OTHER, _first: _OTHER}


ScalarForm = tuple[Callable[..., Any], tuple[Callable[..., Any], ...] | None]


def scalar_forms() -> dict[str, ScalarForm]:
    """op -> (value, partials): partials[j](out, *args) = ∂out/∂args[j], as in rules.RULES,
    on Python floats. A form may return None: numpy computes that value or partial (pow with
    an exponent other than 2, 1, 0, -1). Partials None: numpy computes them all (n-ary max/min
    share their tie count). The one table of scalar forms."""
    m = _M
    return {
        "add": (operator.add, (_one, _one)),
        "sub": (operator.sub, (_one, _minus_one)),
        "mul": (operator.mul, (_second, _first)),
        "div": (operator.truediv, (lambda o, a, b: 1.0 / b, lambda o, a, b: -o / b)),
        "neg": (operator.neg, (_minus_one,)),
        "pow": (_power, (lambda o, a, b: _pow_base_partial(a, b),
                         lambda o, a, b: 0.0 if a == 0 and b > 0 else o * m.log(a))),
        "sin": (m.sin, (lambda o, x: m.cos(x),)),
        "cos": (m.cos, (lambda o, x: -m.sin(x),)),
        "tan": (m.tan, (lambda o, x: 1.0 + o * o,)),
        "asin": (m.asin, (lambda o, x: 1.0 / m.sqrt(1.0 - x * x),)),
        "acos": (m.acos, (lambda o, x: -1.0 / m.sqrt(1.0 - x * x),)),
        "atan": (m.atan, (lambda o, x: 1.0 / (1.0 + x * x),)),
        "sinh": (m.sinh, (lambda o, x: m.cosh(x),)),
        "cosh": (m.cosh, (lambda o, x: m.sinh(x),)),
        "tanh": (m.tanh, (lambda o, x: m.cosh(x) ** -2.0,)),
        "exp": (m.exp, (lambda o, x: o,)),
        "log": (m.log, (lambda o, x: 1.0 / x,)),
        "sqrt": (m.sqrt, (lambda o, x: 0.5 / o,)),
        "erf": (m.erf, (lambda o, x: _TWO_OVER_SQRT_PI * m.exp(-x * x),)),
        "sec": (lambda x: 1.0 / m.cos(x), (lambda o, x: o * m.tan(x),)),
        "csc": (lambda x: 1.0 / m.sin(x), (lambda o, x: -o / m.tan(x),)),
        "cot": (lambda x: m.cos(x) / m.sin(x), (lambda o, x: -(1.0 + o * o),)),
        "asinh": (m.asinh, (lambda o, x: 1.0 / m.sqrt(x * x + 1.0),)),
        "acosh": (m.acosh, (lambda o, x: 1.0 / (m.sqrt(x - 1.0) * m.sqrt(x + 1.0)),)),
        "atanh": (m.atanh, (lambda o, x: 1.0 / ((1.0 - x) * (1.0 + x)),)),
        "log2": (m.log2, (lambda o, x: 1.0 / (x * _LN2),)),
        "log10": (m.log10, (lambda o, x: 1.0 / (x * _LN10),)),
        "abs": (abs, (lambda o, x: _sign(x),)),
        "relu": (lambda x: x if x > 0 else 0.0, (lambda o, x: 1.0 if x > 0 else 0.0,)),
    }


# (the rules verified against, values, partials): re-verified when an entry of RULES is replaced
_VERIFIED: tuple[tuple[Any, ...], dict[str, Callable[..., Any]],
                 dict[str, tuple[Callable[..., Any] | None, ...]]] | None = None


def _same(s: float, n: float) -> bool:
    return s == n and math.copysign(1.0, s) == math.copysign(1.0, n)


def _samples() -> tuple[list[float], list[float]]:
    """Arguments for the forms' check: signed zeros, tiny and huge magnitudes, the edges of
    the inverse functions' domains, and numbers of every scale."""
    fixed = [0.0, -0.0, 1e-300, -1e-8, 0.5, -0.5, 1.0, -1.0, 1.5, -2.0, 3.0, 0.9999999999999999,
             1.0000000000000002, 20.0, -20.0, 700.0, 1e10, -1e300]
    spread = [4.0 * math.sin(k * 1.7) for k in range(1, 13)] + [math.exp(k * 9.3 % 60 - 30) for k in range(6)]
    small = [0.0, -0.0, 0.5, -0.7, 1.0, 2.0, -3.0, 1e-8, 7.25]
    return fixed + spread, small


def _verified() -> tuple[dict[str, Callable[..., Any]], dict[str, tuple[Callable[..., Any] | None, ...]]]:
    """The scalar forms that agree with numpy bit for bit (sign of zero included) wherever
    both are finite on the sample arguments, and never give a finite number where numpy does
    not: (values, partials), computed once per process, in a few milliseconds (numpy on a
    whole block at once: its results on an array are its results on each element alone), and
    again whenever an entry of RULES is replaced (a test that plants a wrong rule must see it)."""
    global _VERIFIED
    rules = tuple(RULES.items())
    if _VERIFIED is not None and len(_VERIFIED[0]) == len(rules) and all(
            a[0] == b[0] and a[1] is b[1] for a, b in zip(_VERIFIED[0], rules)):
        return _VERIFIED[1], _VERIFIED[2]
    _KINDS.clear()
    if _VERIFIED is None:
        _elementary()
    unary, binary = _samples()
    values: dict[str, Callable[..., Any]] = {}
    partials: dict[str, tuple[Callable[..., Any] | None, ...]] = {}
    with np.errstate(all="ignore"):
        for op, (value, parts) in scalar_forms().items():
            rule = RULES.get(op)
            if rule is None or rule.arity is None:
                continue
            try:
                ok_value, ok_parts = _check_form(rule, value, parts, unary, binary)
            except Exception:  # noqa: BLE001 - a rule the form cannot be checked against: numpy's
                continue
            if ok_value:
                values[op] = value
            if parts is not None:
                partials[op] = tuple(p if ok else None for p, ok in zip(parts, ok_parts))
    _VERIFIED = (rules, values, partials)
    return values, partials


def _check_form(rule: Any, value: Callable[..., Any], parts: tuple[Callable[..., Any], ...] | None,
                unary: list[float], binary: list[float]) -> tuple[bool, list[bool]]:
    """Whether an op's scalar value, and each scalar partial, agrees with its numpy rule."""
    arity = rule.arity
    # a binary op's second argument is unbatched, as a constant exponent is in the numpy walk
    # (numpy's power is a*a for a scalar exponent 2, its own pow for an array)
    blocks = [[(x,) for x in unary]] if arity == 1 else [[(a, b) for a in binary] for b in binary]
    ok_value = True
    ok_parts = [parts is not None and len(parts) == arity] * arity
    for grid in blocks:
        arrays = (np.array([g[0] for g in grid]), *(np.asarray(v) for v in grid[0][1:]))
        n_out = np.asarray(rule.value(*arrays), dtype=np.float64)
        ok_value = ok_value and _agrees(value, grid, n_out, lambda args, k: args)
        finite = np.isfinite(n_out)
        for j in range(arity):
            if not ok_parts[j] or parts is None:
                continue
            n_p = np.broadcast_to(np.asarray(rule.partial(j, n_out, arrays), dtype=np.float64), n_out.shape)
            ok_parts[j] = _agrees(parts[j], [g for g, f in zip(grid, finite) if f], n_p[finite],
                                  lambda args, k, o=n_out[finite]: (float(o[k]), *args))
    return ok_value, ok_parts


def _agrees(fn: Callable[..., Any], grid: Sequence[tuple[float, ...]], numpy: np.ndarray,
            call: Callable[[tuple[float, ...], int], tuple[float, ...]]) -> bool:
    for k, args in enumerate(grid):
        s = _try(fn, call(args, k))
        n = float(numpy[k])
        if s is not None and not (math.isfinite(n) and _same(s, n)):
            return False
    return True


def _try(fn: Callable[..., Any], args: tuple[float, ...]) -> float | None:
    """fn(*args) if it is a finite float, else None (what the fast path hands to numpy)."""
    try:
        r = fn(*args)
    except (ArithmeticError, ValueError):
        return None
    return float(r) if isinstance(r, float) and math.isfinite(r) else None


def _numpy_value(op: str, args: Sequence[float]) -> float:
    return float(np.asarray(RULES[op].value(*(np.asarray(a) for a in args))))


def _numpy_partials(op: str, out: float, args: Sequence[float]) -> list[float]:
    """Every partial of one node by the numpy rule (one argument tuple, so an n-ary rule's
    shared part is computed once)."""
    arrays = tuple(np.asarray(a) for a in args)
    o = np.asarray(out)
    with np.errstate(all="ignore"):
        return [float(np.asarray(RULES[op].partial(j, o, arrays))) for j in range(len(args))]


def point_floats(
    point: Mapping[str, Any], dtype: type = np.float64
) -> tuple[dict[str, float], tuple[int, ...]] | None:
    """The point as Python floats and its batch shape, if it is one point in float64 (every
    value of size 1); else None."""
    if np.dtype(dtype) != np.float64:
        return None
    floats: dict[str, float] = {}
    shapes = []
    for name, p in point.items():
        a = np.asarray(p)
        if a.size != 1 or a.dtype.kind not in "fiu":
            return None
        floats[name] = float(a.reshape(-1)[0])
        shapes.append(a.shape)
    return floats, tuple(np.broadcast_shapes(*shapes)) if shapes else ()


def float_walk(graph: Graph, point: Mapping[str, float], upto: int | None = None) -> list[float] | None:
    """Every node's value (up to `upto`) at one point as Python floats, or None if some value
    is not finite or a scalar form raised (then the numpy interpreter decides)."""
    with np.errstate(all="ignore"):
        got = _float_walk(graph, point, len(graph.nodes) if upto is None else upto + 1, ())
    return None if got is None else got[0]


def _float_walk(graph: Graph, point: Mapping[str, float], n: int,
                unbatched_vars: Container[str]) -> tuple[list[float], list[bool]] | None:
    """The values of nodes 0..n-1, and which of them are unbatched (constants, variables in
    `unbatched_vars`, and what is computed from those alone: numpy keeps them 0-d)."""
    values, _ = _verified()
    nodes = graph.nodes
    out = [0.0] * n
    flat = [False] * n
    for i in range(n):
        node = nodes[i]
        op = node.op
        args = node.args
        try:
            if op == "var":
                r = point[node.name]  # type: ignore[index]
                flat[i] = node.name in unbatched_vars
            elif op == "const":
                r = node.constant_value()
                flat[i] = True
            else:
                fn = values.get(op)
                if fn is None:
                    r = None
                elif len(args) == 1:
                    r = fn(out[args[0]])
                elif len(args) == 2:
                    r = fn(out[args[0]], out[args[1]])
                else:
                    r = fn(*[out[a] for a in args])
                if r is None:
                    r = _numpy_value(op, [out[a] for a in args])
                if flat[args[0]] and all(flat[a] for a in args):
                    flat[i] = True
        except (ArithmeticError, ValueError, KeyError):
            return None
        if r - r:  # nan or ±inf (finite r - r is 0.0)
            return None
        out[i] = r
    return out, flat


def float_backward(
    graph: Graph, values: Sequence[float], wrt: Sequence[str], output: int | None = None
) -> list[float | None]:
    with np.errstate(all="ignore"):
        return _float_backward(graph, values, wrt, output)


def _float_backward(
    graph: Graph, values: Sequence[float], wrt: Sequence[str], output: int | None = None
) -> list[float | None]:
    """`backward` on Python floats: the adjoint of every node that leads back to `wrt` (None
    where it is structurally zero), with the same partials, added in the same order. Where
    `wrt` is every variable, nodes built from constants alone may get an adjoint too (it
    reaches no variable)."""
    _, table = _verified()
    nodes = graph.nodes
    out = graph.output if output is None else output
    every = len(graph.var_nodes) == len({v for v in wrt if v in graph.var_nodes})
    needs = None if every else _depends(graph, wrt, out)
    adjoint: list[float | None] = [None] * len(nodes)
    adjoint[out] = 1.0
    kinds = _kinds(table)
    for i in range(out, -1, -1):
        up = adjoint[i]
        if up is None:
            continue
        node = nodes[i]
        args = node.args
        if not args:
            continue
        codes = kinds.get(node.op)
        if len(args) == 2 and codes is not None:
            a, b = args
            ka, kb = codes
            if needs is None or needs[a]:
                if ka == _ONE:
                    c = up
                elif ka == _OTHER:
                    c = up * values[b]
                else:
                    c = up * _partial(table, node.op, 0, values[i], (values[a], values[b]))
                prev = adjoint[a]
                adjoint[a] = c if prev is None else prev + c
            if needs is None or needs[b]:
                if kb == _ONE:
                    c = up
                elif kb == _OTHER:
                    c = up * values[a]
                elif kb == _MINUS_ONE:
                    c = -up
                else:
                    c = up * _partial(table, node.op, 1, values[i], (values[a], values[b]))
                prev = adjoint[b]
                adjoint[b] = c if prev is None else prev + c
            continue
        argv = [values[a] for a in args]
        numpy_parts: list[float] | None = None
        for j, a in enumerate(args):
            if needs is not None and not needs[a]:
                continue
            p = _scalar_partial(table, node.op, j, values[i], argv)
            if p is None:
                if numpy_parts is None:
                    numpy_parts = _numpy_partials(node.op, values[i], argv)
                p = numpy_parts[j]
            c = up * p
            prev = adjoint[a]
            adjoint[a] = c if prev is None else prev + c
    return adjoint


def float_tangent(graph: Graph, values: Sequence[float], name: str, output: int | None = None) -> float:
    """Forward mode on Python floats: ∂output/∂name at one point, the tangent of `name` seeded
    with 1 and carried by Σ_j (∂u_i/∂args_j) t_j in topological order, the same partials in
    the same order as `dual.apply` (a structurally zero tangent contributes nothing)."""
    with np.errstate(all="ignore"):
        return _float_tangent(graph, values, name, output)


def _float_tangent(graph: Graph, values: Sequence[float], name: str, output: int | None) -> float:
    _, table = _verified()
    kinds = _kinds(table)
    nodes = graph.nodes
    out = graph.output if output is None else output
    start = graph.var_nodes.get(name)
    if start is None or start > out:
        return 0.0
    tangent: list[float | None] = [None] * (out + 1)
    tangent[start] = 1.0
    for i in range(start + 1, out + 1):
        node = nodes[i]
        args = node.args
        if not args:
            continue
        codes = kinds.get(node.op)
        if len(args) == 2 and codes is not None:
            a, b = args
            ta, tb = tangent[a], tangent[b]
            if ta is None and tb is None:
                continue
            t = None
            if ta is not None:
                ka = codes[0]
                t = ta if ka == _ONE else values[b] * ta if ka == _OTHER else \
                    _partial(table, node.op, 0, values[i], (values[a], values[b])) * ta
            if tb is not None:
                kb = codes[1]
                term = tb if kb == _ONE else values[a] * tb if kb == _OTHER else -tb if kb == _MINUS_ONE \
                    else _partial(table, node.op, 1, values[i], (values[a], values[b])) * tb
                t = term if t is None else t + term
            tangent[i] = t
            continue
        live = [j for j, a in enumerate(args) if tangent[a] is not None]
        if not live:
            continue
        argv = [values[a] for a in args]
        numpy_parts: list[float] | None = None
        t = None
        for j in live:
            p = _scalar_partial(table, node.op, j, values[i], argv)
            if p is None:
                if numpy_parts is None:
                    numpy_parts = _numpy_partials(node.op, values[i], argv)
                p = numpy_parts[j]
            term = p * tangent[args[j]]  # type: ignore[operator]
            t = term if t is None else t + term
        tangent[i] = t
    result = tangent[out]
    return 0.0 if result is None else result


_KINDS: dict[str, tuple[int, ...]] = {}


def _kinds(table: Mapping[str, tuple[Callable[..., Any] | None, ...]]) -> dict[str, tuple[int, ...]]:
    """op -> how each partial is applied, for the ops of two arguments with verified partials."""
    if not _KINDS:
        for op, parts in table.items():
            if len(parts) == 2 and all(p is not None for p in parts):
                _KINDS[op] = tuple(_KIND.get(p, _GENERAL) for p in parts)  # type: ignore[arg-type]
    return _KINDS


def _scalar_partial(table: Mapping[str, tuple[Callable[..., Any] | None, ...]], op: str, j: int,
                    out: float, argv: Sequence[float]) -> float | None:
    """The scalar form of ∂out/∂args[j] if it has one that gives a finite number, else None."""
    parts = table.get(op)
    fn = parts[j] if parts is not None else None
    if fn is None:
        return None
    try:
        p = fn(out, *argv)
    except (ArithmeticError, ValueError):
        return None
    return None if p is None or p - p else p


def _partial(table: Mapping[str, tuple[Callable[..., Any] | None, ...]], op: str, j: int,
             out: float, argv: Sequence[float]) -> float:
    p = _scalar_partial(table, op, j, out, argv)
    return _numpy_partials(op, out, argv)[j] if p is None else p


def float_partials(graph: Graph, values: Sequence[float], i: int) -> list[float]:
    """Every local partial of node i at one point, as `float_backward` computes them."""
    with np.errstate(all="ignore"):
        return _float_partials(graph, values, i)


def float_partials_of(graph: Graph, values: Sequence[float]) -> Callable[[int], list[float]]:
    """`float_partials` for the nodes of one walk, the verified table looked up once (a walk
    over 10⁵ nodes would otherwise re-verify it per node); call it under np.errstate(all=
    "ignore")."""
    _, table = _verified()
    return lambda i: _float_partials(graph, values, i, table)


def _float_partials(graph: Graph, values: Sequence[float], i: int,
                    table: Mapping[str, tuple[Callable[..., Any] | None, ...]] | None = None) -> list[float]:
    if table is None:
        _, table = _verified()
    node = graph.nodes[i]
    argv = [values[a] for a in node.args]
    scalar = [_scalar_partial(table, node.op, j, values[i], argv) for j in range(len(argv))]
    if any(p is None for p in scalar):
        numpy_parts = _numpy_partials(node.op, values[i], argv)
        return [numpy_parts[j] if p is None else p for j, p in enumerate(scalar)]
    return scalar  # type: ignore[return-value]


def _depends(graph: Graph, wrt: Sequence[str], upto: int) -> list[bool]:
    """`graph.depends_on(wrt)` for the nodes up to `upto`, without a generator per node."""
    nodes = graph.nodes
    dep = [False] * len(nodes)
    for v in wrt:
        idx = graph.var_nodes.get(v)
        if idx is not None:
            dep[idx] = True
    for i in range(upto + 1):
        if not dep[i]:
            for a in nodes[i].args:
                if dep[a]:
                    dep[i] = True
                    break
    return dep


class PointValues(list):  # type: ignore[type-arg]
    """The values of a walk at one point: a list of numpy arrays like any walk's (views into one
    array, each of the point's batch shape), which also holds them as Python `floats`."""

    floats: list[float]
    shape: tuple[int, ...]


def _point_values(graph: Graph, interp: Values, n: int, keep: Container[int] | None) -> PointValues | None:
    got = point_floats(interp.point, interp.dtype)
    if got is None:
        return None
    point, shape = got
    unbatched = {v for v, p in interp.point.items() if np.ndim(p) == 0} if shape else ()
    with np.errstate(all="ignore"):
        walked = _float_walk(graph, point, n, unbatched)
    if walked is None:
        return None
    floats, flat = walked
    if keep is not None:
        out = PointValues([None] * n)
        for i in range(n):
            if i in keep:
                out[i] = np.full(() if flat[i] else shape, floats[i])
    else:
        out = PointValues(np.array(floats).reshape((n,) + shape))  # n views, one per node
        if shape:
            for i in range(n):
                if flat[i]:
                    out[i] = out[i].reshape(())  # unbatched, as numpy's walk keeps it
    out.floats, out.shape = floats, shape
    return out
