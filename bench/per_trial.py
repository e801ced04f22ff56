"""Per-trial cost: 20 trials of a tiny PyTorch MLP through `sweep run` with the warm (fork)
launcher, with the spawn launcher, and as 20 plain `python tiny_mlp.py` runs, side by side.

    python bench/per_trial.py [--trials 20]
"""

import argparse
import json
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    n = parser.parse_args().trials
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
