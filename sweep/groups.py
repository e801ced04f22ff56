"""The leaderboard by configuration: the runs of one sweep that share their flags (all but the
seed) are one row with the mean, standard deviation and count of the objective, ranked by the
mean. Stdlib only (``sweep ls --group`` must start fast).

Within noise: a configuration whose mean differs from the best one's by at most twice the
standard error of that difference, ``|m - m_best| <= 2 * sqrt(s^2/n + s_best^2/n_best)``
(sample standard deviations; about a two-sided test at 5%). It needs two values of each: with
one run a configuration's noise is unknown, and the mark is left empty.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sweep.board import FIXED_HEAD, FIXED_TAIL, PARETO, Board, cell, is_number
from sweep.errors import UsageError
from sweep.objectives import pareto_ranks

NOISE_SE = 2.0  # standard errors of the difference that still count as noise
# Group columns besides the objective (named by the metric itself: its mean) and the flags.
HEAD = ("rank", "sweep")
STATS = ("std", "n", "runs", "noise")


@dataclass
class Config:
    """One configuration of a sweep: its flags (without the seed) and its runs' values."""

    sweep: str
    flags: dict[str, Any]
    values: list[float] = field(default_factory=list)
    seeds: set[str] = field(default_factory=set)  # seeds counted already (a resume may repeat one)
    runs: int = 0
    mean: float | None = None
    std: float | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    def settle(self) -> None:
        if self.values:
            self.mean = statistics.fmean(self.values)
            self.std = statistics.stdev(self.values) if len(self.values) > 1 else None


def within_noise(a: Config, best: Config) -> bool | None:
    """Whether ``a``'s mean is within noise of ``best``'s (the rule above); None when either
    has fewer than two values (its spread is unknown)."""
    if a.n < 2 or best.n < 2 or a.mean is None or best.mean is None:
        return None
    se = math.sqrt((a.std or 0.0) ** 2 / a.n + (best.std or 0.0) ** 2 / best.n)
    return abs(a.mean - best.mean) <= NOISE_SE * se


def configs(rows: Iterable[dict[str, Any]], metric: str) -> list[Config]:
    """The board's rows gathered by sweep and flags (the seed flag left out), in the order each
    configuration first appears. Only completed runs with a finite value count; a seed that
    ran twice (a configuration run again on resume) counts once, its newest run."""
    found: dict[tuple[Any, ...], Config] = {}
    newest_first = sorted(rows, key=lambda r: (r.get("_start") or 0.0), reverse=True)
    for row in newest_first:
        seed = f"flag_{row['_seed_flag']}" if row.get("_seed_flag") else None
        flags = {c[5:]: v for c, v in row.items() if c.startswith("flag_") and c != seed and v is not None}
        key = (row.get("sweep"), *sorted((name, cell(v)) for name, v in flags.items()))
        config = found.setdefault(key, Config(row.get("sweep") or "", flags))
        config.runs += 1
        value = row.get(metric)
        if row.get("status") != "completed" or not is_number(value) or not math.isfinite(value):
            continue
        if seed is not None and seed in row:
            if cell(row[seed]) in config.seeds:
                continue
            config.seeds.add(cell(row[seed]))
        config.values.append(float(value))
    out = list(found.values())[::-1]  # oldest first
    for config in out:
        config.settle()
    return out


def ranked(found: list[Config], goal: str) -> list[Config]:
    """Best mean first (by ``goal``); configurations without a value last."""
    have = sorted((c for c in found if c.mean is not None), key=lambda c: c.mean or 0.0,
                  reverse=goal != "minimize")
    return have + [c for c in found if c.mean is None]


def objective(rows: list[dict[str, Any]], sort_by: str | None) -> tuple[str | None, str]:
    """The metric to group on (``sort_by``, else the runs' own objective) and its goal."""
    metric = sort_by or next((r["_metric"] for r in rows if r.get("_metric")), None)
    goals = {r.get("_goal") for r in rows if r.get("_metric") == metric and r.get("_goal")}
    goals |= {goal for r in rows for m, goal in r.get("_objectives") or () if m == metric}  # a second objective
    return metric, "minimize" if goals == {"minimize"} else "maximize"


def grouped(board: Board, sort_by: str | None = None, flip: bool = False) -> Board:
    """The board with one row per configuration, ranked by its mean (``flip``: worst first)."""
    fixed = (*FIXED_HEAD, *FIXED_TAIL)
    if sort_by is not None and (sort_by not in board.columns or sort_by.startswith("flag_") or sort_by in fixed):
        raise UsageError(f"--group ranks by a metric; {sort_by!r} is not one of this board's metrics")
    metric, goal = objective(board.rows, sort_by)
    if metric is None:
        return Board([*HEAD, *STATS], [], board.title)
    found = configs(board.rows, metric)
    several = _objectives(board.rows, metric)
    means = {id(c): [c.mean] for c in found}
    for other, _ in several[1:]:  # configs() keeps one order for the same rows
        for c, o in zip(found, configs(board.rows, other), strict=True):
            means[id(c)].append(o.mean)
    fronts = _fronts(found, means, several) if several else {}
    order = sorted(ranked(found, goal), key=lambda c: fronts.get(id(c), math.inf))  # stable: by mean within a front
    best = next((c for c in order if c.mean is not None), None)
    rows = []
    for i, config in enumerate(order):
        near = within_noise(config, best) if best is not None else None
        noise = "best" if config is best else {True: "within", False: "", None: None}[near]
        row: dict[str, Any] = {"rank": i + 1, "sweep": config.sweep, metric: config.mean,
                               "std": config.std, "n": config.n, "runs": config.runs, "noise": noise}
        if several:
            row.update({PARETO: fronts.get(id(config))})
            row.update({m: v for (m, _), v in zip(several[1:], means[id(config)][1:], strict=True)})
        row.update({f"flag_{name}": value for name, value in config.flags.items()})
        row.update({"_metric": metric, "_goal": goal, "_flags": config.flags})
        rows.append(row)
    if flip:
        rows.reverse()
    flags = sorted({c for r in rows for c in r if c.startswith("flag_")})
    more = [PARETO, *(m for m, _ in several[1:])] if several else []
    return Board([*HEAD, metric, *more, *STATS, *flags], rows, board.title, keep=(metric, *more))


def _objectives(rows: list[dict[str, Any]], metric: str) -> list[tuple[str, str]]:
    """The runs' several objectives when ``metric`` is the first of them (the group ranks by
    the Pareto front of the means then); else none."""
    found = next((r["_objectives"] for r in rows if len(r.get("_objectives") or ()) > 1), None)
    if not found or found[0][0] != metric:
        return []
    return [(str(m), str(g)) for m, g in found]


def _fronts(found: list[Config], means: dict[int, list[float | None]],
            several: list[tuple[str, str]]) -> dict[int, int]:
    """Each configuration's Pareto rank by its means (1: no other is better in every one);
    none for a configuration without every mean."""
    whole = [c for c in found if all(v is not None for v in means[id(c)])]
    signs = [-1.0 if goal == "maximize" else 1.0 for _, goal in several]  # pareto_ranks minimizes
    points = [[sign * (v or 0.0) for sign, v in zip(signs, means[id(c)], strict=True)] for c in whole]
    return {id(c): rank for c, rank in zip(whole, pareto_ranks(points), strict=True)}
