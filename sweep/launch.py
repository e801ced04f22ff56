"""The only code that starts processes, and ends them.

Both launchers talk to a small server (``sweep.forkserver``) that is the parent of every
trial: ``fork`` warms it first (what the script imports, as ``sweep.imports`` reads it, imported
there; torch's lazy imports done when it is among it) and each trial is a fork that runs the
script as ``__main__``; ``spawn`` keeps it cold and each trial execs a
fresh interpreter (or the trial's ``command:``). Either way a trial gets its own session and process
group, its argv, environment, working directory and output file, and everything it starts
ends with it (Linux):

- each trial is a child subreaper: a process it started whose parent died is re-parented to
  the trial, not to init, so while the trial runs all it started stays below it;
- the server is a subreaper too: when a trial ends, what it left is re-parented to the server,
  which kills it (its process group, and what left the group with setsid or a double fork);
- the server dies with the sweep (PR_SET_PDEATHSIG, even after ``kill -9`` of the sweep) and
  then kills everything below it; a trial dies with the server;
- the sweep is a subreaper while a launcher is open: if the server is killed, what its trials
  left comes to the sweep, which kills it.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
    error: str | None = None  # why its command could not start (then it exits 127)

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


# ---------------------------------------------------------------- process trees (Linux)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
MAX_ARG_STRLEN = 32 * 4096  # Linux: the longest single argument (or environment string) exec takes


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (a no-op elsewhere).
    ``parent`` is the parent's pid, taken before the fork: if it died before the request was
    made (the request would never fire), die now."""
    if not _prctl(PR_SET_PDEATHSIG, sig):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def set_subreaper(on: bool = True) -> bool:
    """Make this process a child subreaper (Linux): a descendant whose parent dies is
    re-parented to it instead of to init, so it can still be found and ended. Kept across
    exec, not inherited by children. False where it is not available."""
    return _prctl(PR_SET_CHILD_SUBREAPER, int(on))


def children(pid: int) -> list[int]:
    """The children of ``pid``, zombies included (Linux /proc; empty elsewhere)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    if not os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return _children_by_scan(pid)  # a kernel built without CONFIG_PROC_CHILDREN
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:  # that thread has just ended
            pass
    return out


def _children_by_scan(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    if int(fh.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        out.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def end_strays(keep: Callable[[int], bool], within: float = 2.0) -> None:
    """SIGKILL and reap every child of this process that ``keep`` rejects, then what they
    leave: in a subreaper their children are re-parented here as they die, one generation a
    round. Only this process's own children are signalled: a pid cannot be reused before it
    is reaped here, so nothing else is ever hit. Gives up after ``within`` seconds (a process
    stuck in the kernel); the next call goes on."""
    deadline = time.monotonic() + within
    me = os.getpid()
    while True:
        strays = [p for p in children(me) if not keep(p)]
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in strays:
            while True:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:  # reaped meanwhile (a wait elsewhere in this process)
                    break
                if time.monotonic() > deadline:
                    return
                time.sleep(0.001)


def single_thread() -> None:
    """End the thread pool OpenBLAS starts as numpy is imported (optuna imports it), so this
    process forks from one thread. OpenBLAS ends its pool in a process that forks (its atfork
    handler): a child that exits at once is enough."""
    try:
        if len(os.listdir("/proc/self/task")) <= 1:
            return
    except OSError:
        return
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def start_failure(code: int, message: str, argv: list[str], env: dict[str, str]) -> str:
    """Why a trial's command could not start, in one line that says what to do."""
    if code != errno.E2BIG:
        return f"could not start: {message}"
    strings = [os.fsencode(a) for a in argv] + [os.fsencode(f"{k}={v}") for k, v in env.items()]
    longest = max((len(s) for s in strings), default=0)
    if longest >= MAX_ARG_STRLEN:
        size = f"one argument is {longest} bytes; Linux takes at most {MAX_ARG_STRLEN} in one"
    else:
        size = f"{sum(len(s) + 1 for s in strings)} bytes of arguments and environment in all"
    return (f"could not start: argument list too long ({size}): pass long values in a file, with "
            "command: [${interpreter}, ${program}, ${args_json_file}] or a fixed value the script "
            "reads from a file")


def fits_exec(name: str, value: str) -> bool:
    """Whether ``name=value`` can be one environment string of an exec (Linux's limit)."""
    return len(os.fsencode(name)) + len(os.fsencode(value)) + 2 <= MAX_ARG_STRLEN


class Launcher(Protocol):
    """What the sweep loop needs of a launcher: start a job, and learn when it ends. One
    that removes an ended trial's scratch folders itself (``workdir.tidy``) says so with a
    ``tidies = True`` attribute."""

    name: str

    def ready(self) -> None:
        """Block until a trial can start (the warm launcher warms up first)."""

    def start(self, job: Job) -> Process: ...

    def poll(self, proc: Process) -> int | None:
        """The exit status, once the process has ended."""

    def wait(self, procs: list[Process], timeout: float) -> None:
        """Sleep until one of ``procs`` may have ended, or ``timeout`` seconds."""

    def close(self) -> None: ...


STDERR_LINES = 20  # the server's last words kept, to say why it died
PARENT_VAR = "SWEEP_SERVER_PARENT"  # the pid of the sweep a server dies with


class ServerLauncher:
    """Talks to a ``sweep.forkserver`` process over two pipes, one JSON line a message. The
    server is the parent of every trial; this process is a child subreaper while the launcher
    is open, so what the trials leave if the server itself is killed comes here to be ended."""

    name = "fork"
    warm = True  # import the script's modules once and fork it; False: exec a fresh interpreter
    tidies = True  # the server removes an ended trial's scratch folders (workdir.tidy)

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        global _subreapers
        _subreapers += set_subreaper(True)
        self.preload = preload if self.warm else ()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [PKG_ROOT, env.get("PYTHONPATH", "")] if p)
        # The server asks to die with this process itself (SIGTERM, so it then ends everything its
        # trials started): a preexec_fn would cost the sweep's start a full fork, not a vfork.
        env[PARENT_VAR] = str(os.getpid())
        self._server = subprocess.Popen(
            self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=env,
        )
        assert self._server.stderr is not None
        os.set_blocking(self._server.stderr.fileno(), False)
        self._said: deque[str] = deque(maxlen=STDERR_LINES)
        self._said_part = b""
        self._dead: LauncherError | None = None
        self._err_open = True
        self._buf = b""
        self._ready = False
        self._procs: dict[int, Process] = {}
        self._pending: dict[int, int] = {}  # exits seen before we asked
        self._next = 0

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "sweep.forkserver", *(["--warm"] if self.warm else []), *self.preload]

    # ------------------------------------------------------------ the server's pipes

    def _read_messages(self, timeout: float | None) -> list[dict]:
        out, err = self._server.stdout, self._server.stderr
        assert out is not None and err is not None
        if self._dead is not None:
            raise self._dead
        fd = out.fileno()
        while True:
            ready, _, _ = select.select([fd] + [err.fileno()] * self._err_open, [], [], timeout)
            if err.fileno() in ready:
                self._err_open = self._listen()
            if fd in ready or not ready:
                break
        if not ready:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:
            raise self._died()
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def _listen(self) -> bool:
        """Keep the server's last stderr lines; False at its end."""
        assert self._server.stderr is not None
        try:
            data = os.read(self._server.stderr.fileno(), 65536)
        except BlockingIOError:
            return True
        *lines, self._said_part = (self._said_part + data).split(b"\n")
        self._said_part = self._said_part[-1000:]
        self._said.extend(t for t in (line.decode(errors="replace").strip() for line in lines) if t)
        return bool(data)

    def _died(self) -> LauncherError:
        """The server is gone: say how, with its last words, and end what its trials left."""
        try:
            code = self._server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # its protocol pipe closed, yet it lives: end it
            self._server.kill()
            code = self._server.wait()
        assert self._server.stderr is not None
        while self._err_open and select.select([self._server.stderr.fileno()], [], [], 0.1)[0]:
            self._err_open = self._listen()
        self._end_strays()
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exit status {code}"
        last = list(self._said)[-3:] + [self._said_part.decode(errors="replace").strip()]
        said = " | ".join(line for line in last if line)
        kind = "warm launcher" if self.warm else "spawn launcher's server"
        message = f"the {kind} (pid {self._server.pid}) died: {how}"
        if said:
            message += f"; its last words: {said[-300:]}"
        if self.warm:
            message += "; try --launcher spawn"
        self._dead = LauncherError(message)
        return self._dead

    def _end_strays(self) -> None:
        """End what trials left re-parented to this process (their server died): children in
        another session than ours. Our own other children (a host program's) stay."""
        me, server = os.getsid(0), self._server.pid

        def ours(pid: int) -> bool:
            if pid == server:
                return True
            try:
                return os.getsid(pid) == me
            except OSError:
                return True

        end_strays(ours)

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
        if self._dead is not None:
            raise self._dead
        try:
            self._server.stdin.write(data)
            self._server.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None

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
                raise LauncherError(f"{self.name} launcher: {reply['error']}")
            if reply is not None:
                return reply

    # ------------------------------------------------------------ the Launcher protocol

    def ready(self) -> None:
        """Wait until the server has warmed up (so warm-up never counts as trial time)."""
        if not self._ready:
            self._expect("ready")
            self._ready = True

    def start(self, job: Job) -> Process:
        self.ready()
        script, module, args = split_python(job.argv) if self.warm else (None, None, [])
        self._next += 1
        self._send({
            "id": self._next, "script": script, "module": module, "args": args,
            "argv": None if self.warm else job.argv, "env": job.env, "cwd": str(job.cwd),
            "output": str(job.output), "threads": job.threads, "workdir": job.workdir,
        })
        reply = self._expect("pid", self._next)
        proc = Process(reply["pid"])
        failed = reply.get("failed")
        if failed:  # its command could not run: it exits 127 at once, and says why here
            proc.error = start_failure(failed["errno"], failed["message"], job.argv, job.env)
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
        global _subreapers
        if self._server.poll() is None:
            try:
                assert self._server.stdin is not None
                self._server.stdin.close()  # EOF: the server ends what is left and exits
                self._server.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._server.kill()
                self._server.wait()
        for pipe in (self._server.stdout, self._server.stderr):
            if pipe is not None:
                pipe.close()
        self._end_strays()
        if _subreapers:
            _subreapers -= 1
            if not _subreapers:
                set_subreaper(False)


_subreapers = 0  # open launchers that made this process a subreaper


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ForkLauncher(ServerLauncher):
    """The warm launcher: the server has imported what the script imports; each trial is a
    fork of it that runs the script as ``__main__``."""

    name = "fork"
    warm = True


class SpawnLauncher(ServerLauncher):
    """A fresh interpreter a trial: the (small, cold) server forks and execs
    ``python script --flag=value ...``."""

    name = "spawn"
    warm = False


LAUNCHERS: dict[str, Callable[[tuple[str, ...]], Launcher]] = {"fork": ForkLauncher, "spawn": SpawnLauncher}


def make(name: str, preload: tuple[str, ...] = ()) -> Launcher:
    """A launcher by name; ``preload``: the modules a warm one imports before its first trial."""
    return LAUNCHERS[name](preload)
