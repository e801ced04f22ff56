"""One study shared by workers on several machines: a PostgreSQL database (Optuna's
``RDBStorage``) or a journal file on a shared filesystem. Optuna does the sharing; this
module adds what a sweep promises on top of it:

- joining is race-free: the first worker creates the schema and the study, under a lock every
  worker takes (a PostgreSQL advisory lock, or the journal's own file lock), and stores the
  space's fingerprint; a worker whose flags file differs refuses to join, naming the difference;
- ``trials:`` is the study-wide total: each ask, under the same lock, counts what the study
  already has (a sweep's grid is handed out under it too, so no point runs twice);
- a worker that stops beating has its trial failed by the others and re-run with the same
  flags (``RetryFailedTrialCallback``): the retry takes the dead trial's place in the total;
- each ended trial's leaderboard row lands in the study as a trial user attribute, so
  ``sweep ls --storage URL --study NAME`` lists every machine's runs (``list_runs``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution

from sweep import board, rundir, samplers, urls
from sweep.diagnosis import DEFAULT_GAP
from sweep.errors import StorageError, UsageError
from sweep.search import INTERRUPTED, RERUN_ATTR, STATUS_ATTR, Ask, Owed, Search, directions, fixed_values, space

if TYPE_CHECKING:
    from sweep.spec import SweepSpec

_STATE = optuna.trial.TrialState
SPACE_ATTR = "sweep_space"  # the study's user attribute holding the fingerprint of its space
ROW_ATTR = "sweep"  # each trial's user attribute holding its leaderboard row
SCHEMA_LOCK = 0x5377_6565_7000  # PostgreSQL advisory lock key: creating Optuna's tables
# Heartbeats: a worker beats every HEARTBEAT_S for each of its trials; another fails a trial
# silent for GRACE_S and re-runs its flags. Settable per environment (tests use 1 and 3).
HEARTBEAT_S = 10
GRACE_S = 60
POOL = {"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True, "pool_recycle": 300}
POLL_S = 1.0  # how often an idle worker looks whether a dead worker's trial came back
RETRY_S = 60.0  # how long a worker keeps trying an unreachable database before giving up
T = TypeVar("T")


def is_journal(url: str | None) -> bool:
    return bool(url) and "://" not in str(url) and str(url).endswith(urls.JOURNAL_SUFFIX)


def _seconds(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    if not (text.isdigit() and int(text) >= 1):
        raise UsageError(f"{name} must be a whole number of seconds (at least 1); got {text!r}")
    return int(text)


def _key(text: str) -> int:
    """A 64-bit advisory lock key for ``text`` (PostgreSQL takes a signed bigint)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _sqlalchemy_url(url: str) -> str:
    """SQLAlchemy reads a bare ``postgresql://`` as psycopg2; the extra installs psycopg 3."""
    urls.check_driver(url)
    scheme, sep, rest = url.partition("://")
    if scheme == "postgresql" and importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg{sep}{rest}"
    return url


class _Lock:
    """What makes joining, counting and asking atomic across workers. Null by default."""

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        yield


class _AdvisoryLock(_Lock):
    """A PostgreSQL transaction-level advisory lock: the server drops it if the worker dies."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.conn: Any = None

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        import sqlalchemy

        with self.engine.begin() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _key(key)})
            self.conn = conn  # the lock's own connection, the only one its engine has
            try:
                yield
            finally:
                self.conn = None


class _FileLock(_Lock):
    """Optuna's open(O_EXCL) lock, the one its journal uses on NFS, on a file beside the journal."""

    def __init__(self, path: str) -> None:
        self.path = path

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        from optuna.storages.journal import JournalFileOpenLock

        lock = JournalFileOpenLock(f"{self.path}.{hashlib.sha256(key.encode()).hexdigest()[:12]}")
        lock.acquire()
        try:
            yield
        finally:
            lock.release()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna warns that heartbeats are experimental and meant for ``optimize``: a sweep
    drives ask/tell itself and beats from its loop, so the warnings would only be noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        yield


_JOINED: dict[str, tuple[optuna.storages.BaseStorage, _Lock]] = {}  # the storage each study joined here


def _open_storage(url: str) -> tuple[optuna.storages.BaseStorage, _Lock]:
    """A worker reads the study's board at its end through the storage it joined with: a
    second one would hold more connections, opened by 8 workers at the same moment."""
    if url in _JOINED:
        return _JOINED[url]
    with _quiet():
        return _open(url)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """A ``--storage`` value (a database URL or a shared journal's path) as Optuna's storage:
    the one way every command opens one."""
    return _open_storage(url)[0]


def _open(url: str) -> tuple[optuna.storages.BaseStorage, _Lock]:
    if is_journal(url):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        return JournalStorage(JournalFileBackend(url, lock_obj=JournalFileOpenLock(url))), _FileLock(url)
    from optuna.storages import RDBStorage

    target = _sqlalchemy_url(url)
    server = not target.startswith("sqlite")
    beat: dict[str, Any] = {"heartbeat_interval": _seconds("SWEEP_HEARTBEAT_S", HEARTBEAT_S),
                            "grace_period": _seconds("SWEEP_GRACE_S", GRACE_S)}
    # Optuna 4.9 renamed the retry callback and its argument; both re-enqueue the same flags.
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry is not None:
        beat["heartbeat_stale_trial_callback"] = retry(max_retry=None)
    else:
        beat["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=None)
    if not target.startswith("postgresql"):
        return RDBStorage(target, engine_kwargs=POOL if server else None, **beat), _Lock()
    import sqlalchemy

    # Optuna creates its tables when the storage opens; two workers doing it at once fail
    # (duplicate key, "relation already exists"): the first creates them, the rest wait. Once
    # they exist, opening creates nothing: workers open side by side, not one after another.
    engine = sqlalchemy.create_engine(target, pool_size=1, max_overflow=0, pool_pre_ping=True)  # the lock
    lock = _AdvisoryLock(engine)
    with engine.connect() as conn:
        made = _schema_made(conn)
    if not made:
        # What opening imports and builds in memory (Optuna's schema versions, its table
        # classes and their ORM mappings, 0.2-0.3 s of CPU), done while the first worker creates
        # the tables: the workers waiting for it have less left to do once it is done.
        import alembic.migration  # noqa: F401
        import alembic.script  # noqa: F401
        import sqlalchemy.orm
        from optuna.storages._rdb import models  # noqa: F401

        sqlalchemy.orm.configure_mappers()

        with lock.held("schema"):
            if not _schema_made(lock.conn):
                return RDBStorage(target, engine_kwargs=dict(POOL), **beat), lock
    return RDBStorage(target, engine_kwargs=dict(POOL), **beat), lock


def _schema_made(conn: Any) -> bool:
    """Whether Optuna has made its tables here: it stamps ``alembic_version`` last, in its own
    transaction, so a stamped database has every table committed."""
    import sqlalchemy

    # pg_class itself, read with this statement's snapshot: to_regclass may answer from the
    # backend's catalog cache, which misses a table committed while we waited for the lock.
    table = "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'alembic_version' AND pg_table_is_visible(oid)"
    if not conn.execute(sqlalchemy.text(table)).scalar():
        return False
    return bool(conn.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version")).scalar())


def fingerprint(spec: SweepSpec, total: int) -> dict[str, Any]:
    """What every worker of a study must agree on: the searched flags, the fixed ones, the
    objective and the total."""
    return {
        "flags": {name: json.loads(distribution_to_json(d)) for name, d in space(spec).items()},
        "fixed": {k: repr(v) for k, v in fixed_values(spec).items()},
        "metric": spec.metric, "goal": spec.goal, "trials": total,
    }


def difference(ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """The first difference between two fingerprints, in words; None when they agree."""
    for key in ("metric", "goal", "trials"):
        if ours.get(key) != theirs.get(key):
            return f"{key} is {ours.get(key)!r} here, {theirs.get(key)!r} in the study"
    for part in ("flags", "fixed"):
        mine, study = ours.get(part) or {}, theirs.get(part) or {}
        for name in sorted(set(mine) | set(study)):
            if name not in study:
                return f"flag {name} is not in the study's space"
            if name not in mine:
                return f"flag {name} of the study's space is missing here"
            if mine[name] != study[name]:
                return f"flag {name} is {_describe(mine[name])} here, {_describe(study[name])} in the study"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("attributes"), dict):
        attrs = value["attributes"]
        if "choices" in attrs:
            return f"one of {attrs['choices']}"
        return f"{attrs.get('low')}..{attrs.get('high')}" + (" (log)" if attrs.get("log") else "")
    return str(value)


def join(spec: SweepSpec, url: str, name: str, done: int = 0) -> SharedSearch:
    """Open (create, or join) the study ``name`` in the shared storage ``url``."""
    total = samplers.target(spec)
    ours = fingerprint(spec, total)
    try:
        storage, lock = _JOINED[url] = _open_storage(url)
        sampler, pruner = samplers.sampler(spec, done), samplers.pruner(spec)
        study, theirs = _made(storage, name, sampler, pruner)
        if study is None:
            with lock.held(f"study:{name}"):
                study = optuna.create_study(storage=storage, study_name=name, directions=directions(spec),
                                            sampler=sampler, pruner=pruner, load_if_exists=True)
                theirs = study.user_attrs.get(SPACE_ATTR)
                if theirs is None:
                    study.set_user_attr(SPACE_ATTR, ours)
    except (UsageError, StorageError):
        raise
    except ImportError as exc:
        raise StorageError(f"storage needs a driver that is not installed: {exc}") from None
    except Exception as exc:  # sqlalchemy, psycopg, OSError: one line, never the password
        raise StorageError(f"cannot open study {name!r} in {urls.redact(url)}: {_short(exc)}") from None
    if theirs is not None:
        problem = difference(ours, theirs)
        if problem:
            raise UsageError(f"--study {name}: this flags file differs from the study's: {problem}")
    return SharedSearch(spec, study, storage, lock, total, url)


def _made(storage: optuna.storages.BaseStorage, name: str, sampler: optuna.samplers.BaseSampler,
          pruner: optuna.pruners.BasePruner) -> tuple[optuna.Study | None, dict[str, Any] | None]:
    """The study and its space when a worker made both: then joining reads, creates nothing,
    and needs no lock (8 workers join side by side, not one after another)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        return None, None
    theirs = study.user_attrs.get(SPACE_ATTR)
    return (study, theirs) if theirs is not None else (None, None)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def replaced(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """The trials queued again as new ones: failed for a dead worker (a heartbeat's retry), or
    interrupted and queued again by their worker's ``--resume``."""
    return {n for t in trials for n in [*t.system_attrs.get("retry_history", []), t.user_attrs.get(RERUN_ATTR)]
            if isinstance(n, int)}


def counted(trials: list[optuna.trial.FrozenTrial]) -> tuple[int, int]:
    """(trials that take a place in the total, trials waiting to run). A trial failed for a
    dead worker, or interrupted and resumed, gave its place to its re-run; a waiting re-run is
    run whatever the total."""
    retried = replaced(trials)
    waiting = sum(1 for t in trials if t.state == _STATE.WAITING)
    taken = sum(1 for t in trials if t.state != _STATE.WAITING and t.number not in retried
                and "warm_start_from" not in t.user_attrs)  # search.WARM_ATTR: --warm-start's runs take no place
    return taken, waiting


class SharedSearch(Search):
    """A study shared with other workers: asks under the study's lock, stops at the study-wide
    total, beats for its running trials and fails the trials of dead workers."""

    def __init__(self, spec: SweepSpec, study: optuna.Study, storage: optuna.storages.BaseStorage,
                 lock: _Lock, total: int, url: str) -> None:
        super().__init__(spec, study, shared=True)
        self.storage = storage
        self.lock = lock
        self.total = total
        self.where = urls.redact(url) or ""
        self.beats = hasattr(storage, "record_heartbeat") and bool(getattr(storage, "heartbeat_interval", None))
        self.interval = float(getattr(storage, "heartbeat_interval", None) or HEARTBEAT_S)
        self._running: dict[int, int] = {}  # trial number -> trial id, for the heartbeat
        self._last_beat = 0.0
        self._full_until = 0.0  # no need to ask the database again before then
        self._stale_at = -math.inf  # when this worker last failed the stale trials

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        """``call``, tried again while the database is unreachable (a restart), up to RETRY_S."""
        import sqlalchemy.exc

        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                return call()
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
                if time.monotonic() > deadline:
                    raise StorageError(f"cannot reach the study's database {self.where} to {what} "
                                       f"after {RETRY_S:.0f} s: {_short(exc)}") from None
                time.sleep(1.0)

    def ask(self) -> Ask | None:
        if time.monotonic() < self._full_until:
            return None  # asked a moment ago: the loop asks every turn while trials run here
        ask = self._retry("ask for a trial", self._ask)
        if ask is None:
            self._full_until = time.monotonic() + self.interval
        return ask

    def pending(self, stop: Callable[[], bool]) -> bool:
        """The study has all its trials and none runs here: wait while other workers' trials
        run, since a dead worker's trial comes back (failed by a heartbeat, re-queued), so the
        study still ends with the total asked. True once one waits; False when none can (a
        journal has no heartbeats: a dead worker's trial never comes back there)."""
        while self.beats and not stop():
            trials = self._retry("watch the study", self._stale_and_trials)
            if any(t.state == _STATE.WAITING for t in trials):
                self._full_until = 0.0
                return True
            if not any(t.state == _STATE.RUNNING for t in trials):
                return False
            deadline = time.monotonic() + min(self.interval, POLL_S)
            while time.monotonic() < deadline and not stop():
                time.sleep(0.1)
        return False

    def resume(self, runs: list[rundir.Run]) -> Owed:
        """``--resume`` of a worker: its own trials left running by a kill are queued again at
        once (no grace period to wait), under the study's lock so that no heartbeat fails and
        re-queues them meanwhile; one another worker already re-queued is not queued twice."""
        with self.lock.held(f"study:{self.study.study_name}"), _quiet():
            return self._retry("resume", lambda: super(SharedSearch, self).resume(runs))

    def _stale_and_trials(self) -> list[optuna.trial.FrozenTrial]:
        with self.lock.held(f"study:{self.study.study_name}"):
            self._fail_stale_due()
            return self.study.get_trials(deepcopy=False)

    def _ask(self) -> Ask | None:
        with self.lock.held(f"study:{self.study.study_name}"), _quiet():
            self._fail_stale_due()
            taken, waiting = counted(self.study.get_trials(deepcopy=False))
            if not waiting and taken >= self.total:
                return None
            if self.spec.seed is not None and not samplers.uses_grid(self.spec):
                # Every worker has the same seed: go on from the study's count, never replay.
                self.study.sampler = samplers.sampler(self.spec, taken + waiting)
            ask = super().ask()
        if ask is None:  # every point of a grid is held by some worker
            return None
        self._running[ask.number] = ask.handle._trial_id
        self._beat(ask.handle._trial_id)
        return ask

    def tell(self, ask: Ask, status: str, value: float | None = None, attrs: dict[str, Any] | None = None) -> None:
        self._running.pop(ask.number, None)
        try:
            if attrs:
                self._retry("record a trial", lambda: self._set_attrs(ask.handle._trial_id, attrs))
            self._retry("record a trial", lambda: super(SharedSearch, self).tell(ask, status, value))
        except StorageError as exc:
            if "finished" in str(exc) or "already" in str(exc):  # a retry after a commit that made it
                return
            raise

    def tick(self) -> None:
        """Beat for the running trials, and fail the trials of workers that stopped beating."""
        if not self.beats or time.monotonic() - self._last_beat < self.interval:
            return
        self._last_beat = time.monotonic()
        try:
            for trial_id in list(self._running.values()):
                self._beat(trial_id)
            with self.lock.held(f"study:{self.study.study_name}"):  # never while a worker resumes
                self._fail_stale()
        except Exception:  # the database restarting: the next tick tries again
            pass

    def _set_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """A trial's user attributes in one transaction (Optuna's public call makes one each)."""
        from optuna.storages import RDBStorage

        rdb = self.storage
        if not isinstance(rdb, RDBStorage) or not hasattr(rdb, "_set_trial_attr_without_commit"):
            for key, value in attrs.items():
                rdb.set_trial_user_attr(trial_id, key, value)
            return
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(rdb.scoped_session, True) as session:
            for key, value in attrs.items():
                rdb._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)

    def _beat(self, trial_id: int) -> None:
        if self.beats:
            self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]

    def _fail_stale(self) -> None:
        if self.beats:
            self._stale_at = time.monotonic()
            with _quiet():
                optuna.storages.fail_stale_trials(self.study)

    def _fail_stale_due(self) -> None:
        """``_fail_stale`` unless done within a heartbeat interval: no trial turns stale
        faster than that, and an ask comes every few seconds per worker."""
        if time.monotonic() - self._stale_at >= self.interval:
            self._fail_stale()

    def stores(self) -> list[rundir.Store]:
        return [StudyStore(self)]


class StudyStore:
    """A ``rundir.Store``: each ended run's leaderboard row, as a user attribute of its trial
    (written before the trial is told, while it can still take attributes)."""

    def __init__(self, search: SharedSearch) -> None:
        self.search = search

    def ended(self, path: Path, info: rundir.RunInfo, metrics: dict[str, float]) -> None:
        trial_id = self.search._running.get(info.trial)
        if trial_id is None:
            return
        row = {"trial": info.trial, "id": info.id, "sweep": info.sweep, "status": info.status, "host": info.host,
               "dir": str(path.resolve()), "start": info.start, "duration": info.duration,
               "reason": info.reason, "steps": info.steps, "metric": info.metric, "goal": info.goal,
               "metrics": metrics, "flags": rundir.read_run(path).flags}
        self.search._retry("record a run", lambda: self.search.storage.set_trial_user_attr(trial_id, ROW_ATTR, row))


# ---------------------------------------------------------------- the study's leaderboard

DEAD = "its worker stopped beating; re-run as a new trial"
RESUMED = "its worker was killed; its --resume queued it again"
_STATUS = {_STATE.COMPLETE: "completed", _STATE.PRUNED: "pruned", _STATE.FAIL: "failed",
           _STATE.RUNNING: "running", _STATE.WAITING: "waiting"}


def load(url: str, name: str) -> optuna.Study:
    """The study ``name``, to read: never created (nor its journal)."""
    if is_journal(url) and not os.path.isfile(url):  # a reader never creates the journal
        raise UsageError(f"--storage: no journal file {url}")
    try:
        storage, _ = _open_storage(url)
        return optuna.load_study(study_name=name, storage=storage)
    except (UsageError, StorageError):
        raise
    except KeyError:
        raise UsageError(f"--study: no study {name!r} in {urls.redact(url)}") from None
    except Exception as exc:
        raise StorageError(f"cannot read study {name!r} in {urls.redact(url)}: {_short(exc)}") from None


def list_runs(url: str, name: str) -> list[rundir.Run]:
    """Every trial of the study ``name`` as a run, from the database alone."""
    return runs_of(load(url, name))


def runs_of(study: optuna.Study) -> list[rundir.Run]:
    """Each trial as a run: the row its worker stored, or what the study knows (a running
    trial, one failed for a dead worker)."""
    name = study.study_name
    retried_ones = {n for t in study.get_trials(deepcopy=False) for n in t.system_attrs.get("retry_history", [])}
    runs = []
    for t in study.get_trials(deepcopy=False):
        if "warm_start_from" in t.user_attrs:  # search.WARM_ATTR: an earlier sweep's run, not this study's
            continue
        row = t.user_attrs.get(ROW_ATTR)
        if not isinstance(row, dict) or row.get("trial") != t.number:
            row = None  # a retry starts with the user attributes of the trial it replaces
        status = _STATUS.get(t.state, "failed")
        retried = t.number in retried_ones
        if row is not None:
            # A worker killed after its row but before telling the study: the study's verdict wins.
            status = "failed" if retried else str(row.get("status") or status)
            info = {k: row.get(k) for k in ("sweep", "start", "duration", "steps", "metric", "goal", "host")}
            info.update(trial=t.number, dir=row.get("dir"))
            runs.append(rundir.Run(Path(str(row.get("dir") or f"trial-{t.number}")), str(row.get("id")),
                                   status, info,
                                   dict(row.get("flags") or t.params), dict(row.get("metrics") or {}),
                                   DEAD if retried else row.get("reason")))
            continue
        start = t.datetime_start.timestamp() if t.datetime_start else None
        reason = DEAD if retried else None
        if t.state == _STATE.FAIL and t.user_attrs.get(STATUS_ATTR) == INTERRUPTED and not retried:
            status, reason = "interrupted", RESUMED  # settled by its worker's --resume
        runs.append(rundir.Run(Path(f"{name}/trial-{t.number}"), f"trial-{t.number}", status,
                               {"trial": t.number, "start": start, "sweep": name}, dict(t.params), {}, reason))
    return runs


def resolve(url: str, name: str, ref: str) -> rundir.Run:
    """A run of the study by id, unique prefix, ``last``, ``last~N`` or ``best`` (the study's
    best by its objective: every worker's runs, not one sweep's)."""
    rundir.check_ref(ref)
    runs = list_runs(url, name)
    if ref == "best":
        return rundir.best_of(runs, f"study {name}")
    return rundir.find(ref, runs, f"study {name}")


def space_of(study: optuna.Study) -> dict[str, BaseDistribution]:
    """The study's search space, from the fingerprint its first worker stored: the flags file
    may be on another machine."""
    stored = study.user_attrs.get(SPACE_ATTR)
    flags = stored.get("flags") if isinstance(stored, dict) else None
    if not isinstance(flags, dict):
        raise StorageError(f"study {study.study_name!r} has no search space recorded (not made by sweep run)")
    return {k: json_to_distribution(json.dumps(v)) for k, v in flags.items()}


def leaderboard(runs: list[rundir.Run], baseline_error: float | None = None, gap: float = DEFAULT_GAP) -> board.Board:
    """``ls``'s board of a shared study: each row says on which host its directory is, and
    where (the absolute path its worker wrote)."""
    found = board.build(runs, Path("."), baseline_error, gap)
    for row, run in zip(found.rows, runs, strict=True):
        row["host"] = run.info.get("host")
        row["dir"] = run.info.get("dir") or ""
    columns = list(found.columns)
    columns.insert(columns.index("dir") if "dir" in columns else len(columns), "host")
    return dataclasses.replace(found, columns=columns)
