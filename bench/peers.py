"""sweep side by side with what a user would otherwise run, in one run: a hand-written Optuna
``study.optimize`` loop running the script in a subprocess per trial; Optuna calling the
training code in-process (the floor); Guild AI where it is installed. 1, 20 and 100 trials of
a trivial argparse script and 20 of a tiny torch MLP (bench/tiny_mlp.py). Each figure is the
median of interleaved repetitions (every method once per round), wall time of the whole
command, a fresh process each, as a user would type it.

    python bench/peers.py [--reps 3] [--quick] [--guild PATH]

--quick: 1, 5 and 20 trivial trials and 5 torch trials (per trial from 20 vs 5).
--guild: folders (joined by ':') holding guildai and what it needs here: guildai 0.9.0 imports
pkg_resources (pip install --target A guildai; pip install --target B "setuptools<70"; then
--guild A:B). Without it, Guild AI runs only if this python imports it.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from common import ROOT, cores

HERE = Path(__file__).resolve().parent

TRIVIAL = textwrap.dedent('''\
    import argparse

    parser = argparse.ArgumentParser(description="a trivial trial")
    parser.add_argument("--x", type=float, default=0.5)
    args = parser.parse_args()
    print(f"eval_accuracy: {1 - (args.x - 0.3) ** 2:.6f}")
''')

SPACES = {  # flag -> (optuna suggestion, sweep flags-file entry)
    "trivial": {"x": ("float", 0.0, 1.0)},
    "torch": {"lr": ("log", 0.001, 0.1), "hidden": ("choice", 16, 32, 64), "seed": ("int", 0, 1000)},
}

# The hand-written loop and the in-process floor: what a user would write with Optuna alone.
OPTUNA_COMMON = textwrap.dedent('''\
    import re, sys
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    script, n, space = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3])

    def flags(trial):
        out = []
        for name, (kind, *rest) in space.items():
            if kind == "float":
                value = trial.suggest_float(name, rest[0], rest[1])
            elif kind == "log":
                value = trial.suggest_float(name, rest[0], rest[1], log=True)
            elif kind == "int":
                value = trial.suggest_int(name, rest[0], rest[1])
            else:
                value = trial.suggest_categorical(name, list(rest))
            out.append(f"--{name}={value}")
        return out

    def value(text):
        return float(re.findall(r"eval_accuracy: ([-0-9.eE+]+)", text)[-1])
''')

OPTUNA_LOOP = OPTUNA_COMMON + textwrap.dedent('''\
    import subprocess

    def objective(trial):
        done = subprocess.run([sys.executable, script, *flags(trial)], capture_output=True, text=True,
                              check=True)
        return value(done.stdout)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=n)
''')

OPTUNA_INPROCESS = OPTUNA_COMMON + textwrap.dedent('''\
    import contextlib, io, runpy

    def objective(trial):
        sys.argv = [script, *flags(trial)]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
        return value(out.getvalue())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=n)
''')


def flags_yaml(script: str, space: dict) -> str:
    lines = [f"script: {script}", "seed: 0", "metric: eval_accuracy", "flags:"]
    for name, (kind, *rest) in space.items():
        if kind == "choice":
            lines.append(f"  {name}: [{', '.join(map(str, rest))}]")
        else:
            extra = {"log": ", log: true", "int": ", int: true"}.get(kind, "")
            lines.append(f"  {name}: {{min: {rest[0]}, max: {rest[1]}{extra}}}")
    return "\n".join(lines) + "\n"


def guild_space(space: dict, n: int) -> list[str]:
    """Guild's batch of ``n`` trials: a list of values a flag (its random optimizer needs a
    numpy older than 2), ``--max-trials`` cutting their product to ``n``."""
    rng = random.Random(0)
    out = []
    for name, (kind, *rest) in space.items():
        if kind == "choice":
            values = list(rest)
        elif kind == "log":
            values = [round(math.exp(rng.uniform(math.log(rest[0]), math.log(rest[1]))), 6) for _ in range(n)]
        elif kind == "int":
            values = [rng.randint(rest[0], rest[1]) for _ in range(n)]
        else:
            values = [round(rng.uniform(rest[0], rest[1]), 6) for _ in range(n)]
        out.append(f"{name}=[{','.join(map(str, values))}]")
    return out


class Bench:
    def __init__(self, work: Path, guild: str | None) -> None:
        self.work = work
        self.guild = guild
        self.count = 0
        (work / "trivial.py").write_text(TRIVIAL)
        shutil.copy(HERE / "tiny_mlp.py", work / "tiny_mlp.py")
        (work / "loop.py").write_text(OPTUNA_LOOP)
        (work / "inprocess.py").write_text(OPTUNA_INPROCESS)
        for kind, script in (("trivial", "trivial.py"), ("torch", "tiny_mlp.py")):
            (work / f"{kind}.yaml").write_text(flags_yaml(script, SPACES[kind]))

    def methods(self) -> list[str]:
        return ["sweep", "optuna loop", "optuna in-process"] + (["guild"] if self.guild is not None else [])

    def command(self, method: str, kind: str, n: int) -> tuple[list[str], dict[str, str]]:
        self.count += 1
        script = str(self.work / ("trivial.py" if kind == "trivial" else "tiny_mlp.py"))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p))
        if method == "sweep":
            runs = self.work / f"runs{self.count}"
            return [sys.executable, "-m", "sweep", "run", str(self.work / f"{kind}.yaml"), "--trials", str(n),
                    "--runs-dir", str(runs)], env
        if method in ("optuna loop", "optuna in-process"):
            file = "loop.py" if method == "optuna loop" else "inprocess.py"
            return [sys.executable, str(self.work / file), script, str(n), repr(SPACES[kind])], env
        assert self.guild is not None
        home = self.work / f"guild{self.count}"
        env.update(GUILD_HOME=str(home), PYTHONPATH=os.pathsep.join(p for p in [self.guild, env["PYTHONPATH"]] if p),
                   NO_NET="1", NO_WARN_RUNDIR="1")
        home.mkdir()
        return [sys.executable, "-m", "guild.main_bootstrap", "run", Path(script).name, *guild_space(SPACES[kind], n),
                "--max-trials", str(n), "--yes", "--quiet"], env

    def time(self, method: str, kind: str, n: int) -> float | None:
        import time

        cmd, env = self.command(method, kind, n)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=self.work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            tail = done.stderr.strip()[-300:]
            print(f"  {method}, {n} {kind} trials: exit {done.returncode}: {tail}", file=sys.stderr)
            return None
        return wall


def guild_path(given: str | None) -> str | None:
    """Where guildai imports from, or None when it does not here (said in the output)."""
    if given:
        return given if any((Path(p) / "guild").is_dir() for p in given.split(os.pathsep)) else None
    return "" if importlib.util.find_spec("guild") else None


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--guild", metavar="PATH")
    args = parser.parse_args()
    small, mid, large, torch_n = (1, 5, 20, 5) if args.quick else (1, 20, 100, 20)
    cases = [("trivial", small), ("trivial", mid), ("trivial", large), ("torch", torch_n)]
    guild = guild_path(args.guild)
    print(f"peers: {cores()} cores, load {load()} at start, {args.reps} interleaved repetitions, medians (s)")
    if guild is None:
        print("Guild AI: not importable here (pip install --target PATH guildai, then --guild PATH)")
    with tempfile.TemporaryDirectory(prefix="sweep-peers-") as tmp:
        bench = Bench(Path(tmp), guild)
        methods = bench.methods()
        times: dict[tuple[str, str, int], list[float]] = {}
        for rep in range(args.reps):
            for kind, n in cases[rep % len(cases):] + cases[:rep % len(cases)]:  # no case always after torch
                for method in methods:
                    wall = bench.time(method, kind, n)
                    if wall is not None:
                        times.setdefault((method, kind, n), []).append(wall)
            print(f"  round {rep + 1} done, load {load()}", file=sys.stderr)

    def med(method: str, kind: str, n: int) -> float | None:
        found = times.get((method, kind, n))
        return statistics.median(found) if found else None

    rows = [(f"{n} trial{'s' * (n > 1)} of a torch-free script", "trivial", n) for _, n in cases[:3]]
    width = 34
    print(f"{'':<{width}}" + "".join(f"{m:>19}" for m in methods) + f"{'loop/sweep':>12}{'sweep/floor':>13}")

    def line(label: str, values: list[float | None], unit: str = "s") -> None:
        cells = "".join(f"{'-' if v is None else f'{v:.3f} {unit}':>19}" if unit == "s" else
                        f"{'-' if v is None else f'{v:.1f} ms':>19}" for v in values)
        s, loop, floor = values[0], values[1], values[2]
        ratio = f"{loop / s:.2f}x" if s and loop else "-"
        floor_ratio = f"{s / floor:.2f}x" if s and floor else "-"
        print(f"{label:<{width}}{cells}{ratio:>12}{floor_ratio:>13}")

    for label, kind, n in rows:
        line(label, [med(m, kind, n) for m in methods])
    per = []
    for m in methods:
        a, b = med(m, "trivial", large), med(m, "trivial", mid)
        per.append(None if a is None or b is None else 1000 * (a - b) / (large - mid))
    line(f"per trial ({large} vs {mid})", per, unit="ms")
    line(f"{torch_n} tiny torch trials", [med(m, "torch", torch_n) for m in methods])
    print(f"load {load()} at the end; loop/sweep > 1: sweep is faster than the hand-written loop; "
          "sweep/floor: sweep's time over Optuna in-process")


if __name__ == "__main__":
    main()
