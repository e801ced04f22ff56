"""A tiny PyTorch trial for the benchmarks: an MLP trained for a few dozen steps on
generated data. A plain argparse script, so it runs unmodified under any launcher."""

import argparse
import os

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--hidden", type=int, default=32)
parser.add_argument("--steps", type=int, default=int(os.environ.get("SWEEP_BENCH_STEPS", 50)))
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

torch.manual_seed(args.seed)
x = torch.randn(512, 8)
y = (x[:, 0] * x[:, 1] > 0).long()
model = torch.nn.Sequential(torch.nn.Linear(8, args.hidden), torch.nn.ReLU(), torch.nn.Linear(args.hidden, 2))
opt = torch.optim.Adam(model.parameters(), lr=args.lr)
for _ in range(args.steps):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    acc = (model(x).argmax(1) == y).float().mean().item()
print(f"eval_loss: {loss.item():.6f}")
print(f"eval_accuracy: {acc:.6f}")
