"""What the warm launcher's server imports for a script (``sweep.imports``), read from the
script's text and its local modules, and what a real sweep's server then holds.

The scripts are written the way public training scripts are: nanoGPT's ``train.py`` beside its
``model.py``, pytorch/examples' argparse ``main.py``, a package run with ``python -m``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sweep import imports

from helpers import PROBE, info, project, python_env, run_dirs

NANOGPT_TRAIN = '''\
"""
This training script can be run both on a single gpu in debug mode,
and also in a larger training run with distributed data parallel (ddp).
"""
import os
import time
import math
import pickle
from contextlib import nullcontext

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.distributed import init_process_group, destroy_process_group

from model import GPTConfig, GPT

batch_size = 12
exec(open('configurator.py').read())  # overrides from command line or config file
'''

NANOGPT_MODEL = '''\
"""
Full definition of a GPT Language Model, all of it in this single file.
"""
import math
import inspect
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F
'''

ARGPARSE_MAIN = '''\
import argparse
import json
import os
import os


def main():
    parser = argparse.ArgumentParser(description="a small stdlib experiment")
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    print(f"eval_accuracy: {1 - args.lr:.4f}")


if __name__ == "__main__":
    main()
'''


def test_a_script_and_its_local_modules_name_what_to_preload(tmp_path):
    (tmp_path / "train.py").write_text(NANOGPT_TRAIN)
    (tmp_path / "model.py").write_text(NANOGPT_MODEL)
    (tmp_path / "configurator.py").write_text("import sys\nfrom ast import literal_eval\n")
    found = imports.preload(tmp_path / "train.py", None, tmp_path)
    # model.py is the script's own: read, never preloaded (each trial imports its own copy).
    assert "model" not in found and "model.GPT" not in found
    for name in ("torch", "torch.nn", "torch.nn.functional", "torch.nn.parallel", "numpy", "math",
                 "inspect", "dataclasses", "contextlib"):
        assert name in found, name
    assert found == tuple(sorted(found))


def test_a_stdlib_script_preloads_no_torch(tmp_path):
    (tmp_path / "main.py").write_text(ARGPARSE_MAIN)
    assert imports.preload(tmp_path / "main.py", None, tmp_path) == ("argparse", "json", "os")


def test_a_local_module_that_shadows_a_package_is_read_not_preloaded(tmp_path):
    (tmp_path / "main.py").write_text("import datasets\nimport argparse\n")
    (tmp_path / "datasets.py").write_text("import csv\n")  # the project's own datasets.py
    assert imports.preload(tmp_path / "main.py", None, tmp_path) == ("argparse", "csv")


def test_a_module_run_with_dash_m_follows_its_relative_imports(tmp_path):
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text("import argparse\nfrom .data import load\nfrom . import metrics\n")
    (pkg / "data.py").write_text("import numpy as np\n")
    (pkg / "metrics.py").write_text("import statistics\n")
    found = imports.preload(None, "trainer.train", tmp_path)
    assert found == ("argparse", "numpy", "statistics")


def test_a_name_this_python_cannot_find_is_left_out(tmp_path):
    (tmp_path / "main.py").write_text("try:\n    import apex_not_installed\nexcept ImportError:\n    pass\n"
                                      "import json\n")
    assert imports.preload(tmp_path / "main.py", None, tmp_path) == ("json",)


def test_a_script_that_is_not_python_preloads_nothing(tmp_path):
    (tmp_path / "main.py").write_text("this is not python(\n")
    assert imports.preload(tmp_path / "main.py", None, tmp_path) == ()


def test_a_torch_free_sweep_forks_from_a_server_without_torch(tmp_path):
    """The default (warm) launcher for a stdlib script: each trial is a fork of a server that
    imported only what the script imports, and its run.json says so."""
    probes = tmp_path / "probes"
    probes.mkdir()
    flags_file = project(tmp_path / "proj", {"lr": {"min": 0.001, "max": 0.1}}, trials=2)
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(flags_file), "--runs-dir",
                           str(tmp_path / "runs")], env=python_env(SWEEP_TEST_PROBES=str(probes)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = run_dirs(tmp_path / "runs")
    assert len(runs) == 2
    for run in runs:
        record = info(run)
        assert record["launcher"] == "fork"
        assert record["preload"] == list(imports.preload(PROBE, None, PROBE.parent))
        assert "argparse" in record["preload"] and "torch" not in record["preload"]
    seen = [json.loads(p.read_text()) for p in probes.glob("*.json")]
    assert len(seen) == 2
    assert all(p["preloaded"] == {"torch": False, "numpy": False} for p in seen), seen


def test_a_module_that_exits_as_the_server_imports_it_leaves_the_trial_to_import_it(tmp_path):
    """A preload is an import in the server, outside any trial: a module that refuses to load
    there (here it exits unless run inside a job) is skipped, and the trial imports it itself."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "jobenv.py").write_text(
        'import os\nimport sys\n\nif "SWEEP_RUN_DIR" not in os.environ:\n'
        '    sys.exit("jobenv: run me inside a job")\nRUN_DIR = os.environ["SWEEP_RUN_DIR"]\n')
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "train.py").write_text(
        'import argparse\n\nimport jobenv\n\nparser = argparse.ArgumentParser()\n'
        'parser.add_argument("--lr", type=float, default=0.1)\nargs = parser.parse_args()\n'
        'print(f"eval_accuracy: {1 - args.lr:.3f}  (run dir {jobenv.RUN_DIR})")\n')
    (proj / "flags.yaml").write_text("script: train.py\ntrials: 2\nflags:\n  lr: [0.1, 0.2]\n")
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(proj / "flags.yaml"), "--runs-dir",
                           str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = run_dirs(tmp_path / "runs")
    assert [info(r)["launcher"] for r in runs] == ["fork", "fork"]
    assert all("jobenv" in info(r)["preload"] for r in runs)
