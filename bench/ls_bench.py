"""Leaderboard speed: `sweep ls` over 1,000 and 10,000 generated run directories, cold (no
index yet) and warm, and the growth between them. Never imports optuna or torch.

    python bench/ls_bench.py
"""

import sys
import tempfile
from pathlib import Path

from common import ROOT, cores, fake_runs, timed


def ls(runs: Path, fmt: str) -> float:
    wall, proc = timed([sys.executable, "-m", "sweep", "ls", "--runs-dir", str(runs), "--sort", "eval_accuracy",
                        "--format", fmt], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return wall


def main() -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 10000):
            runs = Path(tmp) / str(n)
            fake_runs(runs, n)
            cold = ls(runs, "csv")
            warm = min(ls(runs, "csv") for _ in range(3))
            table = min(ls(runs, "table") for _ in range(2))
            json_ = min(ls(runs, "json") for _ in range(2))
            figures[n] = (cold, warm, table, json_)
        probe, proc = timed([sys.executable, "-X", "importtime", "-m", "sweep", "ls", "--runs-dir", str(runs),
                             "--top", "1"], cwd=ROOT)
    heavy = [m for m in ("optuna", "torch") if f" {m}\n" in proc.stderr or f"| {m}\n" in proc.stderr]
    print(f"sweep ls --sort eval_accuracy, {cores()} cores (seconds, best of a few; cold = first call, no index)")
    print(f"{'runs':>7}{'cold csv':>10}{'csv':>8}{'table':>8}{'json':>8}")
    for n, (cold, warm, table, json_) in figures.items():
        print(f"{n:>7}{cold:>10.2f}{warm:>8.2f}{table:>8.2f}{json_:>8.2f}")
    growth = figures[10000][1] / figures[1000][1]
    print(f"10,000 runs warm: {figures[10000][1]:.2f} s (target < 1 s); growth 1k -> 10k: {growth:.1f}x for 10x the runs")
    print(f"imports optuna/torch: {', '.join(heavy) if heavy else 'neither'}")


if __name__ == "__main__":
    main()
