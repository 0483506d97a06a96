"""What the names of a program mean: versions, inputs, outputs and warnings.

A program is statements `name = formula` (or `+=`, `-=`, `*=`, `/=`), separated by `;` or
newlines; `parse.py` reads the text and asks a `Scope` what each name means as it goes, in
program order, exactly like Python runs straight-line code:

- A name that has been assigned means its latest version. Every assignment makes a new
  version with its own label, `c`, `c#2`, `c#3` (the trace shows each); `c += u` is
  `c#2 = c + (u)`.
- A name never assigned anywhere is an input of the program (a free variable; it needs a
  value). A name read before its first assignment is an error: the reader meant the step,
  which does not exist yet (Python's NameError). That is found when the assignment arrives,
  and the error points at the read.
- A first assignment of a plain number (`a = -4.0`, as micrograd's tests write their leaf
  Values) makes an *input with a default*: `a` is a variable whose value is -4.0 unless the
  point gives another, so the gradient is asked with respect to it, as micrograd's
  `a.grad`. A later plain-number assignment is an ordinary constant step, and so is one to a
  constant's name (an input called `e` or `pi` would be mistaken for the constant).
- Assigning a function's name (`sin = x`) is an error. Assigning a constant's name
  (`e = c - d`, as micrograd's tests do) is allowed: from that statement on the name means
  the step, before it the constant, and a warning says so.
- A step that nothing reads and that is not an output is a warning (a typo, or a forgotten
  `+=`).
- The output is the last statement's step unless outputs are named; a bare name means its
  last version, a label (`c#2`) that version.

Hash-consing may give two steps one node (`a = x*y; b = x*y`, or `b = a`); steps are records
beside the graph (`graph.Step`), so both names survive whatever the nodes are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import GradcheckError
from .functions import FUNCTIONS
from .graph import NAMED_CONSTANTS, GraphBuilder, ProgramWarning, Step

CONSTANT_NAMES = {"pi": "pi", "E": "E", "e": "E"}
_CONSTANT_WORDS = {"pi": "the constant pi = 3.14159...", "E": "Euler's number E = 2.71828...",
                   "e": "Euler's number e = 2.71828..."}

# Where a token is, for messages and records: (line, column) from a token index.
Locate = Callable[[int], tuple[int, int]]
# An error at a token: (kind, message with "{at}" for the place, token index) -> error.
Fail = Callable[[str, str, int], GradcheckError]


class Scope:
    """The names of one program while it is read (see the module docstring). `fail` makes an
    error at a token (its message says where with "{at}"), `locate` gives a token's line and
    column.

    A version is a plain tuple (name, node, token of the name, token that ended the statement,
    default), numbered in program order; labels and records are made once, at the end."""

    def __init__(self, builder: GraphBuilder, fail: Fail, locate: Locate) -> None:
        self.b = builder
        self.fail = fail
        self.locate = locate
        self.versions: list[tuple[str, int, int, int, float | None]] = []
        self.current: dict[str, tuple[int, int]] = {}  # name -> (latest version, its node)
        self.used = bytearray()  # per version: does anything read it
        self.replaced_at: dict[int, int] = {}  # version -> token of the name's next assignment
        self.inputs: dict[str, int] = {}  # free variable -> token of its first read
        self.warnings: list[tuple[int, str, str]] = []  # (token, kind, message)
        # name -> node for names whose reading needs no more bookkeeping (an input, a constant,
        # a version already marked used): the parser looks here before calling `read`
        self.known: dict[str, int] = {}

    def read(self, name: str, token: int) -> int:
        """The node a name means here (the first reading of it since it last changed)."""
        hit = self.current.get(name)
        if hit is not None:
            self.used[hit[0]] = 1
            node = hit[1]
        elif name in FUNCTIONS:
            raise self.fail("syntax", f"{name!r} is a function; call it as {name}(...) at {{at}}",
                            token)
        elif name in CONSTANT_NAMES:
            node = self.b.named_const(CONSTANT_NAMES[name])
        else:
            self.inputs[name] = token
            node = self.b.var(name)
        self.known[name] = node
        return node

    def assigned(self, name: str) -> bool:
        return name in self.current

    def target(self, name: str, token: int, augmented: bool) -> int | None:
        """Check an assignment to `name` before its right-hand side is read; for `+=` and the
        like, the node of the version it updates."""
        if name in FUNCTIONS:
            raise self.fail("syntax", f"cannot assign to {name!r} at {{at}}: it is a function; "
                            "choose another name for the step", token)
        if not augmented:
            return None
        if name not in self.current and name not in CONSTANT_NAMES:
            raise self.fail("undefined-name", f"{name!r} is updated at {{at}} before it is assigned; "
                            f"`{name} = ...` must come first", token)
        return self.read(name, token)

    def assign(self, name: str, node: int, token: int, end: int, default: float | None) -> None:
        """Record `name = ...` whose value is `node` (the statement's tokens end at `end`)."""
        read_at = self.inputs.get(name)
        if read_at is not None:  # read as an input earlier (or on the right of `x = x + 1`)
            line, _ = self.locate(token)
            raise self.fail("undefined-name", f"{name!r} is used at {{at}} before it is assigned "
                            f"(at line {line}); assign it first, or rename the input", read_at)
        previous = self.current.get(name)
        if previous is not None:
            self.replaced_at[previous[0]] = token
        elif name in CONSTANT_NAMES:
            self.warnings.append((token, "shadows-constant", (
                f"{name!r} is assigned here, so from this statement on {name} means this step; "
                f"before it, {name} is {_CONSTANT_WORDS[name]}")))
        self.current[name] = (len(self.versions), node)
        self.known.pop(name, None)  # its next reading marks the new version used
        self.versions.append((name, node, token, end, default))
        self.used.append(0)

    def labels(self) -> list[str]:
        """Each version's label: `c` for the first assignment of c, then `c#2`, `c#3`, ..."""
        count: dict[str, int] = {}
        labels = []
        for version in self.versions:
            name = version[0]
            n = count[name] = count.get(name, 0) + 1
            labels.append(name if n == 1 else f"{name}#{n}")
        return labels

    def outputs(self, names: Sequence[str] | None, end: int) -> list[int]:
        """The output versions: the named ones (a name means its last version, a label `c#2`
        that version), or the last statement's."""
        if names is None:
            if not self.versions:
                raise self.fail("syntax", "the program has no statements, only comments and blank lines "
                                "(the end is at {at})", end)
            out = [len(self.versions) - 1]
        else:
            if not names:
                raise GradcheckError("unknown-output", "no output named: give at least one step name.")
            by_label = {label: v for v, label in enumerate(self.labels())}
            out = []
            for name in names:
                hit = self.current.get(name)
                v = by_label.get(name) if "#" in name else None if hit is None else hit[0]
                if v is None:
                    why = (f"{name!r} is an input of the program, not a step" if name in self.inputs
                           else f"the program has no step called {name!r}")
                    steps = ", ".join(self.current)
                    if len(steps) > 200:
                        steps = steps[:199] + "…"
                    raise GradcheckError("unknown-output",
                                         f"unknown output {name!r}: {why} (its steps: {steps}).")
                out.append(v)
        for v in out:
            self.used[v] = 1
        return out

    def steps(self, labels: Sequence[str], where: Sequence[tuple[int, int, str]]) -> list[Step]:
        """Every step in program order, with the builder's node indices; `where` gives each
        version's line, column and statement text."""
        return [Step(label, name, node, line, column, text, default)
                for label, (name, node, _, _, default), (line, column, text)
                in zip(labels, self.versions, where)]

    def all_warnings(self, labels: Sequence[str]) -> list[ProgramWarning]:
        """The shadowed constants and the steps nothing reads, in program order."""
        found = list(self.warnings)
        for v in (v for v, used in enumerate(self.used) if not used):
            name, _, token, _, _ = self.versions[v]
            if v in self.replaced_at:
                line, _ = self.locate(self.replaced_at[v])
                message = (f"step {labels[v]!r} is never used: {name!r} is assigned again at line "
                           f"{line} before anything reads it")
            else:
                message = f"step {labels[v]!r} is never used: no later step reads it and it is not an output"
            found.append((token, "unused-step", message))
        found.sort(key=lambda w: w[0])
        return [ProgramWarning(kind, message, *self.locate(token)) for token, kind, message in found]


__all__ = ["CONSTANT_NAMES", "NAMED_CONSTANTS", "Scope"]
