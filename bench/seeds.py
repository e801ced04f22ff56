"""Issue 16's noisy-objective benchmark: does ``sweep rerun --top 5 --seeds 3`` pick a truly
better configuration than the single best run of a sweep?

The script (bench/noisy_objective.py) scores a configuration by a known true quality plus seed
noise. Each experiment runs a real 20-trial random sweep (bench/seeds.yaml, seeded by the
experiment) and then reruns its 5 best configurations with 3 new seeds; it compares the true
quality of the configuration the single best run names with that of the rerun's best mean.

    python bench/seeds.py [--experiments 10] [--trials 20] [--top 5] [--seeds 3]
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


def experiment(seed: int, trials: int, top: int, seeds: int, work: Path) -> tuple[float, float, float]:
    """True quality of the single best run's configuration, of the rerun's pick, and of the best
    configuration the sweep tried (what a perfect judge would pick)."""
    runs = work / f"runs{seed}"
    sweep("run", HERE / "seeds.yaml", "--seed", seed, "--trials", trials, "--runs-dir", runs)
    rows = json.loads(sweep("ls", "--runs-dir", runs, "--format", "json", "--sort", "eval_accuracy"))
    single = rows[0]
    sweep("rerun", "--top", top, "--seeds", seeds, "--seed-flag", "seed", "--runs-dir", runs)
    picked = json.loads(sweep("ls", "--runs-dir", runs, "--sweep", "last", "--group", "--format", "json"))[0]
    quality = lambda row: true_quality(row["flag_lr"], row["flag_dropout"])  # noqa: E731
    return quality(single), quality(picked), max(quality(r) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    single, rerun, oracle = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        for seed in range(args.experiments):
            s, r, o = experiment(seed, args.trials, args.top, args.seeds, Path(tmp))
            single.append(s)
            rerun.append(r)
            oracle.append(o)
            print(f"experiment {seed}: single best run's pick {s:.4f}, rerun's pick {r:.4f}, best tried {o:.4f}")
    gaps = [r - s for s, r in zip(single, rerun, strict=True)]
    wins = sum(g > 1e-12 for g in gaps)
    ties = sum(abs(g) <= 1e-12 for g in gaps)
    mean_s, mean_r, mean_o = statistics.fmean(single), statistics.fmean(rerun), statistics.fmean(oracle)
    print(f"\n{args.experiments} experiments x ({args.trials} trials + rerun --top {args.top} --seeds {args.seeds}); "
          f"noise sd 0.02; true quality of the pick (best possible 0.9):")
    print(f"  single best run:           {mean_s:.4f}")
    print(f"  rerun's best mean:         {mean_r:.4f}  ({mean_r - mean_s:+.4f} on average; "
          f"better in {wins}, same in {ties}, worse in {len(gaps) - wins - ties})")
    print(f"  best configuration tried:  {mean_o:.4f}  (the rerun closes "
          f"{(mean_r - mean_s) / (mean_o - mean_s) * 100 if mean_o > mean_s else 0:.0f}% of the gap)")
    print(f"  regret (best tried - pick): single {mean_o - mean_s:.4f}, rerun {mean_o - mean_r:.4f}")
    print(f"took {time.perf_counter() - start:.0f} s; load average {load:.2f} at the start "
          f"({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
