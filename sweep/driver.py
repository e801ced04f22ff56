"""The sweep loop: ask Optuna for flags, create the run directory, launch the trial, stream
its metrics back (for pruning and progress), end it, write its record, tell Optuna.

It never prints: it emits events to a callback. Trials run ``jobs`` at a time; the loop is
one thread that waits on the launcher, so it is safe to fork from and cheap per trial.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna

from sweep import launch, rundir, search
from sweep.errors import SweepError
from sweep.parse import LineReader, parse_line
from sweep.spec import SweepSpec

GRACE_S = 5.0  # between SIGTERM and SIGKILL when a trial is asked to stop
MAX_OUTPUT = 64 << 20  # a trial printing more than this is stopped (disk, not memory)
MAX_OUTPUT_VAR = "SWEEP_MAX_OUTPUT_MB"  # overrides MAX_OUTPUT (in MiB): a test need not print 64 MiB
READ_CHUNK = 1 << 20
TICK_S = 0.1
MAX_STEP = 2**31 - 1  # the largest step reported to the pruner
ENV_RECORDED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
PKG_ROOT = str(Path(__file__).resolve().parent.parent)  # so a trial can import sweep
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass
class Event:
    """``kind`` is one of: start, trial_start, trial_end, tick, note."""

    kind: str
    sweep: str = ""
    total: int = 0
    number: int = -1
    run_id: str = ""
    flags: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    value: float | None = None
    reason: str | None = None
    text: str = ""


@dataclass
class Result:
    sweep: str
    runs: list[Path]
    counts: dict[str, int]
    interrupted: bool = False
    stopped: str | None = None  # why the sweep stopped early (max failures)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def max_output() -> int:
    try:
        mib = float(os.environ.get(MAX_OUTPUT_VAR, ""))
    except ValueError:
        return MAX_OUTPUT
    return int(mib * (1 << 20)) if math.isfinite(mib) and mib > 0 else MAX_OUTPUT


def resolve_jobs(jobs: int | str) -> int:
    return cpu_count() if jobs == "auto" else max(1, int(jobs))


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


@dataclass
class _Trial:
    number: int
    otrial: optuna.trial.Trial
    flags: dict[str, Any]
    path: Path
    proc: launch.Process
    job: launch.Job
    start: float
    info: dict[str, Any]
    deadline: float | None = None
    out_pos: int = 0
    hist_pos: int = 0
    hist_buf: bytes = b""
    lines: LineReader = field(default_factory=LineReader)
    last: dict[str, float] = field(default_factory=dict)
    step: int | None = None
    reported: int = 0
    pruner_steps: set[int] = field(default_factory=set)  # steps already reported to Optuna
    ending: str | None = None  # why we are stopping it: pruned, interrupted, timeout, output
    pruned_at: int | None = None  # the step at which the pruner said stop
    kill_at: float | None = None
    killed_at: float | None = None
    slot: int = 0
    mid_line: bool = False  # output was skipped into the middle of a line: drop up to its end


class Driver:
    def __init__(self, spec: SweepSpec, runs_dir: Path, *, on_event: Callable[[Event], None] = lambda e: None,
                 storage: str | None = None, study: str | None = None, resume: str | None = None,
                 gpus: list[str] | None = None, per_gpu: int = 1) -> None:
        self.spec = spec
        self.runs_dir = runs_dir
        self.emit = on_event
        self.storage_url = storage
        self.study_name = study
        self.resume_ref = resume
        self.jobs = resolve_jobs(spec.jobs)
        self.gpus = list(gpus or [])
        self.per_gpu = max(1, per_gpu)
        self.threads = max(1, cpu_count() // self.jobs)
        self.regexes = [(name, re.compile(p)) for name, p in spec.metrics]
        self.max_output = max_output()
        self._interrupts = 0
        self._active: dict[int, _Trial] = {}
        self._versions: dict[str, str] | None = None

    # -------------------------------------------------------------- control

    def interrupt(self) -> None:
        """First call: start no more trials and ask running ones to stop. Second: kill now.
        Safe to call from a signal handler."""
        self._interrupts += 1

    # -------------------------------------------------------------- planning

    def plan(self, n: int | None = None) -> list[dict[str, Any]]:
        """The flags of the next ``n`` trials, from an in-memory study (for --dry-run)."""
        study = optuna.create_study(direction=self.spec.goal, sampler=search.sampler(self.spec))
        space = search.space(self.spec)
        out = []
        for _ in range(self._target(n or self.spec.trials)):
            trial = study.ask(space)
            out.append(search.trial_flags(self.spec, trial.params))
            try:
                study.tell(trial, 0.0)
            except RuntimeError:  # the grid sampler stops the study after its last point
                pass
        return out

    def _target(self, trials: int) -> int:
        combos = self.spec.combinations()
        if combos is not None and search.uses_grid(self.spec):
            if self.spec.sampler == "grid":
                return combos
            return min(trials, combos)
        return trials

    # -------------------------------------------------------------- the loop

    def run(self) -> Result:
        state = self.runs_dir / rundir.STATE_DIR
        launcher = launch.make(self.spec.launcher)  # start warming before the study opens
        try:
            return self._run(launcher, state)
        finally:
            launcher.close()

    def _run(self, launcher: Any, state: Path) -> Result:
        record, todo, runs = self._open_sweep(state)
        sweep_id = record["id"]
        store = search.storage(self.storage_url, state, sweep_id)
        study = search.open_study(self.spec, store, record["study"], done=self._salt(record))
        record.update(pid=os.getpid(), host=rundir.host())  # who runs it now (see _clear_stale_lock)
        rundir.write_json(state / f"{sweep_id}.json", record)  # only once the study is open
        if self.resume_ref is not None:
            self._resume(study, runs)
        space = search.space(self.spec)
        self.emit(Event("start", sweep=sweep_id, total=todo))
        counts = {s: 0 for s in ("completed", "failed", "pruned", "interrupted")}
        paths: list[Path] = []
        started = failures = 0
        stopped = None
        slots = list(range(self.jobs))
        while True:
            while not self._interrupts and stopped is None and started < todo and len(self._active) < self.jobs:
                launcher.ready()  # the warm launcher may take seconds: an interrupt meanwhile starts nothing
                if self._interrupts:
                    break
                trial = self._start(study, space, record, launcher, slots.pop(0))
                self._active[trial.proc.pid] = trial
                paths.append(trial.path)
                started += 1
            if not self._active:
                break
            launcher.wait([t.proc for t in self._active.values()], TICK_S)
            self._handle_interrupts()
            for pid, trial in list(self._active.items()):
                exited = launcher.poll(trial.proc) is not None  # first: never prune an ended trial
                self._update(trial, study)
                if not exited:
                    continue
                del self._active[pid]
                slots.append(trial.slot)
                status, value, reason = self._finish(trial, study)
                counts[status] = counts.get(status, 0) + 1
                if status == "failed":
                    failures += 1
                    if self.spec.max_failures and failures >= self.spec.max_failures and stopped is None:
                        stopped = f"stopped after {failures} failed trials (max_failures {self.spec.max_failures})"
                        self.emit(Event("note", text=stopped))
                self.emit(Event("trial_end", number=trial.number, run_id=trial.path.name,
                                flags=trial.flags, status=status, value=value, reason=reason))
            self.emit(Event("tick"))
        record["asked"] = len(study.get_trials(deepcopy=False))
        rundir.write_json(state / f"{sweep_id}.json", record)
        return Result(sweep_id, paths, counts, interrupted=self._interrupts > 0, stopped=stopped)

    def _salt(self, record: dict[str, Any]) -> int:
        """How far the sampler's random sequence has gone. The grid sampler's seed is its
        order of the grid: it must never change within a sweep, or a resumed sweep's grid ids
        name other combinations (duplicates, and combinations never run)."""
        return 0 if search.uses_grid(self.spec) else record.get("asked", 0)

    def _open_sweep(self, state: Path) -> tuple[dict[str, Any], int, list[rundir.Run]]:
        """The sweep record (new, or the one resumed), the number of trials to start, and the
        resumed sweep's runs."""
        state.mkdir(parents=True, exist_ok=True)
        rundir.remove_stale_stages(self.runs_dir)
        if self.resume_ref is None:
            sweep_id = "s" + rundir.new_id()
            record = {
                "format": rundir.FORMAT, "id": sweep_id, "flags_file": str(self.spec.path),
                "study": self.study_name or sweep_id, "storage": redact(self.storage_url),
                "trials": self._target(self.spec.trials), "created": time.time(), "asked": 0,
            }
            return record, record["trials"], []
        record = find_sweep(self.runs_dir, self.resume_ref, self.spec.path)
        runs = [r for r in rundir.list_runs(self.runs_dir) if r.sweep == record["id"]]
        ended = sum(1 for r in runs if r.status in rundir.ENDED)
        todo = max(0, record["trials"] - ended)
        if todo == 0:
            raise SweepFinished(f"sweep {record['id']} already finished: {ended} of "
                                f"{record['trials']} trials ended; nothing to run")
        stored = record.get("storage")
        if not self.storage_url and stored and REDACTED in stored:
            raise SweepError(f"sweep {record['id']} uses a storage with a password, which is not "
                             "saved: pass --storage again to resume it")
        self.storage_url = self.storage_url or stored
        self._clear_stale_lock(state, record)
        return record, todo, runs

    def _clear_stale_lock(self, state: Path, record: dict[str, Any]) -> None:
        """A sweep killed while appending to its journal leaves Optuna's lock file behind, and
        Optuna waits 30 s before breaking one. The default journal is this sweep's alone, so
        once the process that last ran the sweep is gone, its lock is stale."""
        pid = record.get("pid")
        if self.storage_url or record.get("host") != rundir.host() or not isinstance(pid, int):
            return
        if pid != os.getpid() and rundir.alive(pid):
            return
        try:
            (state / f"{record['id']}.journal.lock").unlink()  # JournalFileSymlinkLock's name
        except FileNotFoundError:
            pass

    def _resume(self, study: optuna.Study, runs: list[rundir.Run]) -> None:
        """Run again, with the same flags, what the dead sweep did not finish: its interrupted
        runs, and trials it had asked for but died before giving a run directory. Trials it
        left RUNNING fail (they would never end). A rerun already queued by an earlier resume
        that was killed too is not queued twice; runs are marked resumed only once queued."""
        states = optuna.trial.TrialState
        if not search.uses_grid(self.spec):
            # The record's count of asked trials is saved at a clean end only; after kill -9 the
            # study knows how far the random sequence went: go on from there, never replay it.
            study.sampler = search.sampler(self.spec, len(study.get_trials(deepcopy=False)))
        names = set(search.space(self.spec))
        reruns = [r for r in runs if r.status == "interrupted" and not r.info.get("resumed")]
        queue = [r.info.get("params") or {} for r in reruns]
        known = {r.info.get("trial") for r in runs}
        for t in study.get_trials(deepcopy=False, states=(states.RUNNING,)):
            if t.number not in known and self.storage_url:
                continue  # a shared study: another machine may be running this trial now
            params = t.system_attrs.get("fixed_params") or t.params
            if t.number not in known and "grid_id" in t.system_attrs and not names <= set(params):
                continue  # half-asked: left RUNNING, the grid sampler hands its point out last
            try:
                study.tell(t.number, state=states.FAIL)
            except Exception:  # already ended by a concurrent process
                pass
            if t.number not in known:
                queue.append(params if names <= set(params) else {})
        waiting = [t.system_attrs.get("fixed_params") for t in
                   study.get_trials(deepcopy=False, states=(states.WAITING,))]
        for params in queue:
            if not params:
                continue  # nothing was drawn: a fresh trial is the same
            if params in waiting:
                waiting.remove(params)
            else:
                study.enqueue_trial(params)
        for run in reruns:
            info = dict(run.info, status="interrupted", resumed=True)
            info["reason"] = info.get("reason") or "the sweep process is gone"
            rundir.write_json(run.path / rundir.RUN_FILE, info)

    def _start(self, study: optuna.Study, space: dict, record: dict, launcher: Any, slot: int) -> _Trial:
        otrial = study.ask(space)
        flags = search.trial_flags(self.spec, otrial.params)
        # Filled in under a hidden name and published with its run.json: a kill -9 meanwhile
        # leaves no run directory without one (the trial is run again on resume).
        stage, path = rundir.stage_run_dir(self.runs_dir)
        work = path / rundir.WORK_DIR
        (stage / rundir.WORK_DIR).mkdir()
        self._link_inputs(stage / rundir.WORK_DIR)
        self._snapshot(stage / rundir.SOURCE_DIR)
        rundir.write_json(stage / rundir.FLAGS_FILE, flags)
        env = self._env(path, flags, record, otrial.number, slot)
        job = launch.Job(self.spec.script, self.spec.module, arguments(self.spec, flags), env, work,
                         path / rundir.OUTPUT_FILE, self.threads)
        (stage / rundir.OUTPUT_FILE).touch()
        now = time.time()
        info = {
            "format": rundir.FORMAT, "id": path.name, "sweep": record["id"], "trial": otrial.number,
            "status": "running", "start": now, "end": None, "duration": None, "exit_code": None,
            "reason": None, "error": None, "steps": None, "metric": self.spec.metric,
            "goal": self.spec.goal, "command": job.argv("python"), "flags_file": str(self.spec.path),
            "launcher": getattr(launcher, "name", "spawn"), "threads": self.threads,
            "env": {k: env[k] for k in sorted(env) if k.startswith("SWEEP_") or k in ENV_RECORDED},
            "params": otrial.params, "host": rundir.host(), "sweep_pid": os.getpid(),
            "versions": self._versions or self._load_versions(),
            "baseline_error": self.spec.baseline_error,
        }
        rundir.write_json(stage / rundir.RUN_FILE, info)
        rundir.publish_run_dir(stage, path)
        try:
            proc = launcher.start(job)
        except (OSError, SweepError) as exc:
            info.update(status="failed", end=time.time(), reason=f"could not start: {exc}")
            rundir.write_json(path / rundir.METRICS_FILE, {})
            rundir.write_json(path / rundir.RUN_FILE, info)
            study.tell(otrial, state=optuna.trial.TrialState.FAIL)
            raise SweepError(f"could not start trial {otrial.number}: {exc}") from None
        info["pid"] = proc.pid
        trial = _Trial(otrial.number, otrial, flags, path, proc, job, now, info, slot=slot)
        if self.spec.timeout:
            trial.deadline = now + self.spec.timeout
        self.emit(Event("trial_start", number=otrial.number, run_id=path.name, flags=flags))
        return trial

    def _load_versions(self) -> dict[str, str]:
        self._versions = rundir.versions()
        return self._versions

    def _env(self, path: Path, flags: dict, record: dict, number: int, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "SWEEP_RUN_DIR": str(path.resolve()), "SWEEP_FLAGS": json.dumps(flags),
            "SWEEP_ID": record["id"], "SWEEP_TRIAL": str(number), "PYTHONUNBUFFERED": "1",
        })
        for var in THREAD_VARS:
            env[var] = str(self.threads)
        if self.gpus:
            index = slot // self.per_gpu
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[index] if index < len(self.gpus) else ""
        env["PYTHONPATH"] = os.pathsep.join(p for p in [PKG_ROOT, env.get("PYTHONPATH", "")] if p)
        return env

    def _link_inputs(self, work: Path) -> None:
        """Symlink the flags file's directory into the trial's own working directory: relative
        paths still resolve, while files a trial writes stay its own."""
        root = self.spec.root
        runs = self.runs_dir.resolve()
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

    def _snapshot(self, dest: Path) -> None:
        dest.mkdir()
        shutil.copy2(self.spec.path, dest / self.spec.path.name)
        if self.spec.script and self.spec.script.name != self.spec.path.name:
            shutil.copy2(self.spec.script, dest / self.spec.script.name)

    # -------------------------------------------------------------- watching

    def _handle_interrupts(self) -> None:
        if not self._interrupts:
            return
        now = time.time()
        for trial in self._active.values():
            if self._interrupts > 1:
                trial.ending = trial.ending or "interrupted"
                trial.proc.signal(signal.SIGKILL)
                trial.killed_at = trial.killed_at or now
            elif trial.ending is None:
                self._stop(trial, "interrupted", now)

    def _stop(self, trial: _Trial, why: str, now: float) -> None:
        trial.ending = why
        try:
            (trial.path / rundir.STOP_FILE).touch()
        except OSError:
            pass
        trial.proc.signal(signal.SIGTERM)
        trial.kill_at = now + GRACE_S

    def _update(self, trial: _Trial, study: optuna.Study) -> None:
        self._read_output(trial)
        self._read_history(trial, study)
        now = time.time()
        if trial.kill_at is not None and now >= trial.kill_at:
            trial.proc.signal(signal.SIGKILL)
            trial.kill_at = None
            trial.killed_at = now
        elif trial.killed_at is not None and now >= trial.killed_at + GRACE_S and trial.proc.gone():
            # Killed, reaped, and still no exit status: never wait forever for a lost message.
            trial.proc.returncode = -signal.SIGKILL
        if trial.ending is None:
            if trial.deadline is not None and now >= trial.deadline:
                self._stop(trial, "timeout", now)
            elif trial.out_pos > self.max_output:
                self._stop(trial, "output", now)

    def _read_output(self, trial: _Trial) -> None:
        path = trial.job.output
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size <= trial.out_pos:
            return
        if size - trial.out_pos > 4 * READ_CHUNK:
            # Far behind (a trial flooding its output): skip to the end; the last value wins.
            trial.out_pos = size - READ_CHUNK
            trial.lines = LineReader()
            trial.mid_line = True
        with open(path, "rb") as fh:
            fh.seek(trial.out_pos)
            data = fh.read(READ_CHUNK)
        trial.out_pos += len(data)
        if trial.mid_line:  # the tail of a line is no line: "...curacy: 0.1" is not a metric
            cut = data.find(b"\n")
            trial.mid_line = cut < 0
            data = data[cut + 1:] if cut >= 0 else b""
        lines = trial.lines.feed(data)
        if trial.proc.returncode is not None and trial.out_pos >= size:
            lines += trial.lines.flush()
        self._parse_lines(trial, lines)

    def _parse_lines(self, trial: _Trial, lines: list[str]) -> None:
        hist = trial.path / rundir.METRICS_HISTORY
        for line in lines:
            found, step = parse_line(line, self.regexes)
            if found:
                rundir.append_jsonl(hist, {"step": step, "time": time.time(), **found, "source": "stdout"})

    def _read_history(self, trial: _Trial, study: optuna.Study) -> None:
        path = trial.path / rundir.METRICS_HISTORY
        try:
            with open(path, "rb") as fh:
                fh.seek(trial.hist_pos)
                data = fh.read(READ_CHUNK)
        except OSError:
            return
        trial.hist_pos += len(data)
        data = trial.hist_buf + data
        *lines, trial.hist_buf = data.split(b"\n")
        if len(trial.hist_buf) > READ_CHUNK:
            trial.hist_buf = b""
        for raw in lines:
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):  # junk, or "[[[[..." deeper than the parser goes
                continue
            if isinstance(rec, dict):
                self._record(trial, rec, study)

    def _record(self, trial: _Trial, rec: dict, study: optuna.Study) -> None:
        step = rec.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            trial.step = step
        for key, value in rec.items():
            if key in ("step", "time", "source") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                trial.last[key] = rundir.as_float(value)  # a 400-digit int is inf, not an error
        value = rec.get(self.spec.metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or trial.ending:
            return
        value = rundir.as_float(value)
        at = step if isinstance(step, int) and not isinstance(step, bool) else trial.reported
        trial.reported += 1
        if not math.isfinite(value) or self.spec.pruner.name == "none":
            return
        # Optuna takes one value per step, a step >= 0 that fits its storages (a database column
        # may be 32 bits); it raises or warns otherwise. The run's own record keeps every value.
        if not 0 <= at <= MAX_STEP or at in trial.pruner_steps:
            return
        trial.pruner_steps.add(at)
        trial.otrial.report(float(value), at)
        # A trial that already exited has spent its epochs: its exit code and final metric
        # judge it (values read after the exit still reach the pruner for later trials).
        if trial.proc.returncode is None and trial.otrial.should_prune():
            trial.pruned_at = at
            self._stop(trial, "pruned", time.time())

    # -------------------------------------------------------------- ending

    def _finish(self, trial: _Trial, study: optuna.Study) -> tuple[str, float | None, str | None]:
        self._read_output(trial)
        self._read_history(trial, study)
        trial.proc.close()
        code = trial.proc.returncode
        metrics = dict(trial.last)
        value = metrics.get(self.spec.metric)
        status, reason = self._verdict(trial, code, value)
        end = time.time()
        info = trial.info
        info.update(status=status, end=end, duration=round(end - trial.start, 4), exit_code=code,
                    reason=reason, steps=trial.step)
        if status == "failed":
            info["error"] = rundir.tail_text(trial.job.output)
        rundir.write_json(trial.path / rundir.METRICS_FILE, metrics)
        rundir.write_json(trial.path / rundir.RUN_FILE, info)
        try:
            (trial.path / rundir.STOP_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        rundir.note_ended(self.runs_dir, trial.path, info["sweep"])
        self._tell(study, trial, status, value)
        return status, value, reason

    def _verdict(self, trial: _Trial, code: int | None, value: float | None) -> tuple[str, str | None]:
        metric = self.spec.metric
        if trial.ending == "pruned":
            return "pruned", f"pruned at step {trial.pruned_at}"
        if trial.ending == "interrupted":
            return "interrupted", "the sweep was interrupted"
        if trial.ending == "timeout":
            return "failed", f"timed out after {self.spec.timeout:g} s"
        if trial.ending == "output":
            return "failed", f"printed more than {self.max_output / (1 << 20):g} MiB of output; stopped"
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

    def _tell(self, study: optuna.Study, trial: _Trial, status: str, value: float | None) -> None:
        state = optuna.trial.TrialState
        try:
            if status == "completed":
                study.tell(trial.otrial, value)
            elif status == "pruned":
                study.tell(trial.otrial, state=state.PRUNED)
            else:
                study.tell(trial.otrial, state=state.FAIL)
        except Exception:  # the record is the run directory; a storage hiccup must not lose it
            pass


REDACTED = "***"


def redact(url: str | None) -> str | None:
    """A storage URL without its password: the sweep record is a file anyone may read."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{REDACTED}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class SweepFinished(SweepError):
    """Resuming a sweep that has nothing left to run."""

    exit_code = 0


def find_sweep(runs_dir: Path, ref: str, flags_file: Path | None = None) -> dict[str, Any]:
    """A sweep record by id (or unique prefix), or ``last``: the newest sweep of
    ``flags_file``."""
    state = runs_dir / rundir.STATE_DIR
    records = []
    for path in state.glob("*.json") if state.is_dir() else []:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and "id" in rec:
            records.append(rec)
    if ref == "last":
        mine = [r for r in records if flags_file is None or r.get("flags_file") == str(flags_file)]
        if not mine:
            raise SweepError(f"no earlier sweep of {flags_file} in {runs_dir} to resume")
        return max(mine, key=lambda r: r.get("created", 0))
    rundir.check_ref(ref)
    matches = [r for r in records if r["id"] == ref] or [r for r in records if r["id"].startswith(ref)]
    if len(matches) != 1:
        raise SweepError(f"no sweep matches {ref!r} in {runs_dir}" if not matches
                         else f"{ref!r} matches {len(matches)} sweeps: give more of the id")
    return matches[0]
