"""The `gradcheck` command: arguments in, a rendered Report out, an exit code. No mathematics.

Exit codes: 0 every method agrees with the reference; 1 a disagreement; 2 bad input (one
clear message on stderr, or one JSON object under --format json; never a traceback);
3 inconclusive (nothing could be judged: no method ran, or no reference anywhere).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import NoReturn

import click
from rich.console import Console

from . import checkfile
from . import junit as junit_xml
from .check import check
from .errors import GradcheckError, escape_controls
from .inputs import parse_assignments, shown
from .limits import DEFAULT_LIMITS, Limits
from .methods import DEFAULT_METHODS, METHODS, REFERENCES
from .render import error_json, render_table, to_json, to_markdown
from .sampling import DEFAULT_DOMAIN, MAX_SAMPLE, parse_domain
from .symbolic import SYMBOLIC_MEMORY, SYMBOLIC_TIMEOUT

_shown = shown


EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3}  # and 2: bad input


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """click.FloatRange lets nan through (it fails every comparison) and inf: refuse both."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number.", ctx=ctx, param=param)
    return value


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


class _GroupedHelp(click.Command):
    """--help lists the options in groups by purpose, not as one long list."""

    SECTIONS = (
        ("Formula and point", ("file", "at", "wrt")),
        ("Many points", ("sample", "domain", "seed")),
        ("Methods and verdict", ("methods", "reference", "rtol", "atol", "step", "dtype", "strict")),
        ("Output", ("fmt", "digits", "show_formula", "per_point", "junit")),
        ("Limits", ("timeout", "symbolic_timeout", "symbolic_memory", "max_length", "max_depth",
                    "max_digits", "max_exponent")),
    )

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        placed: set[str | None] = set()
        for title, names in self.SECTIONS:
            rows = [records[n] for n in names if records.get(n)]
            placed.update(names)
            with formatter.section(title):
                formatter.write_dl(rows)  # type: ignore[arg-type]
        rest = [r for n, r in records.items() if n not in placed and r]
        if rest:
            with formatter.section("Other"):
                formatter.write_dl(rest)  # type: ignore[arg-type]


# ignore_unknown_options: a formula may start with a minus ("-log(x)"), which click would
# otherwise take for an option; a mistyped long option is caught in `cli` instead.
@click.command(cls=_GroupedHelp, context_settings={"help_option_names": ["-h", "--help"],
                                                   "ignore_unknown_options": True})
@click.argument("expression", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Read the formula and its point from a TOML check file.")
@click.option("--at", "at", multiple=True, metavar="NAME=VALUE[,...]",
              help="The point: a value for every variable (repeatable).")
@click.option("--wrt", metavar="NAME[,...]", help="Differentiate with respect to these only.")
@click.option("--sample", type=click.IntRange(1, MAX_SAMPLE), metavar="N",
              help="Check at N points drawn from the --domain box (stratified; the --at values fix "
                   "variables instead).")
@click.option("--domain", multiple=True, metavar="NAME=LO:HI[,...]",
              help="The box to draw from, per variable "
                   f"(default {DEFAULT_DOMAIN[0]:g}:{DEFAULT_DOMAIN[1]:g}).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1),
              help="Seed for --sample (default: a fresh one, printed so the run can be repeated).")
@click.option("--methods", metavar="M[,...]",
              help=f"Methods to run, from {', '.join(METHODS)}; or 'all'. "
                   f"[default: {','.join(DEFAULT_METHODS)}]")
@click.option("--reference", metavar="R", default="auto", show_default=True,
              help=f"What every method is judged against, one of {', '.join(REFERENCES)}: the exact "
                   "derivative (SymPy, 30 digits) or a method that is not AD. auto: exact where it can "
                   "be had, else symbolic, complex step, Richardson.")
@click.option("--rtol", type=click.FloatRange(min=0), callback=_finite,
              help="Relative tolerance for every method.")
@click.option("--atol", type=click.FloatRange(min=0), callback=_finite,
              help="Absolute tolerance for every method.")
@click.option("--step", type=click.FloatRange(min=0, min_open=True), callback=_finite,
              help="Finite-difference step (default cbrt(eps)*max(1,|x|) per variable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True)
@click.option("--digits", type=click.IntRange(1, 30), default=10, show_default=True,
              help="Significant digits shown.")
@click.option("--show-formula", is_flag=True, help="Print the symbolic derivative.")
@click.option("--per-point", is_flag=True, help="JSON: add every point's values, errors and verdicts.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True,
              help="Precision of the AD and finite-difference methods (the point is rounded to it).")
@click.option("--strict", is_flag=True,
              help="Fail (exit 1) where f is not differentiable at the point (a kink).")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), metavar="PATH",
              help="Also write a JUnit XML report to PATH (written on errors too).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), callback=_finite, default=120.0,
              show_default=True, help="Limit: wall-clock seconds for the whole check.")
@click.option("--symbolic-timeout", type=click.FloatRange(min=0, min_open=True), callback=_finite,
              default=SYMBOLIC_TIMEOUT, show_default=True,
              help="Limit: seconds for SymPy (differentiation and the exact reference).")
@click.option("--symbolic-memory", type=click.IntRange(min=64), default=SYMBOLIC_MEMORY // 2**20,
              show_default=True, help="Limit: MiB of memory for SymPy's worker process.")
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
    expression: str | None,
    file: str | None,
    at: tuple[str, ...],
    wrt: str | None,
    sample: int | None,
    domain: tuple[str, ...],
    seed: int | None,
    methods: str | None,
    reference: str,
    rtol: float | None,
    atol: float | None,
    step: float | None,
    fmt: str,
    digits: int,
    show_formula: bool,
    per_point: bool,
    dtype: str,
    strict: bool,
    junit: str | None,
    timeout: float,
    symbolic_timeout: float,
    symbolic_memory: int,
    max_length: int,
    max_depth: int,
    max_digits: int,
    max_exponent: int,
) -> None:
    """Check the gradient of EXPRESSION at a point, four independent ways.

    \b
    Examples:
      gradcheck "cos(sin(x**2)+3*x**2)" --at x=1.5
      gradcheck "(x+y)*z" --at x=-2,y=5,z=-4 --format json
      gradcheck --file sample_expressions/sigmoid_neuron.toml
    """
    limits = Limits(max_length, max_depth, max_digits, max_exponent)
    try:
        deadline = time.monotonic() + timeout
        _arm_timeout(timeout)
        point = parse_assignments(at)
        wrt_names = _names(wrt)
        if expression is not None and expression.startswith("--"):
            raise GradcheckError("usage", f"no such option: {_shown(expression.split('=')[0])}.")
        if per_point and fmt != "json":
            raise GradcheckError("usage", "--per-point adds arrays to the JSON report: use it with "
                                 "--format json.")
        if (expression is None) == (file is None):
            raise GradcheckError("usage", "give either an EXPRESSION or --file PATH (exactly one).")
        if file is not None:
            loaded = checkfile.load(file)
            expression = loaded.expression
            if sample is None:  # with --sample the file's point is not used: every variable is drawn
                point = {**loaded.at, **point}  # --at overrides the file's point
            wrt_names = wrt_names if wrt_names is not None else loaded.wrt
        assert expression is not None
        report = check(
            expression,
            point,
            wrt=wrt_names,
            methods=_names(methods) if methods is not None else None,
            reference=reference,
            rtol=rtol,
            atol=atol,
            step=step,
            limits=limits,
            show_formula=show_formula,
            strict=strict,
            dtype=dtype,
            symbolic_timeout=symbolic_timeout,
            symbolic_memory=symbolic_memory * 2**20,
            timeout=max(0.01, deadline - time.monotonic()),
            sample=sample,
            domain=parse_domain(domain) if domain else None,
            seed=seed,
        )
        _arm_timeout(0)
    except GradcheckError as err:
        _arm_timeout(0)
        if junit:
            _write(junit, junit_xml.error_xml(expression, err))
        _fail(err, fmt)
    if junit:
        _write(junit, junit_xml.report_xml(report))
    if fmt == "json":
        click.echo(to_json(report, per_point))
    elif fmt == "markdown":
        click.echo(to_markdown(report, digits), nl=False)
    else:
        # Piped output (CI logs) has no terminal width to read; 80 columns would fold numbers.
        width = None if sys.stdout.isatty() else 120
        Console(highlight=False, width=width).print(render_table(report, digits))
    sys.exit(EXIT_CODES[report.verdict])


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        click.echo(f"gradcheck: error: cannot write {path!r}: {exc.strerror}.", err=True)
        sys.exit(2)


def _on_timeout(signum: int, frame: object) -> None:
    raise GradcheckError(
        "limit", "the check did not finish within its time limit (raise it with --timeout)."
    )


def _arm_timeout(seconds: float) -> None:
    """Interrupt the check after `seconds` (0 disarms). SymPy's worker has its own budget,
    capped by what is left of this one; this stops everything else."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, _on_timeout if seconds else signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _fail(err: GradcheckError, fmt: str) -> NoReturn:
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
        message = escape_controls(exc.format_message())
        if _wants_json(args):
            _fail(GradcheckError("usage", message), "json")
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            click.echo(ctx.get_usage(), err=True)
            click.echo(f"Try '{ctx.command_path} --help' for help.\n", err=True)
        click.echo(f"Error: {message}", err=True)
        sys.exit(2)
