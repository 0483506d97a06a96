"""Runs over files: several check files (`--file F --file G`, or one file of `[[check]]`
tables), and a class's answers (`--file problems.toml --answers 'answers/*.toml'`). Reads,
runs with a progress bar on a terminal, writes the chosen format and the JUnit file, and
returns the exit code. The mathematics stays in check.py; the formats in suite_render.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import grading, suite
from . import junit as junit_xml
from . import suite_render as sr
from .check import check
from .errors import GradcheckError
from .output import emit, print_rich, try_write
from .report import Report

Progress = Callable[[Any], None]


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr when it is a terminal and there is more than one thing to
    do; nothing at all otherwise (CI logs stay clean)."""
    if total < 2 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda _: bar.advance(task)


def load_suites(files: Sequence[str]) -> tuple[list[suite.Suite], list[GradcheckError]]:
    """Every file read; a file that cannot be read at all is one error (the others still run)."""
    suites, errors = [], []
    for f in files:
        try:
            suites.append(suite.load(f))
        except GradcheckError as err:
            errors.append(err)
    return suites, errors


def run_suites(suites: Sequence[suite.Suite], bad_files: Sequence[GradcheckError],
               overrides: Mapping[str, Any], fmt: str, junit: str | None, per_point: bool = False,
               run: Callable[..., Report] = check) -> int:
    file_errors = [e.message for e in bad_files]
    import time

    specs = [s for st in suites for s in st.specs]
    started = time.monotonic()
    with progress_bar(len(specs), "checks") as advance:
        outcomes_all = suite.run_all(specs, overrides, run, advance)  # one pool for every file
    wall = time.monotonic() - started
    groups, at = [], 0
    for st in suites:
        groups.append((st.title, outcomes_all[at:at + len(st.specs)]))
        at += len(st.specs)
    outcomes = [o for _, group in groups for o in group]
    code = suite.exit_code(outcomes, len(file_errors))
    title = suites[0].title if len(suites) == 1 else f"{len(suites) + len(file_errors)} check files"
    problem = try_write(junit, junit_xml.suite_xml(groups, file_errors)) if junit else None
    if problem:  # said alone (exit 2), never after a report that claims success
        raise GradcheckError("output", problem)
    if fmt == "json":
        emit(sr.suite_json(outcomes, title, code, file_errors, per_point, wall) + "\n")
    elif fmt == "markdown":
        emit(sr.suite_markdown(outcomes, title, file_errors, wall))
    elif fmt == "csv":
        emit(sr.suite_csv(outcomes))
    else:
        print_rich(lambda ascii_only: sr.suite_table(outcomes, title, ascii_only))
        for e in file_errors:
            emit(f"error: {e}\n")
        emit(sr.summary_line(outcomes, len(file_errors), wall) + "\n")
    return code


def run_answers(problems_file: str, patterns: Sequence[str], overrides: Mapping[str, Any], fmt: str,
                junit: str | None, run: Callable[..., Report] = check) -> int:
    problems = suite.load(problems_file)
    bad = [s for s in problems.specs if s.error is not None]
    if bad:  # the problems file is the instructor's: it must be right before anyone is graded
        raise bad[0].error  # type: ignore[misc]
    students = []
    problems_path = os.path.realpath(problems_file)
    for path in grading.expand(patterns):
        if os.path.realpath(path) == problems_path:
            continue  # a glob that also matches the problems file
        try:
            students.append(grading.load_answers(path))
        except GradcheckError as err:  # graded invalid, the others still graded
            students.append(grading.Answers(Path(path).stem, path, {}, error=err.message))
    seen: dict[str, str] = {}
    for st in students:
        if st.student in seen:
            raise GradcheckError("bad-file", f"two answer files are for the student {st.student!r} "
                                 f"({seen[st.student]} and {st.source}).")
        seen[st.student] = st.source
    names = [p.name for p in problems.specs]
    with progress_bar(len(names) * len(students), "answers") as advance:
        rows = grading.grade_all(problems.specs, students, overrides, run, advance)
    code = grading.exit_code(rows)
    notes = {st.student: st.notes for st in students}
    if junit:
        groups = [(row[0].student, [_as_outcome(g) for g in row]) for row in rows if row]
        problem = try_write(junit, junit_xml.suite_xml(groups))
        if problem:
            raise GradcheckError("output", problem)
    if fmt == "json":
        emit(sr.grades_json(rows, names, code, notes) + "\n")
    elif fmt == "markdown":
        emit(sr.grades_markdown(rows, names))
    elif fmt == "csv":
        emit(sr.grades_csv(rows, names))
    else:
        print_rich(lambda ascii_only: sr.grades_table(rows, names, ascii_only))
        for line in sr.grade_notes(rows) + [f"{s}: {n}" for s, ns in notes.items() for n in ns]:
            emit(line + "\n")
    return code


def _as_outcome(g: grading.Grade) -> suite.Outcome:
    """A grade as a JUnit test case: correct passes, anything else fails (error: an error)."""
    spec = suite.CheckSpec(name=g.problem, source=g.student, index=0, expect="correct")
    seconds = g.outcome.seconds if g.outcome is not None else 0.0
    outcome = "error" if g.grade == "error" else g.grade
    return suite.Outcome(spec, outcome, g.grade == "correct", detail=g.detail, seconds=seconds)
