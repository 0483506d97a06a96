"""The `gradcheck` command: arguments in, a rendered Report out, an exit code. No mathematics.

Exit codes: 0 every method agrees with the reference; 1 a disagreement; 2 bad input (one
clear message on stderr, or one JSON object under --format json; never a traceback).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

import click
from rich.console import Console

from .check import METHODS, check
from .errors import GradcheckError
from .limits import DEFAULT_LIMITS, Limits
from .render import error_json, render_table, to_json, to_markdown

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Plain ASCII decimals only: float() alone would also take "nan", "inf", "1_000" and
# fullwidth digits.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def _shown(text: str) -> str:
    """User text inside a message: quoted, with control characters escaped."""
    return repr(text)


def parse_assignments(items: Sequence[str]) -> dict[str, float]:
    """`--at x=1.5,y=-2 --at z=3` → {"x": 1.5, "y": -2.0, "z": 3.0}, strictly."""
    point: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                raise GradcheckError("bad-value", f"empty assignment in --at {_shown(item)}.")
            name, eq, text = part.partition("=")
            name, text = name.strip(), text.strip()
            if not eq:
                raise GradcheckError(
                    "bad-value", f"--at expects NAME=VALUE, got {_shown(part)} (no '=')."
                )
            if not _NAME.match(name):
                raise GradcheckError(
                    "bad-value", f"{_shown(name)} in --at is not a variable name "
                    "(ASCII letters, digits and _, not starting with a digit).",
                )
            if not text:
                raise GradcheckError("missing-value", f"--at gives no value for {name}.")
            if not _DECIMAL.match(text):
                raise GradcheckError(
                    "bad-value", f"the value of {name}, {_shown(text)}, is not a decimal number "
                    "(examples: 2, -0.5, 1e-3).",
                )
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise GradcheckError(
                    "bad-value", f"the value of {name}, {text}, is outside the range of float64."
                )
            if name in point:
                raise GradcheckError("bad-value", f"{name} is given a value twice in --at.")
            point[name] = value
    return point


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("expression")
@click.option("--at", "at", multiple=True, metavar="NAME=VALUE[,...]",
              help="The point: a value for every variable (repeatable).")
@click.option("--wrt", metavar="NAME[,...]", help="Differentiate with respect to these only.")
@click.option("--methods", metavar="M[,...]", default=",".join(METHODS), show_default=True,
              help="Methods to run.")
@click.option("--reference", type=click.Choice(METHODS), default="symbolic", show_default=True,
              help="The method the others are judged against.")
@click.option("--rtol", type=click.FloatRange(min=0), help="Relative tolerance for every method.")
@click.option("--atol", type=click.FloatRange(min=0), help="Absolute tolerance for every method.")
@click.option("--step", type=click.FloatRange(min=0, min_open=True),
              help="Finite-difference step (default cbrt(eps)*max(1,|x|) per variable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True)
@click.option("--digits", type=click.IntRange(1, 17), default=12, show_default=True,
              help="Significant digits shown.")
@click.option("--show-formula", is_flag=True, help="Print the symbolic derivative.")
@click.option("--max-length", type=click.IntRange(min=1), default=DEFAULT_LIMITS.max_length,
              show_default=True, help="Limit: characters in the formula.")
@click.option("--max-depth", type=click.IntRange(min=1), default=DEFAULT_LIMITS.max_depth,
              show_default=True, help="Limit: nesting depth of the formula.")
@click.option("--max-digits", type=click.IntRange(min=1), default=DEFAULT_LIMITS.max_digits,
              show_default=True, help="Limit: digits in one number.")
@click.option("--max-exponent", type=click.IntRange(min=1), default=DEFAULT_LIMITS.max_exponent,
              show_default=True, help="Limit: size of a constant integer exponent.")
@click.version_option(package_name="gradcheck")
def cli(
    expression: str,
    at: tuple[str, ...],
    wrt: str | None,
    methods: str,
    reference: str,
    rtol: float | None,
    atol: float | None,
    step: float | None,
    fmt: str,
    digits: int,
    show_formula: bool,
    max_length: int,
    max_depth: int,
    max_digits: int,
    max_exponent: int,
) -> None:
    """Check the gradient of EXPRESSION at a point, four independent ways.

    \b
    Example:
      gradcheck "cos(sin(x**2)+3*x**2)" --at x=1.5
    """
    limits = Limits(max_length, max_depth, max_digits, max_exponent)
    try:
        report = check(
            expression,
            parse_assignments(at),
            wrt=_names(wrt),
            methods=_names(methods) or [],
            reference=reference,
            rtol=rtol,
            atol=atol,
            step=step,
            limits=limits,
            show_formula=show_formula,
        )
    except GradcheckError as err:
        _fail(err, fmt)
    if fmt == "json":
        click.echo(to_json(report))
    elif fmt == "markdown":
        click.echo(to_markdown(report, digits), nl=False)
    else:
        Console(highlight=False).print(render_table(report, digits))
    sys.exit(0 if report.ok else 1)


def _fail(err: GradcheckError, fmt: str) -> None:
    if fmt == "json":
        click.echo(error_json(err))
    else:
        click.echo(f"gradcheck: error: {err.message}", err=True)
        caret = err.caret()
        if caret:
            click.echo(caret, err=True)
    sys.exit(2)


def _wants_json(argv: Sequence[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--format" and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
        if arg == "--format=json":
            return True
    return False


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point. Click's own usage errors also become JSON under --format json."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="gradcheck", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        if _wants_json(args):
            _fail(GradcheckError("usage", exc.format_message()), "json")
        exc.show()
        sys.exit(2)
