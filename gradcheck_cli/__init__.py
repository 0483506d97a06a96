"""gradcheck: check a derivative four independent ways (reverse AD, forward AD, symbolic,
finite differences) and say whether they agree.

    >>> from gradcheck_cli import check
    >>> report = check("(x+y)*z", {"x": -2, "y": 5, "z": -4})
    >>> report.method("reverse").gradient
    {'x': -4.0, 'y': -4.0, 'z': 3.0}
"""

from .check import METHODS, check
from .errors import GradcheckError
from .graph import Graph
from .limits import Limits
from .parse import parse
from .report import Diagnostic, MethodReport, Report

__all__ = [
    "METHODS", "Diagnostic", "Graph", "GradcheckError", "Limits", "MethodReport", "Report",
    "check", "parse",
]
