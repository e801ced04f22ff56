"""The reading side of the CLI (ls, show, compare, clean, purge), help and exit statuses.

One module-scoped pair of real sweeps (stdlib trials, spawn launcher) makes the run
directories; tests that change them work on a copy.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from sweep.cli import app

from helpers import (
    REPO,
    flags_of,
    in_terminal,
    info,
    ls_json,
    metrics_of,
    one_error_line,
    project,
    python_env,
    run_dirs,
    sweep_cli,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class Sweeps:
    """Two finished sweeps in one runs directory.

    ``acc``: metric eval_accuracy (maximize); dropout 0.1..0.4, all completed.
    ``loss``: metric eval_loss (goal minimize); modes ok, crash (no metric) and nan.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = root / "runs"
        acc = project(root / "acc", {"dropout": [0.1, 0.2, 0.3, 0.4], "lr": 0.01}, seed=3)
        loss = project(root / "loss", {"mode": ["ok", "crash", "nan"], "dropout": [0.15, 0.35]},
                       sampler="grid", metric="eval_loss", goal="minimize")
        first = sweep_cli("run", acc, "--runs-dir", self.runs, "--launcher", "spawn")
        assert first.exit_code == 0, first.output
        second = sweep_cli("run", loss, "--runs-dir", self.runs, "--launcher", "spawn")
        assert second.exit_code == 1, second.output
        self.dirs = run_dirs(self.runs, by_trial=False)
        self.info = {d.name: info(d) for d in self.dirs}
        self.flags = {d.name: flags_of(d) for d in self.dirs}
        self.metrics = {d.name: metrics_of(d) for d in self.dirs}
        sweeps = sorted({i["sweep"] for i in self.info.values()},
                        key=lambda s: min(i["start"] for i in self.info.values() if i["sweep"] == s))
        self.acc_sweep, self.loss_sweep = sweeps

    def ids(self, **where: Any) -> set[str]:
        return {name for name, i in self.info.items() if all(i.get(k) == v for k, v in where.items())}

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.runs, dest, symlinks=True)
        return dest


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> Sweeps:
    return Sweeps(tmp_path_factory.mktemp("sweeps"))


@pytest.fixture
def runs_copy(sweeps, tmp_path) -> Path:
    return sweeps.copy(tmp_path / "runs")


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# ---------------------------------------------------------------- ls


def test_ls_columns_and_default_order_newest_first(sweeps):
    result = sweep_cli("ls", "--runs-dir", sweeps.runs, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    reader = csv.reader(io.StringIO(result.stdout))
    header = next(reader)
    rows = list(reader)
    assert len(rows) == len(sweeps.dirs) == 10
    wanted = ["id", "sweep", "status", "start", "duration_s", "eval_accuracy", "eval_loss",
              "flag_dropout", "flag_lr", "flag_mode", "dir"]
    positions = [header.index(c) for c in wanted]
    assert positions == sorted(positions), header
    assert header[:5] == ["id", "sweep", "status", "start", "duration_s"]
    # Printed metrics show up by their own names, flags only as flag_<name>.
    assert "dropout" not in header and "mode" not in header
    ids = [r[0] for r in rows]
    newest_first = sorted(sweeps.info, key=lambda name: sweeps.info[name]["start"], reverse=True)
    assert ids == newest_first
    for row in rows:
        values = dict(zip(header, row, strict=True))
        rec = sweeps.info[values["id"]]
        assert values["sweep"] == rec["sweep"] and values["status"] == rec["status"]
        assert float(values["flag_dropout"]) == sweeps.flags[values["id"]]["dropout"]


def test_ls_dir_is_relative_when_runs_dir_is(sweeps, monkeypatch):
    monkeypatch.chdir(sweeps.root)
    rows = ls_json(Path("runs"))
    assert {r["dir"] for r in rows} == {f"runs/{name}" for name in sweeps.info}
    for row in rows:
        assert not os.path.isabs(row["dir"]) and Path(row["dir"], "run.json").is_file()
    absolute = ls_json(sweeps.runs)
    assert {r["dir"] for r in absolute} == {str(sweeps.runs / name) for name in sweeps.info}


def test_ls_sort_best_first_asc_flips_and_missing_nan_last(sweeps):
    rows = ls_json(sweeps.runs, "--sort", "eval_accuracy")
    values = [r["eval_accuracy"] for r in rows]
    known = [v for v in values if finite(v)]
    assert len(known) == 6
    assert values[:6] == sorted(known, reverse=True)
    assert all(not finite(v) for v in values[6:])
    assert "nan" in values[6:] and None in values[6:]
    flipped = [r["eval_accuracy"] for r in ls_json(sweeps.runs, "--sort", "eval_accuracy", "--asc")]
    assert flipped[:6] == sorted(known)
    assert all(not finite(v) for v in flipped[6:])


def test_ls_sort_follows_the_sweeps_goal(sweeps):
    rows = ls_json(sweeps.runs, "--sort", "eval_loss")  # the loss sweep minimizes it
    values = [r["eval_loss"] for r in rows]
    known = [v for v in values if finite(v)]
    assert len(known) == 6
    assert values[:6] == sorted(known)  # lowest first
    assert all(not finite(v) for v in values[6:])
    flipped = [r["eval_loss"] for r in ls_json(sweeps.runs, "--sort", "eval_loss", "--asc")]
    assert flipped[:6] == sorted(known, reverse=True)
    assert all(not finite(v) for v in flipped[6:])


def test_ls_sort_by_flag_top_and_status(sweeps):
    rows = ls_json(sweeps.runs, "--sort", "flag_dropout", "--top", "3")
    everything = sorted((f["dropout"] for f in sweeps.flags.values()), reverse=True)
    assert [r["flag_dropout"] for r in rows] == everything[:3]
    failed = ls_json(sweeps.runs, "--status", "failed")
    assert {r["id"] for r in failed} == sweeps.ids(status="failed")
    assert len(failed) == 4
    both = ls_json(sweeps.runs, "--status", "failed,completed")
    assert len(both) == 10
    result = sweep_cli("ls", "--runs-dir", sweeps.runs, "--status", "exploded")
    assert "unknown status 'exploded'" in one_error_line(result, 2)


def test_ls_where_filters_without_evaluating(sweeps, tmp_path, monkeypatch):
    rows = ls_json(sweeps.runs, "--where", "flag_dropout>=0.3")
    expected = {name for name, f in sweeps.flags.items() if f["dropout"] >= 0.3}
    assert {r["id"] for r in rows} == expected and expected
    rows = ls_json(sweeps.runs, "-w", "flag_dropout<0.3", "-w", "status=completed")
    assert {r["id"] for r in rows} == {n for n, f in sweeps.flags.items()
                                       if f["dropout"] < 0.3 and sweeps.info[n]["status"] == "completed"}
    rows = ls_json(sweeps.runs, "--where", "flag_mode==crash")
    assert {r["id"] for r in rows} == {n for n, f in sweeps.flags.items() if f.get("mode") == "crash"}
    monkeypatch.chdir(tmp_path)
    for expr in ('__import__("os")', '__import__("os").system("touch pwned")', "flag_dropout"):
        result = sweep_cli("ls", "--runs-dir", sweeps.runs, "--where", expr)
        line = one_error_line(result, 2)
        assert "--where" in line
        assert result.stdout == ""
    assert not list(tmp_path.glob("pwned*"))
    result = sweep_cli("ls", "--runs-dir", sweeps.runs, "--where", "flag_nope>1")
    assert "unknown column 'flag_nope'" in one_error_line(result, 2)


def test_ls_formats(sweeps):
    csv_out = sweep_cli("ls", "--runs-dir", sweeps.runs, "--format", "csv", "--sort", "eval_accuracy")
    header, *rows = list(csv.reader(io.StringIO(csv_out.stdout)))
    data = ls_json(sweeps.runs, "--sort", "eval_accuracy")
    assert isinstance(data, list) and len(data) == len(rows) == 10
    for obj, row in zip(data, rows, strict=True):
        assert list(obj) == header  # exactly the csv columns, in order
        assert obj["id"] == row[0]
    # JSON has no NaN: the value is kept, in words, and the output stays strict JSON.
    json.loads(sweep_cli("ls", "--runs-dir", sweeps.runs, "--format", "json").stdout,
               parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    md = sweep_cli("ls", "--runs-dir", sweeps.runs, "--format", "markdown").stdout.splitlines()
    assert md[0] == "| " + " | ".join(header) + " |"
    assert re.fullmatch(r"\|(---\|)+", md[1])
    assert len(md) == 12
    table = sweep_cli("ls", "--runs-dir", sweeps.runs)
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["id", "sweep", "status", "start", "duration_s"]
    assert {"eval_accuracy", "flag_dropout", "dir"} <= set(lines[0].split())
    assert sum(1 for line in lines if line.split() and line.split()[0] in sweeps.info) == 10
    bad = sweep_cli("ls", "--runs-dir", sweeps.runs, "--format", "xml")
    assert "unknown format 'xml'" in one_error_line(bad, 2)


def test_ls_sweep_last_and_by_id(sweeps):
    rows = ls_json(sweeps.runs, "--sweep", "last")
    assert {r["id"] for r in rows} == sweeps.ids(sweep=sweeps.loss_sweep)
    rows = ls_json(sweeps.runs, "--sweep", sweeps.acc_sweep)
    assert {r["id"] for r in rows} == sweeps.ids(sweep=sweeps.acc_sweep)
    result = sweep_cli("ls", "--runs-dir", sweeps.runs, "--sweep", "nope")
    assert result.exit_code == 2 and "no sweep matches 'nope'" in result.stderr


def test_ls_unknown_sort_column_lists_the_columns(sweeps):
    result = sweep_cli("ls", "--runs-dir", sweeps.runs, "--sort", "accuracy")
    line = one_error_line(result, 2)
    assert line.startswith("Error: unknown sort column 'accuracy'; available: id, sweep, status")
    for column in ("eval_accuracy", "eval_loss", "flag_dropout", "flag_mode"):
        assert column in line
    assert result.stdout == ""


def test_ls_imports_neither_optuna_nor_torch(sweeps):
    code = (
        "import sys\n"
        "from sweep.cli import app\n"
        "try:\n"
        f"    app(['ls', '--runs-dir', {str(sweeps.runs)!r}, '--sort', 'eval_accuracy'], prog_name='sweep')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in ('optuna', 'torch', 'numpy') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "HEAVY []"
    assert len(proc.stdout.splitlines()) >= 11


def test_ls_missing_runs_dir_is_an_error(tmp_path):
    result = sweep_cli("ls", "--runs-dir", tmp_path / "nothing")
    assert "does not exist" in one_error_line(result, 2)


def test_no_colour_without_a_terminal_or_with_no_color(sweeps):
    cmd = [sys.executable, "-m", "sweep", "ls", "--runs-dir", str(sweeps.runs)]
    env = python_env(TERM="xterm-256color")
    code, out, _ = in_terminal(cmd, env)
    assert code == 0
    assert ANSI.search(out), "a terminal gets colour (else the checks below prove nothing)"
    code, out, _ = in_terminal(cmd, {**env, "NO_COLOR": "1"})
    assert code == 0 and "eval_accuracy" in out
    assert not ANSI.search(out)
    piped = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
    assert piped.returncode == 0 and "eval_accuracy" in piped.stdout
    assert not ANSI.search(piped.stdout) and not ANSI.search(piped.stderr)


# ---------------------------------------------------------------- show / compare


def _unique_prefix(name: str, names: list[str]) -> str:
    for k in range(1, len(name)):
        if sum(n.startswith(name[:k]) for n in names) == 1:
            return name[:k]
    return name


def test_show_a_run_by_id_prefix_and_last(sweeps):
    name = next(iter(sweeps.ids(sweep=sweeps.acc_sweep)))
    rec, flags, metrics = sweeps.info[name], sweeps.flags[name], sweeps.metrics[name]
    prefix = _unique_prefix(name, list(sweeps.info))
    assert prefix != name
    outputs = [sweep_cli("show", ref, "--runs-dir", sweeps.runs) for ref in (name, prefix)]
    assert outputs[0].stdout == outputs[1].stdout
    result = outputs[0]
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"run      {name}" in out
    assert "status   completed" in out
    assert f"duration {rec['duration']:.6g} s" in out
    assert re.search(rf"^\s+dropout\s+{flags['dropout']:g}$", out, re.M)
    assert re.search(r"^\s+lr\s+0.01$", out, re.M)
    assert re.search(rf"^\s+eval_accuracy\s+{metrics['eval_accuracy']:.6g}$", out, re.M)
    assert f"--dropout={flags['dropout']!r} --lr=0.01" in out
    assert "probe.py" in out.split("command", 1)[1].splitlines()[0]
    assert "epoch 2 eval_accuracy" in out  # the output tail
    newest = max(sweeps.info, key=lambda n: sweeps.info[n]["start"])
    last = sweep_cli("show", "last", "--runs-dir", sweeps.runs)
    assert last.exit_code == 0 and f"run      {newest}" in last.stdout


def test_show_a_failed_run_prints_its_error(sweeps):
    (name,) = [n for n, f in sweeps.flags.items() if f.get("mode") == "crash" and f["dropout"] == 0.15]
    out = sweep_cli("show", name, "--runs-dir", sweeps.runs).stdout
    assert "status   failed" in out
    assert "RuntimeError: boom at dropout 0.15" in out
    assert "exit code 1" in out


def test_show_unknown_ambiguous_and_path_refs(sweeps):
    result = sweep_cli("show", "zzzz", "--runs-dir", sweeps.runs)
    assert one_error_line(result, 1) == f"Error: no run matches 'zzzz' in {sweeps.runs}"
    result = sweep_cli("show", "2", "--runs-dir", sweeps.runs)
    assert "matches 10 runs" in one_error_line(result, 1)
    outside = sweeps.root / "etc"
    shutil.copytree(sweeps.dirs[0], outside, symlinks=True, dirs_exist_ok=True)
    try:
        for ref in ("../etc", "..", "/etc", ".sweep"):
            result = sweep_cli("show", ref, "--runs-dir", sweeps.runs)
            assert "invalid run reference" in one_error_line(result, 1)
            assert result.stdout == ""
    finally:
        shutil.rmtree(outside)


def test_compare_marks_differences(sweeps):
    by_dropout = {sweeps.flags[n]["dropout"]: n for n in sweeps.ids(sweep=sweeps.acc_sweep)}
    a, b = by_dropout[0.1], by_dropout[0.3]
    result = sweep_cli("compare", a, _unique_prefix(b, list(sweeps.info)), "--runs-dir", sweeps.runs)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()

    def row(key: str) -> str:
        (line,) = [text for text in lines if re.search(rf"\b{key}\b", text) and "vs" not in text]
        return line

    assert "0.1" in row("flag_dropout") and "0.3" in row("flag_dropout") and "*" in row("flag_dropout")
    assert "*" not in row("flag_lr")
    assert "*" not in row("status")
    assert "*" in row("eval_accuracy")
    assert a in result.stdout and b in result.stdout
    result = sweep_cli("compare", a, "zzzz", "--runs-dir", sweeps.runs)
    assert one_error_line(result, 1) == f"Error: no run matches 'zzzz' in {sweeps.runs}"


def test_last_n_and_best_name_runs_that_stay_the_same(sweeps):
    newest = sorted(sweeps.info, key=lambda n: sweeps.info[n]["start"], reverse=True)
    for n in (0, 1, 9):
        result = sweep_cli("show", f"last~{n}", "--runs-dir", sweeps.runs)
        assert result.exit_code == 0 and f"run      {newest[n]}" in result.stdout
    # best: the last sweep's best run by its objective (the loss sweep minimizes eval_loss).
    done = [n for n in sweeps.ids(sweep=sweeps.loss_sweep, status="completed")]
    best = min(done, key=lambda n: sweeps.metrics[n]["eval_loss"])
    result = sweep_cli("show", "best", "--runs-dir", sweeps.runs)
    assert result.exit_code == 0 and f"run      {best}" in result.stdout
    pair = sweep_cli("compare", "best", "last~1", "--runs-dir", sweeps.runs)
    assert pair.exit_code == 0 and f"{best} vs {newest[1]}" in pair.stdout
    result = sweep_cli("show", "last~10", "--runs-dir", sweeps.runs)
    assert one_error_line(result, 1) == f"Error: last~10 needs 11 runs; {sweeps.runs} has 10"


def test_best_needs_a_completed_run_with_the_objective(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": ["silent"]})
    assert sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn").exit_code == 1
    result = sweep_cli("show", "best", "--runs-dir", tmp_path / "runs")
    assert "has no completed run with a value of eval_accuracy" in one_error_line(result, 1)


def test_show_finds_an_archived_run_and_says_so(runs_copy, sweeps):
    name = sorted(sweeps.ids(status="failed"))[0]
    assert sweep_cli("clean", name[:-2], "--runs-dir", runs_copy).exit_code == 0
    for ref in (name, name[:-2]):
        result = sweep_cli("show", ref, "--runs-dir", runs_copy)
        assert result.exit_code == 0, result.stderr
        assert f"dir      {runs_copy / 'archive' / name}  (archived by sweep clean; sweep purge deletes it)" \
            in result.stdout
    other = sorted(sweeps.ids(status="completed"))[0]
    assert sweep_cli("compare", name, other, "--runs-dir", runs_copy).exit_code == 0
    assert sweep_cli("clean", name, "--runs-dir", runs_copy).exit_code == 1  # cleaning is for live runs only


# ---------------------------------------------------------------- clean / purge


def test_clean_a_run_and_failed_runs_then_purge(runs_copy, sweeps):
    runs = runs_copy
    archive = runs / "archive"
    name = sorted(sweeps.ids(status="completed"))[0]
    result = sweep_cli("clean", name, "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"archived 1 run to {archive}\n"
    assert not (runs / name).exists() and (archive / name / "run.json").is_file()
    assert name not in {r["id"] for r in ls_json(runs)}
    result = sweep_cli("clean", "--failed", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"archived 4 runs to {archive}\n"
    assert {r["status"] for r in ls_json(runs)} == {"completed"}
    assert len(ls_json(runs)) == 5
    assert {p.name for p in archive.iterdir()} == sweeps.ids(status="failed") | {name}
    # Without --yes and without a terminal to ask on, purge refuses.
    result = sweep_cli("purge", "--runs-dir", runs)
    assert one_error_line(result, 2) == "Error: purge would delete 5 archived runs; pass --yes to confirm"
    assert len(list(archive.iterdir())) == 5
    proc = subprocess.run([sys.executable, "-m", "sweep", "purge", "--runs-dir", str(runs)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=python_env(), timeout=30)
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    assert len(list(archive.iterdir())) == 5
    result = sweep_cli("purge", "--yes", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "deleted 5 archived runs\n"
    assert not archive.exists()
    assert len(ls_json(runs)) == 5
    result = sweep_cli("purge", "--yes", "--runs-dir", runs)
    assert result.exit_code == 0 and "nothing to purge" in result.stderr


def test_clean_needs_something_to_clean(runs_copy):
    result = sweep_cli("clean", "--runs-dir", runs_copy)
    assert one_error_line(result, 2).startswith("Error: say which runs to archive")
    result = sweep_cli("clean", "zzzz", "--runs-dir", runs_copy)
    one_error_line(result, 1)
    result = sweep_cli("clean", "../runs", "--runs-dir", runs_copy)
    assert "invalid run reference" in one_error_line(result, 1)
    assert not (runs_copy / "archive").exists() or not list((runs_copy / "archive").iterdir())
    assert len(ls_json(runs_copy)) == 10


# ---------------------------------------------------------------- exit statuses, help, README


def test_exit_statuses(tmp_path, sweeps):
    ok = project(tmp_path / "ok", {"dropout": [0.1]})
    assert sweep_cli("run", ok, "--runs-dir", tmp_path / "r0", "--launcher", "spawn").exit_code == 0
    failing = project(tmp_path / "bad", {"mode": ["crash"]})
    assert sweep_cli("run", failing, "--runs-dir", tmp_path / "r1", "--launcher", "spawn").exit_code == 1
    # A bad flags file: one line naming the file and the key, exit 2, nothing run or written.
    broken = project(tmp_path / "broken", {"dropout": {"min": 0.5, "max": 0.1}})
    result = sweep_cli("run", broken, "--runs-dir", tmp_path / "r2")
    line = one_error_line(result, 2)
    assert str(broken) in line and "flags.dropout" in line
    assert not (tmp_path / "r2").exists()
    unknown = project(tmp_path / "unknown", {"dropout": [0.1]}, trails=3)
    line = one_error_line(sweep_cli("run", unknown, "--runs-dir", tmp_path / "r3"), 2)
    assert "trails" in line and "unknown key" in line
    assert not (tmp_path / "r3").exists()
    # Bad usage.
    result = sweep_cli("run", ok, "--runs-dir", tmp_path / "r4", "--jobs", "lots")
    assert "--jobs" in one_error_line(result, 2)
    assert not (tmp_path / "r4").exists()
    assert sweep_cli("run", ok, "--runs-dir", tmp_path / "r5", "--trials", "0").exit_code == 2
    assert sweep_cli("frobnicate").exit_code == 2
    assert sweep_cli("ls", "--runs-dir", sweeps.runs, "--top", "0").exit_code == 2
    assert not (tmp_path / "r5").exists()


def _commands() -> list[str]:
    names = sorted(typer.main.get_command(app).commands)
    assert {"run", "ls", "show", "compare", "clean", "purge"} <= set(names)
    return names


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command):
    result = sweep_cli(command, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.stdout and command in result.stdout
    assert len(result.stdout.splitlines()) > 3


def test_version():
    result = sweep_cli("--version")
    assert result.exit_code == 0
    version = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert result.stdout == f"sweep {version}\n"


@pytest.mark.parametrize("command", _commands())
def test_help_says_what_options_take(command):
    """Brackets in a help text are text, not markup; a switch shows no value to give it."""
    text = sweep_cli(command, "--help").stdout
    assert "<bool>" not in text and "BOOLEAN" not in text
    for line in text.splitlines():
        if re.match(r"\s+(-\w, )?--(smoke|dry-run|asc|failed|all|yes|help)\b", line):
            assert re.match(r"\s+(-\w, )?--[\w-]+\s{2,}\S", line), line  # the name, then its help
    if command == "run":
        assert "a [list] or a {min: .., max: ..} range" in " ".join(text.split())


def test_one_is_singular(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1]})
    dry = sweep_cli("run", flags_file, "--dry-run")
    assert dry.stderr == "dry run: 1 trial; nothing was run or written\n"
    runs = tmp_path / "runs"
    done = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert "1 trial;" in done.stderr and "1 trials" not in done.stderr
    name = run_dirs(runs)[0].name
    assert sweep_cli("clean", name, "--runs-dir", runs).stderr == f"archived 1 run to {runs / 'archive'}\n"
    assert sweep_cli("purge", "--runs-dir", runs).stderr == \
        "Error: purge would delete 1 archived run; pass --yes to confirm\n"
    assert sweep_cli("purge", "--yes", "--runs-dir", runs).stderr == "deleted 1 archived run\n"


def test_every_command_appears_in_readme():
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing"
    text = readme.read_text()
    missing = [c for c in _commands() if not re.search(rf"\bsweep {c}\b", text)]
    assert missing == [], f"commands not in README.md: {missing}"
