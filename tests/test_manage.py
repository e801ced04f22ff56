"""``sweep clean`` and ``sweep purge`` when the file system says no, and after a purge was
killed: one line and exit 1, each run moved whole or not at all, and the next purge finishes
what a killed one left.

A read-only runs directory is made read-only for real: ``chattr +i`` when the tests run as
root (root ignores permission bits, not the immutable flag), else ``chmod``; the kernel then
refuses the mkdir or rename, exactly as on a read-only mount.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sweep import rundir

from helpers import one_error_line, sweep_cli

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def failed_runs(tmp_path_factory) -> Path:
    """A runs directory with two failed runs, made by a real sweep."""
    root = tmp_path_factory.mktemp("failed")
    shutil.copy(SCRIPTS / "probe.py", root / "probe.py")
    flags = root / "flags.yaml"
    flags.write_text(yaml.safe_dump({"script": "probe.py", "sampler": "grid",
                                     "flags": {"mode": ["crash"], "dropout": [0.1, 0.2]}}))
    result = sweep_cli("run", flags, "--runs-dir", root / "runs", "--launcher", "spawn")
    assert result.exit_code == 1, result.output
    return root / "runs"


@pytest.fixture
def runs(failed_runs, tmp_path) -> Path:
    return Path(shutil.copytree(failed_runs, tmp_path / "runs", symlinks=True))


def run_names(runs: Path) -> list[str]:
    return sorted(p.name for p in runs.iterdir() if rundir.is_run_name(p.name))


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` refuses new entries, removals and renames, even to root."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], check=False, capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a directory read-only")
        undo = ["chattr", "-i", str(path)]
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        undo = None
    try:
        try:
            (path / ".probe").mkdir()
        except OSError:
            pass
        else:
            (path / ".probe").rmdir()
            pytest.skip(f"{path} still takes new entries")
        yield
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            path.chmod(mode)


REFUSED = ("operation not permitted", "permission denied", "read-only file system")


@pytest.mark.parametrize("archive_exists", [False, True], ids=["no-archive", "archive-exists"])
def test_clean_on_a_read_only_runs_directory_is_one_line(runs, archive_exists):
    archive = runs / rundir.ARCHIVE_DIR
    if archive_exists:
        archive.mkdir()
    before = run_names(runs)
    assert len(before) == 2
    with read_only(runs):
        result = sweep_cli("clean", "--failed", "--runs-dir", runs)
    line = one_error_line(result, 1)
    reason = line.rsplit(": ", 1)[-1].split(";")[0]
    assert reason in REFUSED, line
    if archive_exists:
        assert line == f"Error: cannot archive {before[0]} into {archive}: {reason}; nothing was moved"
    else:
        assert line == f"Error: cannot archive into {archive}: {reason}; nothing was moved"
    assert run_names(runs) == before
    assert not archive.exists() or not any(archive.iterdir())
    for name in before:
        assert (runs / name / "run.json").is_file()


def test_clean_that_fails_halfway_moves_each_run_whole_and_says_how_far_it_got(runs):
    first, second = run_names(runs)
    with read_only(runs / second):  # this one cannot be renamed (moved)
        result = sweep_cli("clean", "--failed", "--runs-dir", runs)
    archive = runs / rundir.ARCHIVE_DIR
    line = one_error_line(result, 1)
    reason = line.rsplit(": ", 1)[-1].split(";")[0]
    assert reason in REFUSED, line
    assert line == (f"Error: cannot archive {second} into {archive}: {reason}; "
                    "1 of 2 runs archived before it")
    assert (archive / first / "run.json").is_file() and not (runs / first).exists()
    assert (runs / second / "run.json").is_file() and not (archive / second).exists()


def test_purge_on_a_read_only_runs_directory_is_one_line(runs):
    assert sweep_cli("clean", "--failed", "--runs-dir", runs).exit_code == 0
    archive = runs / rundir.ARCHIVE_DIR
    archived = sorted(p.name for p in archive.iterdir())
    with read_only(runs):
        result = sweep_cli("purge", "--yes", "--runs-dir", runs)
    line = one_error_line(result, 1)
    reason = line.rsplit(": ", 1)[-1].split(";")[0]
    assert reason in REFUSED, line
    assert line == f"Error: cannot purge {archive}: {reason}; nothing was deleted"
    assert sorted(p.name for p in archive.iterdir()) == archived


# ---------------------------------------------------------------- a purge killed midway


def leftover_trash(runs: Path, name: str | None = None) -> Path:
    """What a purge killed between its rename and the end of its delete leaves: a hidden
    trash folder holding archived runs, some of them half deleted."""
    trash = runs / (name or f".trash-{rundir.new_id()}")
    trash.mkdir()
    for run in run_names(runs):
        shutil.copytree(runs / run, trash / run)
    (trash / run_names(runs)[0] / "run.json").unlink()
    return trash


def test_a_purge_finishes_what_a_killed_purge_left_even_with_nothing_archived(runs):
    trash = leftover_trash(runs)
    before = run_names(runs)
    result = sweep_cli("purge", "--runs-dir", runs)  # nothing archived: it asks nothing
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"nothing to purge in {runs / rundir.ARCHIVE_DIR}\n"
    assert not trash.exists()
    assert run_names(runs) == before


def test_a_purge_finishes_a_killed_purge_and_deletes_the_archive(runs):
    trash = leftover_trash(runs)
    assert sweep_cli("clean", "--failed", "--runs-dir", runs).exit_code == 0
    result = sweep_cli("purge", "--yes", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "deleted 2 archived runs\n"
    assert not trash.exists() and not (runs / rundir.ARCHIVE_DIR).exists()
    assert [p.name for p in runs.iterdir() if p.name.startswith(".trash-")] == []


def test_purge_leaves_trash_it_did_not_make(runs, tmp_path):
    """Only folders named as purge names them, and never through a symlink."""
    mine = leftover_trash(runs, ".trash-photos")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    link = runs / f".trash-{rundir.new_id()}"
    link.symlink_to(outside, target_is_directory=True)
    result = sweep_cli("purge", "--yes", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert mine.is_dir() and link.is_symlink() and (outside / "keep.txt").read_text() == "keep"
