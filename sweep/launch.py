"""The only code that starts processes.

Two launchers share one interface: ``spawn`` runs a trial's command line as a plain
subprocess; ``fork`` (python commands only) asks a warm server (``sweep.forkserver``: torch
already imported and its lazy imports done) to fork a child that runs the script as
``__main__`` with the command's arguments. Either way
each trial gets its own process group, its argv, environment, working directory and an
output file, and dies with the sweep (PR_SET_PDEATHSIG) even after ``kill -9``.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sweep import workdir
from sweep.errors import LauncherError

PKG_ROOT = str(Path(__file__).resolve().parent.parent)  # on a trial's path, so it can import sweep


@dataclass
class Job:
    """What one trial needs to start. ``argv`` is its whole command line (``sweep.command``
    builds it); no shell ever sees it."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    output: Path
    threads: int = 1
    workdir: dict[str, Any] | None = None  # how the child enters cwd (sweep.workdir.setup)


def split_python(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    """``(script, None, args)`` of ``python script args...`` or ``(None, module, args)`` of
    ``python -m module args...``: what the warm server runs as ``__main__``. Which command
    lines are such is ``sweep.command.warm``'s to say."""
    if len(argv) < 2:
        raise LauncherError(f"the warm launcher runs a python script, not {argv!r}")
    if argv[1] == "-m" and len(argv) > 2:
        return None, argv[2], argv[3:]
    return argv[1], None, argv[2:]


@dataclass
class Process:
    pid: int
    returncode: int | None = None
    _popen: subprocess.Popen | None = field(default=None, repr=False)
    _pidfd: int | None = field(default=None, repr=False)

    def signal(self, sig: int) -> None:
        """Signal the trial's whole process group (its data-loader workers too)."""
        if self.returncode is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def gone(self) -> bool:
        """True when no process has this pid any more (it ended and was reaped)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def die_with_parent(parent: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (a no-op elsewhere).
    ``parent`` is the parent's pid, taken before the fork: if it died before the request was
    made (the request would never fire), die now."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class Launcher(Protocol):
    """What the sweep loop needs of a launcher: start a job, and learn when it ends."""

    name: str

    def ready(self) -> None:
        """Block until a trial can start (the warm launcher warms up first)."""

    def start(self, job: Job) -> Process: ...

    def poll(self, proc: Process) -> int | None:
        """The exit status, once the process has ended."""

    def wait(self, procs: list[Process], timeout: float) -> None:
        """Sleep until one of ``procs`` may have ended, or ``timeout`` seconds."""

    def close(self) -> None: ...


def _child(parent: int, setup: dict[str, Any] | None) -> None:
    """A spawned trial's set-up between fork and exec (Popen has already changed into
    ``cwd``; ``workdir.enter`` changes into it again, once its own mounts are in place)."""
    die_with_parent(parent)
    workdir.enter(setup)


class SpawnLauncher:
    name = "spawn"

    def start(self, job: Job) -> Process:
        with open(job.output, "ab") as out:
            popen = subprocess.Popen(
                job.argv, cwd=job.cwd, env=job.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=functools.partial(_child, os.getpid(), job.workdir), close_fds=True,
            )
        return Process(popen.pid, _popen=popen, _pidfd=_pidfd(popen.pid))

    def ready(self) -> None:
        pass

    def poll(self, proc: Process) -> int | None:
        if proc.returncode is None and proc._popen is not None:
            proc.returncode = proc._popen.poll()
            if proc.returncode is not None:
                proc.close()
        return proc.returncode

    def wait(self, procs: list[Process], timeout: float) -> None:
        fds = [p._pidfd for p in procs if p._pidfd is not None and p.returncode is None]
        if len(fds) == len(procs) and fds:
            select.select(fds, [], [], timeout)
        else:
            time.sleep(min(timeout, 0.01))

    def close(self) -> None:
        pass


class ForkLauncher:
    """Talks to a ``sweep.forkserver`` process over two pipes, one JSON line a message."""

    name = "fork"

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        cmd = [sys.executable, "-m", "sweep.forkserver", *preload]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [PKG_ROOT, env.get("PYTHONPATH", "")] if p)
        self._server = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
            # SIGTERM, not SIGKILL: the server then kills its trials' whole process groups.
            preexec_fn=functools.partial(die_with_parent, os.getpid(), signal.SIGTERM), env=env,
        )
        self._buf = b""
        self._ready = False
        self._procs: dict[int, Process] = {}
        self._pending: dict[int, int] = {}  # exits seen before we asked
        self._next = 0

    def _read_messages(self, timeout: float | None) -> list[dict]:
        out = self._server.stdout
        assert out is not None
        fd = out.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:
            raise LauncherError("the warm launcher died (see messages above); try --launcher spawn")
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def _handle(self, msg: dict) -> dict | None:
        if "exit" in msg:
            pid, code = msg["pid"], msg["exit"]
            proc = self._procs.pop(pid, None)
            if proc is None:
                self._pending[pid] = code
            else:
                proc.returncode = code
            return None
        return msg

    def _send(self, msg: dict) -> None:
        data = (json.dumps(msg) + "\n").encode()
        assert self._server.stdin is not None
        try:
            self._server.stdin.write(data)
            self._server.stdin.flush()
        except BrokenPipeError:
            raise LauncherError("the warm launcher died; try --launcher spawn") from None

    def _expect(self, key: str, ident: int | None = None) -> dict:
        """Read until the reply we wait for. Every other message in the same read (another
        trial's exit, say) is handled too: dropping one would leave a trial running forever."""
        while True:
            reply = None
            for msg in self._read_messages(None):
                mine = self._handle(msg)
                if mine is not None and (ident is None or mine.get("id") == ident):
                    if "error" in mine or key in mine:
                        reply = mine
            if reply is not None and "error" in reply:
                raise LauncherError(f"warm launcher: {reply['error']}")
            if reply is not None:
                return reply

    def ready(self) -> None:
        """Wait until the server has warmed up (so warm-up never counts as trial time)."""
        if not self._ready:
            self._expect("ready")
            self._ready = True

    def start(self, job: Job) -> Process:
        self.ready()
        script, module, args = split_python(job.argv)
        self._next += 1
        self._send({
            "id": self._next, "script": script, "module": module, "args": args, "env": job.env,
            "cwd": str(job.cwd), "output": str(job.output), "threads": job.threads, "workdir": job.workdir,
        })
        reply = self._expect("pid", self._next)
        proc = Process(reply["pid"])
        if proc.pid in self._pending:
            proc.returncode = self._pending.pop(proc.pid)
        else:
            self._procs[proc.pid] = proc
        return proc

    def poll(self, proc: Process) -> int | None:
        if proc.returncode is None:
            for msg in self._read_messages(0):
                self._handle(msg)
        return proc.returncode

    def wait(self, procs: list[Process], timeout: float) -> None:
        if any(p.returncode is None for p in procs):
            for msg in self._read_messages(timeout):
                self._handle(msg)

    def close(self) -> None:
        if self._server.poll() is None:
            try:
                assert self._server.stdin is not None
                self._server.stdin.close()  # EOF: the server kills what is left and exits
                self._server.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._server.kill()
                self._server.wait()


LAUNCHERS: dict[str, Callable[[], Launcher]] = {"fork": ForkLauncher, "spawn": SpawnLauncher}


def make(name: str) -> Launcher:
    """A launcher by name; fork falls back to spawn where there is no fork."""
    if name == "fork" and not hasattr(os, "fork"):
        name = "spawn"
    return LAUNCHERS[name]()
