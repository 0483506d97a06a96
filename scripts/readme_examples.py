"""Refresh the example outputs in README.md by running them.

Each example is a fenced block preceded by a marker line
    <!-- run: gradcheck ... -->
and followed by `<!-- end -->`; the block between is replaced with the command and what it
printed (stdout and stderr, as a user would see them in a terminal 100 columns wide). The
`markdown` variant pastes the output itself, unfenced. Run from the project root:

    python scripts/readme_examples.py
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

MARKER = re.compile(r"<!-- run(?P<raw>-raw)?: (?P<cmd>.*?) -->\n.*?<!-- end -->", re.S)


def run(cmd: str) -> str:
    env = {**os.environ, "COLUMNS": "100"}
    argv = shlex.split(cmd)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    return (proc.stdout + proc.stderr).rstrip("\n")


def replace(match: re.Match[str]) -> str:
    cmd = match.group("cmd")
    out = run(cmd)
    if match.group("raw"):
        body = out
    else:
        lines = [f"$ {c}" for c in cmd.split(" && ")]
        body = "```\n" + "\n".join(lines) + "\n" + out + "\n```"
    return f"<!-- run{match.group('raw') or ''}: {cmd} -->\n{body}\n<!-- end -->"


def main() -> None:
    path = Path("README.md")
    text = path.read_text(encoding="utf-8")
    path.write_text(MARKER.sub(replace, text), encoding="utf-8")
    print(f"refreshed {len(MARKER.findall(text))} examples", file=sys.stderr)


if __name__ == "__main__":
    main()
