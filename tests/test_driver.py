"""The sweep loop in-process: a fake launcher stands in for processes, so the scheduling,
verdicts, pruning, interrupts and storage failures of ``Driver`` are tested without a
subprocess. The study, the run directories and the index are the real ones."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sweep import journal, rundir, search, workdir
from sweep import spec as specs
from sweep.driver import Driver, Event
from sweep.errors import LauncherError, StorageError
from sweep.launch import Job, Process


@dataclass
class Behaviour:
    """What a fake trial does: print ``lines``, log ``history`` (one point per poll), then
    exit with ``code`` (None: run until signalled)."""

    lines: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    code: int | None = 0
    graceful: bool = False  # on SIGTERM, exit 0 instead of dying of it


class FakeProcess(Process):
    def __init__(self, pid: int, job: Job, behaviour: Behaviour) -> None:
        super().__init__(pid)
        self.job = job
        self.behaviour = behaviour
        self.pending = list(behaviour.history)
        self.signals: list[int] = []

    def signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        self.signals.append(sig)
        if sig == signal.SIGKILL or not self.behaviour.graceful:
            self.returncode = -sig
        else:
            self.returncode = 0

    def gone(self) -> bool:
        return self.returncode is not None

    def step(self) -> None:
        """One tick of the fake trial's life: log its next point, or exit."""
        if self.returncode is not None:
            return
        if self.pending:
            rundir.append_jsonl(self.job.output.parent / rundir.METRICS_HISTORY, self.pending.pop(0))
        elif self.behaviour.code is not None:
            self.returncode = self.behaviour.code


class FakeLauncher:
    name = "fake"

    def __init__(self, program: Callable[[Job], Behaviour]) -> None:
        self.program = program
        self.started: list[FakeProcess] = []
        self.most_at_once = 0
        self.closed = False

    def ready(self) -> None:
        pass

    def start(self, job: Job) -> Process:
        behaviour = self.program(job)
        with open(job.output, "a") as out:
            out.write("".join(line + "\n" for line in behaviour.lines))
        proc = FakeProcess(4_000_000 + len(self.started), job, behaviour)
        self.started.append(proc)
        running = sum(p.returncode is None for p in self.started)
        self.most_at_once = max(self.most_at_once, running)
        return proc

    def poll(self, proc: Process) -> int | None:
        return proc.returncode

    def wait(self, procs: list[Process], timeout: float) -> None:
        for proc in procs:
            assert isinstance(proc, FakeProcess)
            proc.step()

    def close(self) -> None:
        self.closed = True


def flags_of(job: Job) -> dict[str, Any]:
    return json.loads(job.env["SWEEP_FLAGS"])


def make_spec(tmp_path: Path, text: str) -> specs.SweepSpec:
    (tmp_path / "train.py").write_text("print('never run')\n")
    path = tmp_path / "flags.yaml"
    path.write_text("script: train.py\n" + text)
    return specs.load(path)


def sweep(tmp_path: Path, text: str, program: Callable[[Job], Behaviour], **options: Any):
    spec = make_spec(tmp_path, text)
    launcher = FakeLauncher(program)
    events: list[Event] = []
    driver = Driver(spec, tmp_path / "runs", launcher, on_event=events.append, **options)
    result = driver.run()
    runs = {r.info["trial"]: r for r in rundir.list_runs(tmp_path / "runs")}
    return result, runs, events, launcher


def accuracy_is_lr(job: Job) -> Behaviour:
    return Behaviour(lines=["epoch 1", f"eval_accuracy: {flags_of(job)['lr']}"])


def test_every_trial_runs_once_and_is_recorded(tmp_path):
    result, runs, events, launcher = sweep(tmp_path, "trials: 4\nseed: 1\nflags:\n  lr: [0.1, 0.2, 0.3, 0.4]\n",
                                           accuracy_is_lr)
    assert result.counts == {"completed": 4, "failed": 0, "pruned": 0, "interrupted": 0}
    assert sorted(runs) == [0, 1, 2, 3]
    assert sorted(r.flags["lr"] for r in runs.values()) == [0.1, 0.2, 0.3, 0.4]  # a finite space: no repeats
    for run in runs.values():
        assert run.status == "completed" and run.metrics["eval_accuracy"] == run.flags["lr"]
        assert run.info["launcher"] == "fake" and run.info["exit_code"] == 0
        assert run.info["command"][-1] == f"--lr={run.flags['lr']}"
    kinds = [e.kind for e in events if e.kind != "tick"]
    assert kinds[0] == "start" and kinds.count("trial_start") == 4 and kinds.count("trial_end") == 4
    assert not launcher.closed  # the launcher is the caller's to close


def test_jobs_bound_the_trials_running_at_once(tmp_path):
    slow = lambda job: Behaviour(history=[{"step": i, "eval_accuracy": 0.5} for i in range(3)])  # noqa: E731
    result, runs, _, launcher = sweep(tmp_path, "trials: 6\njobs: 2\nflags:\n  lr: {min: 0.1, max: 1.0}\n", slow)
    assert launcher.most_at_once == 2
    assert result.counts["completed"] == 6 and len(runs) == 6


def test_a_failing_trial_says_why_and_max_failures_stops_the_sweep(tmp_path):
    crash = lambda job: Behaviour(lines=["Traceback (most recent call last):", "ValueError: boom"], code=1)  # noqa: E731
    result, runs, events, _ = sweep(tmp_path, "trials: 10\nmax_failures: 3\nflags:\n  lr: {min: 0.1, max: 1.0}\n",
                                    crash)
    assert result.counts["failed"] == 3 and len(runs) == 3
    assert result.stopped == "stopped after 3 failed trials (max_failures 3)"
    run = runs[0]
    assert run.status == "failed" and run.reason == "exit code 1: ValueError: boom"
    assert run.info["error"].splitlines()[-1] == "ValueError: boom"
    assert any(e.kind == "note" and e.text == result.stopped for e in events)


def test_a_trial_without_the_metric_fails(tmp_path):
    quiet = lambda job: Behaviour(lines=["done"])  # noqa: E731
    _, runs, _, _ = sweep(tmp_path, "trials: 1\nflags:\n  lr: 0.1\n", quiet)
    assert runs[0].status == "failed"
    assert runs[0].reason == "reported no eval_accuracy (print 'eval_accuracy: VALUE' or call sweep.log)"


def test_the_pruner_stops_a_trial_that_falls_behind(tmp_path):
    def program(job: Job) -> Behaviour:
        good = flags_of(job)["lr"] > 0.5
        curve = [{"step": s, "eval_accuracy": (0.9 if good else 0.1)} for s in range(20)]
        return Behaviour(history=curve)

    text = ("trials: 12\nseed: 3\npruner: {name: median, startup_trials: 2, warmup_steps: 1}\n"
            "flags:\n  lr: [0.2, 0.9]\n  unit: {min: 1, max: 100, int: true}\n")
    result, runs, _, launcher = sweep(tmp_path, text, program)
    pruned = [r for r in runs.values() if r.status == "pruned"]
    assert pruned and all(r.flags["lr"] == 0.2 for r in pruned)
    assert all(r.reason.startswith("pruned at step ") for r in pruned)
    assert result.counts["pruned"] == len(pruned) and result.counts["completed"] + len(pruned) == 12
    by_run = {p.job.output.parent.name: p for p in launcher.started}
    assert all(by_run[r.path.name].signals[0] == signal.SIGTERM for r in pruned)


def test_an_interrupt_stops_running_trials_and_starts_no_more(tmp_path):
    spec = make_spec(tmp_path, "trials: 5\njobs: 2\nflags:\n  lr: {min: 0.1, max: 1.0}\n")
    launcher = FakeLauncher(lambda job: Behaviour(code=None))
    driver: Driver

    def on_event(event: Event) -> None:
        if event.kind == "trial_start" and event.number == 1:
            driver.interrupt()

    driver = Driver(spec, tmp_path / "runs", launcher, on_event=on_event)
    result = driver.run()
    assert result.interrupted and result.counts["interrupted"] == 2
    assert len(launcher.started) == 2
    assert all(p.signals == [signal.SIGTERM] for p in launcher.started)
    statuses = {r.status for r in rundir.list_runs(tmp_path / "runs")}
    assert statuses == {"interrupted"}


def test_a_launcher_that_cannot_start_stops_and_the_run_is_left_to_resume(tmp_path):
    """The launcher's failure, not the trial's: the run is interrupted, so a resume reruns it."""
    class Broken(FakeLauncher):
        def start(self, job: Job) -> Process:
            raise LauncherError("the warm launcher (pid 12) died: killed by SIGKILL")

    spec = make_spec(tmp_path, "trials: 3\nflags:\n  lr: 0.1\n")
    with pytest.raises(LauncherError, match="could not start trial 0: the warm launcher .* died"):
        Driver(spec, tmp_path / "runs", Broken(accuracy_is_lr)).run()
    [run] = rundir.list_runs(tmp_path / "runs")
    assert run.status == "interrupted" and run.reason.startswith("could not start: ")


def test_a_storage_failure_is_reported_and_the_run_kept(tmp_path, monkeypatch):
    def refuse(self, ask, status, value=None, attrs=None):
        raise StorageError("could not record trial 0 in the study: disk I/O error")

    monkeypatch.setattr(search.Search, "tell", refuse)
    result, runs, events, _ = sweep(tmp_path, "trials: 1\nflags:\n  lr: 0.3\n", accuracy_is_lr)
    assert runs[0].status == "completed" and runs[0].metrics["eval_accuracy"] == 0.3
    notes = [e.text for e in events if e.kind == "note"]
    assert notes == ["could not record trial 0 in the study: disk I/O error"]


def test_resume_reruns_the_interrupted_trial_with_its_flags(tmp_path):
    text = "trials: 3\nseed: 5\nflags:\n  lr: {min: 0.1, max: 1.0}\n"
    spec = make_spec(tmp_path, text)
    calls = {"n": 0}

    def first(job: Job) -> Behaviour:
        calls["n"] += 1
        return Behaviour(code=None) if calls["n"] == 2 else accuracy_is_lr(job)

    driver: Driver

    def on_event(event: Event) -> None:
        if event.kind == "trial_end" and event.number == 0:
            driver.interrupt()  # trial 1 is running by now: it is interrupted

    runs_dir = tmp_path / "runs"
    driver = Driver(spec, runs_dir, FakeLauncher(first), on_event=on_event, )
    driver.jobs = 2
    first_result = driver.run()
    assert first_result.interrupted
    before = {r.info["trial"]: r for r in rundir.list_runs(runs_dir)}
    lost = [r for r in before.values() if r.status == "interrupted"]
    assert len(lost) == 1
    second = Driver(spec, runs_dir, FakeLauncher(accuracy_is_lr), resume="last").run()
    assert second.sweep == first_result.sweep
    after = rundir.list_runs(runs_dir)
    done = [r for r in after if r.status == "completed"]
    assert len(done) == 3
    assert lost[0].flags["lr"] in [r.flags["lr"] for r in done]  # run again with the same flags
    assert [r for r in after if r.path == lost[0].path][0].info["resumed"] is True


def test_resuming_a_finished_sweep_runs_nothing(tmp_path):
    spec = make_spec(tmp_path, "trials: 2\nflags:\n  lr: [0.1, 0.2]\n")
    Driver(spec, tmp_path / "runs", FakeLauncher(accuracy_is_lr)).run()
    launcher = FakeLauncher(accuracy_is_lr)
    result = Driver(spec, tmp_path / "runs", launcher, resume="last").run()
    assert result.note and "already finished: 2 of 2 trials ended; nothing to run" in result.note
    assert launcher.started == []


def test_an_ended_runs_scratch_folders_go_once_the_next_trial_has_started(tmp_path, monkeypatch):
    """Removing a few empty folders costs milliseconds an rmdir on a busy disk: done while the
    next trial runs, never between one trial's end and the next one's start; all by the end,
    with the study's journal fsync'd."""
    order: list[str] = []
    real = workdir.cleanup
    monkeypatch.setattr(workdir, "cleanup", lambda where, run: (order.append(f"tidy {run.name}"), real(where, run)))

    def program(job: Job) -> Behaviour:
        order.append(f"start {Path(job.env['SWEEP_RUN_DIR']).name}")
        return accuracy_is_lr(job)

    result, runs, _, _ = sweep(tmp_path, "trials: 3\nseed: 1\nflags:\n  lr: [0.1, 0.2, 0.3]\n", program)
    names = [runs[n].path.name for n in range(3)]
    order = [o for o in order if not o.startswith("tidy workdir-probe")]  # the sweep's one probe
    assert not journal._UNSYNCED  # the study's journal fsync'd by the sweep's end
    assert order == [f"start {names[0]}", f"start {names[1]}", f"tidy {names[0]}", f"start {names[2]}",
                     f"tidy {names[1]}", f"tidy {names[2]}"]


def test_each_run_keeps_the_source_it_ran_linked_not_copied_while_unchanged(tmp_path):
    """The source snapshot is copied once and hard-linked into the next runs, read-only (issue
    17: two copies a trial were part of its overhead). The script edited mid-sweep: the runs
    from then on hold the new source, the earlier ones keep theirs. The flags file edited
    mid-sweep: every run keeps the file as the sweep read it, the only one any run used."""
    edited = "print('eval_accuracy: 0.9')\n"
    text = "trials: 4\nseed: 1\nflags:\n  lr: [0.1, 0.2, 0.3, 0.4]\n"

    def program(job: Job) -> Behaviour:
        if job.env["SWEEP_TRIAL"] == "1":  # the user saves the script and the flags file while trial 1 runs
            (tmp_path / "train.py").write_text(edited)
            (tmp_path / "flags.yaml").write_text(text.replace("trials: 4", "trials: 2").replace("0.1", "0.9"))
        return accuracy_is_lr(job)

    result, runs, _, _ = sweep(tmp_path, text, program)
    assert result.counts["completed"] == 4
    scripts = [runs[n].path / rundir.SOURCE_DIR / "train.py" for n in range(4)]
    flags_files = [runs[n].path / rundir.SOURCE_DIR / "flags.yaml" for n in range(4)]
    assert [p.read_text() for p in scripts] == ["print('never run')\n"] * 2 + [edited] * 2
    inodes = [p.stat().st_ino for p in scripts]
    assert inodes[0] == inodes[1] != inodes[2] == inodes[3]
    assert len({p.stat().st_ino for p in flags_files}) == 1
    read = flags_files[0].read_text()
    assert "lr: [0.1, 0.2, 0.3, 0.4]" in read and "trials: 4" in read
    assert all(p.read_text() == read for p in flags_files)
    assert not any(p.stat().st_mode & 0o222 for p in scripts + flags_files)
