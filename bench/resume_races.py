"""The races issue 11 found in resuming, tried again with real sweep processes (a 12-point
list space, 2 jobs, spawn launcher, trials that sleep 0.3 s):

- "two resumes": kill -9 the sweep after 3 trials, then start two ``--resume`` at once.
  One driver per sweep: one resume runs, the other refuses in one line; 12 completed.
- "clean between": Ctrl-C with trials running, ``clean --failed``, ``--resume``: every
  combination completed exactly once, none twice and none missing.

Prints, per round, the exit statuses and the completed count; exits 1 on any miss.

    python bench/resume_races.py [ROUNDS]
"""

import collections
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

from sweep import rundir

SCRIPT = ROOT / "tests" / "scripts" / "reliability" / "trial.py"
POINTS = list(range(1, 13))


def project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "trial.py").write_bytes(SCRIPT.read_bytes())
    flags = root / "flags.yaml"
    flags.write_text(json.dumps({"script": "trial.py", "trials": 12, "jobs": 2, "seed": 1,
                                 "flags": {"a": POINTS, "sleep": 0.3}}))
    return flags


def sweep(flags: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sweep", "run", str(flags), "--runs-dir", str(flags.parent / "runs"),
           "--launcher", "spawn", *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def runs(flags: Path, archive: bool = False) -> list[rundir.Run]:
    folder = flags.parent / "runs"
    return rundir.list_runs(folder) + (rundir.list_runs(folder / rundir.ARCHIVE_DIR) if archive else [])


def wait_until(cond, proc: subprocess.Popen) -> None:
    while not cond() and proc.poll() is None:
        time.sleep(0.02)


def completed(flags: Path) -> collections.Counter:
    return collections.Counter(r.flags["a"] for r in runs(flags, archive=True) if r.status == "completed")


def two_resumes(root: Path) -> bool:
    flags = project(root)
    first = sweep(flags)
    wait_until(lambda: sum(r.status == "completed" for r in runs(flags)) >= 3, first)
    first.kill()
    first.wait()
    a, b = sweep(flags, "--resume"), sweep(flags, "--resume")
    codes = sorted([a.wait(), b.wait()])
    refusals = [line for p in (a, b) for line in p.stderr.read().splitlines() if "already running" in line]
    done = completed(flags)
    ok = codes == [0, 1] and len(refusals) == 1 and done == collections.Counter(POINTS)
    print(f"two resumes:    exit {codes}, {sum(done.values())} completed of 12, "
          f"{len(done)} distinct  {'ok' if ok else 'MISS'}  ({refusals[0] if refusals else 'no refusal'})")
    return ok


def clean_between(root: Path) -> bool:
    flags = project(root)
    first = sweep(flags)
    wait_until(lambda: sum(r.status == "completed" for r in runs(flags)) >= 4
               and sum(r.status == "running" for r in runs(flags)) == 2, first)
    first.send_signal(signal.SIGINT)
    first.wait()
    interrupted = sum(r.status == "interrupted" for r in runs(flags))
    clean = subprocess.run([sys.executable, "-m", "sweep", "clean", "--failed", "--runs-dir",
                            str(flags.parent / "runs")], cwd=ROOT, capture_output=True, text=True)
    resumed = sweep(flags, "--resume")
    code = resumed.wait()
    done = completed(flags)
    ok = clean.returncode == 0 and code == 0 and done == collections.Counter(POINTS)
    print(f"clean between:  {interrupted} interrupted and archived, resume exit {code}, "
          f"{sum(done.values())} completed of 12, {len(done)} distinct  {'ok' if ok else 'MISS'}")
    return ok


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            results.append(two_resumes(Path(tmp) / f"two{i}"))
            results.append(clean_between(Path(tmp) / f"clean{i}"))
    print(f"{sum(results)} of {len(results)} rounds right")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
