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
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import sys
import traceback
import weakref
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


def _run_child(req: dict[str, Any], close_fds: list[int], server: int | None, report: int) -> int:
    """The trial, in the forked child. Until the script runs (exec, or runpy in the warm
    server), a failure to set it up is written to ``report`` for the server to pass on; the
    pipe closes when the script starts."""
    try:
        os.setsid()
        die_with_parent(server)
        set_subreaper()  # what the trial starts stays below it, even once its parent died
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in close_fds:
            os.close(fd)
        out = os.open(req["output"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        workdir.enter(req.get("workdir"))
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
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
    import runpy

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


def _reap(children: set[int], send: Any) -> None:
    """Collect ended trials. Before a trial's exit is told, whatever it left (now children
    of this subreaper, as no running trial's descendants ever are) is killed."""
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
        end_strays(children.__contains__)
    for msg in ended:
        send(msg)


def _start(req: dict[str, Any], close_fds: list[int], children: set[int]) -> dict[str, Any]:
    """Fork the trial; the reply once it runs its script, or why it could not."""
    server = os.getpid()
    report_r, report_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(report_r)
        os.close(report_w)
        return {"id": req["id"], "error": f"fork failed: {exc}"}
    if pid == 0:
        code = 1
        try:
            os.close(report_r)
            code = _run_child(req, close_fds, server, report_w)
        finally:
            os._exit(code)
    os.close(report_w)
    said = b""
    while chunk := os.read(report_r, 4096):  # EOF: the script runs (or the child is gone)
        said += chunk
    os.close(report_r)
    children.add(pid)
    reply: dict[str, Any] = {"id": req["id"], "pid": pid}
    if said:
        try:
            reply["failed"] = json.loads(said)
        except ValueError:
            reply["failed"] = {"errno": 0, "message": said.decode(errors="replace")}
    return reply


def _loop(proto_in: int, wake_r: int, wake_w: int, proto_out: int, children: set[int],
          send: Any) -> None:
    buf = b""
    while True:
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
        _reap(children, send)
        if proto_in not in ready:
            continue
        chunk = os.read(proto_in, 1 << 20)
        if not chunk:
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                send(_start(json.loads(line), [proto_in, proto_out, wake_r, wake_w], children))


if __name__ == "__main__":
    serve(sys.argv[1:])
