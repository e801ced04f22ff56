"""One trial, from its start to its verdict: prepare its working directory and
environment, then supervise the started process (tail its output and metrics, feed the
pruner, stop it on a deadline, an output flood, a prune or an interrupt) and judge how it
ended. It knows nothing of Optuna or of the other trials: the loop (``sweep.driver``) gives
it a started process and a ``report`` callback, and gets an ``Outcome`` back."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep import launch, rundir, wbhook, workdir
from sweep.parse import LineReader, Rules, parse_line
from sweep.spec import SweepSpec

GRACE_S = 5.0  # between SIGTERM and SIGKILL when a trial is asked to stop
MAX_OUTPUT = 64 << 20  # a trial printing more than this is stopped (disk, not memory)
READ_CHUNK = 1 << 20
ENV_RECORDED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


# ---------------------------------------------------------------- before it starts


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
    # wbhook's sitecustomize first: a spawned script that imports wandb logs through sweep.
    env["PYTHONPATH"] = os.pathsep.join(p for p in [wbhook.SITE_DIR, launch.PKG_ROOT, env.get("PYTHONPATH", "")] if p)
    return env


def recorded_env(env: dict[str, str]) -> dict[str, str]:
    """The part of the environment run.json keeps: sweep's own variables and the thread and
    GPU settings, never the user's secrets."""
    return {k: env[k] for k in sorted(env) if k.startswith("SWEEP_") or k in ENV_RECORDED}


def prepare(stage: Path, path: Path, where: workdir.Place, snapshot: Snapshot) -> None:
    """Fill a staged run directory (to be published at ``path``): the trial's working
    directory and the source snapshot."""
    workdir.prepare(where, stage, path)
    snapshot.put(stage / rundir.SOURCE_DIR, path / rundir.SOURCE_DIR)


class Snapshot:
    """A sweep's source snapshot: its flags file and script, in each run's ``source/``. The
    first run gets copies, made read-only; each next run a hard link to the last run's (a link
    a trial instead of a copy). A source file changed since (edited mid-sweep) is copied
    afresh, as is one whose last copy changed or went, or that cannot be linked (another
    filesystem, too many links): each run keeps the source it ran."""

    def __init__(self, spec: SweepSpec) -> None:
        self.files = [spec.path]
        if spec.script and spec.script.name != spec.path.name:
            self.files.append(spec.script)
        # The flags file as the sweep read it: an edit after that is not what any run used.
        self.held = {spec.path: spec.source} if spec.source is not None else {}
        # source file -> (its last copy, the source's stamp then (none for held bytes), the copy's stamp)
        self._last: dict[Path, tuple[Path, tuple[int, ...], tuple[int, ...]]] = {}

    def put(self, dest: Path, published: Path) -> None:
        """Fill ``dest``, a new ``source/`` that will be published at ``published``."""
        dest.mkdir()
        for src in self.files:
            held = self.held.get(src)
            st = None if held is not None else os.stat(src)
            stamp = () if st is None else (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            target = dest / src.name
            last = self._last.get(src)
            if last is not None and last[1] == stamp and _link(last[0], last[2], target):
                copy = last[2]
            else:
                if held is not None:
                    target.write_bytes(held)
                    os.chmod(target, 0o444)  # shared by the runs linked to it
                else:
                    assert st is not None
                    shutil.copy2(src, target)
                    os.chmod(target, stat.S_IMODE(st.st_mode) & ~0o222)
                copy = _copy_stamp(os.stat(target))
            self._last[src] = (published / src.name, stamp, copy)


def _copy_stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)  # not ctime: a link changes it


def _link(copy: Path, stamp: tuple[int, ...], target: Path) -> bool:
    """Link ``target`` to ``copy`` if it is still the file it was."""
    try:
        if _copy_stamp(os.lstat(copy)) != stamp:
            return False
        os.link(copy, target)
    except OSError:
        return False
    return True


# ---------------------------------------------------------------- why it failed

# A traceback's header or one of its frames ('  File "x.py", line 3, in f'): the exception's
# own line is the first unindented line after the last of them, however much the tail kept.
_TRACEBACK = re.compile(r'^(?:\s+File "[^"]*", line \d+|Traceback \(most recent call last\):)')
# argparse's usage error ("train.py: error: unrecognized arguments: --foo=1"): its message.
_USAGE = re.compile(r"^\S+: (error: .*[A-Za-z].*)$")
# click's and fire's usage errors, and faulthandler's report of a crash in C.
_ERROR = re.compile(r"^(?:Error|ERROR|Fatal Python error): .*[A-Za-z]")
_WORDY = re.compile(r"[A-Za-z0-9]")  # a box border or a row of dashes says nothing
MAX_REASON = 300


def error_line(tail: str, progress: Callable[[str], bool] | None = None, last_resort: bool = True) -> str | None:
    """The script's own last word on why it failed: the exception line of its last traceback,
    or an argparse/click/fire usage error, whichever came last. Else, with ``last_resort``,
    its last line with a letter or digit in it, unless that is a line of ``progress``
    (metrics): progress says nothing about a failure."""
    lines = tail.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].rstrip()
        usage = _USAGE.match(line)
        if usage:
            return _short(usage.group(1))
        if _ERROR.match(line):
            return _short(line)
        if _TRACEBACK.match(line):
            after = [x for x in lines[i + 1:] if x.strip() and not x[0].isspace()]
            if after:
                return _short(after[0].rstrip())
    last = next((x.strip() for x in reversed(lines) if _WORDY.search(x)), None)
    if not last_resort or last is None or (progress is not None and progress(last)):
        return None
    return _short(last)


def because(what: str, why: str | None) -> str:
    """``exit code 1: OverflowError: math range error``; the bare cause when the output says none."""
    return f"{what}: {why}" if why else what


def _short(line: str) -> str:
    return line if len(line) <= MAX_REASON else line[:MAX_REASON - 3] + "..."


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
    also: tuple[str, ...] = ()  # the other objectives and the constraints' metrics: reported too
    per_value: bool = False  # the pruner's step is the objective's value count, not its logged step

    @classmethod
    def of(cls, spec: SweepSpec, max_output: int | None = None) -> Watch:
        also = [m for m, _ in spec.targets()[1:]] + [c.metric for c in spec.constraints]
        return cls(spec.metric, Rules.from_spec(spec), spec.timeout, max_output or MAX_OUTPUT,
                   also=tuple(m for m in dict.fromkeys(also) if m != spec.metric),
                   per_value=spec.pruner.count == "value")


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
    pruned_late: int | None = None  # ... said after the training had ended (in wandb.finish): not acted on
    step: int | None = None
    last: dict[str, float] = field(default_factory=dict)
    kill_at: float | None = None
    killed_at: float | None = None
    _out_pos: int = 0
    _lines: LineReader = field(default_factory=LineReader)
    _mid_line: bool = False  # output was skipped into the middle of a line: drop up to its end
    _history: rundir.HistoryTail = field(init=False)
    _reported: int = 0  # values of the objective seen: the step of those logged without one

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
        if self._mid_line:
            # The tail of a line is no line ("...curacy: 0.1" is not a metric): start at the
            # next line or redraw, so a progress bar that never ends its line is still read.
            cuts = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
            self._mid_line = not cuts
            data = data[min(cuts) + 1:] if cuts else b""
        self._parse(self._lines.feed(data))
        return self._out_pos < size

    def _parse(self, lines: list[str]) -> None:
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

    def _read_history(self, limit: int | None = READ_CHUNK) -> None:
        for step, metrics in self._history.read(limit):
            if step is not None:
                self.step = step
            self.last.update(metrics)
            value = metrics.get(self.watch.metric)
            if value is None or self.ending:
                continue
            at = step if step is not None and not self.watch.per_value else self._reported
            self._reported += 1
            # A trial that already exited has spent its epochs: its exit code and final metric
            # judge it (values read after the exit still reach the pruner for later trials).
            if self.report(value, at) and self.proc.returncode is None:
                if (self.path / wbhook.FINISHING).exists():
                    # Read late: the script already ended its training; stopping it now saves
                    # nothing and would cut wandb.finish short, losing wandb's files.
                    self.pruned_late = at if self.pruned_late is None else self.pruned_late
                    continue
                self.pruned_at = at
                self.stop("pruned")

    def _progress(self, line: str) -> bool:
        """A line of metrics: it says nothing about why a trial failed."""
        return bool(parse_line(line, self.watch.rules)[0])

    # ------------------------------------------------------------ when it has ended

    def finish(self) -> Outcome:
        """Read everything the ended trial wrote (the last value is never lost to a burst of
        output) and judge it."""
        while self._read_output():
            pass
        self._parse(self._lines.flush())  # a last line without its newline (a progress bar)
        self._read_history(limit=None)
        code = self.proc.returncode
        metrics = dict(self.last)
        value = metrics.get(self.watch.metric)
        tail = rundir.tail_text(self.path / rundir.OUTPUT_FILE)
        status, reason = ("failed", self.proc.error) if self.proc.error else self.verdict(code, value, tail)
        if status == "completed":
            status, reason = self.unreported(metrics)
        if status == "completed" and self.pruned_late is not None:
            reason = f"the pruner said stop at step {self.pruned_late} after training had ended (in wandb.finish)"
        error = tail if status == "failed" else None
        hint = switch_hint(error, self.flags)
        if hint:
            reason = f"{reason}; {hint}"
        return Outcome(status, value, reason, metrics, code, self.step, error)

    def verdict(self, code: int | None, value: float | None, tail: str = "") -> tuple[str, str | None]:
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
                return "failed", because(f"killed by {name}", error_line(tail, last_resort=False))
            return "failed", because(f"exit code {code}", error_line(tail, self._progress))
        if not metric:  # no objective: exiting 0 is the whole verdict
            return "completed", None
        if value is None:
            return "failed", f"reported no {metric} ({self.how_to_report(metric)})"
        if not math.isfinite(value):
            return "failed", f"{metric} is {value} (diverged?)"
        return "completed", None

    def how_to_report(self, metric: str) -> str:
        # wandb made its folder in the run directory (WANDB_DIR): the script reports through wandb.
        if (self.path / "wandb").is_dir():
            return f"log it with wandb.log or set wandb.run.summary['{metric}']"
        return f"print '{metric}: VALUE' or call sweep.log"

    def unreported(self, metrics: dict[str, float]) -> tuple[str, str | None]:
        """A completed trial's verdict on the other metrics the sweep needs: each objective
        and each constraint's metric must be reported, and finite."""
        for name in self.watch.also:
            value = metrics.get(name)
            if value is None:
                return "failed", f"reported no {name} ({self.how_to_report(name)})"
            if not math.isfinite(value):
                return "failed", f"{name} is {value} (diverged?)"
        return "completed", None


# A parser refusing a value given to a switch: argparse's "error: argument --tied: ignored
# explicit argument 'true'" ("argument --x/--no-x: ..." for BooleanOptionalAction) or
# "unrecognized arguments: --tied=true", click's "Option '--tied' does not take a value".
_REFUSED_RE = re.compile(r"argument --([^\s:/]+)(?:/\S+)?: ignored explicit argument"
                         r"|Option '--([^'\s]+)' does not take a value")
_UNRECOGNIZED_RE = re.compile(r"unrecognized arguments: (.*)")


def switch_hint(output_tail: str | None, flags: dict[str, Any]) -> str | None:
    """How to fix the flags file when the script refused a true/false flag given as
    ``--name=true``: its parser, which sweep could not read, takes the flag as a switch (or,
    for an unrecognized one, maybe by another name)."""
    if not output_tail:
        return None
    fix = "mark it a switch in the flags file ({}: {{values: [true, false], switch: true}})"
    for m in _REFUSED_RE.finditer(output_tail):
        name = m.group(1) or m.group(2)
        if isinstance(flags.get(name), bool):
            return f"--{name} takes no value: {fix.format(name)}"
    for m in _UNRECOGNIZED_RE.finditer(output_tail):
        for word in m.group(1).split():
            name = word[2:].partition("=")[0]
            if word.startswith("--") and "=" in word and isinstance(flags.get(name), bool):
                return (f"the script has no --{name}=VALUE: check the flag's spelling, or if it is a "
                        f"switch, {fix.format(name)}")
    return None
