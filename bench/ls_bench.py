"""Leaderboard speed: `sweep ls --sort eval_accuracy` over generated run directories (1,000 and
10,000 by default; issue 17's target: 100,000 within 1 s once the index is warm). Never imports
optuna or torch.

Cases: "first" is the first call after the sweeps that wrote the runs (each sweep notes its
ended runs for the index, as bench/common.py's fake runs do too); "warm" any later call; "no
index" runs copied in from elsewhere, with no index and no notes (it builds the index).
Wall seconds (best, median and worst of the repetitions) and CPU seconds of the command (median: what a shared
machine's load changes least). ``--before PATH`` times the sweep package at PATH too (a
checkout of older code: ``git worktree add --detach PATH main``), interleaved with this one,
on its own copy of the runs (the two indexes differ); ``--runs PATH`` reuses a folder
bench/common.py's fake_runs made (100,000 runs take minutes to make), ``--before-runs PATH``
a copy of it (``cp -a``) for the older code.

    python bench/ls_bench.py [--sizes 1000,10000] [--reps 5] [--before PATH]
    python bench/ls_bench.py --sizes 100000 --runs /tmp/ls100k/runs --before /tmp/ls-before \
        --before-runs /tmp/ls100k/pristine --no-bare
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cores, fake_runs

from sweep import rundir


def ls(runs: Path, fmt: str, tree: Path) -> tuple[float, float]:
    """One ``sweep ls`` of the package at ``tree``: its wall and CPU seconds."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as users run it: compiled once
    env["PYTHONPATH"] = str(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweep", "ls", "--runs-dir", str(runs), "--sort", "eval_accuracy",
                           "--format", fmt], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=tree)  # python -m looks in its folder first: the tree's own package
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def drop_index(runs: Path) -> None:
    shutil.rmtree(runs / rundir.STATE_DIR, ignore_errors=True)


def measure(trees: dict[str, tuple[Path, Path]], reps: int, bare: bool, first: bool) -> dict[str, dict[str, str]]:
    """case -> column -> figure, each tree's runs timed in turn."""
    out: dict[str, dict[str, str]] = {}

    def put(case: str, name: str, walls: list[float], cpus: list[float]) -> None:
        spread = " ".join(f"{w:.2f}" for w in (min(walls), statistics.median(walls), max(walls)))
        out.setdefault(case, {})[name] = f"{spread} / {statistics.median(cpus):.2f}"
        out[case][name + " cpu"] = str(statistics.median(cpus))

    if first:  # only this tree's notes are in the format its fake_runs wrote
        walls, cpus = zip(*[ls(trees["sweep"][1], "csv", trees["sweep"][0])], strict=True)
        put("first csv", "sweep", list(walls), list(cpus))
    for fmt in ("csv", "table"):
        for tree, runs in trees.values():
            ls(runs, fmt, tree)  # the index brought up to date
        figures: dict[str, list[tuple[float, float]]] = {}
        for _ in range(reps):
            for name, (tree, runs) in trees.items():
                figures.setdefault(name, []).append(ls(runs, fmt, tree))
        for name, got in figures.items():
            put(f"warm {fmt}", name, [w for w, _ in got], [c for _, c in got])
    if bare:
        for name, (tree, runs) in trees.items():
            drop_index(runs)
            wall, cpu = ls(runs, "csv", tree)
            put("no index csv", name, [wall], [cpu])
    return out


def report(n: int, figures: dict[str, dict[str, str]], names: list[str]) -> None:
    print(f"\n{n:,} runs: wall s (best, median, worst) / CPU s (median)")
    head = "".join(f"{name:>22}" for name in names)
    ratio = f"{'CPU before/now':>16}" if len(names) > 1 else ""
    print(f"{'case':<14}{head}{ratio}")
    for case, row in figures.items():
        cells = "".join(f"{row.get(name, '-'):>22}" for name in names)
        both = len(names) > 1 and all(f"{name} cpu" in row for name in names)
        extra = f"{float(row[names[1] + ' cpu']) / float(row[names[0] + ' cpu']):>15.1f}x" if both else ""
        print(f"{case:<14}{cells}{extra}")


def imports_heavy(runs: Path) -> list[str]:
    cmd = [sys.executable, "-X", "importtime", "-m", "sweep", "ls", "--runs-dir", str(runs), "--top", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    return [m for m in ("optuna", "torch") if f" {m}\n" in proc.stderr or f"| {m}\n" in proc.stderr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="run counts, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--before", metavar="PATH", help="a checkout of older code to time beside this one")
    parser.add_argument("--runs", metavar="PATH", help="a folder of fake runs to reuse (one size)")
    parser.add_argument("--before-runs", metavar="PATH", help="a copy of --runs for the older code")
    parser.add_argument("--no-bare", action="store_true", help="skip the no-index case (minutes at 100,000)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.runs and (len(sizes) != 1 or (args.before and not args.before_runs)):
        sys.exit("--runs reuses one folder: give one size, and --before-runs with --before")
    print(f"sweep ls --sort eval_accuracy, {cores()} cores, load {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="sweep-ls-") as tmp:
        for n in sizes:
            runs = Path(args.runs) if args.runs else Path(tmp) / str(n)
            if not args.runs:
                fake_runs(runs, n)
            trees = {"sweep": (ROOT, runs)}
            if args.before:
                before_runs = Path(args.before_runs) if args.runs else Path(tmp) / f"{n}-before"
                if not args.runs:
                    shutil.copytree(runs, before_runs, symlinks=True, ignore=shutil.ignore_patterns(rundir.STATE_DIR))
                trees["before"] = (Path(args.before), before_runs)
            report(n, measure(trees, args.reps, not args.no_bare, not args.runs), list(trees))
        heavy = imports_heavy(runs)
    print(f"load {os.getloadavg()[0]:.1f} at the end; imports optuna/torch: {', '.join(heavy) if heavy else 'neither'}")


if __name__ == "__main__":
    main()
