"""What smarter search buys, measured with the real tool (``python -m sweep run``).

(a) Compute to a good model. bench/search_curves.py trains a small numpy MLP for 27 epochs
    (cosine learning-rate decay) and logs its dev accuracy after each (flags: lr and l2 on log
    scales, hidden units, batch size; bench/search_curves.yaml). A sweep with a pruner runs
    bench/search_curves_<pruner>.yaml: the same file plus the pruner's settings (median: 5
    startup trials, 2 warm-up steps; hyperband and asha: reduction factor 3, rungs at steps 1,
    3, 9), fixed for every seed, explained in the file's comments and checked to differ from
    search_curves.yaml in nothing else. Each method (random, random + hyperband, tpe, tpe +
    median; also tpe + hyperband and random + asha) runs the same number of trials (150) for
    each seed (plain random needs that many: about 2% of its configurations reach the bar, and
    it first got there after 26 to 144 trials depending on the seed), one trial at a time, with ``--seed N --study search-bench-seed<N>``: with one
    seed, random and random + hyperband draw the same configurations in the same order (the
    random sampler ignores results), and Hyperband, which puts a trial in a bracket by a hash
    of the study name and trial number, brackets them the same way in every run.
    A run's epochs are its ``steps`` + 1 from run.json (steps count from 0): what it really
    trained, including any epoch a pruned trial ran on after the pruner's decision (its
    reason says "pruned at step N"; such overruns are counted and shown).
    Reported per method: in how many seeds it reached the bar; the epochs spent, in trial
    order, until the best dev accuracy found is within 0.5 points of the best any method found
    (over all seeds) and how many times fewer than plain random (the ratio of the means over
    seeds) and than the same sampler without a pruner; the final best; all epochs spent.
(b) Random beats grid when few flags matter. bench/search_xy.py scores 1 - (x - x*)^2 and
    ignores y; per seed x* is drawn uniformly from [0, 1] (the optimum is not known in
    advance). A 3x3 grid and 9 random trials (the same budget) each pick their best run;
    reported: how close its x is to x*, how often random is closer, how often each gets within
    0.05 of x*, and after how many trials random gets as close as the whole grid.

Sweeps run several at a time: those without a pruner, CPU-bound, as many at once as there
are cores; those with a pruner all at once, because they mostly sleep: in them every step from
the first the pruner can decide at to the last (steps 2-26 for the median pruner, 1-9 for
Hyperband and asha, whose rungs are steps 1, 3, 9) is followed by a ``--epoch-s`` pause
(bench/search_curves.py), so that a trial is still at the epoch where the pruner decides when
the driver, which reads metrics every 0.1 s, sends SIGTERM. With 0.05 s after every epoch a
pruned trial trained one or two epochs past the decision, which at a rung of 2 epochs doubles
its cost; with 0.2 s overruns are rare (a late driver on a loaded machine), and the table
counts them. Pausing at the rungs alone was tried: a driver late by more than one pause
(it writes each step it reports to the study's journal, with an fsync, before it asks the
pruner) let trials run on for several unpaced epochs: a quarter to two fifths of the pruned
runs overran, by 3-4 epochs on average. Which trials are pruned at which step does not depend
on the pause or the machine's load: the driver reports every step in order and asks the
pruner after each (checked once against Optuna run in-process with the same seeds, study
names and pruners: every trial's flags, status and pruning step were the same), so apart
from wall times and overruns the table is the same in every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
METHODS = {  # name: (sampler, pruner); a pruner's settings are in bench/search_curves_<pruner>.yaml
    "random": ("random", "none"),
    "random + hyperband": ("random", "hyperband"),
    "tpe": ("tpe", "none"),
    "tpe + median": ("tpe", "median"),
    "tpe + hyperband": ("tpe", "hyperband"),
    "random + asha": ("random", "asha"),
}
TOLERANCE = 0.005  # 0.5 points of accuracy
PRUNED_AT = re.compile(r"pruned at step (\d+)")
GRID_X = (1 / 6, 1 / 2, 5 / 6)
CLOSE = 0.05


def sweep_cmd(flags_file: Path, runs_dir: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs_dir), *options]


def run_sweep(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, NO_COLOR="1", **(env or {})))
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def read_runs(runs_dir: Path) -> list[dict]:
    """The runs of one sweep in trial order: trial, status, epochs trained, final value, flags."""
    out = []
    for path in runs_dir.iterdir():
        if path.name.startswith(".") or not (path / "run.json").is_file():
            continue
        info = json.loads((path / "run.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
        flags = json.loads((path / "flags.json").read_text())
        steps = info.get("steps")
        epochs = 0 if steps is None else steps + 1
        found = PRUNED_AT.fullmatch(info.get("reason") or "") if info["status"] == "pruned" else None
        # A pruned run's epochs had the trial stopped at the pruner's decision step.
        decided = min(epochs, int(found.group(1)) + 1) if found else epochs
        out.append({"trial": info["trial"], "status": info["status"], "flags": flags, "metrics": metrics,
                    "epochs": epochs, "overrun": epochs - decided})
    return sorted(out, key=lambda r: r["trial"])


def epochs_to(runs: list[dict], target: float, metric: str = "eval_accuracy") -> int | None:
    spent = 0
    for run in runs:
        spent += run["epochs"]
        value = run["metrics"].get(metric)
        if value is not None and value >= target:
            return spent
    return None


def fmt_mean(values: list[float], digits: int = 0) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:,.{digits}f}"


def flags_file_of(pruner: str) -> Path:
    return BENCH / ("search_curves.yaml" if pruner == "none" else f"search_curves_{pruner}.yaml")


def decision_steps(pruner: dict, epochs: int) -> list[int]:
    """The steps (from 0) after which the pruner can stop a trial: the median pruner at every
    step from its warm-up on; successive halving (asha, and each Hyperband bracket) only at
    its rungs, min_resource * reduction_factor**k (the driver reports every step in order, so
    the first step a rung can be judged at is the rung itself)."""
    if pruner["name"] == "median":
        return list(range(pruner.get("warmup_steps", 0), epochs))
    steps, step = [], pruner.get("min_resource", 1)
    while step < epochs:
        steps.append(step)
        step *= pruner.get("reduction_factor", 3)
    return steps


def pacing(pruner_name: str, pace: float) -> dict[str, str]:
    """The environment of a sweep's trials: no pause without a pruner; with one, a pause after
    every step from the first the pruner can decide at to the last (bench/search_curves.py).
    Pausing at the decision steps alone is not enough: when the driver is late (a loaded
    machine, a slow journal write) a trial then runs on unpaced for several epochs; pausing at
    every step in between keeps a late stop to an epoch or so, and after the last decision step
    no trial can be pruned, so there is nothing to wait for."""
    if pruner_name == "none":
        return {"SEARCH_CURVES_EPOCH_S": "0"}
    import yaml

    data = yaml.safe_load(flags_file_of(pruner_name).read_text())
    steps = decision_steps(data["pruner"], int(data["flags"]["epochs"]))
    return {"SEARCH_CURVES_EPOCH_S": repr(pace),
            "SEARCH_CURVES_PAUSE_AT": ",".join(map(str, range(steps[0], steps[-1] + 1)))}


def check_same_objective() -> None:
    """Every method searches the same space with the same script: the pruner files differ from
    search_curves.yaml only in their pruner."""
    import yaml

    base = yaml.safe_load(flags_file_of("none").read_text())
    assert "pruner" not in base
    for pruner in {p for _, p in METHODS.values()} - {"none"}:
        data = yaml.safe_load(flags_file_of(pruner).read_text())
        assert data.pop("pruner")["name"] == pruner, pruner
        assert data == base, f"{flags_file_of(pruner).name} differs from search_curves.yaml beyond its pruner"


def part_a(args: argparse.Namespace, tmp: Path, cpu: ThreadPoolExecutor, paced: ThreadPoolExecutor) -> list:
    check_same_objective()
    jobs = []
    for name, (sampler, pruner) in METHODS.items():
        for seed in range(args.seeds):
            runs_dir = tmp / "a" / f"{sampler}-{pruner}-{seed}"
            cmd = sweep_cmd(flags_file_of(pruner), runs_dir, "--sampler", sampler, "--seed", str(seed),
                            "--study", f"search-bench-seed{seed}", "--trials", str(args.trials), "--jobs", "1")
            jobs.append((name, seed, runs_dir, cmd))
    # Epochs are paced only where a pruner watches them; the others' results do not depend on it.
    futures = {}
    for name, seed, runs_dir, cmd in sorted(jobs, key=lambda j: j[1]):
        pruner = METHODS[name][1]
        pool = paced if pruner != "none" else cpu
        futures[(name, seed)] = pool.submit(run_sweep, cmd, pacing(pruner, args.epoch_s))
    return [(name, seed, runs_dir, cmd, futures[(name, seed)]) for name, seed, runs_dir, cmd in jobs]


def report_a(args: argparse.Namespace, jobs: list) -> None:
    results: dict[str, dict[int, list[dict]]] = {name: {} for name in METHODS}
    walls: dict[str, float] = {name: 0.0 for name in METHODS}
    for name, seed, runs_dir, cmd, future in jobs:
        walls[name] += future.result()
        results[name][seed] = read_runs(runs_dir)
        assert len(results[name][seed]) == args.trials, f"{runs_dir}: {len(results[name][seed])} runs"
    finals = [r["metrics"].get("eval_accuracy", 0.0) for m in results.values() for rs in m.values() for r in rs]
    best = max(finals)
    target = best - TOLERANCE
    seeds = range(args.seeds)
    print(f"(a) Compute to a good model: {args.seeds} seeds x {args.trials} trials per method, 27 epochs "
          f"a trial at most, pruner settings in bench/search_curves_<pruner>.yaml")
    example = next(j for j in jobs if METHODS[j[0]][1] != "none")
    env = " ".join(f"{k}={v}" for k, v in pacing(METHODS[example[0]][1], args.epoch_s).items())
    print(f"    example: {env} {shlex.join(example[3])}")
    print(f"    best dev accuracy any method found: {best:.4f}; target: within 0.5 points, >= {target:.4f}")
    print()
    head = ["method", "reached", "epochs to target (mean)", "per seed", "x fewer than random",
            "x fewer than no pruner", "final best (mean)", "epochs spent (mean)", "pruned", "overran"]
    rows = []
    means: dict[str, float] = {}
    missed: dict[str, bool] = {}

    def ratio(base: str, name: str) -> str:
        """How many times fewer epochs than ``base``; a seed that missed the target makes its
        method's mean too low, so the ratio is then a bound (or, both missing, unknown)."""
        value = f"{means[base] / means[name]:.1f}"
        if base == name:
            return value
        if missed[base] and missed[name]:
            return f"~{value} (both bounds)"
        return f">={value}" if missed[base] else f"<={value}" if missed[name] else value

    for name in METHODS:
        per_seed = [epochs_to(results[name][s], target) for s in seeds]
        total = [sum(r["epochs"] for r in results[name][s]) for s in seeds]
        # A seed that never reached the target is counted with all the epochs it spent (marked *):
        # a lower bound on what reaching the target would have cost.
        cost = [e if e is not None else t for e, t in zip(per_seed, total)]
        means[name] = statistics.fmean(cost)
        missed[name] = None in per_seed
        sampler, pruner = METHODS[name]  # the same sampler without a pruner is the method named after it
        final = [max(r["metrics"].get("eval_accuracy", 0.0) for r in results[name][s]) for s in seeds]
        runs = [r for s in seeds for r in results[name][s]]
        pruned = [r for r in runs if r["status"] == "pruned"]
        over = [r["overrun"] for r in pruned if r["overrun"]]
        rows.append([
            name, f"{sum(e is not None for e in per_seed)}/{args.seeds}",
            f"{means[name]:,.0f}" + ("*" if missed[name] else ""),
            " ".join(str(e) if e is not None else f"{t}*" for e, t in zip(per_seed, total)),
            ratio("random", name), "-" if pruner == "none" else ratio(sampler, name),
            f"{statistics.fmean(final):.4f} (min {min(final):.4f})",
            f"{statistics.fmean(total):,.0f}", f"{len(pruned)}/{len(runs)}",
            "-" if pruner == "none" else f"{len(over)} runs, {sum(over)} epochs",
        ])
    print_table(head, rows)
    print("    * never within 0.5 points in that seed: counted with every epoch it spent, so the mean is a")
    print("      lower bound and a ratio to it an upper bound (<=); >= where random itself missed.")
    print("    epochs = steps + 1 of each run (run.json), summed in trial order; x fewer = ratio of the")
    print("    means over seeds; 'overran' = pruned runs that trained past the step the pruner decided")
    print("    at, and the epochs that cost (all counted above).")
    print("    sweep wall time, added up over seeds: " + ", ".join(f"{n} {walls[n]:.0f} s" for n in METHODS))


def part_b(args: argparse.Namespace, tmp: Path, pool: ThreadPoolExecutor) -> list:
    rng = random.Random(2012)
    jobs = []
    for seed in range(args.grid_seeds):
        optimum = rng.random()
        env = {"SEARCH_XY_OPTIMUM": repr(optimum)}
        for kind in ("grid", "random"):
            runs_dir = tmp / "b" / f"{kind}-{seed}"
            cmd = sweep_cmd(BENCH / f"search_xy_{kind}.yaml", runs_dir, "--seed", str(seed), "--jobs", "1")
            jobs.append((kind, seed, optimum, runs_dir, cmd, pool.submit(run_sweep, cmd, env)))
    return jobs


def report_b(args: argparse.Namespace, jobs: list) -> None:
    data: dict[str, list[dict]] = {"grid": [], "random": []}
    for kind, seed, optimum, runs_dir, cmd, future in jobs:
        future.result()
        runs = read_runs(runs_dir)
        assert len(runs) == 9, f"{runs_dir}: {len(runs)} runs"
        best = max(runs, key=lambda r: r["metrics"]["score"])
        dist = [abs(r["flags"]["x"] - optimum) for r in runs]
        close = next((i + 1 for i, d in enumerate(dist) if d <= CLOSE), None)
        data[kind].append({"seed": seed, "dist": abs(best["flags"]["x"] - optimum), "close": close,
                           "distinct": len({r["flags"]["x"] for r in runs}),
                           "curve": [min(dist[:k]) for k in range(1, 10)]})
    n = args.grid_seeds
    print(f"(b) Random beats grid when one of two flags matters: score = 1 - (x - x*)^2, y ignored, "
          f"x* uniform in [0, 1], {n} seeds, 9 trials each")
    print(f"    grid:   {shlex.join(jobs[0][4])}")
    print(f"    random: {shlex.join(jobs[1][4])}")
    print()
    wins = sum(r["dist"] < g["dist"] for g, r in zip(data["grid"], data["random"]))
    ties = sum(r["dist"] == g["dist"] for g, r in zip(data["grid"], data["random"]))
    head = ["search", "distinct x tried", "|x_best - x*| mean", "median", "closer in the same seed",
            f"within {CLOSE} of x*"]
    rows = []
    for kind in ("grid", "random"):
        res = data[kind]
        rows.append([
            "3x3 grid" if kind == "grid" else "9 random", fmt_mean([r["distinct"] for r in res], 1),
            f"{statistics.fmean(r['dist'] for r in res):.4f}", f"{statistics.median(r['dist'] for r in res):.4f}",
            f"{wins if kind == 'random' else n - wins - ties}/{n}",
            f"{sum(r['close'] is not None for r in res)}/{n}",
        ])
    print_table(head, rows)
    print("    mean distance to x* of the closest x so far, after 1..9 trials:")
    curves = {}
    for kind in ("grid", "random"):
        curves[kind] = [statistics.fmean(r["curve"][k] for r in data[kind]) for k in range(9)]
        print(f"      {kind:<7}" + " ".join(f"{v:.3f}" for v in curves[kind]))
    match = next((k + 1 for k, v in enumerate(curves["random"]) if v <= curves["grid"][-1]), None)
    print(f"    random search gets as close as the whole 3x3 grid (mean {curves['grid'][-1]:.3f}) after "
          + (f"{match} trials" if match else "more than 9 trials"))


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in [head, ["-" * w for w in widths], *rows]:
        print("    " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per method in (a)")
    parser.add_argument("--trials", type=int, default=150, help="trials per sweep in (a)")
    parser.add_argument("--epoch-s", type=float, default=0.2, help="pause (s) after each epoch, in pruned sweeps, "
                        "from the first step the pruner can decide at to the last")
    parser.add_argument("--grid-seeds", type=int, default=20, help="seeds in (b)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1,
                        help="CPU-bound sweeps at once (those without a pruner, and (b)); sweeps with a "
                        "pruner, which mostly sleep, all run at once")
    parser.add_argument("--keep", action="store_true", help="keep the run directories (path printed)")
    args = parser.parse_args()
    print("$ " + shlex.join(["python", *sys.argv]))
    print(f"# {os.cpu_count()} cores; {args.parallel} CPU-bound sweeps at a time and every paced one at once; "
          f"python {sys.version.split()[0]}")
    print()
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        paced_jobs = args.seeds * sum(p != "none" for _, p in METHODS.values())
        with ThreadPoolExecutor(args.parallel) as pool, ThreadPoolExecutor(max(1, paced_jobs)) as paced:
            jobs_a = part_a(args, tmp, pool, paced)
            jobs_b = part_b(args, tmp, pool)
            report_a(args, jobs_a)
            print()
            report_b(args, jobs_b)
    finally:
        if args.keep:
            print(f"\nrun directories kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal runtime: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
