"""Child processes with prefixed logs and a clean, orphan-free shutdown.

Each child's stdout and stderr are merged and pumped line by line to a sink as ``[name] line``;
the last lines are kept for error messages. :meth:`ProcessGroup.stop` sends SIGTERM to every
child (last started first), waits, then SIGKILLs what is left. On Linux every child also gets
PR_SET_PDEATHSIG(SIGTERM), so it ends even when this process is killed with SIGKILL; the kernel
ties that to the *thread* that started the child, so start children from a long-lived thread
(the main thread).

The death signal is set by a tiny launcher (:data:`_LAUNCHER`) that then execs the command, not by
a ``preexec_fn``: with a ``preexec_fn`` CPython forks, and since grpcio 1.80 a fork while this
process holds gRPC channels restarts gRPC's poller in the child, which aborts on the epoll fd that
``close_fds`` just closed ("epoll_wait error: Bad file descriptor", signal 6; grpc/grpc#43055).
Without one, CPython starts the child with vfork, which runs no fork handlers.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

from protos.serving import PORT_IN_USE

Sink = Callable[[str], None]
T = TypeVar("T")

# argv: PARENT_PID COMMAND [ARGS...]. The death signal survives exec; a parent that died before
# prctl took effect is caught by the getppid check.
_LAUNCHER = ("import ctypes, os, signal, sys\n"
             "ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG\n"
             "if os.getppid() != int(sys.argv[1]):\n    sys.exit(0)\n"
             "os.execvp(sys.argv[2], sys.argv[2:])\n")


def _dying_with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` behind the launcher that gives it PR_SET_PDEATHSIG(SIGTERM) (Linux; elsewhere as is)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]


def stderr_sink(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def child_env(threads: int | None = None) -> dict[str, str]:
    """This environment, unbuffered, without progress bars; OMP/MKL threads set when ``threads``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DIFFUSEC_NO_PROGRESS": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=60))
    pump: threading.Thread | None = None

    def exit_message(self) -> str | None:
        """None while running; else what it said before it exited."""
        code = self.proc.poll()
        if code is None:
            return None
        if self.pump is not None:
            self.pump.join(2.0)
        how = f"signal {-code}" if code < 0 else f"status {code}"
        tail = "\n".join(f"  {line}" for line in self.tail) or "  (no output)"
        return f"{self.name} exited with {how}; its last output:\n{tail}"


class ProcessGroup:
    """Children started with :meth:`spawn`, logged through ``sink`` and stopped together."""

    def __init__(self, sink: Sink | None = stderr_sink):
        self.sink = sink
        self.children: list[Child] = []

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              cwd: str | None = None) -> Child:
        """Start ``argv`` (a full command line) as child ``name``."""
        proc = subprocess.Popen(_dying_with_parent(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                bufsize=1, text=True, errors="replace")
        child = Child(name, list(argv), proc)
        child.pump = threading.Thread(target=self._pump, args=(child,), name=f"log-{name}", daemon=True)
        child.pump.start()
        self.children.append(child)
        return child

    def _pump(self, child: Child) -> None:
        for line in child.proc.stdout:
            line = line.rstrip("\n")
            child.tail.append(line)
            if self.sink is not None:
                self.sink(f"[{child.name}] {line}")
        child.proc.stdout.close()

    def dead(self) -> str | None:
        """The exit message of the first child that has exited, or None while all run."""
        for child in self.children:
            message = child.exit_message()
            if message:
                return message
        return None

    def discard(self, children: Sequence[Child]) -> None:
        """Kill ``children`` (a failed start) and forget them, so :meth:`dead` no longer reports them."""
        for child in children:
            if child.proc.poll() is None:
                child.proc.kill()
            child.proc.wait()
            if child.pump is not None:
                child.pump.join(2.0)
        self.children = [c for c in self.children if c not in children]

    def start(self, attempt: Callable[[], T], tries: int = 3) -> T:
        """``attempt()`` spawns children on ports picked with free_port() and waits for them -> its result.

        A picked port can be taken before the child binds it (by another process's outgoing
        connection, say), and the services refuse a port in use (:func:`protos.serving.bind`): then the
        children of that attempt are killed and ``attempt`` runs again with new picks, up to ``tries``
        times. Any other failure, or the last one, is raised after the same clean-up.
        """
        for left in range(tries - 1, -1, -1):
            before = list(self.children)
            try:
                return attempt()
            except (RuntimeError, TimeoutError, OSError) as err:
                self.discard([c for c in self.children if c not in before])
                if not left or PORT_IN_USE not in str(err):
                    raise
        raise AssertionError("unreachable")

    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.children}

    def stop(self, timeout_s: float = 10.0) -> dict[str, int]:
        """SIGTERM every child (last started first), wait up to ``timeout_s``, SIGKILL the rest.

        Returns {name: exit status}; negative statuses are signals (-9 means it had to be killed).
        """
        for child in reversed(self.children):
            if child.proc.poll() is None:
                try:
                    child.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout_s
        codes = {}
        for child in reversed(self.children):
            try:
                codes[child.name] = child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                codes[child.name] = child.proc.wait()
            if child.pump is not None:
                child.pump.join(2.0)
        return codes

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
