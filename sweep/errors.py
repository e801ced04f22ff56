"""The tool's own exceptions, one hierarchy. The CLI maps each to a one-line ``Error: ...``
and its exit status; the library never prints or exits."""


class SweepError(Exception):
    """A problem the user can fix; exit status 1."""

    exit_code = 1


class SpecError(SweepError):
    """A bad flags file or bad usage; nothing was run or written. Exit status 2."""

    exit_code = 2


class UsageError(SpecError):
    """A bad command-line option or argument. Exit status 2."""


class RunNotFound(SweepError):
    """A run or sweep reference that names nothing (or too many things)."""


class StorageError(SweepError):
    """The study's storage (journal file or database) cannot be opened or written."""


class RecordError(SweepError):
    """The run record cannot be written (disk full, read-only): the sweep stopped."""


class LauncherError(SweepError):
    """A trial could not be started, or the launcher died."""


class ScriptError(SpecError):
    """A script whose argparse parser cannot be read (``sweep init``): it does not use argparse,
    fails before parsing its arguments, or takes too long to get there. Exit status 2."""
