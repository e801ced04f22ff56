"""The leaderboard as data (board) and its writers (render), in-process on runs made in memory;
one subprocess checks that `sweep ls --format csv/json` never loads rich."""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sweep import board, render, rundir
from sweep.board import Board
from sweep.errors import RunNotFound, UsageError

REPO = Path(__file__).resolve().parent.parent
RUNS = Path("runs")
T0 = 1_800_000_000.0


def run(name: str, status: str = "completed", start: float | None = T0, flags: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None, **info: Any) -> rundir.Run:
    """A run as rundir reads it back, without a directory behind it."""
    record: dict[str, Any] = {"sweep": "s1", "start": start, **info}
    return rundir.Run(RUNS / name, name, status, info=record, flags=flags or {}, metrics=metrics or {})


def ids(found: Board) -> list[str]:
    return [r["id"] for r in found.rows]


def scored(*values: Any, metric: str = "acc", goal: str | None = None) -> Board:
    """One run per value of ``metric``, named r0, r1, ... in order."""
    return board.build([run(f"r{i}", metrics={metric: v}, metric=metric, goal=goal, start=T0 + i)
                        for i, v in enumerate(values)], RUNS)


# ---------------------------------------------------------------- build


def test_build_columns_in_order_and_rows_from_runs():
    found = board.build([
        run("a", flags={"lr": 0.1, "dropout": 0.2}, metrics={"loss": 0.5, "acc": 0.9}, duration=1.23456, steps=7),
        run("b", status="failed", flags={"lr": 0.2, "width": 8}, metrics={"zeta": 1.0}),
    ], RUNS)
    assert found.columns == ["id", "sweep", "status", "start", "duration_s", "steps", "diagnosis",
                             "acc", "loss", "zeta", "flag_dropout", "flag_lr", "flag_width", "dir", "reason"]
    a, b = found.rows
    assert (a["id"], a["sweep"], a["status"], a["acc"], a["flag_lr"]) == ("a", "s1", "completed", 0.9, 0.1)
    assert a["duration_s"] == 1.235 and a["steps"] == 7
    assert a["start"] == rundir.iso(T0) and a["dir"] == str(RUNS / "a")
    assert b["status"] == "failed" and "flag_dropout" not in b and "acc" not in b


def test_build_keeps_the_runs_own_fields_and_drops_echoed_flags():
    found = board.build([run("a", flags={"dropout": 0.3},
                             metrics={"status": 1.0, "id": 3.0, "dir": 2.0, "_private": 1.0,
                                      "dropout": 0.3, "acc": 0.8})], RUNS)
    row = found.rows[0]
    assert (row["status"], row["id"], row["dir"]) == ("completed", "a", str(RUNS / "a"))
    # A flag printed back by the script is the flag, not a metric column.
    assert "dropout" not in found.columns and "_private" not in found.columns
    assert "acc" in found.columns and row["flag_dropout"] == 0.3


def test_build_diagnoses_each_run_with_its_baseline_unless_given_one():
    runs = [run("a", metrics={"train_accuracy": 0.85, "eval_accuracy": 0.84}, baseline_error=14.0),
            run("b", metrics={"train_accuracy": 0.85, "eval_accuracy": 0.84}),
            run("c", status="broken", metrics={"train_accuracy": 0.85, "eval_accuracy": 0.84})]
    assert [r["diagnosis"] for r in board.build(runs, RUNS).rows] == ["good fit", "high bias", None]
    assert [r["diagnosis"] for r in board.build(runs, RUNS, baseline_error=0.0).rows][0] == "high bias"
    assert [r["diagnosis"] for r in board.build(runs, RUNS, gap=20.0).rows][1] == "good fit"


# ---------------------------------------------------------------- sort / top


def test_sort_best_first_with_missing_nan_and_inf_last_both_ways():
    found = scored(0.5, None, 0.9, math.nan, 0.7, math.inf, -math.inf)
    best = board.sort(found, "acc")
    assert ids(best)[:3] == ["r2", "r4", "r0"]
    assert set(ids(best)[3:]) == {"r1", "r3", "r5", "r6"}
    flipped = board.sort(found, "acc", flip=True)
    assert ids(flipped)[:3] == ["r0", "r4", "r2"]
    assert set(ids(flipped)[3:]) == {"r1", "r3", "r5", "r6"}
    assert ids(found) == [f"r{i}" for i in range(7)]  # sorting returns a new board


def test_sort_follows_a_minimize_goal_only_when_every_sweep_minimizes():
    assert ids(board.sort(scored(0.3, 0.1, 0.2, metric="loss", goal="minimize"), "loss")) == ["r1", "r2", "r0"]
    flipped = board.sort(scored(0.3, 0.1, 0.2, metric="loss", goal="minimize"), "loss", flip=True)
    assert ids(flipped) == ["r0", "r2", "r1"]
    assert ids(board.sort(scored(0.3, 0.1, 0.2, metric="loss", goal="maximize"), "loss")) == ["r0", "r2", "r1"]
    mixed = board.build([run("a", metrics={"loss": 0.1}, metric="loss", goal="minimize"),
                         run("b", metrics={"loss": 0.2}, metric="loss", goal="maximize")], RUNS)
    assert ids(board.sort(mixed, "loss")) == ["b", "a"]


def test_sort_puts_numbers_before_text_and_unknown_columns_are_refused():
    found = board.build([run("a", flags={"x": "b"}), run("b", flags={"x": 2}), run("c", flags={"x": "a"}),
                         run("d", flags={"x": True}), run("e")], RUNS)
    assert ids(board.sort(found, "flag_x")) == ["b", "d", "a", "c", "e"]
    with pytest.raises(UsageError, match=r"^unknown sort column 'nope'; available: id, sweep, status"):
        board.sort(found, "nope")


def test_without_a_column_newest_first_and_undated_last():
    found = board.build([run("old", start=T0), run("none", start=None), run("new", start=T0 + 0.25)], RUNS)
    assert ids(board.sort(found, None)) == ["new", "old", "none"]
    assert ids(board.sort(found, None, flip=True)) == ["old", "new", "none"]


def test_top_and_best_keep_the_first_rows_and_count_them_all():
    found = scored(0.1, 0.4, 0.3, 0.2, math.nan)
    assert ids(board.top(board.sort(found, "acc"), 2)) == ["r1", "r2"]
    runs = [run(f"r{i}", metrics={"acc": v}, flags={f"f{i % 3}": i}, start=T0 + i)
            for i, v in enumerate([0.1, 0.4, 0.3, 0.2, math.nan])]
    best, total = board.best(iter(runs), RUNS, "acc", keep=3, chunk=2)
    assert total == 5 and ids(best) == ["r1", "r2", "r3"]
    assert best.columns == board.build(runs, RUNS).columns  # every chunk's columns, in order
    newest, _ = board.best(iter(runs), RUNS, None, keep=2, chunk=2)
    assert ids(newest) == ["r4", "r3"]


# ---------------------------------------------------------------- where / status / sweep


@pytest.mark.parametrize("expr, parsed", [
    ("flag_lr>=0.3", ("flag_lr", ">=", 0.3)),
    (" flag_lr < 1e-3 ", ("flag_lr", "<", 0.001)),
    ("status=completed", ("status", "==", "completed")),
    ("flag_mode!='a b'", ("flag_mode", "!=", "a b")),
    ('flag_mode=="3"', ("flag_mode", "==", "3")),
    ("flag_wide==TRUE", ("flag_wide", "==", True)),
])
def test_parse_where(expr, parsed):
    columns = ["status", "flag_lr", "flag_mode", "flag_wide"]
    assert board.parse_where(expr, columns) == parsed


@pytest.mark.parametrize("expr, message", [
    ('__import__("os")', r"cannot read --where '__import__\(\"os\"\)': write COLUMN OP VALUE"),
    ("flag_lr", "cannot read --where 'flag_lr'"),
    ("flag_lr>=", "cannot read --where 'flag_lr>='"),
    ("flag_nope>1", r"unknown column 'flag_nope' in --where; available: status, flag_lr"),
])
def test_parse_where_errors_say_what_to_write(expr, message):
    with pytest.raises(UsageError, match=message):
        board.parse_where(expr, ["status", "flag_lr"])


@pytest.mark.parametrize("expr, parsed", [
    ("val/loss<0.7", ("val/loss", "<", 0.7)),  # W&B-style metric names, as scripts log them
    ("eval/top@5 >= 0.9", ("eval/top@5", ">=", 0.9)),
    ("train/lr-scale.max==2", ("train/lr-scale.max", "==", 2.0)),
    ("val/loss/ema!=1", ("val/loss/ema", "!=", 1.0)),  # the longest column that fits
])
def test_parse_where_takes_every_column_name_the_board_can_have(expr, parsed):
    columns = ["status", "val/loss", "val/loss/ema", "eval/top@5", "train/lr-scale.max"]
    assert board.parse_where(expr, columns) == parsed
    with pytest.raises(UsageError, match=r"^unknown column 'val/acc' in --where; available: status, val/loss,"):
        board.parse_where("val/acc<0.7", columns)


def test_a_run_without_the_value_matches_not_equal_only():
    found = board.build([run("a", flags={"optimizer": "nesterov", "nesterov": True}),
                         run("b", flags={"optimizer": "nesterov", "nesterov": False}),
                         run("c", flags={"optimizer": "adam"})], RUNS)  # its when: left nesterov out
    assert ids(board.select(found, ["flag_nesterov!=true"])) == ["b", "c"]
    assert ids(board.select(found, ["flag_nesterov==false"])) == ["b"]


def test_select_by_where_status_and_sweep():
    found = board.build([
        run("a", flags={"lr": 0.1, "mode": "ok"}), run("b", status="failed", flags={"lr": 0.3, "mode": "3"}),
        run("c", flags={"lr": 0.5, "mode": "ok"}, sweep="s2"), run("d", flags={"mode": "inf"}),
    ], RUNS)
    assert ids(board.select(found, ["flag_lr>=0.3"])) == ["b", "c"]  # d has no lr: never matches
    assert ids(board.select(found, ["flag_lr>0.1", "status=completed"])) == ["c"]
    assert ids(board.select(found, ["flag_mode==3"])) == ["b"]  # a number against text, as written
    assert ids(board.select(found, ["flag_mode==inf"])) == ["d"]
    assert ids(board.select(found, status=["failed,completed"])) == ["a", "b", "c", "d"]
    assert ids(board.select(found, status=["failed"])) == ["b"]
    assert ids(board.select(found, sweep="s2")) == ["c"]
    with pytest.raises(UsageError, match=r"--where compares flag_lr \(a number\) with the text 'x'"):
        board.select(found, ["flag_lr>x"])
    with pytest.raises(UsageError, match=r"^unknown status 'exploded'; known: running, completed"):
        board.select(found, status=["completed, exploded"])


def test_find_sweep_by_last_id_and_unique_prefix(tmp_path):
    runs = [run("a", sweep="s-old-1", start=T0), run("b", sweep="s-new", start=T0 + 9),
            run("c", sweep="s-old-2", start=T0 + 1)]
    assert rundir.find_sweep_id(tmp_path, "last", runs) == "s-new"
    assert rundir.find_sweep_id(tmp_path, "s-new", runs) == "s-new"
    assert rundir.find_sweep_id(tmp_path, "s-old-2", runs) == "s-old-2"
    with pytest.raises(RunNotFound, match="'s-old' matches 2 sweeps: give more of the id"):
        rundir.find_sweep_id(tmp_path, "s-old", runs)
    with pytest.raises(RunNotFound, match="no sweep matches 'x'"):
        rundir.find_sweep_id(tmp_path, "x", runs)
    with pytest.raises(RunNotFound, match="no sweeps in "):
        rundir.find_sweep_id(tmp_path, "last", [])


def test_last_is_the_sweep_most_recently_active(tmp_path):
    """A sweep resumed after a newer one was created is the last one again: its newest run
    counts, as does a record's creation for a sweep with no run yet."""
    old = rundir.SweepRecord("s-a", "f.yaml", "s-a", None, 4, created=T0)
    new = rundir.SweepRecord("s-b", "f.yaml", "s-b", None, 4, created=T0 + 5)
    old.save(tmp_path)
    new.save(tmp_path)
    assert rundir.find_sweep_id(tmp_path, "last", []) == "s-b"
    resumed = [run("r", sweep="s-a", start=T0 + 9)]
    assert rundir.find_sweep_id(tmp_path, "last", resumed) == "s-a"
    assert rundir.find_sweep(tmp_path, "last", runs=resumed).id == "s-a"
    with pytest.raises(RunNotFound, match="no sweeps of g.yaml in "):
        rundir.find_sweep(tmp_path, "last", Path("g.yaml"), runs=resumed)


def test_used_columns_drops_only_empty_optional_columns():
    found = board.build([run("a", flags={"lr": 0.1, "unset": None}, metrics={"acc": math.nan}, start=None)], RUNS)
    assert board.used_columns(found.rows, found.columns) == ["id", "sweep", "status", "start", "duration_s",
                                                             "flag_lr", "dir"]


# ---------------------------------------------------------------- render


def sample() -> Board:
    return board.build([run("a", flags={"name": "x|y", "wide": True}, metrics={"acc": 0.912345678}, duration=2.0),
                        run("b", status="failed", flags={"name": "z"}, metrics={"acc": math.nan, "big": math.inf})],
                       RUNS)


def written(found: Board, fmt: str) -> str:
    out = io.StringIO()
    render.write(found, fmt, out)
    return out.getvalue()


def test_one_table_names_every_format():
    assert render.FORMATS == tuple(render.WRITERS) == ("table", "csv", "json", "markdown")
    with pytest.raises(UsageError) as caught:
        written(sample(), "xml")
    assert str(caught.value) == "unknown format 'xml'; choose one of table, csv, json, markdown"


def test_csv_writes_every_column_and_every_value_in_full():
    found = sample()
    header, a, b = list(csv.reader(io.StringIO(written(found, "csv"))))
    assert header == found.columns
    row = dict(zip(header, a, strict=False))
    assert (row["acc"], row["flag_name"], row["flag_wide"], row["diagnosis"]) == ("0.912345678", "x|y", "true", "")
    assert dict(zip(header, b, strict=False))["big"] == "inf" and dict(zip(header, b, strict=False))["acc"] == "nan"


def test_json_is_strict_with_non_finite_numbers_in_words():
    text = written(sample(), "json")
    assert text.endswith("]\n")
    rows = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert [list(r) for r in rows] == [sample().columns] * 2
    assert rows[0]["acc"] == 0.912345678 and rows[0]["flag_wide"] is True and rows[0]["reason"] is None
    assert (rows[1]["acc"], rows[1]["big"]) == ("nan", "inf")


def test_markdown_escapes_pipes():
    lines = written(sample(), "markdown").splitlines()
    assert lines[0] == "| " + " | ".join(sample().columns) + " |"
    assert lines[1] == "|" + "|".join(["---"] * len(sample().columns)) + "|"
    assert "| x\\|y |" in lines[2] and len(lines) == 4


def test_table_off_a_terminal_is_plain_narrow_and_aligned():
    found = Board(sample().columns, sample().rows, title="sweep s1")
    lines = written(found, "table").splitlines()
    assert lines[0] == "sweep s1"
    assert lines[1].split() == ["id", "sweep", "status", "start", "duration_s", "acc", "big",
                                "flag_name", "flag_wide", "dir"]  # no steps, diagnosis, reason
    acc = lines[1].index("acc") + len("acc")
    assert lines[2][:acc].endswith("0.912346") and lines[3][:acc].endswith("nan")  # numbers right-aligned
    assert "\x1b[" not in "".join(lines)
    assert written(Board(found.columns, []), "table") == "no runs\n"


def test_only_render_imports_rich_and_only_inside_functions():
    for path in sorted((REPO / "sweep").glob("*.py")):
        tree = ast.parse(path.read_text())
        nodes = ast.walk(tree) if path.name != "render.py" else iter(tree.body)  # render: module level
        for node in nodes:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "rich" or n.startswith("rich.") for n in names), f"{path.name}:{node.lineno}"


def test_ls_in_csv_and_json_does_not_load_rich(tmp_path):
    runs = tmp_path / "runs"
    for i in range(2):
        path = runs / f"20260101T00000{i}Z-abcdef"
        path.mkdir(parents=True)
        rundir.write_json(path / rundir.RUN_FILE, {"format": rundir.FORMAT, "id": path.name, "sweep": "s1",
                                                   "status": "completed", "start": T0 + i})
        rundir.write_json(path / rundir.FLAGS_FILE, {"lr": 0.1 * i})
        rundir.write_json(path / rundir.METRICS_FILE, {"acc": 0.5 + i / 10})
    code = ("import sys\nfrom sweep.cli import app\n"
            "for fmt in ('csv', 'json'):\n"
            "    try:\n"
            f"        app(['ls', '--runs-dir', {str(runs)!r}, '--format', fmt], prog_name='sweep')\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "print('RICH', 'rich' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "RICH False"
    assert proc.stdout.startswith("id,sweep,status,start,duration_s,steps,diagnosis,acc,flag_lr,dir,reason\n")
    assert '"acc": 0.6' in proc.stdout


# ---------------------------------------------------------------- a board that fits its terminal


def wide() -> Board:
    """Three runs of one sweep: two flags vary, one is fixed; two metrics; one run failed."""
    runs = [run(f"2026010{i}T000000Z-abcdef", status="failed" if i == 2 else "completed", start=T0 + i,
                flags={"learning_rate": 1e-5 * (i + 1), "per_device_train_batch_size": 16 * (i + 1),
                       "task_name": "mrpc"},
                metrics={"eval_accuracy": 0.8 + i / 100, "eval_loss": 0.3}, metric="eval_accuracy",
                duration=12.5, steps=3)
            for i in range(3)]
    runs[2].reason = "exit code 1: OverflowError: math range error"
    return board.objectives(board.build(runs, RUNS))


def test_ranked_puts_what_matters_first():
    assert board.ranked(wide()) == [
        "id", "status", "eval_accuracy", "flag_learning_rate", "flag_per_device_train_batch_size", "eval_loss",
        "start", "duration_s", "dir", "diagnosis", "steps", "sweep", "flag_task_name", "reason"]
    by_loss = board.objectives(wide(), "eval_loss")
    assert by_loss.keep == ("eval_loss", "eval_accuracy")
    assert board.ranked(by_loss)[:4] == ["id", "status", "eval_loss", "eval_accuracy"]


def test_fit_keeps_the_longest_run_of_that_order_that_fits():
    found = wide()
    found = Board(board.used_columns(found.rows, found.columns), found.rows, keep=found.keep)
    size = render.widths(found)
    must = size["id"] + size["status"] + size["eval_accuracy"] + 2 * render.GAP
    shown = render.fit(found, must + render.GAP + size["flag_learning_rate"])
    assert shown.columns == ["id", "status", "eval_accuracy", "flag_learning_rate"]
    assert shown.left_out[:2] == ["flag_per_device_train_batch_size", "eval_loss"]
    assert "reason" not in shown.left_out and shown.reasons_below
    # One column short of the next: it and everything after it go, even narrower ones.
    assert render.fit(found, must + render.GAP + size["flag_learning_rate"] - 1).columns == [
        "id", "status", "eval_accuracy"]
    # Too narrow for the id, status and objective: they stay all the same.
    assert render.fit(found, 10).columns == ["id", "status", "eval_accuracy"]
    everything = render.fit(found, render.table_width(found))
    assert everything.columns == board.ranked(found) and everything.left_out == []
    assert not everything.reasons_below


def test_pick_takes_the_columns_named_in_order():
    picked, missing = board.pick(wide(), ["eval_loss, id", "id"])
    assert (picked.columns, picked.chosen, missing) == (["eval_loss", "id"], True, [])
    with pytest.raises(UsageError, match=r"^unknown column 'acc' in --columns; available: id, sweep, status"):
        board.pick(wide(), ["id,acc"])
    assert board.pick(wide(), ["id,acc"], strict=False)[1] == ["acc"]
    with pytest.raises(UsageError, match="--columns needs at least one column name"):
        board.pick(wide(), [" , "])


def test_chosen_columns_are_written_even_when_empty():
    picked, _ = board.pick(wide(), ["id,reason"])
    lines = written(picked, "table").splitlines()
    assert lines[0].split() == ["id", "reason"] and len(lines) == 4


@pytest.mark.parametrize("value", [0.1, 1 / 3, 1e-05 * 3, 123456789.123456789, 2.0 ** -1074, 1e300, -0.0])
def test_exact_text_reads_back_as_the_same_float(value):
    assert float(board.exact(value)) == value and str(float(board.exact(value))) == str(value)
    assert board.exact(math.nan) == "nan" and board.exact(True) == "true" and board.exact(None) == ""
