"""Parallel scaling: the same CPU-bound sweep with --jobs 1 and --jobs 2, side by side, and a
check that every trial's result is identical to the serial run.

    python bench/parallel.py [--trials 20] [--steps 1500]
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
    spans = []
    for path in runs.glob("*/run.json"):
        info = json.loads(path.read_text())
        spans.append((info["start"], info["end"]))
        flags = json.loads((path.parent / "flags.json").read_text())
        metrics = json.loads((path.parent / "metrics.json").read_text())
        results[info["trial"]] = (flags, metrics)
    busy = max(e for _, e in spans) - min(s for s, _ in spans)  # first trial start to last end
    return wall, busy, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1500, help="training steps per trial (CPU-bound work)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        serial_wall, serial_busy, serial = sweep(1, args.trials, args.steps, Path(tmp) / "j1")
        parallel_wall, parallel_busy, par = sweep(2, args.trials, args.steps, Path(tmp) / "j2")
    same = serial == par
    n = args.trials
    print(f"parallel scaling: {n} trials x {args.steps} steps, {cores()} cores")
    print(f"{'jobs':<6}{'wall s':>9}{'trials s':>10}{'trials/s':>10}{'speed-up':>10}{'wall speed-up':>15}")
    print(f"{1:<6}{serial_wall:>9.2f}{serial_busy:>10.2f}{n / serial_busy:>10.2f}{'1.00x':>10}{'1.00x':>15}")
    print(f"{2:<6}{parallel_wall:>9.2f}{parallel_busy:>10.2f}{n / parallel_busy:>10.2f}"
          f"{serial_busy / parallel_busy:>9.2f}x{serial_wall / parallel_wall:>14.2f}x")
    print(f"throughput --jobs 2 vs --jobs 1 (trials s: first trial start to last trial end): "
          f"{serial_busy / parallel_busy:.2f}x (target 1.8x); wall time including the sweep's "
          f"start-up: {serial_wall / parallel_wall:.2f}x; results identical to the serial run: "
          f"{'yes' if same else 'NO'}")
    if not same:
        for k in sorted(serial):
            if serial[k] != par.get(k):
                print(f"  trial {k}: serial {serial[k]} parallel {par.get(k)}")


if __name__ == "__main__":
    main()
