"""The training script of bench/search_bench.py part (a): a small numpy MLP (one ReLU layer)
trained by minibatch SGD with momentum 0.9 and a cosine learning-rate decay over the run (the
usual schedule: the rate reaches 0 at the last epoch, so every epoch of the run counts). It
logs ``sweep.log(step=epoch, eval_accuracy=...)`` after every epoch (step 0 is the first
epoch), so its learning curves are real ones.

The task: is a point of the square [-2, 2]^2 inside a circle XOR in the right half (four curved
regions)? 2,000 training rows, 10,000 dev rows (so that 0.5 points of dev accuracy are 50 rows,
well above the dev set's own noise), 27 epochs by default. Data, initial weights and batch
order come from fixed seeds, so the result depends on the flags alone: ``lr``, ``l2`` (weight
decay), ``hidden`` (units), ``batch``, ``epochs``.

Why this task: with the eight-region task used before (circle XOR quadrants, 1,000 rows, 54
epochs) the top of the space was a thin needle: about 1% of random configurations came within
0.5 points of the best of 400, so plain random search often never reached the benchmark's bar
and its cost was only a lower bound. Here 4% do (16 of 400 random configurations of
bench/search_curves.yaml, measured before any pruner was run on it); against the benchmark's
bar, set by TPE's best, it is about 2% (14 of the 750 configurations plain random search
tried), so plain random needs about 50 trials on average and 150 per seed to get there in most
seeds. The quadrants alone are learnt to the same ceiling by a fifth of the space (measured
the same way): too easy to tell searches apart.

``SEARCH_CURVES_EPOCH_S`` (seconds, default 0.2): after logging an epoch the script sleeps this
long. Real epochs take seconds or minutes; these take milliseconds, while the sweep driver
reads a trial's metrics every 0.1 s (TICK_S in sweep/driver.py) and only then asks the pruner
and sends SIGTERM. Without the pause a pruned trial trains on for several epochs after the
pruner's decision; with 0.05 s it still trained one or two more (``steps`` in run.json 1-2 past
"pruned at step N"). The pause lets the pruner stop a trial at the epoch where it decides, as
it would on a real model. ``SEARCH_CURVES_PAUSE_AT`` (steps, comma-separated; default: every
step) limits the pause to those steps, to save wall time: the benchmark gives every step from
the first its pruner can decide at to the last (after that no trial can be pruned). The
driver reports every step in order and asks the pruner after each, so where a trial is
pruned does not depend on timing; only whether it is still at that step when SIGTERM comes.
The benchmark counts epochs, not seconds, and sets the pause to 0 for sweeps
without a pruner (nothing to wait for).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import numpy as np

import sweep


TRAIN_ROWS = 2000
DEV_ROWS = 10000


def circle(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inside the circle XOR in the right half: four curved regions."""
    x = rng.uniform(-2, 2, (n, 2))
    return x, ((x[:, 0] ** 2 + x[:, 1] ** 2 < 1.6) ^ (x[:, 0] > 0)).astype(int)


def curve(lr: float, l2: float, hidden: int, batch: int = 20, epochs: int = 27,
          momentum: float = 0.9) -> Iterator[float]:
    """Train; yield the dev accuracy after each epoch (0.5 once the weights overflow)."""
    data = np.random.default_rng(1234)
    x_train, y_train = circle(TRAIN_ROWS, data)
    x_dev, y_dev = circle(DEV_ROWS, data)
    init = np.random.default_rng(7)
    d = x_train.shape[1]
    shapes = [(d, hidden), (hidden,), (hidden, 2), (2,)]
    # Weights, momenta and gradients each live in one flat buffer (the arrays below are views
    # into it), so the momentum update is three array operations a step, not twelve: the
    # benchmark trains some 70,000 epochs on two cores. The arithmetic is the same.
    flat, moms, grad = (np.zeros(sum(int(np.prod(s)) for s in shapes)) for _ in range(3))
    w1, b1, w2, b2 = views(flat, shapes)
    g_w1, g_b1, g_w2, g_b2 = views(grad, shapes)
    w1[:] = init.normal(0, np.sqrt(2 / d), (d, hidden))
    w2[:] = init.normal(0, 1 / np.sqrt(hidden), (hidden, 2))
    order = np.random.default_rng(99)
    onehot = np.eye(2)[y_train]
    for epoch in range(epochs):
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay over the run
        with np.errstate(all="ignore"):
            perm = order.permutation(len(x_train))
            x_epoch, y_epoch = x_train[perm], onehot[perm]
            for i in range(0, len(perm), batch):
                xb, yb = x_epoch[i:i + batch], y_epoch[i:i + batch]
                a = np.maximum(xb @ w1 + b1, 0)
                logits = a @ w2 + b2
                logits -= logits.max(1, keepdims=True)
                p = np.exp(logits)
                p /= p.sum(1, keepdims=True)
                g = (p - yb) / len(xb)
                ga = (g @ w2.T) * (a > 0)
                np.matmul(xb.T, ga, out=g_w1)
                g_w1 += l2 * w1
                ga.sum(0, out=g_b1)
                np.matmul(a.T, g, out=g_w2)
                g_w2 += l2 * w2
                g.sum(0, out=g_b2)
                moms *= momentum
                moms += grad
                flat -= rate * moms
            pred = (np.maximum(x_dev @ w1 + b1, 0) @ w2 + b2).argmax(1)
        yield float(np.mean(pred == y_dev)) if np.all(np.isfinite(flat)) else 0.5


def views(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[at:at + size].reshape(shape))
        at += size
    return out


def main() -> None:
    f = sweep.flags(lr=0.05, l2=1e-4, hidden=32, batch=20, epochs=27)
    pace = float(os.environ.get("SEARCH_CURVES_EPOCH_S", "0.2"))
    at = os.environ.get("SEARCH_CURVES_PAUSE_AT")
    pause_at = None if at is None else {int(step) for step in at.split(",") if step.strip()}
    for epoch, accuracy in enumerate(curve(f.lr, f.l2, f.hidden, f.batch, f.epochs)):
        sweep.log(step=epoch, eval_accuracy=accuracy)
        # A full pause after the log, not a catch-up schedule: after a slow epoch (a loaded
        # machine) the next one must not follow at once, or the pruner's SIGTERM comes late.
        if pace > 0 and (pause_at is None or epoch in pause_at):
            time.sleep(pace)


if __name__ == "__main__":
    main()
