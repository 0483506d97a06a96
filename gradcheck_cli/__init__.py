"""gradcheck: check a derivative four independent ways (reverse AD, forward AD, symbolic,
finite differences) and say whether they agree.

    >>> from gradcheck_cli import check
    >>> report = check("(x+y)*z", {"x": -2, "y": 5, "z": -4})
    >>> report.method("reverse").gradient
    {'x': -4.0, 'y': -4.0, 'z': 3.0}
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

# Imported on first use (PEP 562), so the console entry point can start SymPy's worker before
# numpy and the rest are imported (entry.py); `from gradcheck_cli import check` works as ever.
__all__ = [
    "METHODS", "Diagnostic", "Graph", "GradcheckError", "Limits", "MethodReport", "Report",
    "check", "parse",
]


def __getattr__(name: str) -> Any:
    if name in ("METHODS", "check"):
        from .check import METHODS, check
        return {"METHODS": METHODS, "check": check}[name]
    if name == "GradcheckError":
        from .errors import GradcheckError
        return GradcheckError
    if name == "Graph":
        from .graph import Graph
        return Graph
    if name == "Limits":
        from .limits import Limits
        return Limits
    if name == "parse":
        from .parse import parse
        return parse
    if name in ("Diagnostic", "MethodReport", "Report"):
        from .report import Diagnostic, MethodReport, Report
        return {"Diagnostic": Diagnostic, "MethodReport": MethodReport, "Report": Report}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
