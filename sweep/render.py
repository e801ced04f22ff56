"""Everything the user sees in a terminal: the only module that imports rich.

Data goes to stdout, progress and chatter to stderr. No live bar and no colour when stdout
is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from sweep.board import cell


def plain() -> bool:
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


def stdout_console() -> Console:
    if plain():
        return Console(file=sys.stdout, no_color=True, highlight=False, force_terminal=False,
                       width=_width(), soft_wrap=False, emoji=False, markup=False)
    return Console(file=sys.stdout, highlight=False, emoji=False)


def stderr_console() -> Console:
    if plain():
        return Console(file=sys.stderr, no_color=True, highlight=False, force_terminal=False,
                       soft_wrap=True, emoji=False)
    return Console(file=sys.stderr, highlight=False, emoji=False)


def _width() -> int:
    try:
        return max(80, int(os.environ.get("COLUMNS", "200")))
    except ValueError:
        return 200


STATUS_STYLE = {"completed": "green", "failed": "red", "pruned": "yellow", "interrupted": "magenta",
                "running": "cyan", "broken": "red"}


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold", box=None if plain() else None,
              pad_edge=False)
    for col in columns:
        numeric = any(isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool) for r in rows)
        t.add_column(col, justify="right" if numeric else "left", no_wrap=True,
                     overflow="fold" if col == "reason" else "ellipsis")
    for row in rows:
        cells = []
        for col in columns:
            text = cell(row.get(col))
            if col == "status" and not plain():
                text = f"[{STATUS_STYLE.get(text, 'white')}]{text}[/]"
            cells.append(text)
        t.add_row(*cells)
    return t


RICH_MAX_ROWS = 500  # beyond this rich's layout costs seconds; plain text is instant


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    if not rows:
        sys.stdout.write("no runs\n")
        return
    if plain() or len(rows) > RICH_MAX_ROWS:
        from sweep.board import to_text

        if title:
            sys.stdout.write(title + "\n")
        sys.stdout.write(to_text(rows, columns))
        return
    stdout_console().print(table(rows, columns, title))


class SweepView:
    """Follows a sweep's events: a live bar on a terminal, one line per trial otherwise."""

    def __init__(self, metric: str, goal: str) -> None:
        self.metric = metric
        self.goal = goal
        self.err = stderr_console()
        self.live = not plain()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.best: float | None = None
        self.started = time.time()
        self.sweep = ""
        self._progress = None
        self._task = None

    def __call__(self, event: Any) -> None:
        kind = event.kind
        if kind == "start":
            self.sweep, self.total = event.sweep, event.total
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
        if not self.live:
            self.err.print(f"sweep {self.sweep}: {self.total} trials", markup=False)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self.err, auto_refresh=False, transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("trials", total=self.total, info="")

    def _info(self) -> str:
        best = "-" if self.best is None else cell(self.best)
        return f"failed {self.failed}  best {self.metric} {best}"

    def _refresh(self) -> None:
        if self._progress is not None:
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
