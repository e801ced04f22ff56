"""Several objectives and constraints (issue 16, points 1 and 2): the flags file's keys, the
Pareto ranks and broken constraints on the board, ``ls --pareto``, ``best``, and what the
Optuna study is told, against real trials of a script that prints accuracy and size.

The script's "trained" accuracy is a fixed curve of width and depth (tests/scripts/objectives/
tradeoff.py): wider is more accurate and larger; a second layer is larger and less accurate.
So over widths 16, 64, 256 and depths 1, 2 the Pareto front of (accuracy up, size down) is
exactly the depth-1 runs, and each depth-2 run is dominated by the depth-1 run of its width.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep import objectives, rundir, samplers, search, spec
from sweep.errors import SpecError
from tests.helpers import REPO, SCRIPTS, info, ls_json, one_error_line, project, run_dirs, sweep_cli

TRADEOFF = SCRIPTS / "objectives" / "tradeoff.py"
GRID = {"width": [16, 64, 256], "depth": [1, 2], "epochs": 1}


def study_of(runs: Path) -> optuna.Study:
    (record,) = rundir.load_sweeps(runs)
    journal = runs / rundir.STATE_DIR / f"{record.id}.journal"
    return optuna.load_study(study_name=record.study, storage=JournalStorage(JournalFileBackend(str(journal))))


def sweep_run(flags_file: Path, *args: str, code: int = 0):
    result = sweep_cli("run", flags_file, "--runs-dir", flags_file.parent / "runs", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def by_size(rows: list[dict]) -> dict[tuple[int, int], dict]:
    return {(row["flag_width"], row["flag_depth"]): row for row in rows}


# ---------------------------------------------------------------- the pure parts


def test_pareto_ranks_peel_one_front_after_another():
    # Minimize both: (1, 5), (2, 2), (5, 1) are the front; (3, 3) and (2, 4) the next; (4, 4)
    # is dominated by (3, 3); an exact duplicate shares its twin's rank.
    points = [(3, 3), (1, 5), (4, 4), (2, 2), (5, 1), (2, 4), (2, 2), (6, 6)]
    assert objectives.pareto_ranks(points) == [2, 1, 3, 1, 1, 2, 1, 4]
    assert objectives.pareto_ranks([]) == []
    assert objectives.pareto_ranks([(1.0, 1.0, 1.0), (0.0, 2.0, 1.0), (1.0, 1.0, 2.0)]) == [1, 1, 2]


def _peeled(points: list[tuple[int, ...]]) -> list[int]:
    """Ranks the slow, obvious way: take away the non-dominated points, again and again."""
    def dominates(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    ranks, left, rank = [0] * len(points), set(range(len(points))), 1
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left, rank = left - front, rank + 1
    return ranks


@pytest.mark.parametrize("dims", [2, 3])
def test_pareto_ranks_match_peeling_fronts_with_ties_and_duplicates(dims):
    rng = random.Random(dims)
    for _ in range(400):
        points = [tuple(rng.randint(0, 4) for _ in range(dims)) for _ in range(rng.randint(0, 20))]
        assert objectives.pareto_ranks(points) == _peeled(points), points


def test_a_constraint_is_parsed_and_gives_optuna_its_convention():
    c = objectives.parse_constraint("latency_ms<20")
    assert (c.metric, c.op, c.bound, str(c)) == ("latency_ms", "<", 20.0, "latency_ms < 20")
    assert c.excess(15.0) == -5.0 and c.excess(25.0) == 5.0
    assert c.excess(20.0) > 0  # strict: equal is broken, so Optuna must not see <= 0
    assert objectives.parse_constraint("params_m <= 5").excess(5.0) == 0.0  # met with equality
    assert objectives.parse_constraint("eval_accuracy >= 0.9").excess(0.8) == pytest.approx(0.1)
    assert objectives.parse_constraint("x > 1e-3").bound == 0.001
    assert objectives.parse_constraint("x < 1").excess(math.nan) == objectives.FAR
    rules = [objectives.parse_constraint("params_m <= 5"), objectives.parse_constraint("latency_ms < 20")]
    assert objectives.broken(rules, {"params_m": 4.0, "latency_ms": 19.9}) is None
    assert objectives.broken(rules, {"params_m": 4.0, "latency_ms": 31.25}) == "latency_ms < 20 (was 31.25)"
    assert objectives.broken(rules, {"params_m": 4.0}) == "latency_ms < 20 (not reported)"
    for text in ("latency_ms == 20", "os.system('x') < 1", "latency_ms < inf", "< 20", "a < b"):
        with pytest.raises(ValueError, match="cannot read"):
            objectives.parse_constraint(text)


def test_flags_file_with_several_objectives_and_constraints(write):
    s = spec.load(write("""
        script: train.py
        flags: {lr: [0.1]}
        metric: [eval_accuracy, params_m, latency_ms]
        constraints: ["latency_ms < 20", "params_m <= 5"]
        """))
    # Goals left out are inferred per metric: size and latency are lower-is-better.
    assert s.objectives == (("eval_accuracy", "maximize"), ("params_m", "minimize"), ("latency_ms", "minimize"))
    assert (s.metric, s.goal, s.goal_given) == ("eval_accuracy", "maximize", False)
    assert [str(c) for c in s.constraints] == ["latency_ms < 20", "params_m <= 5"]
    one = spec.load(write("script: train.py\nflags: {lr: [0.1]}\nmetric: [val_loss]\ngoal: [maximize]\n"))
    assert (one.objectives, one.metric, one.goal, one.targets()) == ((), "val_loss", "maximize",
                                                                      (("val_loss", "maximize"),))
    # One objective may still be pruned; several may not (the corpus has that file).
    spec.load(write("script: train.py\nflags: {lr: [0.1]}\nmetric: [val_loss]\npruner: median\n"))
    with pytest.raises(SpecError, match="pruner: pruning needs one objective"):
        spec.load(write("script: train.py\nflags: {lr: [0.1]}\nmetric: [a_acc, b_acc]\npruner: hyperband\n"))


def test_the_study_plans_and_resumes_with_several_objectives_and_constraints(write):
    """A dry run plans from a study with two directions; a resume settles a trial its dead
    driver left running from the run's record: both values, and the constraint values."""
    s = spec.load(write("""
        script: train.py
        flags: {width: {min: 8, max: 512, int: true}}
        metric: [eval_accuracy, params_m]
        constraints: ["params_m <= 0.1"]
        sampler: nsga2
        """))
    assert len(search.plan(s, 3)) == 3
    study = optuna.create_study(directions=search.directions(s))
    ask = search.Search(s, study).ask()
    assert ask is not None
    run = rundir.Run(Path("r"), "r", "completed", {"trial": ask.number}, ask.flags,
                     {"eval_accuracy": 0.9, "params_m": 0.25})
    search.Search(s, study).resume([run])
    (t,) = study.trials
    assert t.values == [0.9, 0.25]
    assert t.user_attrs["constraints"] == pytest.approx([0.15])
    assert t.constraints == pytest.approx({"params_m <= 0.1": 0.15})


# ---------------------------------------------------------------- real sweeps


def test_two_objectives_rank_the_front_and_ls_pareto_shows_it(tmp_path):
    flags_file = project(tmp_path, GRID, TRADEOFF, metric=["eval_accuracy", "params_m"])
    result = sweep_run(flags_file)
    assert "objectives eval_accuracy, maximize; params_m, minimize (inferred" in result.stderr
    runs = tmp_path / "runs"
    assert [info(r)["objectives"] for r in run_dirs(runs)] == [[["eval_accuracy", "maximize"],
                                                                ["params_m", "minimize"]]] * 6
    rows = by_size(ls_json(runs))
    assert {key: row["pareto"] for key, row in rows.items()} == {
        (16, 1): 1, (64, 1): 1, (256, 1): 1, (16, 2): 2, (64, 2): 2, (256, 2): 2}
    # The end-of-sweep board: the front first, by the first objective, then the next rank.
    table = result.stdout.splitlines()
    header = table[1].split()
    order = [(int(line.split()[header.index("flag_width")]), int(line.split()[header.index("flag_depth")]))
             for line in table[2:]]
    assert order == [(256, 1), (64, 1), (16, 1), (256, 2), (64, 2), (16, 2)]
    front = ls_json(runs, "--pareto")
    assert [(r["flag_width"], r["flag_depth"]) for r in front] == [(256, 1), (64, 1), (16, 1)]
    assert [r["flag_width"] for r in ls_json(runs, "--pareto", "--sort", "params_m")] == [16, 64, 256]
    # The second objective sorts by its own goal (smallest first), not as a maximized metric.
    assert [r["params_m"] for r in ls_json(runs, "--sort", "params_m")][:2] == sorted(
        r["params_m"] for r in rows.values())[:2]
    # Ranks are over the runs shown: without the widest runs, the rest is ranked alone.
    narrow = by_size(ls_json(runs, "--where", "flag_width<=64"))
    assert narrow[(64, 2)]["pareto"] == 2 and narrow[(16, 1)]["pareto"] == 1
    # A condition on the rank itself filters after ranking.
    second = ls_json(runs, "--where", "pareto>=2", "--where", "flag_width>=64")
    assert sorted((r["flag_width"], r["pareto"]) for r in second) == [(64, 2), (256, 2)]
    # The study has two directions and each trial both values, in order.
    study = study_of(runs)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    for t in study.trials:
        row = rows[(t.params["width"], t.params["depth"])]
        assert t.values == [row["eval_accuracy"], row["params_m"]]
    # best: the front's best by the first objective.
    assert rundir.resolve(runs, "best").flags == {"width": 256, "depth": 1, "epochs": 1}
    # The report's leaderboard has the ranks too.
    page = tmp_path / "report.html"
    assert sweep_cli("report", "--runs-dir", runs, "-o", page).exit_code == 0
    assert "<th>pareto</th>" in page.read_text()


def test_ls_pareto_needs_a_sweep_with_several_objectives(tmp_path):
    flags_file = project(tmp_path, {"width": [16, 64], "epochs": 1}, TRADEOFF)
    sweep_run(flags_file)
    line = one_error_line(sweep_cli("ls", "--runs-dir", tmp_path / "runs", "--pareto"), 2)
    assert line == ("Error: --pareto needs runs of a sweep with several objectives "
                    "(metric: [a, b] in its flags file); none is shown")
    assert "pareto" not in ls_json(tmp_path / "runs")[0]


def test_ls_by_pareto_rank_before_any_run_is_ranked_lists_the_runs_it_has(tmp_path):
    """A sweep with several objectives whose runs are not ranked (yet: running, failed or
    infeasible): ``--sort pareto`` lists them, ``--pareto`` and ``--where pareto<=1`` find
    an empty front, as a filter that leaves nothing does, all with exit 0."""
    flags_file = project(tmp_path, {"width": [16], "epochs": 1, "report": "eval_accuracy"}, TRADEOFF,
                         metric=["eval_accuracy", "latency_ms"])
    sweep_run(flags_file, code=1)  # its one run reports one objective of two: failed
    runs = tmp_path / "runs"
    (row,) = ls_json(runs, "--sort", "pareto")
    assert row["status"] == "failed" and row["pareto"] is None
    for args in (["--pareto"], ["--where", "pareto<=1"], ["--sort", "pareto", "--where", "eval_accuracy>5"]):
        result = sweep_cli("ls", "--runs-dir", runs, *args)
        assert (result.exit_code, result.stdout) == (0, "no runs\n"), (args, result.stderr)


def test_a_run_that_misses_an_objective_fails_naming_it(tmp_path):
    flags_file = project(tmp_path, {"width": [16], "epochs": 1, "report": "eval_accuracy"}, TRADEOFF,
                         metric=["eval_accuracy", "latency_ms"])
    sweep_run(flags_file, code=1)
    (row,) = ls_json(tmp_path / "runs")
    assert row["status"] == "failed"
    assert row["reason"] == "reported no latency_ms (print 'latency_ms: VALUE' or call sweep.log)"


def test_constraints_mark_infeasible_runs_and_reach_the_sampler(tmp_path):
    # One objective under a size limit: the widest runs are the most accurate but too large.
    flags_file = project(tmp_path, {**GRID, "report": "eval_accuracy,params_m"}, TRADEOFF,
                         constraints=["params_m <= 0.1"], sampler="tpe", trials=6, seed=3)
    result = sweep_run(flags_file)
    assert "objective eval_accuracy, maximize (inferred from the name; set goal: to change); " \
           "subject to params_m <= 0.1" in result.stderr
    runs = tmp_path / "runs"
    rows = ls_json(runs, "--sort", "eval_accuracy")
    wide = [r for r in rows if r["flag_width"] == 256]
    narrow = [r for r in rows if r["flag_width"] != 256]
    assert wide and narrow, "the seed must draw both kinds"
    for row in wide:
        assert row["infeasible"] == f"params_m <= 0.1 (was {row['params_m']:.6g})"
    assert all(r["infeasible"] is None for r in narrow)
    # Infeasible runs never rank above feasible ones, however accurate.
    assert rows == narrow + wide
    assert max(r["eval_accuracy"] for r in wide) > max(r["eval_accuracy"] for r in narrow)
    assert rundir.resolve(runs, "best").flags["width"] == 64  # the most accurate feasible width
    # The study holds each trial's constraint values (<= 0 met) where TPE reads them.
    for t in study_of(runs).trials:
        expected = t.user_attrs["metrics"]["params_m"] - 0.1
        assert t.user_attrs["constraints"] == pytest.approx([expected])
        assert t.constraints == pytest.approx({"params_m <= 0.1": expected})
    # The board at the end of the sweep says so too, feasible runs first.
    header = result.stdout.splitlines()[1].split()
    assert "infeasible" in header


def test_nsga2_runs_a_constrained_two_objective_sweep(tmp_path):
    flags = {"width": {"min": 8, "max": 512, "int": True, "log": True}, "depth": [1, 2, 3], "epochs": 1,
             "report": "eval_accuracy,params_m,latency_ms"}
    flags_file = project(tmp_path, flags, TRADEOFF, metric=["eval_accuracy", "params_m"],
                         goal=["maximize", "minimize"], constraints=["latency_ms < 30"],
                         sampler="nsga2", trials=10, seed=0)
    sweep_run(flags_file)
    rows = ls_json(tmp_path / "runs")
    assert len(rows) == 10 and {r["status"] for r in rows} == {"completed"}
    ranked = [r for r in rows if r["pareto"] is not None]
    assert ranked and all(r["latency_ms"] < 30 for r in ranked)
    assert all(r["infeasible"] for r in rows if r["latency_ms"] >= 30)
    assert type(samplers.sampler(spec.load(flags_file))).__name__ == "NSGAIISampler"
    assert all(set(t.constraints) == {"latency_ms < 30"} for t in study_of(tmp_path / "runs").trials)


def test_the_size_example_trades_accuracy_against_parameters(tmp_path):
    """flags/size.yaml on flags/mlp.py, as README shows it: two objectives, a constraint, and
    mlp.py logging its size. A --smoke run (2 one-epoch trials) keeps it short."""
    example = REPO / "flags" / "size.yaml"
    s = spec.load(example)
    assert s.objectives == (("eval_accuracy", "maximize"), ("params_k", "minimize"))
    assert [str(c) for c in s.constraints] == ["params_k <= 20"] and s.sampler == "nsga2"
    result = sweep_cli("run", example, "--smoke", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    rows = ls_json(tmp_path / "runs")
    for row in rows:
        hidden, layers = row["flag_hidden"], row["flag_layers"]
        size = 2 * hidden + hidden + (layers - 1) * (hidden * hidden + hidden) + hidden * 2 + 2
        assert row["params_k"] == size / 1000
        assert (row["infeasible"] is None) == (size <= 20_000)
    assert {r["pareto"] for r in rows if r["infeasible"] is None} & {1}
