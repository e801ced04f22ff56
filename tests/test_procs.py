"""Processes (issue 11, points 9 and 10): what a trial starts ends with it, under both
launchers, whether the trial exits, the sweep is interrupted or the sweep is killed -9; a
killed warm server is one line that says so; a command line too long for exec fails only its
trial.

Trials run tests/scripts/procs/train.py, which starts TensorBoard three ways scripts do (a
plain Popen, a Popen in a new session, ``setsid nohup ... &`` from a shell that exits at once)
and never stops them. A fake ``tensorboard`` on PATH records ``<trial>-<pid>-<ppid>`` in
``$SWEEP_TEST_PIDS`` and sleeps: the test then knows every process to look for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sweep import launch, rundir, track
from sweep import trial as trials
from sweep.errors import LauncherError

from helpers import SCRIPTS, killed_on_exit, project, python_env, run_dirs, survivors, sweep_cli, wait_for

TRAIN = SCRIPTS / "procs" / "train.py"
OURS = (b"sleep", b"train.py", b"forkserver", b"tensorboard")  # what a sweep here starts
LONG = {"num_train_epochs": 600, "epoch_seconds": 0.1}  # a trial that runs until stopped
FAKE_TENSORBOARD = """#!/bin/sh
# Stands in for TensorBoard: says who it is, then serves until killed.
: > "$SWEEP_TEST_PIDS/$SWEEP_TRIAL-$$-$PPID"
exec sleep 45
"""


def tensorboard_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment with the fake tensorboard first on PATH, and where it records itself."""
    bin_dir, pids = tmp_path / "bin", tmp_path / "pids"
    bin_dir.mkdir()
    pids.mkdir()
    fake = bin_dir / "tensorboard"
    fake.write_text(FAKE_TENSORBOARD)
    fake.chmod(0o755)
    return python_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", SWEEP_TEST_PIDS=str(pids)), pids


def started(pids: Path, trial: int | None = None) -> set[int]:
    """Every process the trials started (or trial ``trial`` did), and their parents."""
    out = set()
    for entry in pids.iterdir():
        number, pid, ppid = (int(x) for x in entry.name.split("-"))
        if trial is None or number == trial:
            out |= {pid, ppid}
    return out


def sweep_process(tmp_path: Path, flags_file: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """``python -m sweep run`` as a real process, its output in files."""
    out, err = open(tmp_path / "sweep.out", "wb"), open(tmp_path / "sweep.err", "wb")
    with out, err:
        return subprocess.Popen([sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir",
                                 str(tmp_path / "runs"), *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, env=env)


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return {int(p) for p in fh.read().split()}


LAUNCHERS = [pytest.param("spawn", id="spawn"), pytest.param("fork", id="fork")]


# ---------------------------------------------------------------- 9. a trial's processes


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_what_a_trial_started_ends_with_it(tmp_path, launcher):
    """Two trials one after the other, each leaving three TensorBoards running: the first
    one's are gone while the second runs, and the second one's when the sweep exits 0."""
    env, pids = tensorboard_env(tmp_path)
    flags_file = project(tmp_path / "proj", {"learning_rate": [0.1, 0.2], "tensorboard": "all",
                                             "num_train_epochs": 3, "epoch_seconds": 0.4},
                         script=TRAIN, sampler="grid", jobs=1)
    with killed_on_exit(sweep_process(tmp_path, flags_file, env, "--launcher", launcher)) as proc:
        assert wait_for(lambda: len(list(pids.iterdir())) == 6, proc, timeout=120), \
            (tmp_path / "sweep.err").read_text()
        assert not survivors(started(pids, 0), command=OURS), "trial 0's processes outlived it"
        assert proc.wait(timeout=120) == 0, (tmp_path / "sweep.err").read_text()
    assert not survivors(started(pids), within=0.5, command=OURS), "processes outlived the sweep"


@pytest.mark.parametrize("launcher", [pytest.param("spawn", id="spawn"),
                                      pytest.param("fork", id="fork", marks=pytest.mark.slow)])  # torch's import
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, id="ctrl-c"), pytest.param(signal.SIGKILL, id="kill-9")])
def test_nothing_a_trial_started_outlives_its_sweep(tmp_path, launcher, sig):
    """Ctrl-C or kill -9 of the sweep while the trial trains: the trial, its TensorBoard in
    its group, the one in a session of its own and the setsid'd grandchild all end."""
    env, pids = tensorboard_env(tmp_path)
    flags_file = project(tmp_path / "proj", {"tensorboard": "all", **LONG}, script=TRAIN, trials=1)
    with killed_on_exit(sweep_process(tmp_path, flags_file, env, "--launcher", launcher)) as proc:
        assert wait_for(lambda: len(list(pids.iterdir())) == 3, proc, timeout=120), \
            (tmp_path / "sweep.err").read_text()
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    left = survivors(started(pids), command=OURS)
    assert not left, f"{sorted(left)} outlived the sweep by more than 5 s"


# ---------------------------------------------------------------- 10. the warm server killed


def test_a_killed_warm_launcher_is_one_line_and_takes_its_trials_along(tmp_path):
    """kill -9 of the fork server with two trials running: one line that says the warm
    launcher died and how, the running trials recorded interrupted (a resume runs them
    again), every file whole, and nothing they started left alive."""
    env, pids = tensorboard_env(tmp_path)
    flags_file = project(tmp_path / "proj", {"learning_rate": [0.1, 0.2, 0.3, 0.4], "tensorboard": "all", **LONG},
                         script=TRAIN, trials=4, jobs=2)
    with killed_on_exit(sweep_process(tmp_path, flags_file, env, "--launcher", "fork")) as proc:
        assert wait_for(lambda: len(list(pids.iterdir())) == 6, proc, timeout=120), \
            (tmp_path / "sweep.err").read_text()
        server = {p for p in children_of(proc.pid) if b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(server) == 1
        os.kill(server.pop(), signal.SIGKILL)
        assert proc.wait(timeout=60) == 1
    err = (tmp_path / "sweep.err").read_text()
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("Error: ") and "the warm launcher (pid " in errors[0], errors
    assert errors[0].endswith("died: killed by SIGKILL; try --launcher spawn"), errors
    runs = [rundir.read_run(d) for d in run_dirs(tmp_path / "runs")]
    assert len(runs) == 2
    for run in runs:
        assert run.info["status"] == "interrupted", run.info  # written by the sweep, not inferred
        assert run.reason.startswith("the sweep stopped: the warm launcher (pid "), run.reason
        for path in run.path.glob("*.json"):
            json.loads(path.read_text())
    assert not survivors(started(pids), command=OURS)


def test_a_dying_server_s_last_words_are_in_the_error():
    """A server that dies saying why (a traceback on its stderr): its last lines are in the
    one-line error, not lost and not "see messages above"."""

    class Talkative(launch.ForkLauncher):
        def _command(self) -> list[str]:
            return [sys.executable, "-c", "import sys; sys.stderr.write('Traceback (most recent call "
                    "last):\\nMemoryError: cannot allocate 2 GiB\\n'); sys.exit(1)"]

    launcher = Talkative()
    try:
        with pytest.raises(LauncherError) as caught:
            launcher.ready()
    finally:
        launcher.close()
    assert str(caught.value) == (
        f"the warm launcher (pid {launcher._server.pid}) died: exit status 1; its last words: "
        "Traceback (most recent call last): | MemoryError: cannot allocate 2 GiB; try --launcher spawn")


# ---------------------------------------------------------------- 10. too long for exec


def test_a_flag_too_long_for_exec_fails_only_its_trials(tmp_path):
    """A 200 KB prompt under the spawn launcher: those trials fail, each saying why and what
    to do; the others complete; the sweep goes on to the end with no error line."""
    prompt = "Once upon a time " * 12_000  # 204,000 characters
    flags_file = project(tmp_path / "proj", {"learning_rate": [0.1, 0.2], "prompt": ["Hello", prompt]},
                         script=TRAIN, sampler="grid")
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn")
    assert result.exit_code == 1, result.stderr
    assert "Error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    runs = [rundir.read_run(d) for d in run_dirs(tmp_path / "runs")]
    assert sorted((r.flags["prompt"] == prompt, r.status) for r in runs) == [
        (False, "completed"), (False, "completed"), (True, "failed"), (True, "failed")]
    for run in runs:
        if run.status == "failed":
            assert run.reason == (
                f"could not start: argument list too long (one argument is {len(prompt) + 9} bytes; Linux "
                f"takes at most {launch.MAX_ARG_STRLEN} in one): pass long values in a file, with command: "
                "[${interpreter}, ${program}, ${args_json_file}] or a fixed value the script reads from a file")
            assert "Argument list too long" in (run.path / "output.log").read_text()


def test_flags_too_long_for_the_environment_are_read_from_flags_json(tmp_path, monkeypatch):
    """SWEEP_FLAGS longer than one environment string would make every exec inside the trial
    fail (a data-loader worker, ``git rev-parse``): it is left out, and sweep.flags() reads
    the run's flags.json instead."""
    flags = {"prompt": "x" * 200_000, "lr": 0.1}
    env = trials.environment(tmp_path, flags, "s1", 0, 1)
    assert "SWEEP_FLAGS" not in env and env["SWEEP_RUN_DIR"] == str(tmp_path.resolve())
    assert "SWEEP_FLAGS" in trials.environment(tmp_path, {"prompt": "x" * 1000, "lr": 0.1}, "s1", 0, 1)
    (tmp_path / rundir.FLAGS_FILE).write_text(json.dumps(flags))
    monkeypatch.delenv("SWEEP_FLAGS", raising=False)
    monkeypatch.setenv("SWEEP_RUN_DIR", str(tmp_path))
    assert dict(track.flags(prompt="", lr=0.01)) == flags
