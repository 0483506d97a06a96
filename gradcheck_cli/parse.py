"""Formula and program text → computation graph. The only module that reads a user's text.

The grammar is a whitelist: decimal numbers, names, unary + and -, the binary operators
+ - * / and power (`**` or `^`), parentheses, and calls of the functions in `functions.py`.
Nothing is ever passed to eval, exec, compile, sympify or parse_expr.

Precedence is Python's: `**`/`^` binds tightest and is right-associative (`2**3**2` is 2**9),
then unary signs (`-x**2` is -(x**2), `x**-2` is x**(-2)), then `* /`, then `+ -`. Unlike Python,
`^` is power with exactly the precedence of `**`, because that is what users mean by `x^2+1`.
`log(x, b)`, the logarithm to base b, is read as log(x)/log(b), so every method (the SymPy
one reads the graph too) sees the same function.

A text with an `=` is a *program*: statements `name = formula` (or `+=`, `-=`, `*=`, `/=`)
separated by `;` or newlines, `#` comments to the end of a line, a newline inside parentheses
continuing the statement (as in Python). What the names mean — versions `c`, `c#2`, inputs,
outputs, warnings — is `program.py`'s. An error in a program is a `ProgramError`: its message
says the line and the column within it, and its caret shows that line. A text without `=` is a
formula exactly as before: `;` and `#` are not allowed in it.

The parser is an operator-precedence (shunting-yard) loop with explicit stacks, so nesting depth
is bounded only by `Limits.max_depth`, never by Python's recursion limit. It builds the graph as
it goes: every subexpression is interned on creation, which merges repeated subexpressions.

Speed: linear in the text, 10^5 nodes in about 0.2 s (0.35 s as a program with a step per line).
One regular expression splits the whole text at once (`re.findall`: no Python work per
character or blank), tokens are plain strings classified by their first character, a token's
place is computed only when a message or a step record needs it, repeated numbers and names are
looked up once, nodes are interned by plain tuples (`graph.GraphBuilder`), and the cyclic
garbage collector is paused while parsing (`_collector_paused` says why).
"""

from __future__ import annotations

import gc
import re
import sys
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate, compress
from typing import Any, NoReturn

from .errors import GradcheckError
from .functions import FUNCTIONS
from .graph import NAMED_CONSTANTS, Graph, GraphBuilder
from .limits import DEFAULT_LIMITS, Limits
from .program import CONSTANT_NAMES, Scope

_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# One match per token: blanks, then the token (group 1). A character that starts no token is a
# token of its own, refused before parsing; the last match is the end, an empty token. With the
# token's group made non-capturing, the same pattern gives each match whole (blanks included),
# whose running length locates the tokens: the same matches, in the same order.
_FORMULA_BLANK = r"[ \t\r\n]*+"
_FORMULA_TOKEN = rf"{_NAME}|[(),^]|\*\*|[-+*/]|{_NUM}|[^ \t\r\n]|\Z"
# In a program a newline ends a statement, and blanks include a comment to the end of the line
# (possessive: a regex engine must never backtrack into a comment and find a token there).
_PROGRAM_BLANK = r"[ \t\r]*+(?:#[^\n]*+)?"
_PROGRAM_TOKEN = rf"{_NAME}|[(),^;\n]|\*\*|==|[-+*/]?=|[-+*/]|{_NUM}|[^ \t\r\n]|\Z"
_TOKENS = {False: re.compile(f"{_FORMULA_BLANK}({_FORMULA_TOKEN})"),
           True: re.compile(f"{_PROGRAM_BLANK}({_PROGRAM_TOKEN})")}
_MATCHES = {False: re.compile(f"{_FORMULA_BLANK}(?:{_FORMULA_TOKEN})"),
            True: re.compile(f"{_PROGRAM_BLANK}(?:{_PROGRAM_TOKEN})")}
# A character outside these is refused wherever it is (outside a comment); a '.' can still be
# refused where it starts no number (`x.y`), which the token list shows.
_UNUSUAL = {False: re.compile(r"[^ \t\r\n0-9A-Za-z_.+\-*/^(),]"),
            True: re.compile(r"[^ \t\r\n0-9A-Za-z_.+\-*/^(),;=]")}
_COMMENT = re.compile(r"#[^\n]*")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NUM_START = frozenset("0123456789.")
# What a token may start with; any other one-character token is a refused character.
_ALLOWED = {False: _NAME_START | _NUM_START | frozenset("+-*/^(),"),
            True: _NAME_START | _NUM_START | frozenset("+-*/^(),;=\n")}
_ASSIGN = {"=": None, "+=": "add", "-=": "sub", "*=": "mul", "/=": "div"}
_STATEMENT_END = frozenset(("", ";", "\n"))

# Binary operators: precedence and right-associativity.
_BINARY = {"+": (1, False, "add"), "-": (1, False, "sub"), "*": (2, False, "mul"),
           "/": (2, False, "div"), "**": (4, True, "pow"), "^": (4, True, "pow")}
_UNARY_PREC = 3


@dataclass(frozen=True)
class Token:
    kind: str  # num, name, op, end
    text: str
    column: int  # 1-based


def describe_char(ch: str) -> str:
    """`'х' (U+0445 CYRILLIC SMALL LETTER HA)`, for error messages."""
    name = unicodedata.name(ch, "unnamed character")
    shown = repr(ch) if ch.isprintable() else f"'\\x{ord(ch):02x}'" if ord(ch) < 256 else "?"
    return f"{shown} (U+{ord(ch):04X} {name})"


def _bad_char_hint(ch: str, program: bool) -> str:
    if ord(ch) > 127:
        hint = (
            "formulas are plain ASCII: letters that look like Latin ones (Cyrillic, Greek, "
            "fullwidth) would silently be new variables with zero derivative. Retype it in ASCII"
        )
        if ch in "\u2212\u2013\u2014":
            hint = "use the ASCII hyphen-minus '-'"
        elif ch in "\u00d7\u22c5\u00b7":
            hint = "use '*' for multiplication"
        elif ch == "\u00f7":
            hint = "use '/' for division"
        elif ch in "\u00b2\u00b3":
            hint = "write powers as x**2 or x^2"
    elif not ch.isprintable():
        hint = "control characters are not allowed in a formula"
    elif program:
        hint = ("allowed are numbers, names, + - * / ** ^ ( ) ',', and in a program '=', "
                "'+=' '-=' '*=' '/=', ';', newlines and # comments")
    else:
        hint = "allowed are numbers, names, + - * / ** ^ ( ) and ','"
    return hint


def tokenize(text: str, limits: Limits = DEFAULT_LIMITS) -> list[Token]:
    """The tokens of a formula (not a program), with their kinds and columns; the parser itself
    works on `_Source`'s plain strings."""
    src = _Source(text, False, limits)

    def kind(t: str) -> str:
        return "end" if not t else "num" if t[0] in _NUM_START else "name" if t[0] in _NAME_START else "op"

    return [Token(kind(t), t, src.offset(k) + 1) for k, t in enumerate(src.tokens)]


_FLOAT_MAX = Fraction(sys.float_info.max)
_FLOAT_TINY = Fraction(2) ** -1074  # the smallest positive (subnormal) float64


def _function_list() -> str:
    return ", ".join(sorted(FUNCTIONS))


# Calls the parser rewrites before the function table sees them: name -> (largest argument
# count it accepts, builder of the rewritten graph). log(x, b) is log(x)/log(b).
_SUGAR: dict[str, tuple[int, Callable[[GraphBuilder, list[int]], int]]] = {
    "log": (2, lambda b, a: b.op("div", (b.op("log", (a[0],)), b.op("log", (a[1],))))),
}


class ProgramError(GradcheckError):
    """Bad input in a program. As for every `GradcheckError`, `column` counts in `source`, the
    whole text; `line` and `line_column` (1-based) say where in which line, as the message does,
    and the caret shows that line."""

    def __init__(self, kind: str, message: str, *, column: int | None = None,
                 source: str | None = None, line: int = 1, line_column: int = 1) -> None:
        super().__init__(kind, message, column=column, source=source)
        self.line = line
        self.line_column = line_column

    def caret(self) -> str | None:
        if self.column is None or self.source is None:
            return None
        start = self.source.rfind("\n", 0, self.column - 1) + 1
        stop = self.source.find("\n", start)
        text = self.source[start: None if stop < 0 else stop]
        return GradcheckError(self.kind, self.message, column=self.line_column, source=text).caret()


class _Source:
    """The text, split into tokens, and where each token is.

    `tokens` are plain strings ("" is the end); a token's offset is found from the running sum
    of the matched lengths, which is computed once and only when something needs a place."""

    def __init__(self, text: str, program: bool, limits: Limits) -> None:
        self.text = text
        self.program = program
        self.tokens: list[str] = _TOKENS[program].findall(text)
        self._ends: list[int] | None = None
        self._line_starts: list[int] | None = None
        # places are given by line and column in a program, and in a formula of several lines
        # (read from a file): a column alone would count across the line breaks
        self.lines = program or "\n" in text.strip()
        # Refused characters and over-long numbers are reported before any syntax error, the
        # first in the text first. The checks run in C; the loop runs only when one fires.
        code = _COMMENT.sub("", text) if program and "#" in text else text
        if (_UNUSUAL[program].search(code) or "." in self.tokens
                or max(map(len, self.tokens)) > limits.max_digits):
            self._check_tokens(limits)

    def _check_tokens(self, limits: Limits) -> None:
        allowed = _ALLOWED[self.program]
        for k, tok in enumerate(self.tokens):
            if tok and (tok[0] not in allowed or tok == "."):
                raise self.error("syntax", f"unexpected character {describe_char(tok)} at {{at}}: "
                                 f"{_bad_char_hint(tok, self.program)}.", k)
            if tok and tok[0] in _NUM_START:
                mantissa, _, exponent = tok.lower().partition("e")
                digits = sum(c.isdigit() for c in mantissa)
                significant_exponent = exponent.lstrip("+-").lstrip("0")
                if len(significant_exponent) <= 4:  # longer: out of range, said by `number`
                    # leading zeros of an exponent count too: no 4,000-digit "1e-000…01"
                    digits = max(digits, len(exponent.lstrip("+-")))
                if digits > limits.max_digits:
                    raise self.error(
                        "limit", f"the number at {{at}} has {digits} digits; the limit is "
                        f"{limits.max_digits} (raise it with --max-digits).", k)

    def offset(self, k: int) -> int:
        """0-based offset of token k in the text."""
        if self._ends is None:
            matches = _MATCHES[self.program].findall(self.text)
            assert len(matches) == len(self.tokens)
            self._ends = list(accumulate(map(len, matches)))
        return self._ends[k] - len(self.tokens[k])

    def end_offset(self, k: int) -> int:
        self.offset(k)
        assert self._ends is not None
        return self._ends[k]

    def locate(self, k: int) -> tuple[int, int]:
        """1-based (line, column) of token k; in a formula the line is always 1 and the column
        counts from the start of the text (newlines are blanks there)."""
        off = self.offset(k)
        if not self.lines:
            return 1, off + 1
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        line = bisect_right(self._line_starts, off)
        return line, off - self._line_starts[line - 1] + 1

    def where(self, k: int) -> str:
        line, column = self.locate(k)
        return f"line {line}, column {column}" if self.lines else f"column {column}"

    def error(self, kind: str, message: str, k: int) -> GradcheckError:
        """An error at token k; `{at}` in the message becomes its place, and a full stop ends
        it. In a program, a `ProgramError`: the message gives the line and the column in it."""
        line, column = self.locate(k)
        message = message.replace("{at}", self.where(k))
        if not message.endswith("."):
            message += "."
        if not self.lines:
            return GradcheckError(kind, message, column=column, source=self.text)
        return ProgramError(kind, message, column=self.offset(k) + 1, source=self.text,
                            line=line, line_column=column)

    def statements(self, firsts: Sequence[int], ends: Sequence[int]) -> list[tuple[int, int, str]]:
        """(line, column, text on one line) of the statements whose tokens are first..end-1.

        A statement alone on its line (the usual case, and every line of a long generated
        program) is read off the line itself: its line is the count of newline tokens before
        it, its text the line without its comment. Only other statements need token offsets,
        which cost another pass over the whole text."""
        tokens, lines = self.tokens, self.text.split("\n")
        newlines = list(compress(range(len(tokens)), map("\n".__eq__, tokens)))
        last_line = len(newlines)
        out = []
        for first, end in zip(firsts, ends):
            line = bisect_left(newlines, first)  # newline tokens before the statement
            ender = tokens[end]
            if ((first == 0 or tokens[first - 1] == "\n")  # first on its line, and ends it:
                    and (newlines[line] == end if ender == "\n" else ender == "" and line == last_line)):
                code = lines[line].partition("#")[0]
                text = code.lstrip(" \t\r")
                out.append((line + 1, len(code) - len(text) + 1, text.rstrip(" \t\r")))
            else:
                piece = self.text[self.offset(first): self.end_offset(end - 1)]
                if "\n" in piece:  # over several lines: one line, without comments
                    piece = " ".join(_COMMENT.sub("", piece).split())
                out.append((*self.locate(first), piece))
        return out


def parse(text: str, limits: Limits = DEFAULT_LIMITS, *, outputs: Sequence[str] | None = None) -> Graph:
    """Parse a formula or a program into a computation graph, or raise GradcheckError saying
    where and why. `outputs` names a program's output steps (default: its last statement);
    a formula has one output and no names."""
    if len(text) > limits.max_length:
        raise GradcheckError(
            "limit",
            f"the formula is {len(text)} characters long; the limit is {limits.max_length} "
            "(raise it with --max-length).",
        )
    if not text.strip():
        raise GradcheckError("syntax", "the formula is empty.")
    program = "=" in text
    if outputs is not None and not program:
        raise GradcheckError(
            "unknown-output",
            f"unknown output {some(outputs)}: a formula has no named steps; write a program "
            "(`q = x + y; f = q*z`) to name outputs.",
        )
    with _collector_paused():
        parser = _Parser(_Source(text, program, limits), limits)
        return parser.program(outputs) if program else parser.formula()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a text is parsed.

    Parsing makes one long-lived object per node (a `Node`, which as a tuple subclass the
    collector never stops tracking) and no reference cycles, so a collection during parsing
    can free nothing; yet every full collection scans all live objects, and the larger the
    graph, the more of them: with the collector on, parsing grew faster than the text (15-18x
    per 10x nodes from 10^4 to 10^5 nodes, against 10x paused) and took 1.7x as long at 10^5.
    Reference counting still frees what parsing drops at once; the collector runs again, as
    before, when parsing is done (or fails)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def some(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in list(names)[:5]) + (" ..." if len(names) > 5 else "")


class _Parser:
    def __init__(self, src: _Source, limits: Limits) -> None:
        self.src = src
        self.limits = limits
        self.b = GraphBuilder()
        self.numbers: dict[str, int] = {}  # literal text -> node, each literal parsed once

    # -- a formula ------------------------------------------------------------------------

    def formula(self) -> Graph:
        names: dict[str, int] = {}
        b = self.b

        def resolve(name: str, k: int) -> int:  # a name's first reading
            if name in FUNCTIONS:
                raise self.src.error(
                    "syntax", f"{name!r} is a function; call it as {name}(...) at {{at}}", k)
            node = b.named_const(CONSTANT_NAMES[name]) if name in CONSTANT_NAMES else b.var(name)
            names[name] = node
            return node

        node, _ = self.expression(0, resolve, names)
        return b.build(node)

    # -- a program ------------------------------------------------------------------------

    def program(self, outputs: Sequence[str] | None) -> Graph:
        src, b, tokens = self.src, self.b, self.src.tokens
        scope = Scope(b, src.error, src.locate)
        read, known = scope.read, scope.known
        defaults: dict[str, float] = {}
        i = 0
        while True:
            tok = tokens[i]
            if tok == "\n" or tok == ";":
                i += 1
                continue
            if tok == "":
                break
            if tok[0] in _NAME_START and tokens[i + 1] in _ASSIGN:
                k, update = i, _ASSIGN[tokens[i + 1]]
                left = None
                if update is not None or tok in FUNCTIONS:
                    left = scope.target(tok, k, update is not None)
                # `a = -4.0` alone on its line: an input with a default value, read without
                # making (and hashing) the constant node the expression would build
                end = i + 3 if tokens[i + 2] not in ("-", "+") else i + 4
                if update is None and end < len(tokens) and tokens[end] in ("\n", ";", "") \
                        and not scope.assigned(tok) \
                        and tok not in CONSTANT_NAMES:
                    default = self._plain_number(k + 2, end)
                    if default is not None:
                        node, i = b.var(tok), end
                        defaults[tok] = default
                        scope.assign(tok, node, k, i, default)
                        continue
                node, i = self.expression(i + 2, read, known)
                if update is not None:
                    assert left is not None
                    node = b.op(update, (left, node))
                scope.assign(tok, node, k, i, None)
            else:
                # Not `name = ...`: read it as a formula first, so that its own mistake (`x == y`,
                # `2*x = y`) is the one reported, then refuse the statement.
                if tok in _BINARY and i > 0 and tokens[i - 1] == "\n":
                    raise src.error("syntax", f"a line starts with {tok!r} at {{at}}: a statement goes "
                                    "on over lines only inside parentheses, as in Python", i)
                self.expression(i, read, known)
                raise src.error("syntax", "a statement of a program assigns a step, `name = formula`; "
                                "the one at {at} does not", i)
        chosen = scope.outputs(outputs, i)
        labels = scope.labels()
        node_labels: dict[int, str] = {}
        free = {b.var(name) for name in scope.inputs}  # an alias (`b = x`) never renames an input
        for label, version in zip(labels, scope.versions):
            node = version[1]
            if node not in node_labels and node not in free:
                node_labels[node] = label
        where = src.statements([v[2] for v in scope.versions], [v[3] for v in scope.versions])
        return b.build(
            [scope.versions[v][1] for v in chosen], node_labels,
            steps=scope.steps(labels, where),
            output_names=[scope.versions[v][0] for v in chosen],
            defaults=defaults, warnings=scope.all_warnings(labels),
        )

    def _plain_number(self, first: int, end: int) -> float | None:
        """The value of tokens first..end-1 when they are a plain number, optionally signed."""
        tokens = self.src.tokens
        sign = 1
        if end - first == 2 and tokens[first] in ("-", "+"):
            sign = -1 if tokens[first] == "-" else 1
            first += 1
        if end - first != 1 or tokens[first][0] not in _NUM_START:
            return None
        return sign * float(self.number(first))

    # -- an expression --------------------------------------------------------------------

    def number(self, k: int) -> Fraction:
        tok = self.src.tokens[k]
        mantissa, _, exponent = tok.lower().partition("e")
        if not exponent and len(mantissa) < 300:  # the common case: no exponent, so within
            return Fraction(mantissa)  # float64's range (fewer than 300 digits on either side)
        # Refuse absurd exponents before building 10**exponent exactly (the digit limit has
        # already bounded the mantissa).
        digits = exponent.lstrip("+-").lstrip("0")
        power = int(digits) if digits and len(digits) <= 4 else (10**5 if digits else 0)
        if exponent.startswith("-"):
            power = -power
        value = Fraction(0)
        if abs(power) <= 800:
            value = Fraction(mantissa) * Fraction(10) ** power
        elif Fraction(mantissa) == 0:
            return value
        if abs(power) > 800 or (value != 0 and not (_FLOAT_TINY <= abs(value) <= _FLOAT_MAX)):
            raise self.src.error(
                "bad-number", f"the number {tok!r} at {{at}} is outside the range of float64 "
                "(about 5e-324 to 1.8e308).", k)
        return value

    def expression(self, i: int, resolve: Callable[[str, int], int],
                   known: dict[str, int]) -> tuple[int, int]:
        """Parse the expression that starts at token i; return its node and the index of the
        token that ended it (the end, or in a program ';' or a newline outside parentheses).
        A name is looked up in `known` (what it means, once its meaning is settled), else
        `resolve` says what it means and may add it to `known`.

        The operator stack holds tuples (kind, precedence, ...): a binary operator
        ("bin", prec, right_assoc, op, token), a unary sign ("neg"/"pos", 3, False, op, token),
        an open parenthesis ("(", -1, function or None, operand height, token, name token).
        An open parenthesis has precedence -1, so reducing by precedence stops at it by itself;
        plain tuples of strings and ints also keep the garbage collector's work small."""
        src, b, tokens, numbers = self.src, self.b, self.src.tokens, self.numbers
        max_depth = self.limits.max_depth
        b_op = b.op
        operands: list[int] = []
        ops: list[tuple[Any, ...]] = []
        depth = 0  # open parentheses plus pending unary signs: the formula's nesting
        frames = 0  # open parentheses: inside them a newline is a blank
        expect_operand = True
        while True:
            tok = tokens[i]
            k = i
            i += 1
            if expect_operand:
                first = tok[:1]
                if first in _NAME_START:
                    if tokens[i] != "(":
                        node = known.get(tok)
                        operands.append(resolve(tok, k) if node is None else node)
                        expect_operand = False
                        continue
                    if tok not in FUNCTIONS:
                        what = "a constant" if tok in CONSTANT_NAMES else "not a known function"
                        raise src.error("unknown-function", f"{tok!r} is {what}; known functions are "
                                        f"{_function_list()}; '{tok}(' is used at {{at}}", k)
                    depth += 1
                    if depth > max_depth:
                        raise self._too_deep(k)
                    frames += 1
                    ops.append(("(", -1, tok, len(operands), i, k))
                    i += 1
                    while tokens[i] == "\n":
                        i += 1
                    if tokens[i] == ")":
                        raise src.error("syntax", f"{tok}() needs an argument at {{at}}", i)
                elif first in _NUM_START:
                    node = numbers.get(tok)
                    if node is None:
                        node = numbers[tok] = b.const(self.number(k))
                    operands.append(node)
                    expect_operand = False
                elif tok == "-" or tok == "+":
                    depth += 1
                    if depth > max_depth:
                        raise self._too_deep(k)
                    ops.append(("neg", _UNARY_PREC, False, "neg", k) if tok == "-"
                               else ("pos", _UNARY_PREC, False, None, k))
                elif tok == "(":
                    depth += 1
                    if depth > max_depth:
                        raise self._too_deep(k)
                    frames += 1
                    ops.append(("(", -1, None, len(operands), k, k))
                elif tok == "\n" and frames:
                    continue
                elif tok in _STATEMENT_END:
                    what = "statement" if src.program else "formula"
                    raise src.error("syntax", f"the {what} ends where a number, name or '(' was "
                                    "expected at {at}", k)
                else:
                    self._misplaced(tok, k, "expected a number, name or '(' but found")
                continue

            # expecting an operator, ',', ')' or the end
            binary = _BINARY.get(tok)
            if binary is not None:
                prec, right, op = binary
            elif tok == ")" or tok == ",":
                prec, right = -1, True  # reduce down to the open parenthesis
            elif tok == "\n" and frames:
                continue
            elif tok in _STATEMENT_END:
                prec, right = -1, True
            else:
                self._misplaced(tok, k, "expected an operator but found")
            while ops:  # apply what binds tighter than this token
                top = ops[-1]
                if top[1] < prec or (top[1] == prec and right):
                    break
                ops.pop()
                if top[0] == "bin":
                    rhs = operands.pop()
                    if top[3] == "pow":
                        self._check_exponent(rhs, top[4])
                    operands[-1] = b_op(top[3], (operands[-1], rhs))
                else:
                    depth -= 1
                    if top[3] is not None:
                        operands[-1] = b_op("neg", (operands[-1],))
            if binary is not None:
                ops.append(("bin", prec, right, op, k))
                expect_operand = True
            elif tok == ")" or tok == ",":
                if not ops:
                    what = "unmatched ')'" if tok == ")" else "',' outside a function call"
                    raise src.error("syntax", f"{what} at {{at}}", k)
                frame = ops[-1]
                if tok == ",":
                    if frame[2] is None:
                        raise src.error("syntax", "',' outside a function call at {at}", k)
                    expect_operand = True
                    while tokens[i] == "\n":
                        i += 1
                    if tokens[i] == "," or tokens[i] == ")":
                        raise src.error("syntax", "empty argument at {at}", i)
                    continue
                ops.pop()
                depth -= 1
                frames -= 1
                if frame[2] is not None:
                    base = frame[3]
                    args = operands[base:]
                    del operands[base:]
                    operands.append(self._call(frame[2], frame[5], args))
            else:  # the end of the expression
                if ops:
                    frame = ops[-1]
                    name = f"{frame[2]}(" if frame[2] else "'('"
                    raise src.error("syntax", f"{name} at {{at}} is never closed", frame[4])
                return operands[0], k

    def _too_deep(self, k: int) -> GradcheckError:
        return self.src.error("limit", f"the formula nests deeper than {self.limits.max_depth} levels "
                              "(raise the limit with --max-depth) at {at}", k)

    def _misplaced(self, tok: str, k: int, expected: str) -> NoReturn:
        """The error for a token where it cannot stand."""
        src = self.src
        if tok == "==":
            raise src.error(
                "syntax", f"unexpected character {describe_char('=')} at {{at}}: '==' compares, and "
                "gradcheck has no comparisons (a program assigns with one '=')", k)
        if tok in _ASSIGN:
            raise src.error(
                "syntax", f"unexpected {tok!r} at {{at}}: a statement is `name = formula`, with one "
                "name on the left and one assignment (statements are separated by ';' or newlines)", k)
        hint = ""
        if expected.startswith("expected an operator") and (
                tok[:1] in _NAME_START or tok[:1] in _NUM_START or tok == "("):
            hint = " (multiplication needs an explicit '*', e.g. 2*x)"
        raise src.error("syntax", f"{expected} {tok!r}{hint} at {{at}}", k)

    def _call(self, name: str, name_token: int, args: list[int]) -> int:
        b = self.b
        fn = FUNCTIONS[name]
        n = len(args)
        if n == fn.max_args == fn.min_args:  # the usual call, no optional argument
            return b.op(fn.op, tuple(args))
        sugar = _SUGAR.get(name)
        most = fn.max_args if sugar is None else sugar[0]
        if n < fn.min_args or (most is not None and n > most):
            if most is None:
                want = f"at least {fn.min_args}"
            elif fn.min_args == most:
                want = str(fn.min_args)
            else:
                want = f"{fn.min_args} to {most}"
            plural = "" if want == "1" else "s"
            raise self.src.error(
                "syntax", f"{name}() takes {want} argument{plural} but got {n}, at {{at}}",
                name_token)
        if fn.max_args is not None and n > fn.max_args:  # the parser's own reading
            assert sugar is not None
            return sugar[1](b, args)
        if fn.max_args is not None and n < fn.max_args:
            args = args + [b.const(d) for d in fn.defaults[n - fn.min_args:]]
        return b.op(fn.op, args)

    def _check_exponent(self, rhs: int, k: int) -> None:
        node = self.b.node(rhs)
        if node.op == "const" and node.exact is not None and node.exact.denominator == 1:
            if abs(node.exact) > self.limits.max_exponent:
                raise self.src.error(
                    "limit", f"the integer exponent {node.exact} at {{at}} exceeds the limit "
                    f"{self.limits.max_exponent} (raise it with --max-exponent)", k)


__all__ = ["parse", "tokenize", "ProgramError", "CONSTANT_NAMES", "NAMED_CONSTANTS", "describe_char"]
