"""Writing what the command line shows: stdout in its own encoding, the terminal's width, report
files. Shared by the single check (cli.py) and the runs over files (runfiles.py)."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable

import click
from rich.console import Console, RenderableType

from .inputs import shown
from .render import to_ascii

_shown = shown


def width() -> int:
    """The terminal's width; piped (CI logs), COLUMNS when set, else 120 (80 would fold numbers).
    The layout adapts to it (one column per method, one row per method, plain lines)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((120, 24)).columns
    return 120


def encodable(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def emit(text: str) -> None:
    """Write to stdout in its own encoding: what it cannot encode is spelled in ASCII."""
    if not encodable(text):
        text = to_ascii(text, sys.stdout.encoding or "ascii")
    click.echo(text, nl=False)


def try_write(path: str, text: str) -> str | None:
    """Write a report file; None, or why it could not be written."""
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        return f"cannot write {_shown(path)}: {exc.strerror}."
    return None


def print_rich(make: Callable[[bool], RenderableType], unicode_probe: str = "✓∂━┃≈·") -> None:
    """A rich renderable to stdout at the terminal's width: `make(ascii_only)` builds it; a
    terminal that cannot encode Unicode gets the ASCII form, not a crash."""
    w = width()
    if encodable(unicode_probe):
        Console(highlight=False, width=w).print(make(False), crop=False)
        return
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, width=w, color_system=None).print(make(True), crop=False)
    emit(buffer.getvalue())
