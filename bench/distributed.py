"""Several workers, one study on PostgreSQL: 80 trials that each sleep 0.5 s, run by 1, 2, 4 and 8
``sweep run`` worker processes (one trial at a time each) on a throwaway server on 127.0.0.1;
then where the CPU goes (the workers, their scripts, the PostgreSQL server) and what a trial's
bookkeeping costs in the database against the local journal file.

    python bench/distributed.py [--trials 80] [--workers 1,2,4,8] [--sleep 0.5] [--quick]

``--quick``: 1 and 8 workers only (about a minute and a half). The machine's load average is
printed with the figures: other work on the cores shows in them.

Needs PostgreSQL installed (Debian's postgresql package) and the postgres extra.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cores

sys.path.insert(0, str(ROOT / "tests"))
from pgserver import Server  # noqa: E402

TRAIN = ROOT / "tests" / "scripts" / "shared" / "train.py"


def flags_file(folder: Path, trials: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN.read_text())
    path = folder / "flags.yaml"
    path.write_text(f"script: train.py\nmetric: val_loss\ntrials: {trials}\nseed: 1\n"
                    "flags:\n  lr: {min: 0.1, max: 2.0, log: true}\n  batch_size: [32, 64, 128]\n  epochs: 1\n")
    return path


def workers(n: int, url: str, flags: Path, root: Path, sleep: float, launcher: str) -> tuple[float, float, int]:
    """Wall time of ``n`` workers, the trials' span (first start to last end) and trials completed.
    Their CPU is this process's children's: the workers, their launchers and scripts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SWEEP_TEST_EPOCH_S": str(sleep), "NO_COLOR": "1"}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "sweep", "run", str(flags), "--runs-dir", str(root / f"w{i}"),
                               "--storage", url, "--study", f"bench{n}", "--launcher", launcher, "--jobs", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(n)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"a worker of {n} failed:\n{err}")
    wall = time.perf_counter() - start
    spans = []
    for run in root.glob("w*/*/run.json"):
        info = json.loads(run.read_text())
        if info["status"] == "completed":
            spans.append((info["start"], info["end"]))
    return wall, max(e for _, e in spans) - min(s for s, _ in spans), len(spans)


def children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def server_cpu(pg: Server) -> float:
    """CPU seconds the PostgreSQL server has used: its postmaster and live processes, plus the
    backends that ended (a backend serves one connection; the postmaster reaps it)."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for pid in [postmaster, *map(int, subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                                     text=True).stdout.split())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended meanwhile: counted with the postmaster
            continue
        ticks += sum(int(f) for f in fields[11:15 if pid == postmaster else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def script_cpu(folder: Path, runs: int = 10) -> float:
    """CPU seconds of one run of the training script alone (its Python start, mostly)."""
    env = {**os.environ, "SWEEP_TEST_EPOCH_S": "0"}
    before = children_cpu()
    for _ in range(runs):
        subprocess.run([sys.executable, str(folder / "train.py"), "--epochs", "1"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return (children_cpu() - before) / runs


def bookkeeping(storage: str | None, root: Path, n: int = 100) -> float:
    """Milliseconds per trial of what a worker does in the study: ask, store the row, tell."""
    from sweep import rundir, search, spec

    sp = spec.load(flags_file(root / "cost", 10**6))
    study = search.Search.open(sp, storage, root / "state", "cost", "cost")
    stores = study.stores()
    start = time.perf_counter()
    for i in range(n):
        ask = study.ask()
        assert ask is not None
        info = rundir.RunInfo(id=f"r{i}", trial=ask.number, status="completed", start=time.time())
        path = root / "cost" / f"r{i}"
        path.mkdir(parents=True, exist_ok=True)
        for store in stores:
            store.ended(path, info, {"val_loss": 0.5})
        study.tell(ask, "completed", 0.5)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=80)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds each trial sleeps")
    parser.add_argument("--quick", action="store_true", help="1 and 8 workers only")
    parser.add_argument("--launcher", default="fork", choices=["fork", "spawn"],
                        help="each worker's launcher (fork: sweep's default, the warm server)")
    args = parser.parse_args()
    counts = [1, 8] if args.quick else [int(w) for w in args.workers.split(",")]
    with Server() as pg, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"distributed: {args.trials} trials of {args.sleep} s, 1 trial per worker at a time, "
              f"PostgreSQL on 127.0.0.1, --launcher {args.launcher}, {cores()} cores, load average {os.getloadavg()[0]:.1f}")
        print(f"{'workers':<9}{'wall s':>8}{'trials s':>10}{'trials/s':>10}{'vs 1':>8}{'completed':>11}"
              f"{'client CPU s':>14}{'server CPU s':>14}")
        base = None
        cpu: dict[int, tuple[float, float, int]] = {}
        for n in counts:
            url = pg.create_database(f"bench{n}")
            flags = flags_file(root / f"p{n}", args.trials)
            client, server = children_cpu(), server_cpu(pg)
            wall, span, done = workers(n, url, flags, root / f"r{n}", args.sleep, args.launcher)
            client, server = children_cpu() - client, server_cpu(pg) - server
            cpu[n] = (client, server, done)
            rate = done / span
            base = base or rate
            print(f"{n:<9}{wall:>8.2f}{span:>10.2f}{rate:>10.2f}{rate / base:>7.2f}x{done:>11}"
                  f"{client:>14.1f}{server:>14.1f}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        if base is not None:
            ceiling(cpu, base, script_cpu(root / f"p{counts[0]}") if args.launcher == "spawn" else None)
        from sweep import search

        search.quiet()
        pg_ms = bookkeeping(pg.create_database("cost"), root / "pgcost")
        journal_ms = bookkeeping(None, root / "jcost")
        shared_ms = bookkeeping(str(root / "shared.journal"), root / "sjcost")
        print(f"bookkeeping per trial (ask, row, tell; 100 trials): PostgreSQL {pg_ms:.1f} ms, "
              f"shared journal {shared_ms:.1f} ms, local journal {journal_ms:.1f} ms "
              f"({pg_ms / journal_ms:.1f}x the local journal)")


def ceiling(cpu: dict[int, tuple[float, float, int]], base: float, script: float | None) -> None:
    """Where the CPU goes, and what it allows: 1 and n workers ran the same trials, so the
    difference of their client CPU is (n - 1) workers' start and end, the rest a trial's."""
    counts = sorted(cpu)
    one, most = counts[0], counts[-1]
    (c1, s1, d1), (cn, sn, _) = cpu[one], cpu[most]
    start = (cn - c1) / (most - one) if most > one else 0.0
    trial = (c1 - one * start) / d1
    server = (s1 + sn) / (d1 + cpu[most][2])
    per_trial = trial + server
    top = cores() / per_trial
    # A spawned trial's own cost is a fresh Python running the script, measured apart; a forked
    # one shares the warm server's imports, so no such split is measured.
    split = (f" (the worker's bookkeeping and launcher {(trial - script) * 1000:.0f} ms, the script with "
             f"its Python start {script * 1000:.0f} ms)" if script is not None else "")
    print(f"CPU a trial: {trial * 1000:.0f} ms client{split} "
          f"+ {server * 1000:.0f} ms PostgreSQL server; a worker's start and end: {start:.2f} s")
    print(f"so {cores()} cores run at most {top:.1f} trials/s however many workers: "
          f"{top / base:.1f}x one worker's {base:.2f}/s, before any worker's start-up")


if __name__ == "__main__":
    main()
