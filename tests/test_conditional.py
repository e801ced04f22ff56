"""Conditional flags (``when:``): the grammar and its checks, the points a grid can reach, and
real sweeps of an argparse script that refuses a flag which does not apply to its optimizer
(tests/scripts/search/optim.py): a flag whose condition fails is left out of the command and
the record, and shows empty on the board."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from sweep import conditions, samplers, search, spec
from sweep.errors import SpecError

from helpers import flags_of, info, ls_json, one_error_line, project, run_dirs, sweep_cli

OPTIM = Path(__file__).parent / "scripts" / "search" / "optim.py"
FLAGS = {
    "optimizer": ["sgd", "momentum", "nesterov", "adam"],
    "momentum": {"values": [0.5, 0.9], "when": "optimizer in [momentum, nesterov]"},
    "dampening": {"values": [0.0, 0.1], "when": "momentum > 0.8"},  # a chain: momentum's own condition first
    "beta1": {"min": 0.8, "max": 0.95, "when": "optimizer == adam"},
    "lr": [0.01, 0.1],
}
# sgd 1, momentum 3 (0.5; 0.9 with 2 dampenings), nesterov 3, adam 1; times 2 lrs
GRID_POINTS = (1 + 3 + 3 + 1) * 2  # beta1 (a range) left out of the file


def _project(root: Path, flags: dict, **top) -> Path:
    """A project of optim.py; spawn: a stdlib script needs no warm torch process."""
    return project(root, flags, OPTIM, launcher="spawn", **top)


def _load(tmp_path: Path, flags: dict, **top) -> spec.SweepSpec:
    return spec.load(project(tmp_path, flags, OPTIM, **top))



# ---------------------------------------------------------------- the grammar


@pytest.mark.parametrize(("text", "flag", "op", "values"), [
    ("optimizer == sgd", "optimizer", "==", ("sgd",)),
    ("optimizer!=adam", "optimizer", "!=", ("adam",)),
    ("optimizer in [momentum, nesterov]", "optimizer", "in", ("momentum", "nesterov")),
    ("optimizer not in [adam]", "optimizer", "not in", ("adam",)),
    ("trainer.lr >= 1e-3", "trainer.lr", ">=", (0.001,)),
    ("num-layers < 3", "num-layers", "<", (3,)),
    ("init in [__import__('os')]", "init", "in", ("__import__('os')",)),  # text, never code
])
def test_conditions_are_parsed_never_evaluated(text, flag, op, values):
    cond = conditions.parse(text, lambda raw: spec.yaml.load(raw, Loader=spec._Loader))
    assert (cond.flag, cond.op, cond.values) == (flag, op, values)


def test_a_condition_on_a_bool_is_not_met_by_one():
    cond = conditions.Condition("amp", "==", (True,), "amp == true")
    assert cond.holds(True) and not cond.holds(1)
    assert conditions.Condition("n", "<", (3,), "n < 3").holds(2) is True
    assert conditions.Condition("n", "<", (3,), "n < 3").holds("two") is False


def test_flags_carry_their_condition_and_the_chain_is_ordered(tmp_path):
    loaded = _load(tmp_path, {"dampening": FLAGS["dampening"], "momentum": FLAGS["momentum"],
                              "optimizer": FLAGS["optimizer"]})
    assert loaded.flag("momentum").when.text == "optimizer in [momentum, nesterov]"
    assert [f.name for f in conditions.order(loaded.flags)] == ["optimizer", "momentum", "dampening"]
    kept = conditions.active(loaded.flags, {"optimizer": "adam", "momentum": 0.9, "dampening": 0.1})
    assert kept == {"optimizer": "adam"}  # dampening's parent is left out, so it is too


# ---------------------------------------------------------------- counting


def test_combinations_count_only_points_that_can_occur(tmp_path):
    flags = {k: v for k, v in FLAGS.items() if k != "beta1"}
    loaded = _load(tmp_path, flags, sampler="grid")
    assert loaded.combinations() == GRID_POINTS
    names, points = samplers.grid_order(loaded)
    assert len(points) == len(set(points)) == GRID_POINTS
    where = {n: i for i, n in enumerate(names)}
    assert all(p[where["momentum"]] is None for p in points if p[where["optimizer"]] in ("sgd", "adam"))
    assert samplers.target(loaded) == GRID_POINTS


def test_a_range_under_a_condition_still_makes_the_space_infinite(tmp_path):
    assert _load(tmp_path, FLAGS).combinations() is None
    with pytest.raises(SpecError, match="grid needs every flag to be a list"):
        _load(tmp_path, FLAGS, sampler="grid")


# ---------------------------------------------------------------- real sweeps


def test_grid_sweep_passes_a_flag_only_when_its_condition_holds(tmp_path):
    flags = {k: v for k, v in FLAGS.items() if k != "beta1"}
    path = _project(tmp_path, flags, sampler="grid")
    runs = tmp_path / "runs"
    result = sweep_cli("run", path, "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr  # optim.py exits 2 on a flag that does not apply
    dirs = run_dirs(runs)
    assert len(dirs) == GRID_POINTS
    seen = set()
    for run in dirs:
        flags_json = flags_of(run)
        argv = " ".join(info(run)["command"])
        seen.add(json.dumps(flags_json, sort_keys=True))
        if flags_json["optimizer"] in ("sgd", "adam"):
            assert "momentum" not in flags_json and "--momentum" not in argv
        else:
            assert f"--momentum={flags_json['momentum']}" in argv
        assert ("dampening" in flags_json) == (flags_json.get("momentum") == 0.9)
    assert len(seen) == GRID_POINTS  # every point once
    rows = ls_json(runs, "--where", "flag_optimizer=sgd")
    assert rows and all(r.get("flag_momentum") is None for r in rows)  # empty on the board


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_sampled_sweep_leaves_out_what_does_not_apply(tmp_path, sampler):
    path = _project(tmp_path, FLAGS, sampler=sampler, seed=3, trials=6)
    runs = tmp_path / "runs"
    result = sweep_cli("run", path, "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    dirs = run_dirs(runs)
    assert len(dirs) == 6
    for run in dirs:
        flags_json = flags_of(run)
        assert ("beta1" in flags_json) == (flags_json["optimizer"] == "adam")
        assert set(info(run)["params"]) <= set(flags_json)  # what the study drew is what ran


def test_dry_run_shows_the_commands_without_left_out_flags(tmp_path):
    path = project(tmp_path, {"optimizer": ["sgd", "adam"], "beta1": FLAGS["beta1"]}, OPTIM, seed=1, trials=6)
    result = sweep_cli("run", path, "--dry-run", "--sampler", "tpe")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    for line in lines:
        assert ("--beta1=" in line) == ("--optimizer=adam" in line)


def test_set_narrows_a_parent_and_keeps_the_condition(tmp_path):
    path = project(tmp_path, FLAGS, OPTIM, seed=2, trials=4)
    result = sweep_cli("run", path, "--dry-run", "--set", "optimizer=sgd", "--set", "momentum=[0.5]")
    assert result.exit_code == 0, result.stderr
    assert all("--momentum" not in line and "--beta1" not in line for line in result.stdout.splitlines())


def test_a_condition_error_is_one_line_and_exit_2(tmp_path):
    path = project(tmp_path, {"optimizer": ["sgd"], "momentum": {"min": 0.5, "max": 0.9, "when": "optimiser == sgd"}},
                   OPTIM)
    line = one_error_line(sweep_cli("run", path, "--runs-dir", tmp_path / "runs"), 2)
    assert line.endswith("flags.momentum.when: names 'optimiser', which is not a flag of this file; "
                         "flags: optimizer, momentum")
    assert not (tmp_path / "runs").exists()


def test_an_interrupted_conditional_trial_is_asked_again_with_the_same_flags(tmp_path):
    loaded = _load(tmp_path, FLAGS, sampler="tpe", seed=6)
    study = optuna.create_study(direction="maximize", sampler=samplers.sampler(loaded))
    asking = search.Search(loaded, study)
    asks = [asking.ask() for _ in range(6)]
    for ask in asks[1:]:
        asking.tell(ask, "completed", 0.5)
    asking.tell(asks[0], "interrupted")
    owed = asking.resume([])
    assert owed.rerun == {asks[0].number} and owed.ended == 5
    again = asking.ask()
    assert again.flags == asks[0].flags  # a left-out flag stays left out, the drawn ones are kept
