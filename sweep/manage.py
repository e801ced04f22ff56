"""``sweep clean`` and ``sweep purge``: archive runs (a rename, so nothing is half moved)
and delete the archived runs.

Both touch only runs, as ``rundir.is_run`` proves them: a TensorBoard folder or anything else
in the runs directory (or put into the archive by an older clean) stays where it is.

When the file system refuses (a read-only runs directory, a run that cannot be moved), each
says so in one line (``SweepError``, exit 1) and stops: every run is moved whole or not at
all, and the message says how many were archived before it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from sweep import rundir
from sweep.errors import SweepError, UsageError

CLEANABLE = ("failed", "interrupted", "broken")


def clean(runs_dir: Path, refs: list[str], failed: bool = False, everything: bool = False) -> list[Path]:
    if not refs and not failed and not everything:
        raise UsageError("say which runs to archive: run ids, --failed or --all")
    runs = rundir.list_runs(runs_dir)
    chosen: dict[Path, rundir.Run] = {}
    for ref in refs:
        run = rundir.resolve(runs_dir, ref, runs)
        chosen[run.path] = run
    for run in runs:
        if everything or (failed and run.status in CLEANABLE):
            chosen[run.path] = run
    busy = [r.path.name for r in chosen.values() if r.status == "running"]
    if busy and refs:
        raise UsageError(f"run {busy[0]} is still running; stop its sweep first")
    archive = runs_dir / rundir.ARCHIVE_DIR
    if archive.is_symlink() or (archive.exists() and not archive.is_dir()):
        raise UsageError(f"{archive} is not a plain directory; refusing to move runs there")
    todo = [path for path, run in sorted(chosen.items()) if run.status != "running"]
    if not todo:
        return []
    try:
        archive.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot archive into {archive}: {_reason(exc)}; nothing was moved") from None
    moved: list[Path] = []
    for path in todo:
        dest = archive / path.name
        if dest.exists():
            dest = archive / f"{path.name}-{rundir.new_id()}"
        try:
            os.rename(path, dest)
        except OSError as exc:
            done = f"{len(moved)} of {len(todo)} runs archived before it" if moved else "nothing was moved"
            raise SweepError(f"cannot archive {path.name} into {archive}: {_reason(exc)}; {done}") from None
        moved.append(dest)
    return moved


def archived_runs(runs_dir: Path) -> list[os.DirEntry[str]]:
    archive = runs_dir / rundir.ARCHIVE_DIR
    if archive.is_symlink() or not archive.is_dir():
        return []
    return [e for e in os.scandir(archive) if rundir.is_run(e)]


def archived(runs_dir: Path) -> int:
    return len(archived_runs(runs_dir))


# A purge moves the archived runs into a hidden trash folder, then deletes that: a purge
# killed in between leaves the folder, which the next purge deletes. Only names purge makes
# are trash: ".trash-" and a rundir.new_id() (UTC stamp, 6 hex digits).
_TRASH_PREFIX = ".trash-"
_TRASH_NAME = re.compile(re.escape(_TRASH_PREFIX) + r"\d{8}T\d{6}Z-[0-9a-f]{6}\Z")


def purge(runs_dir: Path) -> None:
    finish_purges(runs_dir)
    archive = runs_dir / rundir.ARCHIVE_DIR
    if archive.is_symlink():
        raise UsageError(f"{archive} is a symlink; refusing to delete what it points to")
    runs = archived_runs(runs_dir)
    if not runs:
        return
    # Move first: a crash mid-delete leaves a hidden trash folder, never a half-deleted run.
    trash = runs_dir / f"{_TRASH_PREFIX}{rundir.new_id()}"
    try:
        trash.mkdir()
    except OSError as exc:
        raise SweepError(f"cannot purge {archive}: {_reason(exc)}; nothing was deleted") from None
    for moved, entry in enumerate(runs):
        try:
            os.rename(entry.path, trash / entry.name)
        except OSError as exc:
            _delete(trash)  # the runs moved so far: each run is deleted whole or not at all
            done = f"{moved} of {len(runs)} runs deleted before it" if moved else "nothing was deleted"
            raise SweepError(f"cannot purge {entry.name} from {archive}: {_reason(exc)}; {done}") from None
    _remove_empty(archive)  # kept when it holds what sweep did not make
    _delete(trash)


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def finish_purges(runs_dir: Path) -> None:
    """Delete the trash folders of purges that were killed before they were done. A symlink
    is never followed, and anything not named as purge names it stays."""
    try:
        entries = [e for e in os.scandir(runs_dir)
                   if _TRASH_NAME.match(e.name) and e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise SweepError(f"cannot read {runs_dir}: {_reason(exc)}") from None
    for entry in entries:
        _delete(Path(entry.path))


def _delete(trash: Path) -> None:
    try:
        shutil.rmtree(trash)
    except FileNotFoundError:
        pass  # deleted under us: another purge is finishing it (or, if killed, the next one will)
    except OSError as exc:
        raise SweepError(f"cannot delete {trash}: {_reason(exc)}; the next purge tries again") from None


def _reason(exc: OSError) -> str:
    """``Permission denied`` -> ``permission denied``: the tail of a one-line message."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]
