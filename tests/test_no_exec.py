"""No path from user text to code: a static scan of the package and a behavioural check.

1. An AST scan (not grep: comments, docstrings and `re.compile` do not count, aliases do) of every
   module in gradcheck_cli/ for calls that turn data into code or run it: eval, exec, compile,
   __import__, importlib.import_module, sympify, parse_expr, S(...), lambdify, pickle/marshal
   loads, Connection.recv (which unpickles), subprocess and os.system/popen/exec*/spawn*, runpy,
   getattr/setattr/delattr with a computed name, and a few more. Every hit must be in ALLOW_LIST
   with the reason it is safe; an entry that matches nothing any more is stale and also fails,
   so the list always describes the code as it is.
2. lambdify is the one place SymPy generates Python source. It only ever sees `Dummy` symbols:
   variables named like Python keywords, builtins, modules, SymPy's own names or lambdify's
   temporaries (`lambda`, `exec`, `__import__`, `os`, `x0`, `_Dummy_1` ...) give the right
   derivative, and the captured generated source names none of them.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest
import sympy

import gradcheck_cli
from gradcheck_cli import symbolic
from gradcheck_cli.check import check
from gradcheck_cli.parse import parse

PACKAGE = Path(gradcheck_cli.__file__).resolve().parent

# (file, enclosing function's qualified name, what is called) -> why this one is safe.
# Keyed by the enclosing function so that a second lambdify somewhere else in symbolic.py is a
# new finding that needs its own reason.
ALLOW_LIST: dict[tuple[str, str, str], str] = {
    ("symbolic.py", "prepare", "lambdify"): (
        "generates numpy code for the derivatives; its arguments are fresh sympy.Dummy symbols "
        "(printed _Dummy_<n>), never the user's variable names, and the expressions are built "
        "node by node from the parsed graph (to_sympy), never from text"
    ),
    ("symbolic.py", "_mp_lambdify", "lambdify"): (
        "same as in prepare, for the mpmath evaluation of the exact reference: Dummy arguments, "
        "expressions built from the graph"
    ),
    ("worker.py", "_serve", "recv"): (
        "the worker unpickles the requests of its own parent, which forked it: (function, args) "
        "tuples naming symbolic.py's generators and carrying the parsed graph and float arrays; "
        "the pipe is private to this parent/child pair"
    ),
    ("worker.py", "Worker.collect", "recv"): (
        "Connection.recv unpickles what our own forked worker sent: tuples of str/float/dict/arrays "
        "yielded by symbolic.py's generators, which run our code on the parsed graph, not user "
        "code; the pipe is private to this parent/child pair"
    ),
    ("drawing.py", "_run_dot", "import subprocess"): (
        "the one subprocess gradcheck starts, Graphviz's dot for --graph FILE.svg/.png; imported "
        "inside the one function that runs it"
    ),
    ("drawing.py", "_run_dot", "subprocess.run"): (
        "runs dot with a fixed argument list [shutil.which('dot'), '-Tsvg' or '-Tpng'] from a "
        "two-entry table, no shell, a timeout; user text reaches only dot's standard input, as "
        "HTML-escaped labels, so no tag or attribute can be injected"
    ),
    ("interpret.py", "_elementary", "setattr(computed name)"): (
        "fills the scalar forms' elementary functions from the fixed _ELEMENTARY table (names "
        "like 'sin'; values are math's or numpy's own functions); no user data reaches it"
    ),
    ("suite.py", "run_all.drain", "recv"): (
        "Connection.recv unpickles the outcomes of a file's checks from the second process this "
        "process forked to run half of them: our dataclasses of reports, floats and arrays; the "
        "pipe is private to this parent/child pair"
    ),
    ("worker.py", "_die_with_parent", "import ctypes"): (
        "one fixed libc call, prctl(PR_SET_PDEATHSIG, SIGKILL), so the SymPy worker dies with "
        "gradcheck; no user data reaches it"
    ),
}

# Called by bare name or as an attribute of anything: these turn data into code or run code.
_ALWAYS = {
    "eval", "exec", "compile", "__import__", "import_module", "sympify", "parse_expr",
    "lambdify", "implemented_function", "execfile", "run_path", "run_module", "system",
    "popen", "Popen", "getoutput", "getstatusoutput", "check_output", "check_call",
    "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
    "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
    "posix_spawn", "posix_spawnp", "startfile", "attrgetter", "methodcaller", "recv",
    "globals", "locals", "vars", "load_source",
}
# Builtins whose danger is a computed attribute name.
_NAME_ARG = {"getattr", "setattr", "delattr"}
# Only dangerous when they come from these modules: pickle.loads, subprocess.run, sympy.S(...),
# sympy.var (injects names), sympy.symbols (parses a string), pydoc.locate, code.interact.
_PICKLERS = {"pickle", "_pickle", "marshal", "dill", "cloudpickle", "shelve", "yaml", "jsonpickle"}
_ON_MODULE = {
    "loads": _PICKLERS, "load": _PICKLERS, "Unpickler": _PICKLERS,
    "run": {"subprocess"}, "call": {"subprocess"},
    "S": {"sympy"}, "var": {"sympy"}, "symbols": {"sympy"},
    "locate": {"pydoc"}, "interact": {"code"}, "compile_command": {"code", "codeop"},
}
# `compile` as an attribute is fine on these (a regular expression is not Python code).
_HARMLESS_COMPILE = {"re", "regex"}
# Importing these modules at all is a finding: a math checker has no use for them.
_MODULES = {"pickle", "_pickle", "marshal", "dill", "cloudpickle", "subprocess", "runpy", "code",
            "codeop", "ctypes", "pydoc", "shelve", "importlib"}


@dataclass(frozen=True)
class Finding:
    file: str
    scope: str
    called: str
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.scope, self.called)


def _root(node: ast.AST) -> str | None:
    """The leftmost name of `a.b.c`, or None when it is not a plain attribute chain."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.scope: list[str] = []
        self.modules: dict[str, str] = {}  # local name -> top-level module (import x as y)
        self.imported: dict[str, tuple[str, str]] = {}  # local -> (module root, name) (from-import)
        self.findings: list[Finding] = []

    def _add(self, called: str, node: ast.AST) -> None:
        scope = ".".join(self.scope) or "<module>"
        self.findings.append(Finding(self.file, scope, called, getattr(node, "lineno", 0)))

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            self.modules[alias.asname or top] = top
            if top in _MODULES:
                self._add(f"import {alias.name}", node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        root = (node.module or "").split(".")[0] if node.level == 0 else ""
        for alias in node.names:
            self.imported[alias.asname or alias.name] = (root, alias.name)
            if (root in _MODULES or alias.name in _ALWAYS
                    or root in _ON_MODULE.get(alias.name, ())):
                self._add(f"from {node.module} import {alias.name}", node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            root, name = self.imported.get(func.id, ("", func.id))
            if name in _ALWAYS:
                self._add(name, node)
            elif name in _NAME_ARG:
                if len(node.args) < 2 or not isinstance(node.args[1], ast.Constant):
                    self._add(f"{name}(computed name)", node)
            elif root in _ON_MODULE.get(name, ()):
                self._add(f"{root}.{name}", node)
        elif isinstance(func, ast.Attribute):
            local = _root(func.value)
            module = self.modules.get(local or "", local)
            attr = func.attr
            if attr == "compile":
                if module not in _HARMLESS_COMPILE:
                    self._add("compile", node)
            elif attr in _ALWAYS:
                self._add(attr, node)
            elif attr in _NAME_ARG and module == "builtins":
                self._add(f"{attr}(computed name)", node)
            elif module in _ON_MODULE.get(attr, ()):
                self._add(f"{module}.{attr}", node)
        # getattr(obj, name)(...): the inner call is visited by generic_visit on its own.
        self.generic_visit(node)


def scan_source(source: str, file: str) -> list[Finding]:
    scanner = _Scanner(file)
    scanner.visit(ast.parse(source, filename=file))
    return scanner.findings


def scan_package() -> list[Finding]:
    findings: list[Finding] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        findings += scan_source(path.read_text(encoding="utf-8"), rel)
    return findings


# --------------------------------------------------------------------------------------------
# The scan
# --------------------------------------------------------------------------------------------

def test_package_files_are_found() -> None:
    names = {p.name for p in PACKAGE.glob("*.py")}
    assert {"parse.py", "cli.py", "check.py", "symbolic.py", "worker.py", "checkfile.py"} <= names


def test_no_call_turns_data_into_code_outside_the_allow_list() -> None:
    unexpected = [f for f in scan_package() if f.key not in ALLOW_LIST]
    assert not unexpected, "new data-to-code call(s); make them unnecessary or add an ALLOW_LIST " \
        "entry with the reason they are safe:\n" + "\n".join(
            f"  {f.file}:{f.line} in {f.scope}: {f.called}" for f in unexpected)


def test_allow_list_has_no_stale_entries() -> None:
    found = {f.key for f in scan_package()}
    stale = [k for k in ALLOW_LIST if k not in found]
    assert not stale, f"ALLOW_LIST entries that match nothing any more (remove them): {stale}"


def test_allow_list_reasons_are_real_sentences() -> None:
    for key, reason in ALLOW_LIST.items():
        assert len(reason) > 40, key


# The scanner itself must catch what it claims to: each snippet must produce exactly `called`.
SCANNER_CASES = [
    ("eval(s)", "eval"),
    ("exec(code, {})", "exec"),
    ("compile(s, '<x>', 'eval')", "compile"),
    ("__import__(name)", "__import__"),
    ("import importlib\nimportlib.import_module(name)", "import_module"),
    ("import sympy\nsympy.sympify(s)", "sympify"),
    ("import sympy\nsympy.core.sympify.sympify(s)", "sympify"),
    ("import sympy as sp\nsp.sympify(s)", "sympify"),
    ("from sympy import sympify as sy\nsy(s)", "sympify"),
    ("from sympy.parsing.sympy_parser import parse_expr\nparse_expr(s)", "parse_expr"),
    ("import sympy as sp\nsp.S(s)", "sympy.S"),
    ("import sympy\nsympy.S(s)", "sympy.S"),
    ("from sympy import S\nS(s)", "sympy.S"),
    ("import sympy as sp\nsp.var('x y')", "sympy.var"),
    ("import pydoc\npydoc.locate(name)", "pydoc.locate"),
    ("import sympy as sp\nsp.lambdify(a, e)", "lambdify"),
    ("from sympy.utilities.lambdify import lambdify as L\nL(a, e)", "lambdify"),
    ("import pickle as p\np.loads(b)", "pickle.loads"),
    ("import marshal\nmarshal.loads(b)", "marshal.loads"),
    ("import subprocess\nsubprocess.run(['ls'])", "subprocess.run"),
    ("import subprocess as s\ns.call('ls', shell=True)", "subprocess.call"),
    ("import os\nos.system(cmd)", "system"),
    ("import os\nos.popen(cmd)", "popen"),
    ("import os\nos.execv(p, a)", "execv"),
    ("getattr(obj, name)", "getattr(computed name)"),
    ("setattr(obj, name, 1)", "setattr(computed name)"),
    ("getattr(obj, 'a' + b)", "getattr(computed name)"),
    ("conn.recv()", "recv"),
    ("globals()[name]", "globals"),
    ("import operator\noperator.attrgetter(name)(obj)", "attrgetter"),
]


@pytest.mark.parametrize("source,called", SCANNER_CASES, ids=[c for _, c in SCANNER_CASES])
def test_scanner_catches(source: str, called: str) -> None:
    wrapped = "def f():\n" + "\n".join("    " + line for line in source.splitlines())
    found = scan_source(wrapped, "snippet.py")
    calls = [x.called for x in found if not x.called.startswith(("import ", "from "))]
    assert calls == [called], (source, calls)
    assert all(x.scope == "f" for x in scan_source(wrapped, "snippet.py"))


@pytest.mark.parametrize("source", [
    "import re\nre.compile(r'x+')",
    "import re as regex_mod\nregex_mod.compile('x')",
    "getattr(obj, 'name')",
    "getattr(obj, 'name', None)",
    "hasattr(signal, 'setitimer')",
    "import sympy as sp\nsp.S.Zero + sp.S.Half",
    "import tomllib\ntomllib.loads(text)",
    "import json\njson.loads(text)",
    "import sympy as sp\nsp.Symbol(name, real=True)",
    "b.var(name)",
    "symbols.get(name)",
    "re.compile(pattern).match(text)",
    "# eval(x) in a comment\n'exec(x) in a string'",
], ids=lambda s: s.splitlines()[-1][:30])
def test_scanner_ignores_harmless(source: str) -> None:
    assert scan_source(source, "snippet.py") == []


@pytest.mark.parametrize("source,called", [
    ("import pickle", "import pickle"),
    ("import subprocess", "import subprocess"),
    ("from pickle import loads", "from pickle import loads"),
    ("from subprocess import run", "from subprocess import run"),
    ("from sympy import sympify", "from sympy import sympify"),
])
def test_scanner_flags_dangerous_imports(source: str, called: str) -> None:
    assert [f.called for f in scan_source(source, "snippet.py")] == [called]


# --------------------------------------------------------------------------------------------
# Behaviour: lambdify never sees a user's name
# --------------------------------------------------------------------------------------------

# f = __import__*os + lambda**2 - exec/print + x0*_Dummy_1 + builtins*numpy
HOSTILE_FORMULA = "__import__*os + lambda**2 - exec/print + x0*_Dummy_1 + builtins*numpy"
HOSTILE_POINT = {"__import__": 2.0, "os": 3.0, "lambda": 5.0, "exec": 7.0, "print": 11.0,
                 "x0": 13.0, "_Dummy_1": 17.0, "builtins": 19.0, "numpy": 23.0}
HOSTILE_GRADIENT = {  # by hand
    "__import__": 3.0, "os": 2.0, "lambda": 10.0, "exec": -1 / 11, "print": 7 / 121,
    "x0": 17.0, "_Dummy_1": 13.0, "builtins": 23.0, "numpy": 19.0,
}
HOSTILE_VALUE = 2 * 3 + 25 - 7 / 11 + 13 * 17 + 19 * 23


@pytest.fixture
def captured_lambdify_sources(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on sympy.lambdify (symbolic.py looks it up as sp.lambdify at call time)."""
    sources: list[str] = []
    real = sympy.lambdify

    def spy(*args: object, **kwargs: object) -> object:
        fn = real(*args, **kwargs)
        sources.append(inspect.getsource(fn))
        return fn

    monkeypatch.setattr(sympy, "lambdify", spy)
    return sources


def _identifiers(source: str) -> set[str]:
    ids: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            ids.add(node.id)
        elif isinstance(node, ast.arg):
            ids.add(node.arg)
        elif isinstance(node, ast.Attribute):
            ids.add(node.attr)
        elif isinstance(node, ast.FunctionDef):
            ids.add(node.name)
    return ids


def test_lambdified_source_never_names_a_user_variable(captured_lambdify_sources: list[str]) -> None:
    graph = parse(HOSTILE_FORMULA)
    assert set(graph.variables) == set(HOSTILE_POINT)
    out = dict(symbolic.stages(graph, HOSTILE_POINT, list(graph.variables), formulas=True,
                               exact_digits=30))
    # right values, float64 and 30-digit
    assert out["float"] == pytest.approx(HOSTILE_GRADIENT, rel=1e-15)
    point_index, exact, undefined = out["exact"]
    assert point_index == 0 and undefined == {}
    for name, want in HOSTILE_GRADIENT.items():
        assert float(exact[name]) == pytest.approx(want, rel=1e-15), name
    assert exact["exec"].startswith("-0.0909090909090909090909090909")
    # two generated functions (float64 and mpmath), neither mentions a user's name
    assert len(captured_lambdify_sources) == 2
    for source in captured_lambdify_sources:
        ids = _identifiers(source)
        leaked = ids & set(HOSTILE_POINT)
        assert not leaked, (leaked, source)
        fn = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef))
        params = [a.arg for a in fn.args.args]
        assert len(params) == len(HOSTILE_POINT)
        assert all(p.startswith("_Dummy_") for p in params), params


@pytest.mark.parametrize("names", [
    ["lambda", "exec", "print", "import", "def"],
    ["class", "return", "yield", "None", "True"],
    ["False", "__builtins__", "__class__", "sys", "eval"],
    ["x0", "x1", "_Dummy_2", "Dummy", "mpmath"],
    ["S", "N", "I", "E1", "oo"],
    ["zoo", "nan", "inf", "Symbol", "Float"],
], ids=lambda n: "-".join(n))
def test_any_identifier_is_a_plain_variable(names: list[str],
                                           captured_lambdify_sources: list[str]) -> None:
    # f = a*b + c*d + e**3 with hand gradient, in-process (no worker) so lambdify is captured.
    a, b, c, d, e = names
    graph = parse(f"{a}*{b} + {c}*{d} + {e}**3")
    point = {a: 2.0, b: 3.0, c: 5.0, d: 7.0, e: 1.5}
    out = dict(symbolic.stages(graph, point, names))
    assert out["float"] == {a: 3.0, b: 2.0, c: 7.0, d: 5.0, e: 3 * 1.5**2}
    assert len(captured_lambdify_sources) == 1
    for source in captured_lambdify_sources:
        assert not (_identifiers(source) & set(names)), source


def test_hostile_names_through_the_whole_check() -> None:
    # The real path: parse, AD, finite differences, SymPy in its worker, 30-digit reference.
    report = check(HOSTILE_FORMULA, HOSTILE_POINT)
    assert report.ok
    assert report.reference == "exact"
    assert report.value == pytest.approx(HOSTILE_VALUE, rel=1e-15)
    for method in ("reverse", "forward", "symbolic"):
        assert report.method(method).gradient == pytest.approx(HOSTILE_GRADIENT, rel=1e-14), method
    assert report.method("central").gradient == pytest.approx(HOSTILE_GRADIENT, rel=1e-6)
    assert report.exact is not None and report.exact["lambda"].startswith("10.000000000")
