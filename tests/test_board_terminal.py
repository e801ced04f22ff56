"""The board a person reads (issue 10, point 10): in a terminal of 80, 120 and 160 columns the
end-of-sweep board and ``sweep ls`` keep the columns that matter and cut no cell; a pipe gets
the whole table; CSV and JSON carry every value in full; ``--columns`` picks the columns.

The runs come from real sweeps (spawn launcher) of tests/scripts/board/glue.py, a script in the
style of HuggingFace's run_glue.py: long underscore flag names make a wide board.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep import board

from helpers import SCRIPTS, flags_of, in_terminal, info, ls_json, metrics_of, project, python_env, run_dirs, sweep_cli

GLUE = SCRIPTS / "board" / "glue.py"
WIDTHS = (80, 120, 160)
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
SPACE = {
    "learning_rate": {"min": 1e-5, "max": 1e-4, "log": True},
    "weight_decay": [0.0, 0.01, 0.1],
    "warmup_ratio": [0.0, 0.06],
    "per_device_train_batch_size": [16, 32],
    "num_train_epochs": 3,
    "task_name": "mrpc",
}
VARYING = ["flag_learning_rate", "flag_per_device_train_batch_size", "flag_warmup_ratio", "flag_weight_decay"]
FIXED = ["flag_num_train_epochs", "flag_task_name"]


@pytest.fixture(scope="module")
def glue(tmp_path_factory) -> Path:
    """A project and its runs directory, with one finished sweep of 6 trials."""
    root = tmp_path_factory.mktemp("glue")
    flags_file = project(root / "proj", SPACE, script=GLUE, trials=6, seed=1, metric="eval_accuracy")
    result = sweep_cli("run", flags_file, "--runs-dir", root / "runs", "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    return root


def terminal(args: list[str], width: int) -> tuple[int, list[str], str]:
    """``sweep ARGS`` with stdout on a terminal ``width`` columns wide: the exit status, the lines
    it showed (colours stripped) and stderr."""
    env = python_env(TERM="xterm-256color", COLUMNS=str(width))
    code, out, err = in_terminal([sys.executable, "-m", "sweep", *args], env, columns=width)
    return code, [ANSI.sub("", line).rstrip("\r") for line in out.splitlines()], err


def header(lines: list[str]) -> list[str]:
    (head,) = [line.split() for line in lines if line.split()[:1] == ["id"]]
    return head


def assert_nothing_cut(lines: list[str], width: int, runs: Path, objective: str = "eval_accuracy") -> None:
    """No line is wider than the terminal, nothing ends in an ellipsis, and each run's row shows
    its whole id, its status and its objective's value."""
    assert all(len(line) <= width for line in lines), [len(line) for line in lines]
    assert not any("…" in line or "..." in line for line in lines)
    for run in run_dirs(runs):
        (row,) = [line.split() for line in lines if line.split()[:1] == [run.name]]
        assert row[1] == info(run)["status"]
        assert board.cell(metrics_of(run)[objective]) in row


def left_out(err: str) -> list[str]:
    """The columns named by the one line that says what was left out."""
    (line,) = [x for x in err.splitlines() if x.startswith("left out ")]
    assert "--columns" in line and "--format csv" in line
    names = line[len("left out "):line.index(" to fit ")]
    return [n for n in re.split(r", | and ", names) if not n.endswith("more")]


@pytest.mark.parametrize("width", WIDTHS)
def test_ls_in_a_terminal_keeps_what_matters_and_cuts_nothing(glue, width):
    runs = glue / "runs"
    code, lines, err = terminal(["ls", "--runs-dir", str(runs)], width)
    assert code == 0, err
    assert_nothing_cut(lines, width, runs)
    shown = header(lines)
    assert shown[:3] == ["id", "status", "eval_accuracy"]
    dropped = left_out(err)
    assert not set(dropped) & set(shown)
    # The flags that vary go before the other columns that may be dropped; constant flags near the end.
    assert [c for c in VARYING if c in shown] + [c for c in VARYING if c in dropped] == VARYING
    assert not set(FIXED) & set(shown)
    if width == 80:
        assert shown == ["id", "status", "eval_accuracy", "flag_learning_rate"]
        assert dropped[0] == "flag_per_device_train_batch_size"  # the next one: too wide for what is left
    if width == 160:
        assert set(VARYING) <= set(shown) and not set(FIXED) & set(shown)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_board_after_a_sweep_fits_its_terminal(glue, tmp_path, width):
    runs = tmp_path / "runs"
    code, lines, err = terminal(["run", str(glue / "proj" / "flags.yaml"), "--runs-dir", str(runs),
                                 "--launcher", "spawn", "--trials", "3"], width)
    assert code == 0, err
    assert len(run_dirs(runs)) == 3
    assert_nothing_cut(lines, width, runs)
    assert header(lines)[:3] == ["id", "status", "eval_accuracy"]
    assert left_out(err)


def test_a_pipe_gets_the_whole_table(glue):
    proc = subprocess.run([sys.executable, "-m", "sweep", "ls", "--runs-dir", str(glue / "runs")],
                          capture_output=True, text=True, env=python_env(COLUMNS="80"), timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    head = proc.stdout.splitlines()[0].split()
    assert set(VARYING + FIXED) <= set(head) and {"eval_f1", "eval_loss", "start", "dir"} <= set(head)


def test_csv_and_json_carry_every_flag_and_metric_in_full(glue):
    runs = glue / "runs"
    text = sweep_cli("ls", "--runs-dir", runs, "--format", "csv").stdout
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    objects = {r["id"]: r for r in ls_json(runs)}
    for run in run_dirs(runs):
        flags, metrics = flags_of(run), metrics_of(run)
        for name, value in [*((f"flag_{k}", v) for k, v in flags.items()), *metrics.items()]:
            if name in ("learning_rate", "epoch"):
                continue  # a metric with a flag's name is the flag
            assert objects[run.name][name] == value, name
            cell = rows[run.name][name]
            assert (cell if isinstance(value, str) else float(cell)) == value, (name, cell, value)
    # The learning rates have all their digits: rounding to 6 would have lost them.
    assert any(len(r["flag_learning_rate"]) > 12 for r in rows.values())


def test_columns_picks_the_columns_of_ls(glue):
    runs = glue / "runs"
    wanted = ["id", "flag_task_name", "eval_loss", "dir"]
    code, lines, err = terminal(["ls", "--runs-dir", str(runs), "--columns", ",".join(wanted)], 80)
    assert code == 0 and err == ""
    assert header(lines) == wanted
    for run in run_dirs(runs):  # wider than the terminal: the terminal wraps, nothing is cut
        assert any(line.split() == [run.name, "mrpc", board.cell(metrics_of(run)["eval_loss"]), str(run)]
                   for line in lines)
    rows = ls_json(runs, "--columns", "eval_loss,id")
    assert [list(r) for r in rows] == [["eval_loss", "id"]] * 6
    bad = sweep_cli("ls", "--runs-dir", runs, "--columns", "id,accuracy")
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.startswith("Error: unknown column 'accuracy' in --columns; available: id, sweep, status")
    assert len(bad.stderr.splitlines()) == 1


def test_columns_picks_the_columns_of_the_board_after_a_sweep(glue, tmp_path):
    flags_file = glue / "proj" / "flags.yaml"
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "a", "--launcher", "spawn", "--trials", "2",
                       "--columns", "id,eval_f1,flag_weight_decay,test_bleu")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == ["id", "eval_f1", "flag_weight_decay"]
    assert "no column 'test_bleu' on the board: no run of the sweep reported it" in result.stderr
    # A flag the flags file does not have: known before anything runs.
    bad = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "b", "--columns", "id,flag_lr")
    assert bad.exit_code == 2 and len(bad.stderr.splitlines()) == 1
    assert bad.stderr.startswith(f"Error: unknown column 'flag_lr' in --columns: {flags_file} has no flag 'lr'")
    assert not (tmp_path / "b").exists()
