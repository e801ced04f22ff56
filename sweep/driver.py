"""The sweep loop: ask the study for flags, publish the run directory, start the trial with
the launcher it was given, watch the trials ``jobs`` at a time, record each outcome and tell
the study. One trial is ``sweep.trial``'s; the study is ``sweep.search``'s; the record is
``sweep.rundir``'s.

It never prints: it emits events to a callback. The loop is one thread that waits on the
launcher, so it is safe to fork from and cheap per trial.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep import command as commands
from sweep import index, journal, rundir, samplers, search, seeds, wbhook, workdir
from sweep import trial as trials
from sweep.errors import LauncherError, RecordError, RunNotFound, SpecError, StorageError, SweepError
from sweep.launch import Job, Launcher
from sweep.lock import SweepLock
from sweep.spec import SweepSpec
from sweep.urls import REDACTED, redact
from sweep.words import count

TICK_S = 0.1


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
    note: str | None = None  # why nothing ran (a resumed sweep that had already finished)
    earlier: list[Path] = field(default_factory=list)  # a resumed sweep's runs from before this session
    reached: str | None = None  # the trial that reached the metric's target (the sweep's success)
    warm: list[Path] = field(default_factory=list)  # earlier sweeps' runs the study was given (--warm-start)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | str) -> int:
    return cpu_count() if jobs == "auto" else max(1, int(jobs))


@dataclass
class _Running:
    trial: trials.Trial
    ask: search.Ask
    info: rundir.RunInfo
    slot: int
    repeat: int = 0  # which of its configuration's repeats (repeats:)
    verdict: tuple[str, float | None] | None = None  # what the study heard once it ended (a configuration's mean)


class Driver:
    def __init__(self, spec: SweepSpec, runs_dir: Path, launcher: Launcher, *,
                 on_event: Callable[[Event], None] = lambda e: None, storage: str | None = None,
                 study: str | None = None, resume: str | None = None, gpus: list[str] | None = None,
                 per_gpu: int = 1, max_output: int | None = None, warm: list[rundir.Run] | None = None,
                 again: str | None = None) -> None:
        self.spec = seeds.seeded(spec)
        # The command that resumes this sweep (its id follows), as the disk-full line gives it:
        # the options that find the sweep's runs and space again.
        self.again = again or shlex.join(["sweep", "run", str(spec.path)])
        self._record_id: str | None = None
        self.runs_dir = runs_dir
        self.launcher = launcher
        self.emit = on_event
        self.storage_url = storage
        self.study_name = study
        self.resume_ref = resume
        self.jobs = resolve_jobs(spec.jobs)
        self.gpus = list(gpus or [])
        self.per_gpu = max(1, per_gpu)
        self.threads = max(1, cpu_count() // self.jobs)
        self.watch = trials.Watch.of(spec, max_output)
        self.snapshot = trials.Snapshot(self.spec)
        self._interrupts = 0
        self._active: dict[int, _Running] = {}
        self._versions: dict[str, str] | None = None
        self._study: search.Search | None = None
        self._writer: rundir.RunWriter | None = None
        self.where: workdir.Place | None = None  # where trials run: decided once, in run()
        self._lock: SweepLock | None = None
        self._unsaved: str | None = None  # a new sweep's id until its record is written: nothing to resume yet
        # repeats: the asked configurations' repeats still to start, and the outcomes of those ended
        self._owed: list[tuple[search.Ask, int]] = []
        self._repeats: dict[int, tuple[search.Ask, list[tuple[trials.Outcome, Path]]]] = {}
        self.warm = list(warm or [])  # earlier sweeps' runs to start the study from (--warm-start)
        self._untidy: list[Path] = []  # ended runs whose scratch folders are still to remove

    def interrupt(self) -> None:
        """First call: start no more trials and ask running ones to stop. Second: kill now.
        Safe to call from a signal handler."""
        self._interrupts += 1

    def interrupted(self) -> bool:
        """Read afresh each time: a signal handler may have called ``interrupt`` meanwhile."""
        return self._interrupts > 0

    # -------------------------------------------------------------- the loop

    def run(self) -> Result:
        try:
            return self._run()
        except (OSError, SweepError) as exc:  # the sweep cannot go on: end its trials first
            message = rundir.write_error(exc, self.runs_dir) if isinstance(exc, OSError) else str(exc)
            if self._active and self._study is not None and self._writer is not None:
                self._stop_all(self._study, self._writer, message)
            if self._study is not None:
                self._tell_unfinished(self._study)
            if self._unsaved and not self.storage_url:  # a journal no record names: nothing could resume it
                for junk in (f"{self._unsaved}.journal", f"{self._unsaved}.journal.lock", f"{self._unsaved}.lock"):
                    with contextlib.suppress(OSError):
                        (self.runs_dir / rundir.STATE_DIR / junk).unlink()
            if not isinstance(exc, OSError):
                raise
            if exc.errno in rundir.DISK_FULL and (self._unsaved or self._record_id is None):  # nothing to resume
                message += "; free some space, then run the same command again"
            elif exc.errno in rundir.DISK_FULL:
                message += f"; free some space, then: {self.again} --resume {self._record_id}"
            raise RecordError(message) from None  # one line, never a traceback
        finally:
            self._tidy()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _run(self) -> Result:
        state = self.runs_dir / rundir.STATE_DIR
        record = self._open_sweep(state)
        self._record_id = record.id
        study = search.Search.open(self.spec, self.storage_url, state, record.id, record.study,
                                   done=0 if samplers.uses_grid(self.spec) else record.asked)
        writer = rundir.RunWriter(self.runs_dir, [index.Notes(self.runs_dir, record.id), *study.stores()])
        todo = record.trials
        runs: list[rundir.Run] = []
        if self.resume_ref is not None:
            ended, runs = self._resume(study, writer, record)
            todo = max(0, record.trials - ended)
            if todo == 0:
                return Result(record.id, [], {}, note=f"sweep {record.id} already finished: {ended} of "
                                                      f"{count(record.trials, 'trial')} ended; nothing to run")
        record.pid, record.host = os.getpid(), rundir.host()  # who runs it now
        record.save(self.runs_dir)  # only once the study is open
        self._unsaved = None
        if self._lock is not None:
            self._lock.note()
        self._study, self._writer = study, writer  # for _stop_all
        self.where = workdir.place(self.spec.root, self.spec.script, self.runs_dir, self.spec.workdir)
        if self.resume_ref is None and self.spec.enqueue and not study.asked():
            study.enqueue(self.spec.enqueue)  # the flags file's enqueue:, or a rerun's configurations
        warm_note = self._warm_start(study, record.id)
        total = todo * self.spec.repeats
        what = (f"{count(todo, 'configuration')} x {count(self.spec.repeats, 'seed')} = {count(total, 'trial')}"
                if self.spec.repeats > 1 else "")
        self.emit(Event("start", sweep=record.id, total=total, text=what))
        if warm_note:
            self.emit(Event("note", text=warm_note))
        if self.where.note:
            self.emit(Event("note", text=self.where.note))
        counts = {s: 0 for s in ("completed", "failed", "pruned", "interrupted")}
        paths: list[Path] = []
        started = failures = 0
        stopped = reached = None
        slots = list(range(self.jobs))
        while True:
            again = False  # a shared study may hand out a trial again: a dead worker's, re-run
            while not self.interrupted() and stopped is None and (started < todo or self._owed) \
                    and len(self._active) < self.jobs:
                self.launcher.ready()  # the warm launcher may take seconds: an interrupt meanwhile starts nothing
                if self.interrupted():
                    break
                running = self._start(study, writer, record, slots[0])
                if running is None:  # a shared study (or grid) has handed out all its trials
                    again = bool(self._active) or study.pending(self.interrupted)
                    if not again:
                        todo = started
                    break
                slots.pop(0)
                self._active[running.trial.proc.pid] = running
                paths.append(running.trial.path)
                started += running.repeat == 0
            self._tidy()  # while the trials just started run, not between one trial and the next
            if not self._active:
                if again:
                    continue
                break
            self.launcher.wait([r.trial.proc for r in self._active.values()], TICK_S)
            study.tick()
            self._handle_interrupts()
            for pid, running in list(self._active.items()):
                exited = self.launcher.poll(running.trial.proc) is not None  # first: never prune an ended trial
                running.trial.update()
                if not exited:
                    continue
                del self._active[pid]
                slots.append(running.slot)
                outcome = self._end(study, writer, running)
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                if outcome.status == "failed":
                    failures += 1
                    if self.spec.max_failures and failures >= self.spec.max_failures and stopped is None:
                        stopped = (f"stopped after {count(failures, 'failed trial')} "
                                   f"(max_failures {self.spec.max_failures})")
                        self.emit(Event("note", text=stopped))
                if reached is None and running.verdict and target_reached(self.spec, *running.verdict):
                    mean = f" (the mean of its {self.spec.repeats} seeds)" if self.spec.repeats > 1 else ""
                    reached = (f"trial {running.ask.number}{mean} reached the target {self.spec.metric} "
                               f"{self.spec.target:g}")
                    self.emit(Event("note", text=f"{reached}: no more trials start"))
                    todo = started
                self.emit(Event("trial_end", number=running.ask.number, run_id=running.trial.path.name,
                                flags=running.trial.flags, status=outcome.status, value=outcome.value,
                                reason=outcome.reason))
            self.emit(Event("tick"))
        self._tell_unfinished(study)
        record.asked = study.asked()
        record.save(self.runs_dir)
        given = set(study.warm_ids())
        return Result(record.id, paths, counts, interrupted=self.interrupted(), stopped=stopped,
                      earlier=[r.path for r in runs], reached=reached,
                      warm=[r.path for r in self.warm if r.id in given])

    def _tidy(self) -> None:
        """Remove the scratch folders of ended runs (``workdir.cleanup``; the workdir probe's,
        ``workdir.settle``) and fsync the tells no ask has fsync'd yet (``journal.sync``): each
        rmdir and fsync costs milliseconds on a busy disk, so it is done once the next trials
        have started rather than between one trial's end and the next one's start."""
        while self._untidy and self.where is not None:
            workdir.cleanup(self.where, self._untidy.pop())
        workdir.settle()  # the folder of the probe the sweep started ahead (runner)
        journal.sync()  # the study's last asks and tells: here too, off the path between trials

    def _open_sweep(self, state: Path) -> rundir.SweepRecord:
        """The sweep record, new or the one resumed, with the sweep's lock held: one driver per
        sweep, so a resume never races the sweep it resumes (or another resume of it)."""
        state.mkdir(parents=True, exist_ok=True)
        rundir.remove_stale_stages(self.runs_dir)
        if self.resume_ref is None:
            record = rundir.SweepRecord.new(self.spec.path, self.study_name, redact(self.storage_url),
                                            samplers.target(self.spec), search.space_record(self.spec))
            record.parent = self.spec.rerun_of
            self._lock = SweepLock.take(state, record.id)
            self._unsaved = record.id
            return record
        try:
            record = rundir.find_sweep(self.runs_dir, self.resume_ref, self.spec.path)
        except RunNotFound as exc:
            raise SweepError(f"{exc}: nothing to resume") from None
        if record.parent is not None:  # its configurations and seeds came from `sweep rerun`, not the file
            raise SpecError(f"sweep {record.id} is a rerun of sweep {record.parent} and cannot be resumed; "
                            f"to resume {record.parent}, give its id: --resume {record.parent}")
        if isinstance(record.space, dict):
            changes = search.space_changes(record.space, search.space_record(self.spec))
            if changes:
                raise SpecError(f"{self.spec.path}: the search space changed since sweep {record.id} began: "
                                f"{'; '.join(changes)}; --resume needs the same space: start a new sweep instead")
        self._lock = SweepLock.take(state, record.id)
        stored = record.storage
        if not self.storage_url and stored and REDACTED in stored:
            raise SweepError(f"sweep {record.id} uses a storage with a password, which is not "
                             "saved: pass --storage again to resume it")
        self.storage_url = self.storage_url or stored
        if not self.storage_url:
            # Optuna leaves its journal's lock file behind when killed while appending, and waits
            # 30 s before breaking it. The default journal is this sweep's alone, and this sweep's
            # lock is ours: whoever left that file is gone.
            try:
                (state / f"{record.id}.journal.lock").unlink()  # JournalFileSymlinkLock's name
            except FileNotFoundError:
                pass
        return record

    def _warm_start(self, study: search.Search, sweep_id: str) -> str | None:
        """Add the earlier sweeps' fitting runs to the study; the line that says so."""
        runs = [r for r in self.warm if r.sweep != sweep_id]  # a resumed sweep's own runs are its trials
        if not self.warm:
            return None
        added, unfit = study.warm_start(runs)
        sweeps = sorted({r.sweep for r in runs if r.sweep})
        text = (f"warm start: {count(added, 'earlier trial')} from {', '.join(sweeps) or 'no sweep'} "
                f"added to the study (not counted in this sweep's trials)")
        if text_unfit := _misfits(unfit):
            text += f"; {text_unfit}"
        if samplers.uses_grid(self.spec) or self.spec.sampler == "random":
            text += "; random and grid search do not learn from them (use sampler: tpe)"
        return text

    def _resume(self, study: search.Search, writer: rundir.RunWriter,
                record: rundir.SweepRecord) -> tuple[int, list[rundir.Run]]:
        """Settle the study and queue what the sweep owes (``Search.resume``); mark the run
        directories of the trials queued again. Returns how many of its trials ended, and
        its runs from earlier sessions."""
        runs = [r for r in rundir.list_runs(self.runs_dir) if r.sweep == record.id]
        archived = [r for r in rundir.list_runs(self.runs_dir / rundir.ARCHIVE_DIR) if r.sweep == record.id]
        owed = study.resume(runs + archived)
        for run in runs:
            if run.info.get("trial") in owed.rerun and run.status in ("interrupted", "running") \
                    and not run.info.get("resumed"):
                info = dict(run.info, status="interrupted", resumed=True)
                info["reason"] = info.get("reason") or "the sweep process is gone"
                writer.update(run.path, info)
        return owed.ended, runs

    # -------------------------------------------------------------- one trial

    def _start(self, study: search.Search, writer: rundir.RunWriter, record: rundir.SweepRecord,
               slot: int) -> _Running | None:
        if self._owed:
            ask, repeat = self._owed.pop(0)
        else:
            asked = study.ask()
            if asked is None:
                return None
            ask, repeat = asked, 0
            if self.spec.repeats > 1:
                self._owed = [(ask, r) for r in range(1, self.spec.repeats)]
                self._repeats[ask.number] = (ask, [])
        flags = seeds.flags_for(self.spec, ask.flags, repeat)
        gpu = None
        if self.gpus:
            index_ = slot // self.per_gpu
            gpu = self.gpus[index_] if index_ < len(self.gpus) else ""
        info = rundir.RunInfo(
            sweep=record.id, trial=ask.number, start=time.time(), metric=self.spec.metric,
            goal=self.spec.goal, flags_file=str(self.spec.path), launcher=self.launcher.name,
            threads=self.threads, params=ask.params, host=rundir.host(), sweep_pid=os.getpid(),
            versions=self._versions or self._load_versions(), baseline_error=self.spec.baseline_error,
            **rundir.objectives_info(self.spec.objectives, self.spec.constraints),
            preload=list(getattr(self.launcher, "preload", ())) or None,
        )
        if self.spec.seed_flag is not None:
            info.repeat, info.seed_flag = self.spec.first_repeat + repeat, self.spec.seed_flag
        env: dict[str, str] = {}
        argv: list[str] = []
        where = self.where
        assert where is not None

        def fill(stage: Path, path: Path) -> None:
            trials.prepare(stage, path, where, self.snapshot)
            info.workdir = workdir.record(where, path)
            commands.write_inputs(stage, self.spec, flags)
            env.update(trials.environment(path, flags, record.id, ask.number, self.threads, gpu))
            if self.spec.wandb_groups:
                env[wbhook.GROUPS_VAR] = ",".join(self.spec.wandb_groups)
            info.env = trials.recorded_env(env)
            argv.extend(commands.argv(self.spec, flags, path, workdir.program(where, path, self.spec.script)))
            info.command = argv

        # Filled in under a hidden name and published with its run.json: a kill -9 meanwhile
        # leaves no run directory without one (the trial is run again on resume).
        path = writer.create(info, flags, fill)
        job = Job(argv, env, workdir.cwd(where, path), path / rundir.OUTPUT_FILE, self.threads,
                  workdir.setup(where, path))
        try:
            proc = self.launcher.start(job)
        except (OSError, SweepError) as exc:  # the launcher's fault, not the trial's: resume reruns it
            info.status, info.end, info.reason = "interrupted", time.time(), f"could not start: {exc}"
            writer.end(path, info, {})
            try:
                if ask.number not in self._repeats:
                    study.tell(ask, "interrupted")
            except StorageError:
                pass  # the sweep stops on the launcher's error below, which says more
            raise LauncherError(f"could not start trial {ask.number}: {exc}") from None
        info.pid = proc.pid
        trial = trials.Trial(ask.number, flags, path, proc, self.watch,
                             report=lambda value, step: study.report(ask, value, step),
                             start=info.start or time.time())
        self.emit(Event("trial_start", number=ask.number, run_id=path.name, flags=flags))
        return _Running(trial, ask, info, slot, repeat)

    def _load_versions(self) -> dict[str, str]:
        self._versions = rundir.versions()
        return self._versions

    def _handle_interrupts(self) -> None:
        if not self._interrupts:
            return
        now = time.time()
        for running in self._active.values():
            if self._interrupts > 1:
                running.trial.kill("interrupted", now)
            elif running.trial.ending is None:
                running.trial.stop("interrupted", now)

    def _stop_all(self, study: search.Search, writer: rundir.RunWriter, why: str) -> None:
        """Kill the running trials and record each as interrupted (a resume runs it again),
        as far as the record can still be written."""
        now = time.time()
        for running in self._active.values():
            running.trial.kill("interrupted", now)
        procs = [r.trial.proc for r in self._active.values()]
        try:
            while procs and time.time() < now + self.watch.grace:
                if all(self.launcher.poll(p) is not None for p in procs):
                    break
                self.launcher.wait(procs, TICK_S)
        except SweepError:
            pass  # the launcher is gone, and its trials with it
        for running in self._active.values():
            try:
                outcome = self._end(study, writer, running, stopped=f"the sweep stopped: {why}")
            except (OSError, SweepError):
                continue  # its run.json still says running: a resume marks it interrupted
            self.emit(Event("trial_end", number=running.ask.number, run_id=running.trial.path.name,
                            flags=running.trial.flags, status=outcome.status, value=outcome.value,
                            reason=outcome.reason))
        self._active.clear()

    def _end(self, study: search.Search, writer: rundir.RunWriter, running: _Running,
             stopped: str | None = None) -> trials.Outcome:
        outcome = running.trial.finish()
        if not getattr(self.launcher, "tidies", False):
            self._untidy.append(running.trial.path)
        if stopped:
            outcome.status, outcome.reason = "interrupted", stopped
        elif not (running.trial.path / rundir.RUN_FILE).is_file():  # deleted by the trial; made again
            outcome.status = "failed"
            outcome.reason = "its run directory vanished while it ran (deleted by the trial?)"
        info = running.info
        end = time.time()
        info.status, info.end, info.exit_code = outcome.status, end, outcome.exit_code
        info.duration = round(end - running.trial.start, 4)
        info.reason, info.steps, info.error = outcome.reason, outcome.steps, outcome.error
        problems = writer.end(running.trial.path, info, outcome.metrics, running.trial.flags)
        if running.ask.number in self._repeats:
            problems += self._tell_repeat(study, running, outcome)
        else:
            running.verdict = (outcome.status, outcome.value)
            problems += self._tell(study, running.ask, outcome.status, outcome.value,
                                   run_attrs(running.trial.path, outcome.metrics))
        for text in problems:
            self.emit(Event("note", text=text))
        return outcome

    def _tell(self, study: search.Search, ask: search.Ask, status: str, value: float | None,
              attrs: dict[str, Any]) -> list[str]:
        """Tell the study; what it could not take, as notes (the run directory has the result)."""
        try:
            study.tell(ask, status, value, attrs)
        except StorageError as exc:
            if isinstance(exc.__context__, OSError):  # the journal file: going on would tear it
                raise exc.__context__ from None
            return [str(exc)]
        return []

    def _tell_repeat(self, study: search.Search, running: _Running, outcome: trials.Outcome) -> list[str]:
        """One repeat ended: once its configuration's last one has, the study hears the mean of
        them all (one trial per configuration, so TPE models the mean, not a lucky seed)."""
        ask, ended = self._repeats[running.ask.number]
        ended.append((outcome, running.trial.path))
        if len(ended) < self.spec.repeats:
            return []
        del self._repeats[ask.number]
        status, value = running.verdict = seeds.verdict([o.status for o, _ in ended], [o.value for o, _ in ended])
        attrs = {"run_ids": [p.name for _, p in ended], "seeds": self.spec.repeats,
                 "metrics": seeds.mean_metrics([o.metrics for o, _ in ended])}
        return self._tell(study, ask, status, value, attrs)

    def _tell_unfinished(self, study: search.Search) -> None:
        """Configurations whose repeats did not all run (an interrupt, max_failures): owed
        again, so a resume runs them whole."""
        self._owed.clear()
        for ask, _ in list(self._repeats.values()):
            try:
                study.tell(ask, "interrupted")
            except StorageError:
                pass  # its runs say how they ended; a resume settles the study from them
        self._repeats.clear()


def target_reached(spec: SweepSpec, status: str, value: float | None) -> bool:
    """Whether a trial's result reaches the sweep's target (W&B's ``metric.target``): at or
    past it in the goal's direction. With repeats, the result is its configuration's mean,
    known once the last repeat ends: one lucky seed reaches nothing."""
    if spec.target is None or status != "completed" or value is None:
        return False
    return value >= spec.target if spec.goal == "maximize" else value <= spec.target


def run_attrs(path: Path, metrics: dict[str, float]) -> dict[str, Any]:
    """What a trial carries in the study, so optuna-dashboard shows its run: the run id, its
    directory and its final metrics (NaN and inf as words: not every storage takes them)."""
    return {"run_id": path.name, "run_dir": str(path.resolve()),
            "metrics": {k: v if math.isfinite(v) else str(v) for k, v in metrics.items()}}


def _misfits(unfit: list[search.Misfit]) -> str:
    """The completed earlier runs a warm start left out, counted by reason: ``4 runs did not fit
    this space: lr 0.002 outside [0.01, 1.0]; 2 completed runs lacked eval_accuracy``."""
    parts = []
    flags = [m.flags for m in unfit if m.flags]
    if flags:
        how = ":" if len(set(flags)) == 1 else ", e.g."
        parts.append(f"{count(len(flags), 'run')} did not fit this space{how} {flags[0]}")
    lacked: dict[str, int] = {}
    for m in unfit:
        if m.lacked:
            lacked[m.lacked] = lacked.get(m.lacked, 0) + 1
    parts += [f"{count(n, 'completed run')} lacked {name}" for name, n in lacked.items()]
    return "; ".join(parts)
