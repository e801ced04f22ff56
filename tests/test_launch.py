"""The launchers and parallel trials, end to end: real sweeps, real trial processes.

Trials run tests/scripts/launch/trial.py, which records what it was given (argv, ``__name__``,
cwd, environment, its parent's thread count, random draws, torch's thread count) to
``$SWEEP_TEST_PROBES/<trial>.json`` and does what its ``--plan`` entry says (pollute globals,
segfault, exit, raise, hang, wait for other trials to start). The warm fork launcher's server
imports torch once per sweep (seconds on these machines), so fork sweeps are few and each
checks several things; stdlib-only sweeps use ``--launcher spawn``. Concurrency is proven with
a barrier (a trial waits for N trials to have started), never with timings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sweep import launch

from helpers import (
    SCRIPTS,
    alive,
    flags_of,
    info,
    metrics_of,
    project,
    python_env,
    run_dirs,
    survivors,
    sweep_cli,
    wait_for,
)

LAUNCH = SCRIPTS / "launch"
TRIAL = LAUNCH / "trial.py"
CORES = len(os.sched_getaffinity(0))


# ---------------------------------------------------------------- helpers


def plan_project(root: Path, plan: list[str], **top: Any) -> Path:
    """trial.py swept over ``x``, trial N doing ``plan[N]``."""
    return project(root, {"plan": ",".join(plan), "x": {"min": 0.0, "max": 1.0}}, script=TRIAL,
                   trials=len(plan), **top)


def probes(folder: Path) -> list[dict[str, Any]]:
    """Probe records in trial order."""
    return sorted((json.loads(p.read_text()) for p in folder.glob("*.json")), key=lambda r: r["trial"])


# ---------------------------------------------------------------- the warm launcher's isolation

# One real `python -m sweep run` with the fork launcher, one trial at a time; the tests below
# each read a part of it. Trial N does ISOLATION[N].
ISOLATION = [
    "torch+pollute",  # 0: sets globals on torch/json/sweep, env, sys.path, seeds, 7 threads, chdir
    "torch+exit0",  # 1: must see none of it; sys.exit(0) after its metric
    "segv",  # 2: segfaults
    "torch",  # 3: after a segfault, still clean and fresh
    "exit3",  # 4: sys.exit(3) after its metric
    "raise",  # 5: an uncaught exception
    "atexit",  # 6: metric printed by an exit handler, another by a non-daemon thread
    "hang",  # 7: sleeps (and its child too) until the timeout kills them
    "torch",  # 8: the sweep went on to the end
]
TIMEOUT_S = 5


@pytest.fixture(scope="module")
def isolation(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("isolation")
    probe_dir = root / "probes"
    probe_dir.mkdir()
    flags_file = plan_project(root / "proj", ISOLATION, seed=11, timeout=TIMEOUT_S)
    runs = root / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs),
         "--launcher", "fork", "--jobs", "1"],
        env=python_env(SWEEP_TEST_PROBES=str(probe_dir)), capture_output=True, text=True, timeout=180,
    )
    dirs = run_dirs(runs)
    return {"proc": proc, "runs": dirs, "probes": {p["trial"]: p for p in probes(probe_dir)},
            "flags_file": flags_file}


def test_fork_sweep_runs_every_trial_and_reports_each_verdict(isolation):
    proc, runs = isolation["proc"], isolation["runs"]
    assert proc.returncode == 1, proc.stderr  # some trials failed, on purpose
    assert [info(r)["trial"] for r in runs] == list(range(len(ISOLATION)))
    statuses = {i: info(r)["status"] for i, r in enumerate(runs)}
    assert statuses == {0: "completed", 1: "completed", 2: "failed", 3: "completed", 4: "failed",
                        5: "failed", 6: "completed", 7: "failed", 8: "completed"}, proc.stderr
    assert all(info(r)["launcher"] == "fork" for r in runs)


def test_trials_run_in_the_warm_server_as_main(isolation):
    """Each trial is a fork of the one warm server (torch already imported), runs the script as
    __main__ with argv [script, --flag=value...], and gets its own cwd and environment."""
    script = isolation["flags_file"].parent / "trial.py"
    servers = set()
    for run in isolation["runs"]:
        number = info(run)["trial"]
        probe = isolation["probes"][number]
        flags = flags_of(run)
        assert probe["name"] == "__main__"
        assert os.path.samefile(probe["argv"][0], script)
        assert os.path.samefile(probe["file"], script)
        assert probe["argv"][1:] == [f"--plan={flags['plan']}", f"--x={flags['x']!r}"]
        assert probe["cwd"] == str(isolation["flags_file"].parent.resolve())  # tests/test_workdir.py
        assert probe["env"]["SWEEP_RUN_DIR"] == str(run.resolve())
        assert json.loads(probe["env"]["SWEEP_FLAGS"]) == flags
        assert probe["env"]["SWEEP_TRIAL"] == str(number)
        assert probe["torch_preloaded"] is True  # the warm server imported it
        assert "sweep.forkserver" in probe["parent"]["cmdline"]
        servers.add(probe["ppid"])
        assert probe["pid"] != probe["ppid"]
    assert len(servers) == 1
    assert len({p["pid"] for p in isolation["probes"].values()}) == len(ISOLATION)


def test_a_trial_that_changes_globals_does_not_affect_the_next(isolation):
    first = isolation["probes"][0]
    assert first["leaks"] == {"json": None, "sweep": None, "sys.modules": False, "sys.path": False,
                              "torch": None}
    later = [isolation["probes"][n] for n in (1, 3, 8)]
    for probe in later:
        assert probe["leaks"] == first["leaks"]
        assert probe["env"]["SWEEP_TEST_LEAK"] is None
        assert probe["dtype"] == "torch.float32"
        assert probe["cwd"] != "/"
    assert isolation["probes"][2]["leaks"]["sweep"] is None  # a stdlib-only trial too


def test_random_state_is_fresh_in_every_trial(isolation):
    torch_trials = [isolation["probes"][n] for n in (0, 1, 3, 8)]
    for gen in ("random", "numpy", "torch"):
        draws = [p[gen] for p in torch_trials]
        assert len(set(draws)) == len(draws), (gen, draws)
        # Trial 0 seeded every generator with 0: no later trial starts from that state.
        assert isolation["probes"][0]["seeded"][gen] not in draws[1:], gen
    stdlib = [p["random"] for p in isolation["probes"].values()]
    assert len(set(stdlib)) == len(stdlib)


def test_torch_thread_count_does_not_leak_and_one_job_gets_every_core(isolation):
    # Trial 0 called torch.set_num_threads(7); the others still see their share: every core.
    for n in (0, 1, 3, 8):
        probe = isolation["probes"][n]
        assert probe["torch_threads"] == CORES, n
        assert probe["env"]["OMP_NUM_THREADS"] == str(CORES)
        assert probe["env"]["MKL_NUM_THREADS"] == str(CORES)
    for run in isolation["runs"]:
        assert info(run)["threads"] == CORES


def test_warm_server_has_one_thread_and_never_initialises_cuda(isolation):
    for probe in isolation["probes"].values():
        assert probe["parent"]["Threads"] == 1, probe["parent"]
        # The sweep process (the server's parent) has no other threads either.
        assert probe["grandparent"]["Threads"] == 1, probe["grandparent"]
        assert probe["grandparent"]["cmdline"][1:3] == ["-m", "sweep"]
    for n in (0, 1, 3, 8):
        assert isolation["probes"][n]["cuda_initialized"] is False


def test_segfault_fails_only_that_trial(isolation):
    run = isolation["runs"][2]
    rec = info(run)
    assert rec["status"] == "failed"
    assert rec["exit_code"] == -11
    assert "SIGSEGV" in rec["reason"]
    assert info(isolation["runs"][3])["status"] == "completed"


def test_sys_exit_zero_after_the_metric_completes(isolation):
    run = isolation["runs"][1]
    rec = info(run)
    assert (rec["status"], rec["exit_code"]) == ("completed", 0)
    assert metrics_of(run)["eval_accuracy"] == flags_of(run)["x"]
    assert "never" not in (run / "output.log").read_text()


def test_sys_exit_three_fails_with_its_exit_code(isolation):
    rec = info(isolation["runs"][4])
    assert (rec["status"], rec["exit_code"], rec["reason"]) == ("failed", 3, "exit code 3")


def test_an_exception_leaves_its_traceback_in_run_json(isolation):
    rec = info(isolation["runs"][5])
    assert (rec["status"], rec["exit_code"]) == ("failed", 1)
    assert "Traceback (most recent call last)" in rec["error"]
    assert "RuntimeError: boom in trial 5" in rec["error"]
    # As `python trial.py` shows it: the script's frames, not the launcher's.
    frames = [line for line in rec["error"].splitlines() if line.lstrip().startswith("File ")]
    assert frames and all("trial.py" in line for line in frames), rec["error"]


def test_exit_handlers_and_non_daemon_threads_run_as_in_a_fresh_interpreter(isolation):
    run = isolation["runs"][6]
    assert info(run)["status"] == "completed", (run / "output.log").read_text()
    # The script's own weakref.finalize callbacks run too (the warm server's own are skipped).
    output = (run / "output.log").read_text().splitlines()
    assert "thread_done: 1" in output and "finalized: 1" in output
    # Bare "name: 1" lines are not metrics (issue 10: echoed configuration is not read).
    assert metrics_of(run) == {"eval_accuracy": flags_of(run)["x"]}


def test_a_hanging_trial_is_stopped_with_its_children(isolation):
    rec = info(isolation["runs"][7])
    assert rec["status"] == "failed"
    assert rec["reason"] == f"timed out after {TIMEOUT_S} s"
    probe = isolation["probes"][7]
    assert not alive(probe["pid"])
    assert not alive(probe["grandchild"])
    assert info(isolation["runs"][8])["status"] == "completed"


# ---------------------------------------------------------------- the next trial's process, forked ahead


def stdlib_job(tmp_path: Path, number: int) -> launch.Job:
    output = tmp_path / f"output-{number}.log"
    return launch.Job([sys.executable, str(LAUNCH / "stdlib_train.py"), f"--lr={0.1 * (number + 1)}"],
                      python_env(), tmp_path, output)


def ended(launcher: launch.Launcher, proc: launch.Process, within: int = 600) -> int | None:
    """Its exit status, once it has ended (None after ``within`` tenths of a second)."""
    for _ in range(within):
        if launcher.poll(proc) is not None:
            break
        launcher.wait([proc], 0.1)
    return proc.returncode


def spares(server: int) -> list[int]:
    return [p for p in launch.children(server) if alive(p)]


def test_the_next_trial_s_process_is_forked_before_it_is_asked_for(tmp_path):
    """The warm server forks the next trial's process while it waits (issue 17: the fork and
    the set-up that needs no request are off the path between one trial and the next): the
    trial runs in it; a new one is forked as a trial's end is told; one killed meanwhile is
    replaced at once; none outlives the launcher."""
    launcher = launch.make("fork")
    try:
        launcher.ready()
        server = launcher._server.pid
        assert wait_for(lambda: len(spares(server)) == 1, timeout=30)
        first = spares(server)[0]
        proc = launcher.start(stdlib_job(tmp_path, 0))
        assert proc.pid == first
        assert ended(launcher, proc) == 0
        assert (tmp_path / "output-0.log").read_text().endswith("eval_accuracy: 0.97\n")
        assert wait_for(lambda: len(spares(server)) == 1 and spares(server)[0] != first, timeout=30)
        second = spares(server)[0]
        os.kill(second, signal.SIGKILL)
        assert wait_for(lambda: not alive(second), timeout=30)
        proc = launcher.start(stdlib_job(tmp_path, 1))
        assert proc.pid != second and proc.error is None
        assert ended(launcher, proc) == 0
        assert "eval_accuracy: " in (tmp_path / "output-1.log").read_text()
        assert wait_for(lambda: len(spares(server)) == 1, timeout=30)
        third = spares(server)[0]
    finally:
        launcher.close()
    assert not alive(third)


def test_a_warm_trial_s_environment_is_exactly_its_job_s_and_the_server_s_objects_are_frozen(tmp_path,
                                                                                              monkeypatch):
    """The child sets only the variables that differ from the server's (each one set costs a
    fresh fork its copy of the memory touched): one the server has and the job lacks is gone,
    the job's own are there. The server's objects are frozen (``gc.freeze``): the trial's
    garbage collector never walks them, so their pages stay shared instead of copied."""
    monkeypatch.setenv("SWEEP_TEST_LEAK", "from the server")  # inherited by the server
    probes_dir = tmp_path / "probes"
    probes_dir.mkdir()
    launcher = launch.make("fork")
    try:
        env = {k: v for k, v in python_env(SWEEP_TEST_PROBES=str(probes_dir), SWEEP_TRIAL="3",
                                           OMP_NUM_THREADS="1").items() if k != "SWEEP_TEST_LEAK"}
        proc = launcher.start(launch.Job([sys.executable, str(TRIAL), "--x=0.25"], env, tmp_path,
                                         tmp_path / "output.log"))
        assert ended(launcher, proc) == 0, (tmp_path / "output.log").read_text()
    finally:
        launcher.close()
    probe = json.loads((probes_dir / "3.json").read_text())
    assert probe["env"]["SWEEP_TEST_LEAK"] is None
    assert probe["env"]["SWEEP_TRIAL"] == "3" and probe["env"]["OMP_NUM_THREADS"] == "1"
    assert probe["gc_frozen"] > 1000  # the server's modules, sweep's among them


# ---------------------------------------------------------------- same results either way


def test_fork_and_spawn_give_the_same_results(tmp_path):
    flags_file = project(tmp_path / "proj", {"lr": [0.01, 0.03, 0.1, 0.3], "hidden": [4, 8, 16]},
                         script=LAUNCH / "determ.py", trials=3)
    results = {}
    for launcher in ("fork", "spawn"):
        runs = tmp_path / launcher
        result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", launcher,
                           "--seed", 5, "--jobs", 2)
        assert result.exit_code == 0, result.output
        results[launcher] = {info(r)["trial"]: (flags_of(r), metrics_of(r)) for r in run_dirs(runs)}
        assert all(info(r)["launcher"] == launcher for r in run_dirs(runs))
    assert sorted(results["fork"]) == [0, 1, 2]
    assert results["fork"] == results["spawn"]
    assert len({json.dumps(flags) for flags, _ in results["fork"].values()}) > 1


# ---------------------------------------------------------------- thread shares, parallel trials


@pytest.mark.parametrize("launcher", ["fork", "spawn"])
def test_two_jobs_share_the_cores_run_at_once_and_get_one_gpu_each(tmp_path, probe_dir, launcher):
    # Every trial waits until two have started (so two really ran at once), sleeps 1 s,
    # and lists the trials running with it, with their CUDA_VISIBLE_DEVICES.
    plan = ["torch+wait=2+sleep=1+running"] * 4
    flags_file = plan_project(tmp_path / "proj", plan)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", launcher, "--jobs", 2,
                       "--gpus", "0,1", env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    seen = probes(probe_dir)
    assert [p["trial"] for p in seen] == [0, 1, 2, 3]
    share = max(1, CORES // 2)
    for probe in seen:
        assert probe["env"]["OMP_NUM_THREADS"] == str(share)
        assert probe["env"]["MKL_NUM_THREADS"] == str(share)
        assert probe["torch_threads"] == share
        assert probe["torch_preloaded"] is (launcher == "fork")
        assert probe["met"] is True
        assert probe["env"]["CUDA_VISIBLE_DEVICES"] in ("0", "1")
        gpus = [name.split("-")[2] for name in probe["running"]]
        assert len(gpus) <= 2 and len(set(gpus)) == len(gpus), probe["running"]
    for run in run_dirs(runs):
        assert info(run)["threads"] == share
        assert info(run)["env"]["CUDA_VISIBLE_DEVICES"] in ("0", "1")
    first, second = seen[0], seen[1]
    assert {first["env"]["CUDA_VISIBLE_DEVICES"], second["env"]["CUDA_VISIBLE_DEVICES"]} == {"0", "1"}
    assert max(first["start"], second["start"]) < min(first["end"], second["end"])  # overlap


def test_one_spawned_job_gets_every_core(tmp_path, probe_dir):
    flags_file = plan_project(tmp_path / "proj", ["torch"])
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn",
                       "--jobs", 1, env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    (probe,) = probes(probe_dir)
    assert probe["torch_preloaded"] is False
    assert probe["torch_threads"] == CORES
    assert probe["env"]["OMP_NUM_THREADS"] == probe["env"]["MKL_NUM_THREADS"] == str(CORES)


def test_jobs_auto_runs_one_trial_per_core(tmp_path, probe_dir):
    plan = [f"wait={CORES}+running"] * (CORES + 1)
    flags_file = plan_project(tmp_path / "proj", plan)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--launcher", "spawn", "--jobs", "auto",
                       env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    seen = probes(probe_dir)
    assert len(seen) == CORES + 1
    assert all(p["met"] for p in seen)  # CORES trials were running at once
    assert max(len(p["running"]) for p in seen) <= CORES  # and never more
    assert all(p["env"]["OMP_NUM_THREADS"] == "1" for p in seen)
    assert all(info(r)["threads"] == 1 for r in run_dirs(runs))


# ---------------------------------------------------------------- GPUs by slot


def gpu_sweep(tmp_path: Path, probe_dir: Path, trials: int, *options: Any) -> list[dict[str, Any]]:
    flags_file = plan_project(tmp_path / "proj", ["wait=2+running"] * trials)
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--launcher", "spawn",
                       "--jobs", 2, *options, env={"SWEEP_TEST_PROBES": str(probe_dir)})
    assert result.exit_code == 0, result.output
    seen = probes(probe_dir)
    assert len(seen) == trials and all(p["met"] for p in seen)
    return seen


def test_per_gpu_packs_trials_on_one_gpu(tmp_path, probe_dir):
    seen = gpu_sweep(tmp_path, probe_dir, 2, "--gpus", "0", "--per-gpu", 2)
    assert [p["env"]["CUDA_VISIBLE_DEVICES"] for p in seen] == ["0", "0"]


def test_a_trial_without_a_gpu_slot_sees_no_gpu(tmp_path, probe_dir):
    seen = gpu_sweep(tmp_path, probe_dir, 3, "--gpus", "0")
    assert sorted(p["env"]["CUDA_VISIBLE_DEVICES"] for p in seen[:2]) == ["", "0"]
    for probe in seen:
        gpus = [name.split("-")[2] for name in probe["running"]]
        assert gpus.count("0") <= 1, probe["running"]  # never two trials on the one GPU
        assert probe["env"]["CUDA_VISIBLE_DEVICES"] in ("", "0")


def test_bad_gpu_list_is_a_usage_error(tmp_path):
    flags_file = plan_project(tmp_path / "proj", ["ok"])
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir", str(runs), "--gpus", "x,y"],
        env=python_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "Error: --gpus takes GPU ids separated by commas, e.g. 0,1; got 'x,y'\n"
    assert proc.stdout == ""
    for gpus in (",", "0,one", "0;1"):
        result = sweep_cli("run", flags_file, "--runs-dir", runs, "--gpus", gpus)
        assert result.exit_code == 2
        assert result.stderr == f"Error: --gpus takes GPU ids separated by commas, e.g. 0,1; got {gpus!r}\n"
    assert not runs.exists()


# ---------------------------------------------------------------- the server dies with the sweep

# A process that opens a launcher, says its server's pid, and waits to be killed.
HOLDER = """
import sys
from sweep import launch

launcher = launch.make(sys.argv[1])
launcher.ready()
print(launcher._server.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("name", ["fork", "spawn"])
def test_the_server_dies_with_the_sweep_even_after_kill_9(name):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=python_env())
    try:
        assert holder.stdout is not None
        server = int(holder.stdout.readline())
        assert alive(server)
        holder.kill()
        holder.wait(timeout=30)
        assert not survivors([server], within=10, command=(b"forkserver",)), "the server outlived the sweep"
    finally:
        holder.kill()
        holder.wait()


def test_a_server_whose_sweep_died_before_it_asked_to_follow_exits_at_once():
    """The request to die with the sweep is made as the server starts: if the sweep is gone by
    then (here: the server's parent is not the pid it was given), the server exits."""
    proc = subprocess.run([sys.executable, "-m", "sweep.forkserver"], stdin=subprocess.PIPE, capture_output=True,
                          timeout=30, env=python_env(SWEEP_SERVER_PARENT="1"))
    assert proc.returncode == 1
    assert proc.stdout == b""  # never said it was ready

