"""The one owner of the Optuna study: opens or resumes it, asks (returns a trial's flags),
takes reports for the pruner, tells outcomes, and plans a dry run. Optuna is used as it is;
the names of samplers and pruners and the grid policy are ``sweep.samplers``' tables."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweep import samplers
from sweep.errors import StorageError

if TYPE_CHECKING:
    from sweep.rundir import Run, Store
    from sweep.spec import Flag, SweepSpec

MAX_STEP = 2**31 - 1  # the largest step reported to the pruner (a database column may be 32 bits)
_STATE = optuna.trial.TrialState


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


def fixed_values(spec: SweepSpec) -> dict[str, Any]:
    return {f.name: f.values[0] for f in spec.flags if f.kind == "fixed"}


def trial_flags(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's flags in the flags file's order: the asked params plus the fixed values."""
    values = {**fixed_values(spec), **params}
    return {f.name: values[f.name] for f in spec.flags}


def storage(url: str | None, state_dir: Path, sweep_id: str) -> optuna.storages.BaseStorage | str:
    """A database URL as given, or by default a journal file under the runs directory (one per
    sweep, Optuna's advice for a single machine)."""
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"{sweep_id}.journal"
    mend_journal(path)
    return JournalStorage(JournalFileBackend(str(path)))


def mend_journal(path: Path) -> None:
    """Cut a torn last line off a journal (an append cut short by a full disk): Optuna would
    glue the next append to it and refuse the file from then on. The journal is this sweep's
    alone, so a line without its newline is never another writer's line in progress."""
    try:
        with open(path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(max(0, size - (1 << 20)))
            tail = fh.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            if cut < 0 and size > len(tail):
                return  # a last line longer than 1 MiB: no journal line is; leave it to Optuna
            fh.truncate(size - len(tail) + cut + 1)
    except FileNotFoundError:
        return


def _direction(goal: str) -> Literal["minimize", "maximize"]:
    return "minimize" if goal == "minimize" else "maximize"


@dataclass
class Ask:
    """One asked trial: its number, its flags, and what the study needs to hear back."""

    number: int
    flags: dict[str, Any]
    params: dict[str, Any]
    handle: optuna.trial.Trial
    reported: set[int] = field(default_factory=set)  # steps already given to the pruner


class Search:
    def __init__(self, spec: SweepSpec, study: optuna.Study) -> None:
        self.spec = spec
        self.study = study
        self.space = space(spec)

    @classmethod
    def open(cls, spec: SweepSpec, url: str | None, state_dir: Path, sweep_id: str, name: str,
             done: int = 0) -> Search:
        """The sweep's study in its storage, created or loaded. ``done``: how far the sampler's
        random sequence has gone (a resumed sweep goes on from there). A ``--storage`` is a
        study other workers may share: ``sweep.shared`` joins it."""
        if url:
            from sweep import shared

            return shared.join(spec, url, name, done)
        try:
            study = optuna.create_study(
                storage=storage(url, state_dir, sweep_id), study_name=name, direction=_direction(spec.goal),
                sampler=samplers.sampler(spec, done), pruner=samplers.pruner(spec), load_if_exists=True,
            )
        except ValueError as exc:
            raise StorageError(f"cannot open study {name!r}: {exc}") from None
        except ImportError as exc:
            raise StorageError(f"storage needs a driver that is not installed: {exc}") from None
        except Exception as exc:  # storages raise many kinds (sqlalchemy, OSError): name it plainly
            raise StorageError(f"cannot open the study storage: {type(exc).__name__}: {exc}") from None
        return cls(spec, study)

    def asked(self) -> int:
        return len(self.study.get_trials(deepcopy=False))

    def ask(self) -> Ask | None:
        """The next trial; None when the study has all its trials (a shared study)."""
        trial = self.study.ask(self.space)
        return Ask(trial.number, trial_flags(self.spec, trial.params), dict(trial.params), trial)

    def tick(self) -> None:
        """Called by the loop every turn: a shared study beats for its running trials."""

    def pending(self, stop: Callable[[], bool]) -> bool:
        """Once ``ask`` said the study is full and nothing runs here: True when a trial may
        be asked again (a shared study re-runs a dead worker's trial), False to end."""
        return False

    def stores(self) -> list[Store]:
        """Where ended runs are told besides their run directories (a shared study's rows)."""
        return []

    def report(self, ask: Ask, value: float, step: int) -> bool:
        """Give the pruner one intermediate value; True when it says stop. Optuna takes one
        value per step, a step >= 0 that fits its storages, and finite values; the run's own
        record keeps every value anyway."""
        if self.spec.pruner.name == "none" or not math.isfinite(value):
            return False
        if not 0 <= step <= MAX_STEP or step in ask.reported:
            return False
        ask.reported.add(step)
        ask.handle.report(float(value), step)
        return ask.handle.should_prune()

    def tell(self, ask: Ask, status: str, value: float | None = None, attrs: dict[str, Any] | None = None) -> None:
        """The outcome of a trial, with ``attrs`` as its user attributes (what optuna-dashboard
        shows beside it). Raises StorageError when the storage cannot take it: the run
        directory keeps the result, and the caller reports the failure."""
        try:
            for key, attr in (attrs or {}).items():
                ask.handle.set_user_attr(key, attr)
            if status == "completed":
                self.study.tell(ask.handle, value)
            elif status == "pruned":
                self.study.tell(ask.handle, state=_STATE.PRUNED)
            else:
                self.study.tell(ask.handle, state=_STATE.FAIL)
        except RuntimeError as exc:
            # The grid sampler calls study.stop() after its last point, which raises outside
            # study.optimize once the outcome is already stored: that is no failure.
            if "Study.stop" not in str(exc):
                raise StorageError(f"could not record trial {ask.number} in the study: {exc}") from None
        except Exception as exc:
            raise StorageError(f"could not record trial {ask.number} in the study: "
                               f"{type(exc).__name__}: {exc}") from None

    def resume(self, runs: list[Run], shared: bool) -> list[Run]:
        """Queue again, with the same flags, what a dead sweep did not finish: its interrupted
        runs, and trials it had asked for but died before giving a run directory. Trials it
        left RUNNING fail (they would never end). A rerun already queued by an earlier resume
        that was killed too is not queued twice. Returns the interrupted runs now queued, for
        the caller to mark resumed."""
        study = self.study
        if not samplers.uses_grid(self.spec):
            # The record's count of asked trials is saved at a clean end only; after kill -9 the
            # study knows how far the random sequence went: go on from there, never replay it.
            study.sampler = samplers.sampler(self.spec, self.asked())
        names = set(self.space)
        reruns = [r for r in runs if r.status == "interrupted" and not r.info.get("resumed")]
        queue = [r.info.get("params") or {} for r in reruns]
        known = {r.info.get("trial") for r in runs}
        for t in study.get_trials(deepcopy=False, states=(_STATE.RUNNING,)):
            if t.number not in known and shared:
                continue  # a shared study: another machine may be running this trial now
            params = t.system_attrs.get("fixed_params") or t.params
            if t.number not in known and "grid_id" in t.system_attrs and not names <= set(params):
                continue  # half-asked: left RUNNING, the grid sampler hands its point out last
            try:
                study.tell(t.number, state=_STATE.FAIL)
            except (ValueError, RuntimeError):  # already ended by a concurrent process
                pass
            if t.number not in known:
                queue.append(params if names <= set(params) else {})
        waiting = [t.system_attrs.get("fixed_params")
                   for t in study.get_trials(deepcopy=False, states=(_STATE.WAITING,))]
        for params in queue:
            if not params:
                continue  # nothing was drawn: a fresh trial is the same
            if params in waiting:
                waiting.remove(params)
            else:
                study.enqueue_trial(params)
        return reruns


def plan(spec: SweepSpec, n: int | None = None) -> list[dict[str, Any]]:
    """The flags of the next ``n`` trials, from an in-memory study (for --dry-run)."""
    study = optuna.create_study(direction=_direction(spec.goal), sampler=samplers.sampler(spec))
    search = Search(spec, study)
    out = []
    for _ in range(samplers.target(spec, n)):
        ask = search.ask()
        assert ask is not None  # an unshared study always has a next trial
        out.append(ask.flags)
        try:
            study.tell(ask.handle, 0.0)
        except RuntimeError:  # the grid sampler stops the study after its last point
            pass
    return out


def quiet() -> None:
    """Optuna logs every trial at INFO; a sweep shows its own progress instead."""
    import logging

    optuna.logging.set_verbosity(logging.WARNING)

