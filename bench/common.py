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


def fake_runs(runs_dir: Path, n: int, seed: int = 0, per_sweep: int = 1000, flags_file: Path | None = None) -> None:
    """``n`` ended run directories in the real format, written by rundir's own writer as a
    sweep would leave them (``per_sweep`` runs to a sweep; ``flags_file`` snapshot in each):
    one in 20 failed, with its reason, one in 10 pruned, the rest completed."""
    from sweep import index

    rng = random.Random(seed)
    runs_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time() - n
    notes: dict[str, index.Notes] = {}
    for i in range(n):
        flags = {"dropout": rng.choice([0.2, 0.3, 0.4, 0.5]), "lr": 10 ** rng.uniform(-4, -1),
                 "activation": rng.choice(["relu", "tanh"]), "hidden": rng.choice([16, 32, 64])}
        metrics = {"train_accuracy": rng.random(), "eval_accuracy": rng.random(),
                   "train_loss": rng.random(), "eval_loss": rng.random()}
        sweep = f"sbench{i // per_sweep}"
        status, reason, code = "completed", None, 0
        if i % 20 == 7:
            status, reason, code = "failed", "exit code 1: RuntimeError: CUDA out of memory", 1
            metrics = {"train_loss": metrics["train_loss"]}
        elif i % 10 == 3:
            status, reason = "pruned", f"pruned at step {rng.randint(1, 9)}"
        info = rundir.RunInfo(sweep=sweep, trial=i, status=status, start=t0 + i, end=t0 + i + 1, duration=1.0,
                              exit_code=code, steps=0, metric="eval_accuracy", goal="maximize", reason=reason,
                              command=["python", "train.py"], flags_file=str(flags_file) if flags_file else None)

        def fill(stage: Path, path: Path, metrics: dict = metrics) -> None:
            (stage / rundir.METRICS_HISTORY).write_text(json.dumps({"step": 0, **metrics}) + "\n")
            if flags_file:
                (stage / rundir.SOURCE_DIR).mkdir()
                (stage / rundir.SOURCE_DIR / flags_file.name).write_bytes(flags_file.read_bytes())

        writer = rundir.RunWriter(runs_dir, [notes.setdefault(sweep, index.Notes(runs_dir, sweep))])
        path = writer.create(info, flags, fill)
        (path / rundir.OUTPUT_FILE).write_text("done\n")
        writer.end(path, info, metrics)
        ended = int((t0 + i + 1) * 1e9)  # when it ended, as its record says: past the racy window
        os.utime(path, ns=(ended, ended))
    for store in notes.values():  # noted, as a sweep leaves them
        store.flush()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "inf"
