"""What smarter search buys, measured with the real tool (``python -m sweep run``).

(a) Compute to a good model. bench/search_curves.py trains a small numpy MLP for 54 epochs
    (cosine learning-rate decay) and logs its dev accuracy after each (flags: lr and l2 on log
    scales, hidden units, batch size; bench/search_curves.yaml). A sweep with a pruner runs
    bench/search_curves_<pruner>.yaml: the same file plus the pruner's settings (median: 5
    warm-up epochs; hyperband and asha: reduction factor 3, first rung at 2 epochs), fixed
    for every seed and checked to differ from search_curves.yaml in nothing else. Each method (random, random + hyperband, tpe,
    tpe + median; also tpe + hyperband and random + asha) runs the same number of trials for each seed, one
    trial at a time. A run's epochs are its ``steps`` + 1 from run.json: what it really
    trained, including the epoch or two a pruned trial runs on before SIGTERM lands.
    Reported: the epochs spent, in trial order, until the best dev accuracy found is within
    0.5 points of the best any method found (over all seeds), and the final best.
(b) Random beats grid when few flags matter. bench/search_xy.py scores 1 - (x - x*)^2 and
    ignores y; per seed x* is drawn uniformly from [0, 1] (the optimum is not known in
    advance). A 3x3 grid and 9 random trials (the same budget) each pick their best run;
    reported: how close its x is to x*, how often random is closer, how often each gets within
    0.05 of x*, and after how many trials random gets as close as the whole grid.

Sweeps run several at a time; in pruned sweeps each epoch takes at least ``--epoch-s``
(mostly slept; see bench/search_curves.py), so that trials are still running when the pruner
decides.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
        out.append({"trial": info["trial"], "status": info["status"], "flags": flags, "metrics": metrics,
                    "epochs": 0 if steps is None else steps + 1})
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


def part_a(args: argparse.Namespace, tmp: Path, pool: ThreadPoolExecutor) -> list:
    check_same_objective()
    jobs = []
    for name, (sampler, pruner) in METHODS.items():
        for seed in range(args.seeds):
            runs_dir = tmp / "a" / f"{sampler}-{pruner}-{seed}"
            cmd = sweep_cmd(flags_file_of(pruner), runs_dir, "--sampler", sampler, "--seed", str(seed),
                            "--trials", str(args.trials), "--jobs", "1")
            jobs.append((name, seed, runs_dir, cmd))
    # Epochs are paced only where a pruner watches them; the others' results do not depend on it.
    futures = {}
    for name, seed, runs_dir, cmd in sorted(jobs, key=lambda j: j[1]):
        pace = args.epoch_s if METHODS[name][1] != "none" else 0.0
        futures[(name, seed)] = pool.submit(run_sweep, cmd, {"SEARCH_CURVES_EPOCH_S": repr(pace)})
    return [(name, seed, runs_dir, cmd, futures[(name, seed)]) for name, seed, runs_dir, cmd in jobs]


def report_a(args: argparse.Namespace, jobs: list) -> None:
    results: dict[str, dict[int, list[dict]]] = {name: {} for name in METHODS}
    walls: dict[str, float] = {name: 0.0 for name in METHODS}
    for name, seed, runs_dir, cmd, future in jobs:
        walls[name] += future.result()
        results[name][seed] = read_runs(runs_dir)
    finals = [r["metrics"].get("eval_accuracy", 0.0) for m in results.values() for rs in m.values() for r in rs]
    best = max(finals)
    target = best - TOLERANCE
    print(f"(a) Compute to a good model: {args.seeds} seeds x {args.trials} trials per method, up to 54 epochs "
          f"a trial, pruner settings in bench/search_curves_<pruner>.yaml")
    example = next(j for j in jobs if METHODS[j[0]][1] != "none")
    print(f"    example: SEARCH_CURVES_EPOCH_S={args.epoch_s} {shlex.join(example[3])}")
    print(f"    best dev accuracy any method found: {best:.4f}; target: within 0.5 points, >= {target:.4f}")
    print()
    head = ["method", "reached", "epochs to target (mean)", "per seed", "x fewer than random",
            "final best (mean)", "epochs spent (all)", "pruned", "sweep s"]
    rows = []
    base = None
    for name in METHODS:
        per_seed = [epochs_to(results[name][s], target) for s in range(args.seeds)]
        total = [sum(r["epochs"] for r in results[name][s]) for s in range(args.seeds)]
        # A seed that never reached the target is counted with all the epochs it spent (marked *):
        # a lower bound on what reaching the target would have cost.
        cost = [e if e is not None else t for e, t in zip(per_seed, total)]
        mean_cost = statistics.fmean(cost)
        if base is None:
            base = mean_cost
        final = [max(r["metrics"].get("eval_accuracy", 0.0) for r in results[name][s]) for s in range(args.seeds)]
        pruned = sum(r["status"] == "pruned" for s in range(args.seeds) for r in results[name][s])
        trials = sum(len(results[name][s]) for s in range(args.seeds))
        rows.append([
            name, f"{sum(e is not None for e in per_seed)}/{args.seeds}",
            f"{mean_cost:,.0f}" + ("*" if None in per_seed else ""),
            " ".join(str(e) if e is not None else f"{t}*" for e, t in zip(per_seed, total)),
            f"{base / mean_cost:.1f}",
            f"{statistics.fmean(final):.4f} (min {min(final):.4f})",
            f"{statistics.fmean(total):,.0f}", f"{pruned}/{trials}", f"{walls[name]:.0f}",
        ])
    print_table(head, rows)
    print("    * never within 0.5 points in that seed: counted with every epoch it spent (a lower bound).")
    print("    epochs = steps + 1 of each run (run.json), summed in trial order; 'sweep s' = wall time of its")
    print("    sweeps added up (they ran several at a time).")


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
    parser.add_argument("--trials", type=int, default=50, help="trials per sweep in (a)")
    parser.add_argument("--epoch-s", type=float, default=0.05, help="least seconds an epoch takes in pruned sweeps")
    parser.add_argument("--grid-seeds", type=int, default=20, help="seeds in (b)")
    parser.add_argument("--parallel", type=int, default=8, help="sweeps at once")
    parser.add_argument("--keep", action="store_true", help="keep the run directories (path printed)")
    args = parser.parse_args()
    print("$ " + shlex.join(["python", *sys.argv]))
    print(f"# {os.cpu_count()} cores; sweeps {args.parallel} at a time; python {sys.version.split()[0]}")
    print()
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        with ThreadPoolExecutor(args.parallel) as pool:
            jobs_a = part_a(args, tmp, pool)
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
