"""Shared bits of the benchmarks: timing, peak memory, and generated run directories."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sweep import rundir  # noqa: E402


def cores() -> int:
    return len(os.sched_getaffinity(0))


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - start, proc


def fake_runs(runs_dir: Path, n: int, seed: int = 0) -> None:
    """``n`` completed run directories in the real format, as a sweep would leave them."""
    rng = random.Random(seed)
    runs_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time() - n
    for i in range(n):
        stage, path = rundir.stage_run_dir(runs_dir)
        flags = {"dropout": rng.choice([0.2, 0.3, 0.4, 0.5]), "lr": 10 ** rng.uniform(-4, -1),
                 "activation": rng.choice(["relu", "tanh"]), "hidden": rng.choice([16, 32, 64])}
        metrics = {"train_accuracy": rng.random(), "eval_accuracy": rng.random(),
                   "train_loss": rng.random(), "eval_loss": rng.random()}
        rundir.write_json(stage / rundir.FLAGS_FILE, flags)
        rundir.write_json(stage / rundir.METRICS_FILE, metrics)
        (stage / rundir.METRICS_HISTORY).write_text(json.dumps({"step": 0, **metrics}) + "\n")
        (stage / rundir.OUTPUT_FILE).write_text("done\n")
        rundir.write_json(stage / rundir.RUN_FILE, {
            "format": rundir.FORMAT, "id": path.name, "sweep": f"sbench{i // 1000}", "trial": i,
            "status": "completed", "start": t0 + i, "end": t0 + i + 1, "duration": 1.0,
            "exit_code": 0, "reason": None, "steps": 0, "metric": "eval_accuracy",
            "goal": "maximize", "command": ["python", "train.py"],
        })
        rundir.publish_run_dir(stage, path)
        rundir.note_ended(runs_dir, path, f"sbench{i // 1000}")  # as the sweep does when a run ends


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "inf"
