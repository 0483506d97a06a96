"""The graph picture: the DAG as the lecture slides draw it, with every value and gradient.

Convention: one box per input and per operation (constants are small grey boxes), edges from
each argument to the operation that reads it (an argument read twice, as in x*x, gets two
edges), a named step labelled with its name and its formula. Each box shows its forward value
(blue) and its gradient d(output)/d(node) (red), both with significant digits (`trace.num`),
so a gradient of 3e-05 never shows as 0.0000; a node that does not lead to the variables has
no gradient line. Nothing is drawn before the backward sweep: the caller passes both sweeps'
numbers (`trace.trace(...).values` and `.adjoints`), so a picture can never show the zeros of
a gradient not yet computed.

Formats, by the file's suffix (`write_picture`):
- `.dot` / `.gv`: Graphviz source, plain text, always available;
- `.mmd`: a Mermaid flowchart, which GitHub renders inside markdown;
- `.svg` / `.png`: Graphviz's `dot` program, run once with a fixed argument list
  (`[dot, -Tsvg]` or `[dot, -Tpng]`, the source on standard input, no shell). When `dot` is
  not installed, a `GradcheckError` (exit 2) says how to install it.
Every file is written whole or not at all: rendered in memory, written to a temporary file in
the same directory, then renamed over the target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np

from .errors import GradcheckError
from .graph import Graph
from .trace import needed_nodes, num, resolve_output, step_names

VALUE_COLOUR = "#1f5fbf"  # blue: the forward value
GRADIENT_COLOUR = "#c0392b"  # red: the gradient
DOT_TIMEOUT = 60.0  # seconds for Graphviz to lay out one picture
_TABLE = 'border="0" cellborder="0" cellspacing="0" cellpadding="1"'  # a box's lines, one per row
_DOT_FORMATS = {"svg": "-Tsvg", "png": "-Tpng"}  # the only arguments dot is ever given

INSTALL_HINT = (
    "Graphviz's `dot` program is needed to draw {name} and was not found on the PATH. Install "
    "Graphviz: `sudo apt-get install graphviz` (Debian, Ubuntu), `sudo dnf install graphviz` "
    "(Fedora), `brew install graphviz` (macOS), `conda install -c conda-forge graphviz`, or "
    "https://graphviz.org/download/ (Windows). Or write a .dot or .mmd file, which needs "
    "nothing else. Nothing was written."
)


def _nodes(graph: Graph, output: int | None) -> tuple[int, list[int]]:
    out = resolve_output(graph, output)
    need = needed_nodes(graph, out)
    return out, [i for i in range(out + 1) if need[i]]


def _lines(graph: Graph, i: int, names: Sequence[str], expressions: Sequence[str],
           values: Sequence[object], adjoints: Sequence[object], digits: int) -> list[tuple[str, str]]:
    """(text, kind) lines of node i's box: its name, its formula, its value, its gradient."""
    node = graph.nodes[i]
    lines = [(names[i], "name")]
    if node.op not in ("var", "const") and expressions[i] != names[i]:
        lines.append((expressions[i], "formula"))
    if node.op == "const" and i not in graph.labels:
        return lines  # a typed number: its text is its value
    lines.append((f"value {num(_float(values[i]), digits)}", "value"))
    if adjoints[i] is not None:
        lines.append((f"grad {num(_float(adjoints[i]), digits)}", "gradient"))
    return lines


def _float(x: object) -> float:
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def to_dot(
    graph: Graph,
    values: Sequence[object],
    adjoints: Sequence[object],
    *,
    output: int | str | None = None,
    digits: int = 6,
) -> str:
    """Graphviz source: every node with its value and gradient, edges argument → operation.
    `values[i]` and `adjoints[i]` are node i's (an adjoint None: no path to the variables)."""
    out, shown = _nodes(graph, output)
    n = step_names(graph, out)
    o = n.output_name
    head = [
        "digraph gradcheck {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=11, labelloc=t, '
        f'label=<<font color="{VALUE_COLOUR}">value</font> and '
        f'<font color="{GRADIENT_COLOUR}">grad = d{_html(o)}/d(node)</font>>];',
        '  node [fontname="Helvetica", fontsize=11, shape=box, style="rounded"];',
        "  edge [arrowsize=0.7];",
    ]
    body = []
    for i in shown:
        node = graph.nodes[i]
        rows = []
        for text, kind in _lines(graph, i, n.name, n.expression, values, adjoints, digits):
            cell = _html(text)
            if kind == "name":
                cell = f"<b>{cell}</b>"
            elif kind == "value":
                cell = f'<font color="{VALUE_COLOUR}">{cell}</font>'
            elif kind == "gradient":
                cell = f'<font color="{GRADIENT_COLOUR}">{cell}</font>'
            rows.append(f"<tr><td>{cell}</td></tr>")
        label = f"<<table {_TABLE}>{''.join(rows)}</table>>"
        if node.op == "var":
            attrs = 'style="filled", fillcolor="#eef3fb"'
        elif node.op == "const":
            attrs = ('style="rounded,filled", fillcolor="#f2f2f2", color="#999999", fontsize=10, '
                     'width=0.3, height=0.25, margin="0.06,0.02"')
        else:
            attrs = 'style="rounded"'
        if i == out:
            attrs += ", penwidth=2"
        body.append(f"  n{i} [label={label}, {attrs}];")
    for i in shown:
        for a in graph.nodes[i].args:
            body.append(f"  n{a} -> n{i};")
    return "\n".join(head + body + ["}"]) + "\n"


def _mermaid_text(s: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for the characters Mermaid reads."""
    # '#' first: the entity codes the other replacements add start with one
    return s.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(
    graph: Graph,
    values: Sequence[object],
    adjoints: Sequence[object],
    *,
    output: int | str | None = None,
    digits: int = 6,
) -> str:
    """A Mermaid flowchart (renders in GitHub markdown inside a ```mermaid block): the same
    boxes as `to_dot`, value and gradient each on their own line, inputs and constants shaded."""
    out, shown = _nodes(graph, output)
    n = step_names(graph, out)
    lines = ["flowchart LR"]
    kinds: dict[str, list[str]] = {"input": [], "constant": [], "output": []}
    for i in shown:
        node = graph.nodes[i]
        parts = [_mermaid_text(t) for t, _ in _lines(graph, i, n.name, n.expression, values,
                                                     adjoints, digits)]
        lines.append(f'  n{i}["{"<br/>".join(parts)}"]')
        if node.op == "var":
            kinds["input"].append(f"n{i}")
        elif node.op == "const":
            kinds["constant"].append(f"n{i}")
        if i == out:
            kinds["output"].append(f"n{i}")
    for i in shown:
        for a in graph.nodes[i].args:
            lines.append(f"  n{a} --> n{i}")
    lines += ["  classDef input fill:#eef3fb,stroke:#1f5fbf",
              "  classDef constant fill:#f2f2f2,stroke:#999999,color:#555555",
              "  classDef output stroke-width:3px"]
    for kind, ids in kinds.items():
        if ids:
            lines.append(f"  class {','.join(ids)} {kind}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write `data` to `path` whole or not at all: a temporary file in the same directory,
    renamed over the target (a reader never sees half a picture; a failure leaves nothing)."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = target.parent
    if not directory.is_dir():
        raise GradcheckError("output", f"cannot write {target}: the directory {directory} does not exist.")
    if target.is_dir():
        raise GradcheckError("output", f"cannot write {target}: it is a directory.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise GradcheckError("output", f"cannot write {target}: {exc.strerror or exc}.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make a picture meant for sharing private
        os.replace(tmp, target)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(tmp)
        raise GradcheckError("output", f"cannot write {target}: {exc.strerror or exc}.") from None


DOT_MEMORY = 2 * 2**30  # bytes of address space for dot (a 4,900-node layout took 1.6 GB and crashed)


def _limit_dot_memory() -> None:
    """In the child, before dot starts: cap its address space (within any existing ulimit)."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = DOT_MEMORY if hard == resource.RLIM_INFINITY else min(DOT_MEMORY, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass


def _run_dot(dot_text: str, fmt: str, name: str) -> bytes:
    """Graphviz's layout of `dot_text` as `fmt` (svg or png) bytes. The one subprocess in
    gradcheck: the argument list is fixed ([the dot found on the PATH, -Tsvg|-Tpng]), no shell,
    the source on standard input, the picture on standard output, a timeout."""
    import subprocess

    exe = shutil.which("dot")
    if exe is None:
        raise GradcheckError("missing-tool", INSTALL_HINT.format(name=name))
    try:
        done = subprocess.run([exe, _DOT_FORMATS[fmt]], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=DOT_TIMEOUT, check=False,
                              preexec_fn=_limit_dot_memory)
    except subprocess.TimeoutExpired:
        raise GradcheckError("output", f"Graphviz's dot took more than {DOT_TIMEOUT:g} s to draw "
                             f"{name}; nothing was written (a .dot file needs no layout).") from None
    except OSError as exc:
        raise GradcheckError("output", f"Graphviz's dot could not run ({exc.strerror or exc}); "
                             "nothing was written.") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GradcheckError("output", f"Graphviz's dot failed to draw {name}"
                             + (f": {why[0][:200]}" if why else "") + "; nothing was written.")
    return done.stdout


def render(dot_text: str, path: str | os.PathLike[str]) -> None:
    """Write Graphviz source to `path`: as it is for .dot/.gv, drawn by Graphviz for .svg/.png."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".dot", ".gv"):
        write_atomic(target, dot_text)
    elif suffix in (".svg", ".png"):
        write_atomic(target, _run_dot(dot_text, suffix[1:], target.name))
    else:
        raise GradcheckError("usage", f"cannot draw {target.name}: the picture's name must end in "
                             ".dot, .gv, .svg, .png or .mmd.")


def write_picture(
    graph: Graph,
    values: Sequence[object],
    adjoints: Sequence[object],
    path: str | os.PathLike[str],
    *,
    output: int | str | None = None,
    digits: int = 6,
) -> None:
    """`--graph FILE`: the picture in the format the suffix names (.dot .gv .svg .png .mmd)."""
    target = Path(path)
    if target.suffix.lower() == ".mmd":
        write_atomic(target, to_mermaid(graph, values, adjoints, output=output, digits=digits))
    else:
        render(to_dot(graph, values, adjoints, output=output, digits=digits), target)
