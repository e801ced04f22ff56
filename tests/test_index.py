"""The leaderboard's index: a sweep notes each ended run, `sweep ls` folds the notes into its
index, and what ls shows is always what the run directories say, whoever changed them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from sweep import rundir
from sweep.index import INDEX_FILE, INDEX_NOTES

from helpers import SCRIPTS, ls_json, project

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


def test_a_sweep_notes_each_ended_run_and_ls_folds_the_notes_in(tmp_path):
    runs = tmp_path / "runs"
    sweep_once(tmp_path / "proj", runs, trials=5)
    [note] = notes(runs)
    lines = [json.loads(line) for line in note.read_text().splitlines()]
    dirs = {p.name for p in runs.iterdir() if not p.name.startswith(".")}
    assert {line["name"] for line in lines} == dirs and len(lines) == 5
    assert all(line["row"]["status"] == "completed" for line in lines)

    rows = ls(runs)
    assert rows == from_scratch(runs, tmp_path)
    assert notes(runs) == []  # folded into the index, which now holds every run
    index = json.loads((runs / rundir.STATE_DIR / INDEX_FILE).read_text())
    assert set(index["runs"]) == dirs
    assert ls(runs) == rows


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


def test_notes_from_two_sweeps_junk_lines_and_an_ls_that_died_mid_fold(tmp_path):
    runs = tmp_path / "runs"
    sweep_once(tmp_path / "a", runs, trials=3)
    sweep_once(tmp_path / "b", runs, trials=3, x=[0.2, 0.4, 0.6])
    first, second = notes(runs)
    with open(first, "ab") as fh:
        fh.write(b'not json\n{"name": 5}\n["a list"]\n{"name": "20990101T000000Z-ghost", "row": {}}\n{"torn')
    # An ls killed after it claimed the notes and before it wrote the index leaves them
    # renamed under a pid that no longer runs: the next ls must still use and remove them.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = second.with_name(f".{second.name}.{dead.pid}")
    second.rename(orphan)

    rows = ls(runs)
    assert len(rows) == 6
    assert rows == from_scratch(runs, tmp_path)
    assert notes(runs) == []


def test_a_note_read_from_a_copy_points_at_its_own_directory(tmp_path):
    """A runs directory copied elsewhere, notes and all, lists its own paths."""
    runs = tmp_path / "runs"
    sweep_once(tmp_path / "proj", runs, trials=3)
    moved = tmp_path / "moved"
    shutil.copytree(runs, moved, symlinks=True)
    rows = ls(moved)
    assert all(row["dir"] == os.path.join(str(moved), run_id) for run_id, row in rows.items())
    assert rows == ls(moved)
