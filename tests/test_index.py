"""The leaderboard's index: a sweep notes each ended run, `sweep ls` folds the notes into its
index, and what ls shows is always what the run directories say, whoever changed them: with a
warm index, every format and option writes exactly what a listing from the files alone does."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sweep import board, index, render, rundir, sections
from sweep.index import INDEX_FILE, INDEX_NOTES, OLD_INDEX

from helpers import SCRIPTS, ls_json, project, sweep_cli

SCRIPT = SCRIPTS / "reliability" / "trial.py"


def sweep_once(root: Path, runs: Path, trials: int = 4, **flags: Any) -> None:
    flags_file = project(root, flags or {"x": {"min": 0.0, "max": 1.0}}, script=SCRIPT, trials=trials, seed=3)
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs),
                           "--launcher", "spawn"], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr


def ls(runs: Path) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in ls_json(runs)}


def from_scratch(runs: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    """What ls says of a copy with no index and no notes: the run directories alone."""
    bare = tmp / "bare"
    shutil.rmtree(bare, ignore_errors=True)
    shutil.copytree(runs, bare, symlinks=True, ignore=shutil.ignore_patterns(".sweep"))
    rows = ls(bare)
    for row in rows.values():
        row["dir"] = row["dir"].replace(str(bare), str(runs))
    return rows


def notes(runs: Path) -> list[Path]:
    folder = runs / rundir.STATE_DIR / INDEX_NOTES
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_note_never_outlives_a_change_to_its_run(tmp_path):
    runs = tmp_path / "runs"
    sweep_once(tmp_path / "proj", runs, trials=4)
    names = sorted(p.name for p in runs.iterdir() if not p.name.startswith("."))
    changed, deleted = runs / names[0], runs / names[1]
    rundir.write_json(changed / rundir.METRICS_FILE, {"eval_accuracy": 0.123456})
    shutil.rmtree(deleted)

    rows = ls(runs)
    assert rows[changed.name]["eval_accuracy"] == 0.123456
    assert deleted.name not in rows
    assert rows == from_scratch(runs, tmp_path)


def test_a_note_read_from_a_copy_points_at_its_own_directory(tmp_path):
    """A runs directory copied elsewhere, notes and all, lists its own paths."""
    runs = tmp_path / "runs"
    sweep_once(tmp_path / "proj", runs, trials=3)
    moved = tmp_path / "moved"
    shutil.copytree(runs, moved, symlinks=True)
    rows = ls(moved)
    assert all(row["dir"] == os.path.join(str(moved), run_id) for run_id, row in rows.items())
    assert rows == ls(moved)


# ---------------------------------------------------------------- a runs directory of every kind

LATER = 3 * 2_000_000_000  # how far past its runs' ends a sweep's last note is written


def write_run(runs: Path, notes: index.Notes, trial: int, status: str, flags: dict[str, Any],
              metrics: dict[str, float], **info: Any) -> Path:
    """A run as a sweep leaves it: rundir's own writer, with the sweep's notes as a store."""
    run = rundir.RunInfo(sweep=notes.file.rpartition("/")[2][:-6], trial=trial, status=status,
                         start=1_700_000_000.0 + 37.25 * trial, duration=12.5 + trial, steps=100 * trial,
                         host=rundir.host(), sweep_pid=os.getpid(), **info)
    writer = rundir.RunWriter(runs, [notes])
    path = writer.create(run, flags, lambda stage, path: None)
    if status != "running":
        run.end = run.start + run.duration
        writer.end(path, run, metrics)
    return path


QUICK_RACY = 100_000_000  # the racy window here: 0.1 s (a file system clock ticks in ms or less)


@pytest.fixture(autouse=True)
def quick_racy_window(monkeypatch):
    monkeypatch.setattr(index, "RACY_NS", QUICK_RACY)


def age(runs: Path, seconds: float = 60.0) -> None:
    """Every run ended ``seconds`` ago, and the runs directory last changed then too; then
    the racy window waited out, as setting an mtime is itself a change (the ctime says now)."""
    then = time.time_ns() - int(seconds * 1e9)
    for path in runs.iterdir():
        if rundir.is_run_name(path.name):
            os.utime(path, ns=(then, then))
    os.utime(runs, ns=(then, then))
    time.sleep(1.5 * index.RACY_NS / 1e9)


def mixed_runs(runs: Path) -> dict[str, Path]:
    """Completed, failed, pruned, running and broken runs of three sweeps (one with two
    objectives and a constraint), flags that differ between sweeps, NaN and inf metrics,
    unicode, a comma and a quote in values, and a folder that is no run."""
    cls = index.Notes(runs, "s20260101T000000Z-aaaa")
    made = {
        "best": write_run(runs, cls, 0, "completed", {"lr": 0.001, "batch-size": 64, "optimizer": "adamw"},
                          {"eval_accuracy": 0.9325, "eval_loss": 0.21, "train_loss": 0.1234567891}),
        "nan": write_run(runs, cls, 1, "completed", {"lr": 0.1, "batch-size": 32, "optimizer": "sgd"},
                         {"eval_accuracy": math.nan, "eval_loss": math.inf, "train_loss": 2.5}),
        "failed": write_run(runs, cls, 2, "failed", {"lr": 0.01, "batch-size": 32, "optimizer": "sgd"},
                            {"train_loss": 1.75}, reason="RuntimeError: CUDA out of memory — ошибка ✗",
                            exit_code=1),
        "pruned": write_run(runs, cls, 3, "pruned", {"lr": 0.003, "batch-size": 128, "optimizer": "adamw"},
                            {"eval_accuracy": 0.41, "eval_loss": 1.1}, reason="pruned at step 3"),
        "running": write_run(runs, cls, 4, "running", {"lr": 0.0003, "batch-size": 64, "optimizer": "adamw"}, {}),
    }
    reg = index.Notes(runs, "s20260102T000000Z-bbbb")
    for trial, (dropout, act) in enumerate([(0.1, "relu"), (0.5, 'gelu, "tanh"'), (0.3, "λ-relu")]):
        made[f"reg{trial}"] = write_run(runs, reg, trial, "completed", {"dropout": dropout, "activation": act,
                                        "model.depth": 2 + trial}, {"eval_loss": 0.5 - dropout / 10,
                                        "eval_accuracy": 0.8 + dropout / 10}, metric="eval_loss", goal="minimize")
    two = index.Notes(runs, "s20260103T000000Z-cccc")
    for trial, (acc, ms) in enumerate([(0.9, 30.0), (0.85, 12.0), (0.95, 45.0), (0.7, 8.0)]):
        made[f"pareto{trial}"] = write_run(
            runs, two, trial, "completed", {"width": 16 << trial}, {"eval_accuracy": acc, "latency_ms": ms},
            metric="eval_accuracy", goal="maximize",
            **rundir.objectives_info([("eval_accuracy", "maximize"), ("latency_ms", "minimize")], ["latency_ms < 40"]))
    broken = write_run(runs, cls, 5, "completed", {"lr": 0.2, "batch-size": 8, "optimizer": "sgd"},
                       {"eval_accuracy": 0.5})
    (broken / rundir.RUN_FILE).write_text("{ torn")
    made["broken"] = broken
    (runs / "tensorboard").mkdir()
    (runs / "tensorboard" / "events.out.tfevents").write_bytes(b"\0")
    age(runs)
    for notes in (cls, reg, two):
        notes.flush(time.time_ns())
    return made


def plain_runs(runs: Path) -> None:
    """Runs of one sweep with one objective: what the index serves without a board."""
    notes = index.Notes(runs, "s20260104T000000Z-dddd")
    for trial, acc in enumerate([0.5, 0.75, math.nan, 0.75, math.inf, 0.125]):
        write_run(runs, notes, trial, "completed", {"lr": 10 ** -(1 + trial % 3), "hidden": 16 * (trial % 2 + 1)},
                  {"eval_accuracy": acc, "eval_loss": 1.0 / (trial + 1)}, metric="eval_accuracy", goal="maximize")
    write_run(runs, notes, 6, "failed", {"lr": 0.5, "hidden": 16}, {}, reason="ValueError: loss is nan", exit_code=1)
    age(runs)


def from_files(runs: Path, monkeypatch: pytest.MonkeyPatch, *args: Any) -> tuple[int, str, str]:
    """``sweep ls`` from the run directories alone: no index read or written, rows built one
    value at a time (what ls wrote before it had an index)."""
    with monkeypatch.context() as patch:
        patch.setattr(index, "listing", lambda runs_dir, want=(), ahead=None: None)
        patch.setattr(index, "list_runs", rundir.list_runs)
        result = sweep_cli("ls", "--runs-dir", runs, *args)
    return result.exit_code, result.stdout, result.stderr


def ls_cli(runs: Path, *args: Any) -> tuple[int, str, str]:
    result = sweep_cli("ls", "--runs-dir", runs, *args)
    return result.exit_code, result.stdout, result.stderr


FORMATS = ("table", "csv", "json", "markdown")
OPTIONS = [
    [], ["--sort", "eval_accuracy"], ["--sort", "eval_loss"], ["--sort", "eval_loss", "--asc"],
    ["--sort", "flag_lr", "--top", "3"], ["--sort", "status"], ["--sort", "dir", "--asc"], ["--sort", "id"],
    ["--sort", "latency_ms"], ["--top", "2"], ["--where", "flag_lr>0.002"], ["--status", "completed,failed"],
    ["--sweep", "s20260102"], ["--group"], ["--pareto"], ["--columns", "id,eval_accuracy,flag_dropout"],
    ["--baseline-error", "0.1"], ["--gap", "0.2"], ["--sort", "nope"], ["--sort", "pareto"],
]


@pytest.mark.parametrize("args", OPTIONS, ids=lambda a: " ".join(a) or "default")
def test_ls_with_a_warm_index_writes_what_the_run_directories_say(tmp_path, monkeypatch, args):
    runs = tmp_path / "runs"
    mixed_runs(runs)
    plain = tmp_path / "plain"
    plain_runs(plain)
    for folder in (runs, plain):
        for fmt in FORMATS:
            want = from_files(folder, monkeypatch, *args, "--format", fmt)
            assert ls_cli(folder, *args, "--format", fmt) == want  # the first: notes folded, index written
            assert (folder / rundir.STATE_DIR / INDEX_FILE).is_file()
            assert ls_cli(folder, *args, "--format", fmt) == want  # warm


def watch(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The run folders ls stats (each by name in the open runs directory) and the runs
    directories it lists; a read of any run's files fails the test."""
    stats: list[str] = []
    listed: list[str] = []
    real_lstat, real_entries = os.lstat, rundir.run_entries
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: stats.append(os.fspath(path)) or real_lstat(path, *a, **k))
    monkeypatch.setattr(rundir, "run_entries",
                        lambda runs, *a, **k: listed.append(str(runs)) or real_entries(runs, *a, **k))
    monkeypatch.setattr(rundir, "read_run", lambda path: pytest.fail(f"read {path}"))
    return stats, listed


def test_a_warm_ls_stats_each_run_directory_once_and_reads_no_file_of_an_ended_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    plain_runs(runs)
    want = from_files(runs, monkeypatch, "--sort", "eval_accuracy", "--format", "csv")
    assert ls_cli(runs, "--sort", "eval_accuracy", "--format", "csv") == want
    (runs / rundir.STATE_DIR / index.FOLDER_FILE).unlink(missing_ok=True)  # the runs directory is listed
    with monkeypatch.context() as patch:
        stats, listed = watch(patch)
        made: list[str] = []
        real_text = render.listing_text
        patch.setattr(render, "listing_text", lambda *a: made.append("text") or real_text(*a))
        patch.setattr(render, "write_listing", lambda *a: pytest.fail("the text made ahead was not used"))
        assert ls_cli(runs, "--sort", "eval_accuracy", "--format", "csv") == want
    assert listed == [str(runs)] and made == ["text"]  # made once, ahead, while the runs were stat
    assert sorted(stats) == sorted(p.name for p in runs.iterdir() if rundir.is_run_name(p.name))


def test_a_runs_directory_past_the_racy_window_is_listed_once_then_only_its_runs_are_stat(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    plain_runs(runs)
    (runs / "tensorboard").mkdir()
    want = from_files(runs, monkeypatch, "--sort", "eval_accuracy", "--format", "table")
    assert ls_cli(runs, "--sort", "eval_accuracy", "--format", "table") == want  # makes .sweep: a change
    age(runs)
    assert ls_cli(runs, "--sort", "eval_accuracy", "--format", "table") == want  # notes it listed it all
    assert (runs / rundir.STATE_DIR / index.FOLDER_FILE).is_file()
    for _ in range(2):
        with monkeypatch.context() as patch:
            stats, listed = watch(patch)
            assert ls_cli(runs, "--sort", "eval_accuracy", "--format", "table") == want
        assert listed == [] and sorted(stats) == sorted(p.name for p in runs.iterdir() if rundir.is_run_name(p.name))
    assert "tensorboard" in want[2]  # left alone, said from the note as from a listing


def a_folder_sweep_never_made_named_as_a_run(runs: Path, path: Path | None = None) -> Path:
    folder = runs / rundir.new_id()
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    return folder


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"format": "sweep ls folder 1", "index": 7}',
                                    b'{"format": "sweep ls folder 1", "index": "x", "folder": [1, 2, 3]}'])
def test_a_damaged_or_foreign_folder_note_is_no_error(tmp_path, monkeypatch, damage):
    runs = tmp_path / "runs"
    plain_runs(runs)
    ls_cli(runs, "--format", "csv")
    age(runs)
    want = ls_cli(runs, "--format", "csv")
    assert (runs / rundir.STATE_DIR / index.FOLDER_FILE).is_file()
    (runs / rundir.STATE_DIR / index.FOLDER_FILE).write_bytes(damage)
    assert ls_cli(runs, "--format", "csv") == want == from_files(runs, monkeypatch, "--format", "csv")


def test_a_folder_named_as_a_run_that_is_none_keeps_the_runs_directory_listed(tmp_path, monkeypatch):
    """Files put in it later could make it a run without a change to the runs directory."""
    runs = tmp_path / "runs"
    plain_runs(runs)
    folder = a_folder_sweep_never_made_named_as_a_run(runs)
    for _ in range(3):
        assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")
        age(runs)
    assert not (runs / rundir.STATE_DIR / index.FOLDER_FILE).exists()
    donor = sorted(p for p in runs.iterdir() if rundir.is_run_name(p.name) and p != folder)[0]
    for name in (rundir.RUN_FILE, rundir.FLAGS_FILE, rundir.METRICS_FILE):
        shutil.copy(donor / name, folder / name)
    got = ls_cli(runs, "--format", "csv")
    assert folder.name in got[1] and got == from_files(runs, monkeypatch, "--format", "csv")


def change_metrics(runs: Path, path: Path) -> None:
    rundir.write_json(path / rundir.METRICS_FILE, {"eval_accuracy": 0.987654321, "eval_loss": 0.01})


def change_status(runs: Path, path: Path) -> None:
    info = json.loads((path / rundir.RUN_FILE).read_text())
    rundir.write_json(path / rundir.RUN_FILE, {**info, "status": "failed", "reason": "killed by the OOM killer"})


def new_flag(runs: Path, path: Path) -> None:  # a column no run had: every cached row's text changes
    rundir.write_json(path / rundir.FLAGS_FILE, {"lr": 0.001, "hidden": 16, "warmup": 500})


def delete(runs: Path, path: Path) -> None:
    shutil.rmtree(path)


def replace_folder(runs: Path, path: Path) -> None:
    """Another run's folder put in this one's place, its mtime made the old one's: only the
    inode tells."""
    other = sorted(p for p in runs.iterdir() if rundir.is_run_name(p.name) and p != path)[0]
    st = os.stat(path)
    shutil.rmtree(path)
    shutil.copytree(other, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def replace_folder_and_set_back_the_runs_directory(runs: Path, path: Path) -> None:
    """As ``replace_folder``, the runs directory's mtime set back too: its ctime tells."""
    st = os.stat(runs)
    replace_folder(runs, path)
    os.utime(runs, ns=(st.st_atime_ns, st.st_mtime_ns))


def rename_run(runs: Path, path: Path) -> None:
    path.rename(runs / rundir.new_id())


def add_run(runs: Path, path: Path) -> None:
    write_run(runs, index.Notes(runs, "s20260105T000000Z-eeee"), 0, "completed", {"lr": 0.2, "hidden": 64},
              {"eval_accuracy": 0.99, "eval_loss": 0.001}, metric="eval_accuracy", goal="maximize")


def end_running(runs: Path, path: Path) -> None:
    notes = index.Notes(runs, "s20260105T000000Z-ffff")
    running = write_run(runs, notes, 1, "running", {"lr": 0.02, "hidden": 32}, {})
    assert ls_cli(runs, "--format", "csv")[0] == 0  # listed while running, read fresh
    info = rundir.RunInfo(sweep="s20260105T000000Z-ffff", trial=1, status="completed", start=1_700_000_500.0,
                          end=1_700_000_510.0, duration=10.0, metric="eval_accuracy", goal="maximize")
    info.id = running.name
    rundir.RunWriter(runs, [notes]).end(running, info, {"eval_accuracy": 0.66})


@pytest.mark.parametrize("change", [change_metrics, change_status, new_flag, delete, replace_folder,
                                    replace_folder_and_set_back_the_runs_directory, rename_run, add_run,
                                    end_running, a_folder_sweep_never_made_named_as_a_run])
def test_a_change_to_a_run_shows_in_the_next_ls(tmp_path, monkeypatch, change):
    monkeypatch.setattr(index, "SPLIT", 2)  # a forked child stats runs from the last one down
    monkeypatch.setattr(index, "CHUNK", 2)
    runs = tmp_path / "runs"
    plain_runs(runs)
    for _ in range(2):  # the first makes .sweep, and so changes the runs directory
        assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")
        age(runs)
    assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")
    assert (runs / rundir.STATE_DIR / index.FOLDER_FILE).is_file()  # the runs directory is not listed again
    target = sorted(p for p in runs.iterdir() if rundir.is_run_name(p.name))[2]
    change(runs, target)
    for args in (["--format", "csv"], ["--sort", "eval_accuracy"], ["--format", "json"]):
        assert ls_cli(runs, *args) == from_files(runs, monkeypatch, *args)
    age(runs)  # and once the change is past the racy window, from the index
    for args in (["--format", "csv"], ["--sort", "eval_accuracy"], ["--format", "json"]):
        assert ls_cli(runs, *args) == from_files(runs, monkeypatch, *args)
        assert ls_cli(runs, *args) == from_files(runs, monkeypatch, *args)


def kept(runs: Path) -> list[str]:
    """The runs whose rows the index keeps."""
    found = sections.SectionFile(str(runs / rundir.STATE_DIR / INDEX_FILE), index.INDEX_FORMAT)
    try:
        return found.get("names", found.head["rows"], str)
    finally:
        found.close()


def test_a_run_younger_than_the_racy_window_is_read_again_until_it_is_past_it(tmp_path, monkeypatch):
    """Git's racy rule: a change within the same tick of the file system's clock as ls's read
    would leave the directory's stamp as ls recorded it, so a row that young is not kept."""
    monkeypatch.setattr(index, "RACY_NS", 1_500_000_000)  # room for a loaded machine between write and ls
    runs = tmp_path / "runs"
    old = write_run(runs, index.Notes(runs, "s20260106T000000Z-abcd"), 0, "completed", {"lr": 0.1},
                    {"eval_accuracy": 0.5})
    age(runs)  # ended a minute ago
    young = write_run(runs, index.Notes(runs, "s20260106T000000Z-abcd"), 1, "completed", {"lr": 0.2},
                      {"eval_accuracy": 0.25})  # ended just now
    assert [r["eval_accuracy"] for r in ls_json(runs, "--sort", "eval_accuracy")] == [0.5, 0.25]
    assert kept(runs) == [old.name]
    age(runs)
    assert [r["eval_accuracy"] for r in ls_json(runs, "--sort", "eval_accuracy")] == [0.5, 0.25]
    assert sorted(kept(runs)) == sorted([old.name, young.name])


@pytest.mark.parametrize("damage", [
    b"", b"\x80\x81 not json\n", b'{"format": "sweep ls index 3", "rows": 3}\n[1,2]',
    b'{"format": "sweep ls index 3", "rows": 1, "columns": [], "sections": [["names", 99]]}\n["x"]',
    b'{"format": "sweep ls index 3", "rows": 2, "columns": [], "sections": [["names", 9]]}\nL\x00a\nb\nc',
])
def test_a_damaged_index_is_ignored_and_written_again(tmp_path, monkeypatch, damage):
    runs = tmp_path / "runs"
    plain_runs(runs)
    want = from_files(runs, monkeypatch, "--sort", "eval_accuracy")
    assert ls_cli(runs, "--sort", "eval_accuracy") == want
    (runs / rundir.STATE_DIR / INDEX_FILE).write_bytes(damage)
    assert ls_cli(runs, "--sort", "eval_accuracy") == want
    assert (runs / rundir.STATE_DIR / INDEX_FILE).read_bytes().startswith(b'{"format":"sweep ls index 3"')
    assert ls_cli(runs, "--sort", "eval_accuracy") == want


def test_a_damaged_section_found_late_is_no_error(tmp_path, monkeypatch):
    """Sections are parsed when asked for: one damaged deep in the file, as a foreign tool
    might leave it, still gives the listing from the files."""
    runs = tmp_path / "runs"
    plain_runs(runs)
    want = from_files(runs, monkeypatch, "--format", "csv")
    assert ls_cli(runs, "--format", "csv") == want
    path = runs / rundir.STATE_DIR / INDEX_FILE
    data = path.read_bytes()
    head = json.loads(data.split(b"\n", 1)[0])
    at = len(data.split(b"\n", 1)[0]) + 1 + sum(size for name, size in head["sections"][:[n for n, _ in
                                                  head["sections"]].index("csv_pre")])
    path.write_bytes(data[:at] + b"[" + data[at + 1:])  # csv_pre: no longer a list of texts
    assert ls_cli(runs, "--format", "csv") == want


def test_the_old_index_is_ignored_and_removed(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    plain_runs(runs)
    state = runs / rundir.STATE_DIR
    state.mkdir(exist_ok=True)
    (state / OLD_INDEX).write_text(json.dumps({"format": 1, "runs": {}}))
    want = from_files(runs, monkeypatch, "--format", "csv")
    assert ls_cli(runs, "--format", "csv") == want
    assert not (state / OLD_INDEX).exists() and (state / INDEX_FILE).is_file()


def notes_of(runs: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for note in notes(runs) for line in note.read_text().splitlines()]


def test_a_sweep_notes_each_run_once_past_the_racy_window_and_ls_folds_the_notes(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    sweep_id = "s20260107T000000Z-0a0a"
    notes_store = index.Notes(runs, sweep_id)
    made = [write_run(runs, notes_store, t, "completed", {"lr": 0.1 * (t + 1)}, {"eval_accuracy": t / 4})
            for t in range(4)]
    assert notes_of(runs) == []  # just ended: a change within the clock's tick would go unseen
    notes_store.flush(time.time_ns() + LATER)  # a later run's end, seconds on
    assert [n["name"] for n in notes_of(runs)] == [p.name for p in made]

    want = from_files(runs, monkeypatch, "--format", "json")
    read: list[Path] = []
    real = rundir.read_run
    monkeypatch.setattr(rundir, "read_run", lambda path: read.append(path) or real(path))
    assert ls_cli(runs, "--format", "json") == want
    assert read == [] and notes(runs) == []  # folded into the index, no run opened
    assert ls_cli(runs, "--format", "json") == want and read == []


def test_a_note_of_a_run_changed_after_it_was_noted_is_not_used(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    notes_store = index.Notes(runs, "s20260108T000000Z-0b0b")
    path = write_run(runs, notes_store, 0, "completed", {"lr": 0.1}, {"eval_accuracy": 0.25})
    notes_store.flush(time.time_ns() + LATER)
    change_metrics(runs, path)
    assert ls_json(runs)[0]["eval_accuracy"] == 0.987654321
    assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")


def test_notes_from_two_sweeps_junk_lines_and_an_ls_that_died_mid_fold(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for sweep_id in ("s20260109T000000Z-0c0c", "s20260110T000000Z-0d0d"):
        store = index.Notes(runs, sweep_id)
        for trial in range(3):
            write_run(runs, store, trial, "completed", {"lr": 0.1 * (trial + 1)}, {"eval_accuracy": trial / 3})
        store.flush(time.time_ns() + LATER)
    first, second = notes(runs)
    with open(first, "ab") as fh:
        fh.write(b'not json\n{"name": 5}\n["a list"]\n{"name": "20990101T000000Z-ghost", "row": {}}\n{"torn')
    # An ls killed after it claimed the notes and before it wrote the index leaves them
    # renamed under a pid that no longer runs: the next ls must still use and remove them.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    second.rename(second.with_name(f".{second.name}.{dead.pid}"))

    assert ls_cli(runs, "--format", "json") == from_files(runs, monkeypatch, "--format", "json")
    assert len(ls_json(runs)) == 6 and notes(runs) == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("columns", ["90", "140", "400"])
def test_a_long_listing_in_a_terminal_fits_its_width_as_the_board_does(tmp_path, monkeypatch, capsys, columns):
    """Past RICH_MAX_ROWS a terminal gets the plain table cut to its width, the left-out note
    and the reasons under it: from the index's rows as from the board's."""
    runs = tmp_path / "runs"
    plain_runs(runs)
    monkeypatch.setattr(render, "RICH_MAX_ROWS", 2)
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("NO_COLOR", raising=False)
    want, got = Terminal(), Terminal()
    shown = board.build(rundir.list_runs(runs), runs)
    render.write(board.objectives(board.sort(shown, "eval_loss"), "eval_loss"), "table", want)
    want_err = capsys.readouterr().err
    for _ in range(2):  # from the files, then from the index
        found = index.listing(runs)
        assert found is not None
        order = board.value_order(found.raw("eval_loss"), board.goal_for(found.goals(), "eval_loss") != "minimize")
        got = Terminal()
        render.write_listing(found, order, "eval_loss", "table", got)
        assert (got.getvalue(), capsys.readouterr().err) == (want.getvalue(), want_err)


def test_times_stat_by_a_forked_child_and_this_process_meeting_are_the_ones_one_process_makes(tmp_path, monkeypatch):
    """Past index.SPLIT runs a forked child stats from the last run down while ls does other
    work, then ls stats from the first up until they meet: the times are the same however the
    work falls between them, a folder gone meanwhile is -1, and a child killed before it
    answers costs nothing but time."""
    for i in range(41):
        (tmp_path / f"r{i:02d}").mkdir()
    names = sorted(p.name for p in tmp_path.iterdir())
    for gone in ("r03", "r30"):
        (tmp_path / gone).rmdir()
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        alone = index._stat_all(fd, names)
        assert len(alone) == 2 * len(names) and alone[6:8].tolist() == [-1, -1] and alone.count(-1) == 4
        assert alone[:2].tolist() == list(index.TIMES(os.stat(tmp_path / "r00")))
        monkeypatch.setattr(index, "SPLIT", 2)
        monkeypatch.setattr(index, "CHUNK", 3)
        for meanwhile in (lambda: None, lambda: time.sleep(0.3)):  # ls stats most, then the child does
            assert index._times(fd, names, meanwhile) == alone

        parent, stat_all = os.getpid(), index._stat_all
        here: list[int] = []

        def counted(folder: int, some: list[str], **how: Any) -> Any:
            if os.getpid() == parent:
                here.append(len(some))
            return stat_all(folder, some, **how)

        monkeypatch.setattr(index, "_stat_all", counted)
        assert index._times(fd, names, lambda: time.sleep(0.3)) == alone
        assert here == []  # the child stat every one while ls was busy

        def slow_in_the_child(folder: int, some: list[str], **how: Any) -> Any:
            if os.getpid() != parent:
                time.sleep(0.05)
            return stat_all(folder, some, **how)

        monkeypatch.setattr(index, "_stat_all", slow_in_the_child)
        assert index._times(fd, names) == alone
        child = index._Half.start(fd, names)
        assert child is not None
        time.sleep(0.12)
        os.kill(child.pid, signal.SIGKILL)
        assert child.meet(fd, names) == alone
    finally:
        os.close(fd)


@pytest.mark.parametrize("width", [90, 140, 400])
def test_ls_in_a_terminal_from_the_index_writes_what_the_board_does(tmp_path, monkeypatch, width):
    """``sweep ls`` on a terminal too narrow for every column, past RICH_MAX_ROWS: the text
    made ahead (to that width) and its note of the columns left out are the board's."""
    monkeypatch.setattr(render, "RICH_MAX_ROWS", 2)
    monkeypatch.setattr(render, "terminal_width", lambda out: width)
    monkeypatch.setattr(render, "plain", lambda stream=None: False)
    for name, make in (("plain", plain_runs), ("mixed", mixed_runs)):
        runs = tmp_path / name
        make(runs)
        for args in ([], ["--sort", "eval_accuracy"], ["--sort", "eval_loss", "--asc"], ["--top", "3"]):
            want = from_files(runs, monkeypatch, *args)
            assert ls_cli(runs, *args) == want
            assert ls_cli(runs, *args) == want  # warm
            assert width == 400 or "left out" in want[2]


def test_an_index_of_no_rows_is_read_not_written_again(tmp_path):
    """Its one run deleted, only a running run left: the index keeps no row, and a later ls
    finds it as it left it."""
    runs = tmp_path / "runs"
    notes = index.Notes(runs, "s20260107T000000Z-abcd")
    ended = write_run(runs, notes, 0, "completed", {"lr": 0.1}, {"eval_accuracy": 0.5})
    age(runs)
    assert [r["id"] for r in ls_json(runs)] == [ended.name]
    assert kept(runs) == [ended.name]
    shutil.rmtree(ended)
    running = write_run(runs, notes, 1, "running", {"lr": 0.2}, {})
    assert [r["id"] for r in ls_json(runs)] == [running.name]
    assert kept(runs) == []
    written = os.stat(runs / rundir.STATE_DIR / INDEX_FILE).st_ino
    assert [r["id"] for r in ls_json(runs)] == [running.name]
    assert os.stat(runs / rundir.STATE_DIR / INDEX_FILE).st_ino == written


def test_a_change_whose_mtime_was_set_back_is_young_until_its_ctime_is_past_the_window(tmp_path, monkeypatch):
    """``cp -a``, ``rsync -a`` and ``touch -d`` set an mtime back; the change keeps a new
    ctime, and on a file system whose clock ticks in seconds the next such change may share
    it. So neither the changed run's row nor the runs directory's stamp is kept until that
    ctime is past the racy window."""
    runs = tmp_path / "runs"
    plain_runs(runs)
    assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")
    monkeypatch.setattr(index, "RACY_NS", 1_500_000_000)  # room for a loaded machine between change and ls
    names = sorted(p.name for p in runs.iterdir() if rundir.is_run_name(p.name))
    edited, added = runs / names[2], runs / rundir.new_id()
    before, folder = os.stat(edited), os.stat(runs)
    change_metrics(runs, edited)
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    shutil.copytree(runs / names[0], added)  # as cp -a leaves it
    os.utime(runs, ns=(folder.st_atime_ns, folder.st_mtime_ns))
    assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")
    assert edited.name not in kept(runs) and added.name not in kept(runs)
    note = runs / rundir.STATE_DIR / index.FOLDER_FILE
    assert not note.exists() or json.loads(note.read_text())["folder"] != list(index.stamp(str(runs)))
    time.sleep(1.6)
    assert ls_cli(runs, "--format", "csv") == from_files(runs, monkeypatch, "--format", "csv")
    assert edited.name in kept(runs) and added.name in kept(runs)


def test_runs_of_sweeps_with_several_objectives_or_constraints_are_listed_from_the_index(tmp_path, monkeypatch):
    """Their Pareto ranks and broken constraints depend on other runs: made again on each
    call from what the index keeps, with no file of an ended run read and no board of every
    run built (the other runs' text as kept)."""
    runs = tmp_path / "runs"
    made = mixed_runs(runs)
    shutil.rmtree(made["broken"])  # read every time: it would fail the no-read check below
    shutil.rmtree(made["running"])
    cases = [["--sort", "eval_accuracy", "--format", "csv"], ["--sort", "eval_accuracy"], ["--sort", "latency_ms"],
             ["--top", "3", "--format", "markdown"], ["--sort", "eval_loss", "--asc", "--format", "csv"]]
    want = [from_files(runs, monkeypatch, *args) for args in cases]
    assert [ls_cli(runs, *args) for args in cases] == want
    age(runs)
    assert [ls_cli(runs, *args) for args in cases] == want
    real_build = board.build
    with monkeypatch.context() as patch:
        patch.setattr(rundir, "read_run", lambda path: pytest.fail(f"read {path}"))
        built: list[int] = []
        patch.setattr(board, "build", lambda runs, *a: built.append(len(runs)) or real_build(runs, *a))
        assert [ls_cli(runs, *args) for args in cases] == want
    volatile = 4  # the runs of the sweep with two objectives and a constraint
    assert built and max(built) == volatile
    changed = made["pareto3"]  # now dominates the front: its sweep's ranks move
    rundir.write_json(changed / rundir.METRICS_FILE, {"eval_accuracy": 0.99, "latency_ms": 1.0})
    for args in cases:
        assert ls_cli(runs, *args) == from_files(runs, monkeypatch, *args)


def test_a_new_column_or_a_filtered_ls_keeps_every_row_in_the_index(tmp_path, monkeypatch):
    """A run bringing a column no run had makes every row's text again; the rows are kept in
    the index written then (they were dropped, and the next ls read every run's files), as
    after a listing through the board (``--where``) that found a change."""
    runs = tmp_path / "runs"
    plain_runs(runs)
    ls_cli(runs, "--format", "csv")
    age(runs)
    every = sorted(p.name for p in runs.iterdir() if rundir.is_run_name(p.name))
    ls_cli(runs, "--format", "csv")
    assert sorted(kept(runs)) == every
    for args in (["--format", "csv"], ["--where", "flag_lr>0", "--format", "csv"]):
        new = write_run(runs, index.Notes(runs, "s20260108T000000Z-abcd"), 0, "completed",
                        {"lr": 0.2, "hidden": 64, f"new{len(every)}": 1}, {"eval_accuracy": 0.3})
        every = sorted([*every, new.name])
        time.sleep(1.5 * index.RACY_NS / 1e9)  # the new run past the racy window, the others as they were
        assert ls_cli(runs, *args) == from_files(runs, monkeypatch, *args)
        assert sorted(kept(runs)) == every
