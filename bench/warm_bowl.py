"""The training script of bench/warm_start.py: a stand-in for a short training run whose
quality is a known smooth function of four flags (a bowl with its best point at CENTER),
printed the way argparse training scripts print (``eval_accuracy: X``). Stdlib only, so a
trial costs milliseconds and the benchmark counts trials, not seconds."""

import argparse

CENTER = {"lr": 0.55, "dropout": 0.35, "wd": 0.65, "warmup": 0.45}
WIDTH = 0.3

parser = argparse.ArgumentParser(description="synthetic bowl")
for name in CENTER:
    parser.add_argument(f"--{name}", type=float, default=0.5)
args = vars(parser.parse_args())
loss = sum(((args[n] - c) / WIDTH) ** 2 for n, c in CENTER.items()) / len(CENTER)
print(f"eval_accuracy: {1 - loss:.6f}")
