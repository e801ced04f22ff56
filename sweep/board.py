"""The leaderboard as data: runs -> a ``Board`` (columns and rows), then filtered, sorted and cut
by pure functions that return a new Board. Stdlib only (``sweep ls`` must start fast); writing
a board out in any format is ``render``'s.

Columns: ``id``, ``sweep``, ``status``, ``start``, ``duration_s``, ``steps``, ``diagnosis``,
each metric by its own name, each flag as ``flag_<name>``, ``dir``, ``reason``. Missing and
NaN values always sort last.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from sweep import objectives as objs
from sweep import rundir
from sweep.diagnosis import DEFAULT_GAP, diagnose
from sweep.errors import UsageError

FIXED_HEAD = ("id", "sweep", "status", "start", "duration_s", "steps", "diagnosis")
FIXED_TAIL = ("dir", "reason")
ALWAYS_SHOWN = ("id", "sweep", "status", "start", "duration_s", "dir")


@dataclass(frozen=True)
class Board:
    """Rows in column order. A row may also hold keys outside ``columns`` (``_metric``,
    ``_goal``, ``_start``): what sorting needs, never written out. ``keep`` names the
    objective's columns, which a table cut to a terminal's width never drops; ``chosen`` says
    the user picked the columns (``--columns``), so none is dropped."""

    columns: list[str]
    rows: list[dict[str, Any]]
    title: str | None = None
    keep: tuple[str, ...] = ()
    chosen: bool = False


# ---------------------------------------------------------------- rows


def build(runs: Iterable[rundir.Run], runs_dir: Path, baseline_error: float | None = None,
          gap: float = DEFAULT_GAP) -> Board:
    """One row per run, with the columns the runs have, in order."""
    out = []
    base_dir = str(runs_dir)
    metric_names: set[str] = set()
    flag_names: set[str] = set()
    for run in runs:
        row: dict[str, Any] = {
            "id": run.path.name, "sweep": run.sweep, "status": run.status,
            "start": rundir.iso(run.start), "duration_s": _round(run.info.get("duration")),
            "steps": run.info.get("steps"),
        }
        base = baseline_error if baseline_error is not None else run.info.get("baseline_error") or 0.0
        diag = diagnose(run.metrics, float(base), gap) if run.status != "broken" else None
        row["diagnosis"] = diag.label if diag else None
        for name, value in run.metrics.items():
            if shown_metric(name):
                row[name] = value
        for name, value in run.flags.items():
            row[f"flag_{name}"] = value
        metrics, flags = names_of(run)
        metric_names.update(metrics)
        flag_names.update(flags)
        row["dir"] = os.path.join(base_dir, run.path.name)
        row["reason"] = run.reason
        row["_metric"] = run.info.get("metric")
        row["_goal"] = run.info.get("goal")
        row["_objectives"] = run.info.get("objectives")
        row["_constraints"] = run.info.get("constraints")
        row["_start"] = run.start  # the exact start time: the ISO column has whole seconds
        seed_flag = run.info.get("seed_flag")  # not part of the configuration (sweep.groups)
        row["_seed_flag"] = seed_flag if isinstance(seed_flag, str) else None
        out.append(row)
    return Board(columns_of(metric_names, flag_names), out)


def shown_metric(name: str) -> bool:
    """A metric the board shows: a script printing "id: 3" or "status: 1" must not rewrite the
    run's own columns."""
    return name not in FIXED_HEAD and name not in FIXED_TAIL and not name.startswith("_")


def names_of(run: rundir.Run) -> tuple[list[str], list[str]]:
    """The metric and flag columns one run brings to a board."""
    return [m for m in run.metrics if shown_metric(m)], [f"flag_{f}" for f in run.flags]


def columns_of(metric_names: Iterable[str], flag_names: Iterable[str]) -> list[str]:
    """A board's columns from the names its runs bring (``names_of``): a metric named as a
    flag is left to the flag."""
    flags = set(flag_names)
    return _columns((m for m in set(metric_names) if f"flag_{m}" not in flags), flags)


def _columns(metrics: Iterable[str], flags: Iterable[str]) -> list[str]:
    return [*FIXED_HEAD, *sorted(metrics), *sorted(flags), *FIXED_TAIL]


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _unranked(value: Any) -> bool:
    return _missing(value) or (isinstance(value, float) and math.isinf(value))


# ---------------------------------------------------------------- order


def sort(board: Board, by: str | None, flip: bool = False) -> Board:
    """Sort by a column, best first; without one, newest first. Missing and NaN always last."""
    check_sort(by, board.columns)
    return dataclasses.replace(board, rows=_sorted(board.rows, by, flip))


def check_sort(by: str | None, columns: list[str]) -> None:
    if by is not None and by not in columns:
        raise UsageError(f"unknown sort column {by!r}; available: {', '.join(columns)}")


def _sorted(rows: list[dict[str, Any]], by: str | None, flip: bool) -> list[dict[str, Any]]:
    if by is None:
        order = start_order([r.get("_start") for r in rows], [r.get("start") for r in rows],
                            [r["id"] for r in rows], flip)
        return [rows[i] for i in order]
    if by == PARETO:
        return _by_rank(rows, flip)
    descending = (goal_of(rows, by) != "minimize") != flip
    order = value_order([r.get(by) for r in rows], descending, [bool(r.get(INFEASIBLE)) for r in rows])
    return [rows[i] for i in order]


def start_order(exact: list[Any], starts: list[Any], ids: list[str], flip: bool) -> list[int]:
    """Positions newest first (oldest with ``flip``): by the exact start time when the run
    recorded one (the ISO column has whole seconds), then the ISO text and id; runs without a
    start last."""
    present = [i for i, start in enumerate(starts) if start]
    present.sort(key=lambda i: (exact[i] or 0.0, starts[i] or "", ids[i]), reverse=not flip)
    return present + [i for i, start in enumerate(starts) if not start]


def value_order(values: list[Any], descending: bool, infeasible: list[bool] | None = None) -> list[int]:
    """Positions best first by ``values``: numbers (a bool is an int: true ranks above false),
    then texts; ties keep their order. NaN, inf and missing values are kept as such in the
    data but never rank: they come last, in their order. An infeasible run never ranks above
    a feasible one."""
    if not infeasible and set(map(type, values)) <= {float, type(None)}:  # a metric: 100,000 runs in C
        ranked = [i for i, v in enumerate(values) if v is not None and v - v == 0.0]  # finite
        ranked.sort(key=values.__getitem__, reverse=descending)
        return ranked + [i for i, v in enumerate(values) if v is None or v - v != 0.0]
    feasible: list[int] = []
    broke: list[int] = []
    unranked: list[int] = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):  # _unranked, inline
            unranked.append(i)
        elif infeasible and infeasible[i]:
            broke.append(i)
        else:
            feasible.append(i)
    return _by_value(feasible, values, descending) + _by_value(broke, values, descending) + unranked


def goal_of(rows: list[dict[str, Any]], by: str) -> str:
    """Best is the highest value, unless every sweep that made ``by`` an objective minimizes it."""
    return goal_for([(r.get("_metric"), r.get("_goal"), r.get("_objectives")) for r in rows], by)


def goal_for(objectives: Iterable[tuple[Any, Any, Any]], by: str) -> str:
    """``goal_of`` from each row's (metric, goal, objectives)."""
    goals: set[Any] = set()
    for metric, goal, several in objectives:
        if metric == by and goal:
            goals.add(goal)
        goals.update(g for m, g in several or () if m == by)
    return "minimize" if goals == {"minimize"} else "maximize"


def _by_value(positions: list[int], values: list[Any], descending: bool) -> list[int]:
    numbers = [i for i in positions if isinstance(values[i], (int, float))]
    texts = [i for i in positions if not isinstance(values[i], (int, float))]
    exact = all(type(values[i]) is float for i in numbers)  # no int to make a float of, first
    numbers.sort(key=values.__getitem__ if exact else lambda i: float(values[i]), reverse=descending)
    texts.sort(key=lambda i: str(values[i]), reverse=descending)
    return numbers + texts


def _by_rank(rows: list[dict[str, Any]], flip: bool) -> list[dict[str, Any]]:
    """Pareto rank first (the front), then the first objective, best first; runs without a
    rank (not completed, infeasible, another sweep's single objective) after them."""
    ranked_rows = [r for r in rows if r.get(PARETO) is not None]
    rest = [r for r in rows if r.get(PARETO) is None]
    ranked_rows = _sorted(ranked_rows, _first_objective(ranked_rows), flip) if ranked_rows else []
    ranked_rows.sort(key=lambda r: r[PARETO], reverse=flip)  # stable: keeps the objective's order
    return ranked_rows + rest


def _first_objective(rows: list[dict[str, Any]]) -> str:
    return next(str(r["_metric"]) for r in rows if r.get("_metric"))


# ---------------------------------------------------------------- several objectives

PARETO = "pareto"  # a run's Pareto rank among the runs shown: 1 is the front
INFEASIBLE = "infeasible"  # the constraint a run broke, and its value


def several(rows: Iterable[dict[str, Any]]) -> bool:
    """Whether one of these rows is a run of a sweep with several objectives."""
    return any(len(r.get("_objectives") or ()) > 1 for r in rows)


def pareto(board: Board, of: Iterable[dict[str, Any]] | None = None) -> Board:
    """The board with its runs' Pareto ranks and broken constraints, when its sweeps have
    several objectives or constraints (else the board as it is). Ranks are over the rows
    given, among the completed, feasible runs with the same objectives: filter first, then
    rank. A run breaking a constraint gets no rank and says which one it broke. The rank's
    column is there whenever a row of ``of`` (the rows before filters; by default the
    board's) has several objectives, ranked or not yet: ``--sort pareto`` then always works."""
    ranks = several(board.rows if of is None else of)
    if not ranks and not any(r.get("_constraints") for r in board.rows):
        return board  # the usual board: no copy (ls reads thousands of runs)
    rows = [dict(r) for r in board.rows]
    marked = False
    for row in rows:
        if row.get("_constraints") and row["status"] == "completed":
            rules = [objs.parse_constraint(text) for text in row["_constraints"]]
            metrics = {k: v for k, v in row.items() if is_number(v)}
            row[INFEASIBLE] = objs.broken(rules, metrics)
            marked = True
    groups: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
    for row in rows:
        targets = tuple((str(m), str(g)) for m, g in row.get("_objectives") or ())
        if len(targets) > 1 and row["status"] == "completed" and not row.get(INFEASIBLE):
            if all(is_number(row.get(m)) and math.isfinite(row[m]) for m, _ in targets):
                groups.setdefault(targets, []).append(row)
    for targets, members in groups.items():
        points = [[-row[m] if goal == "maximize" else row[m] for m, goal in targets] for row in members]
        for row, rank in zip(members, objs.pareto_ranks(points), strict=True):
            row[PARETO] = rank
    if not marked and not ranks:
        return board
    extra = [c for c, on in ((PARETO, ranks), (INFEASIBLE, marked)) if on]
    at = board.columns.index("diagnosis") + 1 if "diagnosis" in board.columns else 0
    columns = [c for c in board.columns if c not in extra]
    return dataclasses.replace(board, columns=columns[:at] + extra + columns[at:], rows=rows)


def ranking_filters(where: Iterable[str]) -> tuple[list[str], list[str]]:
    """``--where`` conditions split into those to apply before ranking and those naming the
    ranking's own columns (``pareto<=2``), applied after it."""
    before: list[str] = []
    after: list[str] = []
    for expr in where:
        found = _split(expr, (PARETO, INFEASIBLE))
        (after if found and found[0] in (PARETO, INFEASIBLE) else before).append(expr)
    return before, after


def front(board: Board) -> Board:
    """``ls --pareto``: the Pareto-optimal runs only (rank 1), best first."""
    found = pareto(board)
    if PARETO not in found.columns:
        raise UsageError("--pareto needs runs of a sweep with several objectives "
                         "(metric: [a, b] in its flags file); none is shown")
    return dataclasses.replace(found, rows=_by_rank([r for r in found.rows if r.get(PARETO) == 1], False))


def top(board: Board, count: int) -> Board:
    return dataclasses.replace(board, rows=board.rows[:count])


def best(runs: Iterable[rundir.Run], runs_dir: Path, by: str | None, keep: int,
         chunk: int = 256) -> tuple[Board, int]:
    """The ``keep`` best rows by ``by`` (newest first without it), and how many runs there
    were. Reads the runs a chunk at a time, so memory stays flat however many."""
    rows: list[dict[str, Any]] = []
    metrics: set[str] = set()
    flags: set[str] = set()
    total = 0
    batch: list[rundir.Run] = []

    def merge() -> None:
        nonlocal rows
        part = build(batch, runs_dir)
        metrics.update(c for c in part.columns
                       if c not in FIXED_HEAD and c not in FIXED_TAIL and not c.startswith("flag_"))
        flags.update(c for c in part.columns if c.startswith("flag_"))
        rows = _sorted(rows + part.rows, by, False)[:keep]  # stable: ties keep trial order
        batch.clear()

    for run in runs:
        total += 1
        batch.append(run)
        if len(batch) >= chunk:
            merge()
    merge()
    return Board(_columns(metrics, flags), rows), total


# ---------------------------------------------------------------- columns


def objectives(board: Board, sort_by: str | None = None) -> Board:
    """The board with ``keep`` set to its objectives: the sort column, then each sweep's
    metrics (all of several objectives), its Pareto rank and broken constraints."""
    named = (m for r in board.rows for m in objective_names(r.get("_metric"), r.get("_objectives")))
    return dataclasses.replace(board, keep=keep_of(board.columns, sort_by, named))


def keep_of(columns: list[str], sort_by: str | None, named: Iterable[str]) -> tuple[str, ...]:
    """``objectives``' columns from the sort column and the rows' ``objective_names``."""
    wanted = [sort_by] if sort_by else []
    wanted += [PARETO, INFEASIBLE]
    wanted += named
    return tuple(c for c in dict.fromkeys(wanted) if c in columns)


def objective_names(metric: Any, several: Any) -> list[str]:
    """A row's objectives: all of several, else its one metric."""
    names = [str(m) for m, _ in several or ()]
    return names or ([metric] if metric else [])


def leaderboard(runs: Iterable[rundir.Run], runs_dir: Path, by: str, keep: int) -> tuple[Board, int]:
    """The end of a sweep with several objectives or constraints: the ``keep`` best rows by
    Pareto rank (else by ``by``, feasible runs first), and how many runs there were. Ranks
    need every run at once, unlike ``best``."""
    found = pareto(build(runs, runs_dir))
    order = PARETO if any(r.get(PARETO) is not None for r in found.rows) else by
    found = dataclasses.replace(found, rows=_sorted(found.rows, order, False))
    return objectives(top(found, keep)), len(found.rows)


EARLIER = "earlier"  # the status shown for an earlier sweep's run a warm start gave the study


def with_earlier(board: Board, runs: Iterable[rundir.Run], runs_dir: Path, by: str, keep: int) -> Board:
    """The end-of-sweep board and, after its own rows, the ``keep`` best earlier runs the study
    was given (``--warm-start``), their status ``earlier``: shown beside what the sweep found,
    never ranked with it (the sweep's best is its own) nor counted in its totals."""
    earlier = _sorted(build(runs, runs_dir).rows, by, False)[:keep]
    return dataclasses.replace(board, rows=board.rows + [{**r, "status": EARLIER} for r in earlier])


def column_names(items: Iterable[str]) -> list[str]:
    """``--columns a,b`` (repeatable) -> the names, each once, in order."""
    wanted = list(dict.fromkeys(n.strip() for item in items for n in item.split(",") if n.strip()))
    if not wanted:
        raise UsageError("--columns needs at least one column name, e.g. --columns id,status")
    return wanted


def pick(board: Board, names: Iterable[str], strict: bool = True) -> tuple[Board, list[str]]:
    """The board with only the columns named (``--columns a,b,c``), in that order, and the
    names it lacks; with ``strict`` a name it lacks is an error."""
    wanted = column_names(names)
    missing = [n for n in wanted if n not in board.columns]
    if missing and strict:
        raise UsageError(f"unknown column {missing[0]!r} in --columns; available: {', '.join(board.columns)}")
    shown = [n for n in wanted if n in board.columns]
    return dataclasses.replace(board, columns=shown, chosen=True), missing


REST = ("diagnosis", "steps", "sweep")  # after the columns that matter, before constant flags


def ranked(board: Board) -> list[str]:
    """The board's columns, most important first: what a table too wide for its terminal keeps.
    id, status, the objectives, the flags that vary, the other metrics, start, duration and
    dir; then diagnosis, steps, sweep, the flags that do not vary, and the reason."""
    flags = [c for c in board.columns if c.startswith("flag_")]
    varying = {c for c in flags if len({cell(r.get(c)) for r in board.rows}) > 1}
    return ranked_of(board.columns, board.keep, varying)


def ranked_of(columns: list[str], keep: Iterable[str], varying: set[str]) -> list[str]:
    """``ranked`` from the columns, the objectives and the flag columns whose cells vary."""
    flags = [c for c in columns if c.startswith("flag_")]
    fixed = set(FIXED_HEAD) | set(FIXED_TAIL)
    metrics = [c for c in columns if c not in fixed and not c.startswith("flag_")]
    order = ["id", "status", *keep, *(c for c in flags if c in varying), *metrics, "start", "duration_s", "dir",
             *REST, *flags, "reason"]
    return [c for c in dict.fromkeys(order) if c in columns]


# ---------------------------------------------------------------- filters

# A column is a metric or ``flag_<name>``, and names keep what scripts write (``val/loss``,
# ``top@5``, ``flag_learning-rate``, ``flag_trainer.lr``): the board's own column names are
# matched first, longest first; this pattern only finds a name no column has, to say so.
_OP = re.compile(r"\s*(>=|<=|==|!=|=|>|<)\s*(.*?)\s*$")
_ANY = re.compile(r"^\s*([^<>=!\s]+)" + _OP.pattern)


def _split(expr: str, columns: Iterable[str]) -> tuple[str, str, str] | None:
    """``val/loss<0.7`` -> (``val/loss``, ``<``, ``0.7``), or None when there is no operator."""
    text = expr.lstrip()
    for col in sorted(columns, key=len, reverse=True):
        if text.startswith(col) and (match := _OP.match(text, len(col))):
            return col, match.group(1), match.group(2)
    match = _ANY.match(expr)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def parse_where(expr: str, columns: list[str]) -> tuple[str, str, Any]:
    """``flag_dropout>=0.3`` -> (column, operator, value). Parsed, never evaluated."""
    found = _split(expr, columns)
    if found is None or found[2] == "":
        raise UsageError(f"cannot read --where {expr!r}: write COLUMN OP VALUE, with OP one of "
                         ">= <= == != > <")
    col, op, raw = found
    if col not in columns:
        raise UsageError(f"unknown column {col!r} in --where; available: {', '.join(columns)}")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        value: Any = raw[1:-1]
    else:
        try:
            value = float(raw)
        except ValueError:
            value = {"true": True, "false": False}.get(raw.lower(), raw)
    return col, "==" if op == "=" else op, value


def _compare(left: Any, op: str, right: Any) -> bool:
    if _missing(left):  # a run without the value (a flag its when: left out): only != holds
        return op == "!="
    if isinstance(right, bool) or isinstance(left, bool):
        left, right = str(left).lower(), str(right).lower()
    elif isinstance(right, float) and isinstance(left, (int, float)):
        left = float(left)
    else:
        left, right = str(left), str(right) if not isinstance(right, float) else _num_text(right)
    try:
        return {
            "==": left == right, "!=": left != right, ">": left > right,
            "<": left < right, ">=": left >= right, "<=": left <= right,
        }[op]
    except TypeError:
        return False


def _num_text(value: float) -> str:
    """``3.0`` as ``3`` (a text column holding "3" matches ``==3``); inf and nan as written."""
    return str(int(value)) if math.isfinite(value) and value == int(value) else repr(value)


def select(board: Board, where: Iterable[str] = (), status: Iterable[str] = (),
           sweep: str | None = None) -> Board:
    """The rows matching every ``--where`` condition, one of the statuses, and the sweep."""
    conditions = [parse_where(w, board.columns) for w in where]
    for col, _op, value in conditions:
        if isinstance(value, str) and any(is_number(r.get(col)) for r in board.rows):
            raise UsageError(f"--where compares {col} (a number) with the text {value!r}; "
                             "give a number")
    wanted = {s.strip() for item in status for s in item.split(",") if s.strip()}
    bad = wanted - set(rundir.STATUSES)
    if bad:
        raise UsageError(f"unknown status {sorted(bad)[0]!r}; known: {', '.join(rundir.STATUSES)}")
    kept = [row for row in board.rows
            if (not wanted or row["status"] in wanted)
            and (sweep is None or row["sweep"] == sweep)
            and all(_compare(row.get(c), op, v) for c, op, v in conditions)]
    return dataclasses.replace(board, rows=kept)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A number, but not a bool (a flag of true/false is not 1/0 on the board)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def used_columns(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """The columns without optional ones no row has a value for (so a table stays narrow)."""
    return [c for c in columns if c in ALWAYS_SHOWN or any(not _missing(r.get(c)) for r in rows)]


# ---------------------------------------------------------------- text form


def exact(value: Any) -> str:
    """A value in full: a float as the shortest text that reads back as the same float (CSV
    must not round what the run recorded); anything else as ``cell`` writes it."""
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return cell(value)


def cell(value: Any) -> str:
    """A value as the board shows it: the one text form every writer uses, and what
    ``compare`` tests for sameness (two runs differ where their cells differ)."""
    kind = type(value)  # exact types first: ls formats every cell of thousands of rows
    if kind is str:
        return value
    if kind is float and math.isfinite(value):
        return f"{value:.6g}"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)
