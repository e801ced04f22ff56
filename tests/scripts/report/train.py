"""A training script in the style of pygcn's and pytorch/examples' train.py: argparse flags,
one line of metrics per epoch, and a crash when the loss diverges. The model is a formula
(stdlib only) so a sweep of it runs in a second; the report tests need its output, not torch.

    python train.py --lr 0.01 --dropout 0.5 --hidden 16 --optimizer adam
"""

import argparse
import math
import random
import sys
import time

parser = argparse.ArgumentParser(description="Train a small classifier.")
parser.add_argument("--seed", type=int, default=42, help="Random seed.")
parser.add_argument("--epochs", type=int, default=8, help="Number of epochs to train.")
parser.add_argument("--lr", type=float, default=0.01, help="Initial learning rate.")
parser.add_argument("--dropout", type=float, default=0.5, help="Dropout rate (1 - keep probability).")
parser.add_argument("--hidden", type=int, default=16, help="Number of hidden units.")
parser.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
args = parser.parse_args()

random.seed(args.seed)
if args.optimizer == "sgd" and args.lr > 0.3:
    print("epoch 0: train_loss=nan eval_loss=nan", flush=True)
    sys.exit("Loss is nan, stopping training")

# Best near lr = 0.01; too little dropout overfits (train far above dev), a small net underfits.
fit = math.exp(-((math.log10(args.lr) + 2) ** 2) / 2) * min(1.0, args.hidden / 32)
gap = max(0.0, 0.3 - args.dropout) * 0.5
t0 = time.time()
for epoch in range(1, args.epochs + 1):
    progress = 1 - math.exp(-epoch / 3)
    train_acc = 0.5 + 0.49 * fit * progress
    eval_acc = max(0.0, train_acc - gap * progress) + random.uniform(-0.005, 0.005)
    print(f"epoch {epoch}: train_loss={1 - train_acc:.4f} train_accuracy={train_acc:.4f} "
          f"eval_loss={1 - eval_acc:.4f} eval_accuracy={eval_acc:.4f}", flush=True)
print(f"Training finished in {time.time() - t0:.2f}s")
