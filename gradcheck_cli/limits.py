"""Resource limits on user input, each with the CLI flag that changes it.

Formulas may come from strangers (homework files in CI), so every dimension that could make a
check slow or large is bounded, and the error that enforces a bound names it and its flag.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import GradcheckError


@dataclass(frozen=True)
class Limits:
    max_length: int = 2_000_000  # characters in a formula (10**5-node formulas fit easily)
    max_depth: int = 100_000  # nesting of parentheses, calls and unary signs
    max_digits: int = 400  # digits in one numeric literal
    max_exponent: int = 10_000  # |n| for a constant integer exponent x**n


DEFAULT_LIMITS = Limits()


MAX_TIMER = 1e8  # seconds: setitimer overflows past ~10^8 s; a limit that long is no limit


@contextmanager
def time_limit(seconds: float, message: str) -> Iterator[None]:
    """Stop what runs inside after `seconds` wall-clock (SIGALRM, in the main thread only): a
    GradcheckError("limit", message) is raised where it stands. SymPy's worker has its own
    budget, capped by what is left of this one; this stops everything else. The previous
    handler is restored on the way out."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise GradcheckError("limit", message)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, MAX_TIMER))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
