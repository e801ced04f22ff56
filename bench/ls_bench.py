"""Leaderboard speed: `sweep ls` over 1,000 and 10,000 generated run directories, and the
growth between them. Never imports optuna or torch.

Three cases: "first" is the first call after the sweeps that wrote the runs (each sweep notes
its ended runs for the index, as bench/common.py's fake runs do too); "warm" is any later
call; "no index" is runs copied in from elsewhere, with no index and no notes at all.

    python bench/ls_bench.py
"""

import shutil
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
            first = ls(runs, "csv")
            warm = min(ls(runs, "csv") for _ in range(3))
            table = min(ls(runs, "table") for _ in range(2))
            json_ = min(ls(runs, "json") for _ in range(2))
            shutil.rmtree(runs / ".sweep")
            bare = ls(runs, "csv")
            figures[n] = (first, warm, table, json_, bare)
        probe, proc = timed([sys.executable, "-X", "importtime", "-m", "sweep", "ls", "--runs-dir", str(runs),
                             "--top", "1"], cwd=ROOT)
    heavy = [m for m in ("optuna", "torch") if f" {m}\n" in proc.stderr or f"| {m}\n" in proc.stderr]
    print(f"sweep ls --sort eval_accuracy, {cores()} cores (seconds, best of a few)")
    print(f"{'runs':>7}{'first csv':>11}{'csv':>8}{'table':>8}{'json':>8}{'no index csv':>14}")
    for n, (first, warm, table, json_, bare) in figures.items():
        print(f"{n:>7}{first:>11.2f}{warm:>8.2f}{table:>8.2f}{json_:>8.2f}{bare:>14.2f}")
    big, small = figures[10000], figures[1000]
    print(f"10,000 runs: first call {big[0]:.2f} s, later {big[1]:.2f} s (target < 1 s); "
          f"growth 1k -> 10k: {big[1] / small[1]:.1f}x for 10x the runs")
    print(f"10,000 runs with no index (copied in): {big[4]:.2f} s, once; it builds the index")
    print(f"imports optuna/torch: {', '.join(heavy) if heavy else 'neither'}")


if __name__ == "__main__":
    main()
