"""Run a function in a worker process under a time and memory budget that really stops it.

SymPy can hang or exhaust memory on formulas a stranger can type (huge integer powers,
towers of exp under evalf), and it recurses once per nesting level. A thread cannot be stopped
and a recursion limit does not bound memory, so the symbolic work runs in a child process:
- its address space is capped with RLIMIT_AS (what it had at start plus the budget);
- it runs in a thread with a large stack and a high recursion limit, so a formula nested
  thousands deep is differentiated instead of refused;
- the parent waits at most the time budget, then kills it.
The function is a generator: each value it yields is sent back as soon as it is ready, so
work finished before the budget ran out (a float64 derivative, say) is kept even when a later
stage (a 30-digit evaluation) is stopped. Whatever happens to the child (timeout, MemoryError,
a crash by signal), the parent gets an `Outcome` with a reason, never an exception.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WORKER_STACK_BYTES = 512 * 2**20
WORKER_RECURSION_LIMIT = 200_000


@dataclass
class Outcome:
    values: list[Any]  # what the generator yielded before it finished or was stopped
    reason: str | None = None  # None when the generator finished normally
    kind: str | None = None  # timeout | memory | crash | error


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _limit_memory(budget: int | None) -> None:
    if budget is None:
        return
    try:
        import resource
    except ImportError:  # not on this platform: the time budget still applies
        return
    now = _address_space_bytes()
    if now is None:
        return
    limit = now + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], memory: int | None) -> None:
    def send(message: tuple[str, Any]) -> None:
        try:
            conn.send(message)
        except Exception as exc:  # e.g. a value that cannot be pickled
            conn.send(("error", f"a result could not be sent back: {exc}"))

    def work() -> None:
        try:
            _limit_memory(memory)
            for item in fn(*args):
                send(("item", item))
            send(("done", None))
        except MemoryError:
            send(("memory", None))
        except RecursionError:
            send(("error", "recursed deeper than the worker allows"))
        except BaseException as exc:  # reported to the parent as data, never re-raised there
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            send(("error", detail[:500]))

    sys.setrecursionlimit(WORKER_RECURSION_LIMIT)
    threading.stack_size(WORKER_STACK_BYTES)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    conn.close()


def _context() -> Any:
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    timeout: float,
    memory: int | None,
    what: str = "the worker",
) -> Outcome:
    """Run the generator fn(*args) in a child process; what it yielded, and why it stopped."""
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, memory), daemon=True)
    proc.start()
    child.close()
    deadline = time.monotonic() + timeout
    values: list[Any] = []
    status, detail = "timeout", None
    try:
        while parent.poll(max(0.0, deadline - time.monotonic())):
            try:
                status, detail = parent.recv()
            except EOFError:
                status = "crash"
                break
            if status != "item":
                break
            values.append(detail)
            status = "timeout"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent.close()
    if status == "done":
        return Outcome(values)
    if status == "timeout":
        return Outcome(values, f"{what} exceeded its time budget of {timeout:g} s", "timeout")
    if status == "memory":
        mib = (memory or 0) / 2**20
        return Outcome(values, f"{what} exceeded its memory budget of {mib:g} MiB", "memory")
    if status == "crash":
        code = proc.exitcode
        sig = signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"
        return Outcome(values, f"{what} crashed ({sig})", "crash")
    return Outcome(values, f"{what} failed: {detail}", "error")
