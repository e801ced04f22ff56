"""Issue 16's noisy-objective benchmark: does ``sweep rerun --top 5 --seeds 3`` pick a truly
better configuration than the single best run of a sweep?

The script (bench/noisy_objective.py) scores a configuration by a known true quality plus seed
noise (sd given by its --noise flag). Each experiment runs a real 20-trial random sweep
(bench/seeds.yaml, seeded by the experiment) and then reruns its 5 best configurations with 3
new seeds; it compares the true quality of the configuration the single best run names with
that of the rerun's best mean. Side by side for each noise level.

    python bench/seeds.py [--experiments 10] [--noise 0.01,0.02,0.04] [--trials 20] [--top 5] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from noisy_objective import true_quality  # noqa: E402


def sweep(*args: object) -> str:
    path = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])  # this checkout's sweep
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-m", "sweep", *map(str, args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"sweep {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def experiment(seed: int, noise: float, trials: int, top: int, seeds: int, work: Path) -> tuple[float, float, float]:
    """True quality of the single best run's configuration, of the rerun's pick, and of the best
    configuration the sweep tried (what a perfect judge would pick)."""
    runs = work / f"runs{seed}-{noise}"
    sweep("run", HERE / "seeds.yaml", "--seed", seed, "--trials", trials, "--runs-dir", runs, "--set", f"noise={noise}")
    rows = json.loads(sweep("ls", "--runs-dir", runs, "--format", "json", "--sort", "eval_accuracy"))
    single = rows[0]
    sweep("rerun", "--top", top, "--seeds", seeds, "--seed-flag", "seed", "--runs-dir", runs)
    picked = json.loads(sweep("ls", "--runs-dir", runs, "--sweep", "last", "--group", "--format", "json"))[0]
    quality = lambda row: true_quality(row["flag_lr"], row["flag_dropout"])  # noqa: E731
    return quality(single), quality(picked), max(quality(r) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10)
    parser.add_argument("--noise", default="0.01,0.02,0.04", help="noise levels (sd), comma-separated")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    table = []
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        for noise in (float(n) for n in args.noise.split(",")):
            picks = [experiment(seed, noise, args.trials, args.top, args.seeds, Path(tmp))
                     for seed in range(args.experiments)]
            for seed, (s, r, o) in enumerate(picks):
                print(f"noise {noise}, experiment {seed}: single best run's pick {s:.4f}, "
                      f"rerun's pick {r:.4f}, best tried {o:.4f}", flush=True)
            table.append((noise, picks))
    print(f"\n{args.experiments} experiments per noise level, each {args.trials} trials then "
          f"rerun --top {args.top} --seeds {args.seeds}; true quality of the pick (best possible 0.9):\n")
    print("| noise sd | single best run | rerun's best mean | rerun - single (mean) | better / same / worse "
          "| regret: single, rerun |")
    print("|---|---|---|---|---|---|")
    for noise, picks in table:
        single, rerun, oracle = (statistics.fmean(p[i] for p in picks) for i in range(3))
        gaps = [r - s for s, r, _ in picks]
        better, same = sum(g > 1e-12 for g in gaps), sum(abs(g) <= 1e-12 for g in gaps)
        print(f"| {noise} | {single:.4f} | {rerun:.4f} | {rerun - single:+.4f} | "
              f"{better} / {same} / {len(gaps) - better - same} | {oracle - single:.4f}, {oracle - rerun:.4f} |")
    print(f"\nregret: the best configuration the sweep tried, less the pick's true quality. "
          f"took {time.perf_counter() - start:.0f} s; load average {load:.2f} at the start ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
