"""The console entry point, kept light: it starts SymPy's worker process first (its import is
the largest part of a short check), then imports the command line and runs it. Everything
heavy (numpy, rich, click, the methods) is imported after the fork, so both cores work from
the first millisecond.

Two more things a short check does not need:
- numpy's BLAS gets one thread unless the environment says otherwise (OPENBLAS_NUM_THREADS,
  or OMP_NUM_THREADS, which OpenBLAS also reads): starting OpenBLAS's thread pool is 60-80 ms
  of numpy's import here, taken from the core the worker is importing SymPy on, and a check
  has no use for it (its arrays go through elementwise ufuncs; the one matrix product, of the
  sampled directions, is small), while a file of checks already runs one process per core;
- once the command has said everything and flushed it, the process ends without tearing the
  interpreter down (freeing numpy's, rich's and our modules one object at a time: 20-70 ms):
  the exit handlers still run (they stop the worker), then os._exit with the same exit code.
  Only when run as the command itself (no `argv` given), with an integer exit code, only the
  main thread left, and stdout and stderr flushed without error; otherwise Python exits as
  ever."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

_NO_SYMPY = ("-h", "--help", "--version")
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def main(argv: Sequence[str] | None = None) -> None:
    if "numpy" not in sys.modules and not any(name in os.environ for name in _BLAS_THREADS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    args = list(sys.argv[1:] if argv is None else argv)
    words = args[: args.index("--")] if "--" in args else args
    # --symbolic-memory asks for a worker with another budget: the check starts that one
    if not any(a in _NO_SYMPY or a.startswith("--symbolic-memory") for a in words):
        from . import worker

        worker.prestart()
    from .cli import main as run

    try:
        run(args)
    except SystemExit as stop:
        if argv is None:
            _end_now(stop.code)
        raise


def _flushed() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:  # noqa: BLE001 - Python's own exit reports it, as it always did
        return False
    return True


def _end_now(code: object) -> None:
    """End the process with `code` now, skipping the interpreter's teardown (see the module
    docstring); return (and let Python exit) where that could change what the caller sees."""
    import atexit

    code = 0 if code is None else code
    if type(code) is not int or not 0 <= code <= 255 or not _flushed():
        return
    threading = sys.modules.get("threading")
    if threading is not None and any(t is not threading.main_thread() and not t.daemon
                                     for t in threading.enumerate()):
        return  # Python would wait for these threads
    atexit._run_exitfuncs()
    if _flushed():
        os._exit(code)
