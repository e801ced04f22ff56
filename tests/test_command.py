"""``command:`` in the flags file: a trial's whole command line, with W&B's agent macros.

The pure part (macros -> argv, which launcher runs it) starts no process. Then each kind of
app that is swept unmodified (a Hydra app, click and fire apps with a subcommand, a positional
argument, a JSON file of arguments, a program that is not python) runs for real: a sweep of
two trials each, from the scripts in tests/scripts/command/.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweep import command, spec
from sweep.errors import SpecError

from helpers import SCRIPTS, flags_of, info, metrics_of, project, run_dirs, sweep_cli

APPS = SCRIPTS / "command"
PYTHON = sys.executable


# ---------------------------------------------------------------- macros, without a process


FLAGS = """
flags:
  lr: 0.001
  small: 1e-5
  epochs: 3
  name: a b
  amp: true
  tied: {value: false, switch: true}
  verbose: {value: true, switch: true}
"""
VALUES = {"lr": 0.001, "small": 1e-5, "epochs": 3, "name": "a b", "amp": True, "tied": False, "verbose": True}
# What each macro gives for VALUES: W&B's agent writes a value with Python's str (True, 1e-05);
# a switch (store_true) is bare when true and left out when false wherever a flag is an option.
EXPANDED = {
    "args": ["--lr=0.001", "--small=1e-05", "--epochs=3", "--name=a b", "--amp=True", "--verbose"],
    "args_no_equals": ["--lr", "0.001", "--small", "1e-05", "--epochs", "3", "--name", "a b",
                       "--amp", "True", "--verbose"],
    "args_no_hyphens": ["lr=0.001", "small=1e-05", "epochs=3", "name=a b", "amp=True", "tied=False",
                        "verbose=True"],
    "args_no_boolean_flags": ["--lr=0.001", "--small=1e-05", "--epochs=3", "--name=a b", "--amp", "--verbose"],
    "args_json": ['{"lr": 0.001, "small": 1e-05, "epochs": 3, "name": "a b", "amp": true, "tied": false, '
                  '"verbose": true}'],
    "env": [],
}


def load(write, words: list[str] | None, flags: str = FLAGS, **top: Any) -> spec.SweepSpec:
    head = {"script": "train.py", **top}
    if words is not None:
        head["command"] = words
    return spec.load(write(yaml.safe_dump(head, sort_keys=False) + flags))


@pytest.mark.parametrize("name", sorted(EXPANDED))
def test_each_macro_expands_as_the_wandb_agent_does(write, tmp_path, name):
    s = load(write, ["${interpreter}", "${program}", "${" + name + "}"])
    assert command.argv(s, VALUES, tmp_path / "run") == [PYTHON, str(tmp_path / "train.py"), *EXPANDED[name]]


def test_args_json_file_names_a_file_of_the_flags_in_the_run_directory(write, tmp_path):
    s = load(write, ["${interpreter}", "${program}", "${args_json_file}"])
    run = tmp_path / "run"
    assert command.argv(s, VALUES, run) == [PYTHON, str(tmp_path / "train.py"), str(run / "args.json")]
    run.mkdir()
    command.write_inputs(run, s, VALUES)
    assert json.loads((run / "args.json").read_text()) == VALUES
    relative = Path(os.path.relpath(run))  # a runs directory given relative: the path still works from work/
    assert command.argv(s, VALUES, relative)[-1] == str(run / "args.json")
    plain = load(write, None)
    command.write_inputs(tmp_path, plain, VALUES)
    assert not (tmp_path / "args.json").exists()  # only a command that names it gets one


def test_fixed_words_stay_where_they_are(write, tmp_path):
    words = ["${env}", "${interpreter}", "${program}", "net", "--data", "./data", "${args_no_hyphens}", "--",
             "paths.out=${oc.env:HOME}/out", "--config=${args_json_file}"]
    s = load(write, words, flags="flags:\n  lr: [0.1]\n")
    # A macro is a whole word (W&B's rule): one inside a word is passed as it is written.
    assert command.argv(s, {"lr": 0.1}, tmp_path) == [
        PYTHON, str(tmp_path / "train.py"), "net", "--data", "./data", "lr=0.1", "--",
        "paths.out=${oc.env:HOME}/out", "--config=${args_json_file}"]


def test_without_a_command_it_is_python_script_args(write, tmp_path):
    s = load(write, None)
    assert command.argv(s, VALUES, tmp_path) == [PYTHON, str(tmp_path / "train.py"), *EXPANDED["args"]]
    (tmp_path / "pkg").mkdir()
    mod = spec.load(write("module: pkg.train\nflags:\n  lr: [0.1]\n  amp: [false]\n"))
    assert command.argv(mod, {"lr": 0.1, "amp": False}, tmp_path) == [
        PYTHON, "-m", "pkg.train", "--lr=0.1", "--amp=False"]


@pytest.mark.parametrize("words, launcher", [
    (None, "fork"),
    (["${interpreter}", "${program}", "net", "${args}"], "fork"),
    (["${env}", "${interpreter}", "${program}", "${args}"], "fork"),
    (["${interpreter}", "-m", "pkg.train", "${args}"], "fork"),
    ([PYTHON, "${program}", "${args}"], "fork"),  # this python, by its path
    (["${interpreter}", "train.py", "${args}"], "fork"),  # a script named by a fixed word
    (["${interpreter}", "-u", "${program}", "${args}"], "spawn"),  # interpreter options need a fresh one
    (["${interpreter}", "-c", "print(1)"], "spawn"),
    (["sh", "${program}", "${args}"], "spawn"),
    (["torchrun", "--nproc_per_node=2", "${program}", "${args}"], "spawn"),
    (["${interpreter}", "${args_json_file}"], "spawn"),
])
def test_only_a_python_command_runs_warm(write, words, launcher):
    s = load(write, words)
    assert command.launcher(s) == launcher
    assert command.launcher(dataclasses.replace(s, launcher="spawn")) == "spawn"


def test_another_python_runs_under_spawn(write, tmp_path):
    """A python in another folder (another virtual environment) has other packages, even when
    it is a link to this very binary: only a fresh process of it is right."""
    other = tmp_path / "venv" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.symlink_to(PYTHON)
    assert command.launcher(load(write, [str(other), "${program}", "${args}"])) == "spawn"


# ---------------------------------------------------------------- a bad command: one line, exit 2


BAD = {
    "not_a_list": ("command: python train.py --lr=${args}\n",
                   "command: must be a list of words, e.g. ${interpreter}, ${program}, ${args}, one '- word' a "
                   "line; got text"),
    "empty": ("command: []\n", "command: an empty list: give the command line as a list of words, e.g. "
                                "${interpreter}, ${program}, ${args}, one '- word' a line"),
    "unknown_macro": ("command:\n  - ${interpreter}\n  - ${program}\n  - ${nope}\n",
                      "command[2]: unknown macro ${nope}; the macros are ${interpreter}, ${program}, ${args}, "
                      "${args_no_equals}, ${args_no_hyphens}, ${args_no_boolean_flags}, ${args_json}, "
                      "${args_json_file}, ${env}, ${args_append_hydra}, ${args_override_hydra}"),
    "number_word": ("command:\n  - ${interpreter}\n  - ${program}\n  - --epochs\n  - 3\n",
                    "command[3]: must be text, got an integer; quote it: '3'"),
    "mapping_word": ("command:\n  - ${interpreter}\n  - {a: 1}\n", "command[1]: must be text, got a mapping"),
    "null_word": ("command:\n  - ${interpreter}\n  -\n", "command[1]: must be text, got nothing"),
    "no_program": ("command:\n  - ''\n  - ${program}\n", "command[0]: must name the program to run, got ''"),
    "args_first": ("command:\n  - ${args}\n", "command[0]: must name the program to run, got '${args}'"),
    "flow_list": ("command: [${interpreter}, ${program}, ${args}]\n",
                  "invalid YAML (expected ',' or ']', but got '{'; write a command's macros one '- ${...}' "
                  "a line, or quote them)"),
}


def bad_file(tmp_path: Path, name: str) -> Path:
    text, _ = BAD[name]
    (tmp_path / "train.py").write_text("print('eval_accuracy: 1')\n")
    path = tmp_path / "flags.yaml"
    path.write_text("script: train.py\nflags:\n  lr: [0.1, 0.2]\n" + text)
    return path


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_command_is_one_line_exit_2_and_nothing_runs(tmp_path, name):
    path = bad_file(tmp_path, name)
    with pytest.raises(SpecError) as caught:
        spec.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert str(caught.value).endswith(BAD[name][1])
    runs = tmp_path / "runs"
    result = sweep_cli("run", path, "--runs-dir", runs)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {caught.value}\n" and result.stdout == ""
    assert not runs.exists()


def test_program_and_module_need_what_they_stand_for(write):
    with pytest.raises(SpecError, match=r": command\[1\]: \$\{program\} stands for 'script:', which is missing$"):
        spec.load(write("command:\n  - ${interpreter}\n  - ${program}\nflags:\n  lr: [0.1]\n"))
    with pytest.raises(SpecError, match=r": module: give 'module' only without 'command:'; write it into the "
                                        r"command instead: \$\{interpreter\}, -m, pkg.train, \$\{args\}$"):
        spec.load(write("module: pkg.train\ncommand:\n  - ${interpreter}\n  - ${args}\nflags:\n  lr: [0.1]\n"))
    # A command that names its program itself needs no script:
    s = spec.load(write("command:\n  - ${interpreter}\n  - -m\n  - pkg.train\n  - ${args}\nflags:\n  lr: [0.1]\n"))
    assert s.script is None and s.command == ("${interpreter}", "-m", "pkg.train", "${args}")


# ---------------------------------------------------------------- real apps, swept unmodified


def sweep_app(tmp_path: Path, app: str, words: list[str], flags: dict[str, Any], *options: Any,
              **top: Any) -> tuple[Path, list[Path]]:
    """Copy the app ``app`` (a script, or a folder with train.py) into a project, sweep it with
    this command over a grid of ``flags``, and return the project and the run directories."""
    root = tmp_path / "proj"
    source = APPS / app
    if source.is_dir():
        shutil.copytree(source, root)
        script = source / "train.py"
    else:
        script = source
    flags_file = project(root, flags, script=script, command=words, sampler="grid", **top)
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, *options)
    assert result.exit_code == 0, result.output
    dirs = run_dirs(runs)
    assert [info(d)["status"] for d in dirs] == ["completed"] * len(dirs), [info(d) for d in dirs]
    return root, dirs


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def output(run: Path) -> str:
    return (run / "output.log").read_text()


@pytest.mark.parametrize("launcher", ["spawn", "fork"])
def test_a_hydra_app_takes_overrides_and_writes_its_outputs_in_the_trial(tmp_path, launcher):
    words = ["${interpreter}", "${program}", "trainer.epochs=2", "${args_no_hyphens}"]
    root, dirs = sweep_app(tmp_path, "hydra_app", words, {"lr": [0.1, 0.02], "optimizer": "sgd", "use_amp": True},
                           "--launcher", launcher, metric="val_accuracy")
    assert sorted(flags_of(d)["lr"] for d in dirs) == [0.02, 0.1]
    assert "outputs" not in files_under(root)  # Hydra wrote nothing into the user's folder
    for run in dirs:
        lr = flags_of(run)["lr"]
        rec = info(run)
        assert rec["launcher"] == launcher
        assert rec["command"] == [PYTHON, str(root / "train.py"), "trainer.epochs=2", f"lr={lr}", "optimizer=sgd",
                                  "use_amp=True"]
        # Hydra's own record of the run, in its output directory under the trial's working directory.
        (hydra_dir,) = (run / "work").glob("outputs/*/*/.hydra")
        assert yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) == rec["command"][2:]
        config = yaml.safe_load((hydra_dir / "config.yaml").read_text())
        assert (config["lr"], config["optimizer"], config["use_amp"], config["trainer"]["epochs"]) == (
            lr, "sgd", True, 2)
        assert (hydra_dir.parent / "checkpoint.txt").read_text() == f"lr={lr} optimizer=sgd use_amp=True\n"
        # It ran in the user's folder, seen through the trial's own layer (tests/test_workdir.py).
        assert f"Working directory: {root / hydra_dir.parent.relative_to(run / 'work')}" in output(run)
        loss = math.exp(-lr * 2 * 10) + 0.1
        assert metrics_of(run)["val_accuracy"] == round((1 - loss / 2) * 0.9, 4)


def test_a_click_app_with_a_subcommand(tmp_path):
    words = ["${interpreter}", "${program}", "train", "${args_no_boolean_flags}"]
    _, dirs = sweep_app(tmp_path, "click_app.py", words,
                        {"lr": [0.01, 0.02], "epochs": 2, "optimizer": "sgd", "amp": [True, False]},
                        "--launcher", "spawn", metric="accuracy")
    assert len(dirs) == 4
    for run in dirs:
        f = flags_of(run)
        # --amp/--no-amp takes no value: bare when true, left out when false.
        assert f"train: lr={f['lr']!r} epochs=2 optimizer='sgd' amp={f['amp']!r}" in output(run)
        loss = math.exp(-f["lr"] * 100 * 2)
        assert metrics_of(run)["accuracy"] == round(1 - loss / 2 + (0.01 if f["amp"] else 0), 4)


def test_a_fire_app_with_a_subcommand_gets_python_literals(tmp_path):
    words = ["${interpreter}", "${program}", "net", "${args}"]
    root, dirs = sweep_app(tmp_path, "fire_app.py", words, {"lr": [0.1, 0.2], "epochs": 2, "amp": True},
                           "--launcher", "spawn", metric="val_acc")
    for run in dirs:
        lr = flags_of(run)["lr"]
        assert info(run)["command"] == [PYTHON, str(root / "fire_app.py"), "net", f"--lr={lr}", "--epochs=2",
                                        "--amp=True"]
        assert f"Experiment.net(lr={lr}, epochs=2, dropout=0.1, amp=True)" in output(run)  # a bool, not 'true'
        assert metrics_of(run)["val_acc"] == round((1 - math.exp(-lr * 100)) * 0.95 + 0.01, 4)


def test_dry_run_prints_the_command_as_it_will_run(tmp_path):
    root = tmp_path / "proj"
    flags_file = project(root, {"lr": [0.1, 0.2]}, script=APPS / "fire_app.py", sampler="grid",
                         command=["${interpreter}", "${program}", "net", "${args}", "${args_json_file}"])
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs, "--dry-run")
    assert result.exit_code == 0, result.output
    planned = [shlex.join([PYTHON, str(root / "fire_app.py"), "net", f"--lr={lr}", str(runs / "<run>" / "args.json")])
               for lr in (0.1, 0.2)]
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["trial 0", "trial 1"]
    assert sorted(line.split(": ", 1)[1] for line in lines) == planned
    assert not runs.exists()


def test_a_positional_argument_after_the_options(tmp_path):
    words = ["${interpreter}", "${program}", "${args}", "data"]
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("".join(f"{i},{i % 2}\n" for i in range(10)))
    _, dirs = sweep_app(tmp_path, "positional.py", words, {"lr": [0.5, 1.0], "epochs": 1},
                        "--launcher", "spawn", metric="acc1", metrics={"acc1": r"Acc@1 ([0-9.]+)"})
    for run in dirs:
        lr = flags_of(run)["lr"]
        assert info(run)["command"][2:] == [f"--lr={lr}", "--epochs=1", "data"]
        assert "=> creating model 'resnet18' on data 'data'" in output(run)
        assert metrics_of(run) == {"acc1": 10 * lr}


def test_a_json_file_of_arguments(tmp_path):
    words = ["${interpreter}", "${program}", "${args_json_file}"]
    _, dirs = sweep_app(tmp_path, "json_args.py", words,
                        {"learning_rate": [1e-3, 1e-4], "num_train_epochs": 2, "warmup": True},
                        "--launcher", "spawn", metric="eval_loss")
    for run in dirs:
        flags = flags_of(run)
        assert info(run)["command"][2:] == [str(run / "args.json")]
        assert json.loads((run / "args.json").read_text()) == flags
        assert f"TrainingArguments(learning_rate={flags['learning_rate']}, num_train_epochs=2, warmup=True)" in (
            output(run))
        assert metrics_of(run)["eval_loss"] == round(1 / (1 + flags["learning_rate"] * 2000), 4)


def test_a_program_that_is_not_python_runs_under_spawn(tmp_path):
    _, dirs = sweep_app(tmp_path, "train.sh", ["sh", "${program}", "${args}"], {"lr": [0.3, 0.6]})
    for run in dirs:
        lr = flags_of(run)["lr"]
        assert info(run)["launcher"] == "spawn"  # the default launcher is fork: it cannot run sh
        assert info(run)["command"][0] == "sh"
        assert f"wrapper: got 1 arguments: --lr={lr}" in output(run)
        assert metrics_of(run)["eval_accuracy"] == lr
