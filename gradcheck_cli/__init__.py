"""gradcheck: check a derivative four independent ways (reverse AD, forward AD, symbolic,
finite differences) and say whether they agree.

    >>> from gradcheck_cli import check
    >>> report = check("(x+y)*z", {"x": -2, "y": 5, "z": -4})
    >>> report.method("reverse").gradient
    {'x': -4.0, 'y': -4.0, 'z': 3.0}
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# Imported on first use (PEP 562), so the console entry point can start SymPy's worker before
# numpy and the rest are imported (entry.py); `from gradcheck_cli import check` works as ever.
_WHERE = {
    "METHODS": "check", "check": "check", "GradcheckError": "errors", "Graph": "graph",
    "Limits": "limits", "parse": "parse", "Diagnostic": "report", "MethodReport": "report",
    "Report": "report",
}

__all__ = [
    "METHODS", "Diagnostic", "Graph", "GradcheckError", "Limits", "MethodReport", "Report",
    "check", "parse",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _Package(types.ModuleType):
    """`check` and `parse` name both a function and the module defining it. Importing the
    module binds its name on the package; here that binding is dropped, so the name keeps
    meaning the function, as it did when this file imported them eagerly (and
    `sys.modules["gradcheck_cli.check"]` is the module, as ever)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("check", "parse") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
