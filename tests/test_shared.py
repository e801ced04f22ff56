"""Several workers, one study: on a real PostgreSQL server the tests start on 127.0.0.1 (see
pgserver.py), and on a journal file shared by processes. Workers are real ``sweep run``
processes, each with its own runs directory, as on separate machines."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweep import board
from sweep.errors import UsageError

from helpers import SCRIPTS, info, ls_json, one_error_line, project, python_env, run_dirs, sweep_cli, wait_for
from pgserver import PASSWORD, Server, bin_dir

TRAIN = SCRIPTS / "shared" / "train.py"
SPACE = {"lr": {"min": 0.1, "max": 2.0, "log": True}, "batch_size": [32, 64, 128], "epochs": 2}

needs_pg = pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def pg():
    with Server() as server:
        yield server


@pytest.fixture
def db(pg: Server) -> str:
    """A new, empty database on the test server: its URL, password included."""
    return pg.create_database("t" + uuid.uuid4().hex[:12])


def worker(flags: Path, runs: Path, storage: str, study: str, *extra: str, **env: str) -> subprocess.Popen:
    """One ``sweep run`` worker, as a user starts it on one machine."""
    cmd = [sys.executable, "-m", "sweep", "run", str(flags), "--runs-dir", str(runs), "--storage", storage,
           "--study", study, "--launcher", "spawn", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=python_env(NO_COLOR="1", **env))


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        out.append((p.returncode, stdout, stderr))
    return out


def trials_of(storage: Any, study: str) -> list[optuna.trial.FrozenTrial]:
    from sweep import shared

    backend, _ = shared._open_storage(storage)
    return optuna.load_study(study_name=study, storage=backend).get_trials()


def script_pids(pid: int) -> list[int]:
    """The training scripts a worker runs now: its descendants running train.py (the launcher
    may start them through its fork server; read from /proc's parent links, since not every
    kernel has /proc/PID/task/PID/children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = []
    for child in parents:
        up = child
        while up in parents and up != pid and up > 1:
            up = parents[up]
        try:
            if up == pid and child != pid and b"train.py" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


def key(flags: dict[str, Any]) -> str:
    return json.dumps(flags, sort_keys=True)


# ---------------------------------------------------------------- joining, totals, the space


@pytest.fixture(scope="module")
def eight(pg: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """8 workers started in the same instant on an empty database, 16 trials in all."""
    root = tmp_path_factory.mktemp("eight")
    url = pg.create_database("eight")
    flags = project(root / "proj", SPACE, TRAIN, trials=16, seed=7, metric="val_loss")
    runs = [root / f"machine{i}" for i in range(8)]
    procs = [worker(flags, r, url, "mnist") for r in runs]
    connections = []
    while any(p.poll() is None for p in procs):
        connections.append(count_connections(pg, "eight"))
        wait_for(lambda: False, timeout=0.2)
    results = finish(procs)
    return {"url": url, "runs": runs, "results": results, "root": root, "connections": connections}


def count_connections(pg: Server, database: str) -> int:
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()
    return int(row[0]) if row else 0


@needs_pg
def test_eight_workers_join_an_empty_database_and_run_exactly_the_total(eight):
    for code, _, stderr in eight["results"]:
        assert code == 0, stderr
    trials = trials_of(eight["url"], "mnist")
    assert Counter(t.state.name for t in trials) == {"COMPLETE": 16}
    dirs = [d for r in eight["runs"] for d in run_dirs(r)]
    assert len(dirs) == 16
    assert sorted(info(d)["trial"] for d in dirs) == list(range(16))
    # One seed for all workers, yet no two trials drew the same flags.
    assert len({key(json.loads((d / "flags.json").read_text())) for d in dirs}) == 16


@needs_pg
def test_each_worker_holds_a_bounded_number_of_connections(eight):
    assert eight["connections"] and max(eight["connections"]) <= 8 * 5  # 4 pooled + 1 for the lock


@needs_pg
def test_each_worker_ends_with_the_whole_studys_board(eight):
    ids = {info(d)["id"] for r in eight["runs"] for d in run_dirs(r)}
    for _, stdout, _ in eight["results"]:
        assert "study mnist" in stdout
        assert {i for i in ids if i in stdout} == ids  # every worker's runs, not only its own


@needs_pg
def test_password_never_written(eight):
    for _, stdout, stderr in eight["results"]:
        assert PASSWORD not in stdout + stderr
    for runs in eight["runs"]:
        for path in runs.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path


@needs_pg
def test_study_leaderboard_is_the_union_of_the_workers_runs(eight):
    url = eight["url"]
    rows = ls_json(eight["root"], "--storage", url, "--study", "mnist", "--sort", "val_loss")
    local = [row for r in eight["runs"] for row in ls_json(r)]
    assert len(rows) == len(local) == 16
    fields = ("id", "status", "val_loss", "flag_lr", "flag_batch_size", "flag_epochs")
    assert sorted(tuple(r[f] for f in fields) for r in rows) == sorted(tuple(r[f] for f in fields) for r in local)
    # Each row says where its directory is: an absolute path on the host that ran it.
    assert {r["host"] for r in rows} == {os.uname().nodename}
    assert sorted(r["dir"] for r in rows) == sorted(str(d.resolve()) for r in eight["runs"] for d in run_dirs(r))
    values = [r["val_loss"] for r in rows]
    assert values == sorted(values)  # --sort by a minimized metric: best (lowest) first
    top = ls_json(eight["root"], "--storage", url, "--study", "mnist", "--top", "3", "--where", "flag_batch_size==64")
    assert len(top) == 3 and {r["flag_batch_size"] for r in top} == {64}


@needs_pg
def test_finite_space_never_runs_a_point_twice_across_workers(tmp_path, db):
    flags = project(tmp_path / "proj", {"lr": [0.1, 0.5, 1.0], "batch_size": [32, 64, 128]}, TRAIN,
                    trials=100, metric="val_loss")
    runs = [tmp_path / f"m{i}" for i in range(4)]
    for code, _, stderr in finish([worker(flags, r, db, "grid", "-j", "2") for r in runs]):
        assert code == 0, stderr
    seen = [key(json.loads((d / "flags.json").read_text())) for r in runs for d in run_dirs(r)]
    assert len(seen) == 9 and len(set(seen)) == 9  # every combination once, none twice


@needs_pg
def test_worker_with_a_different_flags_file_refuses_to_join(tmp_path, db):
    first = project(tmp_path / "a", SPACE, TRAIN, trials=2, metric="val_loss")
    assert sweep_cli("run", first, "--runs-dir", tmp_path / "ra", "--storage", db, "--study", "s",
                     "--launcher", "spawn").exit_code == 0
    other = project(tmp_path / "b", {**SPACE, "lr": {"min": 0.01, "max": 2.0, "log": True}}, TRAIN,
                    trials=2, metric="val_loss")
    result = sweep_cli("run", other, "--runs-dir", tmp_path / "rb", "--storage", db, "--study", "s",
                       "--launcher", "spawn")
    assert result.exit_code == 2
    assert result.stderr == ("Error: --study s: this flags file differs from the study's: "
                             "flag lr is 0.01..2.0 (log) here, 0.1..2.0 (log) in the study\n")
    assert run_dirs(tmp_path / "rb") == []


def test_postgresql_url_without_the_extra_names_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("psycopg") else real(name, *a))
    flags = project(tmp_path / "p", SPACE, TRAIN, trials=1, metric="val_loss")
    result = sweep_cli("run", flags, "--runs-dir", tmp_path / "runs", "--storage",
                       "postgresql://bob@127.0.0.1:1/db", "--study", "s")
    assert result.exit_code == 2
    assert result.stderr == ("Error: --storage: a postgresql URL needs the postgres extra: "
                             "pip install -e '.[postgres]' (psycopg 3)\n")
    assert run_dirs(tmp_path / "runs") == []


# ---------------------------------------------------------------- dead workers, a restarted server


@needs_pg
def test_killed_worker_trial_is_rerun_with_the_same_flags(tmp_path, db):
    # A short grace, yet long enough that a busy test machine never stalls a live worker past it.
    beat = {"SWEEP_HEARTBEAT_S": "1", "SWEEP_GRACE_S": "4"}
    flags = project(tmp_path / "proj", SPACE, TRAIN, trials=2, seed=3, metric="val_loss")
    # The doomed machine is slow: its trial is surely still running when it dies.
    doomed = worker(flags, tmp_path / "dead", db, "mnist", SWEEP_TEST_EPOCH_S="60", **beat)
    survivor = worker(flags, tmp_path / "alive", db, "mnist", SWEEP_TEST_EPOCH_S="1", **beat)
    try:
        assert wait_for(lambda: bool(script_pids(doomed.pid)), doomed, timeout=60)  # its trial runs
        [run] = run_dirs(tmp_path / "dead", by_trial=False)
        lost = json.loads((run / "flags.json").read_text())
        pids = [doomed.pid, *script_pids(doomed.pid)]
        for pid in pids:  # the machine vanishes, its trial with it
            os.kill(pid, signal.SIGKILL)
    finally:
        doomed.kill()
        doomed.communicate()
    # The survivor ends its own trial, finds the study full, and waits for the dead one's.
    [(code, _, stderr)] = finish([survivor])
    assert code == 0, stderr
    trials = trials_of(db, "mnist")
    assert Counter(t.state.name for t in trials) == {"COMPLETE": 2, "FAIL": 1}
    done = [json.loads((d / "flags.json").read_text()) for d in run_dirs(tmp_path / "alive")]
    assert len(done) == 2 and lost in done  # the dead worker's flags, run again
    rows = ls_json(tmp_path, "--storage", db, "--study", "mnist", "--status", "failed")
    assert [r["reason"] for r in rows] == ["its worker stopped beating; re-run as a new trial"]


@needs_pg
def test_workers_survive_a_database_restart(tmp_path, pg, db):
    flags = project(tmp_path / "proj", SPACE, TRAIN, trials=4, seed=1, metric="val_loss")
    proc = worker(flags, tmp_path / "runs", db, "mnist", SWEEP_TEST_EPOCH_S="0.5")
    try:
        assert wait_for(lambda: bool(run_dirs(tmp_path / "runs", by_trial=False)), proc, timeout=60)
        pg.stop()  # the server goes away under a running trial
        pg.start()
    finally:
        [(code, _, stderr)] = finish([proc])
    assert code == 0, stderr
    assert Counter(t.state.name for t in trials_of(db, "mnist")) == {"COMPLETE": 4}


# ---------------------------------------------------------------- no server: a shared journal


def test_shared_journal_with_several_processes(tmp_path):
    journal = str(tmp_path / "shared" / "study.journal")
    (tmp_path / "shared").mkdir()
    flags = project(tmp_path / "proj", SPACE, TRAIN, trials=9, seed=5, metric="val_loss")
    runs = [tmp_path / f"m{i}" for i in range(3)]
    for code, _, stderr in finish([worker(flags, r, journal, "mnist") for r in runs]):
        assert code == 0, stderr
    assert Counter(t.state.name for t in trials_of(journal, "mnist")) == {"COMPLETE": 9}
    seen = [key(json.loads((d / "flags.json").read_text())) for r in runs for d in run_dirs(r)]
    assert len(seen) == 9 and len(set(seen)) == 9
    rows = ls_json(tmp_path, "--storage", journal, "--study", "mnist")
    assert len(rows) == 9 and {r["status"] for r in rows} == {"completed"}
    other = tmp_path / "shared" / "other.journal"
    missing = sweep_cli("ls", "--storage", other, "--study", "mnist")
    assert (missing.exit_code, missing.stderr) == (2, f"Error: --storage: no journal file {other}\n")
    assert not other.exists()


@needs_pg
def test_a_row_written_by_a_worker_that_died_before_telling_shows_the_studys_verdict(tmp_path, db, monkeypatch):
    from sweep import rundir, shared, spec

    monkeypatch.setenv("SWEEP_HEARTBEAT_S", "1")
    monkeypatch.setenv("SWEEP_GRACE_S", "1")
    sp = spec.load(project(tmp_path / "proj", SPACE, TRAIN, trials=2, metric="val_loss"))
    dying = shared.join(sp, db, "mnist")
    ask = dying.ask()
    path = tmp_path / "runs" / "r0"
    path.mkdir(parents=True)
    (path / "flags.json").write_text(json.dumps(ask.flags))
    info_ = rundir.RunInfo(id="r0", trial=ask.number, status="completed", host="gpu7", start=1.0, duration=2.0)
    dying.stores()[0].ended(path, info_, {"val_loss": 0.3})  # then killed: the study never hears of it
    assert wait_for(lambda: bool(shared.join(sp, db, "mnist")._stale_and_trials()[-1].state.name == "WAITING"),
                    timeout=30, poll=0.5)
    rows = {r.info["trial"]: r for r in shared.list_runs(db, "mnist")}
    assert (rows[0].status, rows[0].reason, rows[0].info["host"]) == ("failed", shared.DEAD, "gpu7")
    assert (rows[1].status, rows[1].flags, rows[1].metrics) == ("waiting", ask.params, {})  # not the dead row


@needs_pg
def test_password_from_the_environment_not_the_url(tmp_path, pg, db):
    url = db.replace(f":{PASSWORD}@", "@")  # libpq reads PGPASSWORD (or PGPASSFILE) itself
    flags = project(tmp_path / "proj", SPACE, TRAIN, trials=1, metric="val_loss")
    args = ("run", flags, "--runs-dir", tmp_path / "runs", "--storage", url, "--study", "env", "--launcher", "spawn")
    refused = sweep_cli(*args, env={"PGPASSWORD": "wrong", "PGPASSFILE": str(tmp_path / "none")})
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"Error: cannot open study 'env' in {url}: OperationalError:")
    assert sweep_cli(*args, env={"PGPASSWORD": PASSWORD}).exit_code == 0
    assert len(run_dirs(tmp_path / "runs")) == 1


# ---------------------------------------------------------------- show and importance of the study


@pytest.fixture(scope="module")
def six(pg: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A study of 6 completed trials, run by two workers on this machine."""
    root = tmp_path_factory.mktemp("six")
    url = pg.create_database("six")
    flags = project(root / "proj", SPACE, TRAIN, trials=6, seed=11, metric="val_loss")
    runs = [root / "m0", root / "m1"]
    for code, _, stderr in finish([worker(flags, r, url, "six") for r in runs]):
        assert code == 0, stderr
    return {"url": url, "runs": runs, "root": root, "flags": flags}


def show_study(url: str, ref: str, *extra: Any) -> Any:
    return sweep_cli("show", ref, "--storage", url, "--study", "six", *extra, env={"NO_COLOR": "1"})


@needs_pg
def test_show_finds_a_run_of_the_study_by_reference(six):
    from sweep import shared

    rows = ls_json(six["root"], "--storage", six["url"], "--study", "six", "--sort", "val_loss")
    best, ids = rows[0], sorted(r["id"] for r in rows)
    newest = sorted(shared.list_runs(six["url"], "six"), key=lambda r: r.info["start"])  # ls shows whole seconds
    for ref, want in (("best", best["id"]), ("last", newest[-1].id), ("last~2", newest[-3].id),
                      (ids[0], ids[0]), (ids[3][:-1], ids[3])):
        result = show_study(six["url"], ref)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith(f"run      {want}\n"), (ref, result.stdout)
    errors = {
        "nope": "Error: no run matches 'nope' in study six",
        "last~6": "Error: last~6 needs 7 runs; study six has 6",
        ids[0][:2]: f"Error: {ids[0][:2]!r} matches 6 runs",
    }
    for ref, message in errors.items():
        assert one_error_line(show_study(six["url"], ref), 1).startswith(message), ref
    alone = sweep_cli("show", "last", "--study", "six")
    assert (alone.exit_code, alone.stderr) == (2, "Error: show: --storage and --study go together "
                                                  "(the shared study to read)\n")
    other = sweep_cli("show", "last", "--storage", six["url"], "--study", "nine")
    assert one_error_line(other, 2).startswith("Error: --study: no study 'nine' in postgresql://sweep:")
    assert PASSWORD not in other.stderr


@needs_pg
def test_show_of_a_study_run_reads_its_directory_here_else_the_database(six, tmp_path):
    row = ls_json(six["root"], "--storage", six["url"], "--study", "six")[0]
    run = Path(row["dir"])
    host = os.uname().nodename
    here = show_study(six["url"], row["id"])
    assert here.exit_code == 0, here.stderr
    lines = here.stdout.splitlines()
    assert lines[1] == f"dir      {run}  (on {host})"
    assert "output (last lines)" in lines and any(line.startswith("command  ") for line in lines)  # the files
    assert sweep_cli("clean", row["id"], "--runs-dir", run.parent).exit_code == 0
    archived = show_study(six["url"], row["id"]).stdout.splitlines()
    shutil.move(run.parent / "archive" / run.name, run)
    assert archived[1] == (f"dir      {run.parent / 'archive' / run.name}  (archived by sweep clean; "
                           f"sweep purge deletes it)  (on {host})")
    # The machine that ran it is elsewhere: what the database holds, and where the directory is.
    away = tmp_path / "away"
    shutil.move(run, away)
    try:
        there = show_study(six["url"], row["id"][:-2])
    finally:
        shutil.move(away, run)
    assert there.exit_code == 0, there.stderr
    lines = there.stdout.splitlines()
    assert lines[:3] == [f"run      {row['id']}",
                         f"dir      {run}  (on {host}; not found on this machine: what the study's database holds)",
                         "status   completed"]
    assert re.fullmatch(rf"sweep    {row['sweep']}  trial \d+", lines[3])
    assert lines[4].startswith("started  ") and lines[4].endswith(" s") and "exit code" not in lines[4]
    assert f"  lr                   {board.cell(row['flag_lr'])}" in lines
    assert f"  val_loss             {board.cell(row['val_loss'])}" in lines
    assert "output (last lines)" not in lines


@needs_pg
def test_importance_of_a_shared_study_needs_no_flags_file(six, tmp_path):
    # The flags file is on some other machine: the space comes from the study.
    moved = tmp_path / "proj"
    shutil.move(six["flags"].parent, moved)
    try:
        result = sweep_cli("importance", "--storage", six["url"], "--study", "six", "--format", "json")
    finally:
        shutil.move(moved, six["flags"].parent)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["flag"] for r in rows} == {"flag_lr", "flag_batch_size"}  # epochs is fixed: not scored
    assert sum(r["importance"] for r in rows) == pytest.approx(1.0, abs=0.01)


@needs_pg
def test_importance_of_a_study_with_too_few_runs_says_so(tmp_path, db):
    flags = project(tmp_path / "proj", SPACE, TRAIN, trials=2, metric="val_loss")
    assert sweep_cli("run", flags, "--runs-dir", tmp_path / "runs", "--storage", db, "--study", "s",
                     "--launcher", "spawn").exit_code == 0
    result = sweep_cli("importance", "--storage", db, "--study", "s")
    assert one_error_line(result, 1) == "Error: study s has 2 completed runs; importance needs at least 5"


# ---------------------------------------------------------------- a worker restarted after kill -9


def kill_and_resume(tmp_path: Path, url: str, failed_by_heartbeat: bool = False) -> None:
    """A worker killed with kill -9 mid-trial, then the same command again with --resume: its
    killed trial runs again once, and the study ends with exactly its 3 trials."""
    from sweep import shared, spec

    # A grace far longer than the test: only the restarted worker's --resume can bring the
    # trial back in time, unless the test plays another worker whose heartbeat check failed it.
    beat = {"SWEEP_HEARTBEAT_S": "1", "SWEEP_GRACE_S": "2" if failed_by_heartbeat else "600"}
    flags = project(tmp_path / "proj", SPACE, TRAIN, trials=3, seed=4, metric="val_loss")
    runs = tmp_path / "runs"
    doomed = worker(flags, runs, url, "mnist", SWEEP_TEST_EPOCH_S="60", **beat)
    try:
        assert wait_for(lambda: bool(script_pids(doomed.pid)), doomed, timeout=60)
        [run] = run_dirs(runs, by_trial=False)
        lost = json.loads((run / "flags.json").read_text())
        for pid in [doomed.pid, *script_pids(doomed.pid)]:
            os.kill(pid, signal.SIGKILL)
    finally:
        doomed.kill()
        doomed.communicate()
    if failed_by_heartbeat:  # another worker saw it silent first and queued it again
        os.environ.update(beat)
        try:
            other = shared.join(spec.load(flags), url, "mnist")
            assert wait_for(lambda: other._stale_and_trials()[0].state.name == "FAIL", timeout=30, poll=0.5)
        finally:
            for name in beat:
                os.environ.pop(name)
    restarted = worker(flags, runs, url, "mnist", "--resume", SWEEP_TEST_EPOCH_S="0", **beat)
    [(code, _, stderr)] = finish([restarted])
    assert code == 0, stderr
    trials = trials_of(url, "mnist")
    assert Counter(t.state.name for t in trials) == {"COMPLETE": 3, "FAIL": 1}  # exactly the total
    done = [d for d in run_dirs(runs) if info(d)["status"] == "completed"]
    # The lost flags ran again once: a heartbeat's retry and the resume never both queue them.
    assert len(done) == 3 and [json.loads((d / "flags.json").read_text()) for d in done].count(lost) == 1
    assert (info(run)["status"], info(run)["resumed"]) == ("interrupted", True)
    assert len({d["sweep"] for d in map(info, run_dirs(runs))}) == 1  # one sweep, resumed
    rows = ls_json(tmp_path, "--storage", url, "--study", "mnist", "--status", "completed,failed,interrupted")
    assert Counter(r["status"] for r in rows)["completed"] == 3 and len(rows) == 4
    [killed] = [r for r in rows if r["status"] != "completed"]
    if failed_by_heartbeat:
        assert (killed["status"], killed["reason"]) == ("failed", shared.DEAD)
    else:
        assert (killed["status"], killed["reason"]) == ("interrupted", shared.RESUMED)


@needs_pg
@pytest.mark.parametrize("failed_by_heartbeat", [False, True], ids=["at-once", "after-a-heartbeat"])
def test_worker_restarted_with_resume_reruns_its_killed_trial_and_the_total_stays_exact(
        tmp_path, db, failed_by_heartbeat):
    kill_and_resume(tmp_path, db, failed_by_heartbeat)


def test_worker_on_a_shared_journal_restarted_with_resume_reruns_its_killed_trial(tmp_path):
    # A journal has no heartbeats: --resume is the only way a killed worker's trial comes back.
    (tmp_path / "shared").mkdir()
    kill_and_resume(tmp_path, str(tmp_path / "shared" / "study.journal"))


# ---------------------------------------------------------------- what joining and a trial cost the database


@needs_pg
def test_a_worker_joining_a_made_database_waits_for_no_other_worker(pg, db, monkeypatch):
    """Only the first worker creates Optuna's tables under the schema lock: the others open side
    by side, or 8 workers would start one after another. Here another worker holds the lock
    (still creating, as it seems) and the server gives up waiting for a lock after 1 s."""
    import psycopg

    from sweep import shared

    shared.open_storage(db)  # the first worker made the tables
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1000")  # libpq passes it to the server
    with psycopg.connect(db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (shared._key("schema"),))
        storage = shared.open_storage(db)
    assert storage.get_all_studies() == []


@needs_pg
def test_a_worker_joining_a_made_study_waits_for_no_other_worker(tmp_path, db, monkeypatch):
    """Joining a study another worker made (and stored its space in) only reads it: here a
    worker holds the study's lock (asking, as it seems) while another joins; the server gives
    up waiting for a lock after 1 s."""
    import psycopg

    from sweep import shared, spec

    sp = spec.load(project(tmp_path / "proj", SPACE, TRAIN, trials=4, metric="val_loss"))
    shared.join(sp, db, "mnist")
    shared._JOINED.clear()  # the next join is another process's
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1000")
    with psycopg.connect(db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (shared._key("study:mnist"),))
        joined = shared.join(sp, db, "mnist")
    assert joined.study.user_attrs[shared.SPACE_ATTR] == shared.fingerprint(sp, 4)
    other_space = spec.load(project(tmp_path / "b", {**SPACE, "epochs": 3}, TRAIN, trials=4, metric="val_loss"))
    with pytest.raises(UsageError, match="flag epochs is 3 here, 2 in the study"):
        shared.join(other_space, db, "mnist")


@needs_pg
def test_workers_that_waited_for_the_one_creating_the_tables_open_outside_the_lock(pg, db, monkeypatch):
    """8 workers on an empty database: 7 wait while the first creates the tables; then each
    sees them made and opens without the lock (else they open one after another)."""
    import threading

    import psycopg
    from optuna.storages import RDBStorage

    from sweep import shared

    def advisory(granted: bool) -> int:
        with psycopg.connect(db, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = %s",
                               (granted,)).fetchone()
        return int(row[0]) if row else 0

    locked_at_open: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> RDBStorage:
        locked_at_open.append(advisory(True))
        return RDBStorage(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", spy)
    opened: list[Any] = []
    with psycopg.connect(db, autocommit=True) as creator:
        creator.execute("SELECT pg_advisory_lock(%s)", (shared._key("schema"),))
        waiter = threading.Thread(target=lambda: opened.append(shared.open_storage(db)))
        waiter.start()
        assert wait_for(lambda: advisory(False) == 1, timeout=60)  # it waits for the creator
        RDBStorage(shared._sqlalchemy_url(db))  # the creator makes the tables meanwhile
        creator.execute("SELECT pg_advisory_unlock(%s)", (shared._key("schema"),))
    waiter.join(timeout=120)
    assert len(opened) == 1 and locked_at_open == [0]


@needs_pg
def test_a_trials_bookkeeping_stays_within_its_statement_budget(tmp_path, db):
    """ask, the leaderboard row and tell of one trial, in SQL statements: each one a round trip
    and client CPU, which 8 workers on 2 cores spend 80 times (bench/distributed.py)."""
    import sqlalchemy
    from sqlalchemy import event

    from sweep import rundir, shared, spec
    from sweep.driver import run_attrs

    sp = spec.load(project(tmp_path / "proj", SPACE, TRAIN, trials=100, metric="val_loss"))
    search = shared.join(sp, db, "budget")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    def one_trial(i: int) -> None:
        ask = search.ask()
        assert ask is not None
        path = tmp_path / "runs" / f"r{i}"
        path.mkdir(parents=True)
        (path / "flags.json").write_text(json.dumps(ask.flags))
        metrics = {"val_loss": 0.5}
        search.stores()[0].ended(path, rundir.RunInfo(id=path.name, trial=ask.number, status="completed"), metrics)
        search.tell(ask, "completed", 0.5, run_attrs(path, metrics))

    one_trial(0)  # the first trial reads what the study has: the budget is the steady one
    event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count)
    try:
        for i in range(1, 6):
            one_trial(i)
    finally:
        event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", count)
    assert len(statements) / 5 <= 45, Counter(" ".join(s.split())[:60] for s in statements).most_common(8)
    assert Counter(t.state.name for t in trials_of(db, "budget")) == {"COMPLETE": 6}
    assert {r.metrics["val_loss"] for r in shared.list_runs(db, "budget")} == {0.5}


@needs_pg
def test_a_worker_waiting_for_the_studys_end_looks_for_dead_workers_once_a_heartbeat(tmp_path, db, monkeypatch):
    """While the last trials run elsewhere, an idle worker polls the study every second; a
    trial turns stale only after a heartbeat interval, so it looks for them no more often."""
    from sweep import shared, spec

    monkeypatch.setenv("SWEEP_HEARTBEAT_S", "60")
    sp = spec.load(project(tmp_path / "proj", SPACE, TRAIN, trials=1, metric="val_loss"))
    busy = shared.join(sp, db, "mnist")
    assert busy.ask() is not None  # the study's one trial, running on another machine
    looks = []
    real = optuna.storages.fail_stale_trials
    monkeypatch.setattr(optuna.storages, "fail_stale_trials", lambda study: looks.append(real(study)))
    idle = shared.join(sp, db, "mnist")
    assert idle.ask() is None  # the study is full: it waits for the end
    polls = [idle._stale_and_trials() for _ in range(5)]
    assert [[t.state.name for t in trials] for trials in polls] == [["RUNNING"]] * 5
    assert len(looks) == 1
