"""Optuna, used as it is: the search space as distributions, samplers and pruners by name,
and the study in a storage (a journal file under the runs directory by default)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweep.errors import SweepError
from sweep.spec import Flag, SweepSpec

optuna.logging.set_verbosity(logging.WARNING)


def distribution(flag: Flag) -> BaseDistribution | None:
    """The Optuna distribution of a flag; None for a fixed value (not searched)."""
    if flag.kind == "fixed":
        return None
    if flag.kind == "choice":
        return CategoricalDistribution(list(flag.values))
    if flag.is_int:
        return IntDistribution(int(flag.low), int(flag.high), log=flag.log, step=int(flag.step or 1))
    return FloatDistribution(flag.low, flag.high, log=flag.log, step=flag.step)


def space(spec: SweepSpec) -> dict[str, BaseDistribution]:
    out = {}
    for flag in spec.flags:
        dist = distribution(flag)
        if dist is not None:
            out[flag.name] = dist
    return out


def grid(spec: SweepSpec) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for flag in spec.flags:
        if flag.kind == "choice":
            out[flag.name] = list(flag.values)
        elif flag.kind == "range":
            step = int(flag.step or 1)
            out[flag.name] = list(range(int(flag.low), int(flag.high) + 1, step))
    return out


def _mix(seed: int | None, salt: int) -> int | None:
    """A seed for a sampler rebuilt after ``salt`` trials: resuming a sweep continues its
    random sequence instead of replaying the start of it."""
    if seed is None:
        return None
    if salt == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


FINITE_MAX = 10_000  # random search over a finite space this small never repeats a point


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


def sampler(spec: SweepSpec, done: int = 0) -> optuna.samplers.BaseSampler:
    seed = _mix(spec.seed, done)
    name = "grid" if uses_grid(spec) else spec.sampler
    if name == "grid":
        return optuna.samplers.GridSampler(grid(spec) or {"_": [0]}, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                          warn_asynchronous_seeding=False)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_steps)
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=p.min_resource, max_resource=p.max_resource,
                                              reduction_factor=p.reduction_factor)
    if p.name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.min_resource,
                                                      reduction_factor=p.reduction_factor)
    return optuna.pruners.NopPruner()


def storage(url: str | None, state_dir: Path, sweep_id: str) -> optuna.storages.BaseStorage | str:
    """A database URL as given, or by default a journal file under the runs directory (one per
    sweep, Optuna's advice for a single machine)."""
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    state_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(state_dir / f"{sweep_id}.journal")))


def open_study(spec: SweepSpec, store: Any, name: str, done: int = 0) -> optuna.Study:
    try:
        return optuna.create_study(
            storage=store, study_name=name, direction=spec.goal, sampler=sampler(spec, done),
            pruner=pruner(spec), load_if_exists=True,
        )
    except ValueError as exc:
        raise SweepError(f"cannot open study {name!r}: {exc}") from None
    except ImportError as exc:
        raise SweepError(f"storage needs a driver that is not installed: {exc}") from None
    except Exception as exc:  # storages raise many kinds (sqlalchemy, OSError): name it plainly
        raise SweepError(f"cannot open the study storage: {type(exc).__name__}: {exc}") from None


def fixed_values(spec: SweepSpec) -> dict[str, Any]:
    return {f.name: f.values[0] for f in spec.flags if f.kind == "fixed"}


def trial_flags(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's flags in the flags file's order: the asked params plus the fixed values."""
    values = {**fixed_values(spec), **params}
    return {f.name: values[f.name] for f in spec.flags}
