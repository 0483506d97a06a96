"""A class's answers: a problems file and one answers file per student, graded problem by
problem into a grade table (student × problem), JSON and CSV for a grade book.

The problems file is a check file of many checks (`suite.py`); each `[[check]]` is a problem,
its `name` the key students answer under and its `wrt` the partials asked (default: every
variable). An answers file:

    student = "alice"                     # optional (default: the file's name)
    [answers]
    sigmoid = "sigmoid(x)*(1-sigmoid(x))"  # a problem that asks for one partial
    quiz = { x = "z*exp(x*z) + ...", z = "x*exp(x*z) + ..." }

Each answer is a claim (`claims.py`), checked at the problem's points like `--expect`. A grade
is one of: correct, wrong (with the witness and a diagnosis), missing (no answer), invalid (the
answer does not parse, or uses a name the problem does not have: the student's mistake, not bad
input), cannot-judge (no point had a reference), error (the problem itself could not be
checked). A partial left unanswered in a problem otherwise answered makes it wrong.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import checkfile
from .checkfile import shown, shown_path
from .claims import parse_claims
from .errors import GradcheckError
from .limits import DEFAULT_LIMITS, Limits
from .parse import parse
from .report import Report
from .suite import CheckSpec, Outcome, run_all

ANSWER_KEYS = ("answers", "student")
GRADES = ("correct", "wrong", "missing", "invalid", "cannot-judge", "error")
MAX_ANSWER_FILES = 10_000


@dataclass
class Answers:
    student: str
    source: str
    answers: dict[str, dict[str, str] | str]
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the answers file could not be read: every answer is invalid


@dataclass
class Grade:
    student: str
    problem: str
    grade: str  # one of GRADES
    detail: str
    outcome: Outcome | None = None
    diagnoses: dict[str, str] = field(default_factory=dict)  # v -> diagnosis kind


def expand(patterns: Sequence[str]) -> list[str]:
    """Answer files from paths or glob patterns (a shell may have expanded them already; a
    quoted pattern is expanded here, sorted). A pattern that matches nothing is an error."""
    out: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?[") and not Path(pattern).exists():
            found = sorted(glob.glob(pattern))
            if not found:
                raise GradcheckError("bad-file", f"--answers {shown_path(pattern)} matches no file.")
            out += found
        else:
            out.append(pattern)
    if len(out) > MAX_ANSWER_FILES:
        raise GradcheckError("bad-file", f"--answers names {len(out):,} files, more than "
                             f"{MAX_ANSWER_FILES:,}.")
    return out


def load_answers(path: str) -> Answers:
    where = shown_path(path)
    data = checkfile.read_toml(path)
    unknown = [k for k in data if k not in ANSWER_KEYS]
    if unknown:
        keys = ", ".join(shown(k, 30) for k in unknown[:3])
        raise GradcheckError("bad-file", f"{where} has unknown key(s) {keys}; an answers file has "
                             "student = \"...\" and an [answers] table.")
    student = data.get("student", Path(path).stem)
    if not isinstance(student, str) or not student.strip():
        raise GradcheckError("bad-file", f"in {where}, student must be a non-empty string.")
    answers = data.get("answers", {})
    if not isinstance(answers, dict):
        raise GradcheckError("bad-file", f"in {where}, answers must be a table ([answers]).")
    for problem, given in answers.items():
        if isinstance(given, dict):
            bad = [v for v, t in given.items() if not isinstance(t, str)]
            if not bad:
                continue
        elif isinstance(given, str):
            continue
        raise GradcheckError("bad-file", f"in {where}, the answer to {shown(problem, 40)} must be a formula "
                             "(a string) or a table of formulas such as { x = \"2*x\" }.")
    return Answers(" ".join(student.split())[:200], where, answers)


def asked(spec: CheckSpec) -> list[str]:
    """The partials a problem asks for: its wrt, else every variable of its formula."""
    wrt = spec.options.get("wrt")
    if wrt:
        return list(wrt)
    return list(parse(spec.expression, spec.options.get("limits", DEFAULT_LIMITS)).variables)


def _prepare(problem: CheckSpec, partials: Sequence[str], student: Answers,
             limits: Limits = DEFAULT_LIMITS) -> Grade | CheckSpec:
    """A grade already decided (no answer, an invalid one), or the check that decides it."""
    name = problem.name
    if student.error is not None:
        return Grade(student.student, name, "invalid", f"the answers file could not be read: {student.error}")
    given = student.answers.get(name)
    if given is None or given == {} or (isinstance(given, str) and not given.strip()):
        return Grade(student.student, name, "missing", "no answer")
    claims = {partials[0]: given} if isinstance(given, str) and len(partials) == 1 else given
    if isinstance(claims, str):
        return Grade(student.student, name, "invalid",
                     f"the problem asks for {len(partials)} partials ({', '.join(partials)}): answer "
                     "with a table such as { x = \"...\", y = \"...\" }")
    stray = [v for v in claims if v not in partials]
    if stray:
        return Grade(student.student, name, "invalid",
                     f"answers ∂f/∂{shown(stray[0], 20)}, which the problem does not ask for "
                     f"(it asks for {', '.join(partials)})")
    try:
        parse_claims(claims, parse(problem.expression, limits), limits)
    except GradcheckError as err:
        return Grade(student.student, name, "invalid", err.message)
    return replace(problem, options={**problem.options, "expect": dict(claims), "wrt": list(partials)},
                   expect="correct", diagnosis=None)


def _seeded(problem: CheckSpec, overrides: Mapping[str, Any]) -> CheckSpec:
    """A sampled problem without a seed gets one now, the same for every student (each would
    otherwise draw other points, and equal answers could get different grades)."""
    options = {**problem.options, **overrides}
    if options.get("sample") is None or options.get("seed") is not None:
        return problem
    from .sampling import new_seed

    return replace(problem, options={**problem.options, "seed": new_seed()})


def _grade(spec: CheckSpec, partials: Sequence[str], student: Answers, outcome: Outcome) -> Grade:
    name = spec.name
    if outcome.outcome == "error":
        return Grade(student.student, name, "error", outcome.detail, outcome)
    claims = spec.options["expect"]
    missing = [v for v in partials if v not in claims]
    grade = outcome.outcome if outcome.outcome in GRADES else "cannot-judge"
    detail = outcome.detail
    if missing and grade == "correct":
        grade = "wrong"
        detail = f"no answer for ∂f/∂{', ∂f/∂'.join(missing)}; the others are correct"
    elif missing:
        detail += f"; no answer for ∂f/∂{', ∂f/∂'.join(missing)}"
    kinds = {}
    if outcome.report is not None:
        kinds = {v: c.diagnosis_kind for v, c in outcome.report.claims.items() if c.diagnosis_kind}
    return Grade(student.student, name, grade, detail, outcome, kinds)


def grade_all(problems: Sequence[CheckSpec], students: Sequence[Answers], overrides: Mapping[str, Any],
              run: Callable[..., Report], progress: Callable[[Any], None] | None = None,
              ) -> list[list[Grade]]:
    """Grades, one row per student, one column per problem (a problem that could not be read
    is an error in every row). The checks run through `suite.run_all` (two processes for a
    large class)."""
    partials: dict[str, list[str] | GradcheckError] = {}
    for p in problems:
        if p.error is not None:
            partials[p.name] = p.error
            continue
        try:
            partials[p.name] = asked(p)
        except GradcheckError as err:
            partials[p.name] = err
    known = {p.name for p in problems}
    problems = [_seeded(p, overrides) for p in problems]
    cells: list[list[Grade | CheckSpec]] = []
    for s in students:
        extra = [k for k in s.answers if k not in known]
        if extra:
            s.notes.append(f"answers to problems the problems file does not have: "
                           f"{', '.join(shown(k, 30) for k in extra[:5])}")
        row: list[Grade | CheckSpec] = []
        for p in problems:
            asked_here = partials[p.name]
            if isinstance(asked_here, GradcheckError):
                row.append(Grade(s.student, p.name, "error", asked_here.message))
            else:
                row.append(_prepare(p, asked_here, s, overrides.get("limits", DEFAULT_LIMITS)))
            if progress is not None and isinstance(row[-1], Grade):
                progress(row[-1])
        cells.append(row)
    specs = [c for row in cells for c in row if isinstance(c, CheckSpec)]
    outcomes = iter(run_all(specs, overrides, run, progress))
    rows = []
    for s, row in zip(students, cells):
        rows.append([c if isinstance(c, Grade) else
                     _grade(c, partials[c.name], s, next(outcomes))  # type: ignore[arg-type]
                     for c in row])
    return rows


def exit_code(rows: Sequence[Sequence[Grade]]) -> int:
    """0 every answer correct; 1 any answer wrong, missing or invalid; 2 a problem could not be
    checked (the problems file is at fault); 3 only cannot-judge beside correct ones."""
    grades = [g.grade for row in rows for g in row]
    if "error" in grades:
        return 2
    if any(g in ("wrong", "missing", "invalid") for g in grades):
        return 1
    return 3 if "cannot-judge" in grades else 0
