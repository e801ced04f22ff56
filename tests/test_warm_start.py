"""Warm starts (``--warm-start SWEEP``) and configurations tried first (``enqueue:``), against
real sweeps of tests/scripts/search/optim.py, an unmodified argparse script."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep import search, spec
from sweep.rundir import STATE_DIR

from helpers import flags_of, one_error_line, project, run_dirs, sweep_cli

OPTIM = Path(__file__).parent / "scripts" / "search" / "optim.py"
EARLIER = {"optimizer": ["sgd", "adam"], "lr": {"min": 0.001, "max": 0.1, "log": True}}
NOW = {"optimizer": ["sgd", "adam"], "lr": {"min": 0.01, "max": 1.0, "log": True}}  # the neighbouring space


def _project(root: Path, flags: dict, **top) -> Path:
    """A project of optim.py; spawn: a stdlib script needs no warm torch process."""
    return project(root, flags, OPTIM, launcher="spawn", **top)


def _sweep(path: Path, runs: Path, *args: str) -> str:
    """Run a sweep; its id."""
    result = sweep_cli("run", path, "--runs-dir", runs, *args)
    assert result.exit_code == 0, result.stderr
    return next(line.split()[1].rstrip(":") for line in result.stderr.splitlines()
                if line.startswith("sweep s"))


def _study(runs: Path, sweep_id: str) -> optuna.Study:
    journal = JournalStorage(JournalFileBackend(str(runs / STATE_DIR / f"{sweep_id}.journal")))
    return optuna.load_study(study_name=sweep_id, storage=journal)


def _warm(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if search.WARM_ATTR in t.user_attrs]


@pytest.fixture
def earlier(tmp_path: Path) -> tuple[Path, str, int]:
    """An earlier random sweep of 6 trials; its runs dir, id, and how many fit NOW's space."""
    runs = tmp_path / "runs"
    first = _sweep(_project(tmp_path / "a", EARLIER, seed=1, trials=6), runs)
    fits = sum(flags_of(r)["lr"] >= 0.01 for r in run_dirs(runs))
    assert 0 < fits < 6  # the seed puts runs on both sides of the new space's edge
    return runs, first, fits


def test_warm_start_adds_the_earlier_runs_that_fit_and_counts_none_of_them(tmp_path, earlier):
    runs, first, fits = earlier
    path = _project(tmp_path / "b", NOW, sampler="tpe", seed=2, trials=3)
    result = sweep_cli("run", path, "--runs-dir", runs, "--warm-start", first)
    assert result.exit_code == 0, result.stderr
    second = next(line.split()[1].rstrip(":") for line in result.stderr.splitlines()
                if line.startswith("sweep s"))
    lowest = next(flags_of(r)["lr"] for r in run_dirs(runs) if flags_of(r)["lr"] < 0.01)
    assert f"sweep: warm start: {fits} earlier trials from {first} added to the study (not counted in this " \
           f"sweep's trials); {6 - fits} runs did not fit this space, e.g. lr {lowest!r} outside [0.01, 1.0]\n" \
           in result.stderr
    assert f"sweep {second}: 3 trials;" in result.stderr and f"sweep {second}: 3 completed" in result.stderr
    study = _study(runs, second)
    warm = _warm(study)
    assert len(warm) == fits and all(0.01 <= t.params["lr"] <= 1.0 for t in warm)
    assert {t.user_attrs[search.WARM_ATTR] for t in warm} <= {r.name for r in run_dirs(runs)}
    assert len([r for r in run_dirs(runs) if json.loads((r / "run.json").read_text())["sweep"] == second]) == 3


def test_resume_does_not_add_the_earlier_runs_twice(tmp_path, earlier):
    runs, first, fits = earlier
    path = _project(tmp_path / "b", NOW, sampler="tpe", seed=2, trials=1)
    second = _sweep(path, runs, "--warm-start", first)
    record = runs / STATE_DIR / f"{second}.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps(dict(data, trials=2)))  # as if the first session had been cut short
    _sweep(path, runs, "--resume", second, "--warm-start", first)
    study = _study(runs, second)
    assert len(_warm(study)) == fits
    assert len(study.get_trials()) == fits + 2


def test_a_run_with_another_setting_does_not_fit(tmp_path):
    path = _project(tmp_path, {"optimizer": ["momentum", "adam"],
                               "momentum": {"min": 0.5, "max": 0.99, "when": "optimizer == momentum"},
                               "epochs": 2})
    loaded = spec.load(path)
    space = search.space(loaded)
    assert search.fit(loaded, space, {"optimizer": "momentum", "momentum": 0.9, "epochs": 2}) == \
        {"optimizer": "momentum", "momentum": 0.9}
    assert search.fit(loaded, space, {"optimizer": "adam", "epochs": 2}) == {"optimizer": "adam"}
    left_out = {"optimizer": "adam", "momentum": 0.9, "epochs": 2}  # passed a flag this space leaves out
    assert search.fit(loaded, space, left_out) is None
    assert search.fit(loaded, space, {"optimizer": "momentum", "epochs": 2}) is None  # momentum not drawn
    assert search.fit(loaded, space, {"optimizer": "adam", "epochs": 3}) is None  # another fixed value
    assert search.fit(loaded, space, {"optimizer": "adam"}) is None  # ran without epochs
    assert search.fit(loaded, space, {"optimizer": "adam", "epochs": 2, "wide": True}) is None
    # the first flag that does not fit, as the warm start's line names it
    assert search.misfit(loaded, space, left_out) == "momentum passed though its when: (optimizer == momentum) fails"
    assert search.misfit(loaded, space, {"optimizer": "momentum", "epochs": 2}) == "ran without momentum"
    assert search.misfit(loaded, space, {"optimizer": "adam", "epochs": 3}) == "epochs 3, not 2"
    assert search.misfit(loaded, space, {"optimizer": "adam"}) == "ran without epochs"
    assert search.misfit(loaded, space, {"optimizer": "adam", "epochs": 2, "wide": True}) == "wide is not in this space"
    assert search.misfit(loaded, space, {"optimizer": "sgd", "epochs": 2}) == \
        "optimizer 'sgd' outside ['momentum', 'adam']"
    assert search.misfit(loaded, space, {"optimizer": "momentum", "momentum": 0.2, "epochs": 2}) == \
        "momentum 0.2 outside [0.5, 0.99]"


def test_warm_start_from_runs_that_never_reported_the_objective_says_so(tmp_path, earlier):
    runs, first, _ = earlier
    # the new file measures a metric optim.py never printed: every earlier run lacks it
    path = _project(tmp_path / "b", NOW, sampler="tpe", metric="val_loss", trials=1)
    result = sweep_cli("run", path, "--runs-dir", runs, "--warm-start", first)
    assert f"warm start: 0 earlier trials from {first} added to the study (not counted in this sweep's " \
           "trials); 6 completed runs lacked val_loss\n" in result.stderr


def test_warm_start_from_no_such_sweep_is_bad_usage_and_writes_nothing(tmp_path, earlier):
    runs, first, _ = earlier
    before = sorted(p.name for p in (runs / STATE_DIR).iterdir())
    path = _project(tmp_path / "b", NOW, sampler="tpe", trials=2)
    line = one_error_line(sweep_cli("run", path, "--runs-dir", runs, "--warm-start", "s1999"), 2)
    assert line == f"Error: --warm-start s1999: no sweep matches 's1999' in {runs}"
    assert sorted(p.name for p in (runs / STATE_DIR).iterdir()) == before
    dry = sweep_cli("run", path, "--runs-dir", runs, "--dry-run", "--warm-start", "s1999")
    assert one_error_line(dry, 2) == line


# ---------------------------------------------------------------- enqueue:


def test_enqueued_configurations_run_first_and_the_rest_is_drawn(tmp_path):
    path = _project(tmp_path, NOW, sampler="tpe", seed=4, trials=3,
                   enqueue=[{"optimizer": "adam", "lr": 0.05}, {"optimizer": "sgd"}])
    runs = tmp_path / "runs"
    sweep_id = _sweep(path, runs)
    dirs = run_dirs(runs)
    assert [flags_of(r) for r in dirs[:1]] == [{"optimizer": "adam", "lr": 0.05}]
    assert flags_of(dirs[1])["optimizer"] == "sgd" and 0.01 <= flags_of(dirs[1])["lr"] <= 1.0
    assert len(dirs) == 3
    # a resumed sweep owes trials, not the queue again
    record = runs / STATE_DIR / f"{sweep_id}.json"
    record.write_text(json.dumps(dict(json.loads(record.read_text()), trials=4)))
    _sweep(path, runs, "--resume", sweep_id)
    later = [flags_of(r) for r in run_dirs(runs)[3:]]
    assert len(later) == 1 and {"optimizer": "adam", "lr": 0.05} not in later


def test_a_grid_completes_a_partial_configuration_with_a_free_point(tmp_path):
    flags = {"optimizer": ["sgd", "adam"], "lr": [0.1, 1.0]}
    path = _project(tmp_path, flags, sampler="grid", seed=5, enqueue=[{"lr": 1.0}, {"lr": 1.0}])
    dry = sweep_cli("run", path, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) == 4 and "--lr=1.0" in lines[0] and "--lr=1.0" in lines[1]
    runs = tmp_path / "runs"
    _sweep(path, runs)
    points = [tuple(flags_of(r).values()) for r in run_dirs(runs)]
    assert len(points) == len(set(points)) == 4  # every point once, the queued ones first
    assert points[0][1] == points[1][1] == 1.0


def test_a_shared_study_counts_and_lists_only_its_own_trials(tmp_path, earlier):
    runs, first, fits = earlier
    path = _project(tmp_path / "b", NOW, sampler="tpe", seed=2, trials=3)
    journal = tmp_path / "shared.journal"
    result = sweep_cli("run", path, "--runs-dir", runs, "--storage", journal, "--study", "shared",
                       "--warm-start", first)
    assert result.exit_code == 0, result.stderr
    assert "3 completed" in result.stderr.splitlines()[-1]  # the earlier runs took no place in the total
    rows = sweep_cli("ls", "--storage", journal, "--study", "shared", "--format", "json")
    assert rows.exit_code == 0, rows.stderr
    assert len(json.loads(rows.stdout)) == 3


def test_an_enqueued_value_that_set_narrowed_away_is_drawn_instead(tmp_path):
    path = _project(tmp_path, NOW, seed=3, trials=2, enqueue=[{"optimizer": "adam", "lr": 0.5}])
    result = sweep_cli("run", path, "--dry-run", "--set", "optimizer=[sgd]", "--set", "lr={min: 0.01, max: 0.1}")
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "--optimizer=sgd" in first and "--lr=0.5" not in first


def test_warm_start_of_a_sweep_with_two_objectives_gives_each_trial_every_value_and_its_constraints(tmp_path):
    tradeoff = Path(__file__).parent / "scripts" / "objectives" / "tradeoff.py"
    top = {"metric": ["eval_accuracy", "params_m"], "goal": ["maximize", "minimize"],
           "constraints": ["params_m <= 0.2"], "launcher": "spawn"}
    space = {"width": [16, 64, 256], "depth": [1, 2], "epochs": 1}
    runs = tmp_path / "runs"
    first = _sweep(project(tmp_path / "a", space, tradeoff, trials=4, seed=3, **top), runs)
    second = _sweep(project(tmp_path / "b", space, tradeoff, trials=1, seed=4, sampler="tpe", **top),
                    runs, "--warm-start", first)
    warm = _warm(_study(runs, second))
    assert len(warm) == 4
    for t in warm:
        size = flags_of(next(r for r in run_dirs(runs) if r.name == t.user_attrs[search.WARM_ATTR]))
        params_m = (784 * size["width"] + (size["depth"] - 1) * size["width"] ** 2 + 10 * size["width"]) / 1e6
        assert len(t.values) == 2 and t.values[1] == pytest.approx(params_m, abs=1e-6)
        assert t.user_attrs["constraints"] == [pytest.approx(params_m - 0.2, abs=1e-6)]


def test_a_warm_started_sweep_with_the_same_seed_draws_none_of_the_points_it_was_given(tmp_path):
    # The user's case: TPE is still in its random start-up after 3 runs; seeded as the earlier
    # sweep was, it would draw those very points again.
    path = _project(tmp_path, NOW, sampler="tpe", seed=4, trials=3)
    runs = tmp_path / "runs"
    _sweep(path, runs)
    given = [flags_of(r) for r in run_dirs(runs)]
    second = _sweep(path, runs, "-n", "2", "--warm-start", "last")
    assert len(_warm(_study(runs, second))) == 3
    new = [flags_of(r) for r in run_dirs(runs)[3:]]
    assert len(new) == 2 and not [f for f in new if f in given]


def test_the_end_of_sweep_board_shows_the_earlier_runs_after_its_own_and_counts_none(tmp_path):
    path = _project(tmp_path, NOW, sampler="tpe", seed=4, trials=3)
    runs = tmp_path / "runs"
    _sweep(path, runs)
    given = [r.name for r in run_dirs(runs)]
    result = sweep_cli("run", path, "--runs-dir", runs, "-n", "2", "--warm-start", "last")
    assert result.exit_code == 0, result.stderr
    own = [r.name for r in run_dirs(runs)[3:]]
    rows = [line.split() for line in result.stdout.splitlines()]
    ids = [row[0] for row in rows if row and row[0] in given + own]
    assert sorted(ids[:2]) == sorted(own) and sorted(ids[2:]) == sorted(given)  # never above the sweep's own
    assert all("earlier" in row and "completed" not in row for row in rows if row and row[0] in given)
    assert result.stderr.splitlines()[-1].endswith(": 2 completed")


def test_random_search_over_a_finite_space_draws_only_points_it_was_not_given(tmp_path):
    path = _project(tmp_path, {"optimizer": ["sgd", "adam"], "lr": [0.01, 0.1]}, seed=4, trials=2)
    runs = tmp_path / "runs"
    _sweep(path, runs)
    given = [flags_of(r) for r in run_dirs(runs)]
    _sweep(path, runs, "--warm-start", "last")
    new = [flags_of(r) for r in run_dirs(runs)[2:]]
    assert len(new) == 2 and not [f for f in new if f in given]
