"""Two objectives whose Pareto front is known: how much of it each sampler finds.

bench/zdt1.py is ZDT1 with three variables (x1, x2, x3 in [0, 1]; minimize f1 = x1 and
f2 = g (1 - sqrt(f1 / g)), g = 1 + 9 (x2 + x3) / 2), run as real trials by the real tool
(``python -m sweep run``, one trial at a time) with ``metric: [f1, f2]``. For each sampler
(random, tpe, nsga2) and seed, the same number of trials; then the hypervolume of the runs
found (the area they dominate up to the reference point (1.1, 11), the usual choice for ZDT1:
a little beyond the worst f1 and g) as a fraction of the true front's (1.1 * 11 - 1/3), and
the mean over seeds against random's: its ratio, and the gap left to the true front
(1 - fraction) as a multiple of random's gap (0.5x: half of random's shortfall).

    python bench/objectives.py                     # 60 trials, seeds 0-2
    python bench/objectives.py --trials 60 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "zdt1.py"
REFERENCE = (1.1, 11.0)
TRUE_FRONT = REFERENCE[0] * REFERENCE[1] - 1 / 3  # the box less the area under f2 = 1 - sqrt(f1)
SAMPLERS = ("random", "tpe", "nsga2")


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float] = REFERENCE) -> float:
    """The area the points dominate (both minimized) up to ``reference``: along f1, each
    point of their front adds the strip from its f1 to the next front point's, of height
    reference f2 - its f2."""
    front: list[tuple[float, float]] = []
    for f1, f2 in sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1]):
        if not front or f2 < front[-1][1]:
            front.append((f1, f2))
    area = 0.0
    for i, (f1, f2) in enumerate(front):
        right = front[i + 1][0] if i + 1 < len(front) else reference[0]
        area += (right - f1) * (reference[1] - f2)
    return area


def one_sweep(sampler: str, seed: int, trials: int, work: Path) -> float:
    folder = work / f"{sampler}-{seed}"
    folder.mkdir()
    (folder / SCRIPT.name).write_bytes(SCRIPT.read_bytes())
    (folder / "flags.yaml").write_text(
        f"script: {SCRIPT.name}\nsampler: {sampler}\nseed: {seed}\ntrials: {trials}\n"
        "metric: [f1, f2]\ngoal: [minimize, minimize]\n"
        "flags:\n  x1: {min: 0.0, max: 1.0}\n  x2: {min: 0.0, max: 1.0}\n  x3: {min: 0.0, max: 1.0}\n")
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", "flags.yaml", "--runs-dir", "runs"],
                          cwd=folder, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{sampler} seed {seed}: sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
    ls = subprocess.run([sys.executable, "-m", "sweep", "ls", "--runs-dir", "runs", "--format", "json"],
                        cwd=folder, env=env, capture_output=True, text=True, check=True)
    points = [(r["f1"], r["f2"]) for r in json.loads(ls.stdout) if r["status"] == "completed"]
    assert len(points) == trials, (sampler, seed, len(points))
    return hypervolume(points) / TRUE_FRONT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"ZDT1 (3 variables), {args.trials} trials per sweep, seeds 0-{args.seeds - 1}; "
          f"hypervolume to {REFERENCE} as a fraction of the true front's; load {load[0]:.1f}")
    found: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-objectives-") as tmp:
        for sampler in SAMPLERS:
            found[sampler] = [one_sweep(sampler, seed, args.trials, Path(tmp)) for seed in range(args.seeds)]
    base = statistics.mean(found["random"])
    print(f"{'sampler':8} {'fraction of the true front, per seed':40} {'mean':>7} {'vs random':>10} "
          f"{'gap vs random':>14}")
    for sampler, fractions in found.items():
        mean = statistics.mean(fractions)
        gap = (1 - mean) / (1 - base) if base < 1 else float("nan")
        print(f"{sampler:8} {' '.join(f'{f:.4f}' for f in fractions):40} {mean:7.4f} {mean / base:9.3f}x "
              f"{gap:13.2f}x")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
