"""A failure says why (issue 10, point 7): a failed trial's reason is the script's own last error
line, with the exit code or the signal, on the board after the sweep, in ``ls``, ``show`` and the
JUnit report.

The rule (``sweep.trial.error_line``) is tested on the output of real programs; the places it
shows up, on real sweeps of tests/scripts/board/lm.py, a script in the style of pytorch/examples'
word_language_model: it diverges with a learning rate that is too high, and its argparse parser
refuses a flag it does not know.
"""

from __future__ import annotations

import signal
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sweep import launch, trial

from helpers import SCRIPTS, in_terminal, info, ls_json, project, python_env, run_dirs, sweep_cli

LM = SCRIPTS / "board" / "lm.py"
OVERFLOW = "exit code 1: OverflowError: math range error"
UNKNOWN = "exit code 2: error: unrecognized arguments: --bptt=35"

PROGRESS = "| epoch   1 |   200/  600 batches | lr 80.00 | ms/batch  0.01 | loss 99.78 | ppl 2.15e+43"
TRACEBACK = f"""{PROGRESS}
Traceback (most recent call last):
  File "/home/me/word_language_model/main.py", line 252, in <module>
    train()
  File "/home/me/word_language_model/main.py", line 213, in train
    epoch, batch, len(train_data) // args.bptt, lr, elapsed * 1000 / args.log_interval, cur_loss, math.exp(cur_loss)))
                                                                                                  ^^^^^^^^^^^^^^^^^^
OverflowError: math range error"""
CHAINED = """Traceback (most recent call last):
  File "train.py", line 8, in load
    return torch.load(path)
FileNotFoundError: [Errno 2] No such file or directory: 'ckpt.pt'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "train.py", line 12, in <module>
    model = load(args.resume)
  File "train.py", line 10, in load
    raise RuntimeError(f"cannot resume from {path}") from None
RuntimeError: cannot resume from ckpt.pt"""
OOM = """  0%|          | 0/938 [00:00<?, ?it/s]
Traceback (most recent call last):
  File "/workspace/train.py", line 88, in <module>
    loss.backward()
  File "/usr/lib/python3/dist-packages/torch/_tensor.py", line 626, in backward
    torch.autograd.backward(
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.15 GiB \
of which 1.23 GiB is free."""
ARGPARSE = """usage: main.py [-h] [--batch-size N] [--test-batch-size N] [--epochs N] [--lr LR]
               [--gamma M] [--no-cuda] [--dry-run] [--seed S] [--log-interval N]
main.py: error: unrecognized arguments: --foo=1"""
CLICK = """Usage: train.py [OPTIONS]
Try 'train.py --help' for help.

Error: No such option: --learning-rate Did you mean --learning_rate?"""
FIRE = """ERROR: Could not consume arg: --lr=0.1
Usage: train.py net <flags>
  optional flags:        --epochs | --batch_size

For detailed information on this command, run:
  train.py net --help"""
HYDRA = """[2026-01-05 10:00:00,000][__main__][INFO] - epoch 1 loss=0.93
Error executing job with overrides: ['optimizer.lr=10']
Traceback (most recent call last):
  File "/home/me/app/train.py", line 31, in main
    raise ValueError(f"loss diverged: {loss}")
ValueError: loss diverged: inf

Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."""
TYPER_BOX = """epoch 1 loss=0.5
Bad weights file
╭──────────────────────────────────╮
╰──────────────────────────────────╯"""
SEGFAULT = """epoch 3 loss=0.41
Fatal Python error: Segmentation fault

Current thread 0x00007f (most recent call first):
  File "/usr/lib/python3/dist-packages/torch/nn/modules/conv.py", line 454 in _conv_forward"""


@pytest.mark.parametrize("output, line", [
    (TRACEBACK, "OverflowError: math range error"),
    (CHAINED, "RuntimeError: cannot resume from ckpt.pt"),
    (OOM, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity "
          "of 79.15 GiB of which 1.23 GiB is free."),
    (ARGPARSE, "error: unrecognized arguments: --foo=1"),
    (CLICK, "Error: No such option: --learning-rate Did you mean --learning_rate?"),
    (FIRE, "ERROR: Could not consume arg: --lr=0.1"),
    (HYDRA, "ValueError: loss diverged: inf"),
    (f"{ARGPARSE}\n{TRACEBACK}", "OverflowError: math range error"),  # whichever came last
    (f"{TRACEBACK}\n{ARGPARSE}", "error: unrecognized arguments: --foo=1"),
    ("epoch 1 loss=0.5\n./train.sh: line 3:  4242 Killed    python train.py\n", "./train.sh: line 3:  4242 Killed    "
                                                                              "python train.py"),
    (TYPER_BOX, "Bad weights file"),  # a box's borders say nothing
    (SEGFAULT, "Fatal Python error: Segmentation fault"),
    ("", None),
], ids=["traceback", "chained", "cuda-oom", "argparse", "click", "fire", "hydra", "usage-then-traceback",
        "traceback-then-usage", "killed-in-a-shell", "box", "segfault", "nothing"])
def test_the_error_line_is_the_scripts_own_last_word(output, line):
    assert trial.error_line(output) == line


def test_progress_and_long_lines_are_not_a_reason():
    is_progress = lambda text: "loss" in text  # noqa: E731
    assert trial.error_line(f"started\n{PROGRESS}", is_progress) is None
    assert trial.error_line(f"{PROGRESS}\ngiving up: no data in ./data", is_progress) == "giving up: no data in ./data"
    assert trial.error_line("x" * 1000) == "x" * 297 + "..."
    # A signal's reason takes only what the script said about an error, never its last line.
    assert trial.error_line(f"{PROGRESS}\nloading batch 7", last_resort=False) is None
    assert trial.error_line(SEGFAULT, last_resort=False) == "Fatal Python error: Segmentation fault"


@pytest.mark.parametrize("code, output, reason", [
    (1, TRACEBACK, OVERFLOW),
    (2, ARGPARSE, "exit code 2: error: unrecognized arguments: --foo=1"),
    (3, PROGRESS, "exit code 3"),  # the last line is progress: it says nothing about the failure
    (-signal.SIGKILL, f"{PROGRESS}\nKilled", "killed by SIGKILL"),
    (-signal.SIGSEGV, SEGFAULT, "killed by SIGSEGV: Fatal Python error: Segmentation fault"),
    (137, f"{PROGRESS}\n./train.sh: line 3:  4242 Killed    python train.py",
     "exit code 137: ./train.sh: line 3:  4242 Killed    python train.py"),
], ids=["traceback", "argparse", "progress", "sigkill", "sigsegv", "shell-137"])
def test_the_verdict_names_the_exit_and_the_error(tmp_path, code, output, reason):
    ended = trial.Trial(0, {}, tmp_path, launch.Process(4_000_000), trial.Watch("valid_ppl"), lambda v, s: False)
    assert ended.verdict(code, None, output) == ("failed", reason)


# ---------------------------------------------------------------- where a user sees it


@pytest.fixture(scope="module")
def failed(tmp_path_factory) -> dict:
    """Two sweeps of lm.py in one runs directory: learning rates 5 (fine) and 80 (diverges), with
    a JUnit report; then a flags file with a flag the script does not take."""
    root = tmp_path_factory.mktemp("lm")
    runs = root / "runs"
    diverge = project(root / "lm", {"lr": [5.0, 80.0], "epochs": 1}, script=LM, sampler="grid", metric="valid_ppl")
    report = root / "junit.xml"
    first = sweep_cli("run", diverge, "--runs-dir", runs, "--launcher", "spawn", "--junit-xml", report)
    typo = project(root / "typo", {"lr": [5.0], "bptt": 35}, script=LM, metric="valid_ppl")
    second = sweep_cli("run", typo, "--runs-dir", runs, "--launcher", "spawn")
    return {"runs": runs, "first": first, "second": second, "report": report, "root": root}


def by_reason(runs: Path) -> dict[str, str]:
    return {info(d)["reason"]: d.name for d in run_dirs(runs, by_trial=False) if info(d)["reason"]}


def test_the_board_after_a_sweep_says_why(failed):
    first, second = failed["first"], failed["second"]
    assert (first.exit_code, second.exit_code) == (1, 1)
    assert OVERFLOW in first.stdout and f"({OVERFLOW})" in first.stderr  # board, and the trial's line
    assert UNKNOWN in second.stdout and f"({UNKNOWN})" in second.stderr
    assert set(by_reason(failed["runs"])) == {OVERFLOW, UNKNOWN}
    assert info(failed["runs"] / by_reason(failed["runs"])[OVERFLOW])["exit_code"] == 1


def test_ls_and_show_say_why(failed):
    runs = failed["runs"]
    reasons = {r["id"]: r["reason"] for r in ls_json(runs, "--status", "failed")}
    assert sorted(reasons.values()) == sorted([OVERFLOW, UNKNOWN])
    for reason, name in by_reason(runs).items():
        shown = sweep_cli("show", name, "--runs-dir", runs)
        assert shown.exit_code == 0 and f"status   failed ({reason})" in shown.stdout
    # In a narrow terminal the reasons do not fit as a column: they are listed under the table, whole.
    code, out, err = in_terminal([sys.executable, "-m", "sweep", "ls", "--runs-dir", str(runs)],
                                 python_env(COLUMNS="80", NO_COLOR="1"), columns=80)
    assert code == 0, err
    lines = out.splitlines()
    assert "reason" not in lines[0].split()
    below = lines[lines.index("") + 1:]
    assert below[0].split() == ["id", "reason"]
    assert sorted(line.split(None, 1)[1].strip() for line in below[1:]) == sorted([OVERFLOW, UNKNOWN])


def test_the_junit_report_says_why(failed):
    cases = ET.parse(failed["report"]).getroot().findall("testcase")
    messages = sorted(c.find("failure").get("message") for c in cases if c.find("failure") is not None)
    assert messages == [OVERFLOW]
    (name,) = [c.get("name") for c in cases if c.find("failure") is not None]
    assert name.endswith(" [lr=80 epochs=1]")
