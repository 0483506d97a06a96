"""The `gradcheck` command: arguments in, a rendered Report out, an exit code. No mathematics.

Exit codes: 0 every method agrees with the reference; 1 a disagreement; 2 bad input (one
clear message on stderr, or one JSON object under --format json; never a traceback);
3 inconclusive (nothing could be judged: no method ran, or no reference anywhere). Files of
many checks and a class's answers have their own rules (suite.exit_code, grading.exit_code).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

import click

from .check import check
from .claims import WHERE_UNDEFINED, parse_expect
from .errors import GradcheckError, escape_controls
from .inputs import parse_assignments, read_formula, shown
from .limits import DEFAULT_LIMITS, Limits, time_limit
from .methods import DEFAULT_METHODS, METHODS, REFERENCES
from .output import emit, try_write, width
from .output import print_rich as _print_rich
from .render import error_json, render_table, report_dict, to_markdown
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


# A token that looks like a long option: "--att", "--max-lenght=5" (not "--x*2", a formula).
_OPTION_LIKE = re.compile(r"--[A-Za-z][A-Za-z0-9_-]*(=|$)")


class _GroupedHelp(click.Command):
    """--help lists the options in groups by purpose, not as one long list; and the formula may
    start with a minus.

    click would read "-tanh(x)" as the short options -t -a -n -h (so --help, exit 0: a CI job
    passing without a check). `parse_args` therefore sorts the arguments itself first: known
    options (with their values) stay, an unknown long option is an error that suggests the
    closest known one, and everything else — the formula, whatever it starts with — goes
    after a "--". An explicit "--" makes what follows the formula, even "--x"."""

    SECTIONS = (
        ("Formula and point", ("program_file", "file", "at", "wrt")),
        ("Homework", ("expect", "where_undefined", "answers")),
        ("Many points", ("sample", "domain", "seed")),
        ("Methods and verdict", ("methods", "reference", "rtol", "atol", "step", "dtype", "strict",
                                 "full")),
        ("Output", ("fmt", "digits", "show_formula", "latex", "per_point", "junit")),
        ("Teach", ("outputs", "trace", "graph_file", "sweep", "sweep_plot", "taylor")),
        ("Limits", ("timeout", "symbolic_timeout", "symbolic_memory", "max_length", "max_depth",
                    "max_digits", "max_exponent")),
    )

    # options whose value may be left out: the next word is theirs only if it is one of these
    OPTIONAL_VALUE = {"--trace": ("backward", "forward")}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._sorted(ctx, list(args)))

    def _sorted(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value: dict[str, bool] = {}
        for p in self.get_params(ctx):
            if isinstance(p, click.Option):
                for name in (*p.opts, *p.secondary_opts):
                    takes_value[name] = not p.is_flag and not p.count
        options: list[str] = []
        positional: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                positional += args[i + 1:]
                break
            if a in self.OPTIONAL_VALUE:
                options.append(a)
                if i + 1 < len(args) and args[i + 1] in self.OPTIONAL_VALUE[a]:
                    options.append(args[i + 1])
                    i += 1
            elif a in takes_value:
                options.append(a)
                if takes_value[a] and i + 1 < len(args):
                    options.append(args[i + 1])
                    i += 1
            elif a.startswith("--") and a.split("=", 1)[0] in takes_value:
                options.append(a)
            elif _OPTION_LIKE.match(a):
                name = a.split("=", 1)[0]
                import difflib  # only for a misspelt option: imported then

                close = difflib.get_close_matches(name, [n for n in takes_value if n.startswith("--")],
                                                  n=1, cutoff=0.6)
                raise click.NoSuchOption(escape_controls(name), possibilities=close, ctx=ctx)
            else:
                positional.append(a)
            i += 1
        return options + (["--", *positional] if positional else [])

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


@click.command(cls=_GroupedHelp, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("expression", required=False)
@click.option("--program", "program_file", metavar="PATH",
              help="Read the formula or program from PATH ('-': standard input), for texts longer "
                   "than a command line allows. EXPRESSION '-' reads standard input too.")
@click.option("--output", "outputs", metavar="NAME",
              help="A program's output step (default: its last statement).")
@click.option("--file", "files", type=click.Path(dir_okay=False), metavar="PATH", multiple=True,
              help="Run the checks of a TOML check file (repeatable: every file is run).")
@click.option("--answers", multiple=True, metavar="PATH|GLOB",
              help="Grade students' answer files against the problems of --file (repeatable; a "
                   "quoted glob is expanded).")
@click.option("--at", "at", multiple=True, metavar="NAME=VALUE[,...]",
              help="The point: a value for every variable (repeatable).")
@click.option("--wrt", metavar="NAME[,...]", help="Differentiate with respect to these only.")
@click.option("--expect", multiple=True, metavar="NAME=FORMULA",
              help="A claimed derivative ∂f/∂NAME to check and diagnose (repeatable; homework).")
@click.option("--where-undefined", type=click.Choice(WHERE_UNDEFINED), default="isolated", show_default=True,
              help="A claim undefined where the derivative is not: accept isolated points only (a "
                   "removable singularity), accept every such point, or reject them all.")
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
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown", "csv"]),
              default="table", show_default=True)
@click.option("--digits", type=click.IntRange(1, 30), default=10, show_default=True,
              help="Significant digits shown.")
@click.option("--show-formula", is_flag=True, help="Print the symbolic derivative (a program: also "
              "step by step).")
@click.option("--latex", is_flag=True, help="With --show-formula: the derivative in LaTeX.")
@click.option("--per-point", is_flag=True, help="JSON: add every point's values, errors and verdicts.")
@click.option("--trace", type=click.Choice(["backward", "forward"]), is_flag=False, flag_value="backward",
              default=None, help="Show the forward and backward passes step by step ('--trace forward': "
                                 "the dual numbers along the first variable).")
@click.option("--graph", "graph_file", metavar="FILE",
              help="Draw the graph with values and gradients: .dot, .mmd (Mermaid), .svg or .png "
                   "(Graphviz).")
@click.option("--sweep", is_flag=True,
              help="The step-size study: forward, central and complex-step error against the step.")
@click.option("--sweep-plot", metavar="FILE.svg", help="Write the step-size study as an SVG picture.")
@click.option("--taylor", is_flag=True,
              help="The Taylor-remainder test: the remainder must shrink like h² along random directions.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True,
              help="Precision of the AD and finite-difference methods (the point is rounded to it).")
@click.option("--full", is_flag=True,
              help="Many variables (over 64): check every one, not random directions and a sample "
                   "(one finite-difference pair per variable).")
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
@click.option("--max-digits", type=click.IntRange(1, 4000), default=DEFAULT_LIMITS.max_digits,
              show_default=True, help="Limit: digits in one number.")
@click.option("--max-exponent", type=click.IntRange(min=1), default=DEFAULT_LIMITS.max_exponent,
              show_default=True, help="Limit: size of a constant integer exponent.")
@click.option("--debug", is_flag=True,
              help="Show the Python traceback of an internal error (for a bug report).")
@click.version_option(package_name="gradcheck")
def cli(
    expression: str | None,
    program_file: str | None,
    outputs: str | None,
    files: tuple[str, ...],
    answers: tuple[str, ...],
    at: tuple[str, ...],
    wrt: str | None,
    expect: tuple[str, ...],
    where_undefined: str,
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
    latex: bool,
    per_point: bool,
    trace: str | None,
    graph_file: str | None,
    sweep: bool,
    sweep_plot: str | None,
    taylor: bool,
    dtype: str,
    full: bool,
    strict: bool,
    junit: str | None,
    timeout: float,
    symbolic_timeout: float,
    symbolic_memory: int,
    max_length: int,
    max_depth: int,
    max_digits: int,
    max_exponent: int,
    debug: bool,
) -> None:
    """Check the gradient of EXPRESSION at a point, four independent ways.

    \b
    Examples:
      gradcheck "cos(sin(x**2)+3*x**2)" --at x=1.5
      gradcheck "(x+y)*z" --at x=-2,y=5,z=-4 --format json
      gradcheck --file sample_expressions/sigmoid_neuron.toml
      gradcheck --file sample_expressions/homework.toml --junit report.xml
      gradcheck --file problems.toml --answers 'answers/*.toml'
    """
    limits = Limits(max_length, max_depth, max_digits, max_exponent)
    file = None  # a v1 single-check file, already read (suite.CheckSpec)
    try:
        if junit is not None and not junit.strip():
            raise GradcheckError("usage", "--junit needs a file name.")
        if fmt == "csv" and not (files or answers):
            raise GradcheckError("usage", "--format csv is a table of many checks or grades: use it with "
                                 "--file (and --answers).")
        named = (("--graph", graph_file), ("--sweep-plot", sweep_plot), ("--program", program_file))
        for flag, value in named:
            if value is not None and not value.strip():
                raise GradcheckError("usage", f"{flag} needs a file name.")
        if outputs is not None and not _names(outputs):
            raise GradcheckError("usage", "--output needs a step name, e.g. --output J.")
        if program_file is not None or expression == "-":
            if program_file is not None and expression is not None:
                raise GradcheckError("usage", "give either an EXPRESSION or --program PATH, not both.")
            expression = read_formula(program_file or "-", max_length)
        if files or answers:
            from . import runfiles  # the modules of a run over files: imported when used

            if expression is not None:
                raise GradcheckError("usage", "give either an EXPRESSION or --file PATH, not both.")
            overrides = {k: v for k, v in dict(
                wrt=_names(wrt), methods=_names(methods) if methods is not None else None,
                reference=None if reference == "auto" else reference, rtol=rtol, atol=atol, step=step,
                strict=strict or None, full=full or None, dtype=None if dtype == "float64" else dtype,
                sample=sample,
                domain=parse_domain(domain) if domain else None, seed=seed,
                where_undefined=None if where_undefined == "isolated" else where_undefined).items()
                if v is not None}
            overrides.update(limits=limits, symbolic_timeout=symbolic_timeout,
                             symbolic_memory=symbolic_memory * 2**20, show_formula=show_formula)
            source = click.get_current_context().get_parameter_source("timeout")
            if source is not click.core.ParameterSource.DEFAULT:  # else each check's own, or 120 s
                overrides["timeout"] = timeout
            teaching = [n for n, on in (("--trace", trace), ("--graph", graph_file), ("--sweep", sweep),
                                        ("--sweep-plot", sweep_plot), ("--taylor", taylor),
                                        ("--output", outputs), ("--latex", latex)) if on]
            if teaching:
                raise GradcheckError("usage", f"{', '.join(teaching)} work on one check at one point, not "
                                     "with a file of many checks or --answers.")
            if per_point and fmt != "json":
                raise GradcheckError("usage", "--per-point adds arrays to the JSON report: use it with "
                                     "--format json.")
            if answers:
                if len(files) != 1:
                    raise GradcheckError("usage", "--answers grades against one problems file: give "
                                         "--file PROBLEMS.toml once.")
                if at or expect or wrt:
                    raise GradcheckError("usage", "--at, --wrt and --expect do not go with --answers "
                                         "(the problems file gives the points and the partials asked).")
                sys.exit(runfiles.run_answers(files[0], answers, overrides, fmt, junit))
            suites, file_errors = runfiles.load_suites(files)
            if len(files) == 1 and file_errors:
                raise file_errors[0]
            if not (len(files) == 1 and suites[0].legacy) or fmt == "csv":
                if at or expect:
                    raise GradcheckError("usage", "--at and --expect give one check's point and claims; "
                                         "a file of many checks gives them per check.")
                sys.exit(runfiles.run_suites(suites, file_errors, overrides, fmt, junit, per_point))
            file = suites[0].specs[0]  # read once: the check file's one check
        deadline = time.monotonic() + timeout
        with time_limit(timeout, "the check did not finish within its time limit (raise it with --timeout)."):
            point = parse_assignments(at)
            wrt_names = _names(wrt)
            if per_point and fmt != "json":
                raise GradcheckError("usage", "--per-point adds arrays to the JSON report: use it with "
                                     "--format json.")
            if (expression is None) == (file is None):
                raise GradcheckError("usage", "give either an EXPRESSION or --file PATH (exactly one).")
            description = ""
            if file is not None:
                expression = file.expression
                description = file.description
                if sample is None:  # with --sample the file's point is not used: every variable is drawn
                    point = {**file.point, **point}  # --at overrides the file's point
                wrt_names = wrt_names if wrt_names is not None else file.options.get("wrt")
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
                show_formula=show_formula or latex,
                latex=latex,
                strict=strict,
                dtype=dtype,
                symbolic_timeout=symbolic_timeout,
                symbolic_memory=symbolic_memory * 2**20,
                timeout=max(0.01, deadline - time.monotonic()),
                sample=sample,
                domain=parse_domain(domain) if domain else None,
                seed=seed,
                description=description,
                expect=parse_expect(expect) if expect else None,
                where_undefined=where_undefined,
                outputs=_names(outputs),
                full=full,
            )
            extras = None
            if trace or graph_file or sweep or sweep_plot or taylor:
                from . import teach

                if dtype != "float64":
                    raise GradcheckError("usage", "--trace, --graph, --sweep and --taylor work in float64; "
                                         "leave out --dtype float32.")
                from .parse import parse

                asked = teach.Asked(trace, graph_file, sweep, sweep_plot, taylor)
                graph = parse(expression, limits, outputs=_names(outputs))
                extras = teach.compute(graph, report, asked, output=graph.output_names[0]
                                       if graph.output_names else None)
                teach.settle(report, extras)
    except GradcheckError as err:
        if junit and junit.strip():
            # the input error is what the user must see; a JUnit file that cannot be written
            # is said on stderr after it, never instead of it
            from . import junit as junit_xml

            written = try_write(junit, junit_xml.error_xml(expression, err))
            _fail(err, fmt, also=written)
        _fail(err, fmt)
    if junit:
        from . import junit as junit_xml

        problem = try_write(junit, junit_xml.report_xml(report))
        if problem:
            _fail(GradcheckError("output", problem), fmt)
    code = EXIT_CODES[report.verdict]
    if fmt == "json":
        body = report_dict(report, per_point)
        if extras is not None:
            body.update(teach.to_dict(extras))
        emit(json.dumps(body, indent=2, allow_nan=False) + "\n")
    elif fmt == "markdown":
        emit((teach.to_markdown(extras, digits) + "\n" if extras is not None else "")
             + to_markdown(report, digits))
    else:
        w = width()
        if extras is not None and extras.trace is not None:  # the trace first, the verdict last
            _print_rich(lambda ascii_only: teach.renderables(extras, digits, ascii_only, True)[0])
        _print_rich(lambda ascii_only: render_table(report, digits, w, ascii_only=ascii_only))
        after = teach.renderables(extras, digits, False, False) if extras is not None else []
        for k in range(len(after)):
            _print_rich(lambda ascii_only, k=k: teach.renderables(extras, digits, ascii_only, False)[k])
        for warning in report.warnings:
            emit(f"warning: {warning}\n")
    sys.exit(code)


def _fail(err: GradcheckError, fmt: str, also: str | None = None, code: int = 2) -> NoReturn:
    """One message (or one JSON object), then exit `code`. `also`: a second problem, said on
    stderr after the first (a --junit file that could not be written)."""
    try:
        if fmt == "json":
            click.echo(error_json(err))
        else:
            click.echo(f"gradcheck: error: {err.message}", err=True)
            caret = err.caret()
            if caret:
                click.echo(caret, err=True)
        if also:
            click.echo(f"gradcheck: error: also, {also}", err=True)
    except OSError:  # stdout or stderr closed or full: the exit code still says it
        pass
    sys.exit(code)


def _wants_json(argv: Sequence[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--format" and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
        if arg == "--format=json":
            return True
    return False


EXIT_INTERNAL = 4  # a bug in gradcheck (documented in the README)
# stdout closed, a broken pipe, a full disk: the report could not be written
_OUTPUT_ERRNOS = {errno.EPIPE, errno.EBADF, errno.ENOSPC, errno.EIO, errno.EDQUOT}
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def _option_value(argv: Sequence[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in argv, read before click parses it."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return None
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point. Click's own usage errors also become JSON under --format json (and
    a JUnit error file under --junit); Ctrl-C exits 130 and an unexpected exception 4, each with
    one line (one JSON object), never a traceback unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    fmt = "json" if _wants_json(args) else "table"
    if sys.stdout is None:  # started with stdout closed (>&-): nowhere to say the verdict
        _output_failed(OSError(errno.EBADF, "standard output is closed"))
    try:
        cli.main(args=args, prog_name="gradcheck", standalone_mode=False)
    except click.exceptions.Abort:
        _fail(GradcheckError("interrupted", "interrupted (Ctrl-C); nothing was checked."), fmt,
              code=EXIT_INTERRUPTED)
    except click.ClickException as exc:
        message = escape_controls(exc.format_message())
        junit = _option_value(args, "--junit")
        also = None
        if junit and junit.strip():
            from . import junit as junit_xml

            also = try_write(junit, junit_xml.error_xml(None, GradcheckError("usage", message)))
        if fmt == "json":
            _fail(GradcheckError("usage", message), "json", also=also)
        ctx = getattr(exc, "ctx", None)
        try:
            if ctx is not None:
                click.echo(ctx.get_usage(), err=True)
                click.echo(f"Try '{ctx.command_path} --help' for help.\n", err=True)
            click.echo(f"Error: {message}", err=True)
            if also:
                click.echo(f"gradcheck: error: also, {also}", err=True)
        except OSError:
            pass
        sys.exit(2)
    except KeyboardInterrupt:
        _fail(GradcheckError("interrupted", "interrupted (Ctrl-C); nothing was checked."), fmt,
              code=EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
            _output_failed(exc)
        if "--debug" in args:
            raise
        what = escape_controls(f"{type(exc).__name__}: {exc}")[:300]
        _fail(GradcheckError(
            "internal", f"internal error ({what}). This is a bug in gradcheck, not in your formula: "
            "please report it with the command that caused it (--debug shows the traceback)."),
            fmt, code=EXIT_INTERNAL)


def _output_failed(exc: OSError) -> NoReturn:
    """stdout closed or full: say so on stderr (if it is still there), exit 2."""
    try:
        sys.stderr.write(f"gradcheck: error: cannot write the report: {exc.strerror or exc}.\n")
        sys.stderr.flush()
    except OSError:
        pass
    try:  # keep Python's own flush at exit from failing loudly on the same closed stream
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    except OSError:
        pass
    os._exit(2)
