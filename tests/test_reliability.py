"""Reliability (issue 5): each promise, and a test section that tries to break it.

1. resume   2. kill -9   3. Ctrl-C / SIGTERM   4. bad trials   5. bad files
6. many writers   8. security   (7, the bad-flags corpus and hypothesis, is tests/test_spec.py)

Trials run tests/scripts/reliability/trial.py: a stdlib argparse script that records its pid
(``trial.pid``) and argv (``argv.json``) in its run directory and misbehaves on request
(``--mode``). Sweeps use ``--launcher spawn`` (a fresh python per trial, fast); the kill -9
and Ctrl-C sections also cover the default warm ``fork`` launcher. Sweeps that get signals
run as real ``python -m sweep`` processes; the others run in-process through CliRunner.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweep import rundir, trial

from helpers import SCRIPTS, alive, ls_json, project, python_env, run_dirs, survivors, sweep_cli, wait_for

SCRIPT = SCRIPTS / "reliability" / "trial.py"
OURS = (b"trial.py", b"forkserver")  # the processes a sweep here starts (for alive)
KILLS = 22  # kill -9 of a spawn sweep; the fork section adds 2
SECRET = "AKIAFAKE-do-not-leak-7f3a9c"


# ---------------------------------------------------------------- helpers


class Sweep:
    """``python -m sweep run ...`` as a real process, its output in files (never a full pipe)."""

    count = 0

    def __init__(self, tmp: Path, flags_file: Path, runs: Path, *args: Any, env: dict[str, str] | None = None):
        Sweep.count += 1
        self.out_path = tmp / f"sweep-{Sweep.count}.out"
        self.err_path = tmp / f"sweep-{Sweep.count}.err"
        cmd = [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs), *map(str, args)]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env or python_env())
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def poll(self) -> int | None:  # for wait_for, as a Popen
        return self.proc.poll()

    def wait(self, timeout: float = 90) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"sweep did not end in {timeout} s: {self.err}") from err

    def kill9(self) -> bool:
        """SIGKILL now; whether it was still running (else it had ended by itself)."""
        if self.proc.poll() is not None:
            return False
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        return True

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")


def records(runs: Path) -> list[rundir.Run]:
    return [rundir.read_run(d) for d in run_dirs(runs, by_trial=False)]


def of_sweep(runs: Path, sweep_id: str) -> list[rundir.Run]:
    return [r for r in records(runs) if r.sweep == sweep_id]


def sweep_ids(runs: Path) -> list[str]:
    """Sweep records under runs/.sweep, oldest first."""
    recs = []
    for path in (runs / rundir.STATE_DIR).glob("s*.json"):
        rec = json.loads(path.read_text())
        recs.append((rec["created"], rec["id"]))
    return [i for _, i in sorted(recs)]


def combo(run: rundir.Run, keys: tuple[str, ...]) -> tuple:
    return tuple(run.flags[k] for k in keys)


def assert_whole(run_dir: Path, trial_wrote_junk: bool = False) -> None:
    """Every file of the run is whole: each JSON file parses, each JSON-lines line too (unless
    the trial itself appended junk to its metrics.jsonl, as sweep.log's file is also its own)."""
    for path in run_dir.iterdir():
        if path.name.startswith("."):
            continue  # temporary files of an atomic write cut short: never read
        if path.suffix == ".json":
            json.loads(path.read_bytes())
        elif path.suffix == ".jsonl":
            data = path.read_bytes()
            assert not data or data.endswith(b"\n"), f"torn line in {path}"
            for line in data.splitlines() if not trial_wrote_junk else []:
                json.loads(line)


def trial_pids(runs: Path) -> set[int]:
    pids = set()
    for d in run_dirs(runs, by_trial=False):
        try:
            pids.add(int((d / "trial.pid").read_text()))
        except (OSError, ValueError):
            pass
    return pids


def assert_gone(pids: set[int], within: float = 5.0) -> None:
    left = survivors(pids, within, OURS)
    assert not left, f"trial processes {sorted(left)} outlived their sweep by more than {within} s"


def children(pid: int) -> set[int]:
    out = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[-1].split()[1]) == pid:
                        out.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def count(runs: Path, status: str) -> int:
    return sum(r.status == status for r in records(runs))


def running_with_pid(runs: Path) -> int:
    return sum(1 for r in records(runs) if r.status == "running" and (r.path / "trial.pid").exists())


def assert_reruns(runs: list[rundir.Run], keys: tuple[str, ...]) -> None:
    """Every trial that was running when its sweep died is marked interrupted and resumed, and
    the same flags ran again to the end."""
    done = [combo(r, keys) for r in runs if r.status in rundir.ENDED]
    for r in runs:
        assert r.status != "running", f"{r.id} still says running"
        if r.status == "interrupted":
            assert r.info.get("resumed") is True, r.info
            assert r.reason, r.info
            assert combo(r, keys) in done, f"interrupted {combo(r, keys)} never ran again"


# ---------------------------------------------------------------- 1. resume


def test_resume_after_ctrl_c_bare_resume_and_a_finished_sweep(tmp_path):
    """Random search over lists (no repeats) with a seed: interrupt with two trials done and
    two running, resume with a bare --resume, then resume the finished sweep."""
    flags_file = project(tmp_path / "proj", {"a": [1, 2, 3], "b": ["p", "q"], "sleep": 0.8}, script=SCRIPT,
                         trials=6, seed=7, jobs=2)
    runs = tmp_path / "runs"
    first = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn")
    assert wait_for(lambda: count(runs, "completed") >= 2 and running_with_pid(runs) >= 1, first), first.err
    first.proc.send_signal(signal.SIGINT)
    assert first.wait() == 130, first.err
    before = {r.path.name: r for r in records(runs)}
    interrupted = [r for r in before.values() if r.status == "interrupted"]
    assert interrupted and all(r.reason == "the sweep was interrupted" for r in interrupted)
    assert_gone(trial_pids(runs))

    second = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn", "--resume")  # bare
    assert second.wait() == 0, second.err
    (sweep_id,) = sweep_ids(runs)
    after = of_sweep(runs, sweep_id)
    assert set(before) <= {r.path.name for r in after}, "a run directory was lost"
    assert_reruns(after, ("a", "b"))
    done = [combo(r, ("a", "b")) for r in after if r.status == "completed"]
    assert sorted(done) == sorted((a, b) for a in (1, 2, 3) for b in ("p", "q")), done
    assert sum(r.status in rundir.ENDED for r in after) == 6

    third = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn", "--resume")
    assert third.wait() == 0, third.err
    assert "already finished" in third.err and "nothing to run" in third.err
    assert len(run_dirs(runs, by_trial=False)) == len(after)


def test_resume_after_kill_9_with_an_explicit_sweep_id(tmp_path):
    """A continuous space: killed twice with a trial running, resumed by id each time. The
    interrupted trials rerun with their flags, and the random sequence goes on (a resumed
    sweep never replays flags it already ran)."""
    flags_file = project(tmp_path / "proj", {"x": {"min": 0.0, "max": 1.0}, "sleep": 0.6}, script=SCRIPT,
                         trials=7, seed=3)
    runs = tmp_path / "runs"
    seen: set[str] = set()
    sweep_id = None
    for goal in (2, 4):
        args = ["--launcher", "spawn"] + (["--resume", sweep_id] if sweep_id else [])
        sweep = Sweep(tmp_path, flags_file, runs, *args)
        # The lambda runs within this iteration, so it sees this round's goal.
        assert wait_for(lambda: count(runs, "completed") >= goal and running_with_pid(runs) >= 1,  # noqa: B023
                        sweep), sweep.err
        assert sweep.kill9()
        assert_gone(trial_pids(runs))
        dead = [r for r in records(runs) if r.status == "interrupted" and not r.info.get("resumed")]
        assert dead and all(r.reason == "the sweep process is gone" for r in dead)
        seen |= {d.name for d in run_dirs(runs, by_trial=False)}
        sweep_id = sweep_ids(runs)[0]
    last = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn", "--resume", sweep_id)
    assert last.wait() == 0, last.err
    after = of_sweep(runs, sweep_id)
    assert seen <= {r.path.name for r in after}
    assert_reruns(after, ("x",))
    xs = [r.flags["x"] for r in after if r.status == "completed"]
    assert len(xs) == 7 == len(set(xs)), f"flags ran twice: {sorted(xs)}"


# ---------------------------------------------------------------- 2. kill -9


def _next_args(runs: Path, trials: int) -> list[str]:
    """Resume the last sweep unless it finished (or never got as far as its record)."""
    ids = sweep_ids(runs)
    if ids and sum(r.status in rundir.ENDED for r in of_sweep(runs, ids[-1])) < trials:
        return ["--resume"]
    return []


def _check_after_kill(runs: Path, seen: set[str]) -> None:
    assert_gone(trial_pids(runs))
    names = set()
    for d in run_dirs(runs, by_trial=False):
        run = rundir.read_run(d)
        assert run.status != "broken", f"{d.name}: {run.reason}"
        assert_whole(d)
        names.add(d.name)
    assert seen <= names, f"run directories lost: {seen - names}"
    seen |= names


def _kill_moment(how: str, runs: Path, sweep: Sweep, rng: random.Random) -> None:
    if how == "start-up":  # python start, imports, study, first trial
        time.sleep(rng.uniform(0.05, 1.2))
    elif how == "writing a run":  # the instant a new run directory appears
        before = {d.name for d in run_dirs(runs, by_trial=False)}
        wait_for(lambda: bool({d.name for d in run_dirs(runs, by_trial=False)} - before), sweep,
                 timeout=30, poll=0.003)
    elif how == "between trials":  # the instant a trial's metrics.json is written
        before = {d.name for d in run_dirs(runs, by_trial=False) if (d / "metrics.json").exists()}
        wait_for(lambda: bool({d.name for d in run_dirs(runs, by_trial=False)
                               if (d / "metrics.json").exists()} - before),
                 sweep, timeout=30, poll=0.003)
    else:
        time.sleep(rng.uniform(0.8, 3.0))


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(tmp_path):
    """kill -9 of the sweep, KILLS times: during start-up, the instant a run directory appears,
    the instant a trial ends, at random; every other time with --jobs 2. After each: every run
    readable and whole, no trial process left. At the end: every sweep has exactly its trials
    completed, each list combination once, each interrupted trial run again."""
    seed = int(os.environ.get("SWEEP_TEST_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    trials = 40
    flags_file = project(tmp_path / "proj", {"a": list(range(8)), "b": [f"v{i}" for i in range(8)],
                                              "sleep": 0.05}, script=SCRIPT, trials=trials, seed=11)
    runs = tmp_path / "runs"
    moments = ("start-up", "writing a run", "between trials", "random")
    seen: set[str] = set()
    kills = 0
    attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts < KILLS * 3, f"only {kills} kills landed (seed {seed})"
        how = moments[attempts % len(moments)]
        jobs = "2" if attempts % 2 else "1"
        sweep = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn", "--jobs", jobs,
                      *_next_args(runs, trials))
        _kill_moment(how, runs, sweep, rng)
        if sweep.kill9():
            kills += 1
        else:
            assert sweep.proc.returncode == 0, f"(seed {seed}) {sweep.err}"
        _check_after_kill(runs, seen)
    final = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn", "--jobs", "2", *_next_args(runs, trials))
    assert final.wait(120) == 0, f"(seed {seed}) {final.err}"
    _check_after_kill(runs, seen)
    ids = sweep_ids(runs)
    for sweep_id in ids:
        mine = of_sweep(runs, sweep_id)
        done = [combo(r, ("a", "b")) for r in mine if r.status == "completed"]
        assert len(done) == trials, f"(seed {seed}) sweep {sweep_id}: {len(done)} completed"
        assert len(set(done)) == trials, f"(seed {seed}) a combination ran twice in {sweep_id}"
        assert_reruns(mine, ("a", "b"))
    print(f"\nkill -9: {kills} kills survived, {len(ids)} sweeps, {len(seen)} run directories (seed {seed})")


@pytest.mark.slow
def test_kill_9_with_the_fork_launcher(tmp_path):
    """The warm launcher: kill the sweep during the server's warm-up, then with two trials
    running; the server and its trial children die with it, and the sweep resumes."""
    flags_file = project(tmp_path / "proj", {"a": [1, 2, 3, 4, 5, 6], "sleep": 1.0}, script=SCRIPT,
                         trials=6, jobs=2)
    runs = tmp_path / "runs"
    seen: set[str] = set()
    warming = Sweep(tmp_path, flags_file, runs)
    assert wait_for(lambda: any(alive(p, OURS) for p in children(warming.pid)), warming, timeout=30, poll=0.01)
    server = {p for p in children(warming.pid) if alive(p, OURS)}
    time.sleep(random.uniform(0.0, 0.8))
    assert warming.kill9()
    assert_gone(server)
    _check_after_kill(runs, seen)

    busy = Sweep(tmp_path, flags_file, runs, *_next_args(runs, 6))
    assert wait_for(lambda: running_with_pid(runs) >= 2, busy, timeout=60), busy.err
    server = {p for p in children(busy.pid) if alive(p, OURS)}
    assert busy.kill9()
    assert_gone(server | trial_pids(runs))
    _check_after_kill(runs, seen)
    assert count(runs, "interrupted") >= 2

    final = Sweep(tmp_path, flags_file, runs, "--resume")
    assert final.wait(120) == 0, final.err
    (sweep_id,) = sweep_ids(runs)
    mine = of_sweep(runs, sweep_id)
    assert sorted(r.flags["a"] for r in mine if r.status == "completed") == [1, 2, 3, 4, 5, 6]
    assert_reruns(mine, ("a",))
    _check_after_kill(runs, seen)


# ---------------------------------------------------------------- 3. Ctrl-C and SIGTERM


@pytest.mark.parametrize("launcher,sig", [
    pytest.param("spawn", signal.SIGINT, id="spawn-SIGINT"),
    pytest.param("spawn", signal.SIGTERM, id="spawn-SIGTERM"),
    pytest.param("fork", signal.SIGINT, id="fork-SIGINT"),
])
def test_interrupt_stops_trials_marks_them_and_prints_the_leaderboard(tmp_path, launcher, sig):
    """Two trials done, two hanging (trial number >= 2): one signal ends the sweep with 130,
    starts nothing more, and prints the leaderboard so far."""
    flags_file = project(tmp_path / "proj", {"x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "mode": "late_hang"}, script=SCRIPT,
                         trials=6, jobs=2)
    runs = tmp_path / "runs"
    sweep = Sweep(tmp_path, flags_file, runs, "--launcher", launcher)
    assert wait_for(lambda: count(runs, "completed") == 2 and running_with_pid(runs) == 2, sweep), sweep.err
    sweep.proc.send_signal(sig)
    assert sweep.wait(30) == 130, sweep.err
    recs = records(runs)
    assert sorted(r.status for r in recs) == ["completed", "completed", "interrupted", "interrupted"]
    for r in recs:
        if r.status == "interrupted":
            assert r.reason == "the sweep was interrupted" and r.info["end"] is not None
        assert r.id in sweep.out  # the leaderboard so far, on stdout
    assert "interrupted" in sweep.out and "completed" in sweep.out
    assert "2 completed, 2 interrupted" in sweep.err
    assert_gone(trial_pids(runs))


@pytest.mark.slow
def test_an_interrupt_while_the_warm_launcher_starts_runs_nothing(tmp_path):
    """Ctrl-C while the fork server still imports torch: no trial starts once it is warm."""
    flags_file = project(tmp_path / "proj", {"a": [1, 2, 3]}, script=SCRIPT, trials=3)
    runs = tmp_path / "runs"
    sweep = Sweep(tmp_path, flags_file, runs)
    assert wait_for(lambda: any(alive(p, OURS) for p in children(sweep.pid)), sweep, timeout=30, poll=0.01)
    server = {p for p in children(sweep.pid) if alive(p, OURS)}
    sweep.proc.send_signal(signal.SIGINT)
    assert sweep.wait(60) == 130, sweep.err
    assert run_dirs(runs, by_trial=False) == [] and "no trials" in sweep.err
    assert_gone(server)


def _stubborn(tmp_path: Path) -> tuple[Sweep, Path]:
    """A sweep whose one trial ignores SIGTERM, once that trial is running."""
    flags_file = project(tmp_path / "proj", {"mode": "stubborn"}, script=SCRIPT, trials=1)
    runs = tmp_path / "runs"
    sweep = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn")
    log = lambda: "".join((d / "output.log").read_text() for d in run_dirs(runs, by_trial=False)  # noqa: E731
                          if (d / "output.log").exists())
    assert wait_for(lambda: "started" in log(), sweep), sweep.err
    return sweep, runs


def test_a_trial_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    sweep, runs = _stubborn(tmp_path)
    t0 = time.time()
    sweep.proc.send_signal(signal.SIGINT)
    assert sweep.wait(trial.GRACE_S + 30) == 130, sweep.err
    waited = time.time() - t0
    assert waited >= trial.GRACE_S - 0.5, f"killed after {waited:.1f} s, before the grace"
    (run,) = records(runs)
    assert "got SIGTERM" in (run.path / "output.log").read_text()  # asked first
    assert run.status == "interrupted"
    assert_gone(trial_pids(runs))


@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")])
def test_a_second_interrupt_stops_at_once(tmp_path, sig):
    sweep, runs = _stubborn(tmp_path)
    sweep.proc.send_signal(sig)
    (run_dir,) = run_dirs(runs, by_trial=False)
    assert wait_for(lambda: "got SIGTERM" in (run_dir / "output.log").read_text(), sweep)
    t0 = time.time()
    sweep.proc.send_signal(sig)
    assert sweep.wait(30) == 130, sweep.err
    waited = time.time() - t0
    assert waited < trial.GRACE_S - 2, f"the second interrupt took {waited:.1f} s (grace {trial.GRACE_S} s)"
    assert rundir.read_run(run_dir).status == "interrupted"
    assert_gone(trial_pids(runs))


# ---------------------------------------------------------------- 4. bad trials

BAD = {  # mode -> (status, words in the reason)
    "ok": ("completed", None),
    "junk": ("completed", None),
    "crash": ("failed", "exit code 1"),
    "segv": ("failed", "killed by SIGSEGV"),
    "hang": ("failed", "timed out after 3 s"),
    "flood": ("failed", "printed more than 1 MiB of output"),
    "nan": ("failed", "eval_accuracy is nan"),
    "inf": ("failed", "eval_accuracy is inf"),
    "hugeint": ("failed", "eval_accuracy is inf"),
    "silent": ("failed", "reported no eval_accuracy"),
}


def test_bad_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": list(BAD)}, script=SCRIPT, trials=len(BAD), timeout=3, jobs=2)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn",
                 env={"SWEEP_MAX_OUTPUT_MB": "1", "NO_COLOR": "1"})
    assert result.exit_code == 1, result.output
    assert sum(line.startswith("[") for line in result.stderr.splitlines()) == len(BAD)  # it went on
    by_mode = {r.flags["mode"]: r for r in records(runs)}
    assert set(by_mode) == set(BAD)
    for mode, (status, words) in BAD.items():
        run = by_mode[mode]
        assert run.status == status, (mode, run.status, run.reason)
        if words:
            assert words in (run.reason or ""), (mode, run.reason)
        assert_whole(run.path, trial_wrote_junk=mode == "hugeint")
        shown = sweep_cli("show", run.path.name, "--runs-dir", runs)
        assert shown.exit_code == 0 and f"status   {status}" in shown.stdout, shown.output
    assert "RuntimeError: boom" in by_mode["crash"].info["error"]
    assert by_mode["junk"].metrics["eval_accuracy"] == 0.7
    assert (by_mode["flood"].path / "output.log").stat().st_size < 256 << 20  # far from a gigabyte
    assert "eval_accuracy" not in by_mode["flood"].metrics  # no value from the tail of a cut line

    # NaN and inf never rank above a real value, whichever way the sort goes.
    for flip, best in (([], [0.76, 0.7]), (["--asc"], [0.7, 0.76])):
        rows = ls_json(runs, "--sort", "eval_accuracy", *flip)
        values = [r.get("eval_accuracy") for r in rows]
        assert values[:2] == pytest.approx(best), values  # ok (0.5 + 0.5/2 + 1/100) and junk
        assert all(v in ("nan", "inf", "-inf", None) for v in values[2:]), values
    for fmt in ("table", "csv", "markdown"):
        assert sweep_cli("ls", "--runs-dir", runs, "--format", fmt, "--sort", "eval_accuracy").exit_code == 0

    # Minimizing: -inf is not the best loss either.
    loss_file = project(tmp_path / "loss", {"mode": ["ok", "neginf", "nan"]}, script=SCRIPT, trials=3,
                        metric="eval_loss", goal="minimize")
    loss_runs = tmp_path / "loss-runs"
    assert sweep_cli("run", loss_file, "--runs-dir", loss_runs, "--launcher", "spawn").exit_code == 1
    for flip in ([], ["--asc"]):
        rows = ls_json(loss_runs, "--sort", "eval_loss", *flip)
        assert rows[0]["flag_mode"] == "ok" and rows[0]["status"] == "completed", rows


def test_max_failures_stops_a_broken_script(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": "crash", "x": {"min": 0.0, "max": 1.0}}, script=SCRIPT, trials=20)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--max-failures", "3")
    assert result.exit_code == 1, result.output
    assert "stopped after 3 failed trials" in result.stderr
    recs = records(runs)
    assert len(recs) == 3 and all(r.status == "failed" for r in recs)


# ---------------------------------------------------------------- 5. bad files


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _cases(good: dict[str, Any]) -> list[tuple[str, Callable[[Path], None], str]]:
    """(name, damage, expected): expected is ``broken:<words of the reason>``, a status, or
    ``listed`` (any status but broken) or ``hidden`` (not a run: not listed at all)."""
    rng = random.Random(5)
    raw = json.dumps(good, indent=2).encode()

    def put(name: str, data: bytes) -> Callable[[Path], None]:
        return lambda d: (d / name).write_bytes(data)

    def info(**changes: Any) -> Callable[[Path], None]:
        return put("run.json", _json({**good, **changes}))

    def drop(*names: str) -> Callable[[Path], None]:
        return lambda d: [(d / n).unlink() for n in names]

    def without(key: str) -> Callable[[Path], None]:
        return put("run.json", _json({k: v for k, v in good.items() if k != key}))

    cases = [
        ("empty run.json", put("run.json", b""), "broken:run.json unreadable"),
        ("one byte", put("run.json", raw[:1]), "broken:run.json unreadable"),
        ("half", put("run.json", raw[:len(raw) // 2]), "broken:run.json unreadable"),
        ("all but the end", put("run.json", raw[:-2]), "broken:run.json unreadable"),
        ("random bytes", put("run.json", rng.randbytes(600)), "broken:run.json unreadable"),
        ("latin-1", put("run.json", '{"id": "caf\xe9"}'.encode("latin-1")), "broken:run.json unreadable"),
        ("NUL bytes", put("run.json", b"\0" * 64), "broken:run.json unreadable"),
        ("nested deep", put("run.json", b"[" * 200_000), "broken:nested too deeply"),
        ("a list", put("run.json", b"[]"), "broken:not a JSON object"),
        ("a string", put("run.json", b'"run"'), "broken:not a JSON object"),
        ("null", put("run.json", b"null"), "broken:not a JSON object"),
        ("format 2", info(format=2), "broken:unknown run format 2"),
        ("format text", info(format="1"), "broken:unknown run format"),
        ("no format", without("format"), "broken:unknown run format None"),
        ("status unknown", info(status="exploded"), "broken:unknown status 'exploded'"),
        ("no status", without("status"), "broken:unknown status None"),
        ("status a list", info(status=["completed"]), "broken:unknown status"),
        ("run.json a directory", lambda d: ((d / "run.json").unlink(), (d / "run.json").mkdir()),
         "broken:run.json unreadable"),
        ("flags.json missing", drop("flags.json"), "broken:flags.json unreadable"),
        ("flags.json a list", put("flags.json", b"[1, 2]"), "broken:flags.json unreadable"),
        ("flags.json truncated", put("flags.json", b'{"x": 0.'), "broken:flags.json unreadable"),
        ("flags.json odd values", put("flags.json", _json({"x": {"deep": [1, {"a": None}]}, "new\nline": None})),
         "completed"),
        ("metrics.json missing", drop("metrics.json"), "completed"),
        ("metrics.json truncated", put("metrics.json", b'{"eval_acc'), "broken:metrics.json unreadable"),
        ("metrics.json a list", put("metrics.json", b"[0.5]"), "broken:metrics.json unreadable"),
        ("metrics.json odd values", put("metrics.json", b'{"eval_accuracy": "0.25", "loss": {"a": 1}, "big": '
                                        + b"9" * 400 + b', "neg": -Infinity, "n": NaN}'), "completed"),
        ("metrics named like columns", put("metrics.json", _json({"id": 1.0, "status": 2.0, "dir": 3.0, "reason": 4.0,
                                                                   "_start": "x", "_goal": [1], "eval_accuracy": 0.3})),
         "completed"),
        ("metrics.jsonl junk", put("metrics.jsonl", rng.randbytes(3000) + b"\n" + b"[" * 100_000 + b'\n{"loss": 1'),
         "completed"),
        ("output.log binary", put("output.log", rng.randbytes(5000)), "completed"),
        ("source missing", lambda d: shutil.rmtree(d / "source"), "completed"),
        ("unknown keys", info(wobble=[1, 2, {"x": None}], **{"": 5}), "completed"),
        ("huge reason", info(reason="x" * 200_000), "completed"),
        ("start NaN", put("run.json", json.dumps({**good, "start": float("nan")}).encode()), "completed"),
        ("start far future", info(start=1e300, end=1e301), "completed"),
        ("start before time", info(start=-1e20), "completed"),
        ("duration 400 digits", put("run.json", _json({**good, "duration": "@"}).replace(b'"@"', b"9" * 400)),
         "completed"),
        ("running, sweep pid absurd", info(status="running", sweep_pid=2 ** 62), "interrupted"),
        ("running, sweep pid -1", info(status="running", sweep_pid=-1), "interrupted"),
        ("running, sweep pid 0", info(status="running", sweep_pid=0), "interrupted"),
        ("empty directory", lambda d: [shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                                       for p in list(d.iterdir())], "hidden"),  # nothing proves sweep made it
        ("only junk files", lambda d: [(d / n).unlink() for n in ("run.json", "flags.json")],
         "broken:run.json is missing"),
    ]
    wrong = [("start", "yesterday"), ("start", [1]), ("end", "later"), ("duration", "long"),
             ("trial", {"n": 1}), ("trial", 1.5), ("sweep", ["s"]), ("sweep", {"x": 1}), ("metric", ["m"]),
             ("goal", {"max": 1}), ("goal", 3), ("baseline_error", "high"), ("error", ["x"]), ("error", 42),
             ("command", "python x.py"), ("reason", {"r": 1}), ("steps", "many"), ("exit_code", "zero"),
             ("id", 5), ("params", [1, 2]), ("sweep_pid", "123"), ("host", 7), ("trial", True)]
    for key, value in wrong:
        cases.append((f"{key} is {type(value).__name__}", info(**{key: value}), f"broken:run.json: {key} should be"))
    return cases


def test_damaged_runs_never_crash_ls_show_or_compare(tmp_path):
    flags_file = project(tmp_path / "proj", {"x": [0.1, 0.5, 0.9]}, script=SCRIPT, trials=3)
    runs = tmp_path / "runs"
    assert sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn").exit_code == 0
    good = {r.path.name: r for r in records(runs)}
    template = next(iter(good.values())).path
    cases = _cases(json.loads((template / "run.json").read_text()))
    expected = {}
    for i, (name, damage, want) in enumerate(cases):
        d = runs / f"20990101T{i:06d}Z-bad{i:03d}"
        shutil.copytree(template, d, symlinks=True)
        damage(d)
        expected[d.name] = (name, want)
    # Not runs at all: never listed, never an error.
    (runs / "notes.txt").write_text("a stray file")
    (runs / "stray.json").write_bytes(b"\xff\x00 not json")
    outside = tmp_path / "outside"
    shutil.copytree(template, outside / "elsewhere")
    (runs / "20990202T000000Z-link").symlink_to(outside / "elsewhere", target_is_directory=True)
    (runs / "20990202T000001Z-dangling").symlink_to(tmp_path / "nowhere")
    (runs / ".hidden-run").mkdir()

    hidden = {run_id for run_id, (_, want) in expected.items() if want == "hidden"}
    for run_id in hidden:
        del expected[run_id]
    for _ in range(2):  # the second time through the ls index
        rows = {r["id"]: r for r in ls_json(runs)}
        assert set(rows) == set(good) | set(expected), set(rows) ^ (set(good) | set(expected))
        for run_id, (name, want) in expected.items():
            row = rows[run_id]
            if want.startswith("broken:"):
                assert row["status"] == "broken" and want[7:] in (row["reason"] or ""), (name, row)
            else:
                assert row["status"] == want, (name, row)
            assert row["id"] == run_id and row["dir"].endswith(run_id), (name, row)
        for run_id, run in good.items():
            assert rows[run_id]["status"] == "completed"
            assert rows[run_id]["eval_accuracy"] == run.metrics["eval_accuracy"]
    for fmt in ("table", "csv", "markdown"):
        result = sweep_cli("ls", "--runs-dir", runs, "--format", fmt)
        assert result.exit_code == 0, (fmt, result.output)
        if fmt == "csv":
            csv.field_size_limit(1 << 24)  # the huge reason
            assert len(list(csv.reader(io.StringIO(result.stdout)))) == 1 + len(rows)
    ranked = [r["id"] for r in ls_json(runs, "--sort", "eval_accuracy") if r["id"] in good]
    assert ranked == sorted(good, key=lambda i: -good[i].metrics["eval_accuracy"])
    broken = {r["id"] for r in ls_json(runs, "--status", "broken")}
    assert broken == {i for i, (_, want) in expected.items() if want.startswith("broken:")}

    a_good = next(iter(good))
    for run_id, (name, want) in expected.items():
        shown = sweep_cli("show", run_id, "--runs-dir", runs)
        assert shown.exit_code == 0, (name, shown.output)
        assert f"run      {run_id}" in shown.stdout
        if want.startswith("broken:"):
            assert "status   broken (" in shown.stdout, (name, shown.stdout)
        compared = sweep_cli("compare", run_id, a_good, "--runs-dir", runs)
        assert compared.exit_code == 0, (name, compared.output)
    print(f"\nbad files: {len(cases)} damaged runs and 5 stray entries, through ls (4 formats), show, compare")


def test_ls_in_a_loop_while_a_sweep_writes(tmp_path):
    flags_file = project(tmp_path / "proj", {"x": {"min": 0.0, "max": 1.0}, "sleep": 0.05}, script=SCRIPT,
                         trials=16, jobs=2)
    runs = tmp_path / "runs"
    sweep = Sweep(tmp_path, flags_file, runs, "--launcher", "spawn")
    loops = 0
    while sweep.running() or loops < 3:
        fmt = ("json", "table", "csv")[loops % 3]
        result = sweep_cli("ls", "--runs-dir", runs, "--format", fmt) if runs.exists() else None
        if result is not None:
            assert result.exit_code == 0, result.output
            if fmt == "json":
                rows = json.loads(result.stdout)
                assert all(r["status"] != "broken" for r in rows), rows
        if loops % 5 == 4 and run_dirs(runs, by_trial=False):
            assert sweep_cli("show", "last", "--runs-dir", runs).exit_code == 0
        loops += 1
    assert sweep.wait() == 0, sweep.err
    assert len(ls_json(runs, "--status", "completed")) == 16
    assert loops >= 5, loops


# ---------------------------------------------------------------- 6. many writers


@pytest.mark.slow
def test_four_sweeps_write_one_runs_directory_at_once(tmp_path):
    flags_file = project(tmp_path / "proj", {"a": [1, 2, 3, 4, 5], "sleep": 0.05}, script=SCRIPT, trials=5)
    runs = tmp_path / "runs"
    sweeps = [Sweep(tmp_path, flags_file, runs, "--launcher", "spawn") for _ in range(4)]
    for s in sweeps:
        assert s.wait(120) == 0, s.err
    dirs = run_dirs(runs, by_trial=False)
    assert len(dirs) == 20 == len({d.name for d in dirs})
    assert not [p for p in runs.iterdir() if p.name.startswith(rundir.STAGE_PREFIX)]
    by_sweep: dict[str, list[rundir.Run]] = {}
    for d in dirs:
        run = rundir.read_run(d)
        assert run.status == "completed" and run.id == d.name, (d, run.reason)
        assert {"run.json", "flags.json", "metrics.json", "metrics.jsonl", "output.log", "source", "work"} \
            <= set(os.listdir(d))
        assert_whole(d)
        assert json.loads((d / "argv.json").read_text()) == [f"--a={run.flags['a']}", "--sleep=0.05"]
        by_sweep.setdefault(run.sweep, []).append(run)
    assert len(by_sweep) == 4 and set(by_sweep) == set(sweep_ids(runs))
    for mine in by_sweep.values():
        assert sorted(r.flags["a"] for r in mine) == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- 8. security

NASTY = ["$(touch pwned1)", "; touch pwned2; rm -rf x", "`touch pwned3`", "a\nb && touch pwned4",
         "' \" | > pwned5 \\", "--mode=crash", "$HOME ${PATH} %s {x}"]


def test_flag_values_with_shell_metacharacters_reach_the_script_as_they_are(tmp_path):
    flags_file = project(tmp_path / "proj", {"text": NASTY}, script=SCRIPT, trials=len(NASTY), jobs=2)
    runs = tmp_path / "runs"
    (runs / "x").mkdir(parents=True)
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    got = sorted(json.loads((r.path / "argv.json").read_text())[0] for r in records(runs) if r.sweep)
    assert got == sorted(f"--text={v}" for v in NASTY)
    assert (runs / "x").is_dir()
    assert not [p for p in tmp_path.rglob("pwned*")] and not list(Path.cwd().glob("pwned*"))
    for r in records(runs):
        if r.sweep:
            assert sweep_cli("show", r.path.name, "--runs-dir", runs).exit_code == 0


def test_run_and_sweep_references_cannot_leave_the_runs_directory(tmp_path):
    flags_file = project(tmp_path / "proj", {"x": [0.5]}, script=SCRIPT, trials=1)
    runs = tmp_path / "runs"
    assert sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn").exit_code == 0
    (real,) = run_dirs(runs, by_trial=False)
    outside = tmp_path / "outside"
    victim = outside / real.name.replace("Z-", "Z-v")
    shutil.copytree(real, victim)
    (runs / "link").symlink_to(victim, target_is_directory=True)
    (runs / "20990101T000000Z-link").symlink_to(victim, target_is_directory=True)
    refs = ["../outside/" + victim.name, str(victim), "link", "20990101T000000Z-link", "..", ".", ".sweep",
            "archive/../..", "/etc", "lin", "x\0y"]
    for ref in refs:
        for cmd in (["show", ref], ["compare", ref, real.name], ["clean", ref]):
            result = sweep_cli(*cmd, "--runs-dir", runs)
            assert result.exit_code != 0, (cmd, result.output)
            assert "Traceback" not in result.output
    for ref in ["../x", "/tmp", "..", ".sweep"]:
        assert sweep_cli("ls", "--sweep", ref, "--runs-dir", runs).exit_code != 0
        assert sweep_cli("run", flags_file, "--runs-dir", runs, "--resume", ref).exit_code != 0
    assert sweep_cli("clean", "--all", "--runs-dir", runs).exit_code == 0
    assert victim.is_dir() and (victim / "run.json").is_file() and (runs / "link").is_symlink()
    assert not (runs / "archive" / victim.name).exists()
    assert sweep_cli("purge", "--yes", "--runs-dir", runs).exit_code == 0
    assert victim.is_dir() and (victim / "run.json").is_file()


def test_yaml_is_loaded_safely(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(SCRIPT, root / "trial.py")
    for i, text in enumerate([
        "script: trial.py\nflags:\n  x: !!python/object/apply:os.system ['touch {p}']\n",
        "!!python/object/apply:os.system ['touch {p}']\n",
        "script: !!python/object/new:os.system ['touch {p}']\nflags: {{x: [1]}}\n",
    ]):
        pwned = tmp_path / f"pwned{i}"
        flags_file = root / f"flags{i}.yaml"
        flags_file.write_text(text.format(p=pwned))
        result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn")
        assert result.exit_code == 2, result.output
        assert "Error:" in result.output and "Traceback" not in result.output
        assert not pwned.exists() and not (tmp_path / "runs").exists()


def test_no_secret_from_the_environment_lands_in_a_run_directory(tmp_path):
    flags_file = project(tmp_path / "proj", {"mode": "secret"}, script=SCRIPT, trials=1)
    runs = tmp_path / "runs"
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "GITHUB_TOKEN": SECRET + "-gh", "SWEEP_NOTE": "kept",
           "OMP_NUM_THREADS": "3"}
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", env=env)
    assert result.exit_code == 0, result.output
    (run,) = records(runs)
    recorded = run.info["env"]
    assert set(recorded) <= {k for k in recorded if k.startswith("SWEEP_")} | set(trial.ENV_RECORDED)
    assert recorded["SWEEP_NOTE"] == "kept" and "AWS_SECRET_ACCESS_KEY" not in recorded
    assert f"my secret is {SECRET}" in (run.path / "output.log").read_text()  # the trial saw it
    leaks = [p for p in runs.rglob("*") if p.is_file() and not p.is_symlink() and p.name != "output.log"
             and SECRET.encode() in p.read_bytes()]
    assert not leaks, leaks
