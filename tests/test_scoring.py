"""The report's fANOVA, scored in a forked worker beside the rest of the report (sweep.scoring)."""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

import optuna
import pytest

from sweep import importance, rundir, scoring
from sweep.errors import SweepError

from helpers import alive

SPACE = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
         "dropout": optuna.distributions.CategoricalDistribution([0.0, 0.2, 0.5]),
         "hidden": optuna.distributions.CategoricalDistribution([8, 16, 32])}


def study(n: int = 30) -> optuna.Study:
    """Runs of a made-up objective where lr matters most, as importance's study holds them."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(n):
        t = s.ask(SPACE)
        lr, dropout = t.params["lr"], t.params["dropout"]
        s.tell(t, -abs(math.log10(lr) + 2) - 0.3 * dropout + 0.01 * (i % 3))
    return s


def test_the_worker_scores_as_importance_does_and_ends_with_the_scorer() -> None:
    a, b = study(30), study(12)
    with scoring.Scorer() as scorer:
        worker = scorer._proc
        assert worker is not None and alive(worker.pid)
        first, second = scorer.submit(a), scorer.submit(b)
        assert scorer.result(second) == importance.scores(b, scoring.TREES)  # any order
        assert scorer.result(first) == importance.scores(a, scoring.TREES)
    assert next(iter(importance.scores(a, scoring.TREES))) == "lr"
    worker.join(5)
    assert worker.exitcode is not None  # nothing left running after the report


def test_without_fork_it_scores_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    a = study(12)
    with scoring.Scorer() as scorer:
        assert scorer._proc is None
        assert scorer.result(scorer.submit(a)) == importance.scores(a, scoring.TREES)


def test_a_dead_worker_is_one_error_not_a_hang() -> None:
    with scoring.Scorer() as scorer:
        assert scorer._proc is not None
        os.kill(scorer._proc.pid, signal.SIGKILL)
        scorer._proc.join(5)
        job = scorer.submit(study(12))
        with pytest.raises(SweepError, match="^the fANOVA worker process ended before it scored the runs$"):
            scorer.result(job)


def test_sweep_records_are_read_without_the_ls_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    rundir.SweepRecord.new(tmp_path / "flags.yaml", None, None, 3).save(runs)
    (runs / rundir.STATE_DIR / "ls-index.json").write_text("{}")  # megabytes for 10,000 runs
    read: list[str] = []
    real = rundir._load_json
    monkeypatch.setattr(rundir, "_load_json", lambda path: read.append(Path(path).name) or real(path))
    (record,) = rundir.load_sweeps(runs)
    assert read == [f"{record.id}.json"]
