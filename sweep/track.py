"""The API a training script imports: ``sweep.flags``, ``sweep.log``, ``sweep.should_stop``.

Stdlib only, because every trial imports it. Inside a sweep the driver sets
``SWEEP_RUN_DIR`` and ``SWEEP_FLAGS``; run by hand, flags come from ``--name=value``
arguments and ``log`` prints instead of writing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from typing import Any

from sweep import rundir


class FlagError(SystemExit):
    """A flag the script did not declare, or a value of the wrong type (exit status 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Flags(dict):
    """The flags of one trial: a dict that also reads as attributes (``f.dropout``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no flag named {name!r}") from None


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Give ``value`` the type of the declared default (values from argv are strings)."""
    if default is None:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise FlagError(f"flag --{name} expects true or false, got {value!r}")
    try:
        if isinstance(default, int):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            text = str(value).strip()
            try:
                return int(text)  # exact, even past 2**53
            except ValueError:
                number = float(text)  # "3.0", "1e3"
            if not math.isfinite(number) or number != int(number):
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError, OverflowError):
        kind = type(default).__name__
        raise FlagError(f"flag --{name} expects {kind}, got {value!r}") from None
    return str(value) if isinstance(default, str) else value


def _parse_argv(argv: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--") or arg == "--":
            raise FlagError(f"unexpected argument {arg!r}: flags are given as --name=value")
        name, eq, value = arg[2:].partition("=")
        name = _declared(name, defaults)
        if not eq:
            if isinstance(defaults[name], bool):
                value = "true"
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise FlagError(f"flag --{name} needs a value")
        given[name] = value
    return given


def _declared(name: str, defaults: dict[str, Any]) -> str:
    """The declared flag that ``name`` means: ``-`` and ``_`` are one (tfruns' rule), so a flags
    file may spell a flag as the command line does (``learning-rate``) for ``learning_rate``."""
    if name in defaults:
        return name
    key = name.replace("-", "_")
    for declared in defaults:
        if declared.replace("-", "_") == key:
            return declared
    raise _undeclared(name, defaults)


def _undeclared(name: str, defaults: dict[str, Any]) -> FlagError:
    known = ", ".join(sorted(defaults)) or "none"
    return FlagError(f"flag {name!r} is not declared by sweep.flags(); declared: {known}")


def flags(**defaults: Any) -> Flags:
    """Declare the script's flags with their defaults and return this trial's values.

    Inside a sweep the values come from ``SWEEP_FLAGS`` (or the run's ``flags.json`` when
    they are too long for the environment); run by hand, from ``--name=value`` arguments.
    A flag that is not declared here is an error.
    """
    try:
        return _flags(defaults)
    except FlagError as exc:
        # SystemExit(2) alone would end the script silently: say why, as argparse does.
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "script"
        sys.stderr.write(f"{prog}: error: {exc.message}\n")
        raise


def _flags(defaults: dict[str, Any]) -> Flags:
    raw = os.environ.get("SWEEP_FLAGS")
    run_dir = os.environ.get("SWEEP_RUN_DIR")
    if raw is None and run_dir and os.path.isfile(os.path.join(run_dir, "flags.json")):
        with open(os.path.join(run_dir, "flags.json"), encoding="utf-8") as fh:
            raw = fh.read()  # flags too long for the environment (over 128 KiB) are left there
    if raw is not None:
        try:
            given = json.loads(raw)
        except ValueError:
            raise FlagError("SWEEP_FLAGS is not valid JSON") from None
        if not isinstance(given, dict):
            raise FlagError("SWEEP_FLAGS must be a JSON object of flag values")
        given = _by_declared_name(given, defaults)
    else:
        given = _parse_argv(sys.argv[1:], defaults)
    values = Flags(defaults)
    for name, value in given.items():
        values[name] = _coerce(name, value, defaults[name])
    return values


def _by_declared_name(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, value in given.items():
        key = _declared(name, defaults)
        if key in out:
            raise FlagError(f"flag {key!r} is given twice, as {spelled[key]!r} and {name!r}")
        out[key], spelled[key] = value, name
    return out


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"sweep.log: metric {name!r} must be a number, got {value!r}") from None


def log(step: int | None = None, **metrics: Any) -> None:
    """Record metrics (at an optional step). Inside a sweep this appends one line to
    ``metrics.jsonl``; run by hand it prints them."""
    values = {name: _number(name, v) for name, v in metrics.items()}
    run_dir = os.environ.get("SWEEP_RUN_DIR")
    if not run_dir:
        head = f"step {step}: " if step is not None else ""
        body = " ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        print(head + body, flush=True)
        return
    record: dict[str, Any] = {"step": None if step is None else int(step), "time": time.time()}
    record.update(values)
    rundir.append_jsonl(os.path.join(run_dir, rundir.METRICS_HISTORY), record)


def _fmt(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


_stop_requested = False


def _on_term(signum: int, frame: Any) -> None:
    global _stop_requested
    _stop_requested = True


def should_stop() -> bool:
    """True once the sweep wants this trial to end (pruned or interrupted).

    The first call opts the script in: from then on SIGTERM sets this flag instead of
    killing the process, so the script can finish its epoch and exit cleanly.
    """
    run_dir = os.environ.get("SWEEP_RUN_DIR")
    if not run_dir:
        return False
    global _handler_installed
    if not _handler_installed:
        try:
            signal.signal(signal.SIGTERM, _on_term)
        except ValueError:  # not the main thread: rely on the stop file alone
            pass
        _handler_installed = True
    return _stop_requested or os.path.exists(os.path.join(run_dir, rundir.STOP_FILE))


_handler_installed = False
