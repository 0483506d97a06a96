"""Outputs of a file of many checks: a summary table, markdown for a pull-request comment or
`$GITHUB_STEP_SUMMARY`, JSON (each check's full report inside) and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from .errors import escape_controls
from .grading import Grade
from .render import report_dict
from .suite import Outcome

_MARK = {True: "✓", False: "✗"}
_STYLE = {True: "green", False: "bold red"}


def summary(outcomes: Sequence[Outcome], file_errors: int = 0, wall: float | None = None) -> dict[str, Any]:
    """Counts, and `seconds`: the wall-clock time of the run (the checks' own times add up to
    more when several processes ran them)."""
    met = sum(o.ok for o in outcomes)
    return {
        "checks": len(outcomes),
        "as_expected": met,
        "not_as_expected": len(outcomes) - met - sum(o.outcome == "error" for o in outcomes),
        "errors": sum(o.outcome == "error" for o in outcomes) + file_errors,
        "outcomes": dict(sorted(Counter(o.outcome for o in outcomes).items())),
        "seconds": round(wall if wall is not None else sum(o.seconds for o in outcomes), 3),
    }


def summary_line(outcomes: Sequence[Outcome], file_errors: int = 0, wall: float | None = None) -> str:
    s = summary(outcomes, file_errors, wall)
    n = s["checks"]
    head = f"{n} check{'s' if n != 1 else ''}: {s['as_expected']} as expected"
    rest = []
    if s["not_as_expected"]:
        rest.append(f"{s['not_as_expected']} not as expected")
    if s["errors"]:
        rest.append(f"{s['errors']} error{'s' if s['errors'] != 1 else ''}")
    mark = "✓" if not rest else "✗"
    return f"{mark} {head}" + (", " + ", ".join(rest) if rest else "") + f" ({s['seconds']:.1f} s)"


def _outcome_text(o: Outcome) -> str:
    """The outcome, and what was expected where it matters: 'wrong, caught (sign)' for a planted
    mistake, 'correct, expected wrong' for one that got through."""
    if o.outcome == "error":
        return "error"
    diagnosis = f" ({o.spec.diagnosis})" if o.spec.diagnosis else ""
    if not o.ok:
        return f"{o.outcome}, expected {o.spec.expected}{diagnosis}"
    if o.spec.expected in ("wrong", "fail"):
        return f"{o.outcome}, caught{diagnosis}"
    return o.outcome


def suite_table(outcomes: Sequence[Outcome], title: str, ascii_only: bool = False) -> Table:
    table = Table(title=_safe(title), box=box.ASCII if ascii_only else box.SIMPLE_HEAD, title_justify="left",
                  show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", overflow="fold", ratio=2)
    table.add_column("outcome", overflow="fold", max_width=28)
    table.add_column("detail", overflow="fold", ratio=5)
    for o in outcomes:
        mark = ("ok" if o.ok else "FAIL") if ascii_only else _MARK[o.ok]
        name = Text(_safe(o.spec.name))
        if o.spec.description:
            name.append("\n" + _safe(" ".join(o.spec.description.split())), style="dim")
        table.add_row(Text(mark, style=_STYLE[o.ok]), name, _safe(_outcome_text(o)), _safe(o.detail))
    return table


def _safe(s: str) -> str:
    """User text (names, titles, formulas, students) with control, bidi and zero-width
    characters escaped: a file from a stranger must not drive the terminal or reorder text."""
    return escape_controls(str(s))


def _md(s: str) -> str:
    s = _safe(s)
    for ch in "\\|`*_[]<>#":
        s = s.replace(ch, "\\" + ch)
    return " ".join(s.split())


def suite_markdown(outcomes: Sequence[Outcome], title: str, file_errors: Sequence[str] = (),
                   wall: float | None = None) -> str:
    head = summary_line(outcomes, len(file_errors), wall)
    lines = [f"### gradcheck: {_md(title)}", "", f"**{_md(head)}**", "",
             "| | check | outcome | expected | detail |", "|---|---|---|---|---|"]
    for o in outcomes:
        described = f" ({_md(o.spec.description)})" if o.spec.description else ""
        lines.append(f"| {_MARK[o.ok]} | {_md(o.spec.name)}{described} | {_md(_outcome_text(o))} | "
                     f"{_md(o.spec.expected)} | {_md(o.detail)} |")
    for e in file_errors:
        lines.append(f"| {_MARK[False]} | (file) | error | | {_md(e)} |")
    return "\n".join(lines) + "\n"


def outcome_dict(o: Outcome, per_point: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": o.spec.name,
        "file": o.spec.source.strip("'"),
        "index": o.spec.index,
        "expression": o.spec.expression,
        "expected": o.spec.expected,
        "expected_diagnosis": o.spec.diagnosis,
        "outcome": o.outcome,
        "ok": o.ok,
        "detail": o.detail,
        "seconds": round(o.seconds, 4),
        "report": report_dict(o.report, per_point) if o.report is not None else None,
        "error": None,
    }
    if o.error is not None:
        out["error"] = {"kind": o.error.kind, "message": o.error.message}
        if o.error.column is not None:
            out["error"]["column"] = o.error.column
    return out


def suite_json(outcomes: Sequence[Outcome], title: str, code: int, file_errors: Sequence[str] = (),
               per_point: bool = False, wall: float | None = None) -> str:
    body = {
        "kind": "suite",
        "title": title,
        "ok": code == 0,
        "exit_code": code,
        "summary": summary(outcomes, len(file_errors), wall),
        "checks": [outcome_dict(o, per_point) for o in outcomes],
        "file_errors": list(file_errors),
    }
    return json.dumps(body, indent=2, allow_nan=False, ensure_ascii=False)


def csv_cell(text: str) -> str:
    """User text in a CSV cell: a spreadsheet runs a cell that starts with = + - @ as a formula
    (CSV injection), so such a cell is prefixed with ' (the usual guard; shown as text)."""
    text = _safe(" ".join(str(text).split()))
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([csv_cell(c) if isinstance(c, str) else c for c in row])
    return buffer.getvalue()


def suite_csv(outcomes: Sequence[Outcome]) -> str:
    rows: list[list[Any]] = [["file", "check", "expression", "expected", "outcome", "ok", "detail",
                              "description"]]
    for o in outcomes:
        rows.append([o.spec.source.strip("'"), o.spec.name, o.spec.expression, o.spec.expected,
                     o.outcome, "yes" if o.ok else "no", o.detail, o.spec.description])
    return to_csv(rows)


# --------------------------------------------------------------------------------------------
# A class's grades
# --------------------------------------------------------------------------------------------

_GRADE_MARK = {"correct": "✓", "wrong": "✗", "missing": "—", "invalid": "✗", "cannot-judge": "?",
               "error": "!"}
_GRADE_ASCII = {"correct": "ok", "wrong": "X", "missing": "-", "invalid": "X", "cannot-judge": "?",
                "error": "!"}


def grade_cell(g: Grade, ascii_only: bool = False) -> str:
    mark = (_GRADE_ASCII if ascii_only else _GRADE_MARK)[g.grade]
    if g.grade == "correct":
        return mark
    if g.grade == "wrong" and g.diagnoses:
        return f"{mark} " + ", ".join(sorted(set(g.diagnoses.values())))
    return f"{mark} {g.grade}"


def score(row: Sequence[Grade]) -> str:
    return f"{sum(g.grade == 'correct' for g in row)}/{len(row)}"


def grades_table(rows: Sequence[Sequence[Grade]], problems: Sequence[str], ascii_only: bool = False,
                 ) -> Table:
    table = Table(title="grades", box=box.ASCII if ascii_only else box.SIMPLE_HEAD, title_justify="left")
    table.add_column("student", overflow="fold")
    for p in problems:
        table.add_column(_safe(p), overflow="fold")
    table.add_column("score", justify="right", no_wrap=True)
    for row in rows:
        cells = [Text(grade_cell(g, ascii_only), style="green" if g.grade == "correct" else "red")
                 for g in row]
        table.add_row(_safe(row[0].student) if row else "", *cells, score(row))
    return table


def grade_notes(rows: Sequence[Sequence[Grade]]) -> list[str]:
    """One line per answer that is not correct: who, which problem, and why."""
    return [_safe(f"{g.student} / {g.problem}: {g.grade} — {g.detail}") for row in rows for g in row
            if g.grade != "correct"]


def grades_markdown(rows: Sequence[Sequence[Grade]], problems: Sequence[str]) -> str:
    head = "| student | " + " | ".join(_md(p) for p in problems) + " | score |"
    lines = ["### gradcheck: grades", "", head, "|---|" + "---|" * len(problems) + "---:|"]
    for row in rows:
        if row:
            lines.append(f"| {_md(row[0].student)} | " + " | ".join(_md(grade_cell(g)) for g in row)
                         + f" | {score(row)} |")
    notes = grade_notes(rows)
    if notes:
        lines += [""] + [f"- {_md(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def grades_json(rows: Sequence[Sequence[Grade]], problems: Sequence[str], code: int,
                notes: Mapping[str, Sequence[str]]) -> str:
    students = []
    for row in rows:
        if not row:
            continue
        students.append({
            "student": row[0].student,
            "score": sum(g.grade == "correct" for g in row),
            "out_of": len(row),
            "notes": list(notes.get(row[0].student, [])),
            "grades": {g.problem: {
                "grade": g.grade,
                "detail": g.detail,
                "diagnoses": g.diagnoses,
                "claims": ({v: c.to_dict() for v, c in g.outcome.report.claims.items()}
                           if g.outcome is not None and g.outcome.report is not None else {}),
            } for g in row},
        })
    body = {"kind": "grades", "ok": code == 0, "exit_code": code, "problems": list(problems),
            "students": students}
    return json.dumps(body, indent=2, allow_nan=False, ensure_ascii=False)


def grades_csv(rows: Sequence[Sequence[Grade]], problems: Sequence[str]) -> str:
    out: list[list[Any]] = [["student", *problems, "score", "out_of"]]
    for row in rows:
        if row:
            out.append([row[0].student,
                        *[g.grade + (":" + "+".join(sorted(set(g.diagnoses.values()))) if g.diagnoses else "")
                          for g in row],
                        sum(g.grade == "correct" for g in row), len(row)])
    return to_csv(out)
