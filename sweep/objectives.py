"""Several objectives and constraints, as data: the ``constraints:`` grammar, how far a run is
from meeting each constraint, and Pareto ranks. Stdlib only: ``ls`` and ``best`` use it.

A constraint is ``NAME OP NUMBER`` (``params_m <= 5``, ``latency_ms < 20``) with OP one of
``<= < >= >``: parsed, never evaluated. NAME is a metric the run reports. Its value for
Optuna follows Optuna's convention: at most 0 when the run meets it, above 0 when it breaks it.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

OPS = ("<=", "<", ">=", ">")
# The longer operators first: "<=" must not be read as "<" followed by "=5".
CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*\Z")
RULE = "write NAME OP NUMBER with OP one of <= < >= >, e.g. 'latency_ms < 20'"
# A strict constraint met with equality is broken: Optuna must see a value above 0 for it.
TINY = 1e-12
# How far off a diverged or unreported constraint metric is: finite, as every storage keeps it.
FAR = 1e300


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.bound, "<": value < self.bound,
                ">=": value >= self.bound, ">": value > self.bound}[self.op]

    def excess(self, value: float) -> float:
        """Optuna's constraint value: <= 0 when it holds, > 0 by how much it is broken."""
        over = value - self.bound if self.op in ("<=", "<") else self.bound - value
        if not math.isfinite(value):
            return FAR  # a diverged metric never meets a bound
        return over if self.holds(value) else max(over, TINY)


def parse_constraint(text: str) -> Constraint:
    """``"latency_ms < 20"`` -> Constraint. Raises ValueError with the rule."""
    match = CONSTRAINT_RE.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r}: {RULE}")
    name, op, raw = match.groups()
    try:
        bound = float(raw)
    except ValueError:
        raise ValueError(f"cannot read {text!r}: {raw!r} is not a number; {RULE}") from None
    if not math.isfinite(bound):
        raise ValueError(f"cannot read {text!r}: the bound must be a finite number")
    return Constraint(name, op, bound)


def broken(constraints: Sequence[Constraint], metrics: Mapping[str, float]) -> str | None:
    """The first constraint the metrics break, as the board shows it; None when all hold.
    A constraint's metric the run never reported counts as broken: nothing shows it held."""
    for c in constraints:
        value = metrics.get(c.metric)
        if value is None:
            return f"{c} (not reported)"
        if not c.holds(value):
            return f"{c} (was {value:.6g})"
    return None


def excesses(constraints: Sequence[Constraint], metrics: Mapping[str, float]) -> list[float]:
    """Optuna's constraint values for a run: one per constraint, FAR for one not reported."""
    return [c.excess(metrics[c.metric]) if c.metric in metrics else FAR for c in constraints]


def pareto_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Non-dominated sorting of points to minimize in every coordinate: rank 1 is the Pareto
    front, rank 2 the front once rank 1 is taken away, and so on. Two objectives (the usual
    case, and ``ls`` over thousands of runs) take O(n log n); more take O(n^2)."""
    if points and len(points[0]) == 2:
        return _ranks_2d(points)
    # Points sorted lexicographically are dominated only by points before them, so each
    # rank is one more than the highest rank of the points that dominate it.
    order = sorted(range(len(points)), key=lambda i: tuple(points[i]))
    ranks = [0] * len(points)
    done: list[int] = []
    for i in order:
        p = points[i]
        rank = 1
        for j in done:
            if ranks[j] >= rank and _dominates(points[j], p):
                rank = ranks[j] + 1
        ranks[i] = rank
        done.append(i)
    return ranks


def _ranks_2d(points: Sequence[Sequence[float]]) -> list[int]:
    """In order of (first, second): a point is dominated by an earlier one exactly when that
    one's second coordinate is no larger (unless the two are equal). Each front keeps the
    smallest second coordinate it has; those grow from front to front, so a point joins the
    first front whose smallest is above its own: a binary search."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    ranks = [0] * len(points)
    lowest: list[float] = []  # per front, the smallest second coordinate so far
    previous: int | None = None
    for i in order:
        first, second = points[i][0], points[i][1]
        if previous is not None and (points[previous][0], points[previous][1]) == (first, second):
            ranks[i] = ranks[previous]  # an equal point does not dominate: same front
            continue
        front = bisect.bisect_right(lowest, second)
        if front == len(lowest):
            lowest.append(second)
        else:
            lowest[front] = second
        ranks[i] = front + 1
        previous = i
    return ranks


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))
