"""Unit tests for sweep.nn: every formula against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sweep import nn as snn

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------------- mlp


def test_mlp_layout_and_activations():
    model = snn.mlp([3, 4, 5, 2], activation="tanh")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 4), (4, 5), (5, 2)]
    assert sum(isinstance(m, nn.Tanh) for m in model) == 2
    assert isinstance(model[-1], nn.Linear)  # logits: no activation on the output
    assert model(torch.zeros(7, 3)).shape == (7, 2)
    for name, cls in [("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("sigmoid", nn.Sigmoid), ("gelu", nn.GELU)]:
        assert any(isinstance(m, cls) for m in snn.mlp([2, 3, 1], activation=name))


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"activation": "swish"}, ["relu", "leaky_relu", "tanh", "sigmoid", "gelu"]),
        ({"init": "lecun"}, ["he", "xavier", "glorot", "default"]),
    ],
)
def test_mlp_unknown_names_list_known(kwargs, words):
    with pytest.raises(ValueError) as err:
        snn.mlp([2, 3, 1], **kwargs)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_mlp_rejects_bad_rates(rate):
    with pytest.raises(ValueError):
        snn.mlp([2, 3, 1], dropout=rate)
    with pytest.raises(ValueError):
        snn.mlp([2, 3, 1], dropout=[0.1, rate])


def test_mlp_dropout_per_layer_and_wrong_length():
    model = snn.mlp([4, 8, 8, 2], dropout=[0.1, 0.2, 0.3])
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.1, 0.2, 0.3]
    # input dropout comes first, hidden dropout follows each activation
    assert isinstance(model[0], nn.Dropout) and isinstance(model[3], nn.Dropout)
    with pytest.raises(ValueError, match="3 rates"):
        snn.mlp([4, 8, 8, 2], dropout=[0.1, 0.2])
    # a zero rate keeps the layer index (state_dict keys) stable
    plain = snn.mlp([4, 8, 8, 2])
    assert plain.state_dict().keys() == model.state_dict().keys()


def test_inverted_dropout_scaling():
    rate, keep = 0.25, 0.75
    drop = snn.mlp([200_000, 1], dropout=rate)[0]
    x = torch.full((200_000,), 3.0)
    drop.train()
    out = drop(x)
    nonzero = out[out != 0]
    assert torch.allclose(nonzero, torch.full_like(nonzero, 3.0 / keep))  # 4.0
    assert abs(nonzero.numel() / x.numel() - keep) < 0.01
    assert abs(out.mean().item() - 3.0) < 0.03  # E[output] = input
    drop.eval()
    assert torch.equal(drop(x), x)


def test_whole_model_is_deterministic_in_eval():
    model = snn.mlp([5, 16, 3], dropout=0.5).eval()
    x = torch.randn(4, 5)
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    "init, var",
    [("he", 2 / 1000), ("xavier", 1 / 1000), ("glorot", 2 / (1000 + 500)), ("default", 1 / (3 * 1000))],
)
def test_init_variances(init, var):
    # 500k samples: the variance estimate is good to ~0.2%; allow 3%.
    (linear,) = [m for m in snn.mlp([1000, 500], init=init) if isinstance(m, nn.Linear)]
    w = linear.weight.detach()
    assert abs(w.var().item() / var - 1) < 0.03
    assert abs(w.mean().item()) < 0.01 * math.sqrt(var)
    if init == "default":
        assert linear.bias.abs().sum() > 0  # PyTorch's own init left alone
    else:
        assert torch.count_nonzero(linear.bias) == 0


# ----------------------------------------------------------------- penalties


def _two_by_two() -> nn.Module:
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, -4.0]]))
        model.bias.copy_(torch.tensor([10.0, -10.0]))  # must not count
    return model


def test_l2_penalty_by_hand():
    # sum W^2 = 1 + 4 + 9 + 16 = 30; lam / (2 m) = 0.5 / 20 = 0.025 -> 0.75
    pen = snn.l2_penalty(_two_by_two(), lam=0.5, m=10)
    assert pen.dim() == 0 and pen.item() == pytest.approx(0.75)


def test_l1_penalty_by_hand():
    # sum |W| = 1 + 2 + 3 + 4 = 10; lam / m = 0.5 / 10 = 0.05 -> 0.5
    pen = snn.l1_penalty(_two_by_two(), lam=0.5, m=10)
    assert pen.dim() == 0 and pen.item() == pytest.approx(0.5)


def test_penalty_gradients_and_zero_lambda():
    model = _two_by_two()
    snn.l2_penalty(model, 0.5, 10).backward()
    assert torch.allclose(model.weight.grad, 0.05 * model.weight.detach())  # (lam / m) W
    assert model.bias.grad is None
    for fn in (snn.l1_penalty, snn.l2_penalty):
        zero = fn(model, 0.0, 10)
        assert zero.dim() == 0 and zero.item() == 0.0
    with pytest.raises(ValueError):
        snn.l2_penalty(model, 0.5, 0)


def test_penalty_covers_conv_kernels_not_norm_scales():
    model = nn.Sequential(nn.Conv2d(1, 1, 2, bias=False), nn.BatchNorm2d(1))
    with torch.no_grad():
        model[0].weight.fill_(2.0)  # 4 entries of 2 -> sum W^2 = 16
    assert snn.l2_penalty(model, 1.0, 2).item() == pytest.approx(16 / 4)


def test_sgd_weight_decay_equals_l2_penalty():
    """The docstring's claim: for plain SGD, weight_decay = lam / m is the L2 penalty."""
    lam, m, lr = 0.3, 6, 0.1
    x, y = torch.randn(6, 3), torch.randn(6, 2)
    a = snn.mlp([3, 4, 2], activation="tanh")
    b = snn.mlp([3, 4, 2], activation="tanh")
    b.load_state_dict(a.state_dict())
    opt_a = snn.optimizer("sgd", a.parameters(), lr)
    opt_b = snn.optimizer("sgd", b.parameters(), lr, weight_decay=lam / m)
    (nn.functional.mse_loss(a(x), y) + snn.l2_penalty(a, lam, m)).backward()
    nn.functional.mse_loss(b(x), y).backward()
    opt_a.step()
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


# ---------------------------------------------------------------- optimizers


def test_optimizer_names_map_to_torch():
    params = [nn.Parameter(torch.zeros(2, 2))]
    cases = {
        "sgd": (torch.optim.SGD, {"momentum": 0, "nesterov": False}),
        "momentum": (torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
        "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        "rmsprop": (torch.optim.RMSprop, {"alpha": 0.9, "eps": 1e-8}),
        "adam": (torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8}),
        "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8}),
    }
    assert set(snn.OPTIMIZERS) == set(cases)
    for name, (cls, hyper) in cases.items():
        opt = snn.optimizer(name, params, lr=0.01, weight_decay=0.001)
        assert type(opt) is cls, name
        group = opt.param_groups[0]
        assert group["lr"] == 0.01 and group["weight_decay"] == 0.001
        for key, value in hyper.items():
            assert group[key] == value, (name, key)


def test_optimizer_weight_decay_skips_biases_and_unknown_name():
    model = nn.Linear(3, 2)
    opt = snn.optimizer("adamw", model.parameters(), lr=0.01, weight_decay=0.1)
    decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays == {id(model.weight): 0.1, id(model.bias): 0.0}
    with pytest.raises(ValueError) as err:
        snn.optimizer("lbfgs", model.parameters(), lr=0.1)
    assert all(name in str(err.value) for name in snn.OPTIMIZERS)


# ------------------------------------------------------------------ lr decay

LR0 = 0.1
DECAY_CASES = {
    # kind, decay: lr at epochs 0, 1, 5
    ("inverse_time", 0.5): [0.1, 0.1 / 1.5, 0.1 / 3.5],  # 0.1 / (1 + 0.5 e)
    ("exponential", 0.97): [0.1, 0.097, 0.1 * 0.8587340257],  # 0.97^5 = 0.8587340257
    ("inverse_sqrt", 0.5): [0.05, 0.05 / math.sqrt(2), 0.05 / math.sqrt(6)],  # 0.1 * 0.5 / sqrt(e + 1)
    ("step", 0.5): [0.1, 0.1, 0.025],  # step_size 2: 0.1 * 0.5 ** (5 // 2)
    ("none", 0.5): [0.1, 0.1, 0.1],
}


@pytest.mark.parametrize("kind, decay", list(DECAY_CASES))
def test_decayed_lr_by_hand(kind, decay):
    got = [snn.decayed_lr(kind, LR0, decay, e, step_size=2) for e in (0, 1, 5)]
    assert got == pytest.approx(DECAY_CASES[kind, decay], rel=1e-9)


@pytest.mark.parametrize("kind, decay", list(DECAY_CASES))
def test_scheduler_follows_decayed_lr(kind, decay):
    opt = snn.optimizer("sgd", [nn.Parameter(torch.zeros(1))], lr=LR0)
    sched = snn.scheduler(kind, opt, decay, step_size=2)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [lrs[e] for e in (0, 1, 5)] == pytest.approx(DECAY_CASES[kind, decay], rel=1e-9)


def test_default_step_size_and_unknown_decay():
    assert snn.decayed_lr("step", 1.0, 0.5, 9) == 1.0
    assert snn.decayed_lr("step", 1.0, 0.5, 10) == 0.5
    assert set(snn.DECAYS) == {name for name, _ in DECAY_CASES}
    opt = snn.optimizer("sgd", [nn.Parameter(torch.zeros(1))], lr=LR0)
    for call in (lambda: snn.decayed_lr("cosine", 0.1, 0.5, 1), lambda: snn.scheduler("cosine", opt, 0.5)):
        with pytest.raises(ValueError) as err:
            call()
        assert all(name in str(err.value) for name in snn.DECAYS)


# ---------------------------------------------------------------------- data


def test_split_partitions_and_is_reproducible():
    X = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = np.arange(50)
    parts = snn.split(X, y, dev=0.2, test=0.1, seed=3)
    Xtr, ytr, Xdv, ydv, Xte, yte = parts
    assert (len(ytr), len(ydv), len(yte)) == (35, 10, 5)
    assert sorted(np.concatenate([ytr, ydv, yte]).tolist()) == list(range(50))
    for Xp, yp in ((Xtr, ytr), (Xdv, ydv), (Xte, yte)):
        assert np.array_equal(Xp[:, 0], 2 * yp)  # rows stay with their labels
    again = snn.split(X, y, dev=0.2, test=0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not np.array_equal(snn.split(X, y, dev=0.2, test=0.1, seed=4)[1], ytr)
    assert not np.array_equal(ytr, np.sort(ytr))  # actually shuffled


def test_split_torch_matches_numpy_and_validates():
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20)
    a = snn.split(X, y, dev=0.25, seed=1)
    b = snn.split(torch.from_numpy(X), torch.from_numpy(y), dev=0.25, seed=1)
    assert all(isinstance(t, torch.Tensor) and np.array_equal(t.numpy(), n) for t, n in zip(b, a, strict=True))
    assert len(a[4]) == 0  # no test set by default
    with pytest.raises(ValueError):
        snn.split(X, y, dev=0.6, test=0.4)
    with pytest.raises(ValueError):
        snn.split(X, y[:5])


def test_standardize_uses_training_stats_only():
    train = np.array([[1.0, 10.0], [3.0, 10.0]])  # mean (2, 10), std (1, 0 -> 1)
    dev = np.array([[5.0, 12.0]])
    t, d = snn.standardize(train, dev)
    assert np.allclose(t, [[-1.0, 0.0], [1.0, 0.0]])
    assert np.allclose(d, [[3.0, 2.0]])  # (5 - 2) / 1, (12 - 10) / 1 -- not dev's own stats
    tt, dd = snn.standardize(torch.tensor(train), torch.tensor(dev))
    assert torch.allclose(tt, torch.tensor(t)) and torch.allclose(dd, torch.tensor(d))
    (only,) = snn.standardize(np.array([[0.0], [4.0]]))  # mean 2, population std 2
    assert np.allclose(only, [[-1.0], [1.0]])


def test_augment_flip_and_identity():
    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4)
    same = snn.augment(x, flip=0.0, shift=0)
    assert torch.equal(same, x) and same.data_ptr() != x.data_ptr()
    assert torch.equal(snn.augment(x, flip=1.0, shift=0), x.flip(-1))


def test_augment_shift_is_zero_padded_translation():
    x = torch.rand(64, 2, 5, 5) + 1.0  # strictly positive, so padding zeros are visible
    out = snn.augment(x, flip=0.0, shift=1, generator=torch.Generator().manual_seed(0))
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    seen = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(out[i], padded[i, :, 1 - dy : 6 - dy, 1 - dx : 6 - dx])
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # all shifts in [-1, 1]^2 occur across 64 images


def test_augment_noise_reproducible_and_numpy():
    x = torch.zeros(50, 1, 20, 20)
    out = snn.augment(x, flip=0.0, shift=0, noise=0.3, generator=torch.Generator().manual_seed(1))
    assert abs(out.std().item() - 0.3) < 0.01 and abs(out.mean().item()) < 0.01
    again = snn.augment(x, flip=0.0, shift=0, noise=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert torch.count_nonzero(x) == 0  # input untouched
    arr = snn.augment(np.ones((2, 3, 4, 4), dtype=np.float32), flip=0.5, shift=1)
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 3, 4, 4)
    with pytest.raises(ValueError):
        snn.augment(torch.zeros(3, 4, 4))


def test_datasets():
    for make in (snn.make_circles, snn.make_spirals):
        X, y = make(200, 0.1, 0)
        assert X.shape == (200, 2) and X.dtype == np.float32 and y.dtype == np.int64
        assert np.bincount(y).tolist() == [100, 100]
        X2, y2 = make(200, 0.1, 0)
        assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X, y = snn.make_circles(400, 0.0, 1)
    radius = np.linalg.norm(X, axis=1)
    assert np.allclose(radius[y == 0], 1.0, atol=1e-6) and np.allclose(radius[y == 1], 0.5, atol=1e-6)
    X, y = snn.make_spirals(400, 0.0, 1)
    assert np.linalg.norm(X, axis=1).max() <= 1.0 + 1e-6


def test_make_highdim_signal_lives_in_informative_features():
    X, y = snn.make_highdim(4000, dim=50, informative=5, noise=0.1, seed=0)
    assert X.shape == (4000, 50) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0.3 < y.mean() < 0.7
    corr = np.abs([np.corrcoef(X[:, j], y)[0, 1] for j in range(50)])
    assert corr[:5].min() > 0.1 and corr[5:].max() < 0.06
    _, y_other = snn.make_highdim(4000, dim=50, informative=5, noise=0.1, seed=1)
    assert not np.array_equal(y, y_other)


# ------------------------------------------------------------ early stopping


def _model_with_value(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        model.weight.fill_(value)


def test_early_stopping_patience_and_restore():
    model = nn.Linear(1, 1)
    stopper = snn.EarlyStopping(patience=3)
    metrics = [0.5, 0.6, 0.55, 0.6, 0.58, 0.7]  # 0.6 again is not an improvement
    decisions = []
    for epoch, value in enumerate(metrics):
        _model_with_value(model, epoch)
        decisions.append(stopper.step(value, model))
        if decisions[-1]:
            break
    assert decisions == [False, False, False, False, True]  # exactly 3 non-improving epochs
    assert stopper.stopped and stopper.best == 0.6 and stopper.best_epoch == 1
    stopper.restore(model)
    assert model.weight.item() == 1.0  # the weights of epoch 1, not the last ones (4)


def test_early_stopping_minimize_and_min_delta():
    model = nn.Linear(1, 1)
    stopper = snn.EarlyStopping(patience=2, goal="minimize", min_delta=0.05)
    assert not stopper.step(1.0, model)
    assert not stopper.step(0.97, model)  # better, but not by more than min_delta
    assert not stopper.step(0.90, model)  # improves: counter resets
    assert not stopper.step(0.88, model)
    assert stopper.step(float("nan"), model)
    assert stopper.best == 0.90 and stopper.best_epoch == 2
    with pytest.raises(ValueError, match="maximize"):
        snn.EarlyStopping(3, goal="up")
    with pytest.raises(RuntimeError):
        snn.EarlyStopping(3).restore(model)


def test_early_stopping_copy_is_deep():
    model = nn.Linear(1, 1)
    stopper = snn.EarlyStopping(patience=5)
    _model_with_value(model, 7.0)
    stopper.step(1.0, model)
    _model_with_value(model, -1.0)  # in-place change after the snapshot
    stopper.restore(model)
    assert model.weight.item() == 7.0


# ---------------------------------------------------------------- grad check


def _tanh_problem():
    model = snn.mlp([3, 4, 2], activation="tanh", dropout=0.3, init="xavier")
    return model, torch.randn(5, 3), torch.randn(5, 2)


def test_grad_check_great_on_tanh_mlp_in_eval():
    model, X, y = _tanh_problem()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = snn.grad_check(model.eval(), nn.functional.mse_loss, X, y)
    assert result.verdict == "great" and result.difference < 1e-7
    difference, verdict = result  # unpacks like a tuple
    assert all(torch.equal(before[k], v) and v.dtype == torch.float32 for k, v in model.state_dict().items())


def test_grad_check_great_with_cross_entropy_labels():
    model = snn.mlp([3, 4, 3], activation="tanh").train()  # no dropout: training mode is fine
    result = snn.grad_check(model, nn.functional.cross_entropy, torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert result.verdict == "great"


class _BadSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x  # wrong on purpose: d(x^2)/dx is 2x


class _BadSquareLayer(nn.Module):
    def forward(self, x):
        return _BadSquare.apply(x)


def test_grad_check_catches_wrong_backward():
    model = nn.Sequential(nn.Linear(3, 4), _BadSquareLayer(), nn.Linear(4, 1))
    result = snn.grad_check(model, nn.functional.mse_loss, torch.randn(5, 3), torch.randn(5, 1))
    assert result.verdict == "probably a bug" and result.difference > 1e-3


def test_grad_check_refuses_training_dropout():
    model, X, y = _tanh_problem()
    with pytest.raises(ValueError, match="dropout"):
        snn.grad_check(model.train(), nn.functional.mse_loss, X, y)


def test_verdict_thresholds():
    assert [snn._verdict(d) for d in (0.0, 5e-8, 1e-7, 5e-6, 1e-5, 5e-4, 1e-3, 0.5)] == [
        "great",
        "great",
        "ok",
        "ok",
        "look again",
        "look again",
        "probably a bug",
        "probably a bug",
    ]
