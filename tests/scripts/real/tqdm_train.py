"""A training loop as many public scripts write it: argparse flags, a tqdm bar over the
batches whose postfix carries the running metrics (redrawn with carriage returns, on stderr),
and no newline after the last redraw before the script exits. Stdlib and tqdm only."""

import argparse
import math

from tqdm import tqdm

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--steps", type=int, default=3000)
args = parser.parse_args()

bar = tqdm(range(args.steps), mininterval=0, miniters=1, leave=False)
for step in bar:
    loss = math.exp(-args.lr * step / 100)
    bar.set_postfix(loss=f"{loss:.4f}", eval_accuracy=f"{1 - loss / 2:.6f}")
