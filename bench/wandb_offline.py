"""What wandb costs a trial: the same tiny W&B sweep (3 trials, each logging 5 steps) with the
script calling wandb in offline mode, in disabled mode, and with no wandb at all, under both
launchers. Prints seconds per trial and the machine's load (figures are noisy on a busy one).

    python bench/wandb_offline.py [TRIALS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WITH_WANDB = """\
import wandb
run = wandb.init(project="bench", config={"lr": 0.1})
for step in range(5):
    wandb.log({"loss": wandb.config.lr / (step + 1)})
wandb.finish()
"""
WITHOUT = """\
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
for step in range(5):
    print(f"step {step} loss={args.lr / (step + 1)}")
"""
SWEEP = """\
program: train.py
method: random
metric: {name: loss}
run_cap: %d
parameters:
  lr: {min: 0.01, max: 0.1}
"""


def per_trial(script: str, mode: str | None, launcher: str, trials: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(script)
        (folder / "sweep.yaml").write_text(SWEEP % trials)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
        if mode:
            env["WANDB_MODE"] = mode
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "sweep", "run", "sweep.yaml", "--launcher", launcher,
                               "--runs-dir", "runs"], cwd=folder, env=env, capture_output=True, text=True)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        return took / trials


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"load average before: {os.getloadavg()[0]:.1f} ({len(os.sched_getaffinity(0))} cores)")
    print(f"{'launcher':<8} {'no wandb':>10} {'disabled':>10} {'offline':>10}  (seconds per trial, {trials} trials)")
    for launcher in ("fork", "spawn"):
        row = [per_trial(WITHOUT, None, launcher, trials), per_trial(WITH_WANDB, "disabled", launcher, trials),
               per_trial(WITH_WANDB, "offline", launcher, trials)]
        print(f"{launcher:<8} " + " ".join(f"{x:>10.2f}" for x in row))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
