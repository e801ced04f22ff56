"""Where a trivial trial's milliseconds go in the sweep process: wall and CPU time of each
phase of the loop (timers wrapped around the driver's, writer's, launcher's and study's
methods), per trial, over one sweep of trivial trials under the warm launcher; and the CPU of
the server and its trials (``getrusage``).

    python bench/trial_phases.py [--trials 200]
"""

import argparse
import collections
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT  # noqa: F401  (puts this checkout first on the path)

from sweep import cli, driver, index, journal, launch, rundir, search, trial, workdir

WALL: dict[str, float] = collections.defaultdict(float)
CPU: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()
PHASES = [(driver.Driver, "_run"), (driver.Driver, "_start"), (driver.Driver, "_end"), (driver.Driver, "_tidy"),
          (rundir.RunWriter, "create"), (rundir.RunWriter, "end"), (index.Notes, "ended"),
          (launch.ServerLauncher, "start"), (launch.ServerLauncher, "wait"), (search.Search, "ask"),
          (search.Search, "tell"), (journal, "sync"), (trial.Trial, "update"), (trial.Trial, "finish"),
          (trial, "prepare"), (workdir, "cleanup")]


def timed(owner: Any, name: str) -> None:
    real = getattr(owner, name)
    label = f"{getattr(owner, '__name__', owner)}.{name}".removeprefix("sweep.")

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return real(*args, **kwargs)
        finally:
            WALL[label] += time.perf_counter() - wall
            CPU[label] += time.process_time() - cpu
            CALLS[label] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    n = parser.parse_args().trials
    for owner, name in PHASES:
        timed(owner, name)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.py").write_text("print('eval_accuracy: 0.5')\n")
        (Path(tmp) / "f.yaml").write_text(f"script: t.py\ntrials: {n}\nflags:\n  x: {{min: 0.0, max: 1.0}}\n")
        sys.argv = ["sweep", "run", str(Path(tmp) / "f.yaml"), "--runs-dir", str(Path(tmp) / "runs")]
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (the sweep's lines and board)
        try:
            cli.main()
        except SystemExit:
            pass
        finally:
            sys.stdout, sys.stderr = out, err
    print(f"{n} trivial trials, warm launcher, load {os.getloadavg()[0]:.1f}: per trial, in the sweep process")
    print(f"{'phase':<28}{'wall ms':>10}{'cpu ms':>10}")
    for label in sorted(WALL, key=lambda k: -WALL[k]):
        print(f"{label:<28}{1000 * WALL[label] / n:>10.2f}{1000 * CPU[label] / n:>10.2f}")
    times = os.times()
    print(f"server and trials: {1000 * (times.children_user + times.children_system) / n:.2f} ms of CPU a trial")


if __name__ == "__main__":
    main()
