"""One driver per sweep: ``SweepLock`` holds ``<runs>/.sweep/<sweep id>.lock`` for the sweep's
life, so a second ``--resume`` of a sweep that is running (first run or resumed) refuses.

The lock is ``flock`` on an open file: the kernel releases it when the driver's process ends,
however it ends (kill -9 included), so a lock left by a dead driver is simply taken over. The
file says who holds it (pid, host), for the refusal's message only, written once the sweep's
record is saved (until then the file is empty and takes no disk block). It is never deleted or
replaced: a driver that locked a file someone unlinked would hold a lock nobody else sees.
On a network filesystem the lock holds between machines only where the filesystem carries
``flock`` to the server (NFS does, as a POSIX lock); where it refuses locks, the sweep says
so and does not run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path

from sweep.errors import SweepError
from sweep.rundir import host

SUFFIX = ".lock"


class SweepLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, state_dir: Path, sweep_id: str) -> SweepLock:
        """Lock the sweep or raise ``SweepError`` naming the process that holds it."""
        path = state_dir / f"{sweep_id}{SUFFIX}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise SweepError(f"cannot lock sweep {sweep_id} ({path}): {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SweepError(f"sweep {sweep_id} is already running: {holder}; "
                                 "one sweep has one driver at a time") from None
            raise SweepError(f"cannot lock sweep {sweep_id} ({path}): {exc.strerror or exc}; "
                             "put the runs directory on a filesystem that supports locks") from None
        return cls(path, fd)

    def note(self) -> None:
        """Write who holds the lock, for another driver's refusal to name. Called once the
        sweep's record is saved: on a nearly full disk the record comes first. Best effort:
        without the note the refusal still refuses, it just cannot name the process."""
        if self._fd is None:
            return
        data = json.dumps({"pid": os.getpid(), "host": host(), "since": time.time()}) + "\n"
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data.encode(), 0)
        except OSError:
            pass

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says: empty while the holder opens its study."""
    try:
        note = json.loads(os.pread(fd, 4096, 0))
        return f"pid {int(note['pid'])} on {note['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process is starting it"
