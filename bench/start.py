"""A one-trial sweep of a trivial argparse script, end to end, against a hand-written Optuna
loop running it once, interleaved (medians of wall time and of the CPU time of the command's
whole process tree): issue 17's start target (<= 0.5 s). ``--before PATH``: also time the sweep
package at PATH (a checkout of older code: ``git archive REV sweep | tar -x -C PATH``), back to
back on the same load. ``--timeline``: where one sweep's time goes, each process's steps in
milliseconds from the command's start (an audit hook, ``sys.addaudithook``, in each python).

    python bench/start.py [--reps 10] [--before PATH] [--timeline]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, timed
from peers import OPTUNA_LOOP, SPACES, TRIVIAL, flags_yaml, load

# Loaded by every python of the sweep (the sweep, the launcher's server, forked children inherit
# it): one line a step to $START_TIMELINE, "time pid parent what".
HOOK = r'''
import os, sys, time
_fd = os.open(os.environ["START_TIMELINE"], os.O_WRONLY | os.O_APPEND)
_MODULES = {"sweep.cli", "typer", "sweep.runner", "yaml", "optuna", "numpy", "tqdm", "sweep.driver",
            "sweep.forkserver", "argparse"}
_seen = set()


def _note(what):
    if (os.getpid(), what) not in _seen:  # the first time in each process
        _seen.add((os.getpid(), what))
        os.write(_fd, f"{time.time():.6f} {os.getpid()} {os.getppid()} {what}\n".encode())


def _hook(event, args):
    if event == "import" and args[0] in _MODULES:
        _note(f"import {args[0]}")
    elif event == "subprocess.Popen":
        _note("start " + " ".join(map(str, args[1][1:4])))
    elif event == "os.fork":
        _note("fork")
    elif event == "os.rename" and str(args[1]).endswith("run.json"):
        _note("run.json written")
    elif event == "open" and str(args[0]).endswith("output.log") and args[1] is None:
        _note("output.log opened")


_note("python started")
sys.addaudithook(_hook)
'''


def run_times(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall and CPU seconds of a command and all it started (once reaped), its exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, done = timed(cmd, cwd=cwd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, done.returncode, done.stderr


def timeline(work: Path, env: dict[str, str]) -> None:
    hook = work / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    log = work / "timeline.log"
    log.write_text("")
    cmd = [sys.executable, "-m", "sweep", "run", "trivial.yaml", "-n", "1", "--runs-dir", "timeline-runs"]
    start = time.time()
    wall, _, code, said = run_times(cmd, work, dict(env, PYTHONPATH=f"{hook}{os.pathsep}{ROOT}",
                                                    START_TIMELINE=str(log)))
    if code != 0:
        sys.exit(f"timeline sweep: exit {code}: {said.strip()[-300:]}")
    roles: dict[str, str] = {}
    print("one sweep, ms from the command's start")
    for line in log.read_text().splitlines():
        stamp, pid, parent, what = line.split(" ", 3)
        if pid not in roles:  # the sweep; its children: the server (a python) and the probe (a fork)
            roles[pid] = ("sweep" if not roles else "trial" if roles.get(parent) == "server"
                          else "server" if what == "python started" else "probe")
        if what == "fork":
            what += {"sweep": ": the workdir probe", "server": ": the trial"}.get(roles[pid], "")
        print(f"  {1000 * (float(stamp) - start):7.1f}  {roles[pid]:<6} {what}")
    print(f"  {1000 * wall:7.1f}  sweep  exited")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--before", metavar="PATH")
    parser.add_argument("--timeline", action="store_true", help="Where one sweep's time goes, then the figures.")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as users run it
    trees = {"sweep": str(ROOT), **({"sweep before": args.before} if args.before else {})}
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
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
                wall, cpu, code, said = run_times(cmd, work, cmd_env)
                if code != 0:
                    sys.exit(f"{name}: exit {code}: {said.strip()[-300:]}")
                if rep:
                    walls.setdefault(name, []).append(wall)
                    cpus.setdefault(name, []).append(cpu)
        if args.timeline:
            timeline(work, env)
    print(f"one trivial trial, {args.reps} interleaved repetitions, load {load()} at the end")
    for name, times in walls.items():
        print(f"  {name:<13} median {statistics.median(times):.3f} s  min {min(times):.3f} s  "
              f"cpu {statistics.median(cpus[name]):.3f} s")


if __name__ == "__main__":
    main()
