"""The leaderboard's index: ``sweep ls`` over thousands of runs reads only what changed.

An index under ``<runs>/.sweep/`` keeps the rows of ended runs, each checked against a stat
of its files on every call. A sweep appends a note per ended run (``Notes``, a store beside
the run directory), so the first ``ls`` after a sweep need not open every run either. The
run directories stay the record: the index can be deleted at any time. Stdlib only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sweep import rundir

INDEX_FILE = "ls-index.json"
INDEX_NOTES = "index"  # under STATE_DIR: one JSON-lines file of ended runs per sweep
# flags.json is written once, before the first run.json, so run.json's stamp covers it.
_KEYED = (rundir.RUN_FILE, rundir.METRICS_FILE)
# The leaderboard's part of run.json: all a cached row keeps.
BOARD_INFO = ("sweep", "trial", "start", "duration", "steps", "metric", "goal", "baseline_error",
              "objectives", "constraints", "seed_flag")


def _stamp(dir_path: str) -> list[int] | None:
    """What decides whether a cached row is still true: size, mtime and inode of each file
    the row comes from (an atomic rename always gives a new inode)."""
    out: list[int] = []
    for name in _KEYED:
        try:
            st = os.stat(os.path.join(dir_path, name))
        except FileNotFoundError:
            out.append(-1)
            continue
        except OSError:
            return None
        out += [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def _to_cache(run: rundir.Run) -> dict[str, Any]:
    info = {k: run.info[k] for k in BOARD_INFO if k in run.info}
    return {"id": run.id, "status": run.status, "info": info, "flags": run.flags,
            "metrics": run.metrics, "reason": run.reason}


class Notes:
    """A ``rundir.Store``: one appended line per ended run keeps the sweep's own memory flat;
    ``list_runs`` folds the notes into the index and checks each like any cached row. The
    row comes from ``written_run`` (what ``read_run`` would read back), so it is exactly what a
    from-scratch ``ls`` shows."""

    def __init__(self, runs_dir: Path, sweep_id: str) -> None:
        self.file = os.path.join(str(runs_dir), rundir.STATE_DIR, INDEX_NOTES, f"{sweep_id}.jsonl")

    def ended(self, path: Path, info: rundir.RunInfo, metrics: dict[str, float]) -> None:
        run = rundir.written_run(path, info, metrics)
        stamp = _stamp(str(path))
        if stamp is None or run.status not in rundir.ENDED:
            return
        os.makedirs(os.path.dirname(self.file), exist_ok=True)
        rundir.append_jsonl(self.file, {"name": path.name, "stamp": stamp, "row": _to_cache(run)})


def _load_index(index_path: str) -> dict[str, Any]:
    try:
        with rundir.open_regular(index_path) as fh:
            loaded = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    if isinstance(loaded, dict) and loaded.get("format") == rundir.FORMAT and isinstance(loaded.get("runs"), dict):
        return loaded["runs"]
    return {}


def _orphan(name: str) -> bool:
    pid = name.rpartition(".")[2]
    return name.startswith(".") and pid.isdigit() and not rundir.alive(int(pid))


def _claim_notes(state: str) -> tuple[dict[str, Any], list[str]]:
    """The notes of ended runs, each file renamed before it is read: a sweep still writing
    then starts a new file, and no note is both read and kept."""
    notes = os.path.join(state, INDEX_NOTES)
    out: dict[str, Any] = {}
    claimed: list[str] = []
    try:
        names = [e.name for e in os.scandir(notes)]
    except OSError:
        return out, claimed
    for name in names:
        taken = os.path.join(notes, name)
        if _orphan(name):  # claimed by an ls that died before it was done with them
            claimed.append(taken)
        elif name.endswith(".jsonl") and not name.startswith("."):
            claim = os.path.join(notes, f".{name}.{os.getpid()}")
            try:
                os.rename(taken, claim)
                taken = claim
                claimed.append(taken)
            except OSError:
                pass  # a read-only runs directory: read the notes where they are
        else:
            continue
        for rec in rundir.read_jsonl(taken):
            if isinstance(rec.get("name"), str) and isinstance(rec.get("row"), dict):
                out[rec["name"]] = {"stamp": rec.get("stamp"), "row": rec["row"]}
    return out, claimed


def list_runs(runs_dir: Path) -> list[rundir.Run]:
    """Every run, as ``rundir.list_runs`` reads it, with the rows of unchanged ended runs
    taken from the index. Such runs carry only the leaderboard's part of run.json in
    ``info``."""
    entries = rundir.run_entries(runs_dir)
    state = os.path.join(str(runs_dir), rundir.STATE_DIR)
    index_path = os.path.join(state, INDEX_FILE)
    cached = _load_index(index_path)
    notes, claimed = _claim_notes(state)
    cached.update(notes)
    fresh: dict[str, Any] = {}
    runs = []
    changed = bool(claimed) or len(cached) != len(entries)
    for entry in entries:
        stamp = _stamp(entry.path)
        hit = cached.get(entry.name)
        if stamp is not None and hit is not None and hit.get("stamp") == stamp:
            row = hit["row"]
            run = rundir.Run(Path(entry.path), row["id"], row["status"], row["info"], row["flags"],
                             row["metrics"], row["reason"])
            fresh[entry.name] = hit
        else:
            run = rundir.read_run(Path(entry.path))
            changed = True
            if run.status == "broken" and not rundir.made_by_sweep(entry.path):
                continue  # not a run: a folder sweep never made
            if stamp is not None and run.status in rundir.ENDED:
                fresh[entry.name] = {"stamp": stamp, "row": _to_cache(run)}
        runs.append(run)
    if changed:
        try:
            os.makedirs(state, exist_ok=True)
            rundir.write_json(index_path, {"format": rundir.FORMAT, "runs": fresh}, compact=True)
            for taken in claimed:  # only now: had we died before the write, they'd be lost
                os.unlink(taken)
        except OSError:
            pass  # a read-only runs directory still lists, just without the index
    return runs
