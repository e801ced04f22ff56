"""Parallel scaling: the same CPU-bound sweep with --jobs 1 and --jobs 2, side by side, and a
check that every trial's result is identical to the serial run.

    python bench/parallel.py [--trials 20] [--steps 400]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import ROOT, cores, timed

HERE = Path(__file__).resolve().parent


def sweep(jobs: int, trials: int, steps: int, runs: Path) -> tuple[float, dict]:
    wall, proc = timed([sys.executable, "-m", "sweep", "run", str(HERE / "tiny.yaml"), "--trials", str(trials),
                        "--jobs", str(jobs), "--runs-dir", str(runs)], cwd=ROOT,
                       env={**__import__("os").environ, "SWEEP_BENCH_STEPS": str(steps)})
    if proc.returncode != 0:
        sys.exit(f"--jobs {jobs} failed:\n{proc.stderr}")
    results = {}
    for path in runs.glob("*/run.json"):
        info = json.loads(path.read_text())
        flags = json.loads((path.parent / "flags.json").read_text())
        metrics = json.loads((path.parent / "metrics.json").read_text())
        results[info["trial"]] = (flags, metrics)
    return wall, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--steps", type=int, default=400, help="training steps per trial (CPU-bound work)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        serial_wall, serial = sweep(1, args.trials, args.steps, Path(tmp) / "j1")
        parallel_wall, par = sweep(2, args.trials, args.steps, Path(tmp) / "j2")
    same = serial == par
    speedup = serial_wall / parallel_wall
    print(f"parallel scaling: {args.trials} trials x {args.steps} steps, {cores()} cores")
    print(f"{'jobs':<6}{'wall s':>10}{'trials/s':>10}{'speed-up':>10}")
    print(f"{1:<6}{serial_wall:>10.2f}{args.trials / serial_wall:>10.2f}{'1.00x':>10}")
    print(f"{2:<6}{parallel_wall:>10.2f}{args.trials / parallel_wall:>10.2f}{speedup:>9.2f}x")
    print(f"throughput --jobs 2 vs --jobs 1: {speedup:.2f}x (target 1.8x); "
          f"results identical to the serial run: {'yes' if same else 'NO'}")
    if not same:
        for k in sorted(serial):
            if serial[k] != par.get(k):
                print(f"  trial {k}: serial {serial[k]} parallel {par.get(k)}")


if __name__ == "__main__":
    main()
