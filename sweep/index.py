"""The leaderboard's index: ``sweep ls`` over 100,000 runs reads only what changed.

``<runs>/.sweep/ls-index`` keeps, for each ended run, its row as ``ls`` writes it (CSV text,
table cells, the values that sort it) and the run as ``rundir.read_run`` gave it, with the
stamp of its directory: its mtime and inode. Every file sweep writes in a run is written
atomically (a new file, then a rename), which changes the directory's mtime, and a folder put
in a run's place has another inode; so one stat per run says whether its row still holds.
Racy rows (git's rule): a directory that changed less than ``RACY_NS`` before it was read may
change again within the same tick of the file system's clock without a new mtime, so its row
is not kept; it is read again next time. Not noticed: a file of an ended run rewritten in
place (opened and overwritten, not replaced), which leaves the directory as it was.

A sweep appends a note per ended run once it is past that window (``Notes``), so the first
``ls`` after a sweep need not open every run. The run directories stay the record: the index
can be deleted at any time, and one that is damaged, foreign or of an older format is
ignored and written again. It is JSON (never pickle: a runs directory copied from elsewhere
must not run code when listed): a header line, then one JSON list per section, so a call
parses only the sections it needs. Stdlib only.
"""

from __future__ import annotations

import array
import csv
import dataclasses
import functools
import gc
import io
import itertools
import json
import math
import mmap
import operator
import os
import secrets
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep import board, rundir, sections
from sweep.sections import Damaged, SectionFile, write_sections

INDEX_FILE = "ls-index"
OLD_INDEX = "ls-index.json"  # the first format: one JSON object, parsed whole on every call
INDEX_FORMAT = "sweep ls index 3"
INDEX_NOTES = "index"  # under STATE_DIR: one JSON-lines file of ended runs per sweep
RACY_NS = 2_000_000_000  # the coarsest clock of a file system runs live on (FAT: 2 s)
# The leaderboard's part of run.json: all a cached run keeps.
BOARD_INFO = ("sweep", "trial", "start", "duration", "steps", "metric", "goal", "baseline_error",
              "objectives", "constraints", "seed_flag")
HIDDEN = ("_start", "_metric", "_goal", "_objectives", "_constraints")  # what sorting reads beside the columns
SEP = "\x1f"  # between the table cells of a row
DIR_MARK = "\x1e"  # where a row's CSV line takes its directory, which depends on how ls was called
TEXT = ("csv_pre", "csv_post", "head", "reason_cell", "codes")  # a row as ls writes it


def stamp(path: str) -> tuple[int, int, int] | None:
    """A run directory's mtime, ctime and inode, or None when it cannot be read."""
    try:
        return stamp_of(os.stat(path))
    except OSError:
        return None


def settled(seen: tuple[int, int, int], read_ns: int) -> bool:
    """Whether what was read of a directory at ``read_ns`` can be trusted while its stamp
    stays ``seen``: its last change, by mtime or ctime, is a tick of the file system's
    clock before the read, so a change after the read gives it another ctime. Both: an mtime
    set back (``cp -a``, ``rsync -a``, ``touch -d``) leaves the ctime of the change, which
    may share a coarse clock's tick with the next one. (The inode tells a folder put in its
    place: an inode is soon used again.)"""
    return max(seen[0], seen[1]) < read_ns - RACY_NS


def _to_cache(run: rundir.Run) -> dict[str, Any]:
    info = {k: run.info[k] for k in BOARD_INFO if k in run.info}
    return {"id": run.id, "status": run.status, "info": info, "flags": run.flags,
            "metrics": run.metrics, "reason": run.reason}


def _from_cache(path: str, row: dict[str, Any]) -> rundir.Run:
    return rundir.Run(Path(path), row["id"], row["status"], row["info"], row["flags"], row["metrics"], row["reason"])


# ---------------------------------------------------------------- notes


class Notes:
    """A ``rundir.Store``: one appended line per ended run keeps the sweep's own memory flat;
    ``ls`` folds the notes into the index and checks each like any cached row. The row comes
    from ``written_run`` (what ``read_run`` would read back), made and stamped as the run
    ends, or from a read if its directory changed since (its scratch folders removed); it is
    noted once past the racy window (at a later run's end), so a note can be trusted while
    its run's stamp holds; the runs of a sweep's last seconds are left for ``ls`` to read."""

    def __init__(self, runs_dir: Path, sweep_id: str) -> None:
        self.file = os.path.join(str(runs_dir), rundir.STATE_DIR, INDEX_NOTES, f"{sweep_id}.jsonl")
        self.pending: list[tuple[Path, tuple[int, int, int], rundir.Run]] = []

    def ended(self, path: Path, info: rundir.RunInfo, metrics: dict[str, float]) -> None:
        seen = stamp(str(path))
        if seen is not None and info.status in rundir.ENDED:
            self.pending.append((path, seen, rundir.written_run(path, info, metrics)))
        self.flush()

    def flush(self, now_ns: int | None = None) -> None:
        """Note the pending runs past the racy window at ``now_ns`` (now by default)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        while self.pending:
            path, seen, run = self.pending[0]
            if not settled(seen, now_ns):
                return  # runs end in order: the later ones are younger still
            self.pending.pop(0)
            now = stamp(str(path))
            if now != seen:  # changed since it ended (its scratch folders removed, say): read it
                run = rundir.read_run(path)
                if now is None or not settled(now, now_ns) or run.status not in rundir.ENDED or stamp(str(path)) != now:
                    continue  # gone, too young, or changed while read: ls reads it itself
                seen = now
            os.makedirs(os.path.dirname(self.file), exist_ok=True)
            rundir.append_jsonl(self.file, {"name": path.name, "stamp": list(seen), "row": _to_cache(run)})


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
            note_stamp = rec.get("stamp")
            if isinstance(rec.get("name"), str) and isinstance(rec.get("row"), dict) and isinstance(note_stamp, list):
                out[rec["name"]] = (tuple(note_stamp), rec["row"])
    return out, claimed


# ---------------------------------------------------------------- a row as ls writes it


def csv_line(cells: list[str]) -> str:
    """One CSV line, as ``ls --format csv`` writes each (no line end)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()[:-1]


def _code(value: Any) -> str:
    """What the table needs to know of a value: m missing, q NaN (missing, but a number),
    f a number, s anything else."""
    if value is None:
        return "m"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "s"
    return "q" if isinstance(value, float) and math.isnan(value) else "f"


def row_text(row: dict[str, Any], columns: list[str]) -> tuple[str, ...] | None:
    """``TEXT`` for a board row with these columns (``dir`` and ``reason`` last); None for a
    row whose cells hold the separators (it is read from its files every time)."""
    at = len(columns) - 2
    exact = [board.exact(row.get(c)) for c in columns]
    exact[at] = DIR_MARK
    line = csv_line(exact)
    cells = [board.cell(row.get(c)) for c in columns[:at]]
    head = SEP.join(cells)
    if line.count(DIR_MARK) != 1 or head.count(SEP) != at - 1:
        return None
    pre, _, post = line.partition(DIR_MARK)
    codes = "".join(_code(row.get(c)) for c in columns)
    return pre, post, head, board.cell(row.get("reason")), codes


def plain_row(row: dict[str, Any]) -> bool:
    """A row whose board needs no Pareto ranks nor constraints."""
    return not row.get("_constraints") and len(row.get("_objectives") or ()) <= 1


def line_format(widths: list[int], numeric: list[bool]) -> str:
    """One %-format for a line of the plain table: numbers right-aligned, two spaces between
    columns; a cell is an argument, never part of the format."""
    return "  ".join(f"%{w}s" if num else f"%-{w}s" for w, num in zip(widths, numeric, strict=True))


@dataclass
class Table:
    """The plain table's layout of the cells before ``dir``, over a set of rows: each column's
    width, whether it is shown (``board.used_columns``) and right-aligned (it holds numbers),
    and the one cell every row has in it (None where they differ: a flag that varies)."""

    widths: list[int]
    used: list[bool]
    numeric: list[bool]
    single: list[str | None]

    @classmethod
    def of(cls, columns: list[str], heads: list[str], codes: list[str]) -> Table:
        names = columns[:-2]
        cells = list(zip(*(h.split(SEP) for h in heads), strict=True)) or [()] * len(names)
        widths = [max(len(c), max(map(len, col), default=0)) for c, col in zip(names, cells, strict=True)]
        patterns = set(codes)
        used = [c in board.ALWAYS_SHOWN or any(p[j] in "fs" for p in patterns) for j, c in enumerate(names)]
        numeric = [any(p[j] in "qf" for p in patterns) for j in range(len(names))]
        single = [col[0] if len(set(col)) == 1 else None if col else "" for col in cells]
        return cls(widths, used, numeric, single)

    @classmethod
    def load(cls, data: Any, size: int) -> Table:
        if not isinstance(data, dict):
            raise ValueError("no table")
        table = cls(data.get("widths"), data.get("used"), data.get("numeric"), data.get("single"))  # type: ignore[arg-type]
        for values, kinds in ((table.widths, {int}), (table.used, {bool}), (table.numeric, {bool}),
                              (table.single, {str, type(None)})):
            if not isinstance(values, list) or len(values) != size or not set(map(type, values)) <= kinds:
                raise ValueError("damaged table")
        return table

    def format(self) -> str:
        """The %-format of the shown cells."""
        shown = [(w, num) for w, num, on in zip(self.widths, self.numeric, self.used, strict=True) if on]
        return line_format([w for w, _ in shown], [num for _, num in shown])

    def pad(self, heads: list[str]) -> list[str]:
        """Each row's shown cells, laid out."""
        line = self.format()
        # id, sweep, status, start and duration_s are always shown: itemgetter gives a tuple
        take = operator.itemgetter(*(j for j, on in enumerate(self.used) if on))
        return [line % take(h.split(SEP)) for h in heads]

    def holds(self, heads: list[str], codes: list[str]) -> bool:
        """Whether these rows fit the layout: no cell wider, no column newly shown or numeric,
        none other than the one cell every row had."""
        for head, code in zip(heads, codes, strict=True):
            for j, c in enumerate(head.split(SEP)):
                if len(c) > self.widths[j] or (code[j] in "fs" and not self.used[j]) or (
                        code[j] in "qf" and not self.numeric[j]) or self.single[j] not in (None, c):
                    return False
        return True

    def spans(self) -> dict[int, tuple[int, int]]:
        """Where each shown column's cell is in a laid-out line: column -> (start, end)."""
        out = {}
        at = 0
        for j, (w, on) in enumerate(zip(self.widths, self.used, strict=True)):
            if on:
                out[j] = (at, at + w)
                at += w + len("  ")
        return out


# ---------------------------------------------------------------- the index file


def forget(runs_dir: Path) -> None:
    """Remove a damaged index, to be written again."""
    try:
        os.unlink(os.path.join(str(runs_dir), rundir.STATE_DIR, INDEX_FILE))
    except OSError:
        pass


class _File(SectionFile):
    """The index opened for reading: its header, and each section parsed on demand."""

    KINDS: dict[str, type] = {"names": str, "times": int, "inodes": int, "sigs": int, "runs": str, "padded": str,
                              **dict.fromkeys(TEXT, str)}

    def __init__(self, path: str) -> None:
        super().__init__(path, INDEX_FORMAT)
        try:
            head = self.head
            self.rows = sections.count(head.get("rows"))
            self.columns = sections.names(head.get("columns"))
            self.sigs = [(sections.names(m), sections.names(f)) for m, f in head.get("sigs", [])]
            self.plain = head.get("plain") is True
            self.goals = [g for g in head.get("goals", []) if isinstance(g, list) and len(g) == 3]
            self.table = Table.load(head.get("table"), len(self.columns) - 2)
            self.token = head.get("token") if isinstance(head.get("token"), str) else ""
        except BaseException:
            self.close()
            raise

    def get(self, name: str, length: int = -1, kind: type | None = None) -> list[Any]:
        """A section's list, checked; ``Damaged`` when it is missing or damaged."""
        data = super().get(name, 2 * self.rows if name == "times" else self.rows, self.KINDS.get(name))
        if name == "sigs" and not all(0 <= v < len(self.sigs) for v in data):
            raise Damaged("damaged section sigs")
        return data


def _open(path: str) -> _File | None:
    try:
        return _File(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None


# ---------------------------------------------------------------- one look at the runs


@dataclass
class _Scan:
    """The runs directory against its index: each listed run, in directory order, as its
    position in the index (``slots``: an int) or as read now (a Run)."""

    names: list[str]
    slots: list[int | rundir.Run]
    kept: dict[int, Stamp]  # a run read now whose row the index may keep: its stamp
    file: _File | None
    changed: bool
    claimed: list[str]
    others: list[str]  # the visible entries that are no run
    whole: bool = False  # every row of the index, in its order, and nothing else
    every: bool = False  # every row of the index is listed (maybe among runs read now)
    folder: Stamp | None = None  # the runs directory's stamp, when taken settled before it was listed
    from_note: bool = False  # not listed: as the index last listed it (``_unchanged``)
    ahead: Any = None  # what the caller made of the index alone while runs were stat (None: nothing)


Stamp = tuple[int, int, int]
Ahead = Callable[["Listing"], Any]  # what a caller makes of a listing, made while the runs are stat
TIMES = operator.attrgetter("st_mtime_ns", "st_ctime_ns")


def _scan(runs_dir: Path, index_path: str, state: str, want: tuple[str, ...] = (),
          ahead: Ahead | None = None) -> _Scan:
    """``index_path`` empty: read every run. ``want``: sections of the index the caller will
    read if its rows hold, parsed while the run folders are still being looked at; ``ahead``
    makes the caller's text from the index's listing then too (``scan.ahead``), for when
    every row holds, unless the runs directory already lists other runs than the index."""
    file = _open(index_path) if index_path else None
    names: list[str] = []
    inodes: list[int] = []
    times = b""
    if file is not None:
        try:
            names, inodes, times = file.get("names"), file.get("inodes"), file.raw("times", 2 * file.rows)
        except (OSError, ValueError):
            file.close()
            file = None
    notes, claimed = _claim_notes(state)
    scan = _Scan([], [], {}, file, bool(claimed), claimed, [])
    try:
        fd = os.open(runs_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return _scan_runs(scan, runs_dir, [], [], array.array("q"), notes, names, inodes, times)
    try:
        read_ns = time.time_ns()
        folder = stamp_of(os.fstat(fd))
        if settled(folder, read_ns):
            scan.folder = folder
        same = _unchanged(state, file, folder)
        if same is not None:  # nothing put in, taken out or renamed since the index listed it all
            listed, now_inodes, scan.others, scan.from_note = names, inodes, same, True
        else:
            entries = rundir.run_entries(runs_dir, scan.others, set(names))
            listed, now_inodes = [e.name for e in entries], [e.inode() for e in entries]
        guess = ahead if file is not None and file.plain and listed == names and now_inodes == inodes else None

        def meanwhile() -> None:
            _prefetch(file, want + (VOLATILE if file is not None and not file.plain else ()))
            if guess is not None and file is not None:
                scan.ahead = _guess(file, runs_dir, guess)

        now_times = _times(fd, listed, meanwhile)
    finally:
        os.close(fd)
    return _scan_runs(scan, runs_dir, listed, now_inodes, now_times, notes, names, inodes, times)


def _scan_runs(scan: _Scan, runs_dir: Path, listed: list[str], now_inodes: list[int], now_times: array.array[int],
               notes: dict[str, Any], names: list[str], inodes: list[int], times: bytes) -> _Scan:
    """The scan's rows: the listed runs (their inodes and times) against the index's."""
    file, count = scan.file, len(names)
    if file is not None and listed == names and now_inodes == inodes and now_times.tobytes() == times:
        # the warm case, checked a list at a time: the index's runs, in its order, each as it was
        scan.names, scan.slots = listed, list(range(count))
        scan.every = scan.whole = True
        return scan
    slots, kept, others = scan.slots, scan.kept, scan.others
    positions: dict[str, int] | None = None  # made only when the order differs from the index's
    now = time.time_ns()
    hits = 0
    at = 0  # where the next run is in the index, when the folder lists them in the same order
    in_order = True
    old = _stamps(array.array("q", times) if file is not None else array.array("q"), inodes)
    prefix = os.path.join(str(runs_dir), "")
    for name, seen in zip(listed, _stamps(now_times, now_inodes), strict=True):
        if at >= count or names[at] != name:
            if positions is None:
                positions = {n: i for i, n in enumerate(names)}
            at = positions.get(name, count)
            in_order = False
        if at < count and seen is not None and old[at] == seen:
            hits += 1
            slots.append(at)
            at += 1
        else:
            in_order = False
            at += 1
            if seen is not None and name in notes and notes[name][0] == seen:
                run = _from_cache(prefix + name, notes[name][1])
                kept[len(slots)] = seen
            else:
                run = rundir.read_run(Path(prefix + name))
                if run.status == "broken" and not rundir.made_by_sweep(prefix + name):
                    others.append(name)
                    continue  # not a run: a folder sweep never made
                if seen is not None and run.status in rundir.ENDED and settled(seen, now):
                    kept[len(slots)] = seen
            slots.append(run)
        scan.names.append(name)
    scan.changed |= bool(kept) or hits != count  # a run new, changed or gone
    scan.every = file is not None and hits == count
    scan.whole = in_order and scan.every
    return scan


def _stamps(times: array.array[int], inodes: list[int]) -> list[Stamp | None]:
    """Stamps from their parts (None for a folder gone: its times are -1)."""
    return [None if m == -1 else (m, c, i) for m, c, i in zip(times[0::2], times[1::2], inodes, strict=True)]


def stamp_of(st: os.stat_result) -> Stamp:
    return st.st_mtime_ns, st.st_ctime_ns, st.st_ino


# ---------------------------------------------------------------- the runs directory as last listed

FOLDER_FILE = "ls-folder"  # under STATE_DIR: the runs directory's stamp when the index listed all of it
FOLDER_FORMAT = "sweep ls folder 1"


def _unchanged(state: str, file: _File | None, folder: Stamp) -> list[str] | None:
    """The visible entries that are no run, when the runs directory is as it was when the
    index (this one) listed every run in it, and nothing of it could turn into a run:
    then it needs no listing, only a stat of each run. None when it must be listed."""
    if file is None or not file.token:
        return None
    try:
        with rundir.open_regular(os.path.join(state, FOLDER_FILE)) as fh:
            note = json.loads(fh.read(1 << 24))
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("format") != FOLDER_FORMAT or note.get("index") != file.token:
        return None
    if note.get("folder") != list(folder):
        return None
    try:
        return sections.names(note.get("others"))
    except ValueError:
        return None


def _note_folder(state: str, token: str, scan: _Scan) -> None:
    """Say the index lists every run of the runs directory as stamped before it was listed;
    not while a folder named as a run is no run (files put in it later could make it one)."""
    if scan.folder is None or any(rundir.is_run_name(n) for n in scan.others):
        return
    note = {"format": FOLDER_FORMAT, "index": token, "folder": list(scan.folder), "others": scan.others}
    try:
        rundir.write_json(os.path.join(state, FOLDER_FILE), note)
    except OSError:
        pass  # a read-only runs directory: listed each time


# ---------------------------------------------------------------- a stat of each run


def _guess(file: _File, runs_dir: Path, ahead: Ahead) -> Any:
    """``ahead`` of the listing the index gives if every row holds; None when it fails (it is
    made again, and fails in earnest, from the listing as it is)."""
    whole = _Scan(file.get("names"), [], {}, file, False, [], [], whole=True, every=True)
    try:
        return ahead(Listing(whole, _Fresh({}, {}), file.columns, runs_dir))
    except Exception:
        return None


def _prefetch(file: _File | None, want: tuple[str, ...]) -> None:
    for name in want:
        if file is not None and name in file.offsets:
            try:
                file.get(name)
            except Damaged:
                return  # said again, and handled, when the caller asks for it


def _times(fd: int, names: list[str], meanwhile: Callable[[], None] = lambda: None) -> array.array[int]:
    """Each run's mtime and ctime, flat (-1 for a folder gone), by name in the runs directory
    open as ``fd`` (no path walked: a stat costs about 3 us of kernel time here). Past
    ``SPLIT`` runs a forked child stats them from the last one down while this process does
    ``meanwhile``, then stats from the first one up, until the two meet: a stat is mostly the
    kernel's time, so two processes take about half as long, where threads only fight over
    the GIL."""
    child = _Half.start(fd, names) if len(names) >= SPLIT and hasattr(os, "fork") else None
    meanwhile()
    if child is None:
        return _stat_all(fd, names)
    return child.meet(fd, names)


SPLIT = 20_000  # below this the fork costs more than it saves
CHUNK = 2_000  # names stat between two looks at how far the other process got


def _stat_all(fd: int, names: list[str], here: bool = False) -> array.array[int]:
    """``here``: the runs directory is the current one (a stat of a bare name, 10% quicker)."""
    at = os.lstat if here else functools.partial(os.lstat, dir_fd=fd)
    try:
        return array.array("q", itertools.chain.from_iterable(map(TIMES, map(at, names))))
    except OSError:  # one gone: the slow way, a name at a time
        return array.array("q", [v for name in names for v in _times_of(at, name)])


def _times_of(at: Callable[[str], os.stat_result], name: str) -> tuple[int, int]:
    try:
        return TIMES(at(name))
    except OSError:
        return -1, -1


class _Half:
    """A forked child that stats names from the last one down and sends their times back,
    packed, through a pipe. Each process says in shared memory where it got to (one writer
    each: the first name this one has not stat, the last one the child has); a chunk both
    stat is only time lost, so no lock is needed."""

    def __init__(self, pid: int, fd: int, shared: mmap.mmap) -> None:
        self.pid, self.fd, self.shared = pid, fd, shared

    @classmethod
    def start(cls, folder: int, names: list[str]) -> _Half | None:
        try:
            shared = mmap.mmap(-1, 16)
            struct.pack_into("qq", shared, 0, 0, len(names))
            r, w = os.pipe()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return None
        if pid == 0:  # the child: no exit handlers, no flushing of the parent's buffers
            code = 1
            gc.disable()  # a collection would walk (and so copy) every page of the parent's heap
            try:
                os.close(r)
                os.fchdir(folder)  # its own current directory: nothing else here reads a path
                low = len(names)
                parts = []
                while low > struct.unpack_from("q", shared, 0)[0]:
                    parts.append(_stat_all(folder, names[max(0, low - CHUNK):low], here=True).tobytes())
                    low = max(0, low - CHUNK)
                    struct.pack_into("q", shared, 8, low)
                view = memoryview(struct.pack("q", low) + b"".join(reversed(parts)))
                while view:
                    view = view[os.write(w, view):]
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        return cls(pid, r, shared)

    def meet(self, folder: int, names: list[str]) -> array.array[int]:
        """Stat from the first name up until the child's part, then take its part; whatever it
        did not send (killed, say) is stat here."""
        up = 0
        head = array.array("q")
        while up < struct.unpack_from("q", self.shared, 8)[0]:
            head += _stat_all(folder, names[up:up + CHUNK])
            up = min(up + CHUNK, len(names))
            struct.pack_into("q", self.shared, 0, up)
        chunks = []
        with open(self.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 20):
                chunks.append(chunk)
        os.waitpid(self.pid, 0)
        self.shared.close()
        data = b"".join(chunks)
        low = struct.unpack_from("q", data)[0] if len(data) >= 8 else len(names)
        if not 0 <= low <= len(names) or len(data) != 8 + 16 * (len(names) - low):
            low, data = len(names), b""  # a child that died: its part is stat here
        tail = array.array("q", data[8:])
        if low > up:
            head += _stat_all(folder, names[up:low])
            up = low
        return head[:2 * up] + tail[2 * (up - low):]


def _columns(scan: _Scan) -> list[str]:
    """The board's columns over every listed run, as ``board.build`` would make them."""
    metrics: set[str] = set()
    flags: set[str] = set()
    if scan.file is not None:
        sigs = scan.file.sigs
        if not scan.whole:  # else every sig the index has is some listed row's
            sig_of = scan.file.get("sigs")
            sigs = [sigs[s] for s in {sig_of[s] for s in scan.slots if isinstance(s, int)}]
        for names, flag_cols in sigs:
            metrics.update(names)
            flags.update(flag_cols)
    for slot in () if scan.whole else scan.slots:
        if not isinstance(slot, int):
            names, flag_cols = board.names_of(slot)
            metrics.update(names)
            flags.update(flag_cols)
    return board.columns_of(metrics, flags)


def _unpack(scan: _Scan, runs_dir: Path) -> bool:
    """Every cached slot as its Run (for a caller that needs runs, or new columns); whether
    there was one."""
    if not _as_runs(scan, runs_dir, [i for i, s in enumerate(scan.slots) if isinstance(s, int)]):
        return False
    scan.every = False  # the index's layout is for its own rows and columns
    return True


VOLATILE = ("raw:_objectives", "raw:_constraints")  # the sections that tell a row ``_volatile``


def _volatile(scan: _Scan, runs_dir: Path) -> None:
    """The cached rows whose cells depend on other rows (a Pareto rank, a broken constraint:
    runs of sweeps with several objectives or constraints) as their Runs, made again on
    every call from what the index keeps (no file read)."""
    file = scan.file
    if file is None or file.plain:
        return
    objectives, constraints = (file.get(name) for name in VOLATILE)
    _as_runs(scan, runs_dir, [i for i, s in enumerate(scan.slots) if isinstance(s, int) and (
             constraints[s] or (isinstance(objectives[s], list) and len(objectives[s]) > 1))])


def _as_runs(scan: _Scan, runs_dir: Path, at: list[int]) -> bool:
    """These cached slots as the Runs the index keeps, each kept again with its stamp when
    the index is written; whether there was one."""
    file = scan.file
    if file is None or not at:
        return False
    cached, times, inodes = file.get("runs"), file.get("times"), file.get("inodes")
    prefix = os.path.join(str(runs_dir), "")
    for i in at:
        s = scan.slots[i]
        assert isinstance(s, int)
        scan.slots[i] = _from_cache(prefix + scan.names[i], json.loads(cached[s]))
        scan.kept[i] = (times[2 * s], times[2 * s + 1], inodes[s])
    scan.whole = False
    return True


@dataclass
class _Fresh:
    """The rows of the runs read now (or unpacked), with the columns of the whole board."""

    rows: dict[int, dict[str, Any]]  # slot number -> board row
    text: dict[int, tuple[str, ...] | None]


def _board_rows(scan: _Scan, runs_dir: Path) -> dict[int, dict[str, Any]]:
    """The board's rows of the slots that are Runs, Pareto ranks and broken constraints
    among them (every run they depend on is one: ``_volatile``)."""
    if scan.whole:  # every row the index's: none read now
        return {}
    at = [i for i, s in enumerate(scan.slots) if not isinstance(s, int)]
    built = board.pareto(board.build([s for s in scan.slots if not isinstance(s, int)], runs_dir)).rows
    return dict(zip(at, built, strict=True))


def _with_extras(columns: list[str], rows: dict[int, dict[str, Any]]) -> list[str]:
    """The columns, with the Pareto rank and broken constraint where ``board.pareto`` puts
    them when a row has them."""
    extra = [c for c, on in ((board.PARETO, board.several(rows.values())),
                             (board.INFEASIBLE, any(board.INFEASIBLE in row for row in rows.values()))) if on]
    if not extra:
        return columns
    rest = [c for c in columns if c not in extra]
    at = rest.index("diagnosis") + 1 if "diagnosis" in rest else 0
    return rest[:at] + extra + rest[at:]


def _save(scan: _Scan, fresh: _Fresh, columns: list[str], index_path: str) -> None:
    """Write the index of every kept row: a section at a time, the rows kept from the index
    copied as they are (a change to one run of 100,000 costs no step per row beside a copy)."""
    raw_keys = [f"raw:{c}" for c in columns[:-2] + ["reason"]] + [f"raw:{k}" for k in HIDDEN]
    file = scan.file
    rows = [(i, s) for i, s in enumerate(scan.slots)
            if isinstance(s, int) or (i in scan.kept and fresh.text[i] is not None)]
    new = {i: _fresh_values(s, fresh.rows[i], fresh.text[i], raw_keys)  # type: ignore[arg-type]
           for i, s in rows if not isinstance(s, int)}
    old = file is not None and any(isinstance(s, int) for _, s in rows)

    at_old = [s if isinstance(s, int) else 0 for _, s in rows]  # a new row's place is then filled in
    at_new = [(k, i) for k, (i, s) in enumerate(rows) if not isinstance(s, int)]

    def section(name: str) -> list[Any]:
        values = list(map(file.get(name).__getitem__, at_old)) if old and file is not None else [None] * len(rows)
        for k, i in at_new:
            values[k] = new[i][name]
        return values

    out = {name: section(name) for name in ["runs", *TEXT, *raw_keys]}
    out["names"] = [scan.names[i] for i, _ in rows]
    old_times = file.get("times") if old and file is not None else []
    out["times"] = [t for i, s in rows
                    for t in (old_times[2 * s:2 * s + 2] if isinstance(s, int) else scan.kept[i][:2])]
    old_inodes = file.get("inodes") if old and file is not None else []
    out["inodes"] = [old_inodes[s] if isinstance(s, int) else scan.kept[i][2] for i, s in rows]
    sigs: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    old_sig = file.get("sigs") if old and file is not None else []
    out["sigs"] = [sigs.setdefault(_sig(file.sigs[old_sig[s]] if isinstance(s, int) else board.names_of(s)),  # type: ignore[union-attr]
                                   len(sigs)) for _, s in rows]
    goals = {(m, g, json.dumps(o)): [m, g, o] for m, g, o in zip(out["raw:_metric"], out["raw:_goal"],
                                                                out["raw:_objectives"], strict=True)}
    plain = all(plain_row({"_constraints": c, "_objectives": o})
                for c, o in zip(out["raw:_constraints"], out["raw:_objectives"], strict=True))
    out["padded"], table = _laid_out(scan, rows, out, columns, [new[i]["head"] for i in new],
                                     [new[i]["codes"] for i in new])
    try:
        token = secrets.token_hex(8)
        head = {"token": token, "rows": len(rows), "columns": columns, "sigs": [(list(m), list(f)) for m, f in sigs],
                "plain": plain, "goals": list(goals.values()), "table": dataclasses.asdict(table)}
        write_sections(index_path, INDEX_FORMAT, head,
                       {k: out[k] for k in ["names", "times", "inodes", "sigs", "runs", *TEXT, *raw_keys, "padded"]})
        for taken in scan.claimed:  # only now: had we died before the write, they'd be lost
            os.unlink(taken)
        if os.path.lexists(old_index := os.path.join(os.path.dirname(index_path), OLD_INDEX)):
            os.unlink(old_index)
        if len(rows) == len(scan.slots):
            _note_folder(os.path.dirname(index_path), token, scan)
    except OSError:
        pass  # a read-only runs directory still lists, just without the index


def _sig(names: tuple[list[str], list[str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(names[0])), tuple(sorted(names[1]))


def _fresh_values(run: rundir.Run, row: dict[str, Any], text: tuple[str, ...], raw_keys: list[str]) -> dict[str, Any]:
    return {"runs": json.dumps(_to_cache(run), separators=(",", ":")), **dict(zip(TEXT, text, strict=True)),
            **{k: row.get(k[4:]) for k in raw_keys}}


def _laid_out(scan: _Scan, rows: list[tuple[int, int | rundir.Run]], out: dict[str, list[Any]], columns: list[str],
              heads: list[str], codes: list[str]) -> tuple[list[str], Table]:
    """The table's layout of the kept rows, and each row laid out: the index's own lines
    when every row of it is kept and the new rows fit its layout, else all made again."""
    file = scan.file
    if file is not None and scan.every and file.columns == columns and file.table.holds(heads, codes):
        cached = file.get("padded")
        made = iter(file.table.pad(heads))  # the new rows', in the order of rows
        return [cached[s] if isinstance(s, int) else next(made) for _, s in rows], file.table
    table = Table.of(columns, out["head"], out["codes"])
    return table.pad(out["head"]), table


def _look(runs_dir: Path, runs: bool, use_index: bool = True,
          want: tuple[str, ...] = (), ahead: Ahead | None = None) -> tuple[_Scan, _Fresh, list[str]]:
    """Scan, bring rows up to date, and save the index: the work of both listings. With
    ``runs`` every slot ends up a Run."""
    state = os.path.join(str(runs_dir), rundir.STATE_DIR)
    index_path = os.path.join(state, INDEX_FILE)
    scan = _scan(runs_dir, index_path if use_index else "", state, want, ahead)
    scan.changed |= scan.file is None and any(os.path.lexists(os.path.join(state, n)) for n in (INDEX_FILE, OLD_INDEX))
    try:
        _volatile(scan, runs_dir)
        rows = _board_rows(scan, runs_dir)
        columns = _with_extras(_columns(scan), rows)
        if runs or (scan.file is not None and scan.file.columns != columns):
            # cached text is for other columns: every row is made again, and saved so
            scan.changed |= scan.file is not None and scan.file.columns != columns
            if _unpack(scan, runs_dir) and scan.changed:
                rows = _board_rows(scan, runs_dir)
        fresh = _Fresh(rows, {i: row_text(r, columns) for i, r in rows.items()}) if scan.changed or not runs \
            else _Fresh({}, {})
        if scan.changed:
            os.makedirs(state, exist_ok=True)
            _save(scan, fresh, columns, index_path)
        elif scan.whole and not scan.from_note and scan.file is not None and scan.file.token:
            _note_folder(state, scan.file.token, scan)
    except (OSError, ValueError, TypeError, KeyError, IndexError):
        if scan.file is None:
            raise
        scan.file.close()
        return _look(runs_dir, runs, use_index=False)  # a damaged index: as if there were none
    return scan, fresh, columns


def list_runs(runs_dir: Path) -> list[rundir.Run]:
    """Every run, as ``rundir.list_runs`` reads it, those unchanged taken from the index.
    Such runs carry only the leaderboard's part of run.json in ``info``."""
    scan, _, _ = _look(runs_dir, runs=True)
    if scan.file is not None:
        scan.file.close()
    return [s for s in scan.slots if not isinstance(s, int)]


# ---------------------------------------------------------------- the listing ls writes


class Listing:
    """Every run as the board's row, already written out, in directory order: ``text(part)``
    gives one of ``TEXT`` for every row, ``raw(key)`` one column's values (or a hidden key's),
    both read from the index only when asked for."""

    def __init__(self, scan: _Scan, fresh: _Fresh, columns: list[str], runs_dir: Path) -> None:
        self.columns = columns
        self.prefix = os.path.join(str(runs_dir), "")  # a run's dir is this and its name
        self.names = scan.file.get("names") if scan.file is not None and scan.whole else scan.names
        self.others = scan.others
        # the caller's text, made ahead, when it holds: every row of the index, as it was
        self.ahead = scan.ahead if scan.whole and scan.file is not None and scan.file.columns == columns else None
        self._scan = scan
        self._fresh = fresh

    def text(self, part: str) -> list[str]:
        at = TEXT.index(part)
        return self._merge(part, {i: t[at] for i, t in self._fresh.text.items() if t is not None})

    def raw(self, key: str) -> list[Any]:
        return self._merge(f"raw:{key}", {i: row.get(key) for i, row in self._fresh.rows.items()})

    def goals(self) -> Iterable[tuple[Any, Any, Any]]:
        """Each row's (metric, goal, objectives), or the distinct ones: what ``board.goal_for``
        reads."""
        file = self._scan.file
        if file is not None and self._scan.whole:
            return [tuple(g) for g in file.goals]
        return zip(self.raw("_metric"), self.raw("_goal"), self.raw("_objectives"), strict=True)

    def layout(self) -> Table | None:
        """The table's layout of the cells before ``dir`` over the whole listing (each
        column's width over every row); None unless every row of the index is listed, and
        the rows read now fit it."""
        file = self._scan.file
        if file is None or not self._scan.every:
            return None
        fresh = [t for t in self._fresh.text.values() if t is not None]
        return file.table if file.table.holds([t[2] for t in fresh], [t[4] for t in fresh]) else None

    def padded(self) -> tuple[list[str], Table] | None:
        """Each row's table cells before ``dir``, laid out by ``layout``, and that layout."""
        layout = self.layout()
        if layout is None:
            return None
        fresh = {i: t for i, t in self._fresh.text.items() if t is not None}
        return self._merge("padded", dict(zip(fresh, layout.pad([t[2] for t in fresh.values()]), strict=True))), layout

    def dirs(self, order: Iterable[int]) -> list[str]:
        """The ``dir`` column of these rows."""
        every = isinstance(order, range) and len(order) == len(self.names)
        return list(map(self.prefix.__add__, self.names if every else [self.names[i] for i in order]))

    def _merge(self, section: str, fresh: dict[int, Any]) -> list[Any]:
        scan, file = self._scan, self._scan.file
        if file is not None and scan.whole:
            return file.get(section)
        if file is None or not any(isinstance(s, int) for s in scan.slots):
            return [fresh[i] for i in range(len(scan.slots))]
        cached = file.get(section)
        return [cached[s] if isinstance(s, int) else fresh[i] for i, s in enumerate(scan.slots)]


def listing(runs_dir: Path, want: tuple[str, ...] = (), ahead: Ahead | None = None) -> Listing | None:
    """The listing of ``runs_dir`` from its index, or None when a row's text cannot be kept
    (a cell holding the separators). Rows of sweeps with several objectives or constraints
    are made again each time, with their Pareto ranks and broken constraints."""
    scan, fresh, columns = _look(runs_dir, runs=False, want=want, ahead=ahead)
    if any(t is None for t in fresh.text.values()):
        return None
    return Listing(scan, fresh, columns, runs_dir)
