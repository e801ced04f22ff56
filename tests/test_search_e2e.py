"""Samplers, pruners and importance end to end: real ``python -m sweep run`` processes with
``--launcher spawn`` and stdlib-only scripts (tests/scripts/search), so each trial costs
tens of milliseconds. Nothing here asserts on timings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from itertools import pairwise
from pathlib import Path

import pytest

from helpers import alive, killed_on_exit, wait_for, written

SCRIPTS = Path(__file__).resolve().parent / "scripts" / "search"
CURVE = SCRIPTS / "curve.py"
POINT = SCRIPTS / "point.py"
ODD = SCRIPTS / "odd_steps.py"
EPOCHS = 12


def sweep(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "sweep", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def flags_file(tmp_path: Path, body: str, script: Path = CURVE, name: str = "flags.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"script: {script}\n" + textwrap.dedent(body))
    return path


def runs(runs_dir: Path) -> list[dict]:
    """Every run directory: run.json plus flags, metrics and the logged history."""
    out = []
    for path in sorted(runs_dir.iterdir()):
        if path.name.startswith(".") or not (path / "run.json").is_file():
            continue  # .sweep (sampler state), a run directory still being staged
        hist = []
        if (path / "metrics.jsonl").is_file():
            hist = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line]
        out.append({
            "path": path, "info": json.loads((path / "run.json").read_text()),
            "flags": json.loads((path / "flags.json").read_text()),
            "metrics": json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {},
            "hist": hist,
        })
    return sorted(out, key=lambda r: r["info"]["trial"])


def by_status(all_runs: list[dict], status: str) -> list[dict]:
    return [r for r in all_runs if r["info"]["status"] == status]


def check_pruned(run: dict, epochs: int = EPOCHS) -> int:
    """A pruned run: the reason names the step the pruner stopped it at; ``steps`` is the last
    step it reached (a step or two later if it ran on before SIGTERM landed); metrics as last
    logged; its processes gone. Returns the step it was pruned at."""
    info = run["info"]
    assert info["status"] == "pruned"
    steps = info["steps"]
    match = re.fullmatch(r"pruned at step (\d+)", info["reason"] or "")
    assert match, info["reason"]
    at = int(match.group(1))
    assert isinstance(steps, int) and 0 <= at <= steps < epochs
    assert run["hist"] and run["hist"][-1]["step"] == steps
    assert run["metrics"]["eval_accuracy"] == pytest.approx(run["hist"][-1]["eval_accuracy"])
    for pid in map(int, written(run["path"], "pids.txt").read_text().split()):
        assert not alive(pid), f"process {pid} of pruned run {run['path'].name} still runs"
    return at


# ---------------------------------------------------------------- samplers


SAMPLER_SPACES = {
    "random": "x: {min: 0.0, max: 1.0}\n  y: {min: 0.001, max: 1.0, log: true}\n"
              "  z: {min: 0, max: 9, int: true, step: 3}",
    "qmc": "x: {min: 0.0, max: 1.0}\n  y: {min: 0.001, max: 1.0, log: true}\n"
           "  z: {min: 0, max: 9, int: true, step: 3}",
    "tpe": "x: {min: 0.0, max: 1.0}\n  y: {min: 0.001, max: 1.0, log: true}\n  z: [0, 1, 2]",
    "grid": "x: [0.1, 0.3, 0.5]\n  y: [1.0, 2.0]\n  z: 4",
}


@pytest.mark.parametrize("name", ["random", "grid", "tpe", "qmc"])
def test_sampler_runs_and_is_reproducible(tmp_path: Path, name: str) -> None:
    # TPE needs more than its 10 random start-up trials to use its model.
    trials = 13 if name == "tpe" else 6
    path = flags_file(tmp_path, f"flags:\n  {SAMPLER_SPACES[name]}\ntrials: {trials}\nseed: 7\n", POINT)
    seen = []
    for i in range(2):
        sweep("run", str(path), "-d", f"runs{i}", "--sampler", name, "--launcher", "spawn", "--jobs", "1",
              cwd=tmp_path)
        done = runs(tmp_path / f"runs{i}")
        assert [r["info"]["trial"] for r in done] == list(range(trials))
        assert all(r["info"]["status"] == "completed" for r in done)
        seen.append([r["flags"] for r in done])
    assert seen[0] == seen[1]
    points = [tuple(sorted(f.items())) for f in seen[0]]
    assert len(set(points)) == trials  # no point asked twice
    if name == "grid":
        assert sorted((f["x"], f["y"]) for f in seen[0]) == [(x, y) for x in (0.1, 0.3, 0.5) for y in (1.0, 2.0)]
        assert {f["z"] for f in seen[0]} == {4}


def test_tpe_with_two_jobs_uses_constant_liar(tmp_path: Path) -> None:
    from sweep import samplers
    from sweep import spec as specs

    path = flags_file(tmp_path, "flags:\n  x: {min: 0.0, max: 1.0}\n  y: {min: 0.0, max: 1.0}\n"
                      "  sleep: 0.03\ntrials: 14\nseed: 3\nsampler: tpe\n", CURVE)
    sampler = samplers.sampler(specs.load(path))
    assert getattr(sampler, "_constant_liar", None) is True
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", "--jobs", "2", cwd=tmp_path)
    done = runs(tmp_path / "runs")
    assert len(done) == 14 and all(r["info"]["status"] == "completed" for r in done)
    points = [(r["flags"]["x"], r["flags"]["y"]) for r in done]
    assert all(a != b for a, b in pairwise(points))
    assert len(set(points)) == len(points)
    # The two jobs really ran side by side.
    spans = [(r["info"]["start"], r["info"]["end"]) for r in done]
    assert any(a[0] < b[1] and b[0] < a[1] for a, b in pairwise(spans))


# ---------------------------------------------------------------- pruners


def curve_flags(sleep: float = 0.04) -> str:
    """The curve script's space. Epochs are slept, 40 ms by default, so trials still run when
    the driver (which reads metrics every 0.1 s) hears the pruner say stop."""
    return f"flags:\n  x: {{min: 0.0, max: 1.0}}\n  y: {{min: 0.0, max: 1.0}}\n  epochs: {EPOCHS}\n  sleep: {sleep}\n"


@pytest.mark.parametrize("name", ["median", "hyperband", "asha"])
def test_pruner_stops_hopeless_trials(tmp_path: Path, name: str) -> None:
    path = flags_file(tmp_path, curve_flags() + "  child: true\ntrials: 14\nseed: 1\n")
    sweep("run", str(path), "-d", "runs", "--pruner", name, "--launcher", "spawn", cwd=tmp_path)
    done = runs(tmp_path / "runs")
    pruned, completed = by_status(done, "pruned"), by_status(done, "completed")
    assert pruned and completed and len(pruned) + len(completed) == 14
    for run in pruned:
        check_pruned(run)
    # A plain script dies of the SIGTERM, well before its last epoch.
    assert any(r["info"]["exit_code"] == -signal.SIGTERM and r["info"]["steps"] < EPOCHS - 1
               for r in pruned)
    for run in completed:
        assert run["info"]["steps"] == EPOCHS - 1 and run["info"]["reason"] is None
    # ls shows pruned runs with the step they reached and their last metrics.
    rows = json.loads(sweep("ls", "-d", "runs", "--format", "json", cwd=tmp_path).stdout)
    rows = {row["id"]: row for row in rows}
    for run in pruned:
        row = rows[run["path"].name]
        assert row["status"] == "pruned"
        assert row["steps"] == run["info"]["steps"]
        assert row["eval_accuracy"] == pytest.approx(run["hist"][-1]["eval_accuracy"])
        assert row["train_loss"] == pytest.approx(run["hist"][-1]["train_loss"])


def test_pruning_from_printed_steps(tmp_path: Path) -> None:
    path = flags_file(tmp_path, curve_flags() + "  report: print\ntrials: 12\nseed: 2\n"
                      "pruner: {name: median, startup_trials: 3}\n")
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    done = runs(tmp_path / "runs")
    pruned = by_status(done, "pruned")
    assert pruned and by_status(done, "completed")
    for run in pruned:
        check_pruned(run)
        assert all(rec.get("source") == "stdout" for rec in run["hist"])
        assert "epoch" in (run["path"] / "output.log").read_text()


def test_should_stop_lets_a_script_end_cleanly(tmp_path: Path) -> None:
    # A long sleep per epoch: SIGTERM arrives mid-epoch and the script ends at the next
    # check, well before the grace period's SIGKILL.
    path = flags_file(tmp_path, curve_flags(0.06) + "  polite: true\ntrials: 6\nseed: 1\n"
                      "pruner: {name: median, startup_trials: 2}\n")
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    done = runs(tmp_path / "runs")
    pruned = by_status(done, "pruned")
    assert pruned
    stopped = 0
    for run in pruned:
        check_pruned(run)
        assert run["info"]["exit_code"] == 0  # it ended itself: no SIGTERM death, no SIGKILL
        assert not (run["path"] / ".stop").exists()
        out = (run["path"] / "output.log").read_text()
        if f"stopping cleanly before step {run['info']['steps'] + 1}" in out:
            assert "done" not in out.split()
            stopped += 1
    assert stopped
    for run in by_status(done, "completed"):
        assert "stopping cleanly" not in (run["path"] / "output.log").read_text()


def test_pruning_with_two_jobs(tmp_path: Path) -> None:
    path = flags_file(tmp_path, curve_flags() + "trials: 14\nseed: 5\njobs: 2\n"
                      "pruner: {name: median, startup_trials: 3}\n")
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    done = runs(tmp_path / "runs")
    pruned = by_status(done, "pruned")
    assert pruned and len(pruned) + len(by_status(done, "completed")) == 14
    for run in pruned:
        check_pruned(run)
    spans = sorted((r["info"]["start"], r["info"]["end"]) for r in done)
    assert any(a[1] > b[0] for a, b in pairwise(spans))  # trials overlapped


def test_pruning_survives_interrupt_and_resume(tmp_path: Path) -> None:
    trials = 16
    path = flags_file(tmp_path, curve_flags(0.03) + f"trials: {trials}\nseed: 4\n"
                      "pruner: {name: median, startup_trials: 3}\n")
    runs_dir = tmp_path / "runs"
    with killed_on_exit(subprocess.Popen([sys.executable, "-m", "sweep", "run", str(path), "-d", "runs",
                                          "--launcher", "spawn"], cwd=tmp_path, env=dict(os.environ, NO_COLOR="1"),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
        def mid_trial() -> bool:  # 5 ended and one running: an interrupt between trials stops none
            statuses = [r["info"]["status"] for r in runs(runs_dir)] if runs_dir.is_dir() else []
            return sum(s != "running" for s in statuses) >= 5 and "running" in statuses

        wait_for(mid_trial, proc, timeout=120, poll=0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = {r["path"].name: r["info"]["status"] for r in runs(runs_dir)}
    assert "interrupted" in first.values()
    assert sum(s in ("completed", "pruned") for s in first.values()) < trials

    sweep("run", str(path), "-d", "runs", "--resume", "--launcher", "spawn", cwd=tmp_path)
    done = runs(runs_dir)
    new = [r for r in done if r["path"].name not in first]
    assert new
    ended = [r for r in done if r["info"]["status"] in ("completed", "pruned")]
    assert len(ended) == trials
    assert by_status(new, "pruned"), "no trial was pruned after the resume"
    for run in by_status(done, "pruned"):
        check_pruned(run)


def test_pruner_skips_steps_optuna_refuses(tmp_path: Path) -> None:
    # A negative step used to crash the sweep (Optuna raises); a step seen twice made Optuna warn.
    path = flags_file(tmp_path, "flags:\n  x: {min: 0.0, max: 1.0}\ntrials: 6\nseed: 3\n"
                      "pruner: {name: median, startup_trials: 2}\n", ODD)
    proc = sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    assert "Traceback" not in proc.stderr and "already reported" not in proc.stderr
    done = runs(tmp_path / "runs")
    assert len(done) == 6 and all(r["info"]["status"] in ("completed", "pruned") for r in done)
    assert all(r["hist"][0]["step"] == -1 for r in done)  # the record keeps every value


# ---------------------------------------------------------------- importance


def test_importance_ranks_the_flag_that_matters(tmp_path: Path) -> None:
    path = flags_file(tmp_path, "flags:\n  x: {min: 0.0, max: 1.0}\n  y: {min: 0.0, max: 1.0}\n"
                      "trials: 20\nseed: 11\n", POINT)
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    table = sweep("importance", "-d", "runs", cwd=tmp_path).stdout.splitlines()
    assert table[0].split() == ["flag", "importance"]
    first, second = table[1].split(), table[2].split()
    assert first[0] == "flag_x" and float(first[1]) > 0.5
    assert second[0] == "flag_y" and float(second[1]) < float(first[1])
    rows = json.loads(sweep("importance", "last", "-d", "runs", "--format", "json", cwd=tmp_path).stdout)
    assert [r["flag"] for r in rows] == ["flag_x", "flag_y"]
    assert rows[0]["importance"] > 0.5
    assert sum(r["importance"] for r in rows) == pytest.approx(1.0, abs=0.01)
    # Without scikit-learn (which Optuna's fANOVA needs): one line that says so, no traceback.
    code = ("import sys; sys.modules['sklearn'] = None; from sweep.cli import main; "
            "sys.argv = ['sweep', 'importance', '-d', 'runs']; main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["Error: sweep importance needs scikit-learn for Optuna's fANOVA: "
                                        "pip install scikit-learn"]


def test_importance_when_no_flag_made_a_difference(tmp_path: Path) -> None:
    path = flags_file(tmp_path, "flags:\n  x: {min: 0.0, max: 1.0}\n  y: {min: 0.0, max: 1.0}\n"
                      "  constant: true\ntrials: 5\nseed: 1\n", ODD)
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    proc = sweep("importance", "-d", "runs", cwd=tmp_path, check=1)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: every completed run of sweep ")
    assert lines[0].endswith("has eval_accuracy = 0.5: no flag made a difference")


def test_importance_with_too_few_runs_says_how_many_it_needs(tmp_path: Path) -> None:
    path = flags_file(tmp_path, "flags:\n  x: {min: 0.0, max: 1.0}\n  y: {min: 0.0, max: 1.0}\n"
                      "trials: 3\nseed: 1\n", POINT)
    sweep("run", str(path), "-d", "runs", "--launcher", "spawn", cwd=tmp_path)
    proc = sweep("importance", "-d", "runs", cwd=tmp_path, check=1)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ") and "3 completed runs" in lines[0] and "at least 5" in lines[0]
