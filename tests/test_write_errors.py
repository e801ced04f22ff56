"""When the record cannot be written (issue 11, point 10): a disk that fills up mid-sweep, a
read-only runs directory, a trial that deletes its own run directory. Each is one line (or,
for the trial, one failed run), the right exit status, every run written so far whole, and
``--resume`` finishing the sweep afterwards.

The full disk is a real one: a 1 MiB tmpfs mounted for the test (root only; skipped, saying
so, where mounting is not allowed). The read-only directory is ``chattr +i``, which stops
root too (plain permissions do not).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep import rundir, search
from sweep import spec as specs

from helpers import SCRIPTS, project, python_env, run_dirs, sweep_cli

TRAIN = SCRIPTS / "procs" / "train.py"
LRS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def sweep_run(flags_file: Path, runs: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m sweep run`` as its own process: a resume must find the first sweep gone."""
    return subprocess.run([sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs),
                           "--launcher", "spawn", *args], capture_output=True, text=True, env=python_env(),
                          timeout=300)


def assert_whole(runs: Path) -> list[rundir.Run]:
    """Every run readable, every JSON file of it whole."""
    out = []
    for d in run_dirs(runs, by_trial=False):
        run = rundir.read_run(d)
        assert run.status != "broken", (d, run.reason)
        for path in d.glob("*.json"):
            json.loads(path.read_text())
        out.append(run)
    return out


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# the disk fills before the sweep's record, at a run's start, at its end, in the journal
@pytest.mark.parametrize("free_kib", [0, 8, 40, 120])
def test_a_full_disk_stops_the_sweep_in_one_line_and_resume_finishes_it(tmp_path, small_disk, free_kib):
    """The runs directory's disk fills up with two trials running: one line naming the file
    and what to do, exit 1, every run so far whole; once space is freed, the command it names
    (--resume once the sweep's record is written, the same command before) runs every
    combination still owed, each once."""
    flags_file = project(tmp_path / "proj", {"learning_rate": LRS, "num_train_epochs": 2, "epoch_seconds": 0.1},
                         script=TRAIN, sampler="grid", jobs=2)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (1024 - free_kib) * 1024)
    runs = small_disk / "runs"
    first = sweep_run(flags_file, runs)
    assert first.returncode == 1, first.stderr
    line = one_error_line(first.stderr)
    records = rundir.load_sweeps(runs)
    advice = (f"then: sweep run {flags_file} --runs-dir {runs} --resume {records[0].id}" if records
              else "then run the same command again")
    assert re.fullmatch(rf"Error: disk full writing {re.escape(str(runs))}\S*: No space left on device; free "
                        rf"some space, {re.escape(advice)}", line), line
    before = assert_whole(runs)
    assert len(before) < len(LRS), "the disk never filled up"
    assert all(r.status in ("completed", "interrupted") for r in before), [(r.status, r.reason) for r in before]
    if not records:  # no record: nothing may be left that looks like a sweep to resume
        left = sorted(p.name for p in (runs / rundir.STATE_DIR).iterdir())
        assert before == [] and not [name for name in left if name.startswith("s")], left
    if free_kib == 0:
        assert not records

    filler.unlink()
    if records:  # the command the line gives, word for word
        words = shlex.split(advice.removeprefix("then: "))
        assert words[:2] == ["sweep", "run"]
        second = subprocess.run([sys.executable, "-m", "sweep", *words[1:], "--launcher", "spawn"],
                                capture_output=True, text=True, env=python_env(), timeout=300)
    else:
        second = sweep_run(flags_file, runs)
    assert second.returncode == 0, second.stderr
    after = assert_whole(runs)
    assert sorted(r.flags["learning_rate"] for r in after if r.status == "completed") == LRS


def test_a_journal_line_cut_short_is_dropped_on_resume(tmp_path):
    """A full disk can cut the study journal's last append short; Optuna would glue the next
    append to it and refuse the whole journal from then on."""
    (tmp_path / "train.py").write_text("print('eval_accuracy: 1')\n")
    (tmp_path / "flags.yaml").write_text("script: train.py\nflags:\n  lr: {min: 0.1, max: 1.0}\n")
    spec = specs.load(tmp_path / "flags.yaml")
    study = search.Search.open(spec, None, tmp_path, "s1", "s1")
    for _ in range(2):
        study.tell(study.ask(), "completed", 0.5)
    with open(tmp_path / "s1.journal", "ab") as fh:
        fh.write(b'{"op_code":4,"worker_id":"w","tri')
    for _ in range(2):  # a resumed sweep appends, then reads it all back
        study = search.Search.open(spec, None, tmp_path, "s1", "s1")
        study.tell(study.ask(), "completed", 0.5)
    assert study.asked() == 4


# ---------------------------------------------------------------- a read-only runs directory


def test_a_read_only_runs_directory_is_one_line(tmp_path):
    """``chattr +i`` (immutable, even to root): a new runs directory and one that already
    holds a sweep. One line naming the directory, exit 1, nothing written."""
    flags_file = project(tmp_path / "proj", {"learning_rate": [0.1, 0.2]}, script=TRAIN, trials=2)
    fresh, used = tmp_path / "fresh", tmp_path / "used"
    fresh.mkdir()
    assert sweep_cli("run", flags_file, "--runs-dir", used, "--launcher", "spawn").exit_code == 0
    kept = {p.name for p in used.iterdir()}
    locked = [d for d in (fresh, used) if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0]
    if len(locked) < 2:
        pytest.skip("chattr +i is not available here (needs root and a filesystem that has it)")
    try:
        for runs, where in ((fresh, fresh / rundir.STATE_DIR), (used, used)):
            result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
            assert result.exit_code == 1, result.stderr
            assert one_error_line(result.stderr) == f"Error: cannot write {where}: Operation not permitted"
        assert list(fresh.iterdir()) == [] and {p.name for p in used.iterdir()} == kept
    finally:
        for d in locked:
            subprocess.run(["chattr", "-i", str(d)], check=False)


# ---------------------------------------------------------------- a trial deletes its run directory


def test_a_trial_that_deletes_its_run_directory_fails_and_the_sweep_goes_on(tmp_path):
    """``--output_dir=$SWEEP_RUN_DIR --overwrite_output_dir``: the trial deletes its run
    directory (and, saving checkpoints, makes it again). That run fails saying so and is
    whole again; the others complete; --resume then finds the sweep finished."""
    flags_file = project(tmp_path / "proj", {"output_dir": ["checkpoints", "$SWEEP_RUN_DIR"],
                                             "save_strategy": ["no", "epoch"], "overwrite_output_dir": True},
                         script=TRAIN, sampler="grid")
    runs = tmp_path / "runs"
    first = sweep_run(flags_file, runs)
    assert first.returncode == 1 and "Error" not in first.stderr and "Traceback" not in first.stderr, first.stderr
    by_flags = {(r.flags["output_dir"], r.flags["save_strategy"]): r for r in assert_whole(runs)}
    assert len(by_flags) == 4
    for (output_dir, save), run in by_flags.items():
        if output_dir == "checkpoints":
            assert run.status == "completed", run.reason
        else:
            assert run.status == "failed"
            assert run.reason == "its run directory vanished while it ran (deleted by the trial?)"
            assert run.info["exit_code"] == 0  # it ended well: its record did not
            assert (run.path / "checkpoint-1").is_dir() == (save == "epoch")
    second = sweep_run(flags_file, runs, "--resume")
    assert second.returncode == 0 and "already finished" in second.stderr, second.stderr


# ---------------------------------------------------------------- anything else the system refuses


def test_a_report_that_cannot_be_written_is_one_line(tmp_path):
    """The last resort of the CLI: an OSError no layer below turned into a message (here a
    JUnit report given the name of a folder) is one line and exit 1, after the sweep itself
    ran and printed its board."""
    flags_file = project(tmp_path / "proj", {"learning_rate": [0.1]}, script=TRAIN, trials=1)
    report = tmp_path / "reports"
    report.mkdir()
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn",
                       "--junit-xml", report)
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == f"Error: {report}: Is a directory"
    assert len(run_dirs(tmp_path / "runs")) == 1 and "completed" in result.stdout
