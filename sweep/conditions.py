"""Conditional flags: the ``when:`` grammar, whether a condition holds, which flags a trial
passes, and every combination a space of lists can produce. Pure and light (no optuna):
spec, search and samplers all read it.

A condition is one comparison, ``NAME OP VALUE``: ``optimizer == sgd``, ``optimizer != adam``,
``optimizer in [momentum, nesterov]``, ``optimizer not in [adam]``, ``layers >= 2``. The
value is read as YAML (safe loading, a scalar or a list of scalars): the text is parsed,
never evaluated. A flag whose condition names a flag that is itself left out is left out
too, so conditions chain.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweep.spec import Flag

# The longest operators first: "not in" before "in", "<=" before "<".
_JOINED = re.compile(r"\s(and|or)\s", re.IGNORECASE)
_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*?)\s*(==|!=|<=|>=|<|>|\s+not\s+in\s+|\s+in\s+)\s*(.+?)\s*\Z",
                 re.DOTALL)
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
OPERATORS = ("==", "!=", "in", "not in", *COMPARE)
GRAMMAR = "write NAME OP VALUE with OP one of ==, !=, in, not in, <, <=, >, >= (e.g. 'optimizer in [sgd, nesterov]')"


@dataclass(frozen=True)
class Condition:
    """``flag op values``: ``values`` holds one value for ==, != and the comparisons."""

    flag: str
    op: str
    values: tuple[Any, ...]
    text: str

    def holds(self, value: Any) -> bool:
        if self.op in ("in", "=="):
            return member(value, self.values)
        if self.op in ("not in", "!="):
            return not member(value, self.values)
        try:
            return bool(COMPARE[self.op](value, self.values[0]))
        except TypeError:  # text against a number: never ordered
            return False


def member(value: Any, values: tuple[Any, ...]) -> bool:
    # By type and value: true is not 1, but 2 and 2.0 are one number.
    return any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in values)


class ConditionError(ValueError):
    """A ``when:`` the grammar cannot read; the message is the rule broken."""


def parse(text: str, read_value: Callable[[str], Any]) -> Condition:
    """``text`` -> a Condition. ``read_value`` reads the value's text as YAML (the flags file's
    own loader, so ``1e-3`` is a number there too)."""
    match = _RE.match(text)
    if not match:
        raise ConditionError(f"cannot read {text!r}: {GRAMMAR}")
    name, op, raw = match.group(1), " ".join(match.group(2).split()), match.group(3)
    if raw[:1] not in "'\"" and _JOINED.search(raw):  # the value would swallow the rest as text
        raise ConditionError("a condition is one comparison ('and' and 'or' are not supported): for 'or' use "
                             "'in [a, b]'; for 'and' chain them: name a flag that has its own when: (it holds "
                             "only where both do)")
    value = read_value(raw)
    if op in ("in", "not in"):
        if not isinstance(value, list) or not value:
            raise ConditionError(f"{op!r} takes a list of values, e.g. '{name} {op} [a, b]'; got {raw!r}")
        values = tuple(value)
    else:
        if isinstance(value, (list, dict)) or value is None:
            raise ConditionError(f"{op!r} takes one value; got {raw!r}")
        values = (value,)
    for v in values:
        if v is None or isinstance(v, (list, dict)):
            raise ConditionError(f"the values must be numbers, text or true/false; got {raw!r}")
    if op in COMPARE and not all(is_number(v) for v in values):
        raise ConditionError(f"{op!r} compares numbers; got {raw!r}")
    return Condition(name, op, values, " ".join(text.split()))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def order(flags: Sequence[Flag]) -> list[Flag]:
    """The flags with every flag after the flag its condition names (the caller checked that
    there is no cycle); otherwise in the flags file's order."""
    by_name = {f.name: f for f in flags}
    out: list[Flag] = []
    placed: set[str] = set()

    def place(flag: Flag) -> None:
        if flag.name in placed:
            return
        placed.add(flag.name)
        if flag.when is not None and flag.when.flag in by_name:
            place(by_name[flag.when.flag])
        out.append(flag)

    for flag in flags:
        place(flag)
    return out


def cycle(flags: Sequence[Flag]) -> list[str] | None:
    """The names along a cycle of conditions (``a -> b -> a``), or None."""
    parent = {f.name: f.when.flag for f in flags if f.when is not None}
    for start in parent:
        seen = [start]
        name = parent.get(start)
        while name is not None:
            if name == start:
                return [*seen, start]
            if name in seen:
                break  # a cycle that does not pass through start: found from its own start
            seen.append(name)
            name = parent.get(name)
    return None


def is_active(flag: Flag, values: dict[str, Any]) -> bool | None:
    """Whether ``flag`` is passed given the values so far (absent flags are left out of
    ``values``); None when the flag its condition names has no value yet."""
    if flag.when is None:
        return True
    if flag.when.flag not in values:
        return None
    return flag.when.holds(values[flag.when.flag])


def active(flags: Sequence[Flag], values: dict[str, Any]) -> dict[str, Any]:
    """The flags a trial passes, in the flags file's order: each flag of ``values`` whose
    condition holds, along the chain (a flag whose parent is left out is left out)."""
    kept: dict[str, Any] = {}
    for flag in order(flags):
        if flag.name in values and is_active(flag, kept):
            kept[flag.name] = values[flag.name]
    return {f.name: kept[f.name] for f in flags if f.name in kept}


def conditional(flags: Sequence[Flag]) -> bool:
    return any(f.when is not None for f in flags)


def points(flags: Sequence[Flag], values_of: Callable[[Flag], list[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination that can occur, once each: a flag left out by its condition is
    absent from the point (not one point per value it never takes)."""
    ordered = order(flags)

    def walk(i: int, point: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(ordered):
            yield dict(point)
            return
        flag = ordered[i]
        if not is_active(flag, point):
            yield from walk(i + 1, point)
            return
        for value in values_of(flag):
            point[flag.name] = value
            yield from walk(i + 1, point)
        point.pop(flag.name, None)

    yield from walk(0, {})


def count(flags: Sequence[Flag], values_of: Callable[[Flag], list[Any]]) -> int:
    """How many ``points`` there are, without listing them: the flags no condition names
    multiply, so only the flags that others depend on are walked."""
    parents = {f.when.flag for f in flags if f.when is not None}
    walked = [f for f in flags if f.name in parents]
    rest = [f for f in flags if f.name not in parents]
    total = 0
    for point in points(walked, values_of):
        n = 1
        for flag in rest:
            if is_active(flag, point):  # None (its parent is left out) counts as left out
                n *= len(values_of(flag))
        total += n
    return total


def left_out(flags: Sequence[Flag], values: dict[str, Any], name: str) -> Condition | None:
    """The condition along ``name``'s chain that ``values`` already break (so the flag is
    surely left out), or None: it holds, or a flag it depends on has no value yet."""
    by_name = {f.name: f for f in flags}
    flag = by_name[name]
    while flag.when is not None and flag.when.flag in by_name:
        if flag.when.flag not in values:
            return None
        if not flag.when.holds(values[flag.when.flag]):
            return flag.when
        flag = by_name[flag.when.flag]
    return None


def complete(flags: Sequence[Flag], values: dict[str, Any]) -> bool:
    """Whether ``values`` holds every flag whose condition holds (along the chain)."""
    kept: dict[str, Any] = {}
    for flag in order(flags):
        if is_active(flag, kept):
            if flag.name not in values:
                return False
            kept[flag.name] = values[flag.name]
    return True
