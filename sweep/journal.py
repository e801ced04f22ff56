"""The sweep's own Optuna journal (``runs/.sweep/<sweep>.journal``): Optuna's file backend,
written the way a journal with one writer can be.

Optuna's backend takes a lock (a symlink made and removed) and fsyncs for every operation:
asking a trial is two or more operations (the trial, one a parameter), telling it four (three
user attributes, the state): six locked, fsync'd appends a trial. This journal has one writer,
the sweep holding its lock (``sweep.lock``), so the symlink lock guards nothing; and the
journal is not the record (the run directories are): across a crash of the machine it must
keep what resume cannot settle from them. So the operations of one ask, and of one tell, are
written as they come (a reader, and Optuna replaying its own writes, sees each at once) and fsync'd
together: an ask before it returns, so the journal never falls behind the run directories;
a tell with the next ask (or by ``sync``, which the sweep loop calls once the next trial has
started, and at its end): one fsync a trial. A kill -9 loses nothing written (the page cache
survives a process); a machine crash loses at most the last tell, which resume settles from
the run directory (a trial the study still holds as running ended as its run says).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from optuna.storages.journal import JournalFileBackend

T = TypeVar("T")


_UNSYNCED: dict[str, None] = {}  # journals with batches written but not yet fsync'd


def sync() -> None:
    """fsync every journal a batch has written since the last fsync (the sweep loop calls it
    once the next trials have started, and at its end; also at exit)."""
    while _UNSYNCED:
        path = next(iter(_UNSYNCED))
        del _UNSYNCED[path]
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:  # removed meanwhile (a purged sweep): nothing to keep
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


atexit.register(sync)


class OwnJournal(JournalFileBackend):
    """A journal file with one writer: appends without Optuna's lock, fsync'd per batch
    (``sync``)."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._batches = 0

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:  # one write in practice; a short write (a full disk) raises below
                view = view[os.write(fd, view):]
            if self._batches:
                _UNSYNCED[self._file_path] = None
            else:
                os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def batch(self, durable: bool) -> Iterator[None]:
        """Appends within are fsync'd together: at its end when ``durable`` (with whatever
        earlier batches left unsynced), else by the next durable batch or ``sync``."""
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1
            if durable and not self._batches and self._file_path in _UNSYNCED:
                sync()


def batched(method: Callable[..., T]) -> Callable[..., T]:
    """A ``Search`` method whose journal appends make one batch, fsync'd before it returns
    (an ask: the journal never falls behind the run directory the trial is published in)."""
    return _batch(method, durable=True)


def deferred(method: Callable[..., T]) -> Callable[..., T]:
    """A ``Search`` method whose journal appends make one batch left to the next ask or
    ``sync`` to fsync (a tell: the run directory has the outcome already)."""
    return _batch(method, durable=False)


def _batch(method: Callable[..., T], durable: bool) -> Callable[..., T]:
    """Other storages than an ``OwnJournal`` are left as they are."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        backend = getattr(getattr(self.study, "_storage", None), "_backend", None)
        if not isinstance(backend, OwnJournal):
            return method(self, *args, **kwargs)
        with backend.batch(durable):
            return method(self, *args, **kwargs)

    return wrapper
