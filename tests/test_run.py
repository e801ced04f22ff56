"""``sweep run`` end to end: real flags files, real trial processes, real run directories.

Trials run tests/scripts/probe.py, an unmodified stdlib argparse script that prints its
metrics and, when SWEEP_TEST_PROBES names a folder, records what it was given (argv,
environment, working directory) there. Most sweeps use ``--launcher spawn`` (a fresh python
per trial, ~30 ms); a few use the default warm fork launcher, whose server first imports torch.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import (
    SCRIPTS,
    flags_of,
    in_terminal,
    info,
    killed_on_exit,
    metrics_of,
    project,
    python_env,
    run_dirs,
    survivors,
    sweep_cli,
    wait_for,
)

RUN_FILES = {"run.json", "flags.json", "metrics.json", "metrics.jsonl", "output.log", "source", ".sweep-run"}
RUN_KEYS = {"format", "id", "sweep", "trial", "status", "start", "end", "duration", "exit_code",
            "command", "versions"}


# ---------------------------------------------------------------- helpers


def probes(folder: Path) -> dict[str, dict[str, Any]]:
    """Probe records by run id."""
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def accuracy(flags: dict[str, Any]) -> float:
    """What probe.py prints last for these flags (computed as it does)."""
    epochs = flags.get("epochs", 3)
    return (0.5 + flags.get("dropout", 0.1) / 2) * epochs / epochs


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---------------------------------------------------------------- an unmodified script


@pytest.mark.parametrize("launcher", ["spawn", "fork"])
def test_unmodified_argparse_script_gets_flags_env_and_own_cwd(tmp_path, probe_dir, launcher):
    """Flags as --name=value (a switch bare or absent), SWEEP_RUN_DIR and SWEEP_FLAGS in the
    environment, one working directory per trial, and the flags file's folder readable."""
    flags_file = project(tmp_path / "proj", {
        "dropout": [0.1, 0.3],
        "wide": {"values": [True, False], "switch": True},
        "lr": 0.01,
    }, trials=10, seed=5)
    (tmp_path / "proj" / "data.txt").write_text("circles-v1\n")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", launcher,
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    dirs = run_dirs(runs)
    # A list-only space of 2 x 2 combinations stops after 4 trials, each combination once.
    assert len(dirs) == 4
    assert {(flags_of(d)["dropout"], flags_of(d)["wide"]) for d in dirs} == {
        (0.1, True), (0.1, False), (0.3, True), (0.3, False)}
    seen = probes(probe_dir)
    assert set(seen) == {d.name for d in dirs}
    for d in dirs:
        flags, probe, rec = flags_of(d), seen[d.name], info(d)
        assert rec["status"] == "completed", rec
        assert rec["launcher"] == launcher
        expected = [f"--dropout={flags['dropout']!r}"] + (["--wide"] if flags["wide"] else []) + ["--lr=0.01"]
        assert probe["argv"] == expected
        assert flags["lr"] == 0.01
        env = probe["env"]
        assert os.path.isabs(env["SWEEP_RUN_DIR"])
        assert Path(env["SWEEP_RUN_DIR"]) == d.resolve()
        assert json.loads(env["SWEEP_FLAGS"]) == flags
        # It runs in the flags file's folder (what it writes there lands in its run: see
        # tests/test_workdir.py).
        assert Path(probe["cwd"]) == (tmp_path / "proj").resolve()
        assert (d / "work" / "out.txt").read_text().startswith(f"plain|{flags['dropout']}|")
        assert probe["out_ok"] is True
        assert probe["data"] == "circles-v1"
        assert metrics_of(d)["eval_accuracy"] == pytest.approx(accuracy(flags))
    assert not (tmp_path / "proj" / "out.txt").exists()
    assert (tmp_path / "proj" / "data.txt").read_text() == "circles-v1\n"


def test_flag_values_never_meet_a_shell(tmp_path, probe_dir):
    nasty = "`touch pwned_tick`; $(touch pwned); rm -rf keep && echo 'x' \"y\" | cat > pwned_pipe"
    root = tmp_path / "proj"
    flags_file = project(root, {"name": [nasty], "dropout": 0.2})
    (root / "keep").mkdir()
    (root / "keep" / "file").write_text("still here")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn",
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(runs)
    (probe,) = probes(probe_dir).values()
    assert probe["argv"] == [f"--name={nasty}", "--dropout=0.2"]
    assert flags_of(run)["name"] == nasty
    assert (root / "keep" / "file").read_text() == "still here"
    pwned = [p for p in tmp_path.rglob("pwned*")] + [p for p in Path.cwd().glob("pwned*")]
    assert pwned == []
    assert info(run)["command"][2:] == [f"--name={nasty}", "--dropout=0.2"]


def test_threads_are_shared_between_parallel_trials(tmp_path, probe_dir):
    cores = len(os.sched_getaffinity(0))
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.2, 0.3, 0.4], "sleep": 0.4})
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--jobs", "2",
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    seen = list(probes(probe_dir).values())
    assert len(seen) == 4
    share = str(max(1, cores // 2))
    for probe in seen:
        assert probe["env"]["OMP_NUM_THREADS"] == share
        assert probe["env"]["MKL_NUM_THREADS"] == share
        assert probe["out_ok"] is True  # each wrote and read back its own out.txt
    # Two at a time really ran at once (so the out.txt check above meant something).
    seen.sort(key=lambda p: p["start"])
    assert any(b["start"] < a["end"] for a, b in pairwise(seen))
    assert len({(run / "work" / "out.txt").read_text() for run in run_dirs(runs)}) == 4
    for run in run_dirs(runs):
        assert info(run)["threads"] == int(share)


def test_one_job_gets_every_core(tmp_path, probe_dir):
    cores = len(os.sched_getaffinity(0))
    flags_file = project(tmp_path / "proj", {"dropout": [0.1]})
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn",
                       "--jobs", "1", env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    (probe,) = probes(probe_dir).values()
    assert probe["env"]["OMP_NUM_THREADS"] == str(cores)


def test_timeout_fails_a_hanging_trial_and_the_sweep_goes_on(tmp_path, probe_dir):
    flags_file = project(tmp_path / "proj", {"mode": ["hang", "ok"]}, sampler="grid", timeout=1)
    runs = tmp_path / "runs"
    start = time.time()
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn",
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert time.time() - start < 30
    assert result.exit_code == 1, result.output
    by_mode = {flags_of(d)["mode"]: d for d in run_dirs(runs)}
    hung = info(by_mode["hang"])
    assert hung["status"] == "failed"
    assert hung["reason"].startswith("timed out"), hung["reason"]
    assert 1.0 <= hung["duration"] < 10
    assert info(by_mode["ok"])["status"] == "completed"
    assert not survivors([probes(probe_dir)[by_mode["hang"].name]["pid"]])


# ---------------------------------------------------------------- metrics, three ways


def test_metrics_from_sweep_log(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.2, 0.4], "epochs": 4}, script=SCRIPTS / "logged.py")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    for run in run_dirs(runs):
        flags = flags_of(run)
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        logged = [h for h in history if "train_loss" in h]
        assert [h["step"] for h in logged] == [0, 1, 2, 3]
        final = (0.5 + flags["dropout"] / 2) * 4 / 4
        assert logged[-1]["eval_accuracy"] == pytest.approx(final)
        # The last value wins, not the best or the first.
        assert metrics_of(run) == {"eval_accuracy": pytest.approx(final), "train_loss": pytest.approx(1 - final)}
        assert info(run)["steps"] == 3


def test_metrics_from_printed_lines_with_ansi_colours(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.3], "mode": "colour", "epochs": 3})
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(runs)
    assert "\x1b[32m" in (run / "output.log").read_text()  # the colours were really there
    final = accuracy({"dropout": 0.3, "epochs": 3})
    metrics = metrics_of(run)
    assert metrics["eval_accuracy"] == pytest.approx(final)
    assert metrics["loss"] == pytest.approx(1 - final)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["eval_accuracy"] for h in history if "eval_accuracy" in h] == pytest.approx(
        [final * 1 / 3, final * 2 / 3, final])


def test_metrics_from_the_flags_files_regexes(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.5], "mode": "regex"},
                         metric="score", metrics={"score": r"final score is ([0-9.]+)%"})
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    dirs = run_dirs(runs)
    assert len(dirs) == 2
    for run in dirs:
        assert metrics_of(run)["score"] == pytest.approx(0.5 + flags_of(run)["dropout"] / 2)
        assert info(run)["status"] == "completed"


def test_nan_and_inf_are_kept_and_rank_last(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": ["nan", "ok", "inf"], "dropout": 0.4}, sampler="grid")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 1, result.output
    by_mode = {flags_of(d)["mode"]: d for d in run_dirs(runs)}
    assert math.isnan(metrics_of(by_mode["nan"])["eval_accuracy"])
    assert math.isinf(metrics_of(by_mode["inf"])["eval_accuracy"])
    for mode in ("nan", "inf"):
        rec = info(by_mode[mode])
        assert rec["status"] == "failed"
        assert "eval_accuracy" in rec["reason"]
    for flip in ([], ["--asc"]):
        listed = sweep_cli("ls", "--runs-dir", runs, "--sort", "eval_accuracy", "--format", "json", *flip)
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.stdout)
        assert rows[0]["id"] == by_mode["ok"].name
        assert {r["eval_accuracy"] for r in rows[1:]} == {"nan", "inf"}
    # The sweep's own leaderboard ranks the finite value first too.
    table = [line for line in result.stdout.splitlines() if line.startswith("20")]
    assert table[0].split()[0] == by_mode["ok"].name


# ---------------------------------------------------------------- the run directory


def test_run_directory_layout_and_record(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.25], "name": "layout"}, seed=1)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(runs)
    # The documented files, plus the trial's own working directory.
    assert set(os.listdir(run)) - {"work"} == RUN_FILES
    assert not [p for p in run.rglob("*.tmp")]
    rec = info(run)
    assert RUN_KEYS <= set(rec)
    assert rec["format"] == 1
    assert rec["id"] == run.name
    assert rec["sweep"] and rec["sweep"] != rec["id"]
    assert rec["trial"] == 0
    assert rec["status"] == "completed"
    assert rec["exit_code"] == 0
    assert rec["start"] <= rec["end"]
    assert rec["duration"] == pytest.approx(rec["end"] - rec["start"], abs=0.01)
    assert rec["command"][1] == str((tmp_path / "proj" / "probe.py").resolve())
    assert rec["command"][2:] == ["--dropout=0.25", "--name=layout"]
    assert "python" in rec["versions"]
    assert flags_of(run) == {"dropout": 0.25, "name": "layout"}
    assert metrics_of(run)["eval_accuracy"] == pytest.approx(accuracy({"dropout": 0.25}))
    assert "eval_accuracy" in (run / "metrics.jsonl").read_text()
    assert "epoch 2 eval_accuracy" in (run / "output.log").read_text()
    source = run / "source"
    assert sorted(os.listdir(source)) == ["flags.yaml", "probe.py"]
    assert (source / "probe.py").read_bytes() == (SCRIPTS / "probe.py").read_bytes()
    assert (source / "flags.yaml").read_bytes() == flags_file.read_bytes()
    # Run directory names: UTC timestamp, then a suffix.
    stamp, _, suffix = run.name.partition("-")
    assert len(stamp) == 16 and stamp.endswith("Z") and suffix


def test_crash_exit_code_and_missing_metric_fail_but_the_sweep_goes_on(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": ["ok", "crash", "silent", "exit3"], "dropout": 0.2},
                         sampler="grid")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 1, result.output
    by_mode = {flags_of(d)["mode"]: info(d) for d in run_dirs(runs)}
    assert set(by_mode) == {"ok", "crash", "silent", "exit3"}
    assert by_mode["ok"]["status"] == "completed"
    crash = by_mode["crash"]
    assert crash["status"] == "failed"
    assert crash["exit_code"] == 1
    assert "Traceback (most recent call last)" in crash["error"]
    assert "RuntimeError: boom at dropout 0.2" in crash["error"]
    silent = by_mode["silent"]
    assert silent["status"] == "failed"
    assert silent["exit_code"] == 0
    assert "eval_accuracy" in silent["reason"]
    exit3 = by_mode["exit3"]
    assert exit3["status"] == "failed"
    assert exit3["exit_code"] == 3
    assert "giving up" in exit3["error"]
    assert result.stderr.splitlines()[-1].endswith(": 1 completed, 3 failed")


# ---------------------------------------------------------------- options


def test_dry_run_prints_commands_and_writes_nothing(tmp_path):
    root = tmp_path / "proj"
    nasty = "$(touch pwned)"
    flags_file = project(root, {"dropout": {"min": 0.0, "max": 0.5}, "name": [nasty, "b"],
                                "wide": {"values": [True, False], "switch": True}}, trials=3, seed=11)
    before = files_under(tmp_path)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--dry-run")  # default launcher
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == before
    assert not runs.exists()
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["trial 0", "trial 1", "trial 2"]
    planned = []
    for line in lines:
        argv = shlex.split(line.split(": ", 1)[1])
        assert argv[1] == str((root / "probe.py").resolve())
        assert all(a.startswith("--") for a in argv[2:])
        assert not any(a.startswith("--wide=") for a in argv)
        planned.append(argv[2:])
    # The same seed runs exactly the planned commands.
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    assert [info(d)["command"][2:] for d in run_dirs(runs)] == planned


def test_smoke_applies_the_smoke_section(tmp_path, probe_dir):
    flags_file = project(tmp_path / "proj", {"dropout": {"min": 0.1, "max": 0.5}, "epochs": [5, 10]},
                         trials=6, smoke={"trials": 2, "flags": {"epochs": 1}})
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--smoke",
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    dirs = run_dirs(runs)
    assert len(dirs) == 2
    assert [flags_of(d)["epochs"] for d in dirs] == [1, 1]
    for probe in probes(probe_dir).values():
        assert "--epochs=1" in probe["argv"]


def test_junit_xml_one_case_per_trial(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": ["ok", "crash", "silent"], "dropout": 0.3}, sampler="grid")
    runs = tmp_path / "runs"
    report = tmp_path / "reports" / "sweep.xml"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--junit-xml", report)
    assert result.exit_code == 1, result.output
    suite = ET.parse(report).getroot()
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    assert len(cases) == 3 == len(run_dirs(runs))
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "2"
    failures = {c.get("name"): c.find("failure") for c in cases}
    crashed = [f for name, f in failures.items() if "mode=crash" in name]
    assert len(crashed) == 1 and crashed[0] is not None
    assert "RuntimeError: boom at dropout 0.3" in crashed[0].text
    ok = [f for name, f in failures.items() if "mode=ok" in name]
    assert ok == [None]
    silent = [f for name, f in failures.items() if "mode=silent" in name]
    assert silent[0] is not None and "eval_accuracy" in silent[0].get("message")


def test_same_seed_same_flags(tmp_path):
    root = tmp_path / "proj"
    project(root, {"dropout": 0.1})
    # Written the way people write it: PyYAML alone would read 1e-5 as text.
    flags_file = root / "flags.yaml"
    flags_file.write_text(
        "script: probe.py\n"
        "trials: 3\n"
        "flags:\n"
        "  dropout: {min: 0.0, max: 0.6}\n"
        "  lr: {min: 1e-5, max: 1e-1, log: true}\n"
        "  hidden: {min: 8, max: 512, int: true}\n"
    )

    def sweep_flags(runs: Path, seed: int) -> list[dict[str, Any]]:
        result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--seed", seed)
        assert result.exit_code == 0, result.output
        return [flags_of(d) for d in run_dirs(runs)]

    first = sweep_flags(tmp_path / "a", 42)
    again = sweep_flags(tmp_path / "b", 42)
    other = sweep_flags(tmp_path / "c", 43)
    assert len(first) == 3
    assert first == again
    assert first != other
    for flags in first:
        assert 1e-5 <= flags["lr"] <= 1e-1 and isinstance(flags["hidden"], int)


def test_grid_runs_every_combination(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.2, 0.3], "name": ["a", "b"], "lr": 0.5},
                         sampler="grid")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    combos = [(f["dropout"], f["name"], f["lr"]) for f in map(flags_of, run_dirs(runs))]
    assert sorted(combos) == [(d, n, 0.5) for d in (0.1, 0.2, 0.3) for n in ("a", "b")]


def test_random_list_space_stops_after_every_combination(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.2, 0.3], "name": ["a", "b"]}, trials=50)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    combos = [(f["dropout"], f["name"]) for f in map(flags_of, run_dirs(runs))]
    assert len(combos) == 6 == len(set(combos))


# ---------------------------------------------------------------- processes


def test_two_sweeps_at_once_share_a_runs_dir(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.2, 0.3, 0.4], "sleep": 0.05}, trials=4)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs), "--launcher", "spawn"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
             for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    dirs = run_dirs(runs)
    assert len(dirs) == 8 == len({d.name for d in dirs})
    assert len({info(d)["sweep"] for d in dirs}) == 2
    for d in dirs:
        assert set(os.listdir(d)) - {"work"} == RUN_FILES
        rec = info(d)
        assert rec["status"] == "completed" and rec["id"] == d.name
        assert metrics_of(d)["eval_accuracy"] == pytest.approx(accuracy(flags_of(d)))
    # Without a terminal: one plain line per trial on stderr, no colour anywhere.
    for stdout, stderr in outs:
        assert "\x1b[" not in stdout and "\x1b[" not in stderr
        assert [line.split("]")[0] for line in stderr.splitlines() if line.startswith("[")] == [
            "[1/4", "[2/4", "[3/4", "[4/4"]
        assert "completed" in stdout


@pytest.mark.parametrize("launcher", ["spawn", "fork"])
def test_sigint_interrupts_with_status_130(tmp_path, probe_dir, launcher):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.2, 0.3, 0.4], "mode": "hang"}, trials=4, jobs=2)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs), "--launcher", launcher]
    with killed_on_exit(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=python_env(SWEEP_TEST_PROBES=str(probe_dir)))) as proc:
        wait_for(lambda: len(probes(probe_dir)) >= 2, proc, timeout=30, poll=0.05)
        assert len(probes(probe_dir)) == 2, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    dirs = run_dirs(runs)
    assert len(dirs) == 2  # no trial started after the interrupt
    for d in dirs:
        assert info(d)["status"] == "interrupted"
    for probe in probes(probe_dir).values():
        assert not survivors([probe["pid"]]), f"trial process {probe['pid']} survived"
    listed = sweep_cli("ls", "--runs-dir", runs, "--format", "json")
    assert {r["status"] for r in json.loads(listed.stdout)} == {"interrupted"}


def test_live_bar_on_a_terminal_plain_lines_with_no_color(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": [0.1, 0.3]})
    cmd = [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(tmp_path / "runs"),
           "--launcher", "spawn"]
    env = python_env(TERM="xterm-256color")
    code, shown, _ = in_terminal(cmd, env, stderr_too=True, columns=250)
    assert code == 0, shown
    assert "\x1b[" in shown
    # The bar: trials done/total, failures, best value so far, elapsed and ETA.
    assert "2/2" in shown and "failed 0" in shown and "eta" in shown
    best = max(accuracy({"dropout": d}) for d in (0.1, 0.3))
    assert f"best eval_accuracy {best:.6g}" in shown
    assert "[1/2] trial" not in shown
    code, shown, _ = in_terminal(cmd, {**env, "NO_COLOR": "1"}, stderr_too=True, columns=250)
    assert code == 0, shown
    assert "\x1b" not in shown
    assert "[1/2] trial" in shown and "[2/2] trial" in shown
    assert "completed" in shown


def test_trials_option_overrides_the_flags_file(tmp_path):
    flags_file = project(tmp_path / "proj", {"dropout": {"min": 0.0, "max": 1.0}}, trials=5)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--trials", "2")
    assert result.exit_code == 0, result.output
    assert len(run_dirs(runs)) == 2


def test_sweep_api_works_by_hand_outside_a_sweep(tmp_path):
    env = python_env()
    for key in ("SWEEP_RUN_DIR", "SWEEP_FLAGS"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, str(SCRIPTS / "logged.py"), "--dropout=0.3", "--epochs", "2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert proc.returncode == 0, proc.stderr
    final = (0.5 + 0.3 / 2) * 2 / 2
    assert proc.stdout.splitlines()[-2] == f"step 1: eval_accuracy={final:.6g} train_loss={1 - final:.6g}"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "logged.py"), "--dropuot=0.3"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert proc.returncode == 2
    assert "dropuot" in proc.stderr and "dropout" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_module_instead_of_script(tmp_path, probe_dir):
    launcher = "spawn"
    root = tmp_path / "proj"
    project(root, {"dropout": 0.1})
    flags_file = root / "flags.yaml"
    flags_file.write_text(yaml.safe_dump({"module": "probe", "flags": {"dropout": [0.2, 0.4]}}, sort_keys=False))
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", launcher,
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    dirs = run_dirs(runs)
    assert len(dirs) == 2
    for d in dirs:
        rec = info(d)
        assert rec["command"][1:3] == ["-m", "probe"]
        assert rec["command"][3:] == [f"--dropout={flags_of(d)['dropout']!r}"]
        assert metrics_of(d)["eval_accuracy"] == pytest.approx(accuracy(flags_of(d)))


def test_the_board_after_a_large_sweep_shows_its_best_fifty_in_order(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "t.py").write_text("import sys\nprint('eval_accuracy:', sys.argv[1].split('=')[1])\n")
    (root / "flags.yaml").write_text(yaml.safe_dump(
        {"script": "t.py", "trials": 60, "flags": {"x": [i / 100 for i in range(60)]}}))
    runs = tmp_path / "runs"
    result = sweep_cli("run", root / "flags.yaml", "--runs-dir", runs, "--launcher", "spawn", "--jobs", "2")
    assert result.exit_code == 0, result.output
    by_value = sorted(run_dirs(runs), key=lambda r: -metrics_of(r)["eval_accuracy"])
    assert len(by_value) == 60
    shown = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("2")]
    assert shown == [r.name for r in by_value[:50]]
    sweep_id = info(by_value[0])["sweep"]
    assert f"the best 50 of 60 runs; all of them: sweep ls --sweep {sweep_id}" in result.stderr
