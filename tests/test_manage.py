"""``sweep clean`` and ``sweep purge`` when the file system says no, and after a purge was
killed: one line and exit 1, each run moved whole or not at all, and the next purge finishes
what a killed one left. Both touch only what sweep made: never a TensorBoard folder beside the
runs, even one an older clean moved into the archive.

A read-only runs directory is made read-only for real: ``chattr +i`` when the tests run as
root (root ignores permission bits, not the immutable flag), else ``chmod``; the kernel then
refuses the mkdir or rename, exactly as on a read-only mount.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sweep import rundir

from helpers import ls_json, one_error_line, sweep_cli

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


# ---------------------------------------------------------------- only what sweep made


def tensorboard_folder(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What ``SummaryWriter()`` leaves when the user runs their script by hand from the project
    folder: ``runs/<Mon><DD>_<HH-MM-SS>_<host>/events.out.tfevents...``, right inside sweep's
    default runs directory. The real writer when tensorboard is installed, else a folder of the
    same name shape and contents."""
    monkeypatch.chdir(project_dir)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        folder = Path("runs") / f"{time.strftime('%b%d_%H-%M-%S')}_{socket.gethostname()}"
        folder.mkdir(parents=True)
        # One TFRecord (length, crc, payload, crc) holding the file_version event.
        payload = b"\t\x00\x00\x00\x00\x00\x00\x00\x00\x1a\rbrain.Event:2"
        record = struct.pack("<Q", len(payload)) + b"\x00" * 4 + payload + b"\x00" * 4
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.0"
        (folder / name).write_bytes(record)
    else:
        writer = SummaryWriter()
        writer.add_scalar("loss", 0.25, 0)
        writer.close()
        folder = Path(writer.log_dir)
    return (project_dir / folder).resolve()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_clean_and_purge_leave_a_tensorboard_folder_alone(runs, monkeypatch):
    board_dir = tensorboard_folder(runs.parent, monkeypatch)
    assert board_dir.parent == runs.resolve()
    before = snapshot(board_dir)
    # An older sweep's clean moved another one into the archive: purge must keep it too.
    moved_earlier = runs / rundir.ARCHIVE_DIR / "Nov30_06-36-58_host"
    shutil.copytree(board_dir, moved_earlier)

    listed = sweep_cli("ls", "--runs-dir", runs, "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    assert board_dir.name not in listed.stdout  # not a run: no row, broken or not
    assert listed.stderr == f"not runs, left alone: {board_dir.name}\n"

    result = sweep_cli("clean", "--failed", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (f"archived 2 runs to {runs / rundir.ARCHIVE_DIR}\n"
                             f"not runs, left alone: {board_dir.name}\n")
    assert sweep_cli("clean", "--all", "--runs-dir", runs).exit_code == 0
    named = sweep_cli("clean", board_dir.name, "--runs-dir", runs)
    assert named.exit_code == 1 and "no run matches" in named.stderr

    result = sweep_cli("purge", "--yes", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "deleted 2 archived runs\n"
    assert snapshot(board_dir) == before
    assert snapshot(moved_earlier) == before
    assert sorted(p.name for p in (runs / rundir.ARCHIVE_DIR).iterdir()) == [moved_earlier.name]


def test_a_run_proves_sweep_made_it_even_when_broken(runs):
    """The proof is the run-id name plus the marker written before the run was published (or,
    for runs made before the marker, their run.json): a run whose record a crash or its own
    trial damaged is still cleaned; a folder merely named like a run is not."""
    garbled, legacy = run_names(runs)
    (runs / garbled / "run.json").write_bytes(b'{"id": "2024')  # torn
    (runs / legacy / rundir.RUN_MARKER).unlink()  # made before the marker existed
    lost = runs / rundir.new_id()  # its trial deleted run.json; the marker stays
    shutil.copytree(runs / garbled, lost)
    (lost / "run.json").unlink()
    impostor = runs / rundir.new_id()  # named like a run, but sweep never made it
    impostor.mkdir()
    (impostor / "notes.txt").write_text("mine")

    rows = {r["id"]: r for r in ls_json(runs)}
    assert set(rows) == {garbled, legacy, lost.name}
    assert rows[garbled]["status"] == rows[lost.name]["status"] == "broken"
    assert rows[legacy]["status"] == "failed"

    result = sweep_cli("clean", "--failed", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [f"archived 3 runs to {runs / rundir.ARCHIVE_DIR}",
                                          f"not runs, left alone: {impostor.name}"]
    assert sorted(p.name for p in (runs / rundir.ARCHIVE_DIR).iterdir()) == sorted([garbled, legacy, lost.name])
    assert (impostor / "notes.txt").read_text() == "mine"
