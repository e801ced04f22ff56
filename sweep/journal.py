"""The sweep's own Optuna journal (``runs/.sweep/<sweep>.journal``): Optuna's file backend,
written the way a journal with one writer can be.

Optuna's backend takes a lock (a symlink made and removed) and fsyncs for every operation:
asking a trial is two or more operations (the trial, one a parameter), telling it four (three
user attributes, the state): six locked, fsync'd appends a trial. This journal has one writer,
the sweep holding its lock (``sweep.lock``), so the symlink lock guards nothing; and the
journal is not the record (the run directories are): across a crash of the machine it must
keep what resume cannot settle from them. So the operations of one ask, and of one tell, are
written as they come (a reader, and Optuna replaying its own writes, sees each at once) and fsync'd together
by ``sync``, which the sweep loop calls once the next trial has started: one fsync a trial,
off the path from one trial to the next. A kill -9 loses nothing written (the page cache
survives a process); a machine crash loses at most the last ask or tell, which resume
settles from the run directories (a trial the study still holds as running ended as its run
directory says, or is run again).
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
    """fsync every journal a batch has written since the last call. The sweep loop calls it
    once the next trials have started (and at its end), so the fsyncs overlap a trial rather
    than sit between one trial and the next: a machine crash meanwhile loses at most the last
    ask or tell, which resume settles from the run directories as it does for a kill -9
    inside one. Also at exit."""
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
    def batch(self) -> Iterator[None]:
        """Appends within are fsync'd together, by the next ``sync``."""
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1


def batched(method: Callable[..., T]) -> Callable[..., T]:
    """A ``Search`` method whose journal appends make one batch (when its study's storage is
    an ``OwnJournal``; other storages are left as they are)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        backend = getattr(getattr(self.study, "_storage", None), "_backend", None)
        if not isinstance(backend, OwnJournal):
            return method(self, *args, **kwargs)
        with backend.batch():
            return method(self, *args, **kwargs)

    return wrapper
