"""A wandb-instrumented training script (tests/wandb_sweeps/train.py: wandb.init(config=...),
wandb.config, wandb.log) swept by a W&B sweep file, unchanged, offline, under both launchers:
wandb.config carries the trial's flags, every wandb.log reaches the run's history with its step
(so the pruner hears it), and wandb's own files stay in the run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sweep import wbhook

from helpers import flags_of, info, metrics_of, run_dirs, sweep_cli, written

wandb = pytest.importorskip("wandb")  # the user's package, a test dependency of sweep's

CORPUS = Path(__file__).parent / "wandb_sweeps"
SWEEP = """\
# nested parameters, hyperband on val_loss: as in W&B's own examples
program: train.py
method: random
metric:
  name: val_loss
  goal: minimize
run_cap: 2
early_terminate:
  type: hyperband
  min_iter: 1
parameters:
  learning_rate:
    values: [0.05, 0.1]
  epochs:
    value: 3
  optimizer:
    parameters:
      name:
        values: [sgd, adam]
      momentum:
        value: 0.9
"""


@pytest.mark.parametrize("launcher", ["fork", "spawn"])
def test_a_wandb_script_runs_offline_with_the_trial_s_flags(tmp_path, launcher):
    shutil.copy(CORPUS / "train.py", tmp_path / "train.py")
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    runs = tmp_path / "runs"
    trials = 2 if launcher == "fork" else 1  # a spawned trial imports torch and wandb afresh: slow
    result = sweep_cli("run", tmp_path / "sweep.yaml", "--launcher", launcher, "--runs-dir", runs, "--seed", "1",
                       "--trials", trials, env={"WANDB_MODE": "online", "WANDB_API_KEY": ""})
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "sweep.yaml", "train.py"]  # nothing of wandb's here
    found = run_dirs(runs)
    assert len(found) == trials
    for run in found:
        flags = flags_of(run)
        seen = json.loads(written(run, "wandb_config.json").read_text())
        # The sweep's values over the script's defaults, nested as W&B's agent nests them.
        assert seen["config"] == {"learning_rate": flags["learning_rate"], "epochs": 3, "hidden": 8,
                                  "batch_size": 32, "optimizer": {"name": flags["optimizer.name"], "momentum": 0.9}}
        assert seen["mode"] == "offline" and seen["sweep"] == info(run)["sweep"]
        assert Path(seen["dir"]).resolve().is_relative_to(run.resolve())
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        logged = [h for h in history if "val_loss" in h and h.get("source") is None]
        assert [h["step"] for h in logged] == [0, 1, 2]
        assert [h["epoch"] for h in logged] == [0, 1, 2] and all("train/loss" in h for h in logged)
        assert metrics_of(run)["val_loss"] == logged[-1]["val_loss"]
        assert (run / "wandb").is_dir()
    _pruner_heard_every_step(runs, trials)


def _pruner_heard_every_step(runs: Path, trials: int) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (journal,) = (runs / ".sweep").glob("*.journal")
    study = optuna.load_study(study_name=None, storage=JournalStorage(JournalFileBackend(str(journal))))
    assert [sorted(t.intermediate_values) for t in study.trials] == [[0, 1, 2]] * trials


def test_w_and_b_steps_follow_commit_and_explicit_steps(tmp_path, monkeypatch):
    """W&B's step rules: a log without step commits and moves on; commit=False stays on the
    step; an explicit step jumps there."""
    monkeypatch.setenv("SWEEP_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("SWEEP_FLAGS", raising=False)

    class Run:
        def log(self, data, step=None, commit=None):
            return None

    wbhook._wrap(Run)
    run = Run()
    run.log({"a": 1})
    run.log({"b": 2}, commit=False)
    run.log({"c": 3})
    run.log({"d": 4}, step=10)
    run.log({"e": 5})
    run.log({"img": object(), "nested": {"x": 1.5}, "flag": True})
    steps = [(json.loads(line)["step"], sorted(set(json.loads(line)) - {"step", "time"}))
             for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # W&B holds step 10 open after an explicit step: the next plain log lands on it too.
    assert steps == [(0, ["a"]), (1, ["b"]), (1, ["c"]), (10, ["d"]), (10, ["e"]), (11, ["nested.x"])]


def test_a_trial_that_never_imports_wandb_is_untouched(tmp_path):
    """The hook waits for ``import wandb``: no environment change, no file, before it."""
    import os
    import subprocess
    import sys

    from helpers import python_env

    code = "import os, sys; print('wandb' in sys.modules, os.environ.get('WANDB_MODE'))"
    env = python_env(SWEEP_RUN_DIR=str(tmp_path), SWEEP_FLAGS="{}")
    env["PYTHONPATH"] = os.pathsep.join([wbhook.SITE_DIR, env["PYTHONPATH"]])
    env.pop("WANDB_MODE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout == "False None\n" and list(tmp_path.iterdir()) == []


def test_a_sitecustomize_of_the_user_s_still_runs(tmp_path):
    """The hook's sitecustomize comes first on a spawned trial's path: it runs the one it
    shadows (a virtual environment's, a distribution's) after arming the hook."""
    import os
    import subprocess
    import sys

    from helpers import python_env

    theirs = tmp_path / "site"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS'] = 'ran'\n")
    env = python_env(SWEEP_RUN_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join([wbhook.SITE_DIR, str(theirs), env["PYTHONPATH"]])
    code = "import os, sys; print(os.environ.get('THEIRS'), type(sys.meta_path[0]).__name__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout == "ran _Finder\n"


SUMMARY_SWEEP = """\
program: summary_train.py
method: grid
metric:
  name: best_val_acc
  goal: maximize
parameters:
  learning_rate:
    value: 0.2
  start:
    values: [mode, settings, anonymous]
"""


def test_summary_writes_are_the_run_s_metrics_and_init_stays_offline(tmp_path):
    """W&B's sweep reads its metric from the run summary: a summary write (item, attribute
    of wandb.summary, update, nested) is the run's final value. ``wandb.init(mode="online")``,
    an online Settings or ``anonymous=`` run offline all the same: no account is asked for."""
    shutil.copy(Path(__file__).parent / "scripts" / "wandb" / "summary_train.py", tmp_path)
    (tmp_path / "sweep.yaml").write_text(SUMMARY_SWEEP)
    runs = tmp_path / "runs"
    result = sweep_cli("run", tmp_path / "sweep.yaml", "--runs-dir", runs,
                       env={"WANDB_MODE": "online", "WANDB_API_KEY": ""})
    assert result.exit_code == 0, result.stderr
    for run in run_dirs(runs):
        assert info(run)["status"] == "completed", (flags_of(run), info(run).get("reason"))
        metrics = metrics_of(run)
        assert metrics["epochs_run"] == 3 and metrics["test.acc"] == pytest.approx(metrics["best_val_acc"] - 0.05)
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        best = max(h["val_acc"] for h in history if "val_acc" in h)
        assert metrics["best_val_acc"] == best
        assert [h["step"] for h in history if h.get("source") == "wandb.summary"] == [None] * 5  # 3 bests, 2 at the end
        assert list((run / "wandb").glob("offline-run-*"))


def test_a_prune_read_once_training_ended_leaves_wandb_finish_be(tmp_path, monkeypatch):
    """The trial logged its last steps before the sweep read them, and is in wandb.finish
    when the pruner's "stop" for step 2 arrives: stopping it then saves no epoch and loses
    wandb's files, so it runs on; the run completes and says the prune came late."""
    from sweep import launch, trial

    monkeypatch.setenv("SWEEP_RUN_DIR", str(tmp_path))
    seen = []

    class Run:
        def finish(self, exit_code=None):
            seen.append((tmp_path / wbhook.FINISHING).exists())
            history = tmp_path / "metrics.jsonl"
            history.write_text("".join(json.dumps({"step": s, "val_loss": 1.0 - s / 10}) + "\n" for s in range(3)))
            running = trial.Trial(0, {}, tmp_path, launch.Process(4_000_000), trial.Watch("val_loss"),
                                  lambda value, step: step == 2)
            running.update()
            seen.append((running.ending, running.pruned_at, running.pruned_late))
            running.proc.returncode = 0
            seen.append(running.finish().reason)

    wbhook._wrap_finish(Run)
    Run().finish()
    assert seen == [True, (None, None, 2), "the pruner said stop at step 2 after training had ended (in wandb.finish)"]
    assert not (tmp_path / wbhook.FINISHING).exists()


def test_init_is_offline_unless_the_script_asks_for_no_run(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    calls = []
    fake = type("wandb", (), {"init": staticmethod(lambda **kw: calls.append(kw["mode"]))})
    wbhook._offline_init(fake)
    fake.init(mode="online")
    fake.init(settings={"mode": "online"}, anonymous="must")
    fake.init(mode="disabled")
    fake.init(settings=wandb.Settings(mode="disabled"))
    fake.init()
    assert calls == ["offline", "offline", "disabled", "disabled", "offline"]


def test_a_wandb_trial_that_reports_nothing_is_told_about_wandb_log_and_summary(tmp_path):
    from sweep import launch, trial

    ended = trial.Trial(0, {}, tmp_path, launch.Process(4_000_000), trial.Watch("val_acc"), lambda v, s: False)
    assert ended.verdict(0, None) == ("failed", "reported no val_acc (print 'val_acc: VALUE' or call sweep.log)")
    (tmp_path / "wandb").mkdir()  # what wandb.init made in the run directory (WANDB_DIR)
    assert ended.verdict(0, None) == (
        "failed", "reported no val_acc (log it with wandb.log or set wandb.run.summary['val_acc'])")


def test_w_and_b_s_hyperband_counts_the_metric_s_values_not_wandb_s_steps(tmp_path):
    """W&B's hyperband judges bracket b on the b-th value of the metric (wandb/sweeps reads
    ``history[band]``): a script logging its train loss per batch and val_loss per epoch is
    judged per epoch, as there, not at wandb's step (a batch count)."""
    from sweep import launch, trial
    from sweep import spec as specs

    path = tmp_path / "sweep.yaml"
    shutil.copy(CORPUS / "train.py", tmp_path / "train.py")
    path.write_text(SWEEP)
    pruner = specs.load(path).pruner
    assert (pruner.name, pruner.count) == ("hyperband", "value")
    lines = [{"step": s, "train/loss": 1.0} for s in range(10)]
    lines[4]["val_loss"] = lines[9]["val_loss"] = 0.5  # one epoch = 5 batches
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    for per_value, steps in ((True, [0, 1]), (False, [4, 9])):
        heard: list[int] = []
        watch = trial.Watch("val_loss", per_value=per_value)
        running = trial.Trial(0, {}, tmp_path, launch.Process(4_000_000), watch,
                              lambda value, step, heard=heard: heard.append(step) is not None)
        running.update()
        assert heard == steps
