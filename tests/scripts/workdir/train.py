"""Logistic regression on a CSV file, laid out like pytorch/examples' mnist/main.py and
nanoGPT's train.py: argparse flags, the data read by a path relative to where it is run
(``../data``, as the MNIST example does), a checkpoint written to ``out_dir`` every epoch,
the final model saved as ``model.pt`` in the working directory, TensorBoard-style logs under
``runs/<date>_<host>/`` (SummaryWriter's default), and a stale ``last.pt`` removed when
training from scratch. Stdlib only (pickle stands in for torch.save, which pickles too).
"""

import argparse
import csv
import math
import os
import pickle
import socket
import time
from datetime import datetime


def load(path):
    with open(path, newline="") as f:
        return [(float(r["x1"]), float(r["x2"]), int(r["label"])) for r in csv.DictReader(f)]


def predict(w, x1, x2):
    return 1.0 / (1.0 + math.exp(-(w[0] + w[1] * x1 + w[2] * x2)))


def train(args, rows, w):
    total = 0.0
    for x1, x2, y in rows:
        p = predict(w, x1, x2)
        total -= math.log(p if y else 1.0 - p)
        g = p - y
        w[0] -= args.lr * g
        w[1] -= args.lr * g * x1
        w[2] -= args.lr * g * x2
    return total / len(rows)


def main():
    parser = argparse.ArgumentParser(description="Logistic regression on a CSV file")
    parser.add_argument("--data", default="../data/train.csv", help="training data (x1,x2,label)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    parser.add_argument("--epochs", type=int, default=3, help="number of epochs to train (default: 3)")
    parser.add_argument("--out_dir", default="checkpoints", help="where checkpoints go")
    parser.add_argument("--init_from", default="scratch", choices=["scratch", "resume"])
    args = parser.parse_args()

    rows = load(args.data)
    w = [0.0, 0.0, 0.0]
    if args.init_from == "resume":
        with open("last.pt", "rb") as f:
            w = pickle.load(f)["w"]
    elif os.path.exists("last.pt"):
        os.remove("last.pt")  # a previous run's state must not leak into this one
    os.makedirs(args.out_dir, exist_ok=True)
    log_dir = os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname())
    os.makedirs(log_dir, exist_ok=True)
    events = open(os.path.join(log_dir, f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"), "a")
    for epoch in range(1, args.epochs + 1):
        loss = train(args, rows, w)
        print(f"Train Epoch: {epoch}\ttrain_loss: {loss:.6f}")
        events.write(f"train_loss {epoch} {loss}\n")
        checkpoint = {"w": w, "epoch": epoch, "config": vars(args)}
        with open(os.path.join(args.out_dir, "ckpt.pt"), "wb") as f:
            pickle.dump(checkpoint, f)
    events.close()
    correct = sum((predict(w, x1, x2) > 0.5) == bool(y) for x1, x2, y in rows)
    print(f"eval_accuracy: {correct / len(rows):.4f}")
    with open("model.pt", "wb") as f:
        pickle.dump({"w": w, "config": vars(args)}, f)


if __name__ == "__main__":
    main()
