"""``sweep show`` and ``sweep compare``: one run in full, or two side by side."""

from __future__ import annotations

import math
import shlex
from typing import Any

from sweep import board, rundir
from sweep.diagnosis import DEFAULT_GAP, diagnose
from sweep.render import stdout_console

CURVE_PAIRS = (("train_loss", "eval_loss"), ("train_accuracy", "eval_accuracy"),
               ("train_error", "eval_error"))


def _history(run: rundir.Run) -> dict[str, list[tuple[int, float]]]:
    """Per-metric (step, value) series; lines without a step are numbered in order."""
    series: dict[str, list[tuple[int, float]]] = {}
    for rec in rundir.read_jsonl(run.path / rundir.METRICS_HISTORY):
        step = rec.get("step")
        for key, value in rec.items():
            if key in ("step", "time", "source") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            points = series.setdefault(key, [])
            # as_float: a 400-digit integer is inf here, not an OverflowError
            points.append((step if isinstance(step, int) else len(points), rundir.as_float(value)))
    return series


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


def turning_point(dev: list[tuple[int, float]]) -> int | None:
    """The step after which dev loss only got worse (where overfitting starts)."""
    finite = [(s, v) for s, v in dev if math.isfinite(v)]
    if len(finite) < 3:
        return None
    best_step, best = min(finite, key=lambda p: p[1])
    return best_step if best_step != finite[-1][0] else None


def show(run: rundir.Run, baseline: float | None = None, gap: float = DEFAULT_GAP) -> None:
    out = stdout_console()
    say = lambda text="": out.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    info = run.info
    say(f"run      {run.path.name}")
    say(f"dir      {run.path}")
    say(f"status   {run.status}" + (f" ({run.reason})" if run.reason else ""))
    if info:
        say(f"sweep    {info.get('sweep')}  trial {info.get('trial')}")
        say(f"started  {rundir.iso(run.start)}  duration {board.cell(info.get('duration'))} s  "
            f"exit code {info.get('exit_code')}")
        cmd = info.get("command")
        if isinstance(cmd, list):
            say(f"command  {shlex.join(str(c) for c in cmd)}")
    say()
    say("flags")
    for key, value in run.flags.items():
        say(f"  {key:<20} {board.cell(value)}")
    say()
    say("metrics")
    for key, value in sorted(run.metrics.items()):
        say(f"  {key:<20} {board.cell(value)}")
    base = baseline if baseline is not None else float(info.get("baseline_error") or 0.0)
    diag = diagnose(run.metrics, base, gap)
    if diag:
        say()
        say(f"diagnosis  {diag.label}")
        say(f"  train error {diag.train_error:.2f}%  dev error {diag.dev_error:.2f}%  "
            f"baseline {base:.2f}%")
        say(f"  avoidable bias {diag.bias:.2f} points  variance {diag.variance:.2f} points  "
            f"(high above {gap:g})")
        for tip in diag.recipe():
            say(f"  - {tip}")
    series = _history(run)
    for train_key, dev_key in CURVE_PAIRS:
        train, dev = series.get(train_key, []), series.get(dev_key, [])
        if len(train) + len(dev) < 2:
            continue
        say()
        say(f"learning curve: {train_key} (t) vs {dev_key} (d)")
        for line in curve(train, dev):
            say(line)
        if train_key.endswith("loss"):
            turn = turning_point(dev)
            if turn is not None:
                say(f"  {dev_key} is lowest at step {turn} and rises after it: overfitting from there")
    error = info.get("error")
    tail = error or rundir.tail_text(run.path / rundir.OUTPUT_FILE, max_lines=15)
    if tail:
        say()
        say("output (last lines)")
        for line in tail.splitlines():
            say(f"  {line}")


def compare(a: rundir.Run, b: rundir.Run) -> None:
    from rich.table import Table

    out = stdout_console()
    table = Table(title=f"{a.path.name} vs {b.path.name}", header_style="bold")
    for col in ("", a.path.name, b.path.name, "diff"):
        table.add_column(col)

    def add(section: str, left: dict[str, Any], right: dict[str, Any]) -> None:
        for key in sorted(set(left) | set(right)):
            lv, rv = left.get(key), right.get(key)
            same = board.cell(lv) == board.cell(rv)
            mark = "" if same else "*"
            if not same and isinstance(lv, (int, float)) and isinstance(rv, (int, float)) \
                    and not isinstance(lv, bool) and not isinstance(rv, bool):
                mark = f"* {board.cell(float(rv) - float(lv))}"
            table.add_row(f"{section}{key}", board.cell(lv), board.cell(rv), mark)

    add("", {"status": a.status}, {"status": b.status})
    add("flag_", a.flags, b.flags)
    add("", a.metrics, b.metrics)
    out.print(table)
