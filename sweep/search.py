"""The one owner of the Optuna study: opens or resumes it, asks (returns a trial's flags),
takes reports for the pruner, tells outcomes, and plans a dry run. Optuna is used as it is;
the names of samplers and pruners and the grid policy are ``sweep.samplers``' tables.

The study is the source of what a sweep owes: it knows every trial the sweep asked for,
whatever ``clean`` later moved. Each trial carries what resuming needs in Optuna's own user
attributes: the sweep that asked it (``sweep``, in a shared study), ``sweep_status:
interrupted`` on a trial that was stopped rather than failed (Optuna calls both FAIL), and
``rerun_of`` on a trial queued again in place of an interrupted one. A grid is kept in the
study too: each grid trial is asked with its point fixed, the first point no trial holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import random
from collections.abc import Callable, Sequence
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

from sweep import conditions, dists, journal, samplers
from sweep.errors import StorageError
from sweep.objectives import excesses

if TYPE_CHECKING:
    from sweep.rundir import Run, Store
    from sweep.spec import Flag, SweepSpec

MAX_STEP = 2**31 - 1  # the largest step reported to the pruner (a database column may be 32 bits)
_STATE = optuna.trial.TrialState
SWEEP_ATTR = "sweep"
STATUS_ATTR = "sweep_status"
RERUN_ATTR = "rerun_of"
NO_OBJECTIVE_ATTR = "no_objective"  # a completed trial of a sweep without metric: its value is a stand-in
NO_OBJECTIVE_VALUE = 0.0
WARM_ATTR = "warm_start_from"  # on a trial added from an earlier sweep's run: that run's id
INTERRUPTED = "interrupted"


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
    """A trial's flags in the flags file's order: the asked params plus the fixed values,
    less the flags whose ``when:`` does not hold (left out of the command and the record);
    a W&B distribution's draw is mapped to its value."""
    kept = conditions.active(spec.flags, {**fixed_values(spec), **params})
    return {n: dists.value(f, v) if (f := spec.flag(n)).dist else v for n, v in kept.items()}


def space_record(spec: SweepSpec) -> dict[str, str]:
    """The search space in words, one entry per searched flag, as the sweep record keeps it for
    a resume to compare. Fixed flags are not in it: their value may change between sessions
    (fix what made trials fail, then resume) without changing what the study draws from."""
    return {f.name: _describe(f) for f in spec.flags if f.kind != "fixed"}


def _describe(flag: Flag) -> str:
    if flag.when is not None:
        return f"{_describe(dataclasses.replace(flag, when=None))} when {flag.when.text}"
    if flag.dist is not None:
        return dists.describe(flag.dist) + (f" of {list(flag.values)!r}" if flag.values else "")
    if flag.kind == "choice":
        text = f"one of {list(flag.values)!r}"
        if len(text) > 120:  # a record and a message stay short; the digest still tells lists apart
            text = f"one of {len(flag.values)} values #{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        return text
    if flag.is_int:
        text = f"int range {int(flag.low)}..{int(flag.high)}" + (f" step {int(flag.step)}" if flag.step else "")
    else:
        text = f"float range {flag.low!r}..{flag.high!r}" + (f" step {flag.step!r}" if flag.step else "")
    return text + (" log" if flag.log else "")


def space_changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """What changed between two ``space_record``s, one phrase per flag."""
    out = []
    for name, was in before.items():
        if name not in now:
            out.append(f"{name} removed (was {was})")
        elif now[name] != was:
            out.append(f"{name} was {was}, now {now[name]}")
    out += [f"{name} added ({now[name]})" for name in now if name not in before]
    return out


def storage(url: str | None, state_dir: Path, sweep_id: str) -> optuna.storages.BaseStorage:
    """A ``--storage`` value opened as ``sweep.shared`` opens it (a database URL or a shared
    journal), or by default a journal file under the runs directory (one per sweep, Optuna's
    advice for a single machine)."""
    if url:
        from sweep import shared

        return shared.open_storage(url)
    from optuna.storages import JournalStorage

    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"{sweep_id}.journal"
    mend_journal(path)
    return JournalStorage(journal.OwnJournal(str(path)))


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


def directions(spec: SweepSpec) -> list[Literal["minimize", "maximize"]]:
    """The study's direction per objective: one for a single objective."""
    return [_direction(goal) for _, goal in spec.targets()]


def values(spec: SweepSpec, value: float | None, metrics: dict[str, float] | None) -> float | list[float] | None:
    """What a completed trial tells the study: its objective's value, or with several
    objectives each one's value from its metrics, in order. Without an objective, a constant:
    Optuna completes a trial only with a value, and random and grid never read it (the trial's
    ``no_objective`` attribute says so)."""
    if not spec.metric:
        return NO_OBJECTIVE_VALUE
    if not spec.objectives:
        return value
    metrics = metrics or {}
    return [metrics[name] for name, _ in spec.objectives]


@dataclass(frozen=True)
class Misfit:
    """Why a completed earlier run was not added to a warm start: the objective it lacks, or
    the first of its flags that does not fit this space."""

    lacked: str | None = None
    flags: str | None = None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Ask:
    """One asked trial: its number, its flags, and what the study needs to hear back."""

    number: int
    flags: dict[str, Any]
    params: dict[str, Any]
    handle: optuna.trial.Trial
    reported: set[int] = field(default_factory=set)  # steps already given to the pruner


@dataclass
class Owed:
    """What a resumed sweep found in its study: how many of its trials ended (distinct points,
    for a grid), and the interrupted trials that are queued to run again (now or by an
    earlier resume), for the caller to mark their run directories."""

    ended: int
    rerun: set[int]


class Search:
    def __init__(self, spec: SweepSpec, study: optuna.Study, sweep_id: str | None = None,
                 shared: bool = False) -> None:
        self.spec = spec
        self.study = study
        self.space = space(spec)
        self.sweep_id = sweep_id
        self.shared = shared  # other sweeps (other machines) ask from this study too
        self.conditional = conditions.conditional(spec.flags)  # asked define-by-run (_draw)
        self.grid = samplers.grid_order(spec) if samplers.uses_grid(spec) else None
        self._taken: set[tuple[Any, ...]] | None = None  # grid points some trial holds
        self._next = 0  # grid points before this one are all taken

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
                storage=storage(url, state_dir, sweep_id), study_name=name, directions=directions(spec),
                sampler=samplers.sampler(spec, done), pruner=samplers.pruner(spec), load_if_exists=True,
            )
        except ValueError as exc:
            raise StorageError(f"cannot open study {name!r}: {exc}") from None
        except ImportError as exc:
            raise StorageError(f"storage needs a driver that is not installed: {exc}") from None
        except OSError:
            raise  # the sweep's own journal, in the runs directory: the driver says which file and what to do
        except Exception as exc:  # storages raise many kinds (sqlalchemy, OSError): name it plainly
            raise StorageError(f"cannot open the study storage: {type(exc).__name__}: {exc}") from None
        return cls(spec, study, sweep_id, shared=bool(url))

    def asked(self) -> int:
        return len(self.study.get_trials(deepcopy=False))

    @journal.batched
    def ask(self) -> Ask | None:
        """The next trial. A trial queued again (a rerun) comes first. A grid sweep then asks
        for the first point of its order that no trial of the study holds (ended, running or
        queued), fixed: two jobs, or a trial half created by a kill -9, never share a point.
        None when every point is held, which only a study shared with other sweeps reaches
        (this sweep's own count of trials never asks for more points than it owes)."""
        tags = {SWEEP_ATTR: self.sweep_id} if self.sweep_id and self.shared else {}
        if self.grid is not None and not self.study.get_trials(deepcopy=False, states=(_STATE.WAITING,)):
            point = self._free_point()
            if point is None:
                return None
            self.study.enqueue_trial(point, user_attrs=tags)
        if self.conditional:
            trial = self.study.ask()
            self._draw(trial)
        else:
            trial = self.study.ask(self.space)
        if tags and trial.user_attrs.get(SWEEP_ATTR) != self.sweep_id:
            trial.set_user_attr(SWEEP_ATTR, self.sweep_id)
        if self._taken is not None:
            held = self._point(trial.params)
            if held is not None:
                self._taken.add(held)
        return Ask(trial.number, trial_flags(self.spec, trial.params), dict(trial.params), trial)

    def enqueue(self, points: tuple[dict[str, Any], ...]) -> int:
        """Queue the flags file's ``enqueue:`` configurations, first in line; a flag a point
        leaves unsaid is drawn as usual (in a grid: from the first free point that agrees).
        Returns how many were queued."""
        tags = {SWEEP_ATTR: self.sweep_id} if self.sweep_id and self.shared else {}
        held: set[tuple[Any, ...]] = set()
        queued = 0
        for point in points:
            # --set or --smoke may have narrowed a flag since the file was checked: drawn then
            given = {n: v for n, v in point.items() if n in self.space and inside(self.space[n], v)}
            if self.grid is not None:
                names, order = self.grid
                full = next((p for p in order if p not in held and all(
                    conditions.member(v, (given[n],)) for n, v in zip(names, p, strict=True) if n in given)), None)
                if full is None:  # every grid point this one names is queued already
                    continue
                held.add(full)
                given = _drawn(names, full)
            self.study.enqueue_trial(given, user_attrs=tags)
            queued += 1
        return queued

    def warm_start(self, runs: list[Run]) -> tuple[int, list[Misfit]]:
        """Give the study the completed runs of earlier sweeps whose flags fit this space, as
        finished trials: TPE learns from them, and no count of this sweep's trials includes
        them. A run added before (a resumed sweep) is not added again. Returns (added, the
        completed runs that were not added, each with why: ``lacked``, the first objective it has no
        finite value of; else ``flags``, its first flag that does not fit)."""
        have = {t.user_attrs.get(WARM_ATTR) for t in self.study.get_trials(deepcopy=False)}
        added = 0
        unfit: list[Misfit] = []
        names = [name for name, _ in self.spec.targets()]
        for run in runs:
            if run.status != "completed":
                continue
            lacked = next((n for n in names if not _finite(run.metrics.get(n))), None)
            if lacked is not None:
                unfit.append(Misfit(lacked=lacked))
                continue
            why = misfit(self.spec, self.space, run.flags)
            if why is not None:
                unfit.append(Misfit(flags=why))
                continue
            if run.id in have:
                continue
            params = fit(self.spec, self.space, run.flags)
            assert params is not None
            told = [float(run.metrics[n]) for n in names]
            found = excesses(self.spec.constraints, run.metrics) if self.spec.constraints else None
            self.study.add_trial(optuna.trial.create_trial(
                params=params, distributions={n: self.space[n] for n in params},
                values=told,
                user_attrs={WARM_ATTR: run.id, SWEEP_ATTR: run.sweep or "",
                            **({samplers.CONSTRAINTS_ATTR: found} if found is not None else {})},
                system_attrs={f"{samplers.CONSTRAINTS_ATTR}:{rule}": v
                              for rule, v in zip(self.spec.constraints, found or [], strict=True)}))
            have.add(run.id)
            added += 1
        if added and self.grid is None:
            # Seeded as the earlier sweep was, a sampler still in its random start-up (TPE's
            # first 10 trials, the warm ones included) would draw the very points it was just
            # given: reseed from the seed and what the study now holds.
            self.study.sampler = samplers.sampler(self.spec, f"{self.asked()}:{','.join(self.warm_ids())}")
        return added, unfit

    def warm_ids(self) -> list[str]:
        """The ids of the earlier runs the study holds (added now or by an earlier session)."""
        return sorted(str(t.user_attrs[WARM_ATTR]) for t in self.study.get_trials(deepcopy=False)
                      if WARM_ATTR in t.user_attrs)

    def tick(self) -> None:
        """Called by the loop every turn: a shared study beats for its running trials."""

    def pending(self, stop: Callable[[], bool]) -> bool:
        """Once ``ask`` said the study is full and nothing runs here: True when a trial may
        be asked again (a shared study re-runs a dead worker's trial), False to end."""
        return False

    def stores(self) -> list[Store]:
        """Where ended runs are told besides their run directories (a shared study's rows)."""
        return []

    def _draw(self, trial: optuna.trial.Trial) -> None:
        """Suggest each searched flag whose condition holds, parents first: a flag left out
        is never drawn, so the sampler learns only from trials that passed it."""
        kept = fixed_values(self.spec)
        for flag in conditions.order(self.spec.flags):
            if not conditions.is_active(flag, kept):
                kept.pop(flag.name, None)
            elif flag.name in self.space:
                kept[flag.name] = suggest(trial, flag.name, self.space[flag.name])

    def _complete(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The searched flags of ``params`` whose conditions hold, when every one of them
        was drawn (a trial killed inside ``ask`` may have only some); else None."""
        values = {**fixed_values(self.spec), **params}
        if not conditions.complete(self.spec.flags, values):
            return None
        return {n: v for n, v in conditions.active(self.spec.flags, values).items() if n in self.space}

    def _point(self, params: dict[str, Any]) -> tuple[Any, ...] | None:
        assert self.grid is not None
        names = self.grid[0]
        drawn = self._complete(params)  # a flag left out is None in the grid's points
        return tuple(drawn.get(n) for n in names) if drawn is not None else None

    def _free_point(self) -> dict[str, Any] | None:
        assert self.grid is not None
        names, order = self.grid
        if self._taken is None or self.shared:  # a shared study changes under us: read it each time
            self._taken = set()
            for t in self.study.get_trials(deepcopy=False):
                if WARM_ATTR in t.user_attrs and self.spec.sampler == "grid":
                    continue  # a grid runs each of its points; random search draws only new ones
                held = self._point(_asked_params(t))
                if held is not None and not _interrupted(t):
                    self._taken.add(held)
            self._next = 0
        if self.shared:  # pick at random, so that machines asking at once rarely pick alike
            free = [p for p in order if p not in self._taken]
            return _drawn(names, random.choice(free)) if free else None
        while self._next < len(order) and order[self._next] in self._taken:
            self._next += 1
        return _drawn(names, order[self._next]) if self._next < len(order) else None

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

    @journal.deferred
    def tell(self, ask: Ask, status: str, value: float | None = None, attrs: dict[str, Any] | None = None) -> None:
        """The outcome of a trial, with ``attrs`` as its user attributes (what optuna-dashboard
        shows beside it; its ``metrics`` give several objectives' values and the constraints').
        Raises StorageError when the storage cannot take it: the run directory keeps the
        result, and the caller reports the failure."""
        metrics = {k: v for k, v in ((attrs or {}).get("metrics") or {}).items() if isinstance(v, (int, float))}
        try:
            for key, attr in (attrs or {}).items():
                ask.handle.set_user_attr(key, attr)
            self._constrain(ask.handle._trial_id, metrics)
            if status == "completed" and not self.spec.metric:
                ask.handle.set_user_attr(NO_OBJECTIVE_ATTR, True)
            if status == "completed":
                _tell(self.study, ask.handle, values(self.spec, value, metrics))
            elif status == "pruned":
                _tell(self.study, ask.handle, state=_STATE.PRUNED)
            else:
                if status == INTERRUPTED:  # owed again: a resume queues it, a grid frees its point
                    ask.handle.set_user_attr(STATUS_ATTR, INTERRUPTED)
                    self._taken = None
                _tell(self.study, ask.handle, state=_STATE.FAIL)
        except RuntimeError as exc:
            # The grid sampler calls study.stop() after its last point, which raises outside
            # study.optimize once the outcome is already stored: that is no failure.
            if "Study.stop" not in str(exc):
                raise StorageError(f"could not record trial {ask.number} in the study: {exc}") from None
        except Exception as exc:
            raise StorageError(f"could not record trial {ask.number} in the study: "
                               f"{type(exc).__name__}: {exc}") from None

    def _constrain(self, trial_id: int, metrics: dict[str, float]) -> None:
        """Store a trial's constraint values before it is told (Optuna's convention: <= 0 is
        met): as the user attribute ``constraints`` (a list, for optuna-dashboard and Optuna
        4's constraints_func) and as the ``constraints:<text>`` system attributes
        ``Trial.set_constraint`` writes, which Optuna 5's TPE and NSGA-II read."""
        if not self.spec.constraints:
            return
        storage = self.study._storage
        found = excesses(self.spec.constraints, metrics)
        storage.set_trial_user_attr(trial_id, samplers.CONSTRAINTS_ATTR, found)
        for rule, value in zip(self.spec.constraints, found, strict=True):
            storage.set_trial_system_attr(trial_id, f"{samplers.CONSTRAINTS_ATTR}:{rule}", value)

    def resume(self, runs: list[Run]) -> Owed:
        """Settle what a dead driver left in the study and queue again what it owes. The
        caller holds the sweep's lock, so no trial of this sweep is running: a trial left
        RUNNING (even one a kill -9 cut off inside ``ask``, with no params yet) ended as its
        run directory says if the run recorded its end before the study heard of it, else it
        was interrupted. Each interrupted trial with its params is queued once, with the same
        flags; one with none drawn is owed as a fresh trial. ``runs``: the sweep's run
        directories, archived ones too (the record of how each trial ended)."""
        study = self.study
        if self.grid is None:
            # The record's count of asked trials is saved at a clean end only; after kill -9 the
            # study knows how far the random sequence went: go on from there, never replay it.
            study.sampler = samplers.sampler(self.spec, self.asked())
        by_trial = {r.info.get("trial"): r for r in runs}

        def mine(t: optuna.trial.FrozenTrial) -> bool:
            return not self.shared or t.user_attrs.get(SWEEP_ATTR) == self.sweep_id or t.number in by_trial

        for t in study.get_trials(deepcopy=False, states=(_STATE.RUNNING,)):
            if mine(t):
                self._settle(t, by_trial.get(t.number))
        trials = [t for t in study.get_trials(deepcopy=False)
                  if mine(t) and t.state.is_finished() and WARM_ATTR not in t.user_attrs]
        every = study.get_trials(deepcopy=False)
        # Queued again already: by an earlier resume, or (shared) by a heartbeat's retry.
        requeued = {t.user_attrs.get(RERUN_ATTR) for t in every} | {
            n for t in every for n in t.system_attrs.get("retry_history", [])}
        tags = {SWEEP_ATTR: self.sweep_id} if self.sweep_id and self.shared else {}
        ended: set[Any] = set()
        rerun: set[int] = set()
        for t in trials:
            run = by_trial.get(t.number)
            if not _interrupted(t, run):
                point = self._point(t.params) if self.grid is not None else None
                ended.add(point if point is not None else t.number)
            elif t.number in requeued or (run is not None and run.info.get("resumed")):
                rerun.add(t.number)
            elif (drawn := self._complete(_asked_params(t))) is not None:
                study.enqueue_trial(drawn, user_attrs={**tags, RERUN_ATTR: t.number})
                rerun.add(t.number)
        self._taken = None
        return Owed(len(ended), rerun)

    def _settle(self, t: optuna.trial.FrozenTrial, run: Run | None) -> None:
        try:
            value = run.metrics.get(self.spec.metric) if run is not None else None
            valid = not self.spec.metric or (value is not None and math.isfinite(value))
            if run is not None and run.status == "completed" and valid:
                self._constrain(t._trial_id, run.metrics)
                self.study.tell(t.number, values(self.spec, value, run.metrics))
            elif run is not None and run.status == "pruned":
                self.study.tell(t.number, state=_STATE.PRUNED)
            elif run is not None and run.status == "failed":
                self.study.tell(t.number, state=_STATE.FAIL)
            else:
                self.study._storage.set_trial_user_attr(t._trial_id, STATUS_ATTR, INTERRUPTED)
                self.study.tell(t.number, state=_STATE.FAIL)
        except (ValueError, RuntimeError):  # ended meanwhile by another process; the grid's stop()
            pass


def fit(spec: SweepSpec, space: dict[str, BaseDistribution], flags: dict[str, Any]) -> dict[str, Any] | None:
    """The params of an earlier run in this space, or None when its flags do not fit (``misfit``
    says why)."""
    if misfit(spec, space, flags) is not None:
        return None
    return {n: int(v) if isinstance(space[n], IntDistribution) else v for n, v in flags.items() if n in space}


def misfit(spec: SweepSpec, space: dict[str, BaseDistribution], flags: dict[str, Any]) -> str | None:
    """Why an earlier run's flags do not fit this space, naming the first flag that does not
    (``lr 0.002 outside [0.01, 1.0]``), or None when they fit: each flag it passed is one this
    space passes for those values, each fixed flag has this space's value, and each searched
    one lies in its distribution. Strict on purpose: a run made with another setting (a flag
    added, a fixed value changed) measured something else."""
    fixed = fixed_values(spec)
    for name, value in flags.items():
        if not isinstance(name, str) or name not in space and name not in fixed:
            return f"{name} is not in this space"
        if name in fixed and not conditions.member(value, (fixed[name],)):
            return f"{name} {value!r}, not {fixed[name]!r}"
    ran = {**fixed, **flags}
    for flag in conditions.order(spec.flags):  # parents first: the first flag that went wrong
        wanted = conditions.is_active(flag, conditions.active(spec.flags, ran))
        if wanted and flag.name not in flags:
            return f"ran without {flag.name}"
        if not wanted and flag.name in flags:
            return f"{flag.name} passed though its when: ({flag.when.text if flag.when else ''}) fails"
        if flag.name in flags and flag.name in space and not inside(space[flag.name], flags[flag.name]):
            return f"{flag.name} {flags[flag.name]!r} outside {_bounds(space[flag.name])}"
    return None


def _bounds(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"{list(dist.choices)!r}"
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    plain = dist.step is None or isinstance(dist, IntDistribution) and dist.step == 1
    return f"[{dist.low!r}, {dist.high!r}]" + ("" if plain else f" step {dist.step!r}")


def inside(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``dist`` can give ``value`` (a choice by type too: true is not 1)."""
    if isinstance(dist, CategoricalDistribution):
        return conditions.member(value, tuple(dist.choices))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return bool(dist._contains(dist.to_internal_repr(value)))


def suggest(trial: optuna.trial.Trial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for a distribution of ``space`` (a value queued for it wins)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _drawn(names: list[str], point: tuple[Any, ...]) -> dict[str, Any]:
    """A grid point as the values to queue: the flags it leaves out (None) are not given."""
    return {n: v for n, v in zip(names, point, strict=True) if v is not None}


def _tell(study: optuna.Study, trial: optuna.trial.Trial, value: float | Sequence[float] | None = None,
          state: optuna.trial.TrialState | None = None) -> None:
    """``study.tell``, less its last step: reading the told trial back for a copy that nothing
    here uses (six queries a trial on a database)."""
    try:
        from optuna.study._tell import _tell_with_warning
    except ImportError:  # an Optuna without it: the public call, read-back included
        study.tell(trial, value, state=state)
        return
    _tell_with_warning(study, trial, value, state)


def _asked_params(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What a trial was asked with: its fixed params when it was queued (a trial popped from
    the queue and killed before its params were set still has them), else its params."""
    return t.system_attrs.get("fixed_params") or t.params


def _interrupted(t: optuna.trial.FrozenTrial, run: Run | None = None) -> bool:
    """Stopped, not failed: owed again. A study from before ``sweep_status`` existed says so
    only through the trial's run directory."""
    if t.state != _STATE.FAIL:
        return False
    if STATUS_ATTR in t.user_attrs:
        return t.user_attrs[STATUS_ATTR] == INTERRUPTED
    return run is not None and run.status in (INTERRUPTED, "running")


def plan(spec: SweepSpec, n: int | None = None) -> list[dict[str, Any]]:
    """The flags of the next ``n`` trials, from an in-memory study (for --dry-run)."""
    study = optuna.create_study(directions=directions(spec), sampler=samplers.sampler(spec))
    search = Search(spec, study)
    search.enqueue(spec.enqueue)
    out = []
    for _ in range(samplers.target(spec, n)):
        ask = search.ask()
        if ask is None:
            break
        out.append(ask.flags)
        try:
            study.tell(ask.handle, [0.0] * len(spec.targets()))
        except RuntimeError:  # the grid sampler stops the study after its last point
            pass
    return out


def quiet() -> None:
    """Optuna logs every trial at INFO; a sweep shows its own progress instead."""
    import logging

    optuna.logging.set_verbosity(logging.WARNING)

