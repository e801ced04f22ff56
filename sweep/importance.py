"""``sweep importance``: which flags mattered, by Optuna's fANOVA evaluator.

The study is rebuilt from the run directories (the record), so it works for any sweep whose
runs are still there, whatever happened to the sampler's journal."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sweep import board, rundir, words
from sweep import spec as specs
from sweep.errors import SweepError

MIN_RUNS = 5


def importance(runs_dir: Path, ref: str) -> board.Board:
    import optuna

    from sweep import search

    search.quiet()
    runs = rundir.list_runs(runs_dir)
    sweep_id = rundir.find_sweep_id(runs_dir, ref, runs)
    mine = [r for r in runs if r.sweep == sweep_id]
    done = [r for r in mine if r.status == "completed"]
    metric = str(next((r.info["metric"] for r in mine if r.info.get("metric")), "eval_accuracy"))
    first = next((r.info.get("goal") for r in mine if r.info.get("goal")), "maximize")
    goal: Literal["minimize", "maximize"] = "minimize" if first == "minimize" else "maximize"
    if len(done) < MIN_RUNS:
        raise SweepError(f"sweep {sweep_id} has {words.count(len(done), 'completed run')}; "
                         f"importance needs at least {MIN_RUNS}")
    spec = _spec_of(mine)
    space = search.space(spec)
    if not space:
        raise SweepError(f"sweep {sweep_id} searched no flags (all fixed)")
    study = optuna.create_study(direction=goal)
    for run in done:
        params = {k: run.flags[k] for k in space if k in run.flags}
        value = run.metrics.get(metric)
        if len(params) != len(space) or value is None:
            continue
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value))
        except ValueError:
            continue  # a value outside the space (the flags file changed since): skip it
    usable = len(study.trials)
    if usable < MIN_RUNS:
        raise SweepError(f"sweep {sweep_id} has {words.count(usable, 'completed run')} with {metric} and flags "
                         f"inside its search space; importance needs at least {MIN_RUNS}")
    values = {t.value for t in study.trials}
    if len(values) == 1:
        raise SweepError(f"every completed run of sweep {sweep_id} has {metric} = {values.pop():g}: "
                         "no flag made a difference")
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    except ImportError:
        raise SweepError("sweep importance needs scikit-learn for Optuna's fANOVA: "
                         "pip install scikit-learn") from None
    scores = optuna.importance.get_param_importances(study, evaluator=evaluator)
    rows = [{"flag": f"flag_{name}", "importance": round(float(score), 4)} for name, score in scores.items()]
    return board.Board(["flag", "importance"], rows)


def _spec_of(runs: list[rundir.Run]) -> specs.SweepSpec:
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
    """Load a flags file whose script may have moved: only the search space matters here."""

    data = specs.read_yaml(path)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("script", "module")}
        data["module"] = "unused"
    return specs.parse(data, path)
