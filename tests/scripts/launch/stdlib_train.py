"""A torch-free training script in the style of pytorch/examples: argparse flags, a seeded
logistic regression by plain SGD, one line per epoch and the final metric."""

import argparse
import math
import random

parser = argparse.ArgumentParser(description="logistic regression on two blobs")
parser.add_argument("--lr", type=float, default=0.5, help="learning rate (default: 0.5)")
parser.add_argument("--epochs", type=int, default=3, help="number of epochs to train (default: 3)")
parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
args = parser.parse_args()

rng = random.Random(args.seed)
data = [((rng.gauss(c, 1.0), rng.gauss(c, 1.0)), int(c > 0)) for c in (-1.0, 1.0) for _ in range(50)]
w, b = [0.0, 0.0], 0.0
for epoch in range(1, args.epochs + 1):
    loss = 0.0
    for (x0, x1), y in data:
        p = 1 / (1 + math.exp(-(w[0] * x0 + w[1] * x1 + b)))
        loss -= math.log(p if y else 1 - p)
        w[0] -= args.lr * (p - y) * x0 / len(data)
        w[1] -= args.lr * (p - y) * x1 / len(data)
        b -= args.lr * (p - y) / len(data)
    print(f"Train Epoch: {epoch}\tLoss: {loss / len(data):.6f}")
correct = sum(int((w[0] * x0 + w[1] * x1 + b > 0) == bool(y)) for (x0, x1), y in data)
print(f"eval_accuracy: {correct / len(data)}")
