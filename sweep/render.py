"""Every writer: boards in each ``--format``, ``show`` and ``compare`` as text, the sweep's
progress, and JUnit XML. The only module that imports rich, and only inside the functions
that draw with it, so ``sweep ls --format csv`` never loads it.

Data goes to stdout, progress and chatter to stderr. No live bar and no colour when stdout
is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import operator
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sweep import index, rundir
from sweep.board import (
    ALWAYS_SHOWN,
    Board,
    cell,
    exact,
    is_number,
    keep_of,
    objective_names,
    ranked,
    ranked_of,
    used_columns,
)
from sweep.errors import UsageError
from sweep.index import SEP, Listing

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from sweep.report import CompareView, ShowView


def plain(stream: TextIO | None = None) -> bool:
    return bool(os.environ.get("NO_COLOR")) or not (stream or sys.stdout).isatty()


def stdout_console(out: TextIO | None = None, width: int | None = None) -> Console:
    from rich.console import Console

    out = out or sys.stdout
    if plain(out):
        return Console(file=out, no_color=True, highlight=False, force_terminal=False,
                       width=width or _width(), soft_wrap=False, emoji=False, markup=False)
    return Console(file=out, highlight=False, emoji=False, width=width)


class PlainLines:
    """stderr's lines where they are plain (a pipe, NO_COLOR): what rich's console would write
    there (control bytes dropped, tabs expanded, no wrapping), without importing rich, a tenth
    of the start of a sweep whose output is piped (CI)."""

    _DROPPED = dict.fromkeys((7, 8, 11, 12, 13))  # rich's strip_control_codes: bell, \b, \v, \f, \r

    def print(self, text: str = "", **_: object) -> None:
        lines = text.translate(self._DROPPED).split("\n")
        sys.stderr.write("\n".join(line.expandtabs(8) for line in lines) + "\n")


def stderr_console() -> Console | PlainLines:
    if plain():
        return PlainLines()
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, emoji=False)


def _width() -> int:
    try:
        return max(80, int(os.environ.get("COLUMNS", "200")))
    except ValueError:
        return 200


def terminal_width(out: TextIO) -> int | None:
    """How many columns the terminal ``out`` shows (``COLUMNS`` first, as rich and the shell
    read it); None when ``out`` is no terminal (a pipe gets the whole table)."""
    try:
        if not out.isatty():
            return None
    except (AttributeError, ValueError):  # a closed or file-less stream
        return None
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(out.fileno()).columns or 80
    except (OSError, AttributeError, ValueError):
        return 80


# ---------------------------------------------------------------- boards


def to_text(board: Board) -> str:
    """A plain, aligned table: for pipes, NO_COLOR and boards too long to draw with rich."""
    cells = [[cell(row.get(c)) for row in board.rows] for c in board.columns]
    return text_table(board.columns, cells, _numeric(board))


def text_table(columns: list[str], cells: list[list[str]], numeric: list[bool]) -> str:
    """``to_text`` from each column's cells: numbers right-aligned, two spaces between."""
    widths = [max(len(c), max(map(len, col), default=0)) for c, col in zip(columns, cells, strict=True)]
    line = index.line_format(widths, numeric)
    rows = [line % tuple(columns)] + [line % values for values in zip(*cells, strict=True)]
    return "\n".join(r.rstrip() for r in rows) + "\n"


def _numeric(board: Board) -> list[bool]:
    """Which columns hold a number in some row (drawn right-aligned)."""
    return [any(is_number(row.get(c)) for row in board.rows) for c in board.columns]


def to_csv(board: Board) -> str:
    """Every value in full (floats read back exactly), unlike the table's rounded cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # index.csv_line writes a row alike
    writer.writerow(board.columns)
    for row in board.rows:
        writer.writerow([exact(row.get(c)) for c in board.columns])
    return buf.getvalue()


def json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return cell(value)  # JSON has no NaN: say it in words rather than write invalid JSON
    return value


def to_json(board: Board) -> str:
    return json.dumps([{c: json_value(row.get(c)) for c in board.columns} for row in board.rows], indent=2)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_head(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]


def to_markdown(board: Board) -> str:
    lines = _md_head(board.columns)
    for row in board.rows:
        lines.append("| " + " | ".join(_md(cell(row.get(c))) for c in board.columns) + " |")
    return "\n".join(lines) + "\n"


STATUS_STYLE = {"earlier": "dim", "completed": "green", "failed": "red", "pruned": "yellow", "interrupted": "magenta",
                "running": "cyan", "broken": "red"}
RICH_MAX_ROWS = 500  # beyond this rich's layout costs seconds; plain text is instant


def rich_table(board: Board, colour: bool = True) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=board.title, show_lines=False, header_style="bold", box=None, pad_edge=False)
    for col, numeric in zip(board.columns, _numeric(board), strict=True):
        wrap = col == "reason"  # a reason wraps at words, as a cell of text; other cells never
        table.add_column(col, justify="right" if numeric else "left", no_wrap=not wrap,
                         overflow="fold" if wrap else "ellipsis")
    for row in board.rows:
        cells = []
        for col in board.columns:
            text = cell(row.get(col))
            style = STATUS_STYLE.get(text, "white") if col == "status" and colour else ""
            cells.append(Text(text, style=style))  # Text, not markup: "[0.1, 0.2]" is a value
        table.add_row(*cells)
    return table


GAP = 2  # spaces between two columns: the plain table's, and rich's padding of one each side
GAP_TEXT = " " * GAP
NOTE_NAMES = 6  # columns named in the note on what a narrow terminal left out


@dataclass(frozen=True)
class Fit:
    """What of a board a terminal shows: its columns and those left out, both most important
    first, and whether the reasons go under the table instead."""

    columns: list[str]
    left_out: list[str]
    reasons_below: bool


def widths(board: Board) -> dict[str, int]:
    return {c: max([len(c)] + [len(cell(r.get(c))) for r in board.rows]) for c in board.columns}


def fit(board: Board, width: int) -> Fit:
    """The columns that fit in ``width`` without cutting a cell, in the order of
    ``board.ranked``: the longest run of it that fits (so a column is only ever dropped with
    every one after it), and always the id, the status and the objectives. A reason that
    finds no room goes under the table, one line per run."""
    return fit_columns(widths(board), ranked(board), {"id", "status", *board.keep}, width)


def fit_columns(size: dict[str, int], order: list[str], must: set[str], width: int) -> Fit:
    """``fit`` from the columns' widths, their order of importance and those always kept."""
    kept: list[str] = []
    used = 0
    for i, col in enumerate(order):
        need = size[col] + (GAP if kept else 0)
        if col not in must and used + need > width:
            left = order[i:]
            below = "reason" in left
            return Fit(kept, [c for c in left if c != "reason"], below)
        kept.append(col)
        used += need
    return Fit(kept, [], False)


def table_width(board: Board) -> int:
    return sum(widths(board).values()) + GAP * max(0, len(board.columns) - 1)


def left_out_note(left: list[str], width: int) -> str:
    names = ", ".join(left[:NOTE_NAMES]) + (f" and {len(left) - NOTE_NAMES} more" if len(left) > NOTE_NAMES else "")
    return f"left out {names} to fit {width} columns: pick with --columns, or widen the terminal, or --format csv"


def write_table(board: Board, out: TextIO) -> None:
    """Rich on a terminal, plain text otherwise; only the columns some row has a value in. On
    a terminal, the columns that fit its width (``fit``), unless the user chose them; a pipe
    gets the whole table."""
    if not board.chosen:
        board = dataclasses.replace(board, columns=used_columns(board.rows, board.columns))
    if not board.rows:
        out.write("no runs\n")
        return
    width = terminal_width(out)
    below = None
    if width is not None and not board.chosen:
        shown = fit(board, width)
        if shown.left_out:
            sys.stderr.write(left_out_note(shown.left_out, width) + "\n")
        if shown.reasons_below:
            below = Board(["id", "reason"], [r for r in board.rows if r.get("reason")])
        board = dataclasses.replace(board, columns=shown.columns)
    if plain(out) or len(board.rows) > RICH_MAX_ROWS:
        if board.title:
            out.write(board.title + "\n")
        out.write(to_text(board))
        if below:
            out.write("\n" + to_text(below))
        return
    # Wide enough for the whole table: rich never shortens a cell; the terminal wraps instead.
    console = stdout_console(out, max(width or 0, table_width(board)))
    console.print(rich_table(board, colour=not plain(out)))
    if below:
        console.width = width or console.width
        console.print()
        console.print(rich_table(below, colour=False))


WRITERS: dict[str, Callable[[Board, TextIO], object]] = {  # name -> writes a board to a stream
    "table": write_table,
    "csv": lambda board, out: out.write(to_csv(board)),
    "json": lambda board, out: out.write(to_json(board) + "\n"),
    "markdown": lambda board, out: out.write(to_markdown(board)),
}
FORMATS = tuple(WRITERS)


def write(board: Board, fmt: str, out: TextIO | None = None) -> None:
    """Write ``board`` in the format named ``fmt`` (one of ``FORMATS``) to stdout."""
    writer = WRITERS.get(fmt)
    if writer is None:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    writer(board, out or sys.stdout)


# ---------------------------------------------------------------- listings


# the index's sections a plain listing reads in each format (read ahead, while ls stats the runs)
LISTING_SECTIONS = {"csv": ("csv_pre", "csv_post"), "table": ("codes", "reason_cell", "padded"),
                    "markdown": ("head", "reason_cell")}


def write_listing(found: Listing, order: list[int], sort_by: str | None, fmt: str, out: TextIO | None = None) -> None:
    """``write`` of the board whose rows are ``found``'s at ``order``: the same text, from the
    rows the index keeps written out, for a plain ``ls`` (no filters, no ranks)."""
    out = out or sys.stdout
    made = listing_text(found, order, sort_by, fmt, terminal_width(out), plain(out))
    if made is None:
        write(_board(found, order, sort_by), fmt, out)  # per-value writers, for what they cost here
        return
    text, note = made
    if note:
        sys.stderr.write(note + "\n")
    out.write(text)


def listing_text(found: Listing, order: list[int], sort_by: str | None, fmt: str, width: int | None,
                 plain_out: bool) -> tuple[str, str] | None:
    """What ``write_listing`` writes to a stream ``width`` columns wide (None: no terminal),
    plain or not, and the note it writes to stderr first; None where rich or the JSON
    writer writes it."""
    if fmt not in WRITERS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json" or (fmt == "table" and not plain_out and len(order) <= RICH_MAX_ROWS):
        return None
    if fmt == "csv":
        return _csv_lines(found, order), ""
    if fmt == "markdown":
        head, reasons = found.text("head"), found.text("reason_cell")
        rows = _dense(order, len(found.names))
        made = ["| " + _md(head[i] + SEP + d + SEP + reasons[i]).replace(SEP, " | ") + " |"
                for i, d in zip(rows, found.dirs(rows), strict=True)]
        return "\n".join(_md_head(found.columns) + _pick(made, rows, order)) + "\n", ""
    return _text_listing(found, order, sort_by, width)


def _dense(order: list[int], count: int) -> Sequence[int]:
    """The rows to write lines for: all of them, in the index's order, when most are shown.
    Made in that order, a line's parts are read from memory in sequence, twice as fast as
    in the order shown (then ``_pick`` puts them in it)."""
    return range(count) if 2 * len(order) > count else order


def _pick(made: list[str], rows: Sequence[int], order: list[int]) -> list[str]:
    return made if rows is order else list(map(made.__getitem__, order))


def _at(values: list[str], rows: Sequence[int]) -> Iterable[str]:
    """``values`` at ``rows`` (all of them: the list itself)."""
    return values if isinstance(rows, range) and len(rows) == len(values) else map(values.__getitem__, rows)


def _board(found: Listing, order: list[int], sort_by: str | None) -> Board:
    keys = found.columns[:-2] + ["reason"]
    values = [[found.raw(k)[i] for i in order] for k in keys]
    rows = [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]
    for row, path in zip(rows, found.dirs(order), strict=True):
        row["dir"] = path
    return Board(found.columns, rows, keep=_keep(found, order, sort_by))


def _keep(found: Listing, order: list[int], sort_by: str | None) -> tuple[str, ...]:
    goals = found.goals()
    if isinstance(goals, list) and len(goals) == 1:  # one objective for every row: no row to look at
        return keep_of(found.columns, sort_by, objective_names(goals[0][0], goals[0][2]))
    metric, several = found.raw("_metric"), found.raw("_objectives")
    named = {m: None for i in order for m in objective_names(metric[i], several[i])}
    return keep_of(found.columns, sort_by, named)


def _csv_lines(found: Listing, order: list[int]) -> str:
    pre, post = found.text("csv_pre"), found.text("csv_post")
    rows = _dense(order, len(found.names))
    dirs = found.dirs(rows)
    probe = found.prefix + "x"
    if index.csv_line([probe]) != probe:  # a runs directory named with a comma or a quote
        dirs = [index.csv_line([d]) for d in dirs]
    made = list(map(operator.add, map(operator.add, _at(pre, rows), dirs), _at(post, rows)))  # C, not bytecode
    return "\n".join([index.csv_line(found.columns), *_pick(made, rows, order)]) + "\n"


def _text_listing(found: Listing, order: list[int], sort_by: str | None, width: int | None) -> tuple[str, str]:
    """``write_table``'s plain text, and its note of the columns left out."""
    if not order:
        return "no runs\n", ""
    columns = found.columns
    codes = found.text("codes")
    patterns = set(codes) if len(order) == len(codes) else {codes[i] for i in order}  # a few distinct ones
    used = [c for j, c in enumerate(columns) if c in ALWAYS_SHOWN or any(p[j] in "fs" for p in patterns)]
    numeric = {c: any(p[j] in "qf" for p in patterns) for j, c in enumerate(columns)}
    reason_cells = found.text("reason_cell")
    laid = found.padded() if len(order) == len(found.names) else None
    if laid is not None:  # all rows: the index has them laid out already
        if width is None:
            return _padded_table(found, order, laid[0], laid[1], reason_cells, "reason" in used), ""
        return _fitted_table(found, order, laid[0], laid[1], reason_cells, used, width, sort_by)
    reasons = [reason_cells[i] for i in order]
    head = found.text("head")
    split = zip(*(head[i].split(SEP) for i in order), strict=True)
    cells = dict(zip(columns, [*split, found.dirs(order), reasons], strict=True))
    below = note = ""
    if width is not None:
        size = {c: max(len(c), max(map(len, cells[c]))) for c in used}
        varying = {c for c in used if c.startswith("flag_") and len(set(cells[c])) > 1}
        keep = _keep(found, order, sort_by)
        shown = fit_columns(size, ranked_of(used, keep, varying), {"id", "status", *keep}, width)
        raw = found.raw("reason") if shown.reasons_below else []
        if shown.left_out:
            note = left_out_note(shown.left_out, width)
        if shown.reasons_below:
            at = [n for n, i in enumerate(order) if raw[i]]
            below = "\n" + text_table(["id", "reason"], [[cells["id"][n] for n in at], [reasons[n] for n in at]],
                                      [False, False])
        used = shown.columns
    return text_table(used, [list(cells[c]) for c in used], [numeric[c] for c in used]) + below, note


def _fitted_table(found: Listing, order: list[int], padded: list[str], layout: index.Table, reasons: list[str],
                  used: list[str], width: int, sort_by: str | None) -> tuple[str, str]:
    """``_text_listing`` on a terminal ``width`` wide, of every row: each shown cell is cut out
    of its row laid out whole (the index's line, ``dir`` and ``reason``), where it sits at
    the same place in every row; ``reasons``: every row's reason cell."""
    names = found.columns[:-2]
    laid = layout.spans()
    spans: dict[str, tuple[int, int | None]] = {names[j]: span for j, span in laid.items()}
    rows = _dense(order, len(found.names))  # all of them, here
    dirs = found.dirs(rows)
    dir_w = max(3, max(map(len, dirs), default=0))
    after = max((end for _, end in laid.values()), default=-GAP) + GAP
    spans["dir"] = (after, after + dir_w)
    spans["reason"] = (after + dir_w + GAP, None)
    size = {c: max(len(c), layout.widths[j]) for j, c in enumerate(names)}
    size.update(dir=dir_w, reason=max(len("reason"), max(map(len, reasons), default=0)))
    varying = {c for j, c in enumerate(names) if c.startswith("flag_") and layout.single[j] is None}
    keep = _keep(found, order, sort_by)
    shown = fit_columns({c: size[c] for c in used}, ranked_of(used, keep, varying), {"id", "status", *keep}, width)
    cut = operator.itemgetter(*(slice(*spans[c]) for c in shown.columns))  # a tuple: id and status are always shown
    head = layout.format() % tuple(names[j] for j in laid)
    dir_cells = map(str.ljust, dirs, itertools.repeat(dir_w))
    lines = _glued(padded, dir_cells, *([reasons] if "reason" in shown.columns else []))
    made = list(map(str.rstrip, map(GAP_TEXT.join, map(cut, lines))))
    top = GAP_TEXT.join(cut(head + GAP_TEXT + "dir".ljust(dir_w) + GAP_TEXT + "reason")).rstrip()
    below = ""
    if shown.reasons_below:
        raw, cells, at = found.raw("reason"), found.text("head"), names.index("id")
        with_reason = [i for i in order if raw[i]]
        below = "\n" + text_table(["id", "reason"], [[cells[i].split(SEP)[at] for i in with_reason],
                                                    [reasons[i] for i in with_reason]], [False, False])
    note = left_out_note(shown.left_out, width) if shown.left_out else ""
    return "\n".join([top, *_pick(made, rows, order)]) + "\n" + below, note


def _glued(*columns: Iterable[str]) -> Iterator[str]:
    """Each row's cells of these columns joined by the gap between columns (C, not bytecode)."""
    lines = iter(columns[0])
    for cells in columns[1:]:
        lines = map(operator.add, map(operator.add, lines, itertools.repeat(GAP_TEXT)), cells)
    return lines


def _padded_table(found: Listing, order: list[int], padded: list[str], layout: index.Table, reasons: list[str],
                  with_reason: bool) -> str:
    """``text_table`` of every row, from their cells laid out before ``dir`` (``dir`` and
    ``reason`` are never numbers: left-aligned); ``reasons``: every row's reason cell."""
    rows = _dense(order, len(found.names))  # all of them, here
    dirs = found.dirs(rows)
    shown = [c for c, on in zip(found.columns[:-2], layout.used, strict=True) if on]
    dir_w = max(3, max(map(len, dirs), default=0))
    head = layout.format() % tuple(shown) + "  " + "dir".ljust(dir_w)
    if not with_reason:  # a dir ends with its run's name, never a space: nothing to strip
        made = list(_glued(_at(padded, rows), dirs))
    else:
        reason_w = max(6, max(map(len, reasons), default=0))  # every row's, here
        head += "  " + "reason".ljust(reason_w)
        made = list(map(str.rstrip, _glued(_at(padded, rows), map(str.ljust, dirs, itertools.repeat(dir_w)),
                                           _at(reasons, rows))))
    return "\n".join([head.rstrip(), *_pick(made, rows, order)]) + "\n"


# ---------------------------------------------------------------- show / compare


def curve(train: list[tuple[int, float]], dev: list[tuple[int, float]], height: int = 10,
          width: int = 60) -> list[str]:
    """A text plot of two series against the step: ``t`` train, ``d`` dev, ``*`` both."""
    points = [(s, v) for s, v in train + dev if math.isfinite(v)]
    if not points:
        return []
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    first, last = min(s for s, _ in points), max(s for s, _ in points)
    span, steps = (hi - lo) or 1.0, (last - first) or 1
    grid = [[" "] * width for _ in range(height)]
    for mark, data in (("t", train), ("d", dev)):
        for s, v in data:
            if not math.isfinite(v):
                continue
            x = round((s - first) / steps * (width - 1))
            y = height - 1 - round((v - lo) / span * (height - 1))
            grid[y][x] = "*" if grid[y][x] not in (" ", mark) else mark
    lines = []
    for i, row in enumerate(grid):
        label = hi - i * span / (height - 1)
        lines.append(f"{label:>9.4g} |" + "".join(row))
    lines.append(" " * 10 + "+" + "-" * width)
    lines.append(" " * 11 + f"step {first}" + " " * max(1, width - 12 - len(str(last))) + f"{last}")
    return lines


def show_lines(view: ShowView) -> list[str]:
    archived = "  (archived by sweep clean; sweep purge deletes it)" if view.archived else ""
    where = f"  ({view.where})" if view.where else ""
    lines = [f"run      {view.run_id}", f"dir      {view.path}{archived}{where}",
             *([f"files    {view.files}"] if view.files else []),
             f"status   {view.status}" + (f" ({view.reason})" if view.reason else "")]
    rec = view.record
    if rec is not None:
        lines.append(f"sweep    {rec.sweep}  trial {rec.trial}")
        code = "" if rec.exit_code is None else f"  exit code {rec.exit_code}"  # none yet, or not known here
        lines.append(f"started  {rec.started}  duration {cell(rec.duration)} s{code}")
        if rec.command is not None:
            lines.append(f"command  {shlex.join(str(c) for c in rec.command)}")
    lines += ["", "flags", *_pairs(view.flags), "", "metrics", *_pairs(view.metrics)]
    diag = view.diagnosis
    if diag:
        lines += [
            "", f"diagnosis  {diag.label}",
            f"  train error {diag.train_error:.2f}%  dev error {diag.dev_error:.2f}%  "
            f"baseline {view.baseline:.2f}%",
            f"  avoidable bias {diag.bias:.2f} points  variance {diag.variance:.2f} points  "
            f"(high above {view.gap:g})",
            *(f"  - {tip}" for tip in diag.recipe()),
        ]
    for c in view.curves:
        lines += ["", f"learning curve: {c.train_key} (t) vs {c.dev_key} (d)", *curve(c.train, c.dev)]
        if c.turning_point is not None:
            lines.append(f"  {c.dev_key} is lowest at step {c.turning_point} and rises after it: "
                         "overfitting from there")
    if view.tail:
        lines += ["", "output (last lines)", *(f"  {line}" for line in view.tail.splitlines())]
    return lines


def _pairs(values: dict[str, Any]) -> list[str]:
    return [f"  {key:<20} {cell(value)}" for key, value in values.items()]


def print_show(view: ShowView, out: TextIO | None = None) -> None:
    console = stdout_console(out)
    for line in show_lines(view):
        # through rich, as ever: it makes an output tail's tabs and control bytes harmless
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def print_compare(view: CompareView, out: TextIO | None = None) -> None:
    from rich.table import Table

    table = Table(title=f"{view.a} vs {view.b}", header_style="bold")
    for col in ("", view.a, view.b, "diff"):
        table.add_column(col)
    for row in view.rows:
        mark = "" if row.same else "*" if row.delta is None else f"* {cell(row.delta)}"
        table.add_row(row.key, cell(row.left), cell(row.right), mark)
    stdout_console(out).print(table)


# ---------------------------------------------------------------- a sweep


class SweepView:
    """Follows a sweep's events: a live bar on a terminal, one line per trial otherwise."""

    def __init__(self, metric: str, goal: str, goal_given: bool = True,
                 objectives: tuple[tuple[str, str], ...] = (), constraints: tuple[Any, ...] = (),
                 goal_note: str | None = None) -> None:
        self.metric = metric  # "" for a sweep without an objective
        self.goal = goal
        self.objectives = objectives  # several: all of them, the first being metric, goal
        self.constraints = constraints
        self.goal_note = goal_note or ("from the flags file" if goal_given
                                       else "inferred from the name; set goal: to change")
        self.err = stderr_console()
        self.live = not plain()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.best: float | None = None
        self.started = time.time()
        self.sweep = ""
        self.what = ""
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: Any) -> None:
        kind = event.kind
        if kind == "start":
            self.sweep, self.total = event.sweep, event.total
            self.what = event.text  # how the runs add up, when it is more than a count (repeats)
            self.started = time.time()
            self._open()
        elif kind == "trial_end":
            self.done += 1
            if event.status == "failed":
                self.failed += 1
            value = event.value
            if event.status == "completed" and value is not None and math.isfinite(value):
                better = self.best is None or (value > self.best if self.goal == "maximize" else value < self.best)
                if better:
                    self.best = value
            if not self.live:
                self._line(event)
        elif kind == "note":
            self.err.print(f"sweep: {event.text}", markup=False, highlight=False)
        self._refresh()

    def _open(self) -> None:
        # The goal before the first trial ends: an inferred one that is wrong shows at once.
        trials = self.what or f"{self.total} trial" + ("" if self.total == 1 else "s")
        aims = "; ".join(f"{m}, {g}" for m, g in self.objectives or ((self.metric, self.goal),))
        what = "objectives" if len(self.objectives) > 1 else "objective"
        within = f"; subject to {', '.join(map(str, self.constraints))}" if self.constraints else ""
        if not self.metric:
            aims, what, self.goal_note = "none", "objective", "no metric: a trial completes when it exits 0"
        self.err.print(f"sweep {self.sweep}: {trials}; {what} {aims} ({self.goal_note}){within}",
                       markup=False, highlight=False)
        if isinstance(self.err, PlainLines):  # not live: a line per trial instead of the bar
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self.err, auto_refresh=False, transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("trials", total=self.total, info="")

    def _info(self) -> str:
        best = "-" if self.best is None else cell(self.best)
        return f"failed {self.failed}  best {self.metric} {best}" if self.metric else f"failed {self.failed}"

    def _refresh(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.done, info=self._info())
            self._progress.refresh()

    def _line(self, event: Any) -> None:
        value = "" if event.value is None else f" {self.metric}={cell(event.value)}"
        why = f" ({event.reason})" if event.reason and event.status != "completed" else ""
        self.err.print(f"[{self.done}/{self.total}] trial {event.number} {event.status}{value}{why}"
                       f"  {event.run_id}", markup=False, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# ---------------------------------------------------------------- files


def write_junit(path: Path, sweep_id: str, runs: list[rundir.Run]) -> None:
    """One test case per trial, for CI systems; failed trials carry their error tail."""
    import xml.etree.ElementTree as ET

    failures = sum(r.status in ("failed", "broken") for r in runs)
    errors = sum(r.status == "interrupted" and not _run_again(r) for r in runs)
    skipped = sum(r.status == "pruned" or _run_again(r) for r in runs)
    total_time = sum(float(r.info.get("duration") or 0) for r in runs)
    suite = ET.Element("testsuite", name=f"sweep {sweep_id}", tests=str(len(runs)), failures=str(failures),
                       errors=str(errors), skipped=str(skipped), time=f"{total_time:.3f}")
    for run in runs:
        flags = " ".join(f"{k}={cell(v)}" for k, v in run.flags.items())
        case = ET.SubElement(suite, "testcase", classname=f"sweep.{sweep_id}",
                             name=f"trial {run.info.get('trial')} [{flags}]",
                             time=f"{float(run.info.get('duration') or 0):.3f}")
        if run.status in ("failed", "broken"):
            node = ET.SubElement(case, "failure", message=str(run.reason or run.status))
            node.text = _xml_safe(run.info.get("error") or run.reason or "")
        elif _run_again(run):  # its trial ran again on resume: it fails nothing
            ET.SubElement(case, "skipped", message=f"{run.reason or 'interrupted'}; run again on resume")
        elif run.status == "interrupted":
            ET.SubElement(case, "error", message=str(run.reason or "interrupted"))
        elif run.status == "pruned":
            ET.SubElement(case, "skipped", message=str(run.reason or "pruned"))
        out = ET.SubElement(case, "system-out")
        out.text = _xml_safe(f"run {run.path.name}; metrics " + " ".join(
            f"{k}={cell(v)}" for k, v in run.metrics.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ET.ElementTree(suite).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)


def _run_again(run: rundir.Run) -> bool:
    """An interrupted run whose sweep was resumed: its trial ran again."""
    return run.status == "interrupted" and run.info.get("resumed") is True


def _xml_safe(text: str) -> str:
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)
