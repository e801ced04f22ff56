"""W&B sweep configurations run as they are: the corpus in tests/wandb_sweeps/ (every key, every
one of W&B's 18 distributions, the examples of W&B's sweep documentation), the bad ones in
tests/wandb_sweeps/bad/ (one line, exit status 2, nothing written), each distribution's samples
against its definition, and ``sweep convert``."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sweep import command, dists, search
from sweep import spec as specs
from sweep.errors import SpecError

from helpers import ls_json, metrics_of, one_error_line, run_dirs, sweep_cli

CORPUS = Path(__file__).parent / "wandb_sweeps"
PROBE = Path(__file__).parent / "scripts" / "probe.py"
DRAWS = 4000


def load(name: str) -> specs.SweepSpec:
    return specs.load(CORPUS / name)


# ---------------------------------------------------------------- the corpus


def test_every_key_of_the_schema_is_read():
    s = load("every_key.yaml")
    assert s.script == CORPUS / "train.py"
    assert (s.sampler, s.trials, s.metric, s.goal, s.target) == ("random", 7, "val_loss", "minimize", 0.0001)
    assert s.description == "every-key: all of W&B's sweep keys"
    assert (s.pruner.name, s.pruner.min_resource, s.pruner.max_resource, s.pruner.reduction_factor) == (
        "hyperband", 2, "auto", 2)
    assert s.command == ("${env}", "${interpreter}", "${program}", "--seed=${envvar:SWEEP_TEST_SEED}", "${args}")
    assert s.wandb_groups == ("optimizer",)
    assert [f.name for f in s.flags][-2:] == ["optimizer.learning_rate", "optimizer.momentum"]
    server = [n for n in s.notes if "W&B's servers" in n]
    assert server == ["entity, project, controller, apiVersion, kind: only mean something on W&B's servers; "
                      "ignored here"]


@pytest.mark.parametrize(("name", "sampler", "goal", "trials"), [
    ("docs_yaml.yaml", "tpe", "minimize", 10),  # bayes is TPE here
    ("docs_random.yaml", "random", "minimize", 10),
    ("docs_grid.yaml", "grid", "minimize", 3 * 3 * 2),  # every point; q_uniform lists 0, 0.25 (arange)
    ("docs_hyperband.yaml", "random", "minimize", 10),
    ("docs_nested.yaml", "random", "maximize", 2),
    ("docs_command.yaml", "random", "maximize", 1),
    ("docs_command_words.yaml", "random", "maximize", 3),
    ("docs_min_iter.yaml", "tpe", "minimize", 10),
    ("public_style.yaml", "tpe", "maximize", 5),
    ("grid_no_metric.yaml", "grid", "maximize", 4),  # no metric: the goal is moot
])
def test_the_documentation_examples_run_as_w_and_b_reads_them(name, sampler, goal, trials):
    from sweep import samplers

    s = load(name)
    assert (s.sampler, s.goal, samplers.target(s)) == (sampler, goal, trials)
    assert len(search.plan(s)) == trials


def test_w_and_b_defaults_goal_minimize_and_int_uniform_from_integer_bounds():
    s = load("docs_random.yaml")
    assert s.goal == "minimize" and s.goal_given
    assert s.flag("lr").kind == "range" and not s.flag("lr").is_int
    every = load("every_key.yaml")
    assert every.flag("min_max_int_p").is_int and not every.flag("min_max_float_p").is_int
    assert every.flag("uniform_p").low == 0.0 and isinstance(every.flag("uniform_p").low, float)


def test_a_program_not_beside_the_file_is_looked_for_where_sweep_runs(tmp_path, monkeypatch):
    """W&B's agent runs ``program`` from its working directory: a sweep file kept in sweeps/
    names the script at the project's root."""
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "train.py").write_text("print('val_loss: 1')\n")
    (tmp_path / "sweeps" / "sweep.yaml").write_text("program: train.py\nmethod: random\n"
                                                    "parameters:\n  lr: {values: [0.1]}\n")
    monkeypatch.chdir(tmp_path)
    assert specs.load("sweeps/sweep.yaml").script == tmp_path / "train.py"


def test_trials_run_from_where_w_and_b_s_agent_would(tmp_path, monkeypatch):
    """A sweep file in sweeps/ naming a program at the project's root: the trial runs from the
    project's root, so the script's relative paths mean what they mean under W&B's agent."""
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("1,2\n")
    (tmp_path / "train.py").write_text(
        "import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument('--lr', type=float)\n"
        "args = parser.parse_args()\nrows = open('data/train.csv').read().splitlines()\n"
        "print(f'val_loss: {args.lr * len(rows)}')\n")
    (tmp_path / "sweeps" / "sweep.yaml").write_text("program: train.py\nmethod: random\nrun_cap: 1\n"
                                                    "metric: {name: val_loss}\nparameters:\n  lr: {values: [0.5]}\n")
    monkeypatch.chdir(tmp_path)
    result = sweep_cli("run", "sweeps/sweep.yaml", "--runs-dir", "runs", "--launcher", "spawn")
    assert result.exit_code == 0, result.stderr
    assert [metrics_of(run)["val_loss"] for run in run_dirs(tmp_path / "runs")] == [0.5]


def test_a_program_the_command_does_not_run_need_not_exist(tmp_path):
    """``program:`` with a ``command:`` that runs ``-m pkg.train`` is only W&B's label."""
    path = tmp_path / "sweep.yaml"
    path.write_text("program: scripts/train.py\nmethod: random\ncommand: [python, -m, scripts.train, "
                    "'${args_no_hyphens}']\nparameters:\n  trainer.lr: {values: [0.1]}\n")
    assert specs.load(path).script is None
    path.write_text(path.read_text().replace("python, -m, scripts.train", "python, '${program}'"))
    with pytest.raises(SpecError, match="program: scripts/train.py not found"):
        specs.load(path)


def test_log_uniform_bounds_that_look_like_values_get_a_note(tmp_path):
    path = tmp_path / "sweep.yaml"
    (tmp_path / "train.py").write_text("")
    path.write_text("program: train.py\nmethod: random\nrun_cap: 1\n"
                    "parameters:\n  lr: {distribution: log_uniform, min: 0.0001, max: 0.1}\n")
    s = specs.load(path)
    assert s.notes == ("parameters.lr: log_uniform's min and max are exponents: values from exp(0.0001) to "
                       "exp(0.1) (log_uniform_values takes the values themselves)",)
    assert all(1 < p["lr"] < 1.11 for p in search.plan(s, 20))  # W&B's meaning all the same


def test_hyperband_with_max_iter_and_s_starts_at_w_and_b_s_lowest_bracket():
    p = load("docs_hyperband.yaml").pruner
    assert (p.min_resource, p.max_resource, p.reduction_factor) == (3, 27, 3)  # brackets 9 and 3


def test_grid_lists_q_uniform_as_numpy_arange_without_max():
    s = load("docs_grid.yaml")
    assert s.flag("dropout").values == (0.0, 0.25)
    assert {tuple(sorted(p.items())) for p in search.plan(s)} == {
        tuple(sorted({"epochs": 2, "batch_size": b, "hidden": h, "dropout": d}.items()))
        for b in (16, 32, 64) for h in (4, 5, 6) for d in (0.0, 0.25)}


BAD = {
    "bad_parameter_name": "parameters.2lr: " + specs.FLAG_NAME_RULE,
    "bayes_without_metric": "metric: missing: method bayes needs a metric",
    "beta_zero": "parameters.p.a: must be greater than 0, got 0",
    "early_terminate_envelope": "early_terminate.type: must be one of hyperband; got 'envelope'",
    "empty_parameters": "parameters: must be a mapping of at least one parameter name, got an empty mapping",
    "grid_normal": "parameters.lr: grid search takes only constant, categorical, int_uniform, q_uniform "
                   "parameters (W&B's rule), not normal",
    "grid_probabilities": "parameters.act: grid search takes only constant, categorical, int_uniform, q_uniform "
                          "parameters (W&B's rule), not categorical_w_probabilities",
    "grid_too_large": "method: grid has 11,022,011 combinations; at most 1,000,000 (use random or tpe for a "
                      "space this large)",
    "hyperband_eta_one": "early_terminate.eta: must be greater than 1, got 1",
    "hyperband_without_iter": "early_terminate: hyperband needs min_iter, or max_iter and s",
    "int_uniform_fraction": "parameters.layers.min: int_uniform needs whole numbers, got 0.5",
    "log_uniform_values_zero": "parameters.lr.min: log_uniform_values needs min above 0, got 0",
    "method_custom": "method: custom runs W&B's scheduler (Launch); use grid, random or bayes",
    "metric_goal": "metric.goal: must be one of maximize, minimize; got 'lower'",
    "metric_unknown_key": "metric.goals: unknown key; metric takes goal, impute, impute_while_running, name, target",
    "metrics_multi": "metrics: several objectives need W&B's custom scheduler; give one 'metric:'",
    "min_above_max": "parameters.w: min (1) must be less than max (0.5)",
    "missing_method": "method: missing: a W&B sweep needs method: grid, random or bayes",
    "missing_program": "program: missing: name the training script (relative to this file)",
    "nested_extra_key": "parameters.optimizer.values: unknown key; a nested parameter takes only 'parameters'",
    "parameter_not_mapping": "parameters.lr: must be a mapping with value, values, min/max or distribution; "
                             "got a number",
    "probabilities_length": "parameters.act.probabilities: must be a list of 2 numbers, one per value",
    "probabilities_sum": "parameters.act.probabilities: must sum to 1, got 1.1",
    "program_not_found": "program: nope.py not found (looked for {dir}/nope.py or {cwd}/nope.py)",
    "q_zero": "parameters.w.q: must be greater than 0, got 0",
    "run_cap_zero": "run_cap: must be at least 1, got 0",
    "sigma_negative": "parameters.w.sigma: must be at least 0, got -1",
    "unknown_distribution": "parameters.lr.distribution: unknown distribution 'gaussian'; one of "
                            + ", ".join(dists_names := [
                                "constant", "categorical", "categorical_w_probabilities", "int_uniform", "uniform",
                                "q_uniform", "log_uniform", "log_uniform_values", "q_log_uniform",
                                "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "normal",
                                "q_normal", "log_normal", "q_log_normal", "beta", "q_beta"]),
    "unknown_parameter_key": "parameters.lr.log: unknown key for distribution uniform; it takes min, max; log is "
                             "a flags-file key: `sweep convert unknown_parameter_key.yaml > flags.yaml` gives a "
                             "flags file, which takes it",
    "categorical_probabilities": "parameters.act.probabilities: unknown key for distribution categorical; it takes "
                                 "values (weighted values: distribution: categorical_w_probabilities, or leave "
                                 "distribution out)",
    "native_top_key": "enqueue: a flags-file key, not a W&B one: `sweep convert native_top_key.yaml > flags.yaml` "
                      "gives a flags file, which takes it",
    "native_when": "parameters.momentum.when: unknown key for distribution categorical; it takes values; when is a "
                   "flags-file key: `sweep convert native_when.yaml > flags.yaml` gives a flags file, which takes it",
    "unknown_top_key": "optimiser: unknown key in a W&B sweep configuration; known keys: apiVersion, command, "
                       "controller, description, early_terminate, entity, image_uri, job, kind, method, metric, "
                       "metrics, name, parameters, program, project, run_cap, scheduler",
}


def test_the_bad_corpus_is_covered():
    assert sorted(p.stem for p in (CORPUS / "bad").glob("*.yaml")) == sorted(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_w_and_b_file_is_one_line_exit_2_and_nothing_runs(tmp_path, name):
    path = CORPUS / "bad" / f"{name}.yaml"
    expected = f"{path}: {BAD[name].format(dir=path.parent, cwd=Path.cwd())}"
    with pytest.raises(SpecError) as caught:
        specs.load(path)
    assert str(caught.value) == expected
    runs = tmp_path / "runs"
    result = sweep_cli("run", path, "--runs-dir", runs)
    assert one_error_line(result, 2) == f"Error: {expected}"
    assert not runs.exists()


def test_there_are_eighteen_distributions():
    from sweep import wbsweep

    assert list(wbsweep.DISTRIBUTIONS) == dists_names and len(dists_names) == 18


# ---------------------------------------------------------------- sampling, over many draws


def underlying(flag: specs.Flag, rng: random.Random):
    """One draw of what the study samples for ``flag``, as Optuna's random sampler draws it."""
    if flag.kind == "fixed":
        return flag.values[0]
    if flag.kind == "choice":
        return rng.choice(flag.values)
    if flag.is_int:
        return rng.randint(int(flag.low), int(flag.high))
    if flag.log:
        return math.exp(rng.uniform(math.log(flag.low), math.log(flag.high)))
    return rng.uniform(flag.low, flag.high)


@pytest.fixture(scope="module")
def draws() -> dict[str, list]:
    """DRAWS trials of every_key.yaml, each distribution's values by its parameter's name: the
    study's draw mapped to the flag's value as a sweep maps it (search.trial_flags)."""
    s = load("every_key.yaml")
    rng = random.Random(7)
    plans = [search.trial_flags(s, {f.name: underlying(f, rng) for f in s.flags if f.kind != "fixed"})
             for _ in range(DRAWS)]
    return {name: [p[name] for p in plans] for name in plans[0]}


def test_the_sweep_s_own_draws_stay_in_each_support():
    s = load("every_key.yaml")
    plans = search.plan(specs.SweepSpec(**{**s.__dict__, "trials": 100, "seed": 7}))
    assert len(plans) == 100
    assert all(0 <= p["beta_p"] <= 1 and p["q_uniform_p"] % 32 == 0 and p["log_normal_p"] > 0
               and p["categorical_w_probabilities_p"] in ("a", "b") and 16 <= p["q_log_uniform_values_p"] <= 1024
               for p in plans)
    assert len({p["normal_p"] for p in plans}) == 100


def near(sample: list[float], mean: float, sd: float) -> bool:
    """The sample mean within 5 standard errors of ``mean``."""
    return abs(statistics.fmean(sample) - mean) < 5 * sd / math.sqrt(len(sample))


def uniform_ok(xs: list[float], low: float, high: float) -> bool:
    return all(low <= x <= high for x in xs) and near(xs, (low + high) / 2, (high - low) / math.sqrt(12))


def multiples(xs: list, q: float) -> bool:
    return all(abs(x / q - round(x / q)) < 1e-9 for x in xs)


def test_constants_and_categoricals(draws):
    assert set(draws["constant_p"]) == {2.71828} and set(draws["value_p"]) == {1.618}
    assert set(draws["categorical_p"]) == {"elu", "gelu", "relu"}
    counts = Counter(draws["values_p"])
    assert set(counts) == {8, 6, 7, 5, 3, 0, 9} and min(counts.values()) > DRAWS / 7 / 2
    assert Counter(map(tuple, draws["list_values_p"])).keys() == {(64, 64), (128,)}


@pytest.mark.parametrize(("name", "values", "probabilities"), [
    ("probabilities_p", [1, 2, 3, 4, 5], [0.1, 0.2, 0.1, 0.25, 0.35]),
    ("categorical_w_probabilities_p", ["a", "b"], [0.3, 0.7]),
])
def test_probabilities_give_each_value_its_share(draws, name, values, probabilities):
    counts = Counter(draws[name])
    assert set(counts) == set(values)
    for value, p in zip(values, probabilities, strict=True):
        assert abs(counts[value] / DRAWS - p) < 5 * math.sqrt(p * (1 - p) / DRAWS), (value, counts)


def test_int_uniform_gives_every_integer_of_its_range(draws):
    xs = draws["int_uniform_p"]
    assert all(type(x) is int for x in xs) and set(xs) == set(range(0, 11))
    assert set(draws["min_max_int_p"]) == {1, 2, 3, 4}


def test_uniform(draws):
    assert uniform_ok(draws["uniform_p"], 0, 1) and uniform_ok(draws["min_max_float_p"], 0.5, 2.5)
    assert all(type(x) is float for x in draws["uniform_p"])


def test_q_uniform_with_an_integer_q_gives_integers(draws):
    xs = draws["q_uniform_p"]
    assert all(type(x) is int for x in xs) and multiples(xs, 32) and set(xs) <= set(range(0, 257, 32))
    assert near(xs, 128, 256 / math.sqrt(12))


def test_log_uniform_takes_exponents_and_log_uniform_values_takes_values(draws):
    logs = [math.log(x) for x in draws["log_uniform_p"]]
    assert uniform_ok(logs, -9.21, -2.3)
    logs = [math.log(x) for x in draws["log_uniform_values_p"]]
    assert uniform_ok(logs, math.log(0.0001), math.log(0.1))


def test_inverse_log_uniforms(draws):
    # inv_log_uniform: log(1/X) uniform on [min, max]; _values: on [log(1/max), log(1/min)].
    assert uniform_ok([math.log(1 / x) for x in draws["inv_log_uniform_p"]], 0, 4.6)
    assert uniform_ok([math.log(1 / x) for x in draws["inv_log_uniform_values_p"]], math.log(1), math.log(100))


def test_quantized_log_uniforms(draws):
    xs = draws["q_log_uniform_p"]
    assert all(type(x) is int for x in xs) and multiples(xs, 8) and max(xs) <= round(math.exp(6.9) / 8) * 8
    ys = draws["q_log_uniform_values_p"]
    assert all(type(y) is int for y in ys) and multiples(ys, 16) and 16 <= min(ys) and max(ys) <= 1024
    # log scale: as many draws below the geometric middle (128) as above it
    assert abs(sum(y < 128 for y in ys) / DRAWS - 0.5) < 0.06


def test_normals(draws):
    xs = draws["normal_p"]
    assert near(xs, 100, 10) and abs(statistics.stdev(xs) - 10) < 1.0
    assert near(draws["normal_defaults_p"], 0, 1) and abs(statistics.stdev(draws["normal_defaults_p"]) - 1) < 0.1
    qs = draws["q_normal_p"]
    assert all(type(x) is int for x in qs) and multiples(qs, 5) and near(qs, 100, 10)


def test_log_normals(draws):
    logs = [math.log(x) for x in draws["log_normal_p"]]
    assert near(logs, 0, 0.5) and abs(statistics.stdev(logs) - 0.5) < 0.05
    qs = draws["q_log_normal_p"]
    assert all(type(x) is float for x in qs) and multiples(qs, 0.5)  # q 0.5 is a float: floats
    assert abs(statistics.median(qs) - math.exp(3)) < 2


def test_betas(draws):
    xs = draws["beta_p"]
    a, b = 2, 5
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    assert all(0 <= x <= 1 for x in xs) and near(xs, a / (a + b), math.sqrt(var))
    assert abs(statistics.variance(xs) - var) < 0.2 * var
    qs = draws["q_beta_p"]
    assert all(type(x) is float for x in qs) and multiples(qs, 0.1) and near(qs, 5 / 7, math.sqrt(var))


def test_the_beta_inverse_cdf_inverts_the_incomplete_beta_function():
    rng = random.Random(1)
    for a, b in [(1, 1), (2, 5), (0.5, 0.5), (30, 2)]:
        for u in [rng.random() for _ in range(20)]:
            assert abs(dists.betainc(a, b, dists.beta_ppf(u, a, b)) - u) < 1e-9
    assert abs(dists.betainc(2, 1, 0.3) - 0.09) < 1e-12  # I_x(2, 1) = x**2
    # against the integral of the density, by Simpson's rule
    a, b, x = 2.0, 5.0, 0.3
    n = 2000
    h = x / n
    pdf = [t ** (a - 1) * (1 - t) ** (b - 1) / (math.gamma(a) * math.gamma(b) / math.gamma(a + b))
           for t in (i * h for i in range(n + 1))]
    integral = h / 3 * (pdf[0] + pdf[-1] + 4 * sum(pdf[1:-1:2]) + 2 * sum(pdf[2:-1:2]))
    assert abs(dists.betainc(a, b, x) - integral) < 1e-9


def test_tpe_draws_every_distribution_inside_its_support():
    s = load("every_key.yaml")
    plans = search.plan(specs.SweepSpec(**{**s.__dict__, "sampler": "tpe", "trials": 30, "seed": 1}))
    assert all(0 <= p["beta_p"] <= 1 and p["probabilities_p"] in (1, 2, 3, 4, 5) for p in plans)


# ---------------------------------------------------------------- the command line


def test_envvar_and_hydra_macros_fill_as_w_and_b_s_agent_fills_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_TEST_SEED", "42")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    s = specs.SweepSpec(**{**load("docs_command.yaml").__dict__, "command": (
        "${interpreter}", "${program}", "--seed=${envvar:SWEEP_TEST_SEED}", "${envvar:UNSET_VAR}",
        "${args_append_hydra}", "${args_override_hydra}")})
    words = command.argv(s, {"learning_rate": 0.5}, tmp_path)
    assert words[2:] == ["--seed=42", "UNSET_VAR", "+learning_rate=0.5", "++learning_rate=0.5"]


def test_notes_are_said_once_at_the_start(tmp_path):
    result = sweep_cli("run", CORPUS / "every_key.yaml", "--dry-run", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: metric.impute: a failed trial is left out of the sampler's model here (Optuna's rule)",
        "note: entity, project, controller, apiVersion, kind: only mean something on W&B's servers; ignored here"]


def test_no_run_cap_is_said_unless_trials_are_given(tmp_path):
    def notes(*args: str) -> list[str]:
        result = sweep_cli("run", CORPUS / "docs_random.yaml", "--dry-run", "--runs-dir", tmp_path, *args)
        return [line for line in result.stderr.splitlines() if line.startswith("note: ")]

    assert notes() == ["note: no run_cap: 10 trials (W&B would run until stopped; --trials N for more)"]
    assert notes("--trials", "3") == []


# ---------------------------------------------------------------- no metric

NO_METRIC_SCRIPT = """\
import argparse

parser = argparse.ArgumentParser(description="fine-tune; compare the runs by hand")
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()
for epoch in range(args.epochs):
    print(f"epoch {epoch}: train_loss {1.0 / (1 + epoch * args.lr):.4f}")
"""


@pytest.mark.parametrize("method", ["random", "grid"])
def test_a_file_without_metric_runs_with_no_objective(tmp_path, method):
    """W&B needs metric only for bayes (and early_terminate): random and grid runs complete
    on exit 0, the study is told a stand-in value, the board lists the runs newest first."""
    (tmp_path / "train.py").write_text(NO_METRIC_SCRIPT)
    (tmp_path / "sweep.yaml").write_text(f"program: train.py\nmethod: {method}\nrun_cap: 2\n"
                                         "parameters:\n  lr:\n    values: [0.001, 0.01]\n")
    runs = tmp_path / "runs"
    result = sweep_cli("run", tmp_path / "sweep.yaml", "--runs-dir", runs, "--seed", "0")
    assert result.exit_code == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert "objective none (no metric: a trial completes when it exits 0)" in first, first
    assert "eval_accuracy" not in result.stderr
    rows = ls_json(runs)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    ids = [line.split()[0] for line in result.stdout.splitlines() if line.split()[:1] in ([r["id"]] for r in rows)]
    assert ids == [r["id"] for r in sorted(rows, key=lambda r: r["start"], reverse=True)]  # the board: newest first
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (journal,) = (runs / ".sweep").glob("*.journal")
    study = optuna.load_study(study_name=None, storage=JournalStorage(JournalFileBackend(str(journal))))
    assert [(t.state.name, t.user_attrs.get("no_objective")) for t in study.trials] == [("COMPLETE", True)] * 2


def test_a_flags_file_says_no_objective_with_metric_null(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("script: train.py\nmetric: null\nflags:\n  lr: [0.1, 0.2]\n")
    (tmp_path / "train.py").write_text(NO_METRIC_SCRIPT)
    assert specs.load(path).metric == specs.NO_METRIC
    path.write_text("script: train.py\nmetric: null\nsampler: tpe\nflags:\n  lr: [0.1, 0.2]\n")
    with pytest.raises(SpecError, match="tpe models the objective; with metric: null use random or grid"):
        specs.load(path)


def test_importance_reads_a_w_and_b_sweep_file(tmp_path):
    """importance (and the report's section) rebuilds the space from the sweep's snapshot of
    its W&B file, even once the program has moved; a sweep without a metric says it has none."""
    import shutil

    shutil.copy(PROBE, tmp_path / "probe.py")
    (tmp_path / "sweep.yaml").write_text(
        "program: probe.py\nmethod: random\nrun_cap: 6\nmetric:\n  name: eval_accuracy\n  goal: maximize\n"
        "parameters:\n  dropout:\n    min: 0.0\n    max: 0.5\n  lr:\n    distribution: log_uniform_values\n"
        "    min: 0.0001\n    max: 0.1\n")
    runs = tmp_path / "runs"
    assert sweep_cli("run", tmp_path / "sweep.yaml", "--runs-dir", runs, "--seed", "2").exit_code == 0
    (tmp_path / "probe.py").unlink()
    result = sweep_cli("importance", "--runs-dir", runs, "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    assert [r["flag"] for r in json.loads(result.stdout)][0] == "flag_dropout"
    (tmp_path / "train.py").write_text(NO_METRIC_SCRIPT)
    (tmp_path / "plain.yaml").write_text("program: train.py\nmethod: grid\nparameters:\n  lr:\n    values: [1, 2]\n")
    assert sweep_cli("run", tmp_path / "plain.yaml", "--runs-dir", runs).exit_code == 0
    assert one_error_line(sweep_cli("importance", "--runs-dir", runs), 1) == (
        "Error: this sweep has no objective (its sweep file names no metric): nothing to rank flags by")
    report = sweep_cli("report", "--runs-dir", runs, "-o", tmp_path / "report.html")
    assert report.exit_code == 0, report.stderr
    assert "this sweep has no objective" in (tmp_path / "report.html").read_text()


# ---------------------------------------------------------------- sweep convert


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.yaml")))
def test_convert_gives_a_flags_file_with_the_same_space(tmp_path, name):
    result = sweep_cli("convert", CORPUS / name)
    assert result.exit_code == 0, result.stderr
    native = CORPUS / f".converted-{name}"  # beside the W&B file: program paths stay relative
    try:
        native.write_text(result.stdout)
        assert "flags" in yaml.safe_load(result.stdout)
        w, n = load(name), specs.load(native)
        assert search.space_record(n) == search.space_record(w)
        assert (n.sampler, n.metric, n.goal, n.pruner, n.target, n.command, n.script) == (
            w.sampler, w.metric, w.goal, w.pruner, w.target, w.command, w.script)
        seeded = [specs.SweepSpec(**{**x.__dict__, "seed": 3, "trials": 5}) for x in (w, n)]
        assert search.plan(seeded[0]) == search.plan(seeded[1])
    finally:
        native.unlink(missing_ok=True)


def test_notes_say_what_is_true_of_the_file(tmp_path):
    """A metric without goal is minimized as W&B's default, said as such, with a warning when
    its name reads like a score; impute_while_running is TPE's business only under bayes."""
    path = tmp_path / "sweep.yaml"
    (tmp_path / "train.py").write_text("")
    path.write_text("program: train.py\nmethod: random\nmetric:\n  name: val_acc\n  impute_while_running: latest\n"
                    "parameters:\n  lr: {min: 0.001, max: 0.1}\n")
    s = specs.load(path)
    assert (s.goal, s.goal_note) == ("minimize", "W&B's default: metric has no goal")
    assert "metric val_acc has no goal, so it is minimized (W&B's default); its name reads like one to maximize: " \
           "add goal: maximize if so" in s.notes
    assert "metric.impute_while_running: method random does not look at running trials; ignored" in s.notes
    assert not any("constant liar" in n for n in s.notes)
    path.write_text(path.read_text().replace("val_acc", "val_loss").replace("random", "bayes"))
    s = specs.load(path)
    assert s.goal_note and not any("has no goal" in n for n in s.notes)
    assert any("constant liar" in n for n in s.notes)
    path.write_text(path.read_text().replace("  impute_while_running: latest\n", "  goal: minimize\n"))
    assert specs.load(path).goal_note is None


def test_the_first_line_names_w_and_b_s_default_goal(tmp_path):
    import shutil

    shutil.copy(PROBE, tmp_path / "probe.py")
    path = tmp_path / "sweep.yaml"
    path.write_text("program: probe.py\nmethod: random\nrun_cap: 1\nmetric:\n  name: eval_accuracy\n"
                    "parameters:\n  dropout: {values: [0.1]}\n")
    result = sweep_cli("run", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    (first,) = [line for line in lines if line.startswith("sweep s")][:1]
    assert first.endswith("objective eval_accuracy, minimize (W&B's default: metric has no goal)"), first
    assert any("add goal: maximize if so" in line for line in lines)


def test_convert_keeps_the_comments():
    text = sweep_cli("convert", CORPUS / "every_key.yaml").stdout
    lines = text.splitlines()
    assert "# Every key of W&B's sweep schema, and every one of its 18 distributions." in lines
    assert lines[lines.index("metric: \"val_loss\"") - 1] == "# the script logs it with wandb.log"
    nested = (CORPUS / "docs_yaml.yaml").read_text().splitlines()[0]
    assert nested in sweep_cli("convert", CORPUS / "docs_yaml.yaml").stdout.splitlines()


def test_convert_refuses_a_flags_file(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("script: train.py\nflags:\n  lr: [0.1]\n")
    result = sweep_cli("convert", path)
    assert one_error_line(result, 2) == (f"Error: {path}: not a W&B sweep configuration "
                                         "(it needs 'parameters:' and no 'flags:')")


# ---------------------------------------------------------------- metric.target


TARGET_SCRIPT = """\
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
print(f"val_loss: {args.lr}")
"""


@pytest.mark.parametrize(("goal", "target"), [("minimize", 0.65), ("maximize", 0.85), ("minimize", 0.01)])
def test_the_sweep_stops_once_a_run_reaches_the_target(tmp_path, goal, target):
    (tmp_path / "train.py").write_text(TARGET_SCRIPT)
    (tmp_path / "sweep.yaml").write_text(
        f"program: train.py\nmethod: grid\nmetric: {{name: val_loss, goal: {goal}, target: {target}}}\n"
        "parameters:\n  lr: {values: [0.3, 0.6, 0.9]}\n")
    runs = tmp_path / "runs"
    result = sweep_cli("run", tmp_path / "sweep.yaml", "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, result.stderr
    values = [metrics_of(run)["val_loss"] for run in run_dirs(runs)]
    reached = [v <= target if goal == "minimize" else v >= target for v in values]
    notes = [line for line in result.stderr.splitlines() if "reached the target" in line]
    if any(reached):  # the grid's order is shuffled: the sweep ends at whichever run reached it
        assert reached[-1] and not any(reached[:-1]) and len(notes) == 1
    else:
        assert len(values) == 3 and notes == []
