"""PyTorch helpers for training scripts run under ``sweep``: an MLP builder with
named activations, inverted dropout and named initialisations; L1/L2 penalties
over weight matrices; optimizers and per-epoch learning-rate decay by name;
train/dev/test splitting, standardisation and image augmentation; toy datasets;
early stopping; and a finite-difference gradient check. The formulas follow the
classic deep-learning course material exactly, so that runs from different
scripts stay comparable. Only training scripts import this module -- the tool
itself never does, because it must not pay for importing torch.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
import torch
from torch import nn

Array = TypeVar("Array", np.ndarray, torch.Tensor)

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
INITS = ("he", "xavier", "glorot", "default")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
DECAYS = ("inverse_time", "exponential", "inverse_sqrt", "step", "none")


def _unknown(what: str, name: object, known: Iterable[str]) -> ValueError:
    return ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")


# --------------------------------------------------------------------------- model


def _check_rate(rate: float) -> float:
    rate = float(rate)
    # rate == 1 would make keep_prob 0 and the inverted-dropout scale 1/0.
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    return rate


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    dropout: float | Sequence[float] = 0.0,
    init: str = "default",
) -> nn.Sequential:
    """A fully connected net ``sizes = [n_in, hidden..., n_out]`` that outputs logits.

    Dropout sits on the input and after each hidden activation; ``dropout`` is one
    rate or one rate per (input + each hidden layer). It is inverted dropout
    (``nn.Dropout``): in training a unit is kept with ``keep_prob = 1 - rate`` and
    kept values are divided by ``keep_prob``, so eval mode needs no rescaling.
    A rate of 0 becomes ``nn.Identity``, which keeps the layer indices (and so the
    ``state_dict`` keys) the same whatever the rates.

    ``init``: ``he`` N(0, 2/n_in), ``xavier`` N(0, 1/n_in), ``glorot`` N(0,
    2/(n_in+n_out)), each with zero biases; ``default`` leaves PyTorch's own.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be [n_in, hidden..., n_out] of positive ints, got {sizes}")
    key = activation.lower()
    if key not in ACTIVATIONS:
        raise _unknown("activation", activation, ACTIVATIONS)
    init_key = init.lower()
    if init_key not in INITS:
        raise _unknown("init", init, INITS)
    n_dropouts = len(sizes) - 1  # the input plus every hidden layer
    if isinstance(dropout, numbers.Real):
        rates = [_check_rate(float(dropout))] * n_dropouts
    else:
        rates = [_check_rate(r) for r in cast(Iterable[float], dropout)]
        if len(rates) != n_dropouts:
            raise ValueError(
                f"dropout needs {n_dropouts} rates (input + {n_dropouts - 1} hidden), got {len(rates)}"
            )

    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Dropout(rates[i]) if rates[i] > 0 else nn.Identity())
        linear = nn.Linear(n_in, n_out)
        if init_key != "default":
            var = {"he": 2.0 / n_in, "xavier": 1.0 / n_in, "glorot": 2.0 / (n_in + n_out)}[init_key]
            with torch.no_grad():
                linear.weight.normal_(0.0, math.sqrt(var))
                linear.bias.zero_()
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[key]())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------- penalties


def _weight_matrices(model: nn.Module) -> list[torch.Tensor]:
    # Biases and norm scales (dim < 2) only shift or rescale units; penalising
    # them does not reduce variance, so the course leaves them out.
    return [p for p in model.parameters() if p.dim() >= 2]


def _penalty(
    model: nn.Module, lam: float, m: int, fn: Callable[[torch.Tensor], torch.Tensor], scale: float
) -> torch.Tensor:
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if m < 1:
        raise ValueError(f"m (number of training examples) must be >= 1, got {m}")
    weights = _weight_matrices(model)
    if lam == 0 or not weights:
        ref = weights[0] if weights else torch.empty(0)
        return torch.zeros((), dtype=ref.dtype, device=ref.device)
    return cast(torch.Tensor, (lam * scale / m) * sum(fn(w).sum() for w in weights))


def l2_penalty(model: nn.Module, lam: float, m: int) -> torch.Tensor:
    """``lam / (2 m) * sum ||W||^2`` over weight matrices (dim >= 2), never biases.

    Add it to the cost: its gradient is ``(lam / m) * W``. That is *coupled* L2
    regularisation: the term goes through the optimizer with the data gradient.
    Decoupled weight decay (``optimizer(..., weight_decay=wd)`` with ``adamw``)
    instead shrinks the weights directly, ``W -= lr * wd * W``, outside the
    gradient. For plain SGD the two are the same update when ``wd = lam / m``;
    for adaptive optimizers (RMSprop, Adam) they differ, because Adam divides the
    L2 gradient by the running RMS of the gradient, so weights with large
    gradients get decayed less -- the reason AdamW exists.
    """
    return _penalty(model, lam, m, torch.square, 0.5)


def l1_penalty(model: nn.Module, lam: float, m: int) -> torch.Tensor:
    """``lam / m * sum |W|`` over weight matrices (dim >= 2), never biases.

    Added to the cost like :func:`l2_penalty`; it drives weights to exactly zero
    (sparse models) where L2 only shrinks them.
    """
    return _penalty(model, lam, m, torch.abs, 1.0)


# --------------------------------------------------------------------- optimizers


def _decay_groups(params: Iterable[Any], weight_decay: float) -> list[Any]:
    params = list(params)
    if weight_decay == 0 or not params or isinstance(params[0], dict):
        return params  # explicit groups: the caller decides what decays
    if isinstance(params[0], tuple):  # named parameters
        params = [p for _, p in params]
    # Same rule as the penalties: decay weight matrices only, so SGD with
    # weight_decay = lam / m is exactly l2_penalty(model, lam, m).
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    return [g for g in ({"params": decay}, {"params": rest, "weight_decay": 0.0}) if g["params"]]


def optimizer(name: str, params: Iterable[Any], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """A torch optimizer by name, with the course's hyperparameters.

    ``sgd``; ``momentum`` (beta 0.9); ``nesterov`` (0.9, Nesterov); ``rmsprop``
    (beta 0.9, eps 1e-8); ``adam`` and ``adamw`` (betas 0.9/0.999, eps 1e-8).

    ``weight_decay`` is handed to the torch optimizer and, when ``params`` is a
    plain list of tensors, applied to weight matrices only (biases get 0). In
    torch only ``adamw`` decouples it (``W -= lr * wd * W`` beside the Adam step);
    ``sgd`` folds it into the gradient, which for plain SGD is the same update;
    for ``momentum``, ``nesterov``, ``rmsprop`` and ``adam`` it is folded into the
    gradient too, i.e. it behaves as an L2 penalty (see :func:`l2_penalty`), not
    as decoupled decay. Use ``adamw`` when you want decoupled decay with Adam.
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise _unknown("optimizer", name, OPTIMIZERS)
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    groups = _decay_groups(params, weight_decay)
    kw: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if key == "sgd":
        return torch.optim.SGD(groups, **kw)
    if key in ("momentum", "nesterov"):
        return torch.optim.SGD(groups, momentum=0.9, nesterov=key == "nesterov", **kw)
    if key == "rmsprop":
        return torch.optim.RMSprop(groups, alpha=0.9, eps=1e-8, **kw)
    cls = torch.optim.Adam if key == "adam" else torch.optim.AdamW
    return cls(groups, betas=(0.9, 0.999), eps=1e-8, **kw)


def decayed_lr(kind: str, lr0: float, decay: float, epoch: int, step_size: int = 10) -> float:
    """The learning rate for ``epoch`` (0-based) under decay ``kind``.

    ``inverse_time``: lr0 / (1 + decay * epoch); ``exponential``: lr0 * decay**epoch
    (decay like 0.97); ``inverse_sqrt``: lr0 * decay / sqrt(epoch + 1);
    ``step``: lr0 * decay ** (epoch // step_size); ``none``: lr0.
    """
    key = kind.lower()
    if key not in DECAYS:
        raise _unknown("lr decay", kind, DECAYS)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    if key == "inverse_time":
        return lr0 / (1.0 + decay * epoch)
    if key == "exponential":
        return lr0 * decay**epoch
    if key == "inverse_sqrt":
        return lr0 * decay / math.sqrt(epoch + 1)
    if key == "step":
        return lr0 * decay ** (epoch // step_size)
    return lr0


def scheduler(
    kind: str, optimizer: torch.optim.Optimizer, decay: float, step_size: int = 10
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` giving :func:`decayed_lr`; call ``.step()`` once per epoch.

    The optimizer's lr is ``lr0``; after ``e`` calls to ``.step()`` it is
    ``decayed_lr(kind, lr0, decay, e, step_size)`` (for ``inverse_sqrt`` that
    already applies ``decay`` at epoch 0).
    """
    decayed_lr(kind, 1.0, decay, 0, step_size)  # fail now, not at the first step
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: decayed_lr(kind, 1.0, decay, epoch, step_size)
    )


# --------------------------------------------------------------------------- data


def _take(a: Array, idx: np.ndarray) -> Array:
    return a[torch.from_numpy(idx)] if isinstance(a, torch.Tensor) else a[idx]


def split(
    X: Array, y: Array, dev: float = 0.2, test: float = 0.0, seed: int = 0
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Shuffle by ``seed`` and cut into ``(X_train, y_train, X_dev, y_dev, X_test, y_test)``.

    ``dev`` and ``test`` are fractions of the examples (rounded); the rest trains.
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} examples but y has {len(y)}")
    if dev < 0 or test < 0 or dev + test >= 1:
        raise ValueError(f"need dev >= 0, test >= 0 and dev + test < 1, got dev={dev}, test={test}")
    n_dev, n_test = round(dev * n), round(test * n)
    if n - n_dev - n_test < 1:
        raise ValueError(f"{n} examples leave no training set with dev={dev}, test={test}")
    perm = np.random.default_rng(seed).permutation(n)
    parts = (perm[n_dev + n_test :], perm[:n_dev], perm[n_dev : n_dev + n_test])
    return tuple(a for idx in parts for a in (_take(X, idx), _take(y, idx)))  # type: ignore[return-value]


def standardize(train: Array, *others: Array) -> tuple[Array, ...]:
    """Subtract the training mean and divide by the training std, per feature.

    The dev/test sets get the *training* statistics: estimating them on dev/test
    would leak those sets into the model and make the two inputs inconsistent.
    Constant features (std 0) are only centred. Returns ``(train, *others)``.
    """
    if isinstance(train, torch.Tensor):
        mu = train.mean(dim=0)
        sd = train.std(dim=0, correction=0)
        sd = torch.where(sd == 0, torch.ones_like(sd), sd)
    else:
        mu = train.mean(axis=0)
        sd = train.std(axis=0)
        sd = np.where(sd == 0, 1.0, sd).astype(mu.dtype)
    return tuple((a - mu) / sd for a in (train, *others))  # type: ignore[operator]  # torch or numpy, alike


def augment(
    images: Array, flip: float = 0.5, shift: int = 2, noise: float = 0.0, generator: torch.Generator | None = None
) -> Array:
    """Randomly flip, shift and add noise to a batch shaped (N, C, H, W).

    Each image is flipped left-right with probability ``flip``, moved by a whole
    number of pixels in ``[-shift, shift]`` on each axis (vacated pixels are 0),
    then ``N(0, noise^2)`` noise is added. Returns a new batch of the same type.
    """
    as_numpy = isinstance(images, np.ndarray)
    original = x = torch.as_tensor(images)
    if x.dim() != 4:
        raise ValueError(f"images must be shaped (N, C, H, W), got {tuple(x.shape)}")
    if not 0.0 <= flip <= 1.0 or shift < 0 or noise < 0:
        raise ValueError(f"need 0 <= flip <= 1, shift >= 0, noise >= 0; got {flip}, {shift}, {noise}")
    n, _, h, w = x.shape
    if flip > 0:
        flipped = torch.rand(n, generator=generator) < flip
        x = torch.where(flipped[:, None, None, None].to(x.device), x.flip(-1), x)
    if shift > 0:
        s = int(shift)
        dy, dx = (torch.randint(-s, s + 1, (n,), generator=generator).to(x.device) for _ in range(2))
        padded = nn.functional.pad(x, (s, s, s, s))
        # Output pixel (i, j) reads input (i - dy, j - dx), i.e. padded (i - dy + s, j - dx + s).
        rows = torch.arange(h, device=x.device)[None, :] + (s - dy)[:, None]
        cols = torch.arange(w, device=x.device)[None, :] + (s - dx)[:, None]
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    if x is original:
        x = x.clone()  # never hand back (or let the caller mutate) the input's memory
    return x.numpy() if as_numpy else x  # type: ignore[return-value]


def make_circles(n: int = 300, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles (radius 1: class 0, radius 0.5: class 1) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(y == 0, 1.0, 0.5)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    X += noise * rng.standard_normal(X.shape)
    perm = rng.permutation(n)
    return X[perm].astype(np.float32), y[perm].astype(np.int64)


def make_spirals(n: int = 300, noise: float = 0.1, seed: int = 0, turns: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals of ``turns`` turns each (class 1 is class 0 rotated by pi)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = rng.uniform(0.05, 1.0, n)  # skip the centre, where the arms touch
    angle = 2 * np.pi * turns * t + np.pi * y
    X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    X += noise * rng.standard_normal(X.shape)
    perm = rng.permutation(n)
    return X[perm].astype(np.float32), y[perm].astype(np.int64)


def make_highdim(
    n: int = 200, dim: int = 100, informative: int = 5, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A binary problem in ``dim`` N(0, 1) features of which only the first
    ``informative`` matter: ``y = [w.x_inf / sqrt(k) + 0.5 x_0 x_1 + noise * N(0, 1) > 0]``.

    With few examples and many noise features a big net memorises the training
    set, which is what regularisation sweeps need. The labelling function
    (``w``) does not depend on ``seed``, so calls with different seeds draw
    fresh samples of the same problem.
    """
    if not 1 <= informative <= dim:
        raise ValueError(f"need 1 <= informative <= dim, got informative={informative}, dim={dim}")
    w = np.random.default_rng(12345).choice([-1.0, 1.0], size=informative) * np.linspace(1.0, 0.5, informative)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim))
    score = X[:, :informative] @ w / math.sqrt(informative)
    if informative >= 2:
        score += 0.5 * X[:, 0] * X[:, 1]  # a little non-linearity, so a linear model is not enough
    y = (score + noise * rng.standard_normal(n)) > 0
    return X.astype(np.float32), y.astype(np.int64)


# ----------------------------------------------------------------- early stopping


class EarlyStopping:
    """Stop when the dev metric has not improved for ``patience`` consecutive epochs.

    Call ``step(value, model)`` once per epoch; it returns True when training
    should stop. An improvement must beat the best by more than ``min_delta``.
    The best ``state_dict`` is deep-copied, so ``restore(model)`` can put it back.
    """

    def __init__(self, patience: int, goal: str = "maximize", min_delta: float = 0.0) -> None:
        if goal not in ("maximize", "minimize"):
            raise _unknown("goal", goal, ("maximize", "minimize"))
        if patience < 0 or min_delta < 0:
            raise ValueError(f"need patience >= 0 and min_delta >= 0, got {patience}, {min_delta}")
        self.patience = int(patience)
        self.goal = goal
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.epoch = -1
        self.bad_epochs = 0
        self.stopped = False

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.goal == "maximize":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def step(self, value: float, model: nn.Module) -> bool:
        self.epoch += 1
        value = float(value)
        if self._improves(value):
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        self.stopped = self.stopped or self.bad_epochs >= self.patience
        return self.stopped

    def restore(self, model: nn.Module) -> nn.Module:
        if self.best_state is None:
            raise RuntimeError("EarlyStopping.restore: no epoch has been recorded yet")
        model.load_state_dict(self.best_state)
        return model


# ----------------------------------------------------------------- gradient check


class GradCheck(NamedTuple):
    difference: float
    verdict: str


def _verdict(difference: float) -> str:
    if difference < 1e-7:
        return "great"
    if difference < 1e-5:
        return "ok"
    if difference < 1e-3:
        return "look again"
    return "probably a bug"


def grad_check(
    model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor], X: Any, y: Any, eps: float = 1e-7
) -> GradCheck:
    """Compare backprop gradients with two-sided differences ``(J(t+eps) - J(t-eps)) / (2 eps)``.

    Works on a float64 copy of ``model`` (the original is untouched) and returns
    ``GradCheck(difference, verdict)`` with ``difference = ||d_approx - d|| /
    (||d_approx|| + ||d||)`` over all trainable parameters flattened; verdict is
    "great" (< 1e-7), "ok" (< 1e-5), "look again" (< 1e-3) or "probably a bug".

    It costs two forward passes per parameter: for small models (a few thousand
    parameters) and small batches only. The loss must be deterministic, so a
    dropout module that is training with rate > 0 is refused; dropout called
    through ``torch.nn.functional`` inside a custom module cannot be detected.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.training and module.p > 0:
            raise ValueError(
                f"grad_check: dropout {name or 'model'!r} (p={module.p}) is active in training mode, "
                "so the loss is random; call model.eval() or set the rate to 0 first"
            )
    net = copy.deepcopy(model).double()
    params = [p for p in net.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")

    def to64(a: Any) -> Any:
        a = torch.as_tensor(a, device=device)
        return a.double() if a.is_floating_point() else a

    X, y = to64(X), to64(y)

    def cost() -> torch.Tensor:
        J = loss_fn(net(X), y)
        if J.numel() != 1:
            raise ValueError(f"grad_check: loss_fn must return a scalar, got shape {tuple(J.shape)}")
        return J.reshape(())

    net.zero_grad(set_to_none=True)
    cost().backward()
    grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])

    approx = []
    with torch.no_grad():
        for p in params:
            if not p.data.is_contiguous():
                p.data = p.data.contiguous()  # so the flat view below writes into what the net reads
            flat = p.data.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + eps
                plus = cost().item()
                flat[i] = old - eps
                minus = cost().item()
                flat[i] = old
                approx.append((plus - minus) / (2 * eps))
    d_approx = torch.tensor(approx, dtype=torch.float64, device=grad.device)
    denom = (d_approx.norm() + grad.norm()).item()
    difference = 0.0 if denom == 0 else (d_approx - grad).norm().item() / denom
    return GradCheck(difference, _verdict(difference))
