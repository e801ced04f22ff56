"""The search: which flags each trial gets, planned from an in-memory Optuna study
(``search.plan``, what ``--dry-run`` prints). Nothing here runs a trial or writes a file."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest

from sweep import samplers, search, spec

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

RANGES = """
script: train.py
flags:
  lr: {min: 0.00001, max: 0.1, log: true}
  dropout: {min: 0.0, max: 0.5}
  hidden: {min: 8, max: 512, int: true, log: true}
  activation: [relu, tanh, gelu]
  epochs: 3
trials: 12
"""


def _draw(s: spec.SweepSpec, runs) -> list[dict]:
    """What ``sweep run`` asks for: the driver's own count of trials, then ``Search.ask`` (which
    keeps a grid's points) and a tell each."""
    study = optuna.create_study(direction=s.goal, sampler=samplers.sampler(s))
    asks = search.Search(s, study)
    out = []
    for _ in range(samplers.target(s)):
        ask = asks.ask()
        assert ask is not None
        out.append(ask.flags)
        try:
            study.tell(ask.handle, 0.0)
        except RuntimeError:
            pass
    return out


@pytest.fixture
def draw(write, tmp_path):
    def _run(text: str) -> list[dict]:
        runs = tmp_path / "runs"
        out = _draw(spec.load(write(text)), runs)
        assert not runs.exists()
        return out

    return _run


@pytest.fixture
def plan(write, tmp_path):
    """``plan(yaml_text, **overrides)``: the flags of every planned trial, and a check that
    planning wrote nothing."""

    def _plan(text: str, n: int | None = None) -> list[dict]:
        s = spec.load(write(text))
        runs = tmp_path / "runs"
        out = search.plan(s, n)
        assert not runs.exists()
        return out

    return _plan


def test_same_seed_same_sequence(plan):
    a = plan(RANGES + "seed: 7\n")
    b = plan(RANGES + "seed: 7\n")
    assert len(a) == 12
    assert a == b
    assert all(list(t) == ["lr", "dropout", "hidden", "activation", "epochs"] for t in a)  # file order
    assert all(t["epochs"] == 3 for t in a)  # fixed values reach every trial


def test_different_seeds_differ(plan):
    a = plan(RANGES + "seed: 7\n")
    b = plan(RANGES + "seed: 8\n")
    assert a != b
    assert [t["lr"] for t in a] != [t["lr"] for t in b]


def test_same_seed_same_sequence_for_lists_only(plan):
    text = "script: train.py\nflags: {a: [1, 2, 3, 4], b: [x, y, z]}\ntrials: 6\nseed: 11\n"
    assert plan(text) == plan(text)
    assert plan(text) != plan(text.replace("seed: 11", "seed: 12"))


def test_ranges_stay_in_bounds_and_keep_their_types(plan):
    trials = plan(RANGES + "seed: 1\n", n=60)
    assert len(trials) == 60
    for t in trials:
        assert 1e-5 <= t["lr"] <= 0.1 and isinstance(t["lr"], float)
        assert 0.0 <= t["dropout"] <= 0.5
        assert 8 <= t["hidden"] <= 512 and type(t["hidden"]) is int
        assert t["activation"] in ("relu", "tanh", "gelu")
    # A log range spreads over its decades: some draws below 1e-3, some above.
    lrs = [t["lr"] for t in trials]
    assert min(lrs) < 1e-3 < max(lrs)
    assert len(set(lrs)) == 60


def test_lists_only_never_repeat_and_stop_at_the_number_of_combinations(draw):
    text = "script: train.py\nflags: {a: [1, 2, 3], b: [x, y], c: [true, false], d: 5}\ntrials: 100\nseed: 3\n"
    trials = draw(text)
    combos = [(t["a"], t["b"], t["c"]) for t in trials]
    assert len(combos) == 12  # 3 * 2 * 2, not 100
    assert set(combos) == set(itertools.product([1, 2, 3], ["x", "y"], [True, False]))
    assert all(t["d"] == 5 for t in trials)


def test_lists_only_with_fewer_trials_than_combinations_never_repeat(plan):
    trials = plan("script: train.py\nflags: {a: [1, 2, 3, 4, 5], b: [1, 2, 3, 4]}\ntrials: 15\nseed: 0\n")
    combos = [(t["a"], t["b"]) for t in trials]
    assert len(combos) == 15 == len(set(combos))


def test_grid_yields_every_combination_exactly_once(draw):
    trials = draw("""
        script: train.py
        sampler: grid
        flags:
          act: [relu, tanh]
          width: {min: 2, max: 8, int: true, step: 3}
          lr: 0.1
        trials: 100
        seed: 4
        """)
    combos = [(t["act"], t["width"]) for t in trials]
    assert sorted(combos) == sorted(itertools.product(["relu", "tanh"], [2, 5, 8]))
    assert all(t["lr"] == 0.1 for t in trials)


def test_grid_runs_every_combination_even_with_fewer_trials(draw):
    # tfruns' tuning_run without `sample`: the grid is the sweep.
    trials = draw("script: train.py\nsampler: grid\nflags: {a: [1, 2, 3], b: [4, 5]}\ntrials: 2\n")
    assert sorted((t["a"], t["b"]) for t in trials) == sorted(itertools.product([1, 2, 3], [4, 5]))


@pytest.mark.parametrize("text", [
    "script: train.py\nflags: {a: [1, 2], b: [x, y]}\ntrials: 10\n",
    "script: train.py\nsampler: grid\nflags: {a: [1, 2], n: {min: 1, max: 3, int: true}}\n",
])
def test_plan_covers_a_whole_grid(plan, text):
    trials = plan(text)
    assert len(trials) == len({tuple(t.values()) for t in trials}) >= 4


def test_int_range_with_step(plan):
    # Beside a float range the space is not a grid: Optuna's random sampler with a stepped int.
    trials = plan("""
        script: train.py
        flags:
          width: {min: 16, max: 256, int: true, step: 16}
          lr: {min: 0.001, max: 0.1}
        trials: 40
        seed: 5
        """)
    widths = [t["width"] for t in trials]
    assert all(type(w) is int and 16 <= w <= 256 and w % 16 == 0 for w in widths)
    assert len(set(widths)) > 5


def test_int_range_with_step_alone_is_drawn_without_repeats(draw):
    trials = draw("script: train.py\nflags: {n: {min: 2, max: 20, int: true, step: 3}}\ntrials: 50\nseed: 2\n")
    assert sorted(t["n"] for t in trials) == [2, 5, 8, 11, 14, 17, 20]


def test_float_range_with_step(plan):
    trials = plan("script: train.py\nflags: {d: {min: 0.0, max: 0.5, step: 0.1}, lr: {min: 0.1, max: 1}}\n"
                  "trials: 30\nseed: 9\n")
    for t in trials:
        assert 0.0 <= t["d"] <= 0.5
        assert math.isclose(t["d"] * 10, round(t["d"] * 10), abs_tol=1e-9)


@pytest.mark.parametrize("sampler", ["tpe", "qmc", "random"])
def test_samplers_plan_without_error(plan, sampler):
    trials = plan(RANGES + f"sampler: {sampler}\nseed: 1\n")
    assert len(trials) == 12
    for t in trials:
        assert 1e-5 <= t["lr"] <= 0.1 and 8 <= t["hidden"] <= 512
    assert trials == plan(RANGES + f"sampler: {sampler}\nseed: 1\n")  # seeded: reproducible


def test_plan_n_overrides_trials(plan):
    assert len(plan(RANGES + "seed: 1\n", n=3)) == 3


def test_distributions(write):
    s = spec.load(write(RANGES))
    space = search.space(s)
    assert set(space) == {"lr", "dropout", "hidden", "activation"}  # fixed values are not searched
    assert space["lr"] == optuna.distributions.FloatDistribution(1e-5, 0.1, log=True)
    assert space["hidden"] == optuna.distributions.IntDistribution(8, 512, log=True)
    assert space["activation"] == optuna.distributions.CategoricalDistribution(["relu", "tanh", "gelu"])
    assert search.fixed_values(s) == {"epochs": 3}


@pytest.mark.parametrize("name,cls", [
    ("random", optuna.samplers.RandomSampler), ("tpe", optuna.samplers.TPESampler),
    ("qmc", optuna.samplers.QMCSampler),
])
def test_sampler_by_name(write, name, cls):
    s = spec.load(write(RANGES + f"sampler: {name}\n"))
    assert isinstance(samplers.sampler(s), cls)


@pytest.mark.parametrize("name,cls", [
    ("none", optuna.pruners.NopPruner), ("median", optuna.pruners.MedianPruner),
    ("hyperband", optuna.pruners.HyperbandPruner), ("asha", optuna.pruners.SuccessiveHalvingPruner),
])
def test_pruner_by_name(write, name, cls):
    s = spec.load(write(RANGES + f"pruner: {name}\n"))
    assert isinstance(samplers.pruner(s), cls)
