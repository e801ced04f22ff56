"""Whole sweeps of scripts shaped like public ones (tests/scripts/real/): a tqdm bar, a script
that echoes its configuration, and one that floods its output before its last metric. The
metrics recorded are exactly the ones the script meant."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import SCRIPTS, metrics_of, project, python_env, run_dirs


def sweep(root: Path, script: str, flags: dict[str, Any], *args: str, **top: Any) -> list[Path]:
    flags_file = project(root / "proj", flags, script=SCRIPTS / "real" / script, **top)
    runs = root / "runs"
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(flags_file), "-d", str(runs), *args],
                          env=python_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return run_dirs(runs)


def test_a_tqdm_bar_redrawn_thousands_of_times_gives_its_last_value(tmp_path):
    [run] = sweep(tmp_path, "tqdm_train.py", {"lr": 0.05, "steps": 3000}, "--launcher", "spawn")
    output = (run / "output.log").read_bytes()
    assert output.count(b"\r") > 3000 and not output.endswith(b"\n")  # one long redrawn line
    loss = math.exp(-0.05 * 2999 / 100)  # the last drawing before leave=False clears the bar
    assert metrics_of(run) == {"eval_accuracy": float(f"{1 - loss / 2:.6f}"), "loss": float(f"{loss:.4f}")}


def test_an_echoed_configuration_is_not_read_and_two_word_names_are(tmp_path):
    [run] = sweep(tmp_path, "chatty_train.py", {"lr": 0.01, "epochs": 3})
    metrics = metrics_of(run)
    test_loss = 2.0 / (3 * 0.01 * 100) + 0.1
    assert metrics == {"train_loss": round(2.0 / 3, 4), "test_loss": round(test_loss, 4),
                       "eval_accuracy": round(1 - test_loss / 10, 4)}


@pytest.mark.parametrize("flags", [{"mb": 50, "logs": 0}, {"mb": 0, "logs": 200_000}],
                         ids=["50 MB printed", "200,000 sweep.log calls"])
def test_the_last_value_survives_a_burst(tmp_path, flags):
    [run] = sweep(tmp_path, "flood.py", flags, "--launcher", "spawn", "--max-output-mb", "100")
    assert metrics_of(run)["eval_accuracy"] == 0.777
