"""The flags file: what valid files mean, and one clear error for every mistake.

The bad-input corpus lives in tests/bad_flags/ (one malformed file per mistake); every file is
checked through spec.load and through the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep import search, spec
from sweep.errors import SpecError
from sweep.spec import Flag

CORPUS = Path(__file__).parent / "bad_flags"


# ---------------------------------------------------------------- valid files


def test_lists_ranges_fixed_values_and_switches(write):
    path = write("""
        script: train.py
        flags:
          activation: [relu, tanh]
          hidden: [32, 64, 128]
          lr: {min: 0.0001, max: 0.1, log: true}
          dropout: {min: 0.0, max: 0.5, step: 0.1}
          layers: {min: 1, max: 4, int: true}
          width: {min: 16, max: 256, int: true, step: 16}
          units: {min: 8, max: 512, int: true, log: true}
          epochs: 5
          optimizer: adam
          verbose: {values: [true, false], switch: true}
          amp: {value: true, switch: true}
        trials: 7
        seed: 3
        jobs: 2
        timeout: 30
        """)
    s = spec.load(path)
    assert s.path == path
    assert s.script == path.parent / "train.py"
    assert s.module is None
    assert [f.name for f in s.flags] == ["activation", "hidden", "lr", "dropout", "layers", "width",
                                         "units", "epochs", "optimizer", "verbose", "amp"]
    assert s.flag("activation") == Flag("activation", "choice", ("relu", "tanh"))
    assert s.flag("hidden") == Flag("hidden", "choice", (32, 64, 128))
    assert s.flag("lr") == Flag("lr", "range", low=0.0001, high=0.1, log=True)
    assert s.flag("dropout") == Flag("dropout", "range", low=0.0, high=0.5, step=0.1)
    layers = s.flag("layers")
    assert (layers.kind, layers.low, layers.high, layers.is_int, layers.step) == ("range", 1, 4, True, None)
    assert type(layers.low) is int and type(layers.high) is int
    width = s.flag("width")
    assert (width.low, width.high, width.is_int, width.step) == (16, 256, True, 16)
    assert type(width.step) is int
    assert s.flag("units") == Flag("units", "range", low=8, high=512, log=True, is_int=True)
    assert s.flag("epochs") == Flag("epochs", "fixed", (5,))
    assert s.flag("optimizer") == Flag("optimizer", "fixed", ("adam",))
    assert s.flag("verbose") == Flag("verbose", "choice", (True, False), switch=True)
    assert s.flag("amp") == Flag("amp", "fixed", (True,), switch=True)
    assert (s.trials, s.seed, s.jobs, s.timeout, s.sampler) == (7, 3, 2, 30, "random")
    with pytest.raises(KeyError):
        s.flag("nope")


def test_defaults(write):
    s = spec.load(write("script: train.py\nflags: {lr: [0.1]}\n"))
    assert (s.trials, s.sampler, s.seed, s.metric, s.goal, s.jobs, s.timeout) == (
        10, "random", None, "eval_accuracy", "maximize", 1, None)
    assert (s.smoke, s.metrics, s.launcher, s.pruner.name, s.baseline_error, s.max_failures) == (
        {}, (), "fork", "none", 0.0, None)


def test_script_resolves_relative_to_the_flags_file_not_the_cwd(write, tmp_path, monkeypatch):
    path = write("script: ../code/train.py\nflags: {lr: [0.1]}\n", name="conf/flags.yaml",
                 script="code/train.py")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = spec.load(os.path.relpath(path))
    assert s.path.is_absolute() and Path(os.path.normpath(s.path)) == path  # absolute, even when given relative
    assert s.script == tmp_path / "code" / "train.py"


def test_module_instead_of_script(write):
    s = spec.load(write("module: mypkg.train\nflags: {lr: [0.1]}\n", script=None))
    assert (s.script, s.module) == (None, "mypkg.train")


def test_exponent_numbers_written_plainly_are_floats_but_quoted_stay_text(write):
    s = spec.load(write("""
        script: train.py
        flags:
          lr: [1e-5, '1e-5', 3E+2, 2.5e-3, -1e4]
          wd: 1e-4
          eps: {min: 1e-8, max: 1e-3, log: true}
          tag: "2e5"
          name: e5
        """))
    lr = s.flag("lr").values
    assert lr == (1e-5, "1e-5", 300.0, 2.5e-3, -1e4)
    assert [type(v) for v in lr] == [float, str, float, float, float]
    assert s.flag("wd").values == (1e-4,) and type(s.flag("wd").values[0]) is float
    assert (s.flag("eps").low, s.flag("eps").high) == (1e-8, 1e-3)
    assert s.flag("tag").values == ("2e5",)
    assert s.flag("name").values == ("e5",)


def test_mantissa_without_digits_stays_text(write):
    # Once these matched the 1e-5 rule and crashed float(): they are words, not numbers.
    s = spec.load(write("script: train.py\nflags: {a: [-e5, .e5, +e5]}\n"))
    assert s.flag("a").values == ("-e5", ".e5", "+e5")


def test_quoted_numbers_in_ranges_are_read_as_numbers(write):
    s = spec.load(write("script: train.py\nflags: {lr: {min: '1e-5', max: '0.1', log: true}}\n"))
    assert (s.flag("lr").low, s.flag("lr").high) == (1e-5, 0.1)


@pytest.mark.parametrize("metric,goal", [
    ("eval_loss", "minimize"), ("train_loss", "minimize"), ("val_error", "minimize"),
    ("rmse", "minimize"), ("eval_accuracy", "maximize"), ("f1", "maximize"),
    ("loss_scale", "maximize"),
])
def test_goal_defaults_to_minimize_for_loss_and_error(write, metric, goal):
    s = spec.load(write(f"script: train.py\nflags: {{lr: [0.1]}}\nmetric: {metric}\n"))
    assert (s.metric, s.goal) == (metric, goal)


def test_explicit_goal_wins(write):
    s = spec.load(write("script: train.py\nflags: {lr: [0.1]}\nmetric: eval_loss\ngoal: maximize\n"))
    assert s.goal == "maximize"
    assert spec.goal_source(s) == "flags file"


@pytest.mark.parametrize("metric", [
    "loss", "val_loss", "eval_loss", "eval_loss_avg", "Average_loss", "valLoss", "test_err_rate",
    "error_rate", "top1_err", "valid_ppl", "ppl", "perplexity", "test_perplexity", "mse", "rmse",
    "mae", "nll", "wer", "cer", "bpc", "val_bpd", "latency_ms", "time_s", "step_time",
    "time_per_step", "ms_batch", "eval_runtime", "error_count", "loss_per_token", "fid",
])
def test_lower_is_better_names_minimize_by_their_words(write, metric):
    s = spec.load(write(f"script: train.py\nflags: {{lr: [0.1]}}\nmetric: {metric}\n"))
    assert (s.goal, spec.goal_source(s)) == ("minimize", "inferred")


@pytest.mark.parametrize("metric", [
    "eval_accuracy", "accuracy", "acc", "Acc_1", "top1", "f1", "score", "test_score", "bleu",
    "reward", "mfu", "tokens_per_sec", "train_samples_per_second", "loss_scale", "lossless_ratio",
    "errand", "timeline", "precision",
])
def test_other_names_maximize(write, metric):
    s = spec.load(write(f"script: train.py\nflags: {{lr: [0.1]}}\nmetric: {metric}\n"))
    assert (s.goal, spec.goal_source(s)) == ("maximize", "inferred")


def test_the_default_metric_and_goal_are_inferred(write):
    s = spec.load(write("script: train.py\nflags: {lr: [0.1]}\n"))
    assert (s.metric, s.goal, spec.goal_source(s)) == ("eval_accuracy", "maximize", "inferred")
    s = spec.load(write("script: train.py\nflags: {lr: [0.1]}\nmetric: val_loss\ngoal: minimize\n"))
    assert (s.goal, spec.goal_source(s)) == ("minimize", "flags file")
    assert spec.goal_source(s.with_smoke()) == "flags file"


def test_metric_regexes_pruner_and_other_keys(write):
    s = spec.load(write(r"""
        script: train.py
        flags: {lr: [0.1]}
        metrics:
          acc: 'Accuracy = ([0-9.]+)%'
          ppl: 'perplexity (\S+)'
        pruner: {name: median, warmup_steps: 2, startup_trials: 3}
        launcher: spawn
        sampler: tpe
        jobs: auto
        baseline_error: 1.5
        max_failures: 4
        description: a test sweep
        """))
    assert s.metrics == (("acc", "Accuracy = ([0-9.]+)%"), ("ppl", r"perplexity (\S+)"))
    assert (s.pruner.name, s.pruner.warmup_steps, s.pruner.startup_trials) == ("median", 2, 3)
    assert (s.launcher, s.sampler, s.jobs, s.baseline_error, s.max_failures) == ("spawn", "tpe", "auto", 1.5, 4)
    assert s.description == "a test sweep"
    assert spec.load(write("script: train.py\nflags: {lr: [0.1]}\npruner: hyperband\n")).pruner.name == "hyperband"


def test_smoke_overrides(write):
    s = spec.load(write("""
        script: train.py
        flags:
          lr: {min: 0.001, max: 0.1, log: true}
          epochs: 50
          verbose: {values: [true, false], switch: true}
        trials: 40
        timeout: 600
        smoke:
          trials: 3
          timeout: 20
          flags:
            epochs: 1
            verbose: [true]
        """))
    assert (s.trials, s.timeout, s.flag("epochs").values) == (40, 600, (50,))
    smoke = s.with_smoke()
    assert (smoke.trials, smoke.timeout) == (3, 20)
    assert smoke.flag("epochs") == Flag("epochs", "fixed", (1,))
    assert smoke.flag("verbose") == Flag("verbose", "choice", (True,), switch=True)  # stays a switch
    assert smoke.flag("lr") == s.flag("lr")
    assert [f.name for f in smoke.flags] == ["lr", "epochs", "verbose"]  # order kept
    assert s.trials == 40  # frozen: the original is untouched


def test_smoke_without_section_means_two_trials(write):
    s = spec.load(write("script: train.py\nflags: {lr: [0.1, 0.2, 0.3]}\ntrials: 9\n"))
    assert s.with_smoke().trials == 2
    assert s.with_smoke().flags == s.flags


def test_combinations(write):
    lists = spec.load(write("script: train.py\nflags: {a: [1, 2, 3], b: [x, y], c: 5}\n"))
    assert lists.combinations() == 6
    stepped = spec.load(write("script: train.py\nflags: {a: [1, 2], n: {min: 2, max: 20, int: true, step: 3}}\n"))
    assert stepped.combinations() == 2 * 7
    floats = spec.load(write("script: train.py\nflags: {a: [1, 2], lr: {min: 0.1, max: 1}}\n"))
    assert floats.combinations() is None


def test_grid_sampler_accepts_lists_and_int_ranges(write):
    s = spec.load(write("script: train.py\nsampler: grid\nflags: {a: [1, 2], n: {min: 1, max: 3, int: true}}\n"))
    assert (s.sampler, s.combinations()) == ("grid", 6)


def test_yaml_merge_keys_work(write):
    s = spec.load(write("""
        script: train.py
        flags:
          <<: {lr: [0.1, 0.2], epochs: 3}
          epochs: 5
        """))
    assert s.flag("lr").values == (0.1, 0.2)
    assert s.flag("epochs").values == (5,)  # an explicit key overrides the merged one


def test_flag_names_are_the_scripts_own_spelling(write):
    # argparse's dashes and config parsers' dotted keys are names as they are passed.
    path = write("""
        script: train.py
        flags:
          learning-rate: [0.1, 0.3]
          n-layer: {min: 1, max: 4, int: true}
          trainer.learning_rate: 3e-4
          model.resid_pdrop: {values: [0.0, 0.1]}
          _private: 1
        smoke:
          flags: {n-layer: 1}
        """)
    s = spec.load(path)
    assert [f.name for f in s.flags] == ["learning-rate", "n-layer", "trainer.learning_rate",
                                         "model.resid_pdrop", "_private"]
    assert s.with_smoke().flag("n-layer") == Flag("n-layer", "fixed", (1,))
    assert spec.override(s, "trainer.learning_rate=[1e-4, 1e-3]").flag("trainer.learning_rate").values == (1e-4, 1e-3)


@pytest.mark.parametrize("name", ["--lr", "-lr", ".lr", "1cycle", "learning rate", "lr=0.1", "a/b", "lr\t"])
def test_a_flag_name_that_no_option_is_spelled_like_is_refused(write, name):
    path = write(f"script: train.py\nflags: {{{json.dumps(name)}: [0.1]}}\n")
    with pytest.raises(SpecError, match="a flag name is the script's option without its leading dashes: "
                                        "letters, digits, _, - and ., starting with a letter or _$"):
        spec.load(path)


def test_flags_file_may_be_given_as_str(write):
    path = write("script: train.py\nflags: {lr: [0.1]}\n")
    assert spec.load(str(path)).path == path


def test_spec_is_frozen(write):
    s = spec.load(write("script: train.py\nflags: {lr: [0.1]}\n"))
    with pytest.raises(Exception):  # noqa: B017 - frozen is the promise, not which frozen type spec uses
        s.trials = 3  # type: ignore[misc]


# ---------------------------------------------------------------- the bad-input corpus

# file -> what its one-line message must contain (the key and the rule).
EXPECTED = {
    "bad_bool_tag": "line 4: invalid YAML (cannot read 'maybe' as bool)",
    "bad_flag_name": "flags.--learning-rate: a flag name is the script's option without its leading dashes",
    "bad_metric_regex": "metrics.acc: invalid regex (missing ), unterminated subpattern",
    "bad_timestamp": "line 4: invalid YAML (cannot read '2020-13-45' as timestamp (month must be in 1..12))",
    "bad_yaml_syntax": "line 4: invalid YAML (expected ',' or ']', but got ':')",
    "baseline_error_100": "baseline_error: must be a percentage in [0, 100), got 100",
    "constraint_bad_op": "constraints[0]: cannot read 'latency_ms == 20': write NAME OP NUMBER with OP one of",
    "constraint_is_code": "constraints[0]: cannot read '__import__(\"os\").system(\"true\") or latency_ms < 20'",
    "constraint_not_number": "constraints[0]: cannot read 'params_m <= five': 'five' is not a number",
    "constraint_not_text": "constraints[0]: must be text such as 'latency_ms < 20', got a mapping",
    "constraint_on_a_flag": "constraints[0]: lr is a flag, not a metric the script reports",
    "constraint_twice": "constraints[1]: latency_ms < 20 is listed twice",
    "constraints_empty": "constraints: an empty list: give a list such as ['params_m <= 5', 'latency_ms < 20']",
    "constraints_not_list": "constraints: must be a list such as ['params_m <= 5', 'latency_ms < 20']; got text",
    "description_not_text": "description: must be text",
    "duplicate_key": "line 5: invalid YAML (duplicate key 'lr')",
    "duplicate_value": "flags.lr: value 0.1 is listed twice",
    "empty_file": "the file is empty; it needs at least 'script:' and 'flags:'",
    "empty_list": "flags.lr: an empty list: give at least one value",
    "flag_name_trailing_newline": "flags.lr\\n: a flag name is the script's option without its leading dashes",
    "flags_empty_mapping": "flags: missing or empty: declare at least one flag",
    "flags_missing": "flags: missing or empty: declare at least one flag",
    "flags_not_mapping": "flags: must be a mapping of flag names, got a list",
    "goal_unknown": "goal: must be one of maximize, minimize; got 'max'",
    "goal_list_for_one_metric": "goal: a list of goals needs a list of metrics, one goal each",
    "goal_list_too_short": "goal: give one goal per metric: a list of 2, each maximize or minimize; got 1 goal",
    "goal_list_unknown": "goal[1]: must be one of maximize, minimize; got 'smaller'",
    "grid_with_float_range": "sampler: grid needs every flag to be a list, a fixed value or an integer range",
    "huge_number": "timeout: is too large a number (400 digits)",
    "infinite_fixed_value": "flags.lr: must be a finite number, got inf",
    "int_range_fractional": "flags.hidden: an int range needs whole-number bounds, got 0.5..10",
    "int_step_fractional": "flags.hidden.step: must be a whole number for an int range, got 0.5",
    "jobs_zero": "jobs: must be a whole number of at least 1 or 'auto', got 0",
    "launcher_unknown": "launcher: must be one of fork, spawn; got 'thread'",
    "log_negative_min": "flags.lr: a log range must stay above 0, got min -1",
    "log_touching_zero": "flags.lr: a log range must stay above 0, got min 0",
    "mapping_in_list": "flags.lr[0]: must be a number, text or true/false, got a mapping",
    "mapping_key_is_list": "line 3: invalid YAML (a mapping key must be a plain value)",
    "max_failures_zero": "max_failures: must be at least 1, got 0",
    "metric_bad_name": "metric: must be a metric name (a letter or _, then no spaces), got 'eval accuracy'",
    "metric_list_bad_name": "metric[1]: must be a metric name (a letter or _, then no spaces), got 'latency ms'",
    "metric_list_empty": "metric: an empty list: name at least one metric",
    "metric_list_twice": "metric: 'eval_accuracy' is listed twice",
    "metrics_not_mapping": "metrics: must be a mapping of metric name -> regex",
    "min_eq_max": "flags.lr: min (1) must be less than max (1)",
    "min_gt_max": "flags.lr: min (1) must be less than max (0.1)",
    "min_text": "flags.lr.min: must be a number, got 'low'",
    "missing_script": "script: no_such_train.py not found (looked for ",
    "module_bad_name": "module: must be a dotted module name, got 'my-package.train'",
    "nan_bound": "flags.lr.min: must be a finite number, got nan",
    "nested_list_value": "flags.lr[0]: must be a number, text or true/false, got a list",
    "no_script_key": "script: missing: name the training script",
    "non_utf8": "not UTF-8 text (bad byte at offset 36)",
    "nul_byte": "not a text file (contains NUL bytes)",
    "null_fixed_value": "flags.lr: must be a number, text or true/false, got nothing",
    "only_comments": "the file is empty",
    "pruner_unknown": "pruner: must be one of none, median, hyperband, asha; got 'aggressive'",
    "pruner_unknown_key": "pruner.patience: unknown key; a pruner takes count, max_resource, min_resource, name",
    "range_log_not_bool": "flags.lr.log: must be true or false, got 'true'",
    "range_missing_max": "flags.lr: a range needs both min and max (max is missing)",
    "range_unknown_key": "flags.lr.scale: unknown key; a range takes int, log, max, min, step",
    "regex_repeat_too_large": "metrics.acc: invalid regex (the repetition number is too large)",
    "regex_without_group": "metrics.acc: the regex needs a capture group around the number",
    "repeats_text": "repeats: must be a whole number, got text 'three'",
    "repeats_with_pruner": "pruner: cannot be used with repeats: 3: a configuration's score is the mean of its repeats",
    "repeats_without_seed_flag": "repeats: needs seed_flag: the script's seed option (e.g. seed_flag: seed)",
    "repeats_zero": "repeats: must be at least 1, got 0",
    "script_and_module": "script: give either 'script' or 'module', not both",
    "script_is_directory": "script: not_a_file is not a file",
    "script_name_too_long": "xxx.py cannot be used (File name too long)",
    "script_not_text": "script: must be a file path, got an integer",
    "seed_flag_dashes": "seed_flag: a flag name is the script's option without its leading dashes",
    "seed_flag_is_a_flag": "seed_flag: 'seed' is also declared under flags:; remove it there",
    "seed_negative": "seed: must be at least 0, got -1",
    "seed_too_large": "seed: must be at most 4294967295, got 4294967296",
    "several_objectives_smoke_pruner": "smoke.pruner: pruning needs one objective; this sweep has 2 "
                                       "(eval_accuracy, latency_ms): remove the pruner",
    "several_objectives_with_pruner": "pruner: pruning needs one objective; this sweep has 2 "
                                      "(eval_accuracy, latency_ms)",
    "smoke_not_mapping": "smoke: must be a mapping of overrides, got an integer",
    "smoke_switch_non_bool": "smoke.flags.verbose: a switch takes only true/false values",
    "smoke_unknown_flag": "smoke.flags.epochs: not a flag declared under flags:",
    "smoke_unknown_key": "smoke.epochs: unknown key; smoke takes flags, jobs, max_failures",
    "step_too_small": "flags.dropout.step: step 1e-30 is too small for the range 0..1 (more than 1e+15 steps)",
    "range_too_wide": "flags.x: the range -1e+308..1e+308 is too wide (max - min overflows)",
    "empty_timestamp_tag": "line 3: invalid YAML (cannot read '' as timestamp)",
    "step_larger_than_range": "flags.lr.step: step 5 is larger than the range 0..1",
    "step_negative": "flags.lr.step: must be greater than 0, got -0.1",
    "step_with_log": "flags.lr.step: cannot be combined with log: true",
    "switch_non_bool": "flags.verbose: a switch takes only true/false values",
    "switch_not_bool_option": "flags.verbose.switch: must be true or false, got 'yes'",
    "switch_on_range": "flags.verbose: a switch needs 'values: [true, false]' or 'value: true'",
    "tab_indentation": "line 3: invalid YAML (found character '\\t' that cannot start any token)",
    "timeout_negative": "timeout: must be greater than 0, got -5",
    "top_level_list": "the top level must be a mapping of keys, got a list",
    "top_level_scalar": "the top level must be a mapping of keys, got text",
    "trials_fractional": "trials: must be a whole number, got a number 2.5",
    "trials_text": "trials: must be a whole number, got text 'ten'",
    "trials_zero": "trials: must be at least 1, got 0",
    "unknown_key": "trails: unknown key; known keys: baseline_error, ",
    "unknown_sampler": "sampler: must be one of random, grid, tpe, qmc, nsga2; got 'bayes'",
    "unsafe_python_tag": "line 3: invalid YAML (could not determine a constructor for the tag "
                         "'tag:yaml.org,2002:python/object/apply:os.system')",
    "values_not_list": "flags.lr.values: must be a list, got a number",
    # conditional flags (when:) and configurations tried first (enqueue:)
    "when_bad_grammar": "flags.momentum.when: cannot read 'optimizer is sgd': write NAME OP VALUE with OP",
    "when_compares_text": "flags.momentum.when: '<' compares numbers; optimizer takes ['sgd', 'adam']",
    "when_cycle": 'flags.a.when: the conditions form a cycle: a -> b -> a',
    "when_impossible_value": "flags.momentum.when: optimizer can never be 'nesterv'; its values: sgd, adam",
    "when_in_needs_list": "flags.momentum.when: 'in' takes a list of values, e.g. 'optimizer in [a, b]'; go",
    "when_in_on_range": "flags.warmup.when: lr is a range: compare it with <, <=, >, >=, == or !=, not 'i",
    "when_never_holds": "flags.width2.when: 'layers > 3' never holds: layers takes 1, 2, 3",
    "when_not_text": "flags.momentum.when: must be a condition as text, e.g. 'optimizer == sgd'; got a",
    "when_on_list_flag": "flags.momentum: a list with a condition is written {values: [...], when: '...'}",
    "when_outside_range": 'flags.width2.when: layers can never be 9: its range is 1..4',
    "when_self": 'flags.a.when: the conditions form a cycle: a -> a',
    "when_unknown_flag": "flags.momentum.when: names 'optimiser', which is not a flag of this file; flags:",
    "when_without_values": "flags.momentum: a flag with 'when:' still needs its values: 'values: [...]', 'va",
    "enqueue_entry_not_mapping": 'enqueue[0]: must be a mapping of flag -> value, got a number',
    "enqueue_entry_empty": "enqueue[1]: an empty entry; give a flag's value, e.g. '- {lr: 0.001}', or remove it",
    "when_and": "flags.beta1.when: a condition is one comparison ('and' and 'or' are not supported): for 'or' use ",
    "when_or": "flags.momentum.when: a condition is one comparison ('and' and 'or' are not supported): for 'or' u",
    "enqueue_fixed_differs": 'enqueue[0].epochs: epochs is fixed to 10; got 20',
    "enqueue_left_out": "enqueue[0].momentum: momentum is left out here: its condition 'optimizer == mome",
    "enqueue_not_a_choice": "enqueue[0].optimizer: 'rmsprop' is not one of optimizer's values: sgd, momentum,",
    "enqueue_not_a_number": "enqueue[0].lr: must be a number, got 'fast'",
    "enqueue_not_list": "enqueue: must be a list of configurations to try first, e.g. '- {lr: 0.001, opti",
    "enqueue_off_step": 'enqueue[0].layers: 4 is not on the steps of 2 from 1',
    "enqueue_outside_range": "enqueue[0].lr: 0.5 is outside lr's range 0.0001..0.1",
    "enqueue_unknown_flag": 'enqueue[0].learning_rate: not a flag declared under flags:; flags: optimizer, mo',
}
HUGE = "huge"  # generated in the test (over 1 MiB), not committed
CORPUS_FILES = sorted(p.stem for p in CORPUS.glob("*.yaml"))


def test_corpus_is_complete():
    assert len(CORPUS_FILES) >= 40
    assert set(CORPUS_FILES) == set(EXPECTED), "every corpus file needs its expected message"
    assert (CORPUS / "train.py").is_file() and (CORPUS / "not_a_file").is_dir()
    assert b"\xe9" in (CORPUS / "non_utf8.yaml").read_bytes()


def _huge(tmp: Path) -> Path:
    path = tmp / "huge.yaml"
    path.write_text("script: train.py\nflags:\n  lr: [0.1]\n" + "# padding padding padding\n" * 45_000)
    assert path.stat().st_size > spec.MAX_BYTES
    return path


def _expected(name: str, path: Path) -> str:
    if name == HUGE:
        return f"file is {path.stat().st_size} bytes; a flags file may be at most {spec.MAX_BYTES}"
    return EXPECTED[name]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_raises_one_line_spec_error(name):
    path = CORPUS / f"{name}.yaml"
    with pytest.raises(SpecError) as info:
        spec.load(path)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path.absolute()}: ")
    assert EXPECTED[name] in message


def test_huge_file_is_refused_before_it_is_read(tmp_path):
    path = _huge(tmp_path)
    with pytest.raises(SpecError) as info:
        spec.load(path)
    assert str(info.value) == f"{path}: {_expected(HUGE, path)}"


def test_a_flags_file_that_is_a_directory_or_missing(tmp_path):
    with pytest.raises(SpecError, match=r": is a directory, not a flags file$"):
        spec.load(tmp_path)
    with pytest.raises(SpecError) as info:
        spec.load(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such flags file"


# Every corpus file goes through the real CLI (``sweep.cli.main``: typer, the runner, the error
# mapping) in a process of its own, with its own stdout, stderr, working directory and exit
# status. A fresh ``python -m sweep`` costs ~0.5 s of CPU (typer + optuna imports), too much for
# 80 files in a quick suite, so one harness interpreter imports the tool once and forks a child
# per file (as the fork launcher does for trials). A handful of files also go through a
# completely fresh ``python -m sweep run`` below.
HARNESS = r"""
import json, os, sys, traceback
os.environ["NO_COLOR"] = "1"
os.environ.pop("SWEEP_RUNS_DIR", None)
import contextlib, io
from sweep import cli, runner, driver  # noqa: F401  (imported once, before the forks)
jobs = json.load(sys.stdin)
sys.argv = ["sweep", "run", "--help"]  # warm typer's caches once, too
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
    cli.main()
results = {}
for name, path, work in jobs:
    out, err = os.path.join(work, "..", name + ".out"), os.path.join(work, "..", name + ".err")
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(work)
            fd1 = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd2 = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd1, 1); os.dup2(fd2, 2)
            sys.argv = ["sweep", "run", path, "--runs-dir", os.path.join(work, "runs")]
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int) and exc.code is not None:
                    sys.stderr.write(str(exc.code) + "\n")
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    results[name] = {
        "rc": os.waitstatus_to_exitcode(status),
        "stdout": open(out, encoding="utf-8", errors="replace").read(),
        "stderr": open(err, encoding="utf-8", errors="replace").read(),
    }
    os.unlink(out); os.unlink(err)
json.dump(results, sys.stdout)
"""


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    before = sorted(str(p) for p in CORPUS.rglob("*"))
    jobs, paths = [], {}
    for name in CORPUS_FILES + [HUGE]:
        work = base / name
        work.mkdir()
        paths[name] = _huge(base) if name == HUGE else CORPUS / f"{name}.yaml"
        jobs.append((name, str(paths[name]), str(work)))
    proc = subprocess.run([sys.executable, "-c", HARNESS], input=json.dumps(jobs), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert sorted(str(p) for p in CORPUS.rglob("*")) == before, "the corpus folder was written to"
    return {name: (paths[name], base / name, r) for name, r in results.items()}


def _check_cli(name: str, path: Path, work: Path, rc: int, stdout: str, stderr: str) -> None:
    assert rc == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, repr(stderr)
    line = stderr.rstrip("\n")
    assert line.startswith(f"Error: {path}: ")
    assert _expected(name, path) in line
    assert stdout == ""
    assert not (work / "runs").exists()
    assert list(work.iterdir()) == []  # nothing written, nothing run (no "pwned" either)


@pytest.mark.parametrize("name", CORPUS_FILES + [HUGE])
def test_corpus_file_through_the_cli(cli_results, name):
    path, work, r = cli_results[name]
    _check_cli(name, path, work, r["rc"], r["stdout"], r["stderr"])


FRESH = ["bad_yaml_syntax", "unsafe_python_tag", "non_utf8", "script_is_directory", HUGE]


def _fresh(args: tuple[str, Path, Path]) -> subprocess.CompletedProcess:
    name, path, work = args
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("SWEEP_RUNS_DIR", None)
    return subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--runs-dir", str(work / "runs")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)


def test_corpus_through_a_fresh_python_m_sweep(tmp_path):
    jobs = []
    for name in FRESH:
        work = tmp_path / name
        work.mkdir()
        jobs.append((name, _huge(tmp_path) if name == HUGE else CORPUS / f"{name}.yaml", work))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        procs = list(pool.map(_fresh, jobs))
    for (name, path, work), proc in zip(jobs, procs, strict=True):
        _check_cli(name, path, work, proc.returncode, proc.stdout, proc.stderr)
    assert "line 4:" in procs[0].stderr  # the YAML syntax error names its line


# ---------------------------------------------------------------- random input, never a traceback

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-10, max_value=10),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["train.py", "random", "grid", "tpe", "auto", "median", "1e-5", "nan", "eval_loss",
                     "acc=([0-9.]+)", "(", "switch", "values", "true", "-e5", ".inf"]),
)
KEYS = st.one_of(
    st.sampled_from(sorted(spec.TOP_KEYS | spec.RANGE_KEYS | spec.SMOKE_KEYS | spec.PRUNER_KEYS
                           | {"values", "value", "switch", "lr", "bad key", "flags"})),
    st.text(max_size=8), st.integers(), st.booleans(), st.none(),
)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)
# Top-level mappings shaped like flags files, mostly plausible, so the checker gets past the
# first key and into ranges, smoke overrides, pruners and regexes.
NUMBERS = st.one_of(st.integers(-3, 20), st.floats(-2, 2), st.sampled_from([0, 1e-5, 1e-3, 0.5, 1e9]))
RANGE = st.fixed_dictionaries(
    {"min": NUMBERS, "max": NUMBERS},
    optional={"log": st.booleans(), "int": st.booleans(), "step": NUMBERS},
)
VALID_FLAG = st.one_of(
    st.lists(st.integers(-5, 50), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(["relu", "tanh", "gelu", "1e-5"]), min_size=1, max_size=3, unique=True),
    st.tuples(st.integers(1, 50), st.integers(1, 50), st.booleans(), st.booleans()).map(
        lambda t: {"min": min(t[:2]), "max": min(t[:2]) + abs(t[0] - t[1]) + 1, "log": t[2], "int": t[3]}),
    st.integers(), st.just({"values": [True, False], "switch": True}),
)
FLAG_VALUES = st.one_of(
    VALID_FLAG, VALID_FLAG, VALID_FLAG, SCALARS, st.lists(SCALARS, max_size=4), RANGE,
    st.fixed_dictionaries({"values": st.lists(st.booleans(), max_size=3), "switch": st.booleans()}),
    st.dictionaries(st.sampled_from(sorted(spec.RANGE_KEYS | {"values", "value", "switch"})),
                    st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=5),
)
FLAG_NAMES = st.one_of(st.sampled_from(["lr", "dropout", "hidden", "bad-name", "lr\n"]), st.text(max_size=5))
PLAUSIBLE = {
    "trials": st.integers(-1, 30), "sampler": st.sampled_from(spec.SAMPLERS),
    "seed": st.integers(-1, 2**33), "metric": st.sampled_from(["eval_loss", "eval_accuracy", "bad name"]),
    "goal": st.sampled_from(spec.GOALS), "jobs": st.one_of(st.integers(-1, 4), st.just("auto")),
    "timeout": NUMBERS, "launcher": st.sampled_from(spec.LAUNCHERS), "baseline_error": NUMBERS,
    "max_failures": st.integers(-1, 5), "description": st.text(max_size=10),
    "metrics": st.dictionaries(st.sampled_from(["acc", "loss", "bad name"]),
                               st.sampled_from(["acc=([0-9.]+)", "(", "acc", "(a)(b)", "(?P<x>\\d+)"]),
                               max_size=2),
    "pruner": st.one_of(st.sampled_from(spec.PRUNERS), st.fixed_dictionaries(
        {"name": st.sampled_from(spec.PRUNERS)},
        optional={k: st.one_of(st.integers(-1, 6), st.just("auto")) for k in sorted(spec.PRUNER_KEYS - {"name"})})),
    "smoke": st.fixed_dictionaries({}, optional={
        "trials": st.integers(-1, 3), "timeout": NUMBERS, "sampler": st.sampled_from(spec.SAMPLERS),
        "jobs": st.integers(0, 2), "seed": st.integers(-1, 3), "max_failures": st.integers(0, 2),
        "pruner": st.sampled_from(spec.PRUNERS),
        "flags": st.dictionaries(FLAG_NAMES, FLAG_VALUES, max_size=2)}),
}
FLAGS_FILES = st.fixed_dictionaries(
    {"script": st.sampled_from(["train.py"] * 20 + ["missing.py", ".", "", 3]),
     "flags": st.dictionaries(st.sampled_from(["lr", "dropout", "hidden", "act"]), VALID_FLAG, min_size=1, max_size=3)
     | st.dictionaries(FLAG_NAMES, FLAG_VALUES, min_size=1, max_size=4)},
    optional={k: st.one_of(v, v, v, DOCS) for k, v in PLAUSIBLE.items()},
)
PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _parse_or_spec_error(data, path):
    try:
        result = spec.parse(data, path)
    except SpecError as exc:
        assert "\n" not in str(exc)
        assert str(exc).startswith(f"{path}: ")
        return None
    assert isinstance(result, spec.SweepSpec)
    result.combinations()
    result.with_smoke()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna warns when a step does not divide a range
        search.space(result)  # everything accepted is a valid Optuna search space
        search.space(result.with_smoke())
    return result


@PROPERTY
@given(data=st.one_of(DOCS, FLAGS_FILES))
def test_parse_random_documents_never_crashes(tmp_path, data):
    (tmp_path / "train.py").write_text("")
    _parse_or_spec_error(data, tmp_path / "flags.yaml")


def _load_or_spec_error(path: Path):
    try:
        result = spec.load(path)
    except SpecError as exc:
        assert "\n" not in str(exc)
        return None
    assert isinstance(result, spec.SweepSpec)
    return result


@PROPERTY
@given(data=st.one_of(DOCS, FLAGS_FILES), flow=st.booleans())
def test_load_random_yaml_never_crashes(tmp_path, data, flow):
    (tmp_path / "train.py").write_text("")
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True), encoding="utf-8")
    _load_or_spec_error(path)


YAML_BITS = st.sampled_from([
    "script: train.py\n", "flags:\n", "  lr: [0.1, 0.2]\n", "  lr: {min: 0, max: 1}\n", "  - a\n",
    "&a ", "*a", "!!python/object/apply:os.system ['x']", "!!binary", "!!int", "!!float", "!!bool",
    "!!timestamp", "2020-13-45", "<<: ", "? ", ": ", "[", "]", "{", "}", "'", '"', "\\x", "\t", "#",
    "---\n", "...\n", "%YAML 1.1\n", "|\n", ">\n", "-e5", "1e-5", "0x1G", "0o8", "1_000", ":30",
    "\n", "  ", "\ud7ff", "\ufeff", "\x85", "\u2028",
])


@PROPERTY
@given(text=st.one_of(st.text(max_size=200), st.lists(YAML_BITS, max_size=30).map("".join)))
def test_load_random_text_never_crashes(tmp_path, text):
    (tmp_path / "train.py").write_text("")
    path = tmp_path / "flags.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load_or_spec_error(path)


@PROPERTY
@given(raw=st.binary(max_size=200))
def test_load_random_bytes_never_crashes(tmp_path, raw):
    path = tmp_path / "flags.yaml"
    path.write_bytes(raw)
    _load_or_spec_error(path)


def test_deeply_nested_yaml_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("script: train.py\nflags: " + "[" * 600 + "]" * 600 + "\n")
    with pytest.raises(SpecError, match=r"invalid YAML \(nested too deeply\)$"):
        spec.load(path)


def test_huge_integers_are_errors_not_crashes(write):
    with pytest.raises(SpecError, match=r"flags\.a\.max: is too large a number \(400 digits\)$"):
        spec.load(write("script: train.py\nflags: {a: {min: 0, max: " + "9" * 400 + "}}\n"))


def test_lone_surrogate_in_a_value_is_an_error(write):
    with pytest.raises(SpecError, match=r"flags\.a: is not valid Unicode text"):
        spec.load(write('script: train.py\nflags: {a: "\\ud800"}\n'))


def test_non_printable_key_is_escaped_in_the_one_line_message(write):
    with pytest.raises(SpecError) as info:
        spec.load(write('script: train.py\nflags: {a: [1]}\n"bad\\nkey\\x1b": 1\n'))
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
    assert ": bad\\nkey\\x1b: unknown key" in str(info.value)


def test_finite_values_only(write):
    s = spec.load(write("script: train.py\nflags: {lr: [0.1, 1e308]}\n"))
    assert all(math.isfinite(v) for v in s.flag("lr").values)
