"""``sweep importance``: which flags mattered, by Optuna's fANOVA evaluator.

The study is rebuilt from the run directories (the record), so it works for any sweep whose
runs are still there, whatever happened to the sampler's journal."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sweep import board, rundir, words
from sweep import spec as specs
from sweep.errors import SweepError

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

MIN_RUNS = 5
NO_OBJECTIVE = "this sweep has no objective (its sweep file names no metric): nothing to rank flags by"


def importance(runs_dir: Path, ref: str) -> board.Board:
    runs = rundir.list_runs(runs_dir)
    sweep_id = rundir.find_sweep_id(runs_dir, ref, runs)
    mine = [r for r in runs if r.sweep == sweep_id]
    metric, goal = objective(mine)
    if metric == specs.NO_METRIC:
        raise SweepError(NO_OBJECTIVE)
    return _board(study_of(sweep_id, mine, metric, goal, search_space(sweep_id, mine)))


def in_study(url: str, name: str) -> board.Board:
    """A shared study's importance: its completed trials, every worker's, as the study's rows
    hold them, inside the space its first worker stored (the flags file may be elsewhere)."""
    from sweep import shared

    study = shared.load(url, name)
    runs = shared.runs_of(study)
    metric, goal = objective(runs)
    if metric == specs.NO_METRIC:
        raise SweepError(NO_OBJECTIVE)
    return _board(study_of(name, runs, metric, goal, shared.space_of(study), what=f"study {name}"))


def _board(study: optuna.Study) -> board.Board:
    rows = [{"flag": f"flag_{name}", "importance": round(score, 4)} for name, score in scores(study).items()]
    return board.Board(["flag", "importance"], rows)


def objective(runs: list[rundir.Run]) -> tuple[str, Literal["minimize", "maximize"]]:
    """The sweep's metric and goal, as its runs recorded them (``NO_METRIC`` for none)."""
    if runs and all(r.info.get("metric") == specs.NO_METRIC for r in runs):
        return specs.NO_METRIC, "maximize"
    metric = str(next((r.info["metric"] for r in runs if r.info.get("metric")), "eval_accuracy"))
    first = next((r.info.get("goal") for r in runs if r.info.get("goal")), "maximize")
    return metric, "minimize" if first == "minimize" else "maximize"


def search_space(sweep_id: str, runs: list[rundir.Run]) -> dict[str, BaseDistribution]:
    """The flags the sweep searched, as Optuna distributions, from its flags file."""
    from sweep import search

    space = search.space(spec_of(runs))
    if not space:
        raise SweepError(f"sweep {sweep_id} searched no flags (all fixed)")
    return space


def study_of(sweep_id: str, runs: list[rundir.Run], metric: str, goal: Literal["minimize", "maximize"],
             space: dict[str, BaseDistribution], what: str | None = None) -> optuna.Study:
    """An in-memory study of the sweep's completed runs inside its search space (each trial
    carries its run id as a user attribute), checked to be one fANOVA can score. ``what``
    names the runs in messages (default: the sweep)."""
    import optuna

    from sweep import search

    search.quiet()
    what = what or f"sweep {sweep_id}"
    done = [r for r in runs if r.status == "completed"]
    if len(done) < MIN_RUNS:
        raise SweepError(f"{what} has {words.count(len(done), 'completed run')}; "
                         f"importance needs at least {MIN_RUNS}")
    study = optuna.create_study(direction=goal)
    for run in done:
        params = {k: run.flags[k] for k in space if k in run.flags}
        value = run.metrics.get(metric)
        if len(params) != len(space) or value is None or not math.isfinite(value):
            continue  # fANOVA's forest cannot take NaN or inf: such a run says nothing here
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value,
                                                      user_attrs={"run": run.path.name}))
        except ValueError:
            continue  # a value outside the space (the flags file changed since): skip it
    usable = len(study.trials)
    if usable < MIN_RUNS:
        raise SweepError(f"{what} has {words.count(usable, 'completed run')} with {metric} and flags "
                         f"inside its search space; importance needs at least {MIN_RUNS}")
    values = {t.value for t in study.trials}
    if len(values) == 1:
        raise SweepError(f"every completed run of {what} has {metric} = {values.pop():g}: "
                         "no flag made a difference")
    return study


def scores(study: optuna.Study, trees: int = 64) -> dict[str, float]:
    """fANOVA importance of each flag, most important first (``trees``: the forest's size)."""
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=trees, seed=0)
    except ImportError:
        raise SweepError("sweep importance needs scikit-learn for Optuna's fANOVA: "
                         "pip install scikit-learn") from None
    return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}


def spec_of(runs: list[rundir.Run]) -> specs.SweepSpec:
    for run in runs:
        source = run.path / rundir.SOURCE_DIR
        flags_file = run.info.get("flags_file")
        if flags_file:
            snap = source / Path(flags_file).name
            for candidate in (snap, Path(flags_file)):
                try:
                    return _load_loose(candidate)
                except SweepError:
                    continue
    raise SweepError("cannot find the flags file of this sweep (neither its snapshot nor the original)")


def _load_loose(path: Path) -> specs.SweepSpec:
    """Load a flags file (or a W&B sweep file) whose script may have moved: only the search
    space matters here."""
    from sweep import wbsweep

    data = specs.read_yaml(path)
    if wbsweep.is_wandb(data):
        return wbsweep.parse(data, path, space_only=True)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("script", "module")}
        data["module"] = "unused"
    return specs.parse(data, path)
