"""The training script of bench/search_bench.py part (a): a small numpy MLP (one ReLU layer)
trained by minibatch SGD with momentum 0.9 and a cosine learning-rate decay over the run
(the usual schedule: the rate reaches 0 at the last epoch, so every epoch of the run counts). It logs ``sweep.log(step=epoch, eval_accuracy=...)`` after every epoch, so its
learning curves are real ones.

The task: is a point of the square [-2, 2]^2 inside a circle XOR in the first or third
quadrant (eight curved regions; a plain circle is learnt by most settings, so it cannot tell
searches apart)? 1,000 training rows, 4,000 dev rows. Data, initial weights and batch order come from fixed seeds, so the result depends
on the flags alone: ``lr``, ``l2`` (weight decay), ``hidden`` (units), ``batch``, ``epochs``.

``SEARCH_CURVES_EPOCH_S`` (seconds, default 0.05) is the least wall time of an epoch; the
rest is slept. Real epochs take seconds while the driver reads metrics every 0.1 s: the pause
lets a pruner act at the epoch where it decides, as it would on a real model. The benchmark
counts epochs, not seconds, and sets it to 0 for sweeps without a pruner (nothing to wait for).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import numpy as np

import sweep


def circle(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inside the circle XOR in the first or third quadrant: eight curved regions."""
    x = rng.uniform(-2, 2, (n, 2))
    return x, ((x[:, 0] ** 2 + x[:, 1] ** 2 < 1.6) ^ (x[:, 0] * x[:, 1] > 0)).astype(int)


def curve(lr: float, l2: float, hidden: int, batch: int = 20, epochs: int = 54,
          momentum: float = 0.9) -> Iterator[float]:
    """Train; yield the dev accuracy after each epoch (0.5 once the weights overflow)."""
    data = np.random.default_rng(1234)
    x_train, y_train = circle(1000, data)
    x_dev, y_dev = circle(4000, data)
    init = np.random.default_rng(7)
    d = x_train.shape[1]
    w1 = init.normal(0, np.sqrt(2 / d), (d, hidden))
    w2 = init.normal(0, 1 / np.sqrt(hidden), (hidden, 2))
    params = [w1, np.zeros(hidden), w2, np.zeros(2)]
    moms = [np.zeros_like(p) for p in params]
    order = np.random.default_rng(99)
    onehot = np.eye(2)[y_train]
    for epoch in range(epochs):
        w1, b1, w2, b2 = params
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay over the run
        with np.errstate(all="ignore"):
            perm = order.permutation(len(x_train))
            for i in range(0, len(perm), batch):
                idx = perm[i:i + batch]
                xb, yb = x_train[idx], onehot[idx]
                a = np.maximum(xb @ w1 + b1, 0)
                logits = a @ w2 + b2
                logits -= logits.max(1, keepdims=True)
                p = np.exp(logits)
                p /= p.sum(1, keepdims=True)
                g = (p - yb) / len(idx)
                ga = (g @ w2.T) * (a > 0)
                grads = [xb.T @ ga + l2 * w1, ga.sum(0), a.T @ g + l2 * w2, g.sum(0)]
                for param, mom, grad in zip(params, moms, grads):
                    mom *= momentum
                    mom += grad
                    param -= rate * mom
            pred = (np.maximum(x_dev @ w1 + b1, 0) @ w2 + b2).argmax(1)
        finite = all(np.all(np.isfinite(q)) for q in params)
        yield float(np.mean(pred == y_dev)) if finite else 0.5


def main() -> None:
    f = sweep.flags(lr=0.05, l2=1e-4, hidden=32, batch=20, epochs=54)
    pace = float(os.environ.get("SEARCH_CURVES_EPOCH_S", "0.05"))
    due = time.perf_counter()
    for epoch, accuracy in enumerate(curve(f.lr, f.l2, f.hidden, f.batch, f.epochs)):
        sweep.log(step=epoch, eval_accuracy=accuracy)
        due += pace
        rest = due - time.perf_counter()
        if rest > 0:
            time.sleep(rest)


if __name__ == "__main__":
    main()
