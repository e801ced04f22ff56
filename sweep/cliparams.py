"""Typer's option values without pydantic where the value is plain.

Typer (0.2x) coerces every option of the invoked command through a pydantic ``TypeAdapter``,
built when the command runs even for an option left unset: pydantic's import and twenty-odd
adapters were a tenth of a second of every ``sweep`` command's start. Here an unset option, a
string, a path given as a string, and a number that is plainly one and within its bounds are
taken as they are; anything else (a bad number, an out-of-range one, an enum, a date) goes to
typer's own coercion, which gives its own messages. Where typer's internals differ from what
this expects, nothing is changed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SLOW = object()  # this value is typer's to coerce


class _Plain:
    """A stand-in for typer's ``RuntimeParam`` that builds typer's own only when needed."""

    def __init__(self, descriptor: Any, build: Any) -> None:
        self.descriptor = descriptor
        self._build = build
        self._slow: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        if multi and isinstance(value, (list, tuple)):
            items = [self._one(v, param, ctx) for v in value]
            if all(v is not _SLOW for v in items):
                return type(value)(items) if isinstance(value, tuple) else items
        elif not multi:
            done = self._one(value, param, ctx)
            if done is not _SLOW:
                return done
        if self._slow is None:
            self._slow = self._build(self.descriptor)
        return self._slow.coerce(value, param=param, ctx=ctx)

    def _one(self, value: Any, param: Any, ctx: Any) -> Any:
        info = self.descriptor.parameter_info
        kind = _item_type(self.descriptor.annotation) or self.descriptor.annotation
        if info.parser is not None:
            return _SLOW
        if kind is Path and info.path_type in (None, Path) and isinstance(value, (str, Path)):
            from typer._param_types import coerce_cli_path  # pydantic-free when given a Path

            return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
        if kind is str and type(value) is str:
            return value
        if kind in (int, float) and not info.clamp:
            if type(value) is str and (_INT if kind is int else _FLOAT).fullmatch(value):
                value = kind(value)
            if type(value) is not kind:
                return _SLOW
            if (info.min is not None and value < info.min) or (info.max is not None and value > info.max):
                return _SLOW
            return value
        return _SLOW


def _item_type(annotation: Any) -> Any:
    """``str`` of ``list[str]``; None for anything else."""
    if getattr(annotation, "__origin__", None) is list:
        args: tuple[Any, ...] = getattr(annotation, "__args__", ())
        return args[0] if len(args) == 1 else None
    return None


def install() -> None:
    """Make typer's parameters coerce plain values without pydantic (once per process)."""
    try:
        from typer import core
        from typer._coercion import build_runtime_param
    except ImportError:
        return
    cls = getattr(core, "_TyperParameter", None)
    if cls is None or not hasattr(cls, "get_runtime_param") or getattr(cls, "_sweep_plain", False):
        return

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", None) is None:
            self._runtime_param = _Plain(self.type_descriptor, build_runtime_param)
        return self._runtime_param

    cls.get_runtime_param = get_runtime_param
    cls._sweep_plain = True
