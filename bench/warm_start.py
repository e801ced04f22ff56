"""Warm start (issue 16): trials a TPE sweep needs to reach a quality bar, cold against warm-
started (``--warm-start``) from an earlier random sweep of a neighbouring space (each range
shifted by a fifth: the two spaces share 60% of each range, the best point lies in the
overlap). Real ``sweep run`` sweeps of bench/warm_bowl.py, whose quality is known; over
several seeds, each seed its own earlier sweep. A sweep that never reaches the bar counts as
its trial budget (a lower bound on its cost).

    python bench/warm_start.py [--seeds 5] [--trials 40] [--earlier 60] [--bar 0.95]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "warm_bowl.py"
NAMES = ("lr", "dropout", "wd", "warmup")


def flags_file(folder: Path, name: str, low: float, high: float, sampler: str, seed: int, trials: int) -> Path:
    path = folder / f"{name}.yaml"
    flags = {n: {"min": low, "max": high} for n in NAMES}
    path.write_text(yaml.safe_dump({"script": str(SCRIPT), "flags": flags, "sampler": sampler, "seed": seed,
                                    "trials": trials, "metric": "eval_accuracy", "goal": "maximize"}))
    return path


def sweep(path: Path, runs: Path, *args: str) -> str:
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--runs-dir", str(runs), *args],
                          capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"sweep run failed ({proc.returncode}):\n{proc.stderr}")
    return next(line.split()[1].rstrip(":") for line in proc.stderr.splitlines() if line.startswith("sweep s"))


def scores_of(runs: Path, sweep_id: str) -> list[tuple[int, float, dict]]:
    """(trial, eval_accuracy, flags) of each run of the sweep, in trial order."""
    scores = []
    for run in runs.iterdir():
        info_path = run / "run.json"
        if not info_path.is_file():
            continue
        info = json.loads(info_path.read_text())
        if info.get("sweep") == sweep_id:
            metrics = json.loads((run / "metrics.json").read_text())
            flags = json.loads((run / "flags.json").read_text())
            scores.append((info["trial"], metrics.get("eval_accuracy", float("-inf")), flags))
    return sorted(scores, key=lambda s: s[0])


def trials_to_bar(runs: Path, sweep_id: str, bar: float, budget: int) -> int:
    """How many of the sweep's trials ran up to and including the first that reached ``bar``."""
    scores = scores_of(runs, sweep_id)
    return next((i + 1 for i, (_, score, _) in enumerate(scores) if score >= bar), budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40, help="the budget of each new sweep")
    parser.add_argument("--earlier", type=int, default=60, help="trials of each earlier sweep")
    parser.add_argument("--bar", type=float, default=0.95)
    opts = parser.parse_args()
    cold, warm, head_start = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for seed in range(opts.seeds):
            runs = folder / f"runs{seed}"
            earlier = sweep(flags_file(folder, f"earlier{seed}", 0.0, 0.8, "random", 100 + seed, opts.earlier), runs)
            now = flags_file(folder, f"now{seed}", 0.2, 1.0, "tpe", seed, opts.trials)
            cold_id = sweep(now, runs)
            warm_id = sweep(now, runs, "--warm-start", earlier)
            cold.append(trials_to_bar(runs, cold_id, opts.bar, opts.trials))
            warm.append(trials_to_bar(runs, warm_id, opts.bar, opts.trials))
            # What the warm sweep was given: the earlier runs inside the new space, and their best
            inside = [score for _, score, flags in scores_of(runs, earlier) if min(flags.values()) >= 0.2]
            given = f"{len(inside)} earlier runs fit, best {max(inside, default=float('nan')):.3f}"
            head_start += max(inside, default=0.0) >= opts.bar
            print(f"seed {seed}: cold {cold[-1]:3d} trials, warm {warm[-1]:3d} trials ({given})", flush=True)
    load = os.getloadavg()[0]
    mean_cold, mean_warm = statistics.mean(cold), statistics.mean(warm)
    print(f"trials to eval_accuracy >= {opts.bar} (TPE, budget {opts.trials}, {opts.seeds} seeds, "
          f"earlier sweep: {opts.earlier} random trials; load {load:.1f}):")
    print(f"  cold  mean {mean_cold:.1f}  median {statistics.median(cold):.1f}  {cold}")
    print(f"  warm  mean {mean_warm:.1f}  median {statistics.median(warm):.1f}  {warm}")
    print(f"  ratio cold/warm: {mean_cold / mean_warm:.1f}x fewer trials (mean), "
          f"{statistics.median(cold) / statistics.median(warm):.1f}x (median); target >= 2x")
    print(f"  the earlier sweep had already reached the bar inside the new space in {head_start} of "
          f"{opts.seeds} seeds")


if __name__ == "__main__":
    main()
