"""The board after ``--resume`` covers the whole sweep (issue 10, point 9): its rows, its totals,
its JUnit report and its exit status count every session of the sweep, not just the last one."""

from __future__ import annotations

import signal
import subprocess
import sys
import xml.etree.ElementTree as ET

from sweep import rundir

from helpers import SCRIPTS, killed_on_exit, project, python_env, run_dirs, sweep_cli, wait_for

SCRIPT = SCRIPTS / "reliability" / "trial.py"  # argparse; --sleep, and --mode=crash raises


def statuses(runs) -> list[str]:
    return [rundir.read_run(d).status for d in run_dirs(runs, by_trial=False)]


def test_the_board_after_resume_covers_the_whole_sweep(tmp_path):
    flags_file = project(tmp_path / "proj", {"a": [1, 2, 3, 4], "sleep": 0.4}, script=SCRIPT, trials=4, seed=2)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs), "--launcher", "spawn"]
    with killed_on_exit(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=python_env())) as first:
        assert wait_for(lambda: statuses(runs).count("completed") == 1 and "running" in statuses(runs), first)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=30)
    assert first.returncode == 130, err
    before = {d.name for d in run_dirs(runs, by_trial=False)}
    assert sorted(statuses(runs)) == ["completed", "interrupted"]

    report = tmp_path / "junit.xml"
    second = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--resume", "last",
                       "--junit-xml", report)
    assert second.exit_code == 0, second.output
    ids = {d.name for d in run_dirs(runs, by_trial=False)}
    assert len(ids) == 5 and before < ids  # the interrupted trial ran again: 4 completed, 1 interrupted
    shown = {line.split()[0] for line in second.stdout.splitlines()[2:] if line.strip()}
    assert shown == ids, "the board lists every run of the sweep, the first session's too"
    sweep_id = rundir.read_run(run_dirs(runs)[0]).sweep
    assert second.stderr.splitlines()[-1] == f"sweep {sweep_id}: 4 completed, 1 interrupted and run again"
    suite = ET.parse(report).getroot()  # the trial that ran again fails nothing: it is skipped
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["5", "0", "0", "1"]
    (again,) = [c.find("skipped") for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert again.get("message") == "the sweep was interrupted; run again on resume"


def test_a_failure_in_an_earlier_session_still_fails_the_sweep(tmp_path):
    """Stopped by max_failures, then resumed with the cause fixed: the sweep had a failed trial,
    so the totals say so and the exit status is 1."""
    root = tmp_path / "proj"
    flags_file = project(root, {"a": [1, 2, 3], "mode": "crash"}, script=SCRIPT, trials=3, max_failures=1)
    runs = tmp_path / "runs"
    first = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert first.exit_code == 1 and statuses(runs) == ["failed"]
    flags_file.write_text(flags_file.read_text().replace("mode: crash", "mode: ok"))
    second = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--resume", "last")
    assert sorted(statuses(runs)) == ["completed", "completed", "failed"]
    assert second.exit_code == 1, second.output
    assert second.stderr.splitlines()[-1].endswith(": 2 completed, 1 failed")
    assert "exit code 1: RuntimeError: boom: the model exploded" in second.stdout
