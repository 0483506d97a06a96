"""The console entry point, kept light: it starts SymPy's worker process first (its import is
the largest part of a short check), then imports the command line and runs it. Everything
heavy (numpy, rich, click, the methods) is imported after the fork, so both cores work from
the first millisecond."""

from __future__ import annotations

import sys
from collections.abc import Sequence

_NO_SYMPY = ("-h", "--help", "--version")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    words = args[: args.index("--")] if "--" in args else args
    # --symbolic-memory asks for a worker with another budget: the check starts that one
    if not any(a in _NO_SYMPY or a.startswith("--symbolic-memory") for a in words):
        from . import worker

        worker.prestart()
    from .cli import main as run

    run(args)
