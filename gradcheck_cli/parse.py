"""Formula text → computation graph. The only module that reads a user's formula.

The grammar is a whitelist: decimal numbers, names, unary + and -, the binary operators
+ - * / and power (`**` or `^`), parentheses, and calls of the functions in `functions.py`.
Nothing is ever passed to eval, exec, compile, sympify or parse_expr.

Precedence is Python's: `**`/`^` binds tightest and is right-associative (`2**3**2` is 2**9),
then unary signs (`-x**2` is -(x**2), `x**-2` is x**(-2)), then `* /`, then `+ -`. Unlike Python,
`^` is power with exactly the precedence of `**`, because that is what users mean by `x^2+1`.

The parser is an operator-precedence (shunting-yard) loop with explicit stacks, so nesting depth
is bounded only by `Limits.max_depth`, never by Python's recursion limit. It builds the graph as
it goes: every subexpression is interned on creation, which merges repeated subexpressions.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from .errors import GradcheckError
from .functions import FUNCTIONS
from .graph import NAMED_CONSTANTS, Graph, GraphBuilder
from .limits import DEFAULT_LIMITS, Limits

CONSTANT_NAMES = {"pi": "pi", "E": "E", "e": "E"}

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^(),])
    """,
    re.VERBOSE,
)

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


def _bad_char_error(text: str, i: int) -> GradcheckError:
    ch = text[i]
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
    else:
        hint = "allowed are numbers, names, + - * / ** ^ ( ) and ','"
    return GradcheckError(
        "syntax",
        f"unexpected character {describe_char(ch)} at column {i + 1}: {hint}.",
        column=i + 1,
        source=text,
    )


def tokenize(text: str, limits: Limits = DEFAULT_LIMITS) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        m = _TOKEN.match(text, i)
        if m is None:
            raise _bad_char_error(text, i)
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            tok = m.group()
            if kind == "num":
                mantissa, _, exponent = tok.lower().partition("e")
                digits = sum(c.isdigit() for c in mantissa)
                significant_exponent = exponent.lstrip("+-").lstrip("0")
                if len(significant_exponent) <= 4:  # longer: out of range, said by _number
                    # leading zeros of an exponent count too: no 4,000-digit "1e-000…01"
                    digits = max(digits, len(exponent.lstrip("+-")))
                if digits > limits.max_digits:
                    raise GradcheckError(
                        "limit",
                        f"the number at column {i + 1} has {digits} digits; the limit is "
                        f"{limits.max_digits} (raise it with --max-digits).",
                        column=i + 1, source=text,
                    )
            tokens.append(Token(kind, tok, i + 1))
        i = m.end()
    tokens.append(Token("end", "", n + 1))
    return tokens


_FLOAT_MAX = Fraction(sys.float_info.max)
_FLOAT_TINY = Fraction(2) ** -1074  # the smallest positive (subnormal) float64


def _number(tok: Token, text: str) -> Fraction:
    def out_of_range() -> GradcheckError:
        return GradcheckError(
            "bad-number",
            f"the number {tok.text!r} at column {tok.column} is outside the range of float64 "
            "(about 5e-324 to 1.8e308).",
            column=tok.column, source=text,
        )

    mantissa, _, exponent = tok.text.lower().partition("e")
    # Refuse absurd exponents before building 10**exponent exactly (the digit limit has
    # already bounded the mantissa).
    digits = exponent.lstrip("+-").lstrip("0")
    power = int(digits) if digits and len(digits) <= 4 else (10**5 if digits else 0)
    if exponent.startswith("-"):
        power = -power
    if abs(power) > 800:
        if Fraction(mantissa) == 0:
            return Fraction(0)
        raise out_of_range()
    value = Fraction(mantissa) * Fraction(10) ** power
    if value != 0 and not (_FLOAT_TINY <= abs(value) <= _FLOAT_MAX):
        raise out_of_range()
    return value


def _function_list() -> str:
    return ", ".join(sorted(FUNCTIONS))


@dataclass
class _Frame:
    """An open parenthesis on the operator stack: grouping, or a call collecting arguments."""

    column: int
    function: str | None
    operand_base: int  # operand-stack height when the frame opened
    args: int = 0
    name_column: int = 0  # where the function's name starts


def parse(text: str, limits: Limits = DEFAULT_LIMITS) -> Graph:
    """Parse `text` into a computation graph, or raise GradcheckError saying where and why."""
    if len(text) > limits.max_length:
        raise GradcheckError(
            "limit",
            f"the formula is {len(text)} characters long; the limit is {limits.max_length} "
            "(raise it with --max-length).",
        )
    if not text.strip():
        raise GradcheckError("syntax", "the formula is empty.")
    tokens = tokenize(text, limits)
    b = GraphBuilder()
    operands: list[int] = []
    # Operator stack entries: ("bin", prec, right, op, column) | ("neg"/"pos", column) | _Frame
    ops: list[object] = []
    depth = 0  # open frames plus pending unary signs: the formula's nesting

    def err(msg: str, tok: Token, kind: str = "syntax") -> GradcheckError:
        return GradcheckError(kind, f"{msg} at column {tok.column}.", column=tok.column,
                              source=text)

    def apply_top() -> None:
        nonlocal depth
        top = ops.pop()
        assert isinstance(top, tuple)
        if top[0] == "bin":
            rhs = operands.pop()
            lhs = operands.pop()
            if top[3] == "pow":
                _check_exponent(b, rhs, limits, text, top[4])
            operands.append(b.op(top[3], (lhs, rhs)))
        else:
            depth -= 1
            if top[0] == "neg":
                operands.append(b.op("neg", (operands.pop(),)))

    def enter(tok: Token) -> None:
        nonlocal depth
        depth += 1
        if depth > limits.max_depth:
            raise err(
                f"the formula nests deeper than {limits.max_depth} levels "
                "(raise the limit with --max-depth)", tok, kind="limit",
            )

    expect_operand = True
    i = 0
    while True:
        tok = tokens[i]
        i += 1
        if expect_operand:
            if tok.kind == "num":
                operands.append(b.const(_number(tok, text)))
                expect_operand = False
            elif tok.kind == "name":
                if tokens[i].text == "(":
                    fn = FUNCTIONS.get(tok.text)
                    if fn is None:
                        what = ("a constant" if tok.text in CONSTANT_NAMES
                                else "not a known function")
                        raise err(
                            f"{tok.text!r} is {what}; known functions are {_function_list()}; "
                            f"'{tok.text}(' is used", tok, kind="unknown-function",
                        )
                    enter(tok)
                    ops.append(_Frame(tokens[i].column, tok.text, len(operands),
                                      name_column=tok.column))
                    i += 1
                    if tokens[i].text == ")":
                        raise err(f"{tok.text}() needs an argument", tokens[i])
                elif tok.text in FUNCTIONS:
                    raise err(f"{tok.text!r} is a function; call it as {tok.text}(...)", tok)
                elif tok.text in CONSTANT_NAMES:
                    operands.append(b.named_const(CONSTANT_NAMES[tok.text]))
                    expect_operand = False
                else:
                    operands.append(b.var(tok.text))
                    expect_operand = False
            elif tok.text in ("-", "+"):
                enter(tok)
                ops.append(("neg" if tok.text == "-" else "pos", tok.column))
            elif tok.text == "(":
                enter(tok)
                ops.append(_Frame(tok.column, None, len(operands)))
            elif tok.kind == "end":
                raise err("the formula ends where a number, name or '(' was expected", tok)
            else:
                raise err(f"expected a number, name or '(' but found {tok.text!r}", tok)
            continue

        # expecting an operator, ',' or ')'
        if tok.kind == "op" and tok.text in _BINARY:
            prec, right, op = _BINARY[tok.text]
            while ops and isinstance(ops[-1], tuple):
                top = ops[-1]
                top_prec = top[1] if top[0] == "bin" else _UNARY_PREC
                if top_prec > prec or (top_prec == prec and not right):
                    apply_top()
                else:
                    break
            ops.append(("bin", prec, right, op, tok.column))
            expect_operand = True
        elif tok.text in (")", ","):
            while ops and isinstance(ops[-1], tuple):
                apply_top()
            if not ops:
                what = "unmatched ')'" if tok.text == ")" else "',' outside a function call"
                raise err(what, tok)
            frame = ops[-1]
            assert isinstance(frame, _Frame)
            if tok.text == ",":
                if frame.function is None:
                    raise err("',' outside a function call", tok)
                frame.args += 1
                expect_operand = True
                if tokens[i].text in (",", ")"):
                    raise err("empty argument", tokens[i])
                continue
            ops.pop()
            depth -= 1
            if frame.function is not None:
                args = operands[frame.operand_base:]
                del operands[frame.operand_base:]
                operands.append(_call(b, frame, args, tok, text))
        elif tok.kind == "end":
            break
        else:
            hint = ""
            if tok.kind in ("name", "num") or tok.text == "(":
                hint = " (multiplication needs an explicit '*', e.g. 2*x)"
            raise err(f"expected an operator but found {tok.text!r}{hint}", tok)

    while ops:
        top = ops[-1]
        if isinstance(top, _Frame):
            name = f"{top.function}(" if top.function else "'('"
            raise GradcheckError(
                "syntax", f"{name} at column {top.column} is never closed.",
                column=top.column, source=text,
            )
        apply_top()
    assert len(operands) == 1
    return b.build(operands[0])


def _call(b: GraphBuilder, frame: _Frame, args: list[int], tok: Token, text: str) -> int:
    name = frame.function
    assert name is not None
    fn = FUNCTIONS[name]
    n = len(args)
    if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
        if fn.max_args is None:
            want = f"at least {fn.min_args}"
        elif fn.min_args == fn.max_args:
            want = str(fn.min_args)
        else:
            want = f"{fn.min_args} to {fn.max_args}"
        plural = "" if want == "1" else "s"
        raise GradcheckError(
            "syntax",
            f"{name}() takes {want} argument{plural} but got {n}, at column {frame.name_column}.",
            column=frame.name_column, source=text,
        )
    if fn.max_args is not None and n < fn.max_args:
        args = args + [b.const(d) for d in fn.defaults[n - fn.min_args:]]
    return b.op(fn.op, args)


def _check_exponent(b: GraphBuilder, rhs: int, limits: Limits, text: str, column: int) -> None:
    node = b.node(rhs)
    if node.op == "const" and node.exact is not None and node.exact.denominator == 1:
        if abs(node.exact) > limits.max_exponent:
            raise GradcheckError(
                "limit",
                f"the integer exponent {node.exact} at column {column} exceeds the limit "
                f"{limits.max_exponent} (raise it with --max-exponent).",
                column=column, source=text,
            )


__all__ = ["parse", "tokenize", "CONSTANT_NAMES", "NAMED_CONSTANTS", "describe_char"]
