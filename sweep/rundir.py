"""The one owner of the record: the run-directory format, its writer and its reader, the
sweep record, and the one reader of ``metrics.jsonl``. Stdlib only.

A run is ``<runs>/<UTC timestamp>-<suffix>/`` holding ``run.json``, ``flags.json``,
``metrics.json``, ``metrics.jsonl``, ``output.log`` and ``source/``. Every JSON file is
written to a temporary name and renamed, so a reader never sees half a file; a run appears
only once its ``run.json`` exists. Nothing in a run directory is opened unless it is a
regular file, so no read can block on a FIFO or a device a trial left there.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sweep import objectives
from sweep.errors import RunNotFound

FORMAT = 1
MAX_JSON = 16 << 20  # no file of a run is this big; a bigger one is not read whole
RUN_FILE = "run.json"
FLAGS_FILE = "flags.json"
METRICS_FILE = "metrics.json"
METRICS_HISTORY = "metrics.jsonl"
OUTPUT_FILE = "output.log"
SOURCE_DIR = "source"
WORK_DIR = "work"
STOP_FILE = ".stop"
ARCHIVE_DIR = "archive"
STATE_DIR = ".sweep"  # sampler state (Optuna journals, sweep records): rebuildable, not the record
STAGE_PREFIX = ".new-"
RUN_MARKER = ".sweep-run"  # written into every run before it is published: sweep made this folder
_ID = r"\d{8}T\d{6}Z-[0-9a-f]{6}"  # new_id()
# A run's name is its id; an archived run that met another of its name carries a second id.
RUN_NAME = re.compile(rf"{_ID}(?:-{_ID})?\Z")

STATUSES = ("running", "completed", "failed", "pruned", "interrupted", "broken")
ENDED = ("completed", "failed", "pruned")
HISTORY_META = ("step", "time", "source")  # keys of a history line that are not metrics


# ---------------------------------------------------------------- files


def open_regular(path: Path | str) -> BinaryIO:
    """Open a file for reading only if it is a regular file: a FIFO or a device a trial
    left in its run directory must never block a reader. Raises OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fspath(path)}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "rb")


def _json_bytes(obj: Any, compact: bool = False) -> bytes:
    if compact:
        return json.dumps(obj, separators=(",", ":")).encode()
    return (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode()


def _write_file(path: Path | str, data: bytes, new: bool = False) -> None:
    """Write a file with os calls only (a trial's files are written on the path between one
    trial and the next); ``new``: one that must not exist yet."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if new else os.O_TRUNC), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_json(path: Path | str, obj: Any, compact: bool = False) -> None:
    """Write JSON atomically: a temporary file in the same directory, then rename."""
    path = str(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    data = _json_bytes(obj, compact)
    try:
        _write_file(tmp, data, new=True)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):  # name the file being written, not its temporary name
            raise OSError(exc.errno, exc.strerror or str(exc), path) from exc
        raise


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_error(exc: OSError, where: Path) -> str:
    """One line for a failed write of the record: ``disk full writing PATH: ...``, or
    ``cannot write PATH: ...``. ``where`` stands in when the error names no file (a journal
    append, say)."""
    # Of two names (a copy, a rename) the second is the one written.
    path = next((f for f in (exc.filename2, exc.filename) if f is not None), where)
    words = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        return f"disk full writing {os.fsdecode(path)}: {words}"
    return f"cannot write {os.fsdecode(path)}: {words}"


def append_jsonl(path: Path | str, record: dict[str, Any]) -> None:
    """Append one JSON line with a single O_APPEND write, so concurrent writers never
    interleave inside a line and a crash leaves at most one torn last line."""
    line = (json.dumps(record) + "\n").encode()
    # Non-blocking, and regular files only: a FIFO a trial put in place of its history must
    # neither block the sweep (no reader) nor swallow its records (a reader).
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fspath(path)}: not a regular file")
        os.write(fd, line)
    finally:
        os.close(fd)


def _json_line(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):  # junk, or "[[[[..." deeper than the parser goes
        return None
    return rec if isinstance(rec, dict) else None


def read_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """Yield the whole, valid JSON objects of a JSON-lines file; skip torn or junk lines."""
    try:
        fh = open_regular(path)
    except OSError:
        return
    with fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            rec = _json_line(raw)
            if rec is not None:
                yield rec


def _load_json(path: Path) -> Any:
    with open_regular(path) as fh:
        data = fh.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ValueError(f"larger than {MAX_JSON >> 20} MiB")
    try:
        return json.loads(data)
    except RecursionError:  # "[[[[..." nested deeper than the parser goes
        raise ValueError("nested too deeply") from None


def tail_text(path: Path, max_bytes: int = 4096, max_lines: int = 20) -> str:
    """The last lines of a (possibly huge, possibly binary) output file, as text."""
    try:
        with open_regular(path) as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = strip_ansi(data.decode("utf-8", errors="replace"))
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)
    return "\n".join(text.splitlines()[-max_lines:])


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def as_float(value: Any) -> float:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return math.nan


# ---------------------------------------------------------------- metrics history


def history_point(rec: dict[str, Any]) -> tuple[int | None, dict[str, float]]:
    """One line of ``metrics.jsonl`` -> (its step, its metrics). The one rule every reader
    uses: a step is an integer (not a boolean); a metric is any other numeric, non-boolean
    key; a 400-digit integer is inf, not an error."""
    step = rec.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        step = None
    metrics = {k: as_float(v) for k, v in rec.items()
               if k not in HISTORY_META and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return step, metrics


def read_history(path: Path) -> Iterator[tuple[int | None, dict[str, float]]]:
    for rec in read_jsonl(path):
        yield history_point(rec)


def final_metrics(history_path: Path) -> tuple[dict[str, float], int | None]:
    """Last value of each metric in a history file, and the last step seen."""
    last: dict[str, float] = {}
    step = None
    for at, metrics in read_history(history_path):
        if at is not None:
            step = at
        last.update(metrics)
    return last, step


class HistoryTail:
    """Follows a growing ``metrics.jsonl`` (a trial still writing it): each ``read`` returns
    the points of the whole lines added since the last one, by the same rule as
    ``read_history``. Memory stays bounded: a line longer than ``max_line`` is dropped."""

    def __init__(self, path: Path, max_line: int = 1 << 20) -> None:
        self.path = path
        self.pos = 0
        self.max_line = max_line
        self._partial = b""

    def read(self, limit: int | None = None) -> list[tuple[int | None, dict[str, float]]]:
        try:
            with open_regular(self.path) as fh:
                fh.seek(self.pos)
                data = fh.read(-1 if limit is None else limit)
        except OSError:
            return []
        self.pos += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > self.max_line:
            self._partial = b""
        points = []
        for raw in lines:
            rec = _json_line(raw)
            if rec is not None:
                points.append(history_point(rec))
        return points


# ---------------------------------------------------------------- the run.json schema


def _field(*kinds: type, default: Any = None) -> Any:
    return field(default=default, metadata={"kinds": kinds})


_NUMBER = (int, float)


@dataclass
class RunInfo:
    """``run.json``: what one trial was and how it ended. The one declaration of the schema:
    the writer fills it, and the reader checks a file against the kinds given here."""

    id: str = _field(str, default="")
    sweep: str = _field(str, default="")
    trial: int = _field(int, default=-1)
    status: str = _field(str, default="running")
    start: float | None = _field(*_NUMBER)
    end: float | None = _field(*_NUMBER)
    duration: float | None = _field(*_NUMBER)
    exit_code: int | None = _field(int)
    reason: str | None = _field(str)
    error: str | None = _field(str)
    steps: int | None = _field(int)
    metric: str | None = _field(str)
    goal: str | None = _field(str)
    command: list[str] | None = _field(list)
    flags_file: str | None = _field(str)
    launcher: str | None = _field(str)
    threads: int | None = _field(int)
    env: dict[str, str] | None = _field(dict)
    params: dict[str, Any] | None = _field(dict)
    host: str | None = _field(str)
    sweep_pid: int | None = _field(int)
    pid: int | None = _field(int)
    versions: dict[str, str] | None = _field(dict)
    baseline_error: float | None = _field(*_NUMBER)
    workdir: dict[str, str] | None = _field(dict)  # where it ran and where its files went (sweep.workdir)
    resumed: bool | None = None
    format: int = FORMAT
    # Written only with seed_flag: (so not in FIELD_TYPES, which every run.json has): the seed's
    # index, and the flag that carries it, which is not part of the configuration (sweep.seeds).
    repeat: int | None = None
    seed_flag: str | None = None
    # Several objectives: [[metric, goal], ...] (metric and goal above are the first);
    # constraints: their text, "latency_ms < 20". Null when the sweep has none.
    objectives: list[list[str]] | None = _field(list)
    constraints: list[str] | None = _field(list)
    preload: list[str] | None = _field(list)  # what the warm launcher's server imported for it

    def to_json(self) -> dict[str, Any]:
        # The fields as they are, not dataclasses.asdict: its deep copy was a millisecond of
        # every trial's overhead, written twice a trial; the dict is serialized at once.
        out = {name: getattr(self, name) for name in _RUNINFO_FIELDS}
        for key in ("resumed", "repeat", "seed_flag"):  # only where they mean something
            if out[key] is None:
                del out[key]
        return out


def objectives_info(objectives: Sequence[tuple[str, str]], constraints: Sequence[Any]) -> dict[str, Any]:
    """RunInfo's fields for a sweep's several objectives and its constraints."""
    return {"objectives": [list(pair) for pair in objectives] or None,
            "constraints": [str(c) for c in constraints] or None}


_RUNINFO_FIELDS = tuple(f.name for f in dataclasses.fields(RunInfo))

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: f.metadata["kinds"] for f in dataclasses.fields(RunInfo) if f.metadata
}


def _fits(key: str, value: Any) -> bool:
    kinds = FIELD_TYPES.get(key)
    if kinds is None or value is None:
        return True
    return isinstance(value, kinds) and not isinstance(value, bool)


def _wrong_field(info: dict[str, Any]) -> str | None:
    for key, value in info.items():
        if not _fits(key, value):
            kinds = " or ".join(k.__name__ for k in FIELD_TYPES[key])
            return f"run.json: {key} should be {kinds}, not {type(value).__name__}"
    return None


def _fitting(info: dict[str, Any]) -> dict[str, Any]:
    """The fields of a damaged run.json that can still be shown without tripping a reader."""
    return {k: v for k, v in info.items() if _fits(k, v)}


# ---------------------------------------------------------------- writing a run


def utc_stamp(t: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if t is None else t))


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (ValueError, OverflowError, OSError):  # NaN or out of range in a damaged run.json
        return None


def new_id(t: float | None = None) -> str:
    return f"{utc_stamp(t)}-{secrets.token_hex(3)}"


def stage_run_dir(runs_dir: Path) -> tuple[Path, Path]:
    """A hidden directory to fill in, and the run directory it will become. Unique: a name
    is taken if its stage or its run exists, and a stage only ever turns into its own run."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        name = new_id()
        stage = runs_dir / f"{STAGE_PREFIX}{name}"
        try:
            stage.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:  # read-only, full: it is the runs directory that cannot be written
            raise OSError(exc.errno, exc.strerror or str(exc), str(runs_dir)) from exc
        if (runs_dir / name).exists():  # published by another process before our mkdir
            stage.rmdir()
            continue
        return stage, runs_dir / name


def remove_stale_stages(runs_dir: Path, age_s: float = 60.0) -> None:
    """Staging directories left by a sweep killed mid-creation (a stage lives milliseconds)."""
    now = time.time()
    try:
        entries = [e for e in os.scandir(runs_dir) if e.name.startswith(STAGE_PREFIX)]
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > age_s:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


class Store(Protocol):
    """A second place that learns of each ended run, beside the run directory (the record):
    the ``ls`` index today, a database row per trial for a shared study. Best effort: a
    store that fails must not lose the run, so its errors are the writer's to report."""

    def ended(self, path: Path, info: RunInfo, metrics: dict[str, float]) -> None: ...


class RunWriter:
    """The one writer of run directories: stages, fills and publishes a run, then ends it.
    A kill -9 at any point leaves either no run or a run with its run.json."""

    def __init__(self, runs_dir: Path, stores: list[Store] | None = None) -> None:
        self.runs_dir = runs_dir
        self.stores = list(stores or [])

    def create(self, info: RunInfo, flags: dict[str, Any], fill: Callable[[Path, Path], None]) -> Path:
        """Publish a new run. ``fill(stage, path)`` adds what the trial needs (its working
        directory, the source snapshot) to the stage that will become ``path``."""
        stage, path = stage_run_dir(self.runs_dir)
        try:
            info.id = path.name
            # First, so that no later failure, nor a trial that wrecks its run directory, can
            # leave a folder that sweep made but cannot tell from one that it did not.
            _write_file(stage / RUN_MARKER, (path.name + "\n").encode())
            fill(stage, path)
            # Written in place, not through a temporary name: nobody reads a stage, and the run
            # appears whole, with its files, at the rename below.
            _write_file(stage / FLAGS_FILE, _json_bytes(flags))
            (stage / OUTPUT_FILE).touch()
            _write_file(stage / RUN_FILE, _json_bytes(info.to_json()))
            os.rename(stage, path)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return path

    def _publish_again(self, path: Path, info: RunInfo, flags: dict[str, Any]) -> None:
        """The files a run needs besides those ``end`` writes: in the directory if it still is
        one, else in a stage renamed into place with its run.json."""
        target = path if path.is_dir() else path.with_name(f"{STAGE_PREFIX}{path.name}")
        if target != path:
            target.mkdir(parents=True)
        try:
            write_json(target / FLAGS_FILE, flags)
            (target / OUTPUT_FILE).touch()
            if target != path:
                write_json(target / RUN_FILE, info.to_json())
                os.rename(target, path)
        except BaseException:
            if target != path:
                shutil.rmtree(target, ignore_errors=True)
            raise

    def update(self, path: Path, info: RunInfo | dict[str, Any]) -> None:
        write_json(path / RUN_FILE, info.to_json() if isinstance(info, RunInfo) else info)

    def end(self, path: Path, info: RunInfo, metrics: dict[str, float],
            flags: dict[str, Any] | None = None) -> list[str]:
        """Write an ended run's metrics and run.json; tell the stores. Returns the stores'
        failures as messages: the run directory is the record, a store is not. A run whose
        run.json is gone (its trial deleted the directory, and may have made it again) is
        made whole again from ``flags``."""
        if flags is not None and not (path / RUN_FILE).is_file():
            self._publish_again(path, info, flags)
        write_json(path / METRICS_FILE, metrics)
        write_json(path / RUN_FILE, info.to_json())
        try:
            (path / STOP_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        problems = []
        for store in self.stores:
            try:
                store.ended(path, info, metrics)
            except Exception as exc:  # reported, never raised: the run itself is saved
                problems.append(f"{type(store).__name__}: {type(exc).__name__}: {exc}")
        return problems


def versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("sweep", "torch", "optuna", "numpy"):
        # An imported module says its version; a lookup in the installed metadata scans every
        # folder on the path (10 ms or more each on a start that counts them).
        known = getattr(sys.modules.get(dist), "__version__", None)
        if isinstance(known, str):
            out[dist] = str(known)
            continue
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def host() -> str:
    return socket.gethostname()


def alive(pid: int) -> bool:
    if pid <= 0:  # 0 and -1 would ask about a process group, or about every process
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no pid is that large
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------- reading a run


@dataclass
class Run:
    """One run directory as read back. ``status`` is ``broken`` when it cannot be read."""

    path: Path
    id: str
    status: str
    info: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    @property
    def sweep(self) -> str | None:
        return self.info.get("sweep")

    @property
    def start(self) -> float | None:
        value = self.info.get("start")
        return value if isinstance(value, (int, float)) else None


def read_run(path: Path) -> Run:
    """Read one run directory. Never raises: a run that cannot be read is ``broken``
    and says why."""
    run_id = path.name
    try:
        info = _load_json(path / RUN_FILE)
    except FileNotFoundError:
        return Run(path, run_id, "broken", reason="run.json is missing")
    except (OSError, ValueError) as exc:
        return Run(path, run_id, "broken", reason=f"run.json unreadable: {_short(exc)}")
    if not isinstance(info, dict):
        return Run(path, run_id, "broken", reason="run.json is not a JSON object")
    if info.get("format") != FORMAT:
        return Run(path, run_id, "broken", info=_fitting(info),
                   reason=f"unknown run format {_short_repr(info.get('format'))} (this sweep reads {FORMAT})")
    status = info.get("status")
    if status not in STATUSES:
        return Run(path, run_id, "broken", info=_fitting(info), reason=f"unknown status {_short_repr(status)}")
    wrong = _wrong_field(info)
    if wrong:
        return Run(path, run_id, "broken", info=_fitting(info), reason=wrong)
    run = Run(path, str(info.get("id", run_id)), status, info=info)
    if not _read_flags(run):
        return run
    if status == "running":
        run.metrics, _ = final_metrics(path / METRICS_HISTORY)
        pid = info.get("sweep_pid")
        if info.get("host") == host() and isinstance(pid, int) and not alive(pid):
            run.status, run.reason = "interrupted", "the sweep process is gone"
        return run
    try:
        metrics = _load_json(path / METRICS_FILE)
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
        run.metrics = {k: as_float(v) for k, v in metrics.items()}
    except FileNotFoundError:
        run.metrics, _ = final_metrics(path / METRICS_HISTORY)
    except (OSError, ValueError) as exc:
        run.status, run.reason = "broken", f"metrics.json unreadable: {_short(exc)}"
        return run
    run.reason = info.get("reason")
    return run


def _read_flags(run: Run) -> bool:
    """Fill ``run.flags`` from its flags.json; False (the run broken, saying why) if unreadable."""
    try:
        flags = _load_json(run.path / FLAGS_FILE)
        if not isinstance(flags, dict):
            raise ValueError("not a JSON object")
        run.flags = flags
    except (OSError, ValueError) as exc:
        run.status, run.reason = "broken", f"flags.json unreadable: {_short(exc)}"
        return False
    return True


def written_run(path: Path, info: RunInfo, metrics: dict[str, float]) -> Run:
    """What ``read_run`` gives for a run this process has just ended (``RunWriter.end``),
    from what it wrote instead of reading run.json and metrics.json back. flags.json is read:
    written before the trial ran, it may have been changed by it."""
    data = info.to_json()
    run = Run(path, info.id or path.name, info.status, info=data)
    if _read_flags(run):
        run.metrics = {k: as_float(v) for k, v in metrics.items()}
        run.reason = info.reason
    return run


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def is_run_name(name: str) -> bool:
    """Named as sweep names a run (the archive and hidden state have other names)."""
    return RUN_NAME.match(name) is not None


def made_by_sweep(path: str | Path) -> bool:
    """The proof a run carries that sweep made it: the marker ``RunWriter.create`` writes before
    a run is published, or, for a run made before the marker existed, a run.json. A crash or a
    trial can damage a run's files but not take this away; a TensorBoard folder or any other
    folder in the runs directory never has it, so ``ls``, ``clean`` and ``purge`` leave it be."""
    return any(os.path.lexists(os.path.join(path, name)) for name in (RUN_MARKER, RUN_FILE))


def is_run(entry: os.DirEntry[str]) -> bool:
    """A run: a directory (never a symlink) named as a run, that sweep made."""
    return is_run_name(entry.name) and entry.is_dir(follow_symlinks=False) and made_by_sweep(entry.path)


def _scan(runs_dir: Path) -> list[os.DirEntry[str]]:
    """The visible entries of a runs directory (the archive and hidden state left out)."""
    try:
        return [e for e in os.scandir(runs_dir) if not e.name.startswith(".") and e.name != ARCHIVE_DIR]
    except (FileNotFoundError, NotADirectoryError):
        return []


def run_entries(runs_dir: Path, others: list[str] | None = None,
                known: Container[str] = ()) -> list[os.DirEntry[str]]:
    """The entries that may be runs: directories named as runs. A reader keeps those it can
    read, and of the rest only those ``made_by_sweep`` (so a healthy run costs no extra stat).
    ``others`` gets the names of the other visible entries (no second look for ``not_runs``);
    ``known``: names already known to be run names (no pattern matched). One pass, as
    ``_scan`` (a run's name is never hidden nor the archive's): ls reads 100,000."""
    found = []
    try:
        folder = os.scandir(runs_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with folder:
        for e in folder:
            if (e.name in known or is_run_name(e.name)) and e.is_dir(follow_symlinks=False):
                found.append(e)
            elif others is not None and not e.name.startswith(".") and e.name != ARCHIVE_DIR:
                others.append(e.name)
    return found


def list_runs(runs_dir: Path) -> list[Run]:
    """Every run under ``runs_dir``, each read from its files (``sweep.index`` caches this
    for the leaderboard)."""
    runs = (read_run(Path(e.path)) for e in run_entries(runs_dir))
    return [r for r in runs if r.status != "broken" or made_by_sweep(r.path)]


def not_runs(runs_dir: Path, runs: list[Run] | None = None) -> list[str]:
    """The names of everything else in a runs directory (a TensorBoard folder, a file, a
    symlink): never listed, archived or deleted. ``runs``: its runs, when already read."""
    runs = list_runs(runs_dir) if runs is None else runs
    names = {r.path.name for r in runs}
    return sorted(e.name for e in _scan(runs_dir) if e.name not in names)


# ---------------------------------------------------------------- references


def check_ref(ref: str) -> None:
    """Run and sweep references are plain names: never paths that could leave the runs
    directory."""
    if not ref or "/" in ref or "\\" in ref or ref in (".", "..") or ref.startswith(".") or "\0" in ref:
        raise RunNotFound(f"invalid run reference {ref!r}: give a run id, a unique prefix, last, last~N or best")


_BACK = re.compile(r"^last~(\d{1,9})$")  # last~N: the N-th run before the newest


def resolve(runs_dir: Path, ref: str, runs: list[Run] | None = None, archive: bool = False) -> Run:
    """A run by id, unique id prefix, ``last`` (the newest started), ``last~N`` (the N-th
    before it) or ``best`` (the best run of the last sweep, by its objective). With
    ``archive``, an id or prefix no run matches is looked for among the archived runs."""
    check_ref(ref)
    runs = list_runs(runs_dir) if runs is None else runs
    if ref == "best":
        sweep_id = find_sweep_id(runs_dir, "last", runs)
        return best_of([r for r in runs if r.sweep == sweep_id], f"sweep {sweep_id}")
    return find(ref, runs, str(runs_dir), (lambda: list_runs(runs_dir / ARCHIVE_DIR)) if archive else None)


def find(ref: str, runs: list[Run], where: str, archived: Callable[[], list[Run]] | None = None) -> Run:
    """A run of ``runs`` by id, unique prefix, ``last`` or ``last~N`` (``where`` names them in
    messages); an id or prefix none matches is looked for in ``archived()``. ``best`` is the
    caller's: which runs it ranks depends on where they come from."""
    check_ref(ref)
    back = _BACK.match(ref)
    if ref == "last" or back:
        return _newest(where, runs, int(back.group(1)) if back else 0)
    found = _named(ref, runs)
    if not found and archived is not None:
        found = _named(ref, archived())
    if not found:
        raise RunNotFound(f"no run matches {ref!r} in {where}")
    if len(found) > 1:
        names = ", ".join(sorted(r.path.name for r in found)[:5])
        raise RunNotFound(f"{ref!r} matches {len(found)} runs ({names}...): give more of the id")
    return found[0]


def _newest(where: str, runs: list[Run], back: int) -> Run:
    dated = sorted((r for r in runs if r.start is not None), key=lambda r: r.start or 0.0, reverse=True)
    if not dated:
        raise RunNotFound(f"no runs in {where}")
    if back >= len(dated):
        raise RunNotFound(f"last~{back} needs {back + 1} runs; {where} has {len(dated)}")
    return dated[back]


def best_of(runs: list[Run], what: str) -> Run:
    """The best completed run of ``runs`` (one sweep's, or one study's: ``what`` names it) by
    the metric and goal its runs recorded. A run meeting the sweep's constraints beats one
    breaking them; with several objectives, ties on the first are broken by the next ones, so
    the run picked is always on the Pareto front."""
    metric = next((r.info.get("metric") for r in runs if r.info.get("metric")), None)
    scored = [r for r in runs if r.status == "completed" and metric and math.isfinite(r.metrics.get(metric, math.nan))]
    if not scored:
        raise RunNotFound(f"no best run: {what} has no completed run with a value of "
                          f"{metric or 'its metric'}")
    info = scored[0].info
    targets = info.get("objectives") or [[metric, info.get("goal")]]
    rules = [objectives.parse_constraint(text) for text in info.get("constraints") or ()]

    def key(r: Run) -> tuple[bool, list[float]]:
        values = [(m, r.metrics.get(m, math.nan), goal) for m, goal in targets]
        signed = [(-v if goal == "minimize" else v) if math.isfinite(v) else -math.inf for _, v, goal in values]
        return objectives.broken(rules, r.metrics) is None, signed

    return max(scored, key=key)


def _named(ref: str, runs: list[Run]) -> list[Run]:
    """The run called ``ref``, else those whose name starts with it."""
    exact = [r for r in runs if r.path.name == ref]
    return exact[:1] or [r for r in runs if r.path.name.startswith(ref)]


# ---------------------------------------------------------------- the sweep record


@dataclass
class SweepRecord:
    """``<runs>/.sweep/<id>.json``: what a sweep was asked to do, so it can be resumed."""

    id: str
    flags_file: str
    study: str
    storage: str | None
    trials: int
    created: float
    asked: int = 0
    pid: int | None = None
    host: str | None = None
    space: dict[str, str] | None = None  # each flag's values in words (search.space_record)
    format: int = FORMAT
    parent: str | None = None  # the sweep a `sweep rerun` reran

    @classmethod
    def new(cls, flags_file: Path, study: str | None, storage: str | None, trials: int,
            space: dict[str, str] | None = None) -> SweepRecord:
        sweep_id = "s" + new_id()
        return cls(sweep_id, str(flags_file), study or sweep_id, storage, trials, time.time(), space=space)

    def save(self, runs_dir: Path) -> None:
        state = runs_dir / STATE_DIR
        state.mkdir(parents=True, exist_ok=True)
        write_json(state / f"{self.id}.json", dataclasses.asdict(self))


def load_sweeps(runs_dir: Path) -> list[SweepRecord]:
    state = runs_dir / STATE_DIR
    names = {f.name for f in dataclasses.fields(SweepRecord)}
    out = []
    # s<id>.json: the ls index beside them (ls-index.json) is megabytes, not a record
    for path in state.glob("s*.json") if state.is_dir() else []:
        try:
            rec = _load_json(path)
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
            continue
        try:
            out.append(SweepRecord(**{k: v for k, v in rec.items() if k in names}))
        except TypeError:  # a field missing: not a record this version wrote
            continue
    return out


def find_sweep_id(runs_dir: Path, ref: str, runs: list[Run], flags_file: Path | None = None) -> str:
    """A sweep by id, unique id prefix, or ``last``: the sweep most recently active (created,
    or with the newest run). The sweeps are those with a record and, unless ``flags_file``
    narrows them to that file's sweeps, those with runs but no record (a copied folder)."""
    active: dict[str, float] = {}
    for rec in load_sweeps(runs_dir):
        if flags_file is None or rec.flags_file == str(flags_file):
            active[rec.id] = rec.created
    for run in runs:
        if run.sweep and (flags_file is None or run.sweep in active):
            active[run.sweep] = max(active.get(run.sweep, 0.0), run.start or 0.0)
    if ref == "last":
        if not active:
            of = f" of {flags_file}" if flags_file else ""
            raise RunNotFound(f"no sweeps{of} in {runs_dir}")
        return max(active, key=lambda i: (active[i], i))
    check_ref(ref)
    if ref in active:
        return ref
    matches = sorted(i for i in active if i.startswith(ref))
    if len(matches) != 1:
        raise RunNotFound(f"no sweep matches {ref!r} in {runs_dir}" if not matches
                          else f"{ref!r} matches {len(matches)} sweeps: give more of the id")
    return matches[0]


def find_sweep(runs_dir: Path, ref: str, flags_file: Path | None = None,
               runs: list[Run] | None = None) -> SweepRecord:
    """The record of a sweep found as ``find_sweep_id`` finds it (only sweeps with a record)."""
    runs = list_runs(runs_dir) if runs is None else runs
    records = {r.id: r for r in load_sweeps(runs_dir)}
    sweep_id = find_sweep_id(runs_dir, ref, [r for r in runs if r.sweep in records], flags_file)
    return records[sweep_id]
