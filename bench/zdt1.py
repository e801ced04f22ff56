"""ZDT1 (Zitzler, Deb and Thiele, 2000) with three variables, as a training script a sweep
runs: argparse flags, two printed results. Both are minimized; the Pareto front is known:
x2 = x3 = 0, where f2 = 1 - sqrt(f1) for f1 = x1 in [0, 1]."""

import argparse
import math


def main() -> None:
    parser = argparse.ArgumentParser(description="ZDT1, n=3")
    for name in ("x1", "x2", "x3"):
        parser.add_argument(f"--{name}", type=float, default=0.5)
    args = parser.parse_args()
    f1 = args.x1
    g = 1 + 9 * (args.x2 + args.x3) / 2
    f2 = g * (1 - math.sqrt(f1 / g))
    print(f"f1: {f1:.9f}")
    print(f"f2: {f2:.9f}")


if __name__ == "__main__":
    main()
