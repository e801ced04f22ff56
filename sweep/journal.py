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
from collections.abc import Callable, Generator, Iterator
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
    (``sync``). Optuna reads the journal back after each append and before each look at the
    study; what this process appended last is handed back from memory instead of read from the
    file, as long as the file holds nothing else (its size says so)."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._batches = 0
        self._tail: tuple[int, int] | None = None  # (logs, bytes) when every log in the file is known here
        self._unread: list[dict[str, Any]] = []  # the last of those, appended here and not yet read

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        lines = [(json.dumps(log, separators=(",", ":")) + "\n").encode() for log in logs]
        data = b"".join(lines)
        fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:  # one write in practice; a short write (a full disk) raises below
                view = view[os.write(fd, view):]
            self._appended(lines, os.lseek(fd, 0, os.SEEK_CUR))
            if self._batches:
                _UNSYNCED[self._file_path] = None
            else:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _appended(self, lines: list[bytes], end: int) -> None:
        """Note what was appended, ending at offset ``end``, for ``read_logs`` to hand back."""
        if self._tail is None or end - sum(map(len, lines)) != self._tail[1]:
            self._tail, self._unread = None, []  # someone else wrote too: read the file
            return
        count, offset = self._tail
        for line in lines:
            count, offset = count + 1, offset + len(line)
            self._log_number_offset[count] = offset  # Optuna's own index of the file
        self._unread += [json.loads(line) for line in lines]  # fresh objects, as a read gives
        self._tail = (count, offset)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        tail = self._tail
        if tail is not None and log_number_from == tail[0] - len(self._unread):
            try:
                size = os.stat(self._file_path).st_size
            except OSError:
                size = -1
            if size == tail[1]:
                logs, self._unread = self._unread, []
                yield from logs
                return
        self._tail, self._unread = None, []
        count = log_number_from
        for log in super().read_logs(log_number_from):
            count += 1
            yield log
        end = self._log_number_offset.get(count)
        if end is not None:  # read to its end (a torn last line: the size check above sees it)
            self._tail = (count, end)

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
