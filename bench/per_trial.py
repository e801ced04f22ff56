"""Per-trial cost: 20 trials of a tiny PyTorch MLP through `sweep run` with the warm (fork)
launcher, with the spawn launcher, and as 20 plain `python tiny_mlp.py` runs, side by side.
With ``--trivial``: the overhead of a trivial trial under the warm launcher (a script that
prints its metric), the sweep's start subtracted, for this code and, with ``--before PATH``
(a checkout of older code), for that one, interleaved.

    python bench/per_trial.py [--trials 20]
    python bench/per_trial.py --trivial [--small 20] [--large 220] [--reps 3] [--before PATH]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cores, ratio, timed

HERE = Path(__file__).resolve().parent


def sweep_run(launcher: str, trials: int, runs: Path) -> tuple[float, float]:
    wall, proc = timed([sys.executable, "-m", "sweep", "run", str(HERE / "tiny.yaml"), "--trials", str(trials),
                        "--launcher", launcher, "--runs-dir", str(runs)], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"sweep run --launcher {launcher} failed:\n{proc.stderr}")
    durations = [json.loads(p.read_text())["duration"] for p in runs.glob("*/run.json")]
    return wall, sum(durations) / len(durations)


TRIVIAL = "print('eval_accuracy: 0.5')\n"


def trivial_sweep(code: Path, trials: int, tmp: Path) -> tuple[float, float, float | None]:
    """Wall and CPU seconds (the sweep, its server and its trials) of a sweep of ``trials``
    trivial trials run with the package at ``code``; the median gap between one trial's
    start and the next one's (from run.json)."""
    work = Path(tempfile.mkdtemp(dir=tmp))
    (work / "t.py").write_text(TRIVIAL)
    (work / "f.yaml").write_text(f"script: t.py\ntrials: {trials}\nflags:\n  x: {{min: 0.0, max: 1.0}}\n")
    env = dict(os.environ, PYTHONPATH=str(code))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-m", "sweep", "run", str(work / "f.yaml"), "--runs-dir", str(work / "runs")]
    proc = subprocess.run(command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"sweep run ({code}) exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    starts = sorted(json.loads(p.read_text())["start"] for p in (work / "runs").glob("*/run.json"))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    return wall, cpu, statistics.median(gaps) if gaps else None


def trivial(args: argparse.Namespace) -> None:
    trees = {"this code": ROOT} | ({"before": Path(args.before).resolve()} if args.before else {})
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.reps):
            for name, code in trees.items():  # interleaved: both see the same moment of a shared machine
                small_wall, small_cpu, _ = trivial_sweep(code, args.small, Path(tmp))
                large_wall, large_cpu, gap = trivial_sweep(code, args.large, Path(tmp))
                n = args.large - args.small
                rows[name].append(((large_wall - small_wall) / n, (large_cpu - small_cpu) / n, gap or 0.0))
    load = os.getloadavg()[0]
    print(f"trivial trials under the warm launcher, one at a time: ({args.large} - {args.small} trials) / "
          f"{args.large - args.small}, median of {args.reps} interleaved runs, {cores()} cores, load {load:.1f}")
    print(f"{'code':<12}{'ms/trial':>10}{'cpu ms/trial':>14}{'start-to-start ms':>19}")
    med = {name: [statistics.median(col) * 1000 for col in zip(*r, strict=True)] for name, r in rows.items()}
    for name, (wall, cpu, gap) in med.items():
        print(f"{name:<12}{wall:>10.1f}{cpu:>14.1f}{gap:>19.1f}")
    if "before" in med:
        new, old = med["this code"], med["before"]
        print(f"{'before/now':<12}{ratio(old[0], new[0]):>10}{ratio(old[1], new[1]):>14}{ratio(old[2], new[2]):>19}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--trivial", action="store_true", help="the overhead of a trivial trial instead")
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=220)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--before", help="a checkout of older code, measured the same way, interleaved")
    args = parser.parse_args()
    if args.trivial:
        return trivial(args)
    n = args.trials
    with tempfile.TemporaryDirectory() as tmp:
        warm_wall, warm_trial = sweep_run("fork", n, Path(tmp) / "fork")
        spawn_wall, spawn_trial = sweep_run("spawn", n, Path(tmp) / "spawn")
    plain_wall = 0.0
    for i in range(n):
        wall, proc = timed([sys.executable, str(HERE / "tiny_mlp.py"), f"--seed={i}"])
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        plain_wall += wall
    print(f"per-trial cost: {n} trials of a tiny MLP, {cores()} cores, jobs 1")
    print(f"{'method':<28}{'total s':>10}{'per trial s':>14}{'vs plain':>10}")
    print(f"{'plain python runs':<28}{plain_wall:>10.2f}{plain_wall / n:>14.3f}{'1.0x':>10}")
    print(f"{'sweep run --launcher spawn':<28}{spawn_wall:>10.2f}{spawn_trial:>14.3f}{ratio(plain_wall, spawn_wall):>10}")
    print(f"{'sweep run (warm fork)':<28}{warm_wall:>10.2f}{warm_trial:>14.3f}{ratio(plain_wall, warm_wall):>10}")
    print(f"warm launcher vs plain runs: {ratio(plain_wall, warm_wall)} faster end to end "
          f"(target 10x); per trial {ratio(plain_wall / n, warm_trial)}")


if __name__ == "__main__":
    main()
