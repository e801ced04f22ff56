"""Width and depth against accuracy and size, in the style of pytorch/examples' mnist/main.py:
argparse flags, a line per epoch, then the parameter count (as pytorch-cifar100's main.py
prints it) and the evaluation. No torch, so it starts at once: the "trained" error of a
width and depth is a fixed curve (wider is better, a second layer overfits), which lets a
test know exactly which runs are on the Pareto front of accuracy against size.
"""

import argparse
import math
import time


def count_parameters(width: int, depth: int) -> int:
    """A 784-input, 10-class MLP: input layer, depth - 1 hidden-to-hidden layers, output layer."""
    return 784 * width + (depth - 1) * width * width + 10 * width


def main() -> None:
    parser = argparse.ArgumentParser(description="MLP size sweep")
    parser.add_argument("--width", type=int, default=64, help="hidden units per layer")
    parser.add_argument("--depth", type=int, default=1, help="hidden layers")
    parser.add_argument("--epochs", type=int, default=2, metavar="N")
    parser.add_argument("--report", default="eval_accuracy,params_m",
                        help="what to print at the end (comma-separated)")
    args = parser.parse_args()

    error = 0.8 / math.sqrt(args.width) + 0.02 * (args.depth - 1)
    for epoch in range(1, args.epochs + 1):
        print(f"Train Epoch: {epoch}\tLoss: {error * (1 + 1 / epoch):.6f}")
    params = count_parameters(args.width, args.depth)
    print(f"The model has {params:,} trainable parameters")
    start = time.perf_counter()
    results = {"eval_accuracy": 1 - error, "params_m": params / 1e6, "latency_ms": params / 1e4}
    print(f"evaluated in {(time.perf_counter() - start) * 1e3:.3f} ms")
    for name in args.report.split(","):
        print(f"{name}: {results[name]:.6f}")


if __name__ == "__main__":
    main()
