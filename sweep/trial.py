"""One trial, from its command line to its verdict: prepare its working directory and
environment, then supervise the started process (tail its output and metrics, feed the
pruner, stop it on a deadline, an output flood, a prune or an interrupt) and judge how it
ended. It knows nothing of Optuna or of the other trials: the loop (``sweep.driver``) gives
it a started process and a ``report`` callback, and gets an ``Outcome`` back."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep import launch, rundir
from sweep.parse import LineReader, Rules, parse_line
from sweep.spec import SweepSpec

GRACE_S = 5.0  # between SIGTERM and SIGKILL when a trial is asked to stop
MAX_OUTPUT = 64 << 20  # a trial printing more than this is stopped (disk, not memory)
READ_CHUNK = 1 << 20
ENV_RECORDED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


# ---------------------------------------------------------------- before it starts


def format_value(value: Any) -> str:
    """A flag value as the script sees it on its command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def arguments(spec: SweepSpec, values: dict[str, Any]) -> list[str]:
    """``--name=value`` for each flag; a switch is given bare when true, left out when false."""
    args = []
    for flag in spec.flags:
        value = values[flag.name]
        if flag.switch:
            if value:
                args.append(f"--{flag.name}")
        else:
            args.append(f"--{flag.name}={format_value(value)}")
    return args


def environment(path: Path, flags: dict[str, Any], sweep_id: str, number: int, threads: int,
                gpu: str | None = None) -> dict[str, str]:
    """The trial's environment: the sweep's own, plus where to write, its flags, its share of
    the cores and, with --gpus, its GPU."""
    env = dict(os.environ)
    env.update({
        "SWEEP_RUN_DIR": str(path.resolve()), "SWEEP_FLAGS": json.dumps(flags),
        "SWEEP_ID": sweep_id, "SWEEP_TRIAL": str(number), "PYTHONUNBUFFERED": "1",
    })
    if not launch.fits_exec("SWEEP_FLAGS", env["SWEEP_FLAGS"]):
        # Longer than one environment string may be: every exec in the trial would fail
        # (E2BIG). sweep.flags() reads the run's flags.json instead.
        del env["SWEEP_FLAGS"]
    for var in THREAD_VARS:
        env[var] = str(threads)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    env["PYTHONPATH"] = os.pathsep.join(p for p in [launch.PKG_ROOT, env.get("PYTHONPATH", "")] if p)
    return env


def recorded_env(env: dict[str, str]) -> dict[str, str]:
    """The part of the environment run.json keeps: sweep's own variables and the thread and
    GPU settings, never the user's secrets."""
    return {k: env[k] for k in sorted(env) if k.startswith("SWEEP_") or k in ENV_RECORDED}


def prepare(stage: Path, spec: SweepSpec, runs_dir: Path) -> None:
    """Fill a staged run directory: the trial's working directory and the source snapshot."""
    work = stage / rundir.WORK_DIR
    work.mkdir()
    _link_inputs(work, spec.root, runs_dir)
    _snapshot(stage / rundir.SOURCE_DIR, spec)


def _link_inputs(work: Path, root: Path, runs_dir: Path) -> None:
    """Symlink the flags file's directory into the trial's own working directory: relative
    paths still resolve, while files a trial writes stay its own."""
    runs = runs_dir.resolve()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        target = Path(entry.path)
        if entry.name.startswith(".") or target.resolve() == runs:
            continue
        try:
            (work / entry.name).symlink_to(target)
        except OSError:
            pass


def _snapshot(dest: Path, spec: SweepSpec) -> None:
    dest.mkdir()
    shutil.copy2(spec.path, dest / spec.path.name)
    if spec.script and spec.script.name != spec.path.name:
        shutil.copy2(spec.script, dest / spec.script.name)


# ---------------------------------------------------------------- while it runs


@dataclass
class Outcome:
    status: str  # completed, failed, pruned or interrupted
    value: float | None
    reason: str | None
    metrics: dict[str, float]
    exit_code: int | None
    steps: int | None
    error: str | None = None  # the output's last lines, for a failed trial


@dataclass(frozen=True)
class Watch:
    """How a sweep watches its trials: the objective, how output is read, limits."""

    metric: str
    rules: Rules = field(default_factory=Rules)
    timeout: float | None = None
    max_output: int = MAX_OUTPUT
    grace: float = GRACE_S

    @classmethod
    def of(cls, spec: SweepSpec, max_output: int | None = None) -> Watch:
        return cls(spec.metric, Rules.from_spec(spec), spec.timeout, max_output or MAX_OUTPUT)


@dataclass
class Trial:
    """A started trial. ``report(value, step)`` gives the pruner the objective's values and
    returns True when the trial should stop."""

    number: int
    flags: dict[str, Any]
    path: Path
    proc: launch.Process
    watch: Watch
    report: Callable[[float, int], bool]
    start: float = field(default_factory=time.time)
    ending: str | None = None  # why we are stopping it: pruned, interrupted, timeout, output
    pruned_at: int | None = None  # the step at which the pruner said stop
    step: int | None = None
    last: dict[str, float] = field(default_factory=dict)
    kill_at: float | None = None
    killed_at: float | None = None
    _out_pos: int = 0
    _lines: LineReader = field(default_factory=LineReader)
    _mid_line: bool = False  # output was skipped into the middle of a line: drop up to its end
    _history: rundir.HistoryTail | None = None
    _reported: int = 0

    def __post_init__(self) -> None:
        self._history = rundir.HistoryTail(self.path / rundir.METRICS_HISTORY)

    @property
    def deadline(self) -> float | None:
        return None if self.watch.timeout is None else self.start + self.watch.timeout

    def update(self, now: float | None = None) -> None:
        """Read what the trial wrote since the last call, and enforce its limits."""
        self._read_output()
        self._read_history()
        now = time.time() if now is None else now
        if self.kill_at is not None and now >= self.kill_at:
            self.proc.signal(signal.SIGKILL)
            self.kill_at = None
            self.killed_at = now
        elif self.killed_at is not None and now >= self.killed_at + self.watch.grace and self.proc.gone():
            # Killed, reaped, and still no exit status: never wait forever for a lost message.
            self.proc.returncode = -signal.SIGKILL
        if self.ending is None:
            deadline = self.deadline
            if deadline is not None and now >= deadline:
                self.stop("timeout", now)
            elif self._out_pos > self.watch.max_output:
                self.stop("output", now)

    def stop(self, why: str, now: float | None = None) -> None:
        """Ask the trial to end (SIGTERM and the stop file), and kill it after the grace."""
        self.ending = why
        try:
            (self.path / rundir.STOP_FILE).touch()
        except OSError:
            pass
        self.proc.signal(signal.SIGTERM)
        self.kill_at = (time.time() if now is None else now) + self.watch.grace

    def kill(self, why: str, now: float | None = None) -> None:
        self.ending = self.ending or why
        self.proc.signal(signal.SIGKILL)
        self.killed_at = self.killed_at or (time.time() if now is None else now)

    def _read_output(self) -> bool:
        """Parse the next chunk of output; False once everything written so far is read."""
        path = self.path / rundir.OUTPUT_FILE
        try:
            fh = rundir.open_regular(path)
        except OSError:
            return False
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= self._out_pos:
                return False
            if size - self._out_pos > 4 * READ_CHUNK:
                # Far behind (a trial flooding its output): skip to the end; the last value wins.
                self._out_pos = size - READ_CHUNK
                self._lines = LineReader()
                self._mid_line = True
            fh.seek(self._out_pos)
            data = fh.read(READ_CHUNK)
        self._out_pos += len(data)
        if self._mid_line:  # the tail of a line is no line: "...curacy: 0.1" is not a metric
            cut = data.find(b"\n")
            self._mid_line = cut < 0
            data = data[cut + 1:] if cut >= 0 else b""
        lines = self._lines.feed(data)
        done = self._out_pos >= size
        if self.proc.returncode is not None and done:
            lines += self._lines.flush()
        hist = self.path / rundir.METRICS_HISTORY
        for line in lines:
            found, step = parse_line(line, self.watch.rules)
            if not found:
                continue
            self.last.update(found)  # the history may be gone or not a file: the value is not lost
            try:
                rundir.append_jsonl(hist, {"step": step, "time": time.time(), **found, "source": "stdout"})
            except OSError:
                pass
        return not done

    def _read_history(self, limit: int | None = READ_CHUNK) -> None:
        assert self._history is not None
        for step, metrics in self._history.read(limit):
            if step is not None:
                self.step = step
            self.last.update(metrics)
            value = metrics.get(self.watch.metric)
            if value is None or self.ending:
                continue
            at = step if step is not None else self._reported
            self._reported += 1
            # A trial that already exited has spent its epochs: its exit code and final metric
            # judge it (values read after the exit still reach the pruner for later trials).
            if self.report(value, at) and self.proc.returncode is None:
                self.pruned_at = at
                self.stop("pruned")

    # ------------------------------------------------------------ when it has ended

    def finish(self) -> Outcome:
        """Read everything the ended trial wrote (the last value is never lost to a burst of
        output) and judge it."""
        while self._read_output():
            pass
        self._read_history(limit=None)
        code = self.proc.returncode
        metrics = dict(self.last)
        value = metrics.get(self.watch.metric)
        status, reason = ("failed", self.proc.error) if self.proc.error else self.verdict(code, value)
        error = rundir.tail_text(self.path / rundir.OUTPUT_FILE) if status == "failed" else None
        return Outcome(status, value, reason, metrics, code, self.step, error)

    def verdict(self, code: int | None, value: float | None) -> tuple[str, str | None]:
        metric = self.watch.metric
        if self.ending == "pruned":
            return "pruned", f"pruned at step {self.pruned_at}"
        if self.ending == "interrupted":
            return "interrupted", "the sweep was interrupted"
        if self.ending == "timeout":
            return "failed", f"timed out after {self.watch.timeout:g} s"
        if self.ending == "output":
            return "failed", f"printed more than {self.watch.max_output / (1 << 20):g} MiB of output; stopped"
        if code != 0:
            if code is not None and code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = f"signal {-code}"
                return "failed", f"killed by {name}"
            return "failed", f"exit code {code}"
        if value is None:
            return "failed", f"reported no {metric} (print '{metric}: VALUE' or call sweep.log)"
        if not math.isfinite(value):
            return "failed", f"{metric} is {value} (diverged?)"
        return "completed", None
