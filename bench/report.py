"""`sweep report` over one sweep of 10,000 runs: seconds to write the HTML file and its size
(targets: at most 5 s and 15 MB), then, when Chromium is installed, the seconds a headless
browser takes to open it and whether the leaderboard holds every run.

    python bench/report.py
"""

import re
import shutil
import sys
import tempfile
from pathlib import Path

from common import ROOT, cores, fake_runs, timed

RUNS = 10_000
FLAGS = """script: train.py
metric: eval_accuracy
flags:
  dropout: [0.2, 0.3, 0.4, 0.5]
  lr: {min: 0.0001, max: 0.1, log: true}
  activation: [relu, tanh]
  hidden: [16, 32, 64]
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "flags.yaml").write_text(FLAGS)
        runs, out = root / "runs", root / "report.html"
        fake_runs(runs, RUNS, per_sweep=RUNS, flags_file=root / "flags.yaml")
        cmd = [sys.executable, "-m", "sweep", "report", "--runs-dir", str(runs), "-o", str(out)]
        timed(cmd, cwd=ROOT)  # the first call builds the ls index, as `sweep ls` after a sweep does
        walls = []
        for _ in range(3):
            wall, proc = timed(cmd, cwd=ROOT)
            if proc.returncode != 0:
                sys.exit(proc.stderr)
            walls.append(wall)
        size = out.stat().st_size
        print(f"sweep report, one sweep of {RUNS:,} runs, {cores()} cores")
        print(f"written in {min(walls):.2f} s (best of 3; target <= 5 s), {size / 1e6:.1f} MB (target <= 15 MB)")
        chromium = shutil.which("chromium")
        if chromium:
            wall, proc = timed([chromium, "--headless", "--no-sandbox", "--enable-unsafe-swiftshader",
                                "--use-angle=swiftshader", "--virtual-time-budget=10000", "--dump-dom", out.as_uri()])
            body = proc.stdout[proc.stdout.find('<table id="board">'):]
            rows = len(re.findall(r"<tr>", body[body.find("<tbody>"):]))
            print(f"headless Chromium opened it in {wall:.1f} s; leaderboard rows: {rows:,} (of {RUNS:,})")


if __name__ == "__main__":
    main()
