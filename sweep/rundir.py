"""The one owner of the run-directory format: writer and reader both. Stdlib only.

A run is ``<runs>/<UTC timestamp>-<suffix>/`` holding ``run.json``, ``flags.json``,
``metrics.json``, ``metrics.jsonl``, ``output.log`` and ``source/``. Every JSON file is
written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

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

STATUSES = ("running", "completed", "failed", "pruned", "interrupted", "broken")
ENDED = ("completed", "failed", "pruned")


class RunNotFound(LookupError):
    pass


def utc_stamp(t: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if t is None else t))


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (ValueError, OverflowError, OSError):  # NaN or out of range in a damaged run.json
        return None


def write_json(path: Path | str, obj: Any, compact: bool = False) -> None:
    """Write JSON atomically: a temporary file in the same directory, then rename."""
    path = str(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    if compact:
        data = json.dumps(obj, separators=(",", ":"))
    else:
        data = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def append_jsonl(path: Path | str, record: dict[str, Any]) -> None:
    """Append one JSON line with a single O_APPEND write, so concurrent writers never
    interleave inside a line and a crash leaves at most one torn last line."""
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """Yield the whole, valid JSON objects of a JSON-lines file; skip torn or junk lines."""
    try:
        fh = open(path, "rb")
    except OSError:
        return
    with fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):  # junk, or "[[[[..." deeper than the parser goes
                continue
            if isinstance(rec, dict):
                yield rec


def new_id(t: float | None = None) -> str:
    return f"{utc_stamp(t)}-{secrets.token_hex(3)}"


STAGE_PREFIX = ".new-"


def stage_run_dir(runs_dir: Path) -> tuple[Path, Path]:
    """A hidden directory to fill in, and the run directory it will become: a run appears
    (``publish_run_dir``) only once its run.json exists, so a kill -9 halfway through never
    leaves a run without one. Unique: a name is taken if its stage or its run exists, and a
    stage only ever turns into its own run, atomically."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        name = new_id()
        stage = runs_dir / f"{STAGE_PREFIX}{name}"
        try:
            stage.mkdir()
        except FileExistsError:
            continue
        if (runs_dir / name).exists():  # published by another process before our mkdir
            stage.rmdir()
            continue
        return stage, runs_dir / name


def publish_run_dir(stage: Path, path: Path) -> None:
    os.rename(stage, path)


def remove_stale_stages(runs_dir: Path, age_s: float = 60.0) -> None:
    """Staging directories left by a sweep killed mid-creation (a stage lives milliseconds)."""
    import shutil

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


def versions() -> dict[str, str]:
    from importlib import metadata
    import platform

    out = {"python": platform.python_version()}
    for dist in ("sweep", "torch", "optuna", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def host() -> str:
    return socket.gethostname()


def final_metrics(history_path: Path) -> tuple[dict[str, float], int | None]:
    """Last value of each metric in a history file, and the last step seen."""
    last: dict[str, float] = {}
    step = None
    for rec in read_jsonl(history_path):
        for key, value in rec.items():
            if key == "step":
                if isinstance(value, int):
                    step = value
            elif key != "time" and isinstance(value, (int, float)) and not isinstance(value, bool):
                last[key] = as_float(value)
    return last, step


# ---------------------------------------------------------------- reading


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


def _load_json(path: Path) -> Any:
    # Non-blocking and regular files only: a FIFO or a device named run.json must not hang ls.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = fh.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ValueError(f"larger than {MAX_JSON >> 20} MiB")
    try:
        return json.loads(data)
    except RecursionError:  # "[[[[..." nested deeper than the parser goes
        raise ValueError("nested too deeply") from None


# The run.json fields this tool reads, and the JSON types they may have (or null).
_NUMBER = (int, float)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "sweep": (str,), "trial": (int,), "start": _NUMBER, "end": _NUMBER,
    "duration": _NUMBER, "exit_code": (int,), "reason": (str,), "error": (str,),
    "steps": (int,), "metric": (str,), "goal": (str,), "command": (list,),
    "baseline_error": _NUMBER, "params": (dict,), "sweep_pid": (int,), "host": (str,),
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


def read_run(path: Path) -> Run:
    """Read one run directory. Never raises: a run that cannot be read is ``broken``
    and says why."""
    run_id = path.name
    try:
        info = _load_json(path / RUN_FILE)
    except FileNotFoundError:
        return Run(path, run_id, "broken", reason="not a run directory: no run.json")
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
    try:
        flags = _load_json(path / FLAGS_FILE)
        if not isinstance(flags, dict):
            raise ValueError("not a JSON object")
        run.flags = flags
    except (OSError, ValueError) as exc:
        run.status, run.reason = "broken", f"flags.json unreadable: {_short(exc)}"
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


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def is_run_name(name: str) -> bool:
    return not name.startswith(".") and name != ARCHIVE_DIR


INDEX_FILE = "ls-index.json"
# flags.json is written once, before the first run.json, so run.json's stamp covers it.
_KEYED = (RUN_FILE, METRICS_FILE)


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


BOARD_INFO = ("sweep", "trial", "start", "duration", "steps", "metric", "goal", "baseline_error")


def _to_cache(run: Run) -> dict[str, Any]:
    info = {k: run.info[k] for k in BOARD_INFO if k in run.info}
    return {"id": run.id, "status": run.status, "info": info, "flags": run.flags,
            "metrics": run.metrics, "reason": run.reason}


INDEX_NOTES = "index"  # under STATE_DIR: one JSON-lines file of ended runs per sweep


def note_ended(runs_dir: Path, path: Path, sweep_id: str) -> None:
    """Tell the leaderboard's index that a run has ended, so the first ``sweep ls`` after a
    sweep of thousands need not open every run. One appended line per run keeps the sweep's
    own memory flat; ``list_runs`` folds the notes into the index and checks each against a
    stat of the run's files like any cached row. Best effort: the run directory is the record."""
    run = read_run(path)
    stamp = _stamp(str(path))
    if stamp is None or run.status not in _CACHEABLE:
        return
    notes = os.path.join(str(runs_dir), STATE_DIR, INDEX_NOTES)
    try:
        os.makedirs(notes, exist_ok=True)
        append_jsonl(os.path.join(notes, f"{sweep_id}.jsonl"),
                     {"name": path.name, "stamp": stamp, "row": _to_cache(run)})
    except OSError:
        pass


# A running run's status depends on whether its sweep is alive, so only ended runs are cached.
_CACHEABLE = ("completed", "failed", "pruned")


def _load_index(index_path: str) -> dict[str, Any]:
    try:
        with open(index_path, "rb") as fh:
            loaded = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    if isinstance(loaded, dict) and loaded.get("format") == FORMAT and isinstance(loaded.get("runs"), dict):
        return loaded["runs"]
    return {}


def _orphan(name: str) -> bool:
    pid = name.rpartition(".")[2]
    return name.startswith(".") and pid.isdigit() and not alive(int(pid))


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
        for rec in read_jsonl(taken):
            if isinstance(rec.get("name"), str) and isinstance(rec.get("row"), dict):
                out[rec["name"]] = {"stamp": rec.get("stamp"), "row": rec["row"]}
    return out, claimed


def list_runs(runs_dir: Path, use_index: bool = False) -> list[Run]:
    """Every run under ``runs_dir`` (the archive and hidden state excluded).

    With ``use_index`` (for the leaderboard), an index under ``.sweep/`` keeps the rows of
    ended runs, each checked against a stat of its files on every call, so ``sweep ls`` over
    thousands of runs reads only what changed; such runs carry only the leaderboard's part
    of run.json in ``info``. The run directories stay the record: the index can be deleted
    at any time."""
    root = str(runs_dir)
    try:
        entries = [e for e in os.scandir(root) if is_run_name(e.name) and e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    state = os.path.join(root, STATE_DIR)
    index_path = os.path.join(state, INDEX_FILE)
    cached: dict[str, Any] = {}
    claimed: list[str] = []
    if use_index:
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
            run = Run(Path(entry.path), row["id"], row["status"], row["info"], row["flags"],
                      row["metrics"], row["reason"])
            fresh[entry.name] = hit
        else:
            run = read_run(Path(entry.path))
            changed = True
            if stamp is not None and run.status in _CACHEABLE:
                fresh[entry.name] = {"stamp": stamp, "row": _to_cache(run)}
        runs.append(run)
    if use_index and changed:
        try:
            os.makedirs(state, exist_ok=True)
            write_json(index_path, {"format": FORMAT, "runs": fresh}, compact=True)
            for taken in claimed:  # only now: had we died before the write, they'd be lost
                os.unlink(taken)
        except OSError:
            pass  # a read-only runs directory still lists, just without the index
    return runs


def check_ref(ref: str) -> None:
    """Run and sweep references are plain names: never paths that could leave the runs
    directory."""
    if not ref or "/" in ref or "\\" in ref or ref in (".", "..") or ref.startswith(".") or "\0" in ref:
        raise RunNotFound(f"invalid run reference {ref!r}: give a run id, a unique prefix or 'last'")


def resolve(runs_dir: Path, ref: str, runs: list[Run] | None = None) -> Run:
    """A run by id, unique id prefix, or ``last`` (the newest started)."""
    check_ref(ref)
    runs = list_runs(runs_dir) if runs is None else runs
    if ref == "last":
        dated = [r for r in runs if r.start is not None]
        if not dated:
            raise RunNotFound(f"no runs in {runs_dir}")
        return max(dated, key=lambda r: r.start or 0.0)
    exact = [r for r in runs if r.path.name == ref]
    if exact:
        return exact[0]
    matches = [r for r in runs if r.path.name.startswith(ref)]
    if not matches:
        raise RunNotFound(f"no run matches {ref!r} in {runs_dir}")
    if len(matches) > 1:
        names = ", ".join(sorted(r.path.name for r in matches)[:5])
        raise RunNotFound(f"{ref!r} matches {len(matches)} runs ({names}...): give more of the id")
    return matches[0]


def tail_text(path: Path, max_bytes: int = 4096, max_lines: int = 20) -> str:
    """The last lines of a (possibly huge, possibly binary) output file, as text."""
    try:
        with open(path, "rb") as fh:
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
