"""The bundled example: a PyTorch MLP classifier on numpy-generated data.

Run under a sweep (``sweep run flags/circles.yaml``) or by hand::

    python flags/mlp.py --lr=0.01 --dataset=spirals

Datasets: ``circles`` and ``spirals`` (2-D, easy to plot) and ``highdim`` (100
features of which 5 matter; with a small ``n_train`` a big net memorises the
training set, which is what regularisation sweeps need). The data are split into
train/dev/test and standardised with the training statistics. The cost is
cross-entropy + L1 + L2 penalties (``sweep.nn``); every epoch logs train and dev
loss and accuracy, measured in eval mode (no dropout) on the whole set; the end
logs ``test_accuracy`` and ``params_k``, the model's size in thousands of parameters
(``flags/size.yaml`` trades one against the other). With ``--patience=N`` training stops after N epochs without
a better dev accuracy, the best weights come back and their metrics are logged
again, so the final values are the best epoch's.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

import sweep
from sweep import nn as snn

N_DEV = 500  # dev and test examples, whatever n_train is: enough for a steady estimate
N_TEST = 500
HIGHDIM_FEATURES = 100
HIGHDIM_INFORMATIVE = 5


def make_data(name: str, n: int, noise: float, seed: int):
    if name == "circles":
        return snn.make_circles(n, noise=noise, seed=seed)
    if name == "spirals":
        return snn.make_spirals(n, noise=noise, seed=seed)
    if name == "highdim":
        return snn.make_highdim(n, dim=HIGHDIM_FEATURES, informative=HIGHDIM_INFORMATIVE,
                                noise=noise, seed=seed)
    raise SystemExit(f"mlp.py: unknown dataset {name!r}; known: circles, spirals, highdim")


@torch.no_grad()
def evaluate(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(cross-entropy, accuracy as a fraction) on the whole set, in eval mode."""
    model.eval()
    logits = model(X)
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy


def main() -> None:
    f = sweep.flags(
        dataset="circles",   # circles | spirals | highdim
        n_train=200,         # training examples (dev and test get 500 each)
        noise=0.15,          # circles/spirals: coordinate noise; highdim: label noise
        hidden=32,           # units per hidden layer
        layers=2,            # hidden layers
        activation="relu",   # relu | leaky_relu | tanh | sigmoid | gelu
        init="he",           # he | xavier | glorot | default
        dropout=0.0,         # dropout rate after each hidden layer (not on the input)
        l1=0.0,              # lambda of the L1 penalty  (lambda/m * sum|W|)
        l2=0.0,              # lambda of the L2 penalty  (lambda/2m * sum W^2)
        weight_decay=0.0,    # the optimizer's weight decay (decoupled with adamw)
        optimizer="adam",    # sgd | momentum | nesterov | rmsprop | adam | adamw
        lr=0.01,             # initial learning rate
        decay_kind="none",   # inverse_time | exponential | inverse_sqrt | step | none
        decay=0.0,           # decay rate of decay_kind (per epoch)
        batch_size=64,       # 0 = full batch
        epochs=30,
        patience=0,          # 0 = no early stopping
        seed=0,
    )
    torch.manual_seed(f.seed)
    if "OMP_NUM_THREADS" not in os.environ:
        # Run by hand: these matrices are tiny, so more threads only wait on each other.
        # Under a sweep the tool sets OMP_NUM_THREADS to the trial's share of the cores.
        torch.set_num_threads(1)

    n_train = int(f.n_train)
    if n_train < 1:
        raise SystemExit(f"mlp.py: n_train must be at least 1, got {n_train}")
    n = n_train + N_DEV + N_TEST
    X, y = make_data(f.dataset, n, f.noise, f.seed)
    X_train, y_train, X_dev, y_dev, X_test, y_test = snn.split(X, y, dev=N_DEV / n, test=N_TEST / n, seed=f.seed)
    X_train, X_dev, X_test = snn.standardize(X_train, X_dev, X_test)
    X_train, X_dev, X_test = (torch.from_numpy(a) for a in (X_train, X_dev, X_test))
    y_train, y_dev, y_test = (torch.from_numpy(a) for a in (y_train, y_dev, y_test))
    m = len(X_train)

    sizes = [X_train.shape[1]] + [int(f.hidden)] * int(f.layers) + [2]
    # Dropout on the hidden layers only: dropping one of two input coordinates
    # (circles, spirals) would hide most of the example, not regularise.
    rates = [0.0] + [float(f.dropout)] * int(f.layers)
    model = snn.mlp(sizes, activation=f.activation, dropout=rates, init=f.init)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = snn.optimizer(f.optimizer, model.parameters(), lr=f.lr, weight_decay=f.weight_decay)
    sched = snn.scheduler(f.decay_kind, opt, f.decay)
    stopper = snn.EarlyStopping(f.patience, goal="maximize") if f.patience > 0 else None
    batch = m if f.batch_size <= 0 else min(int(f.batch_size), m)
    order = torch.Generator().manual_seed(f.seed)

    metrics: dict[str, float] = {}
    for epoch in range(int(f.epochs)):
        model.train()
        perm = torch.randperm(m, generator=order) if batch < m else torch.arange(m)
        for start in range(0, m, batch):
            idx = perm[start:start + batch]
            cost = (F.cross_entropy(model(X_train[idx]), y_train[idx])
                    + snn.l1_penalty(model, f.l1, m) + snn.l2_penalty(model, f.l2, m))
            opt.zero_grad(set_to_none=True)
            cost.backward()
            opt.step()
        sched.step()

        train_loss, train_acc = evaluate(model, X_train, y_train)
        eval_loss, eval_acc = evaluate(model, X_dev, y_dev)
        metrics = dict(train_loss=train_loss, train_accuracy=train_acc, eval_loss=eval_loss, eval_accuracy=eval_acc)
        sweep.log(step=epoch, **metrics)
        if not math.isfinite(train_loss):
            break  # diverged: more epochs only cost time
        if stopper is not None and stopper.step(eval_acc, model):
            break
        if sweep.should_stop():
            break

    if stopper is not None and stopper.best_state is not None:
        stopper.restore(model)
        train_loss, train_acc = evaluate(model, X_train, y_train)
        eval_loss, eval_acc = evaluate(model, X_dev, y_dev)
        sweep.log(step=stopper.best_epoch, train_loss=train_loss, train_accuracy=train_acc,
                  eval_loss=eval_loss, eval_accuracy=eval_acc)
    _, test_acc = evaluate(model, X_test, y_test)
    sweep.log(test_accuracy=test_acc, params_k=params / 1000)


if __name__ == "__main__":
    main()
