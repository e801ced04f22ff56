"""A one-trial sweep of a trivial argparse script, end to end, against a hand-written Optuna
loop running it once, interleaved (medians): issue 17's start target (<= 0.5 s). ``--before
PATH``: also time the sweep package at PATH (a checkout of older code: ``git archive REV sweep
| tar -x -C PATH``), back to back on the same load.

    python bench/start.py [--reps 10] [--before PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import ROOT, timed
from peers import OPTUNA_LOOP, SPACES, TRIVIAL, flags_yaml, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--before", metavar="PATH")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as users run it
    trees = {"sweep": str(ROOT), **({"sweep before": args.before} if args.before else {})}
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sweep-start-") as tmp:
        work = Path(tmp)
        (work / "trivial.py").write_text(TRIVIAL)
        (work / "trivial.yaml").write_text(flags_yaml("trivial.py", SPACES["trivial"]))
        (work / "loop.py").write_text(OPTUNA_LOOP)
        cmds = {name: ([sys.executable, "-m", "sweep", "run", "trivial.yaml", "-n", "1", "--runs-dir", "runs"],
                       dict(env, PYTHONPATH=tree)) for name, tree in trees.items()}
        cmds["optuna loop"] = ([sys.executable, "loop.py", "trivial.py", "1", repr(SPACES["trivial"])], env)
        for rep in range(args.reps + 1):  # the first round writes .pyc files and warms caches
            for name, (cmd, cmd_env) in cmds.items():
                wall, done = timed(cmd, cwd=work, env=cmd_env)
                if done.returncode != 0:
                    sys.exit(f"{name}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
                if rep:
                    times.setdefault(name, []).append(wall)
    print(f"one trivial trial, {args.reps} interleaved repetitions, load {load()} at the end")
    for name, walls in times.items():
        print(f"  {name:<13} median {statistics.median(walls):.3f} s  min {min(walls):.3f} s")


if __name__ == "__main__":
    main()
