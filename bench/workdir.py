"""The cost of preparing a trial's working directory (sweep/workdir.py) for a folder of 1,000
files and 1 GB of data: 990 small files (2 KB: sources, configs) in 10 subfolders, and 10
data files of 100 MiB each (sparse: nothing here reads them).

For each way, per trial: ``prepare`` (the run's work/ in the sweep process), ``enter`` (in the
trial's own process, after fork: namespaces, mounts, Landlock) and ``cleanup``, the median of
N trials, and the bytes each trial's work/ takes on disk. "overlay" is the default; "mirror"
the fallback where mount namespaces are refused (with Landlock); "links" the old way (a
symlink to each top-level entry: unsafe, shown for reference). The one-time probe that picks
the way is timed too.

    python bench/workdir.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import cores

from sweep import workdir

SMALL, SMALL_BYTES, DATA, DATA_BYTES = 990, 2048, 10, 100 << 20


def make_folder(base: Path) -> Path:
    folder = base / "proj"
    for i in range(SMALL):
        sub = folder / f"pkg{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"module{i}.py").write_bytes(b"#" * SMALL_BYTES)
    (folder / "data").mkdir()
    for i in range(DATA):
        with open(folder / "data" / f"shard{i}.bin", "wb") as fh:
            fh.truncate(DATA_BYTES)
    (folder / "train.py").write_text("")  # the 1,001st file: the script
    return folder


def disk_bytes(path: Path) -> int:
    total = 0
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(top, name)).st_blocks * 512
    return total


def in_child(setup: dict) -> float:
    """Seconds ``enter`` takes in a forked child (as the launchers call it)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        start = time.perf_counter()
        workdir.enter(setup)
        os.write(w, repr(time.perf_counter() - start).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 100):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return float(data)


def links(folder: Path, work: Path) -> None:
    """The way before: a symlink per top-level entry."""
    for entry in os.scandir(folder):
        if entry.name != "runs":
            (work / entry.name).symlink_to(entry.path)


def trial(where: workdir.Place | None, folder: Path, runs: Path, i: int) -> tuple[float, float, float, int]:
    run, stage = runs / f"r{i}", runs / f".new-r{i}"
    stage.mkdir()
    start = time.perf_counter()
    if where is None:
        (stage / "work").mkdir()
        links(folder, stage / "work")
    else:
        workdir.prepare(where, stage, run)
    prepared = time.perf_counter() - start
    stage.rename(run)
    entered = in_child(workdir.setup(where, run)) if where is not None else 0.0
    start = time.perf_counter()
    if where is not None:
        workdir.cleanup(where, run)
    cleaned = time.perf_counter() - start
    size = disk_bytes(run / "work")
    shutil.rmtree(run)
    return prepared, entered, cleaned, size


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    base = Path(tempfile.mkdtemp(prefix="sweep-workdir-bench-"))
    try:
        folder = make_folder(base)
        runs = folder / "runs"
        runs.mkdir()
        files = sum(len(f) for _, _, f in os.walk(folder))
        print(f"folder: {files} files, {sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e9:.2f} GB "
              f"(sparse); {n} trials each; {cores()} cores")
        start = time.perf_counter()
        where = workdir.place(folder, folder / "train.py", runs)
        print(f"probe (once per sweep): {time.perf_counter() - start:.3f} s -> {where.how}")
        assert where.how == "overlay", where.note
        ways = {"overlay": where,
                "mirror": workdir.Place("mirror", where.folder, where.cwd, where.runs,
                                        guard=workdir.landlock_abi() > 0),
                "links (before, unsafe)": None}
        print(f"{'way':<24} {'prepare':>9} {'enter':>9} {'cleanup':>9} {'total':>9}   work/ on disk")
        for name, way in ways.items():
            rows = [trial(way, folder, runs, i) for i in range(n)]
            p, e, c = (statistics.median(col) * 1000 for col in list(zip(*rows, strict=True))[:3])
            size = statistics.median(r[3] for r in rows)
            print(f"{name:<24} {p:>7.2f}ms {e:>7.2f}ms {c:>7.2f}ms {p + e + c:>7.2f}ms   {size / 1024:,.0f} KiB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
