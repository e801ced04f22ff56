"""Input that is too much: a flags file that never ends, a ``--set`` value nested 50,000 deep,
a list of 100,000 values. Each is refused (or checked) at once with one line and exit 2, and
nothing is run or written; none may hang, eat memory or print a traceback."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweep import spec
from sweep.errors import SpecError

from helpers import one_error_line, sweep_cli


class Hung(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` on the way swallows it."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, rather than hang the suite, if the block blocks (a FIFO's open waits for a writer)."""
    def ring(*_: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def memory_cap(extra: int = 1 << 30) -> Iterator[None]:
    """Fail with MemoryError, rather than take the machine down, if the block reads without end
    (``/dev/zero``): address space capped at what the process has now plus ``extra``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        now = int(f.read().split()[0]) * resource.getpagesize()
    cap = now + extra if hard == resource.RLIM_INFINITY else min(hard, now + extra)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def bounded_cli(*args: Any):
    """``sweep ARGS`` under a deadline and a memory cap: a regression fails, never hangs."""
    with deadline(20), memory_cap():
        return sweep_cli(*args)


# ---------------------------------------------------------------- a flags file that never ends


def test_dev_zero_is_refused_without_reading_it(tmp_path):
    result = bounded_cli("run", "/dev/zero", "--runs-dir", tmp_path / "runs")
    assert one_error_line(result, 2) == (
        "Error: /dev/zero: not a regular file (a character device); a flags file must be a "
        "regular file")
    assert not (tmp_path / "runs").exists()


def test_a_fifo_named_flags_yaml_does_not_block(tmp_path):
    fifo = tmp_path / "flags.yaml"
    os.mkfifo(fifo)
    result = bounded_cli("run", fifo, "--runs-dir", tmp_path / "runs")
    assert one_error_line(result, 2) == (
        f"Error: {fifo}: not a regular file (a FIFO); a flags file must be a regular file")
    assert not (tmp_path / "runs").exists()


def test_a_fifo_with_a_writer_that_never_stops_is_refused_too(tmp_path):
    fifo = tmp_path / "flags.yaml"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:  # a writer that would keep a reader busy forever
        fd = os.open(fifo, os.O_RDWR)
        os.set_blocking(fd, False)
        while not stop.is_set():
            try:
                os.write(fd, b"flags: {}\n" * 1000)
            except BlockingIOError:
                stop.wait(0.01)
        os.close(fd)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        result = bounded_cli("run", fifo, "--runs-dir", tmp_path / "runs")
    finally:
        stop.set()
        writer.join(5)
    assert one_error_line(result, 2) == (
        f"Error: {fifo}: not a regular file (a FIFO); a flags file must be a regular file")


def test_an_oversize_flags_file_is_refused(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("script: train.py\nflags:\n  lr: [0.1]\n" + "#" * spec.MAX_BYTES)
    result = bounded_cli("run", path, "--runs-dir", tmp_path / "runs")
    size = path.stat().st_size
    assert one_error_line(result, 2) == (
        f"Error: {path}: file is {size} bytes; a flags file may be at most {spec.MAX_BYTES}")
    assert not (tmp_path / "runs").exists()


def test_a_file_that_grows_after_its_size_was_taken_is_read_no_further(write, monkeypatch):
    path = write("script: train.py\nflags:\n  lr: [0.1]\n" + "#" * (spec.MAX_BYTES * 3))
    real_fstat = os.fstat

    def fstat_before_it_grew(fd: int) -> os.stat_result:
        info = list(real_fstat(fd))
        info[6] = 40  # st_size: what it was when looked at
        return os.stat_result(info)

    monkeypatch.setattr(os, "fstat", fstat_before_it_grew)
    with pytest.raises(SpecError) as info:
        spec.load(path)
    limit = spec.MAX_BYTES
    assert str(info.value) == f"{path}: file is over {limit} bytes; a flags file may be at most {limit}"


def test_a_regular_flags_file_still_loads(write):
    assert spec.load(write("script: train.py\nflags:\n  lr: [0.1, 0.2]\n")).flag("lr").values == (0.1, 0.2)


# ---------------------------------------------------------------- a --set value 50,000 deep


DEEP = 50_000


@pytest.mark.parametrize("value", [
    "[" * DEEP + "]" * DEEP,
    "{a: " * DEEP + "1" + "}" * DEEP,
    "{min: " + "[" * DEEP + "]" * DEEP + ", max: 1}",
    "[1, " + "[" * DEEP + "]" * DEEP + "]",
], ids=["list", "mapping", "range-bound", "list-item"])
def test_a_set_value_nested_50000_deep_is_one_line(write, tmp_path, value):
    path = write("script: train.py\nflags:\n  x: [1, 2]\n")
    result = bounded_cli("run", path, "--runs-dir", tmp_path / "runs", "--set", f"x={value}")
    assert one_error_line(result, 2) == "Error: --set x: the value is nested too deeply"
    assert not (tmp_path / "runs").exists()


def test_a_set_value_that_is_not_yaml_is_quoted_short(write):
    s = spec.load(write("script: train.py\nflags:\n  x: [1, 2]\n"))
    with pytest.raises(SpecError) as info:
        spec.override(s, "x=[1, 2")
    assert str(info.value) == "--set x: cannot read '[1, 2' as a value"
    with pytest.raises(SpecError) as info:
        spec.override(s, "x=[" + "1, " * 1000)
    assert str(info.value) == f"--set x: cannot read '{('[' + '1, ' * 20)[:57]}...' as a value"


def test_deep_values_the_yaml_parser_can_build_are_checked_without_recursion(write):
    """Nesting the parser can still build (and a list that holds itself) reaches the checker,
    which refuses it as a non-scalar in every place a value can go."""
    s = spec.load(write("script: train.py\nflags:\n  x: [1, 2]\n"))
    for depth in (50, 150):
        nested = "[" * depth + "]" * depth
        for value in (nested, f"[1, {nested}]", f"{{min: {nested}, max: 1}}", f"{{values: [{nested}]}}",
                      f"{{value: {nested}}}", f"{{min: 0, max: 1, log: {nested}}}",
                      f"{{values: [true], switch: {nested}}}"):
            with pytest.raises(SpecError):
                spec.override(s, f"x={value}")
    with pytest.raises(SpecError, match="must be a number, text or true/false, got a list"):
        spec.override(s, "x=&a [*a]")


# ---------------------------------------------------------------- the duplicate-value check


def checker_values(values: list) -> tuple:
    return spec._Checker(Path("flags.yaml")).values("flags.x", values)


class Counted(str):
    """A text value that counts the comparisons made with it."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        Counted.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_the_duplicate_check_is_linear():
    """2,000 values: a few thousand comparisons at most, not the 2,000,000 of each value
    against every value before it."""
    Counted.comparisons = 0
    checker_values([Counted(f"v{i}") for i in range(2000)])
    assert Counted.comparisons < 4000


def test_100000_distinct_values_are_accepted_and_a_duplicate_found(write):
    path = write("script: train.py\nflags:\n  x: [1]\n")
    values = list(range(100_000))
    loaded = spec.parse({"script": "train.py", "flags": {"x": values}}, path)
    assert loaded.flag("x").values == tuple(values)
    with pytest.raises(SpecError) as info:
        spec.parse({"script": "train.py", "flags": {"x": values + [12_345] + values}}, path)
    assert str(info.value) == f"{path}: flags.x: value 12345 is listed twice"


@pytest.mark.parametrize("values, twice", [
    ([3, 1, 2, 1, 3], 1),  # the first value seen again, in list order
    ([1, True, 1], 1),
    ([0.0, -0.0], -0.0),  # equal floats
    (["a", "b", "a"], "'a'"),
    ([True, False, True], True),
])
def test_duplicates_are_the_same_type_and_value(values, twice):
    with pytest.raises(SpecError) as info:
        checker_values(values)
    assert str(info.value) == f"flags.yaml: flags.x: value {twice} is listed twice"


@pytest.mark.parametrize("values", [[1, 1.0, True, "1"], [0, False, 0.0, "0"], [10**30, 1e30]])
def test_equal_values_of_different_types_are_different_values(values):
    assert checker_values(values) == tuple(values)
