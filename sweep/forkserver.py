"""The launchers' server, the parent of every trial. Warm (``--warm``): import what the script
imports once (torch warmed when it is among it), then fork one child per trial that runs the
script as ``__main__``. Cold:
fork a child per trial that execs the trial's command (a fresh interpreter).

Run as ``python -m sweep.forkserver [--warm] [module ...]`` by ``sweep.launch``. It reads one
JSON request a line on stdin and answers ``{"id", "pid"}`` (with ``"failed"`` when the
trial's command could not start) and later ``{"pid", "exit"}`` on stdout. It never starts a
thread or initialises CUDA, so forking is safe and a child may use a GPU. It and each trial
are child subreapers: when a trial ends, whatever it started that is still alive is
re-parented here and killed before its exit is reported. When stdin closes or SIGTERM comes
(the sweep ended or died), it kills everything below it and exits.

Each trial's process is forked before its request comes (a ``Spare``, forked as the server
starts and again as a trial's end is told): the fork, and the set-up that needs no request
(session, death signal, subreaper, signals), happen while the sweep records the trial that
ended, on the core that trial left, not after the sweep asks for the next one.
"""

from __future__ import annotations

import gc
import io
import json
import os
import pkgutil  # noqa: F401  (runpy.run_path imports it at each call: here, once, not in each trial)
import runpy
import select
import signal
import sys
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweep import wbhook, workdir  # imported by the server once, not by each trial
from sweep.launch import PARENT_VAR, die_with_parent, end_strays, set_subreaper

_PROTO_IN = 0
_PROTO_OUT = 1


def warm(preload: list[str]) -> None:
    """Import what the script imports (``sweep.imports`` read it), so a trial, a fork of this
    process, starts with it loaded; torch, when it is among it, is warmed too."""
    import ctypes  # noqa: F401  (die_with_parent needs it in every child)

    if any(name.split(".")[0] == "torch" for name in preload):
        try:  # first, and one thread: another preload may run torch code as it is imported
            import torch

            torch.set_num_threads(1)
        except Exception:  # noqa: S110  (the loop below says why)
            pass
    for name in preload:
        try:
            __import__(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # ``from a import b`` names ``a.b``, which may be no module
                print(f"sweep: could not preload {name}: {exc}", file=sys.stderr)
        except (Exception, SystemExit) as exc:  # a bad preload must not stop the sweep; the trial will say
            print(f"sweep: could not preload {name}: {exc!r}", file=sys.stderr)
    if "torch" in sys.modules:
        _warm_torch(sys.modules["torch"])
    _skip_exit_finalizers()


def _warm_torch(torch: Any) -> None:
    """torch imports most of itself lazily, on first use: an optimizer's first step costs a
    second. Done once here, every trial starts past it."""
    # One thread here: the OpenMP pool must not exist before fork; each child sets its own.
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    for opt_class in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop):
        opt = opt_class(model.parameters(), lr=1e-3)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)


def _skip_exit_finalizers() -> None:
    """Every child would otherwise run, at exit, the finalizers of what this server created
    (torch registers one per operator library, 170-odd): 30-100 ms per trial that only tidy
    up a process about to vanish, and no child should clean up what the server owns (a
    preloaded module's temporary directory, say). The script's own finalizers still run."""
    for fin in list(getattr(weakref.finalize, "_registry", {})):
        fin.atexit = False


def _reseed() -> None:
    """A fresh interpreter starts with fresh random state; a fork would share its parent's."""
    import random

    random.seed()
    mods = sys.modules
    if "numpy" in mods:
        mods["numpy"].random.seed()
    if "torch" in mods:
        mods["torch"].seed()


def _detach(close_fds: list[int], server: int | None) -> None:
    """The part of a trial's set-up that needs no request: done by a spare child while the
    server waits for the next one."""
    os.setsid()
    die_with_parent(server)
    set_subreaper()  # what the trial starts stays below it, even once its parent died
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in close_fds:
        os.close(fd)


def _spare_main(requests: int, report: int, close_fds: list[int], server: int) -> int:
    """A spare child: detach, then wait for its trial's request (EOF: the server ended and
    there is none) and run it."""
    failed: OSError | None = None
    try:
        _detach(close_fds, server)
    except OSError as exc:  # said once there is a request to say it for
        failed = exc
    data = b""
    while chunk := os.read(requests, 1 << 20):
        data += chunk
    os.close(requests)
    if not data:
        return 0
    if failed is not None:
        return _cannot_start(report, failed)
    return _run_child(json.loads(data), report)


def _run_child(req: dict[str, Any], report: int) -> int:
    """The trial, in a detached child. Until the script runs (exec, or runpy in the warm
    server), a failure to set it up is written to ``report`` for the server to pass on; the
    pipe closes when the script starts."""
    try:
        out = os.open(req["output"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        workdir.enter(req.get("workdir"))
        os.chdir(req["cwd"])
        _set_environ(req["env"])
        if req.get("argv"):  # cold: a fresh interpreter, as a plain subprocess gets it
            for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            argv = req["argv"]
            os.execvpe(argv[0], argv, req["env"])
    except OSError as exc:
        return _cannot_start(report, exc)
    os.close(report)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True,
                                  encoding="utf-8", errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True,
                                  encoding="utf-8", errors="backslashreplace")
    threads = int(req.get("threads") or 1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    _reseed()
    wbhook.install()  # a script that imports wandb logs through sweep, offline
    code = 0
    try:
        if req.get("script"):
            script = req["script"]
            sys.argv = [script, *req["args"]]
            sys.path[0] = os.path.dirname(script)
            runpy.run_path(script, run_name="__main__")
        else:
            sys.argv = [req["module"], *req["args"]]
            sys.path[0] = req["cwd"]
            runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException as exc:
        try:
            tb = _script_frames(exc.__traceback__)
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        except BaseException:
            traceback.print_exc()
        code = 1
    _exit_like_python()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return code


def _set_environ(env: dict[str, str]) -> None:
    """Make ``os.environ`` exactly ``env``, setting only what differs: the trial's environment
    is the server's but for a few variables, and each one set or unset costs the fresh child
    its copy of the memory it touches."""
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _cannot_start(report: int, exc: OSError) -> int:
    """Tell the server why the trial could not start (and its output file, if open). 127:
    what a shell answers for a command it cannot run."""
    message = exc.strerror or str(exc)
    if exc.filename is not None:
        message += f": {exc.filename!r}"
    try:
        os.write(report, json.dumps({"errno": exc.errno or 0, "message": message}).encode())
        os.write(2, f"sweep: could not start the trial: {message}\n".encode())
    except OSError:
        pass
    return 127


def _script_frames(tb: Any) -> Any:
    """The traceback without this module's and runpy's frames, as ``python script.py`` shows
    it (all of it when the error is in those frames)."""
    start = tb
    while start is not None and (start.tb_frame.f_code.co_filename == __file__
                                 or start.tb_frame.f_globals.get("__name__") == "runpy"):
        start = start.tb_next
    return start or tb


def _exit_like_python() -> None:
    """What a fresh interpreter does at exit and ``os._exit`` skips: wait for non-daemon
    threads, then run the exit handlers (the script's, and those of the modules it imported,
    which the warm server imported for it)."""
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except BaseException:
        traceback.print_exc()
    atexit._run_exitfuncs()


def serve(args: list[str]) -> None:
    parent = os.environ.pop(PARENT_VAR, None)
    if parent is not None:  # dead already (before the request could be made): exit now
        die_with_parent(int(parent), signal.SIGTERM)
    warm_up = bool(args) and args[0] == "--warm"
    preload = args[1:] if warm_up else args
    # Keep the protocol on private descriptors, so stray prints cannot corrupt it.
    proto_in, proto_out = os.dup(_PROTO_IN), os.dup(_PROTO_OUT)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    set_subreaper()  # what an ended trial leaves comes here, to be killed
    if warm_up:
        warm(preload)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sweep decides what an interrupt does

    def send(msg: dict[str, Any]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            data = data[os.write(proto_out, data):]

    children: set[int] = set()
    me = os.getpid()

    def end(*_: Any) -> None:
        """The sweep ended or died: take every trial along, and all it started."""
        if os.getpid() != me:  # a child forked a moment ago, before it reset this handler
            os._exit(128 + signal.SIGTERM)
        for pid in children:  # whole process groups at once (data-loader workers)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        end_strays(lambda pid: False)
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    try:
        send({"ready": True, "pid": os.getpid()})
        _loop(proto_in, wake_r, wake_w, proto_out, children, send)
    finally:
        end()


def _reap(children: set[int], send: Any, keep: Callable[[int], bool]) -> list[int]:
    """Collect ended trials; their pids. Before a trial's exit is told, whatever it left (now
    children of this subreaper, as no running trial's descendants ever are) is killed;
    ``keep``: the trials and the spare."""
    ended = []
    strays = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in children:
            children.discard(pid)
            ended.append({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})
        else:
            strays = True
    if ended or strays:
        end_strays(keep)
    for msg in ended:
        send(msg)
    return [msg["pid"] for msg in ended]


def _spare(close_fds: list[int]) -> Spare | None:
    try:
        return Spare.fork(close_fds)
    except OSError:
        return None  # _start forks again, and says why if it cannot


@dataclass
class Spare:
    """A child forked before its trial is asked for (``_spare_main``), so that the fork and
    the set-up that needs no request happen while the server waits, not between one trial
    and the next: its pid, the pipe its request goes down, the pipe that closes as its
    script starts."""

    pid: int
    requests: int
    report: int

    @classmethod
    def fork(cls, close_fds: list[int]) -> Spare:
        server = os.getpid()
        requests_r, requests_w = os.pipe()
        report_r, report_w = os.pipe()
        gc.freeze()  # what the server holds is no trial's to collect: its pages stay shared, not copied
        try:
            pid = os.fork()
        except OSError:
            for fd in (requests_r, requests_w, report_r, report_w):
                os.close(fd)
            raise
        if pid == 0:
            code = 1
            try:
                os.close(requests_w)
                os.close(report_r)
                code = _spare_main(requests_r, report_w, close_fds, server)
            finally:
                os._exit(code)
        os.close(requests_r)
        os.close(report_w)
        return cls(pid, requests_w, report_r)

    def give(self, request: bytes) -> bool:
        """Send the request; False when the spare is gone (killed meanwhile)."""
        try:
            view = memoryview(request)
            while view:
                view = view[os.write(self.requests, view):]
        except OSError:
            os.close(self.report)
            return False
        finally:
            os.close(self.requests)
        return True

    def started(self) -> bytes:
        """Wait until the script runs (or the child is gone); what it said if it could not."""
        said = b""
        while chunk := os.read(self.report, 4096):
            said += chunk
        os.close(self.report)
        return said


def _start(req: dict[str, Any], spare: Spare | None, close_fds: list[int], children: set[int]) -> dict[str, Any]:
    """Start the trial in the spare (or in a child forked now, when there is none or it is
    gone); the reply once it runs its script, or why it could not."""
    request = json.dumps(req).encode()
    for child in (spare, None):
        if child is None:
            try:
                child = Spare.fork(close_fds)
            except OSError as exc:
                return {"id": req["id"], "error": f"fork failed: {exc}"}
        if child.give(request):
            break
    else:
        return {"id": req["id"], "error": "the trial's process died before it could start"}
    said = child.started()
    children.add(child.pid)
    reply: dict[str, Any] = {"id": req["id"], "pid": child.pid}
    if said:
        try:
            reply["failed"] = json.loads(said)
        except ValueError:
            reply["failed"] = {"errno": 0, "message": said.decode(errors="replace")}
    return reply


def _loop(proto_in: int, wake_r: int, wake_w: int, proto_out: int, children: set[int],
          send: Any) -> None:
    close_fds = [proto_in, proto_out, wake_r, wake_w]
    spare: Spare | None = None
    leftovers: dict[int, dict[str, Any] | None] = {}  # a trial's scratch folders, removed once it ended

    def keep(pid: int) -> bool:
        return pid in children or (spare is not None and pid == spare.pid)

    buf = b""
    while True:
        if spare is None and not children:
            spare = _spare(close_fds)
        try:
            ready, _, _ = select.select([proto_in, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        ended = _reap(children, send, keep)
        if ended and spare is None:
            # The next trial's process: forked now, while the sweep records the trial that
            # ended (on its own core), rather than while a trial runs beside the sweep.
            spare = _spare(close_fds)
        for pid in ended:  # and their scratch folders removed (an rmdir beside a mount is slow)
            left = leftovers.pop(pid, None)
            if left:
                workdir.tidy(left)
        if proto_in not in ready:
            continue
        chunk = os.read(proto_in, 1 << 20)
        if not chunk:
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                taken, spare = spare, None
                req = json.loads(line)
                reply = _start(req, taken, close_fds, children)
                if "pid" in reply:
                    leftovers[reply["pid"]] = (req.get("workdir") or {}).get("tidy")
                send(reply)


if __name__ == "__main__":
    serve(sys.argv[1:])
