"""The one error type gradcheck raises for bad input.

Every failure a user can cause (syntax, unknown names, missing or malformed values, a point
where the formula is undefined, a limit exceeded) is a `GradcheckError`. The CLI turns it into
one paragraph on stderr (or one JSON object) and exit code 2; nothing else escapes as a
traceback.
"""

from __future__ import annotations

import re

# control characters, lone surrogates, and the invisible formatting characters that reorder or
# hide text (bidi overrides U+202A-E and U+2066-9, zero-width U+200B-F, U+2060-4, BOM U+FEFF)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e"
                      "\u2060-\u2064\u2066-\u2069\ufeff]")


def escape_controls(text: str) -> str:
    """Control characters (and lone surrogates) as \\xNN / \\uNNNN, so echoing user text can
    never drive the terminal."""
    def one(m: re.Match[str]) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _CONTROL.sub(one, text)


class GradcheckError(Exception):
    """Bad input. `kind` is a stable identifier (it is written to JSON), `message` is for people."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        column: int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.column = column  # 1-based column in `source`, for syntax errors
        self.source = source

    def __reduce__(self) -> tuple[object, ...]:
        # picklable with its keyword fields (a file's checks run in two processes)
        return (_rebuild, (self.kind, self.message, self.column, self.source))

    def caret(self) -> str | None:
        """The offending line with a caret under the column, or None when there is no column."""
        if self.column is None or self.source is None:
            return None
        # One printable character per source character, so the caret stays aligned: whitespace
        # becomes a space, other control or non-ASCII characters a '?' (the message names them).
        line = "".join(
            " " if c in "\t\r\n" else c if " " <= c <= "~" else "?" for c in self.source
        )
        # Long formulas: show a window around the column so the caret stays visible.
        start = max(0, self.column - 1 - 60)
        end = min(len(line), self.column - 1 + 40)
        prefix = "..." if start > 0 else ""
        suffix = "..." if end < len(line) else ""
        shown = prefix + line[start:end] + suffix
        pad = len(prefix) + (self.column - 1 - start)
        return f"  {shown}\n  {' ' * pad}^"


def _rebuild(kind: str, message: str, column: int | None, source: str | None) -> GradcheckError:
    return GradcheckError(kind, message, column=column, source=source)
