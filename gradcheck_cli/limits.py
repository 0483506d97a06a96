"""Resource limits on user input, each with the CLI flag that changes it.

Formulas may come from strangers (homework files in CI), so every dimension that could make a
check slow or large is bounded, and the error that enforces a bound names it and its flag.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_length: int = 2_000_000  # characters in a formula (10**5-node formulas fit easily)
    max_depth: int = 100_000  # nesting of parentheses, calls and unary signs
    max_digits: int = 400  # digits in one numeric literal
    max_exponent: int = 10_000  # |n| for a constant integer exponent x**n


DEFAULT_LIMITS = Limits()
