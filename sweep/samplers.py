"""The plug-in tables of the search: each sampler and pruner name -> what builds it, and the
grid policy. The flags file's checks, the CLI's help and the study all read these tables,
so a new sampler is one entry here. Light on purpose: optuna is imported only when a
builder runs, so checking a flags file stays fast.

To add a sampler: write ``def _mine(spec, seed) -> BaseSampler`` and add ``"mine": _mine``
to ``SAMPLERS``. A pruner: ``def _mine(p: spec.Pruner) -> BasePruner`` in ``PRUNERS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sweep import conditions

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial

    from sweep.spec import Pruner, SweepSpec

FINITE_MAX = 10_000  # random search over a finite space this small never repeats a point
MAX_GRID = 1_000_000


def grid_values(spec: SweepSpec) -> dict[str, list[Any]]:
    return {f.name: f.grid_values() or [] for f in spec.flags if f.kind != "fixed"}


def grid_order(spec: SweepSpec) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The grid's flag names and every point of it, in the order a sweep runs them: shuffled
    by the seed, exactly as Optuna's GridSampler shuffles its grid, so a sweep cut short
    still spreads over the space."""
    import numpy as np

    values = grid_values(spec)
    names = sorted(values)
    points: list[tuple[Any, ...]]
    if conditions.conditional(spec.flags):  # only the points that can occur; None: left out
        points = [tuple(p.get(n) for n in names)
                  for p in conditions.points(spec.flags, lambda f: f.grid_values() or [])]
    else:
        points = list(itertools.product(*(values[n] for n in names)))
    np.random.RandomState(spec.seed or 0).shuffle(points)
    return names, points


def _grid(spec: SweepSpec, seed: int | None) -> BaseSampler:
    # Every grid trial is asked with its point fixed (search.Search picks the next point of
    # grid_order that the study has not taken), so this sampler never draws. Not Optuna's
    # GridSampler: it rescans the whole study after every trial.
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _random(spec: SweepSpec, seed: int | None) -> BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _tpe(spec: SweepSpec, seed: int | None) -> BaseSampler:
    import optuna

    with _experimental_ok():
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, constraints_func=constraints_func(spec))


def _nsga2(spec: SweepSpec, seed: int | None) -> BaseSampler:
    import optuna

    # Optuna's population of 50 would leave a sweep of a few dozen trials all random: a
    # generation is a quarter of the sweep, between 8 and 50 trials.
    size = min(50, max(8, spec.trials // 4))
    with _experimental_ok():
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=size,
                                             constraints_func=constraints_func(spec))


def _qmc(spec: SweepSpec, seed: int | None) -> BaseSampler:
    import optuna

    return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                      warn_asynchronous_seeding=False)


SAMPLERS: dict[str, Callable[[SweepSpec, int | None], BaseSampler]] = {
    "random": _random, "grid": _grid, "tpe": _tpe, "qmc": _qmc, "nsga2": _nsga2,
}

# The trial user attribute that holds a trial's constraint values (Optuna's convention: <= 0
# is met), set before the trial is told, read by the samplers' constraints_func.
CONSTRAINTS_ATTR = "constraints"


def constraints_func(spec: SweepSpec) -> Callable[[FrozenTrial], Sequence[float]] | None:
    """For Optuna 4 only: what TPE and NSGA-II call on each ended trial, its constraint
    values. Optuna 5 reads the values ``search`` stores on the trial itself (the
    ``constraints:NAME`` system attributes of ``Trial.set_constraint``) and deprecates this.
    A trial told without them (pruned before it reported them) breaks every one."""
    import optuna

    count = len(spec.constraints)
    if not count or hasattr(optuna.trial.Trial, "set_constraint"):
        return None

    def values(trial: FrozenTrial) -> Sequence[float]:
        found = trial.user_attrs.get(CONSTRAINTS_ATTR)
        return [float(v) for v in found] if isinstance(found, list) and len(found) == count else [1.0] * count

    return values


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    """constraints_func is marked experimental in Optuna 4: a sweep prints its own progress,
    not that warning."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _no_pruner(p: Pruner) -> BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


def _median(p: Pruner) -> BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_steps)


def _hyperband(p: Pruner) -> BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=p.min_resource, max_resource=p.max_resource,
                                          reduction_factor=p.reduction_factor)


def _asha(p: Pruner) -> BasePruner:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.min_resource, reduction_factor=p.reduction_factor)


PRUNERS: dict[str, Callable[[Pruner], BasePruner]] = {
    "none": _no_pruner, "median": _median, "hyperband": _hyperband, "asha": _asha,
}


# ---------------------------------------------------------------- the grid policy


def grid_problem(spec: SweepSpec) -> str | None:
    """Why ``sampler: grid`` cannot run this space, or None."""
    if spec.sampler != "grid":
        return None
    combos = spec.combinations()
    if combos is None:
        return "grid needs every flag to be a list, a fixed value or an integer range without log"
    if combos > MAX_GRID:
        return f"grid has {combos:,} combinations; at most {MAX_GRID:,} (use random or tpe for a space this large)"
    return None


def cut_short(spec: SweepSpec) -> str:
    """The sampler of a grid cut short by --trials or --smoke: random over a space of lists
    is the grid in seeded random order, without repeats, stopping after the trials asked."""
    return "random" if spec.sampler == "grid" else spec.sampler


def uses_grid(spec: SweepSpec) -> bool:
    """Whether trials come from Optuna's grid sampler: ``sampler: grid``, or random search
    over a small finite space (lists and integer ranges). Drawing without replacement means
    no combination repeats and the sweep stops once all have run; the grid sampler visits
    its grid in seeded random order, which is exactly that. A larger space is sampled
    with replacement: listing its grid would cost more than a rare repeat."""
    if spec.sampler == "grid":
        return True
    combos = spec.combinations()
    return spec.sampler == "random" and combos is not None and combos <= FINITE_MAX


def target(spec: SweepSpec, trials: int | None = None) -> int:
    """How many trials a sweep runs: every combination of a grid, at most every combination
    of a finite random space, else the trials asked for."""
    trials = spec.trials if trials is None else trials
    combos = spec.combinations()
    if combos is not None and uses_grid(spec):
        return combos if spec.sampler == "grid" else min(trials, combos)
    return trials


def mix(seed: int | None, salt: int | str) -> int | None:
    """A seed for a sampler rebuilt after ``salt`` trials: resuming a sweep continues its
    random sequence instead of replaying the start of it. A str salt names what else the
    study was given (a warm start's runs), so the same seed does not replay their draws."""
    if seed is None or salt == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sampler(spec: SweepSpec, done: int | str = 0) -> BaseSampler:
    """The sweep's sampler, rebuilt after ``done`` trials (a grid's draws nothing: see _grid)."""
    if uses_grid(spec):
        return _grid(spec, spec.seed)
    return SAMPLERS[spec.sampler](spec, mix(spec.seed, done))


def pruner(spec: SweepSpec) -> BasePruner:
    return PRUNERS[spec.pruner.name](spec.pruner)
