"""Resuming a sweep (issue 11, points 6, 7, 8 and 10): one driver per sweep at a time; the
study, not the run directories that ``clean`` may move, says what a resumed sweep still owes;
a trial half created by a kill -9 inside Optuna's ``ask`` is settled and no grid point goes
to two jobs; a flags file whose search space was edited is not resumed.

The loop runs in-process with test_driver's fake launcher (no processes, real study and run
directories); the lock's real case, two sweep processes and a kill -9, runs real processes.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from test_driver import Behaviour, FakeLauncher, flags_of, make_spec

from sweep import manage, rundir
from sweep import spec as specs
from sweep.driver import Driver, Event, Result
from sweep.errors import SweepError
from sweep.launch import Job
from sweep.lock import SweepLock

from helpers import SCRIPTS, killed_on_exit, project, python_env, run_dirs, sweep_cli, wait_for

GRID = "sampler: grid\njobs: 2\nflags:\n  a: [1, 2, 3]\n  b: [x, y]\n"
EVERY = sorted(itertools.product([1, 2, 3], ["x", "y"]))


def ok(job: Job) -> Behaviour:
    flags = flags_of(job)
    return Behaviour(lines=[f"eval_accuracy: {0.5 + flags.get('a', 0) / 10}"])


def everything(runs: Path) -> list[rundir.Run]:
    """Every run the sweep made: those in the runs directory and those clean archived."""
    return rundir.list_runs(runs) + rundir.list_runs(runs / rundir.ARCHIVE_DIR)


def interrupted_sweep(tmp_path: Path, text: str) -> tuple[Result, Path]:
    """A sweep stopped by Ctrl-C with one trial completed, one failed and two running: the
    running two end ``interrupted``."""
    spec = make_spec(tmp_path, text)
    runs = tmp_path / "runs"
    started: list[Job] = []

    def program(job: Job) -> Behaviour:
        started.append(job)
        return [ok(job), Behaviour(lines=["RuntimeError: boom"], code=1)][len(started) - 1] \
            if len(started) <= 2 else Behaviour(code=None)

    driver: Driver

    def on_event(event: Event) -> None:
        if event.kind == "trial_start" and event.number == 3:
            driver.interrupt()

    driver = Driver(spec, runs, FakeLauncher(program), on_event=on_event)
    result = driver.run()
    assert result.interrupted and result.counts == {"completed": 1, "failed": 1, "pruned": 0, "interrupted": 2}
    return result, runs


# ---------------------------------------------------------------- 7. clean between Ctrl-C and --resume


def test_clean_between_interrupt_and_resume_still_runs_each_combination_once(tmp_path):
    first, runs = interrupted_sweep(tmp_path, GRID)
    assert len(manage.clean(runs, [], failed=True)) == 3  # the failed run and both interrupted ones
    launcher = FakeLauncher(ok)
    second = Driver(make_spec(tmp_path, GRID), runs, launcher, resume="last").run()
    assert second.sweep == first.sweep and not second.interrupted
    assert len(launcher.started) == 4  # the 2 interrupted combinations and the 2 never started
    ended = [(r.flags["a"], r.flags["b"]) for r in everything(runs) if r.status in rundir.ENDED]
    assert sorted(ended) == EVERY  # each combination ran to an end exactly once
    again = Driver(make_spec(tmp_path, GRID), runs, FakeLauncher(ok), resume="last").run()
    assert again.note == f"sweep {first.sweep} already finished: 6 of 6 trials ended; nothing to run"


def test_clean_between_interrupt_and_resume_keeps_a_random_sweeps_count_and_reruns(tmp_path):
    text = "trials: 5\nseed: 4\njobs: 2\nflags:\n  lr: {min: 0.1, max: 1.0}\n"
    _, runs = interrupted_sweep(tmp_path, text)
    lost = sorted(r.flags["lr"] for r in rundir.list_runs(runs) if r.status == "interrupted")
    manage.clean(runs, [], failed=True)
    launcher = FakeLauncher(ok)
    Driver(make_spec(tmp_path, text), runs, launcher, resume="last").run()
    again = sorted(flags_of(p.job)["lr"] for p in launcher.started)
    assert len(again) == 3  # 5 asked for: 1 completed, 1 failed (archived, still counts), 3 to go
    assert set(lost) <= set(again)  # the interrupted flags ran again
    assert sum(r.status in rundir.ENDED for r in everything(runs)) == 5


# ---------------------------------------------------------------- 8. half-created trials


def study_of(runs: Path, sweep_id: str) -> optuna.Study:
    (record,) = [r for r in rundir.load_sweeps(runs) if r.id == sweep_id]
    journal = runs / rundir.STATE_DIR / f"{sweep_id}.journal"
    return optuna.load_study(study_name=record.study,
                             storage=JournalStorage(JournalFileBackend(str(journal))))


def test_half_created_trials_are_settled_and_no_grid_point_goes_to_two_jobs(tmp_path):
    """The states a kill -9 inside ``study.ask`` leaves, written straight into the journal: a
    RUNNING trial with nothing drawn, one the grid sampler had given a point but no params
    yet, and a queued trial popped but not yet asked."""
    spec = make_spec(tmp_path, GRID)
    runs = tmp_path / "runs"
    driver: Driver

    def on_event(event: Event) -> None:
        if event.kind == "trial_end" and event.number == 1:
            driver.interrupt()

    driver = Driver(spec, runs, FakeLauncher(ok), on_event=on_event)
    driver.jobs = 1
    first = driver.run()
    done = [(r.flags["a"], r.flags["b"]) for r in rundir.list_runs(runs)]
    assert len(done) == 2

    study = study_of(runs, first.sweep)
    storage, study_id = study._storage, study._study_id
    storage.create_new_trial(study_id)  # killed before anything was drawn
    half = storage.create_new_trial(study_id)  # killed inside GridSampler: a point, no params
    storage.set_trial_system_attr(half, "search_space", {"a": [1, 2, 3], "b": ["x", "y"]})
    storage.set_trial_system_attr(half, "grid_id", 5)
    todo = [c for c in EVERY if c not in done]
    study.enqueue_trial({"a": todo[0][0], "b": todo[0][1]})  # killed right after the queue's pop
    (queued,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    storage.set_trial_state_values(queued._trial_id, optuna.trial.TrialState.RUNNING)

    launcher = FakeLauncher(ok)
    Driver(spec, runs, launcher, resume=first.sweep).run()  # jobs: 2
    assert launcher.most_at_once == 2
    ran = sorted((flags_of(p.job)["a"], flags_of(p.job)["b"]) for p in launcher.started)
    assert ran == todo  # each point owed, once, whichever job asked for it
    ended = [(r.flags["a"], r.flags["b"]) for r in rundir.list_runs(runs) if r.status in rundir.ENDED]
    assert sorted(ended) == EVERY
    assert not study_of(runs, first.sweep).get_trials(states=(optuna.trial.TrialState.RUNNING,
                                                               optuna.trial.TrialState.WAITING))


# ---------------------------------------------------------------- 6. one driver per sweep


def test_a_second_driver_of_a_running_sweep_refuses_naming_the_first(tmp_path):
    spec = make_spec(tmp_path, "trials: 2\nflags:\n  a: [1, 2]\n")
    runs = tmp_path / "runs"
    seen: dict[str, Any] = {}

    def on_event(event: Event) -> None:
        if event.kind == "start":
            seen["sweep"] = event.sweep
        elif event.kind == "trial_start" and event.number == 0:
            second = FakeLauncher(ok)
            with pytest.raises(SweepError) as refused:
                Driver(spec, runs, second, resume=seen["sweep"]).run()
            seen["message"], seen["started"] = str(refused.value), second.started

    result = Driver(spec, runs, FakeLauncher(ok), on_event=on_event).run()
    assert seen["message"] == (f"sweep {result.sweep} is already running: pid {os.getpid()} on "
                               f"{rundir.host()}; one sweep has one driver at a time")
    assert seen["started"] == [] and result.counts["completed"] == 2
    after = Driver(spec, runs, FakeLauncher(ok), resume="last").run()  # the lock went with the driver
    assert after.note and "already finished" in after.note


def test_the_lock_takes_no_disk_block_until_the_sweep_record_is_saved(tmp_path):
    """On a nearly full disk the sweep's record must come first (else --resume finds nothing):
    the lock file stays empty until the driver notes who it is."""
    lock = SweepLock.take(tmp_path, "s1")
    assert (tmp_path / "s1.lock").stat().st_size == 0
    with pytest.raises(SweepError, match="sweep s1 is already running: another process is starting it"):
        SweepLock.take(tmp_path, "s1")
    lock.note()
    with pytest.raises(SweepError, match=f"sweep s1 is already running: pid {os.getpid()} on "):
        SweepLock.take(tmp_path, "s1")
    lock.release()
    SweepLock.take(tmp_path, "s1").release()  # free again once released


def start_sweep(flags_file: Path, runs: Path, *args: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs),
           "--launcher", "spawn", *args]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=python_env())


def running_trials(runs: Path) -> int:
    return sum((d / "trial.pid").exists() and rundir.read_run(d).status == "running"
               for d in run_dirs(runs, by_trial=False))


def test_resume_of_a_live_sweep_refuses_and_a_dead_drivers_lock_is_taken_over(tmp_path):
    flags_file = project(tmp_path / "proj", {"a": [1, 2, 3, 4], "sleep": 0.6},
                         script=SCRIPTS / "reliability" / "trial.py", trials=4, seed=1)
    runs = tmp_path / "runs"
    with killed_on_exit(start_sweep(flags_file, runs, log=tmp_path / "first.log")) as first:
        assert wait_for(lambda: running_trials(runs) == 1, first), (tmp_path / "first.log").read_text()
        (sweep_id,) = [r.id for r in rundir.load_sweeps(runs)]
        before = run_dirs(runs, by_trial=False)
        refused = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--resume", "last")
        assert refused.exit_code == 1
        assert refused.stderr == (f"Error: sweep {sweep_id} is already running: pid {first.pid} on "
                                  f"{rundir.host()}; one sweep has one driver at a time\n")
        assert run_dirs(runs, by_trial=False) == before
        os.kill(first.pid, signal.SIGKILL)
        first.wait()

    with killed_on_exit(start_sweep(flags_file, runs, "--resume", log=tmp_path / "second.log")) as second:
        # The dead driver's lock is taken over; while the new driver lives, it holds it.
        assert wait_for(lambda: running_trials(runs) == 1, second), (tmp_path / "second.log").read_text()
        refused = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--resume", sweep_id)
        assert refused.exit_code == 1 and f"pid {second.pid} on" in refused.stderr
        assert second.wait(60) == 0, (tmp_path / "second.log").read_text()
    completed = sorted(r.flags["a"] for r in rundir.list_runs(runs) if r.status == "completed")
    assert completed == [1, 2, 3, 4]


# ---------------------------------------------------------------- 10. an edited search space

SPACE = {"lr": [0.1, 0.2], "dropout": {"min": 0.0, "max": 0.5}, "epochs": 3}


@pytest.fixture
def unfinished(tmp_path) -> Path:
    """A project whose sweep was interrupted after the first of its three trials."""
    root = tmp_path / "proj"
    spec = specs.load(project(root, SPACE, trials=3, seed=2))
    driver: Driver

    def on_event(event: Event) -> None:
        if event.kind == "trial_end":
            driver.interrupt()

    driver = Driver(spec, root / "runs", FakeLauncher(ok), on_event=on_event)
    assert driver.run().counts["completed"] == 1
    return root


EDITS = [
    pytest.param({**SPACE, "lr": [0.1, 0.3]}, [],
                 "lr was one of [0.1, 0.2], now one of [0.1, 0.3]", id="values"),
    pytest.param({**SPACE, "dropout": {"min": 0.0, "max": 0.6}}, [],
                 "dropout was float range 0.0..0.5, now float range 0.0..0.6", id="range"),
    pytest.param({**SPACE, "hidden": [16, 32]}, [], "hidden added (one of [16, 32])", id="added"),
    pytest.param({k: v for k, v in SPACE.items() if k != "dropout"}, [],
                 "dropout removed (was float range 0.0..0.5)", id="removed"),
    pytest.param({**SPACE, "epochs": [3, 5]}, [], "epochs added (one of [3, 5])", id="fixed-now-searched"),
    pytest.param(SPACE, ["--set", "lr=[0.1,0.2,0.4]"], "lr was one of [0.1, 0.2], now one of [0.1, 0.2, 0.4]",
                 id="values-by-set"),
]


@pytest.mark.parametrize("flags,options,change", EDITS)
def test_resume_after_the_search_space_was_edited_refuses_and_runs_nothing(unfinished, flags, options, change):
    flags_file = project(unfinished, flags, trials=3, seed=2)
    runs = unfinished / "runs"
    before = run_dirs(runs, by_trial=False)
    (record,) = rundir.load_sweeps(runs)
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--resume", "last", *options)
    assert result.exit_code == 2, result.stderr
    assert result.stderr == (f"Error: {flags_file}: the search space changed since sweep {record.id} began: "
                             f"{change}; --resume needs the same space: start a new sweep instead\n")
    assert run_dirs(runs, by_trial=False) == before


def test_resume_with_the_same_space_goes_on(unfinished):
    """A fixed flag is not searched: changing it (fix what made trials fail, then resume)
    leaves the space as it was."""
    flags_file = project(unfinished, {**SPACE, "epochs": 4}, trials=3, seed=2)
    result = sweep_cli("run", flags_file, "--runs-dir", unfinished / "runs", "--launcher", "spawn", "--resume", "last")
    assert result.exit_code == 0, result.stderr
    assert sum(r.status == "completed" for r in rundir.list_runs(unfinished / "runs")) == 3
