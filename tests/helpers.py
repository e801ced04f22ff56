"""Helpers the test files share: a project to sweep, the CLI in this process, an environment for
a child python, the run directories read back as a user's own script would, and processes
watched through /proc. Fixtures live in conftest.py."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import yaml
from click.testing import Result
from typer.testing import CliRunner

from sweep import rundir
from sweep.cli import only_invoked

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).parent / "scripts"
PROBE = SCRIPTS / "probe.py"

# Settings a developer's shell may carry that would change what sweep prints or does (colour,
# terminal detection, a default runs directory, GPUs, the output cap): a child never sees them.
AMBIENT = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "SWEEP_RUNS_DIR",
           "SWEEP_MAX_OUTPUT_MB", "CUDA_VISIBLE_DEVICES")


# ---------------------------------------------------------------- a project and the CLI


def project(root: Path, flags: dict[str, Any], script: Path = PROBE, **top: Any) -> Path:
    """A folder with a copy of the test script ``script`` and a flags file that sweeps it;
    ``top`` adds top-level keys (trials, seed, sampler...). Returns the flags file."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(script, root / script.name)
    path = root / "flags.yaml"
    path.write_text(yaml.safe_dump({"script": script.name, "flags": flags, **top}, sort_keys=False))
    return path


def sweep_cli(*args: Any, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """``sweep ARGS`` in this process (typer's CliRunner), stdout and stderr apart. An exception
    the command lets out is raised here, so it fails the test instead of becoming exit status 1.
    Only the command named is built, as ``sweep`` does."""
    argv = [str(a) for a in args]
    return CliRunner().invoke(only_invoked(argv), argv, env=env, input=input, catch_exceptions=False)


def ls_json(runs: Path, *args: Any) -> list[dict[str, Any]]:
    """The rows of ``sweep ls --format json``; the command must succeed."""
    result = sweep_cli("ls", "--runs-dir", runs, "--format", "json", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child python that imports this checkout's sweep, less the
    ambient settings above; ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    env.update(extra)
    return env


def in_terminal(cmd: list[str], env: dict[str, str], stderr_too: bool = False,
                columns: int = 300) -> tuple[int, str, str]:
    """Run ``cmd`` with stdout on a pseudo-terminal ``columns`` wide, and stderr on it too when
    ``stderr_too`` (else a pipe). Returns the exit status, what the terminal showed and stderr
    (empty when it went to the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave if stderr_too else subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not data:
            break
        chunks.append(data)
    err = proc.stderr.read() if proc.stderr else b""
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace"), err.decode(errors="replace")


# ---------------------------------------------------------------- run directories


def info(run: Path) -> dict[str, Any]:
    return json.loads((run / "run.json").read_text())


def flags_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "flags.json").read_text())


def metrics_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "metrics.json").read_text())


def run_dirs(runs: Path, by_trial: bool = True) -> list[Path]:
    """The published run directories (no hidden staging folder, no archive, no symlink), in trial
    order; with ``by_trial=False`` in name order, reading no file: for runs directories that a
    sweep is writing or a test has damaged, and for polling loops that must stay cheap."""
    if not runs.is_dir():
        return []
    dirs = sorted(p for p in runs.iterdir() if p.is_dir() and not p.is_symlink() and rundir.is_run_name(p.name))
    return sorted(dirs, key=lambda p: info(p)["trial"]) if by_trial else dirs


# ---------------------------------------------------------------- processes


class Pollable(Protocol):
    """What wait_for needs of a process: a Popen, or test_reliability's Sweep."""

    def poll(self) -> int | None: ...


def alive(pid: int, command: tuple[bytes, ...] = ()) -> bool:
    """Whether ``pid`` is a live process: a zombie (or one being reaped) is dead. With ``command``,
    also one whose command line holds one of those words, so a pid the system reused for another
    program does not count."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if command else b""
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and (not command or any(word in cmdline for word in command))


def survivors(pids: Iterable[int], within: float = 5.0, command: tuple[bytes, ...] = ()) -> set[int]:
    """The processes still alive (see ``alive``) after waiting up to ``within`` seconds for them to end."""
    deadline = time.time() + within
    left = {p for p in pids if alive(p, command)}
    while left and time.time() < deadline:
        time.sleep(0.05)
        left = {p for p in left if alive(p, command)}
    return left


def wait_for(cond: Callable[[], bool], proc: Pollable | None = None, timeout: float = 60,
             poll: float = 0.02) -> bool:
    """Poll until ``cond``; False when time ran out, or ``cond`` still false once ``proc`` ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return cond()
        time.sleep(poll)
    return False


@contextmanager
def killed_on_exit(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``proc``, killed and reaped on the way out if it still runs, so a failed test leaves no
    sweep behind."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def one_error_line(result: Result, exit_code: int) -> str:
    """The command failed with ``exit_code`` and said why on exactly one stderr line."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def written(run: Path, name: str) -> Path:
    """Where a file the trial wrote as ``name`` in its working directory is kept: in its run's
    ``work/``, at its path relative to the folder the trial saw through its own layer
    (run.json's ``workdir``; see sweep.workdir)."""
    where = info(run).get("workdir") or {}
    if where.get("mode") == "overlay":
        return run / "work" / os.path.relpath(where["cwd"], where["folder"]) / name
    if where.get("mode") in ("mirror", "inplace"):
        return Path(where["cwd"]) / name
    return run / "work" / name
