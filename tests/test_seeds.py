"""Seeds and honest ranking: ``repeats:``/``seed_flag:`` run each configuration with several
seeds and tell the study their mean; ``ls --group`` ranks configurations by their mean and marks
those within noise of the best; ``sweep rerun --top K --seeds N`` reruns the best with new seeds.

Real trials run ``tests/scripts/seeds/noisy_train.py`` (pytorch/examples' argparse style, with
``--seed``); the loop's bookkeeping of repeats is checked with test_driver's fake launcher."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import optuna
import pytest
from test_driver import Behaviour, FakeLauncher, accuracy_is_lr, make_spec
from test_driver import sweep as fake_sweep

from sweep import groups, rundir, seeds
from sweep.board import Board
from sweep.driver import Driver, Event

from helpers import SCRIPTS, flags_of, info, ls_json, metrics_of, one_error_line, project, run_dirs, sweep_cli

NOISY = SCRIPTS / "seeds" / "noisy_train.py"


def noisy_project(root: Path, **top) -> Path:
    return project(root, {"lr": [0.001, 0.01, 0.1], "hidden": [32, 64], "epochs": 1}, NOISY,
                   metric="eval_accuracy", goal="maximize", **top)


def by_config(runs: list[Path]) -> dict[tuple, list[Path]]:
    out: dict[tuple, list[Path]] = {}
    for run in runs:
        flags = flags_of(run)
        out.setdefault((flags["lr"], flags["hidden"]), []).append(run)
    return out


# ---------------------------------------------------------------- repeats: real trials


def test_repeats_run_every_configuration_with_the_same_seeds_and_the_study_hears_the_mean(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=3, seed=7, repeats=3, seed_flag="seed")
    runs_dir = tmp_path / "runs"
    result = sweep_cli("run", flags_file, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.stderr
    assert "3 configurations x 3 seeds = 9 trials" in result.stderr
    runs = run_dirs(runs_dir)
    assert len(runs) == 9  # trials: counts configurations
    configs = by_config(runs)
    assert len(configs) == 3
    expected = [seeds.seed_for(7, i) for i in range(3)]
    for group in configs.values():
        assert sorted(flags_of(r)["seed"] for r in group) == sorted(expected)  # the same seeds for each
        assert sorted(info(r)["repeat"] for r in group) == [0, 1, 2]
        assert {info(r)["seed_flag"] for r in group} == {"seed"}
        assert {info(r)["trial"] for r in group} == {info(group[0])["trial"]}  # one trial per configuration
        for run in group:
            assert f"--seed={flags_of(run)['seed']}" in info(run)["command"]
    assert len(set(expected)) == 3
    # The study: one trial per configuration, told the mean of its repeats.
    [journal] = (runs_dir / ".sweep").glob("*.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    [summary] = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert len(study.trials) == 3
    for trial in study.trials:
        group = [r for r in runs if info(r)["trial"] == trial.number]
        assert trial.value == pytest.approx(statistics.fmean(metrics_of(r)["eval_accuracy"] for r in group))
        assert sorted(trial.user_attrs["run_ids"]) == sorted(r.name for r in group)
        assert trial.user_attrs["metrics"]["eval_accuracy"] == pytest.approx(trial.value)
    # The end-of-sweep board: one row per configuration, best mean first.
    title, head, *rows = result.stdout.splitlines()
    assert title.startswith("sweep s")
    assert head.split()[:7] == ["rank", "sweep", "eval_accuracy", "std", "n", "runs", "noise"]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]


def test_ls_group_ranks_configurations_by_their_mean_with_std_and_n(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=3, seed=3, repeats=3, seed_flag="seed", jobs=2)
    runs_dir = tmp_path / "runs"
    assert sweep_cli("run", flags_file, "--runs-dir", runs_dir).exit_code == 0
    rows = ls_json(runs_dir, "--group")
    assert [r["rank"] for r in rows] == [1, 2, 3]
    configs = by_config(run_dirs(runs_dir))
    for row in rows:
        values = [metrics_of(r)["eval_accuracy"] for r in configs[(row["flag_lr"], row["flag_hidden"])]]
        assert row["eval_accuracy"] == pytest.approx(statistics.fmean(values))
        assert row["std"] == pytest.approx(statistics.stdev(values))
        assert row["n"] == 3 and row["runs"] == 3
        assert "flag_seed" not in row  # the seed is not part of a configuration
    means = [r["eval_accuracy"] for r in rows]
    assert means == sorted(means, reverse=True)
    assert rows[0]["noise"] == "best"
    assert all(r["noise"] in ("within", "") for r in rows[1:])
    assert [r["rank"] for r in ls_json(runs_dir, "--group", "--top", "1")] == [1]


def test_a_pruner_with_repeats_is_refused_from_the_command_line(tmp_path):
    flags_file = noisy_project(tmp_path / "p", repeats=2, seed_flag="seed")
    result = sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs", "--pruner", "median")
    line = one_error_line(result, 2)
    assert "--pruner median:" in line and "has repeats: 2" in line
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the loop's bookkeeping


def test_a_failed_repeat_fails_its_configuration_in_the_study(tmp_path):
    def program(job):
        flags = json.loads(job.env["SWEEP_FLAGS"])
        return Behaviour(code=1) if flags["seed"] == seeds.seed_for(1, 1) else accuracy_is_lr(job)

    result, _, _, _ = fake_sweep(tmp_path, "trials: 2\nseed: 1\nrepeats: 2\nseed_flag: seed\n"
                                 "flags:\n  lr: [0.1, 0.2]\n", program)
    assert result.counts == {"completed": 2, "failed": 2, "pruned": 0, "interrupted": 0}
    study = _study(tmp_path / "runs")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]


def test_an_interrupted_configuration_runs_whole_again_on_resume(tmp_path):
    spec = make_spec(tmp_path, "trials: 2\nseed: 4\nrepeats: 3\nseed_flag: seed\nflags:\n  lr: [0.1, 0.2]\n")
    driver: Driver

    def on_event(event: Event) -> None:
        if event.kind == "trial_end" and event.number == 0:
            driver.interrupt()  # after the first repeat: two of its seeds never started

    driver = Driver(spec, tmp_path / "runs", FakeLauncher(accuracy_is_lr), on_event=on_event)
    first = driver.run()
    assert first.interrupted and first.counts["completed"] == 1
    [cut] = {r.flags["lr"] for r in rundir.list_runs(tmp_path / "runs")}
    study = _study(tmp_path / "runs")
    assert [t.user_attrs.get("sweep_status") for t in study.trials] == ["interrupted"]
    launcher = FakeLauncher(accuracy_is_lr)
    second = Driver(spec, tmp_path / "runs", launcher, resume="last").run()
    assert second.counts["completed"] == 6  # the cut configuration's three seeds, then the other's
    rows = ls_json(tmp_path / "runs", "--group")
    assert {r["flag_lr"]: (r["n"], r["runs"]) for r in rows} == {cut: (3, 4), ({0.1, 0.2} - {cut}).pop(): (3, 3)}
    values = [t.value for t in _study(tmp_path / "runs").trials if t.state.name == "COMPLETE"]
    assert sorted(values) == pytest.approx([0.1, 0.2])


def _study(runs_dir: Path) -> optuna.Study:
    [journal] = (runs_dir / ".sweep").glob("*.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    [summary] = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


# ---------------------------------------------------------------- within noise (pure)


def config(*values: float) -> groups.Config:
    c = groups.Config("s", {}, list(values))
    c.settle()
    return c


def test_within_noise_is_a_mean_difference_under_two_standard_errors():
    best = config(0.90, 0.92, 0.94)  # mean 0.92, sd 0.02
    assert groups.within_noise(config(0.89, 0.91, 0.93), best) is True  # 0.01 apart, 2 se = 0.033
    assert groups.within_noise(config(0.80, 0.81, 0.82), best) is False  # 0.11 apart
    assert groups.within_noise(config(0.85), best) is None  # one run: its noise is unknown
    assert groups.within_noise(config(0.88, 0.881), config(0.92, 0.921)) is False  # tight: 0.04 is real


def test_a_seed_counted_twice_counts_once_its_newest_run():
    rows = [{"sweep": "s", "status": "completed", "flag_lr": 0.1, "flag_seed": seed, "_seed_flag": "seed",
             "acc": value, "_start": start} for seed, value, start in [(1, 0.5, 1.0), (2, 0.7, 2.0), (1, 0.6, 3.0)]]
    [found] = groups.configs(rows, "acc")
    assert found.runs == 3 and sorted(found.values) == [0.6, 0.7]


def test_a_grouped_board_with_two_objectives_ranks_configurations_by_the_pareto_front_of_their_means():
    both = [("acc", "maximize"), ("params_m", "minimize")]

    def rows(width: int, accs: list[float], params_m: float) -> list[dict]:
        return [{"sweep": "s", "status": "completed", "flag_width": width, "flag_seed": i, "_seed_flag": "seed",
                 "acc": acc, "params_m": params_m, "_start": float(i), "_metric": "acc", "_goal": "maximize",
                 "_objectives": both} for i, acc in enumerate(accs)]

    found = groups.grouped(Board(["acc", "params_m", "flag_width"], [
        *rows(16, [0.80, 0.82], 0.01),  # small and fair: on the front
        *rows(64, [0.85, 0.87], 0.05),  # on the front
        *rows(128, [0.83, 0.84], 0.20),  # worse than 64 in both: the second front, though its acc beats 16's
        *rows(256, [0.90, 0.92], 0.80),  # the best accuracy: first
    ]), "acc")
    assert [(r["flag_width"], r["pareto"]) for r in found.rows] == [(256, 1), (64, 1), (16, 1), (128, 2)]
    assert found.rows[0]["params_m"] == pytest.approx(0.80) and found.rows[0]["noise"] == "best"
    assert found.columns[:4] == ["rank", "sweep", "acc", "pareto"] and "params_m" in found.keep
    alone = groups.grouped(Board(["acc", "params_m", "flag_width"], rows(64, [0.8], 0.05) + rows(16, [0.8], 0.01)),
                           "params_m")
    assert "pareto" not in alone.columns  # ranked by the one metric asked for: no front
    assert [r["flag_width"] for r in alone.rows] == [16, 64]  # by params_m's own goal: minimize


# ---------------------------------------------------------------- rerun


def test_rerun_runs_the_best_configurations_with_new_seeds_and_names_its_parent(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=5, seed=11)  # single runs, the script's default seed
    runs_dir = tmp_path / "runs"
    assert sweep_cli("run", flags_file, "--runs-dir", runs_dir).exit_code == 0
    parent = run_dirs(runs_dir)
    best = sorted(parent, key=lambda r: metrics_of(r)["eval_accuracy"], reverse=True)[:2]
    result = sweep_cli("rerun", "--top", "2", "--seeds", "3", "--seed-flag", "seed", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.stderr
    assert f"rerun of sweep {info(parent[0])['sweep']}: 2 configurations x 3 new seeds (seed)" in result.stderr
    new = [r for r in run_dirs(runs_dir) if r not in parent]
    assert len(new) == 6
    assert set(by_config(new)) == set(by_config(best))
    assert all(len(group) == 3 for group in by_config(new).values())
    assert len({flags_of(r)["seed"] for r in new}) == 3  # new seeds, the same three for each
    record = json.loads(next((runs_dir / ".sweep").glob(f"{info(new[0])['sweep']}.json")).read_text())
    assert record["parent"] == info(parent[0])["sweep"]
    rows = ls_json(runs_dir, "--group", "--sweep", "last")
    assert len(rows) == 2 and rows[0]["noise"] == "best" and {r["n"] for r in rows} == {3}
    assert rows[0]["eval_accuracy"] >= rows[1]["eval_accuracy"]
    # The rerun is the flags file's last sweep now, but its plan came from `sweep rerun`.
    parent_id = info(parent[0])["sweep"]
    line = one_error_line(sweep_cli("run", flags_file, "--runs-dir", runs_dir, "--resume", "last"), 2)
    assert line.endswith(f"is a rerun of sweep {parent_id} and cannot be resumed; to resume {parent_id}, "
                         f"give its id: --resume {parent_id}")


def test_rerun_of_a_sweep_with_repeats_takes_its_seed_flag_and_never_reuses_a_seed(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=2, seed=5, repeats=2, seed_flag="seed")
    runs_dir = tmp_path / "runs"
    assert sweep_cli("run", flags_file, "--runs-dir", runs_dir).exit_code == 0
    parent = run_dirs(runs_dir)
    result = sweep_cli("rerun", "--top", "1", "--seeds", "2", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.stderr
    new = [r for r in run_dirs(runs_dir) if r not in parent]
    assert len(new) == 2
    assert {flags_of(r)["seed"] for r in new}.isdisjoint({flags_of(r)["seed"] for r in parent})
    assert sorted(info(r)["repeat"] for r in new) == [2, 3]


def test_rerun_without_a_seed_flag_or_with_a_searched_one_is_refused(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=2)
    runs_dir = tmp_path / "runs"
    assert sweep_cli("run", flags_file, "--runs-dir", runs_dir).exit_code == 0
    before = sorted(p.name for p in runs_dir.iterdir())
    line = one_error_line(sweep_cli("rerun", "--runs-dir", runs_dir), 2)
    assert line.endswith("has no seed_flag: name the script's seed option with --seed-flag NAME "
                         "(e.g. --seed-flag seed)")
    line = one_error_line(sweep_cli("rerun", "--seed-flag", "lr", "--runs-dir", runs_dir), 2)
    assert "--seed-flag lr: sweep " in line and "searches lr as a flag" in line
    line = one_error_line(sweep_cli("rerun", "nope", "--seed-flag", "seed", "--runs-dir", runs_dir), 2)
    assert "no sweep matches 'nope'" in line and line.endswith("nothing to rerun")
    assert sorted(p.name for p in runs_dir.iterdir()) == before


def test_dry_run_lists_every_repeat_with_its_seed(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=2, seed=9, repeats=2, seed_flag="seed")
    result = sweep_cli("run", flags_file, "--dry-run", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert [line.rsplit(" ", 1)[1] for line in lines] == [f"--seed={seeds.seed_for(9, i)}" for i in (0, 1, 0, 1)]
    assert not (tmp_path / "runs").exists()


def test_ls_group_ranks_by_a_metric_only(tmp_path):
    flags_file = noisy_project(tmp_path / "p", trials=1, repeats=2, seed_flag="seed")
    assert sweep_cli("run", flags_file, "--runs-dir", tmp_path / "runs").exit_code == 0
    for column in ("flag_lr", "status"):
        line = one_error_line(sweep_cli("ls", "--group", "--sort", column, "--runs-dir", tmp_path / "runs"), 2)
        assert line == f"Error: --group ranks by a metric; {column!r} is not one of this board's metrics"
    [row] = ls_json(tmp_path / "runs", "--group", "--sort", "Loss")  # another metric: its mean
    assert row["n"] == 2 and "Loss" in row and "eval_accuracy" not in row
    line = one_error_line(sweep_cli("ls", "--group", "--storage", tmp_path / "j.log", "--study", "x"), 2)
    assert line == "Error: --group reads the run directories; it does not work with --storage"


def test_a_target_with_repeats_is_reached_by_a_configurations_mean_not_one_lucky_seed(tmp_path):
    import subprocess
    import sys

    from sweep import samplers, spec

    path = project(tmp_path / "p", {"lr": [0.01, 0.1], "hidden": [64], "epochs": 1}, NOISY, metric="eval_accuracy",
                   goal="maximize", sampler="grid", seed=7, repeats=3, seed_flag="seed", jobs=1)
    names, order = samplers.grid_order(spec.load(path))
    first = dict(zip(names, order[0], strict=True))
    values = [float(subprocess.run([sys.executable, str(NOISY), f"--lr={first['lr']}", "--hidden=64", "--epochs=1",
                                    f"--seed={seeds.seed_for(7, i)}"], capture_output=True, text=True,
                                   check=True).stdout.split("eval_accuracy: ")[1]) for i in range(3)]
    target = (max(values) + statistics.fmean(values)) / 2  # one seed of the first configuration reaches it
    path.write_text(path.read_text() + f"target: {target!r}\n")
    result = sweep_cli("run", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    runs = run_dirs(tmp_path / "runs")
    assert len(runs) == 6  # the first configuration's mean fell short: the second one ran
    notes = [line for line in result.stderr.splitlines() if "reached the target" in line]
    second = statistics.fmean(metrics_of(r)["eval_accuracy"] for r in runs[3:])
    assert notes == ([f"sweep: trial 1 (the mean of its 3 seeds) reached the target eval_accuracy {target:g}: "
                      "no more trials start"] if second >= target else [])
