"""The leaderboard: runs -> rows -> filtered, sorted, formatted. Pure (no rich, no optuna).

Columns: ``id``, ``sweep``, ``status``, ``start``, ``duration_s``, ``steps``, ``diagnosis``,
each metric by its own name, each flag as ``flag_<name>``, ``dir``, ``reason``. Missing and
NaN values always sort last.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sweep import rundir
from sweep.diagnosis import DEFAULT_GAP, diagnose
from sweep.errors import UsageError

FIXED_HEAD = ("id", "sweep", "status", "start", "duration_s", "steps", "diagnosis")
FIXED_TAIL = ("dir", "reason")
FORMATS = ("table", "csv", "json", "markdown")


# ---------------------------------------------------------------- rows


def rows(runs: Iterable[rundir.Run], runs_dir: Path, baseline_error: float | None = None,
         gap: float = DEFAULT_GAP) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per run, and the column names in order."""
    out = []
    base_dir = str(runs_dir)
    metric_names: set[str] = set()
    flag_names: dict[str, None] = {}
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
            if name in row or name in FIXED_TAIL or name.startswith("_"):
                continue  # a script printing "id: 3" or "status: 1" must not rewrite the run's own
            row[name] = value
            metric_names.add(name)
        for name, value in run.flags.items():
            row[f"flag_{name}"] = value
            flag_names[f"flag_{name}"] = None
        row["dir"] = os.path.join(base_dir, run.path.name)
        row["reason"] = run.reason
        row["_metric"] = run.info.get("metric")
        row["_goal"] = run.info.get("goal")
        row["_start"] = run.start  # the exact start time: the ISO column has whole seconds
        out.append(row)
    metrics = sorted(m for m in metric_names if f"flag_{m}" not in flag_names and m not in FIXED_HEAD)
    columns = [*FIXED_HEAD, *metrics, *sorted(flag_names), *FIXED_TAIL]
    return out, columns


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _unranked(value: Any) -> bool:
    return _missing(value) or (isinstance(value, float) and math.isinf(value))


def _started(row: dict[str, Any]) -> tuple[float, str, str]:
    """Start order: the exact start time when the run recorded one, then the ISO text and id."""
    return (row.get("_start") or 0.0, row.get("start") or "", row["id"])


def sort_rows(table: list[dict[str, Any]], columns: list[str], by: str | None, flip: bool = False) -> list[dict[str, Any]]:
    """Sort by a column; without one, newest first. Missing and NaN always last."""
    if by is None:
        present = [r for r in table if r.get("start")]
        absent = [r for r in table if not r.get("start")]
        return sorted(present, key=_started, reverse=not flip) + absent
    if by not in columns:
        raise UsageError(f"unknown sort column {by!r}; available: {', '.join(columns)}")
    descending = True
    goals = {r["_goal"] for r in table if r.get("_metric") == by and r.get("_goal")}
    if goals == {"minimize"}:
        descending = False
    if flip:
        descending = not descending
    # NaN and inf are kept as such in the data, but never rank: they sort last, with missing.
    have = [r for r in table if not _unranked(r.get(by))]
    missing = [r for r in table if _unranked(r.get(by))]

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row[by]
        if isinstance(value, bool):
            return (0, float(value))
        if isinstance(value, (int, float)):
            return (0, float(value))
        return (1, str(value))

    numbers = sorted((r for r in have if key(r)[0] == 0), key=key, reverse=descending)
    texts = sorted((r for r in have if key(r)[0] == 1), key=key, reverse=descending)
    return numbers + texts + missing


def best_rows(runs: Iterable[rundir.Run], runs_dir: Path, by: str | None, keep: int,
              chunk: int = 256) -> tuple[list[dict[str, Any]], list[str], int]:
    """The ``keep`` best rows by ``by`` (newest first without it), their columns, and how many
    runs there were. Reads the runs a chunk at a time, so memory stays flat however many."""
    best: list[dict[str, Any]] = []
    metrics: set[str] = set()
    flags: set[str] = set()
    total = 0
    batch: list[rundir.Run] = []

    def merge() -> None:
        nonlocal best
        table, columns = rows(batch, runs_dir)
        metrics.update(c for c in columns if c not in FIXED_HEAD and c not in FIXED_TAIL and not c.startswith("flag_"))
        flags.update(c for c in columns if c.startswith("flag_"))
        best = sort_rows(best + table, [by] if by else [], by)[:keep]  # stable: ties keep trial order
        batch.clear()

    for run in runs:
        total += 1
        batch.append(run)
        if len(batch) >= chunk:
            merge()
    merge()
    return best, [*FIXED_HEAD, *sorted(metrics), *sorted(flags), *FIXED_TAIL], total


# ---------------------------------------------------------------- filters

WHERE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|==|!=|=|>|<)\s*(.*?)\s*$")


def parse_where(expr: str, columns: list[str]) -> tuple[str, str, Any]:
    """``flag_dropout>=0.3`` -> (column, operator, value). Parsed, never evaluated."""
    match = WHERE_RE.match(expr)
    if not match or match.group(3) == "":
        raise UsageError(f"cannot read --where {expr!r}: write COLUMN OP VALUE, with OP one of "
                         ">= <= == != > <")
    col, op, raw = match.groups()
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
    if _missing(left):
        return False
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
    return str(int(value)) if value == int(value) else repr(value)


def filter_rows(table: list[dict[str, Any]], columns: list[str], where: list[str] = (),
                status: list[str] = (), sweep: str | None = None) -> list[dict[str, Any]]:
    conditions = [parse_where(w, columns) for w in where]
    for col, op, value in conditions:
        numeric = [r.get(col) for r in table if isinstance(r.get(col), (int, float))
                   and not isinstance(r.get(col), bool)]
        if numeric and isinstance(value, str):
            raise UsageError(f"--where compares {col} (a number) with the text {value!r}; "
                             "give a number")
    wanted = {s.strip() for item in status for s in item.split(",") if s.strip()}
    bad = wanted - set(rundir.STATUSES)
    if bad:
        raise UsageError(f"unknown status {sorted(bad)[0]!r}; known: {', '.join(rundir.STATUSES)}")
    out = []
    for row in table:
        if wanted and row["status"] not in wanted:
            continue
        if sweep is not None and row["sweep"] != sweep:
            continue
        if all(_compare(row.get(c), op, v) for c, op, v in conditions):
            out.append(row)
    return out


def last_sweep(table: list[dict[str, Any]]) -> str | None:
    dated = [r for r in table if r.get("start") and r.get("sweep")]
    if not dated:
        return None
    return max(dated, key=_started)["sweep"]


def match_sweep(table: list[dict[str, Any]], ref: str) -> str:
    if ref == "last":
        found = last_sweep(table)
        if found is None:
            raise UsageError("no sweeps in this runs directory")
        return found
    rundir.check_ref(ref)
    ids = {r["sweep"] for r in table if r.get("sweep")}
    if ref in ids:
        return ref
    matches = sorted(i for i in ids if i.startswith(ref))
    if len(matches) != 1:
        raise UsageError(f"no sweep matches {ref!r}" if not matches
                         else f"{ref!r} matches {len(matches)} sweeps: give more of the id")
    return matches[0]


# ---------------------------------------------------------------- output


def used_columns(table: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Drop optional columns no row has a value for (the table stays narrow)."""
    keep = []
    for col in columns:
        if col in ("id", "sweep", "status", "start", "duration_s", "dir"):
            keep.append(col)
        elif any(not _missing(r.get(col)) for r in table):
            keep.append(col)
    return keep


def cell(value: Any) -> str:
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


def json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return cell(value)  # JSON has no NaN: say it in words rather than write invalid JSON
    return value


def to_text(table: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain, aligned table: for pipes, NO_COLOR and boards too long to draw with rich."""
    cells = [[cell(row.get(c)) for c in columns] for row in table]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [any(isinstance(row.get(c), (int, float)) and not isinstance(row.get(c), bool)
                   for row in table) for c in columns]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(columns))] + [line(r) for r in cells]) + "\n"


def to_csv(table: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in table:
        writer.writerow([cell(row.get(c)) for c in columns])
    return buf.getvalue()


def to_json(table: list[dict[str, Any]], columns: list[str]) -> str:
    return json.dumps([{c: json_value(row.get(c)) for c in columns} for row in table], indent=2)


def to_markdown(table: list[dict[str, Any]], columns: list[str]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in table:
        lines.append("| " + " | ".join(esc(cell(row.get(c))) for c in columns) + " |")
    return "\n".join(lines) + "\n"
