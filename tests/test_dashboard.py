"""``sweep dashboard``: optuna-dashboard on a real sweep's journal, checked through the running
server's own HTTP API (the JSON its web page reads)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sweep import rundir

from helpers import SCRIPTS, project, python_env, run_dirs, sweep_cli

pytest.importorskip("optuna_dashboard")  # the dashboard extra, part of the test extra
FLAGS = {"lr": {"min": 0.0001, "max": 1.0, "log": True}, "dropout": [0.0, 0.2, 0.5], "optimizer": ["sgd", "adam"]}


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_dashboard_serves_the_sweeps_study_with_each_run(tmp_path: Path) -> None:
    flags = project(tmp_path, FLAGS, script=SCRIPTS / "report" / "train.py", trials=4, seed=3,
                    metric="eval_accuracy")
    runs = tmp_path / "runs"
    sweep_cli("run", flags, "--runs-dir", runs)
    ended = {p.name: rundir.read_run(p) for p in run_dirs(runs)}
    sweep_id = next(iter(ended.values())).sweep
    proc = subprocess.Popen([sys.executable, "-m", "sweep", "dashboard", "--runs-dir", str(runs), "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=python_env(), cwd=tmp_path)
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        prefix = f"optuna-dashboard for sweep {sweep_id} at http://127.0.0.1:"
        assert line.startswith(prefix) and line.endswith("/dashboard/ (Ctrl-C stops it)\n"), line
        base = line.split(" at ")[1].split("/dashboard/")[0]
        (summary,) = get(f"{base}/api/studies")["study_summaries"]
        assert summary["study_name"] == sweep_id and summary["directions"] == ["maximize"]
        trials = get(f"{base}/api/studies/{summary['study_id']}")["trials"]
        assert len(trials) == len(ended) == 4
        for trial in trials:
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            run = ended[attrs["run_id"]]
            assert attrs["run_dir"] == str(run.path.resolve())
            assert json.loads(attrs["metrics"]) == run.metrics
            params = {p["name"]: p["param_external_value"] for p in trial["params"]}
            assert params == {k: str(v) for k, v in run.flags.items() if k in FLAGS}
            if run.status == "completed":
                assert trial["state"] == "Complete" and trial["values"] == [run.metrics["eval_accuracy"]]
            else:
                assert trial["state"] == "Fail"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 130


def test_dashboard_without_the_extra_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    result = sweep_cli("dashboard", "--runs-dir", tmp_path)
    assert (result.exit_code, result.stderr) == (
        1, "Error: sweep dashboard needs optuna-dashboard, an optional extra: pip install 'sweep[dashboard]'\n")


def test_dashboard_of_no_sweep_is_one_line(tmp_path: Path) -> None:
    result = sweep_cli("dashboard", "--runs-dir", tmp_path)
    assert (result.exit_code, result.stderr) == (1, f"Error: no sweeps in {tmp_path}\n")
