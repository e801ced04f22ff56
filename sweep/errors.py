"""The tool's own exceptions. The CLI maps each to a one-line ``Error: ...`` and an exit
status; the library never prints or exits."""


class SweepError(Exception):
    """A problem the user can fix; exit status 1."""

    exit_code = 1


class SpecError(SweepError):
    """A bad flags file or bad usage; nothing was run or written. Exit status 2."""

    exit_code = 2


class UsageError(SpecError):
    """A bad command-line option or argument. Exit status 2."""
