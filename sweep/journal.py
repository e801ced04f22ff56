"""The sweep's own Optuna journal (``runs/.sweep/<sweep>.journal``): Optuna's file backend,
written the way a journal with one writer can be.

Optuna's backend takes a lock (a symlink made and removed) and fsyncs for every operation:
asking a trial is two or more operations (the trial, one a parameter), telling it four (three
user attributes, the state): six locked, fsync'd appends a trial. This journal has one writer,
the sweep holding its lock (``sweep.lock``), so the symlink lock guards nothing; and what the
journal must keep across a crash of the machine is each ask before its trial starts and each
tell once the trial ended. So the operations of one ask, and of one tell, are written as they
come (a reader, and Optuna replaying its own writes, sees each at once) and fsync'd once, at
the end of the batch: two fsyncs a trial. A kill -9 loses nothing written (the page cache
survives a process); a machine crash loses at most the batch in progress, as before it lost
at most the operation in progress.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from optuna.storages.journal import JournalFileBackend

T = TypeVar("T")


class OwnJournal(JournalFileBackend):
    """A journal file with one writer: appends without Optuna's lock, fsync'd per batch."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._batches = 0
        self._unsynced = False

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:  # one write in practice; a short write (a full disk) raises below
                view = view[os.write(fd, view):]
            if self._batches:
                self._unsynced = True
            else:
                os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Appends within are fsync'd once, when the outermost batch ends."""
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1
            if not self._batches and self._unsynced:
                self._unsynced = False
                fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


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
