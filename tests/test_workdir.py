"""The trial's working directory (sweep/workdir.py): the user's folder is never changed, what a
trial writes lands in its own run, relative paths resolve as from the flags file's folder, and
both launchers behave alike. Real sweeps of tests/scripts/workdir/train.py, an argparse script
that reads ``../data/train.csv``, saves ``model.pt`` and ``checkpoints/ckpt.pt``, logs to
``runs/`` as TensorBoard does, and removes a stale ``last.pt``."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweep import workdir

from helpers import SCRIPTS, flags_of, info, metrics_of, python_env, run_dirs, sweep_cli

TRAIN = SCRIPTS / "workdir" / "train.py"
LOGGED = SCRIPTS / "logged.py"
DATA = "x1,x2,label\n0,0,0\n1,1,1\n0,1,0\n1,0,1\n2,2,1\n-1,0,0\n"
USER_FILES = {"model.pt": b"the user's own model", "last.pt": b"the user's last state",
              "checkpoints/ckpt.pt": b"the user's checkpoint", "notes.txt": b"keep me"}


def make_project(base: Path, name: str = "proj", flags: dict[str, Any] | None = None,
                 files: dict[str, bytes] = USER_FILES, **top: Any) -> Path:
    """``base/name``: the script, the user's own files and a flags file; ``base/data``: the
    training data beside it. Returns the flags file."""
    folder = base / name
    folder.mkdir(parents=True)
    shutil.copy(TRAIN, folder / "train.py")
    shutil.copy(LOGGED, folder / "logged.py")
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (base / "data").mkdir(exist_ok=True)
    (base / "data" / "train.csv").write_text(DATA)
    doc = {"script": "train.py", "trials": 2, "flags": flags or {"lr": [0.1, 0.5]}, **top}
    path = folder / "flags.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def snapshot(folder: Path, skip: str = "runs") -> dict[str, bytes | None]:
    """Every entry under ``folder`` (but the runs directory) with its bytes (None: a folder)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] == skip:
            continue
        out[str(rel)] = None if path.is_dir() else path.read_bytes()
    return out


def saved(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return pickle.load(fh)


# ---------------------------------------------------------------- the safe default, both launchers


@pytest.fixture(scope="module", params=["fork", "spawn"])
def swept(request, tmp_path_factory) -> dict[str, Any]:
    """Two trials at once, the runs directory inside the user's folder (sweep's default when
    run from there), in a folder whose name holds the separators of overlayfs's options."""
    base = tmp_path_factory.mktemp(f"swept-{request.param}")
    flags_file = make_project(base, "my proj,v2:final", {"lr": [0.1, 0.5], "data": "../data/train.csv"})
    folder = flags_file.parent
    before = snapshot(folder)
    runs = folder / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", request.param, "--jobs", "2")
    return {"folder": folder, "before": before, "runs": runs, "result": result, "launcher": request.param}


def test_no_trial_changes_or_deletes_a_file_in_the_users_folder(swept):
    result = swept["result"]
    assert result.exit_code == 0, result.output + result.stderr
    assert [info(r)["status"] for r in run_dirs(swept["runs"])] == ["completed", "completed"]
    # Each trial overwrote model.pt and checkpoints/ckpt.pt and removed last.pt, in its view.
    assert snapshot(swept["folder"]) == swept["before"]


def test_what_a_trial_wrote_changed_or_deleted_is_in_its_own_run(swept):
    runs = run_dirs(swept["runs"])
    for run in runs:
        lr = flags_of(run)["lr"]
        work = run / "work"
        assert saved(work / "model.pt")["config"]["lr"] == lr
        assert saved(work / "checkpoints" / "ckpt.pt")["config"]["lr"] == lr
        assert stat.S_ISCHR((work / "last.pt").lstat().st_mode)  # overlayfs's mark of a deletion
        (logs,) = (work / "runs").iterdir()  # TensorBoard's runs/ is the trial's own
        assert (logs / next(iter(os.listdir(logs)))).read_text().startswith("train_loss 1 ")
        assert not (run / ".overlay").exists()
    assert {saved(r / "work" / "model.pt")["config"]["lr"] for r in runs} == {0.1, 0.5}


def test_the_runs_directory_inside_the_folder_holds_only_runs(swept):
    names = sorted(os.listdir(swept["runs"]))
    assert names == sorted([".sweep", *(r.name for r in run_dirs(swept["runs"]))])


def test_relative_paths_in_flags_resolve_from_the_flags_files_folder(swept):
    for run in run_dirs(swept["runs"]):
        assert info(run)["workdir"] == {"mode": "overlay", "folder": str(swept["folder"]),
                                        "cwd": str(swept["folder"])}
        assert metrics_of(run)["eval_accuracy"] > 0.5  # it read ../data/train.csv


def test_show_says_where_the_trials_files_are(swept):
    run = run_dirs(swept["runs"])[0]
    result = sweep_cli("show", run.name, "--runs-dir", swept["runs"])
    assert result.exit_code == 0, result.output
    assert (f"files    {run}/work: what the trial wrote, changed or deleted in {swept['folder']} "
            f"(it ran in {swept['folder']})") in result.stdout.splitlines()


@pytest.mark.parametrize("launcher", ["fork", "spawn"])
def test_a_relative_default_of_the_script_resolves_from_the_folder(tmp_path, launcher):
    flags_file = make_project(tmp_path, flags={"lr": 0.5}, trials=1)
    before = snapshot(flags_file.parent)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", launcher)
    assert result.exit_code == 0, result.output + result.stderr
    (run,) = run_dirs(runs)
    assert info(run)["command"][2:] == ["--lr=0.5"]  # --data left to its default, ../data/train.csv
    assert metrics_of(run)["eval_accuracy"] == 1.0
    assert snapshot(flags_file.parent) == before


def test_sweep_log_reaches_the_run_inside_the_folder(tmp_path):
    """The trial sees a runs directory of its own, with its real run directory in it: a
    script that reports through sweep.log (to SWEEP_RUN_DIR) still reaches it."""
    flags_file = make_project(tmp_path, flags={"dropout": 0.3}, trials=1, script="logged.py")
    runs = flags_file.parent / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output + result.stderr
    (run,) = run_dirs(runs)
    assert metrics_of(run)["eval_accuracy"] == pytest.approx(0.65)


def test_inplace_runs_in_the_folder_itself(tmp_path):
    flags_file = make_project(tmp_path, flags={"lr": 0.5}, workdir="inplace", trials=1)
    folder = flags_file.parent
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.output + result.stderr
    (run,) = run_dirs(runs)
    assert saved(folder / "model.pt")["config"]["lr"] == 0.5  # the user's file, replaced: opted in
    assert not (folder / "last.pt").exists()
    assert list((run / "work").iterdir()) == []
    shown = sweep_cli("show", run.name, "--runs-dir", runs).stdout
    assert f"files    {folder}: the trial ran in the folder itself (workdir: inplace)" in shown


def test_a_bad_workdir_setting_is_one_line_and_exit_2(tmp_path):
    flags_file = make_project(tmp_path, workdir="shared")
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {flags_file}: workdir: must be one of isolated, inplace; got 'shared'"
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- which folder is protected


def test_the_protected_folder_holds_the_flags_file_and_the_script(tmp_path):
    (tmp_path / "configs").mkdir()
    where = workdir.place(tmp_path / "configs", tmp_path / "train.py", tmp_path / "runs", "inplace")
    assert (where.how, where.folder, where.cwd) == ("inplace", tmp_path / "configs", tmp_path / "configs")
    workdir._probed[(tmp_path, tmp_path / "runs")] = None  # probed: overlays work
    where = workdir.place(tmp_path / "configs", tmp_path / "train.py", tmp_path / "runs")
    assert (where.how, where.folder, where.cwd) == ("overlay", tmp_path, tmp_path / "configs")


# ---------------------------------------------------------------- the probe, started ahead


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe runs on Linux")
@pytest.mark.parametrize("taken", [True, False])
def test_a_probe_started_ahead_runs_in_a_child_and_leaves_nothing(tmp_path, taken):
    """The sweep starts the probe before it imports optuna; the driver's ``place`` collects its
    verdict (or, when the sweep stops first, ``settle`` does) and ``settle`` removes its folder
    once the first trial runs: the same answer as a probe made on the spot, its child reaped
    and its folder gone."""
    from sweep.launch import children

    flags_file = make_project(tmp_path)
    folder, runs = flags_file.parent, tmp_path / "runs"
    before = set(children(os.getpid()))
    workdir.probe_ahead(folder, folder / "train.py", runs)
    started = set(children(os.getpid())) - before
    assert len(started) == 1  # the probe's child, running (or ended, unreaped) meanwhile
    if taken:
        where = workdir.place(folder, folder / "train.py", runs)
        assert not started & set(children(os.getpid()))  # reaped
        assert list((runs / ".sweep").glob("workdir-probe-*"))  # removed later, as the first trial runs
        workdir.settle()
    else:
        workdir.settle()
        where = workdir.place(folder, folder / "train.py", runs)  # the answer was kept
    workdir._probed.clear()
    assert where == workdir.place(folder, folder / "train.py", runs)  # as a probe made on the spot
    assert not started & set(children(os.getpid()))
    assert [p.name for p in (runs / ".sweep").iterdir()] == []
    assert sorted(p.name for p in folder.iterdir()) == sorted(["train.py", "logged.py", "flags.yaml", "model.pt",
                                                               "last.pt", "checkpoints", "notes.txt"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe runs on Linux")
def test_a_probe_folder_left_by_a_killed_sweep_is_removed_by_the_next(tmp_path):
    """A sweep killed between its probe's start and its first trial leaves the probe's folder
    (the kernel's work folder in it unreadable); the next sweep's probe removes it, and leaves
    a live sweep's alone."""
    flags_file = make_project(tmp_path)
    folder, state = flags_file.parent, tmp_path / "runs" / ".sweep"
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()  # its pid: no process now
    dead, live = state / f"workdir-probe-{done.pid}", state / f"workdir-probe-{os.getppid()}"
    for left in (dead, live):
        (left / ".overlay" / "work").mkdir(parents=True)
        (left / "work" / "proj").mkdir(parents=True)
    (dead / ".overlay" / "work").chmod(0)
    workdir.probe_ahead(folder, folder / "train.py", tmp_path / "runs")
    workdir.place(folder, folder / "train.py", tmp_path / "runs")
    workdir.settle()
    assert [p.name for p in state.iterdir()] == [live.name]


def test_a_sweep_that_stops_before_its_first_trial_leaves_no_probe(tmp_path):
    flags_file = make_project(tmp_path)
    result = sweep_cli("run", flags_file, "--resume", "s20000101T000000Z-000000", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 1, result.stderr
    assert "nothing to resume" in result.stderr
    assert not list((tmp_path / "runs" / ".sweep").glob("workdir-probe-*"))


# ---------------------------------------------------------------- without namespaces


@pytest.fixture
def no_namespaces(monkeypatch):
    """A machine where mount namespaces are refused (a container without CAP_SYS_ADMIN)."""
    workdir._probed.clear()
    monkeypatch.setattr(workdir, "_probe", lambda where: "unshare: Operation not permitted")
    yield
    workdir._probed.clear()


@pytest.mark.skipif(workdir.landlock_abi() < 1, reason="needs Landlock (Linux 5.13+)")
@pytest.mark.parametrize("launcher", ["fork", "spawn"])
def test_the_mirror_refuses_writes_into_the_users_files(tmp_path, no_namespaces, launcher):
    """Small files are copied into the mirror (the trial may change them), a large one is
    linked and Landlock refuses to write through the link; ../data still resolves."""
    files = dict(USER_FILES, **{"model.pt": b"x" * (workdir.COPY_MAX + 1)})
    flags_file = make_project(tmp_path, files=files, flags={"lr": [0.1, 0.5], "data": "../data/train.csv"})
    folder = flags_file.parent
    before = snapshot(folder)
    runs = folder / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", launcher, "--jobs", "2")
    assert result.exit_code == 1
    assert result.stderr.count("cannot give trials a private copy-on-write view") == 1
    assert snapshot(folder) == before
    for run in run_dirs(runs):
        assert info(run)["status"] == "failed"
        mirror = run / "work" / folder.name
        assert "PermissionError: [Errno 13] Permission denied: 'model.pt'" in info(run)["error"]
        assert f'File "{mirror / "train.py"}"' in info(run)["error"]  # the script ran from the mirror
        assert saved(mirror / "checkpoints" / "ckpt.pt")["config"]["lr"] == flags_of(run)["lr"]
        assert not (mirror / "last.pt").exists()
        assert info(run)["workdir"]["cwd"] == str(mirror)


def test_without_landlock_large_files_are_left_out(tmp_path, no_namespaces, monkeypatch):
    monkeypatch.setattr(workdir, "landlock_abi", lambda: 0)
    files = dict(USER_FILES, **{"model.pt": b"x" * (workdir.COPY_MAX + 1)})
    flags_file = make_project(tmp_path, files=files, flags={"lr": 0.5}, trials=1)
    folder = flags_file.parent
    before = snapshot(folder)
    result = sweep_cli("run", flags_file, "--runs-dir", folder / "runs", "--launcher", "spawn")
    assert result.exit_code == 0, result.output + result.stderr
    assert "Landlock is not available" in result.stderr and "larger files are left out" in result.stderr
    assert snapshot(folder) == before
    (run,) = run_dirs(folder / "runs")
    assert saved(run / "work" / folder.name / "model.pt")["config"]["lr"] == 0.5


# ---------------------------------------------------------------- other users, other mounts


NOBODY_PYTHON = "/usr/bin/python3"
AS_NOBODY = """
import functools, subprocess, sys
from pathlib import Path
from sweep import workdir
folder = Path(sys.argv[1])
where = workdir.place(folder, folder / "train.py", folder / "runs")
assert where.how == "overlay", where.note
run = folder / "runs" / "r1"
(folder / "runs").mkdir(exist_ok=True)
stage = folder / "runs" / ".new-r1"
stage.mkdir()
workdir.prepare(where, stage, run)
stage.rename(run)
proc = subprocess.run([sys.executable, "train.py", "--lr=0.5"], cwd=workdir.cwd(where, run),
                      preexec_fn=functools.partial(workdir.enter, workdir.setup(where, run)))
workdir.cleanup(where, run)
sys.exit(proc.returncode)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(NOBODY_PYTHON, os.X_OK),
                    reason="needs root (to become nobody) and a system python nobody can run")
def test_a_user_who_is_not_root_gets_the_same_view_through_a_user_namespace():
    base = Path(tempfile.mkdtemp(prefix="sweep-nobody-"))
    try:
        flags_file = make_project(base)
        folder = flags_file.parent
        before = snapshot(folder)
        nobody = 65534
        for path in [base, *base.rglob("*")]:
            os.chown(path, nobody, nobody)
        os.chmod(base, 0o755)
        env = python_env(HOME=str(base))
        proc = subprocess.run([NOBODY_PYTHON, "-c", AS_NOBODY, str(folder)], env=env, cwd=base,
                              capture_output=True, text=True, timeout=60, user=nobody, group=nobody)
        assert proc.returncode == 0, proc.stderr
        assert "eval_accuracy: 1.0000" in proc.stdout
        assert snapshot(folder) == before
        work = folder / "runs" / "r1" / "work"
        assert saved(work / "model.pt")["config"]["lr"] == 0.5
        assert (work / "model.pt").stat().st_uid == nobody
    finally:
        shutil.rmtree(base, ignore_errors=True)


IN_A_MOUNT_NAMESPACE = """
import ctypes, subprocess, sys
from pathlib import Path
from sweep import workdir
folder = Path(sys.argv[1])
disk = folder / "disk"
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "disk", str(disk)], check=True)
(disk / "shard0.csv").write_text("on another disk\\n")
where = workdir.place(folder, folder / "train.py", folder.parent / "runs")
assert where.how == "overlay" and where.mounts == (str(disk),), where
run = folder.parent / "runs" / "r1"
stage = folder.parent / "runs" / ".new-r1"
stage.mkdir(parents=True)
workdir.prepare(where, stage, run)
stage.rename(run)
code = '''
print(open("disk/shard0.csv").read().strip())
try:
    open("disk/new.csv", "w")
except OSError as exc:
    print(type(exc).__name__, exc.errno)
'''
proc = subprocess.run([sys.executable, "-c", code], cwd=workdir.cwd(where, run), capture_output=True, text=True,
                      preexec_fn=lambda: workdir.enter(workdir.setup(where, run)))
print(proc.stdout + proc.stderr, end="")
print(sorted(p.name for p in disk.iterdir()))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"),
                    reason="needs root and unshare(1) to mount a filesystem inside the folder")
def test_a_filesystem_mounted_inside_the_folder_is_shown_read_only(tmp_path):
    """An overlay does not reach into other mounts: without care the dataset disk would look
    empty to the trial. It is shown as it is, read-only (all inside a throwaway namespace)."""
    folder = tmp_path / "proj"
    (folder / "disk").mkdir(parents=True)
    (folder / "train.py").write_text("")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                           IN_A_MOUNT_NAMESPACE, str(folder)], env=python_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["on another disk", "OSError 30", "['shard0.csv']"]


def test_the_warm_server_removes_an_ended_trial_s_scratch_folders_not_the_sweep(tmp_path, monkeypatch):
    """The overlay's scratch folders and the empty folders of a trial's view of its own run are
    removed by the launcher's server once the trial's end is told, while the sweep records it
    (issue 17: in the sweep, the rmdirs ran beside the next trial's mounts and waited on them);
    none is left."""
    tidied: list[str] = []
    real = workdir.cleanup
    monkeypatch.setattr(workdir, "cleanup", lambda where, run: (tidied.append(run.name), real(where, run))[1])
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(SCRIPTS / "launch" / "stdlib_train.py", root / "train.py")
    (root / "flags.yaml").write_text("script: train.py\ntrials: 3\nflags:\n  lr: [0.1, 0.5, 1.0]\n")
    result = sweep_cli("run", root / "flags.yaml", "--runs-dir", root / "runs", "--launcher", "fork")
    assert result.exit_code == 0, result.output + result.stderr
    runs = run_dirs(root / "runs")
    assert [info(r)["status"] for r in runs] == ["completed"] * 3
    assert [name for name in tidied if not name.startswith("workdir-probe")] == []
    for run in runs:
        assert info(run)["workdir"]["mode"] == "overlay"
        assert not (run / ".overlay").exists()
        assert os.listdir(run / "work") == []  # the trial wrote nothing; its view's folders are gone
