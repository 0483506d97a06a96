"""One SymPy worker process per run: started early, reused, bounded, and never outliving us.

SymPy can hang or exhaust memory on formulas a stranger can type (huge integer powers, towers
of exp under evalf), and it recurses once per nesting level. A thread cannot be stopped and a
recursion limit does not bound memory, so the symbolic work runs in a child process:
- it is forked as soon as a check knows it will need SymPy (by the console entry point, before
  anything else is imported: `prestart`), and imports SymPy at once, so the 0.3-0.5 s import
  overlaps what the parent imports and runs meanwhile; it never imports numpy for a small
  batch (symbolic.py says how), and it is forked with os.fork and two pipes rather than
  multiprocessing, which would be imported before the fork (`_fork`);
- it stays alive and serves further requests (more points, the exact reference at chosen
  points, the next check of a check file), keeping what it computed in `state`;
- its address space is capped with RLIMIT_AS (what it had at start plus the budget); each
  request runs in a thread with a large stack and a high recursion limit, so a formula nested
  thousands deep is differentiated instead of refused;
- the parent waits at most a deadline per request, then kills it (the next request starts a
  fresh worker);
- it dies with the parent whatever kills the parent (PR_SET_PDEATHSIG on Linux, and a check
  that the parent is still the one that forked it), ignores Ctrl-C (the parent handles it and
  kills the worker), and does not hold the caller's stdout or stderr open (both /dev/null).
  PR_SET_PDEATHSIG follows the forking *thread*: a worker started from a thread ends with it,
  which is why each thread has its own (`shared`).

A request is a generator function `fn(state, *args)`: each value it yields is sent back as soon
as it is ready, so work finished before a deadline (a float64 derivative, say) is kept even
when a later stage (a 30-digit evaluation) is stopped. Whatever happens (timeout, MemoryError,
a crash by signal), the parent gets an `Outcome` with a reason, never an exception.
"""

from __future__ import annotations

import _thread
import atexit
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

DEFAULT_MEMORY = 2 * 2**30  # bytes: the default --symbolic-memory
WORKER_STACK_BYTES = 512 * 2**20
WORKER_RECURSION_LIMIT = 200_000


class Outcome:
    """What a request gave: `values`, what its generator yielded before it finished or was
    stopped; `reason`, None when it finished normally; `kind`: timeout | memory | crash | error.
    (A plain class: this module is imported before the worker is forked, where every
    millisecond delays both processes, and dataclasses costs several.)"""

    __slots__ = ("values", "reason", "kind")

    def __init__(self, values: list[Any], reason: str | None = None, kind: str | None = None) -> None:
        self.values, self.reason, self.kind = values, reason, kind

    def __repr__(self) -> str:
        return f"Outcome(values={self.values!r}, reason={self.reason!r}, kind={self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Outcome) and (self.values, self.reason, self.kind) == (
            other.values, other.reason, other.kind)

    __hash__ = None  # type: ignore[assignment]


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
    # An existing `ulimit -v` (the hard limit) cannot be raised: stay within it rather than fail
    # to start, which would silently lose the symbolic column.
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard if hard != resource.RLIM_INFINITY else limit))


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill us when the parent dies; if it already has, go now."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's atexit and kill still apply
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _quiet_stdio() -> None:
    """Let go of the caller's stdout/stderr: a reader of our parent's output must see its end
    when the parent ends, not when the worker does."""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


def _serve(conn: Any, parent_pid: int, memory: int | None,
           warm: Callable[[], Iterable[None] | None] | None) -> None:
    import threading
    import traceback

    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _quiet_stdio()
    sys.setrecursionlimit(WORKER_RECURSION_LIMIT)
    threading.stack_size(WORKER_STACK_BYTES)
    _limit_memory(memory)
    state: dict[str, Any] = {}
    if warm is not None:
        try:
            # import SymPy now, while the parent runs the fast methods; what comes after the
            # imports only pays first-use costs early, so it stops once a request is waiting
            for _ in warm() or ():
                if conn.poll():
                    break
        except BaseException:  # a failed import shows up again, as data, in the first request
            pass

    def send(message: tuple[str, Any]) -> None:
        try:
            conn.send(message)
        except Exception as exc:  # e.g. a value that cannot be pickled
            conn.send(("error", f"a result could not be sent back: {exc}"))

    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return

        def work(fn: Callable[..., Any] = fn, args: tuple[Any, ...] = args) -> None:
            try:
                for item in fn(state, *args):
                    send(("item", item))
                send(("done", None))
            except MemoryError:
                state.clear()
                send(("memory", None))
            except RecursionError:
                send(("error", "recursed deeper than the worker allows"))
            except BaseException as exc:  # reported to the parent as data, never re-raised there
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                send(("error", detail[:500]))

        t = threading.Thread(target=work)
        t.start()
        t.join()


class Worker:
    """A worker process serving requests one at a time (see the module docstring)."""

    def __init__(self, memory: int | None, warm: Callable[[], Iterable[None] | None] | None = None) -> None:
        self.memory = memory
        self.warm = warm
        self.proc: Any = None
        self.conn: Any = None
        self.busy = False  # a request was sent and not collected to its end
        self.owner = os.getpid()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self.close()
        if _CAN_FORK:
            self.proc, self.conn = _fork(self.memory, self.warm)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe(duplex=True)
            self.proc = ctx.Process(target=_serve, args=(child, os.getpid(), self.memory, self.warm),
                                    daemon=True)
            self.proc.start()
            child.close()
            self.conn = parent
        self.owner = os.getpid()

    def send(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Start a request without waiting for it (collect it with `collect`)."""
        if self.busy:  # an abandoned request: its answers must not be read as this one's
            self.close()
        self.start()
        self.conn.send((fn, args))
        self.busy = True

    def collect(self, deadline: float, what: str = "the worker", budget: float | None = None) -> Outcome:
        """Everything the running request yields until it finishes or `deadline` (monotonic)
        passes; then the worker is killed."""
        values: list[Any] = []
        status, detail = "timeout", None
        try:
            while self.conn.poll(max(0.0, deadline - time.monotonic())):
                try:
                    status, detail = self.conn.recv()
                except (EOFError, OSError):
                    status = "crash"
                    break
                if status != "item":
                    break
                values.append(detail)
                status = "timeout"
        except BaseException:
            self.close()  # interrupted (time limit, Ctrl-C): the worker goes with the request
            raise
        if status == "done":
            self.busy = False
            return Outcome(values)
        code = self.proc.exitcode if self.proc is not None else None
        self.close()
        if status == "timeout":
            shown = f" of {budget:g} s" if budget is not None else ""
            return Outcome(values, f"{what} exceeded its time budget{shown}", "timeout")
        if status == "memory":
            mib = (self.memory or 0) / 2**20
            return Outcome(values, f"{what} exceeded its memory budget of {mib:g} MiB", "memory")
        if status == "crash":
            sig = signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"
            return Outcome(values, f"{what} crashed ({sig})", "crash")
        return Outcome(values, f"{what} failed: {detail}", "error")

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float,
            what: str = "the worker") -> Outcome:
        self.send(fn, args)
        return self.collect(time.monotonic() + timeout, what, timeout)

    def close(self) -> None:
        self.busy = False
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
            self.proc = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_CAN_FORK = hasattr(os, "fork")  # elsewhere (Windows) multiprocessing spawns the worker


class _Child:
    """The forked worker process, as much of `multiprocessing.Process` as `Worker` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exitcode: int | None = None

    def _reap(self, flags: int) -> None:
        if self.exitcode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere (not ours to wait for): gone all the same
            self.exitcode = -signal.SIGKILL
            return
        if pid:
            self.exitcode = os.waitstatus_to_exitcode(status)

    def is_alive(self) -> bool:
        self._reap(os.WNOHANG)
        return self.exitcode is None

    def kill(self) -> None:
        if self.exitcode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def join(self) -> None:
        self._reap(0)


class _Duplex:
    """Two one-way pipes as one connection (`multiprocessing.Pipe` builds a duplex one from a
    socket pair, whose module would be imported before the fork)."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self._ends = (reader, writer)
        self.recv, self.poll, self.send = reader.recv, reader.poll, writer.send

    def close(self) -> None:
        for end in self._ends:
            end.close()


def _connection(read_fd: int, write_fd: int) -> _Duplex:
    from multiprocessing.connection import Connection

    return _Duplex(Connection(read_fd, writable=False), Connection(write_fd, readable=False))


def _fork(memory: int | None, warm: Callable[[], Iterable[None] | None] | None) -> tuple[_Child, _Duplex]:
    """Fork a worker running `_serve`: with os.fork and two pipes, so that nothing but this
    module is imported before the fork (multiprocessing's Process and Pipe cost 10-15 ms there,
    which both processes would wait for); each side imports multiprocessing.connection after."""
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: serve, and never return into the caller's code
        code = 1
        try:
            os.close(parent_reads)
            os.close(parent_writes)
            _serve(_connection(child_reads, child_writes), parent_pid, memory, warm)
            code = 0
        finally:
            os._exit(code)
    os.close(child_reads)
    os.close(child_writes)
    return _Child(pid), _connection(parent_reads, parent_writes)


_WORKERS: dict[tuple[int | None, int, int], Worker] = {}


def shared(memory: int | None, warm: Callable[[], Iterable[None] | None] | None = None) -> Worker:
    """This thread's worker for this memory budget, started if it is not running. One per
    thread: a worker serves one request at a time, so concurrent checks must not share one;
    a forked child of ours never reuses our worker either."""
    key = (memory, os.getpid(), _thread.get_ident())  # threading.get_ident, without importing threading
    w = _WORKERS.get(key)
    if w is None:
        w = _WORKERS[key] = Worker(memory, warm)
    w.start()
    return w


def _warm_everything() -> Iterator[None]:
    """What a worker started before anything else needs (`symbolic.warm`: SymPy, then first-use
    costs; numpy only if a request needs it)."""
    import sympy  # noqa: F401

    yield
    from . import symbolic

    yield from symbolic.warm()


def prestart(memory: int = DEFAULT_MEMORY) -> None:
    """Fork this thread's worker now, before the command line imports numpy, rich and click and
    parses the formula: SymPy's import (the largest part of a short check's time) then runs
    beside all of that instead of after it. A check that wants a worker with this budget
    finds it running; one that does not need SymPy leaves it to die with us."""
    shared(memory, _warm_everything)


@atexit.register
def _close_all() -> None:
    """At exit: kill our workers, without waiting for the kernel to take each one down (freeing
    a SymPy process's memory takes milliseconds; nothing of ours is left in it, and its stdout
    and stderr were never the caller's); whoever reaps us reaps them."""
    for w in _WORKERS.values():
        if w.proc is not None and w.owner == os.getpid():
            w.proc.kill()
            if w.conn is not None:
                w.conn.close()

