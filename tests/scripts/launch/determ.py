"""A small seeded PyTorch training run: its loss depends only on its flags, never on the
process it runs in (fresh interpreter or a fork of a warm one)."""

import argparse

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--hidden", type=int, default=8)
args = parser.parse_args()

torch.manual_seed(1234)
x = torch.randn(256, 6)
y = (x[:, 0] * x[:, 1] > 0).long()
model = torch.nn.Sequential(torch.nn.Linear(6, args.hidden), torch.nn.Tanh(), torch.nn.Linear(args.hidden, 2))
opt = torch.optim.Adam(model.parameters(), lr=args.lr)
for _ in range(30):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
drop = torch.nn.functional.dropout(torch.ones(4), 0.5).sum().item()  # uses the seeded generator
accuracy = (model(x).argmax(1) == y).float().mean().item()
print(f"train_loss: {loss.item()!r}")
print(f"dropped: {drop!r}")
print(f"eval_accuracy: {accuracy!r}")
