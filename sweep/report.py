"""``sweep show`` and ``sweep compare`` as data: one run in full, or two side by side.
Values only; ``render`` writes them out."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep import board, rundir
from sweep.diagnosis import DEFAULT_GAP, Diagnosis, diagnose

CURVE_PAIRS = (("train_loss", "eval_loss"), ("train_accuracy", "eval_accuracy"),
               ("train_error", "eval_error"))
TAIL_LINES = 15

Series = list[tuple[int, float]]


@dataclass(frozen=True)
class Record:
    """What run.json says about how the run went (raw: any field may be missing)."""

    sweep: Any
    trial: Any
    started: str | None
    duration: Any
    exit_code: Any
    command: list[Any] | None


@dataclass(frozen=True)
class Curve:
    """A train/dev pair of series; ``turning_point`` is where dev loss starts to rise."""

    train_key: str
    dev_key: str
    train: Series
    dev: Series
    turning_point: int | None


@dataclass(frozen=True)
class ShowView:
    run_id: str
    path: Path
    status: str
    reason: str | None
    record: Record | None  # None when run.json could not be read at all
    flags: dict[str, Any]
    metrics: dict[str, float]  # sorted by name
    baseline: float
    gap: float
    diagnosis: Diagnosis | None
    curves: list[Curve]
    tail: str  # the error tail, else the last lines of the output
    files: str | None = None  # where the files the trial wrote are
    archived: bool = False  # under <runs>/archive: moved there by sweep clean
    where: str | None = None  # a shared study's run: on which host its directory is, and whether it is here


@dataclass(frozen=True)
class CompareRow:
    key: str
    left: Any
    right: Any
    same: bool
    delta: float | None  # right - left, when both are numbers and differ


@dataclass(frozen=True)
class CompareView:
    a: str
    b: str
    rows: list[CompareRow]


def history(run: rundir.Run) -> dict[str, Series]:
    """Per-metric (step, value) series; lines without a step are numbered in order."""
    series: dict[str, Series] = {}
    for step, metrics in rundir.read_history(run.path / rundir.METRICS_HISTORY):
        for key, value in metrics.items():
            points = series.setdefault(key, [])
            points.append((step if step is not None else len(points), value))
    return series


def turning_point(dev: Series) -> int | None:
    """The step after which dev loss only got worse (where overfitting starts)."""
    finite = [(s, v) for s, v in dev if math.isfinite(v)]
    if len(finite) < 3:
        return None
    best_step, best = min(finite, key=lambda p: p[1])
    return best_step if best_step != finite[-1][0] else None


def curves(run: rundir.Run) -> list[Curve]:
    series = history(run)
    out = []
    for train_key, dev_key in CURVE_PAIRS:
        train, dev = series.get(train_key, []), series.get(dev_key, [])
        if len(train) + len(dev) < 2:
            continue
        turn = turning_point(dev) if train_key.endswith("loss") else None
        out.append(Curve(train_key, dev_key, train, dev, turn))
    return out


def show(run: rundir.Run, baseline: float | None = None, gap: float = DEFAULT_GAP) -> ShowView:
    info = run.info
    record = None
    if info:
        cmd = info.get("command")
        record = Record(info.get("sweep"), info.get("trial"), rundir.iso(run.start), info.get("duration"),
                        info.get("exit_code"), cmd if isinstance(cmd, list) else None)
    base = baseline if baseline is not None else float(info.get("baseline_error") or 0.0)
    tail = info.get("error") or rundir.tail_text(run.path / rundir.OUTPUT_FILE, max_lines=TAIL_LINES)
    return ShowView(
        run_id=run.path.name, path=run.path, status=run.status, reason=run.reason, record=record,
        flags=dict(run.flags), metrics=dict(sorted(run.metrics.items())), baseline=base, gap=gap,
        diagnosis=diagnose(run.metrics, base, gap), curves=curves(run), tail=tail,
        files=files(run.path, info.get("workdir")),
        archived=run.path.parent.name == rundir.ARCHIVE_DIR,
    )


def show_in_study(run: rundir.Run, baseline: float | None = None, gap: float = DEFAULT_GAP) -> ShowView:
    """A run of a shared study (``shared.resolve``): from its directory, as ``show``, when that
    is on this machine (the worker that ran it, or a shared filesystem), else what the study's
    database holds. Either way it says on which host the directory is."""
    host = run.info.get("host") or "an unknown host"
    if not run.info.get("dir"):
        return dataclasses.replace(_from_study(run, baseline, gap), where="not recorded yet: the trial has not ended")
    archived = run.path.parent / rundir.ARCHIVE_DIR / run.path.name  # moved there by sweep clean
    path = run.path if run.path.is_dir() or not archived.is_dir() else archived
    local = rundir.read_run(path) if path.is_dir() else None
    if local is None or local.id != run.id:
        return dataclasses.replace(_from_study(run, baseline, gap),
                                   where=f"on {host}; not found on this machine: what the study's database holds")
    if local.status in ("running", "interrupted") and local.status != run.status:
        local.status, local.reason = run.status, run.reason  # its worker died: the study's verdict
    return dataclasses.replace(show(local, baseline, gap), where=f"on {host}")


def _from_study(run: rundir.Run, baseline: float | None, gap: float) -> ShowView:
    info = run.info
    base = baseline if baseline is not None else 0.0
    record = Record(info.get("sweep"), info.get("trial"), rundir.iso(run.start), info.get("duration"), None, None)
    return ShowView(run_id=run.id, path=run.path, status=run.status, reason=run.reason, record=record,
                    flags=dict(run.flags), metrics=dict(sorted(run.metrics.items())), baseline=base, gap=gap,
                    diagnosis=diagnose(run.metrics, base, gap), curves=[], tail="")


def files(path: Path, where: Any) -> str | None:
    """Where a run's files went, from run.json's ``workdir`` (see sweep.workdir)."""
    if not isinstance(where, dict) or not isinstance(where.get("folder"), str):
        return None
    work = path / rundir.WORK_DIR
    mode, folder = where.get("mode"), where["folder"]
    if mode == "overlay":
        return f"{work}: what the trial wrote, changed or deleted in {folder} (it ran in {where.get('cwd')})"
    if mode == "mirror":
        return f"{work}: the mirror of {folder} the trial ran in"
    if mode == "inplace":
        return f"{folder}: the trial ran in the folder itself (workdir: inplace)"
    return None


def compare(a: rundir.Run, b: rundir.Run) -> CompareView:
    rows = [*_differences("", {"status": a.status}, {"status": b.status}),
            *_differences("flag_", a.flags, b.flags),
            *_differences("", a.metrics, b.metrics)]
    return CompareView(a.path.name, b.path.name, rows)


def _differences(prefix: str, left: dict[str, Any], right: dict[str, Any]) -> list[CompareRow]:
    rows = []
    for key in sorted(set(left) | set(right)):
        lv, rv = left.get(key), right.get(key)
        same = board.cell(lv) == board.cell(rv)  # alike as shown: 0.1 and 0.1000000001 are the same
        delta = None
        if not same and board.is_number(lv) and board.is_number(rv):
            delta = float(rv) - float(lv)
        rows.append(CompareRow(f"{prefix}{key}", lv, rv, same, delta))
    return rows

