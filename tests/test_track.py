"""The API a training script imports: ``sweep.flags``, ``sweep.log``, ``sweep.should_stop``;
run by hand and inside a sweep."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest

import sweep
from sweep import rundir, track
from sweep.track import FlagError


@pytest.fixture(autouse=True)
def by_hand(monkeypatch):
    """Every test starts outside a sweep, with no arguments."""
    monkeypatch.delenv("SWEEP_FLAGS", raising=False)
    monkeypatch.delenv("SWEEP_RUN_DIR", raising=False)
    monkeypatch.setattr(sys, "argv", ["train.py"])


def argv(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", *args])


DEFAULTS = dict(lr=0.01, epochs=10, activation="relu", verbose=False, dropout=0.2)


# ---------------------------------------------------------------- flags, by hand


def test_defaults_when_no_arguments():
    f = sweep.flags(**DEFAULTS)
    assert f == DEFAULTS
    assert (f.lr, f.epochs, f.activation, f.verbose) == (0.01, 10, "relu", False)
    with pytest.raises(AttributeError, match="no flag named 'nope'"):
        _ = f.nope


def test_equals_and_space_forms_with_types_from_the_defaults(monkeypatch):
    argv(monkeypatch, "--lr=0.1", "--epochs", "3", "--activation=tanh", "--dropout", "1e-1")
    f = sweep.flags(**DEFAULTS)
    assert f == dict(lr=0.1, epochs=3, activation="tanh", verbose=False, dropout=0.1)
    assert type(f.lr) is float and type(f.epochs) is int and type(f.activation) is str


def test_space_form_takes_the_next_argument_even_if_it_looks_negative(monkeypatch):
    argv(monkeypatch, "--lr", "-0.5")
    assert sweep.flags(**DEFAULTS).lr == -0.5


@pytest.mark.parametrize("args,expected", [
    (["--verbose"], True),
    (["--verbose=true"], True),
    (["--verbose=False"], False),
    (["--verbose=1"], True),
    (["--verbose=no"], False),
])
def test_bool_flags(monkeypatch, args, expected):
    argv(monkeypatch, *args, "--epochs=2")
    f = sweep.flags(**DEFAULTS)
    assert f.verbose is expected and f.epochs == 2


def test_dashes_in_names_mean_underscores(monkeypatch):
    argv(monkeypatch, "--batch-size=64")
    assert sweep.flags(batch_size=32).batch_size == 64


@pytest.mark.parametrize("value,expected", [("3.0", 3), ("1e3", 1000), (" 7 ", 7),
                                            ("12345678901234567891", 12345678901234567891)])
def test_int_coercion_is_exact(monkeypatch, value, expected):
    argv(monkeypatch, f"--epochs={value}")
    epochs = sweep.flags(**DEFAULTS).epochs
    assert epochs == expected and type(epochs) is int


def test_str_default_keeps_text(monkeypatch):
    argv(monkeypatch, "--activation=42")
    assert sweep.flags(**DEFAULTS).activation == "42"  # a str default keeps text


def test_none_default_reads_json_or_keeps_text(monkeypatch):
    argv(monkeypatch, "--a=[1, 2]", "--b=hello", "--c=0.5")
    assert sweep.flags(a=None, b=None, c=None) == {"a": [1, 2], "b": "hello", "c": 0.5}


def test_undeclared_flag_is_an_error_naming_it_and_the_declared_ones(monkeypatch, capsys):
    argv(monkeypatch, "--lr=0.1", "--momentum=0.9")
    with pytest.raises(FlagError) as info:
        sweep.flags(**DEFAULTS)
    assert info.value.code == 2
    assert isinstance(info.value, SystemExit)
    assert str(info.value) == ("flag 'momentum' is not declared by sweep.flags(); "
                               "declared: activation, dropout, epochs, lr, verbose")
    # SystemExit(2) alone would end the script without a word: the reason is printed.
    assert capsys.readouterr().err == f"train.py: error: {info.value}\n"


@pytest.mark.parametrize("args,message", [
    (["--epochs=three"], "flag --epochs expects int, got 'three'"),
    (["--epochs=2.5"], "flag --epochs expects int, got '2.5'"),
    (["--epochs=1e400"], "flag --epochs expects int, got '1e400'"),
    (["--epochs=nan"], "flag --epochs expects int, got 'nan'"),
    (["--lr=fast"], "flag --lr expects float, got 'fast'"),
    (["--verbose=maybe"], "flag --verbose expects true or false, got 'maybe'"),
    (["--epochs"], "flag --epochs needs a value"),
    (["oops"], "unexpected argument 'oops': flags are given as --name=value"),
    (["--"], "unexpected argument '--': flags are given as --name=value"),
])
def test_bad_values_are_flag_errors(monkeypatch, capsys, args, message):
    argv(monkeypatch, *args)
    with pytest.raises(FlagError) as info:
        sweep.flags(**DEFAULTS)
    assert (info.value.code, str(info.value)) == (2, message)
    assert message in capsys.readouterr().err


def test_a_script_run_by_hand_with_a_bad_flag_says_why_and_exits_2(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import sweep\nf = sweep.flags(lr=0.1, epochs=3)\nprint('ok', f.lr, f.epochs)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEP_")}
    ok = subprocess.run([sys.executable, str(script), "--lr", "0.5", "--epochs=4"], capture_output=True,
                        text=True, env=env, timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "ok 0.5 4\n", "")
    bad = subprocess.run([sys.executable, str(script), "--momentum=0.9"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr == ("train.py: error: flag 'momentum' is not declared by sweep.flags(); "
                          "declared: epochs, lr\n")
    assert "Traceback" not in bad.stderr


# ---------------------------------------------------------------- flags, inside a sweep


def test_inside_a_sweep_values_come_from_sweep_flags(monkeypatch):
    monkeypatch.setenv("SWEEP_FLAGS", json.dumps({"lr": 0.5, "epochs": 2, "verbose": True}))
    argv(monkeypatch, "--lr=0.9")  # ignored inside a sweep
    f = sweep.flags(**DEFAULTS)
    assert f == dict(lr=0.5, epochs=2, activation="relu", verbose=True, dropout=0.2)


def test_inside_a_sweep_values_are_coerced_to_the_default_type(monkeypatch):
    monkeypatch.setenv("SWEEP_FLAGS", json.dumps({"lr": 1, "epochs": 4.0, "activation": 3}))
    f = sweep.flags(**DEFAULTS)
    assert (f.lr, f.epochs, f.activation) == (1.0, 4, "3")
    assert (type(f.lr), type(f.epochs)) == (float, int)


def test_inside_a_sweep_an_undeclared_flag_is_an_error(monkeypatch):
    monkeypatch.setenv("SWEEP_FLAGS", json.dumps({"lr": 0.5, "momentum": 0.9}))
    with pytest.raises(FlagError, match=r"^flag 'momentum' is not declared by sweep.flags\(\); declared: "
                                        r"activation, dropout, epochs, lr, verbose$") as info:
        sweep.flags(**DEFAULTS)
    assert info.value.code == 2


def test_inside_a_sweep_dashes_and_underscores_are_one(monkeypatch):
    # A flags file names flags as the command line spells them (learning-rate): a script that
    # declares learning_rate with sweep.flags gets the value, as it does from --learning-rate=.
    monkeypatch.setenv("SWEEP_FLAGS", json.dumps({"learning-rate": 0.5, "n-layer": 4}))
    f = sweep.flags(learning_rate=0.1, n_layer=2)
    assert f == {"learning_rate": 0.5, "n_layer": 4}


def test_inside_a_sweep_one_flag_spelled_two_ways_is_an_error(monkeypatch):
    monkeypatch.setenv("SWEEP_FLAGS", json.dumps({"learning-rate": 0.5, "learning_rate": 0.2}))
    with pytest.raises(FlagError, match=r"^flag 'learning_rate' is given twice, as 'learning-rate' "
                                        r"and 'learning_rate'$"):
        sweep.flags(learning_rate=0.1)


@pytest.mark.parametrize("raw,message", [
    ("{not json", "SWEEP_FLAGS is not valid JSON"),
    ('["lr"]', "SWEEP_FLAGS must be a JSON object of flag values"),
    ("3", "SWEEP_FLAGS must be a JSON object of flag values"),
])
def test_bad_sweep_flags_env(monkeypatch, raw, message):
    monkeypatch.setenv("SWEEP_FLAGS", raw)
    with pytest.raises(FlagError) as info:
        sweep.flags(**DEFAULTS)
    assert (info.value.code, str(info.value)) == (2, message)


def test_inside_a_sweep_a_bad_value_type_is_an_error(monkeypatch):
    monkeypatch.setenv("SWEEP_FLAGS", json.dumps({"epochs": 2.5}))
    with pytest.raises(FlagError, match=r"^flag --epochs expects int, got 2\.5$"):
        sweep.flags(**DEFAULTS)


# ---------------------------------------------------------------- log


def test_log_by_hand_prints(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep.log(step=3, loss=0.21, eval_accuracy=0.93)
    sweep.log(loss=float("nan"), big=1234567.0)
    sweep.log(step=4, lr=1e-5, acc=1)
    assert capsys.readouterr().out == ("step 3: loss=0.21 eval_accuracy=0.93\n"
                                       "loss=nan big=1.23457e+06\n"
                                       "step 4: lr=1e-05 acc=1\n")
    assert list(tmp_path.iterdir()) == []  # by hand nothing is written


def test_log_inside_a_sweep_appends_json_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SWEEP_RUN_DIR", str(tmp_path))
    sweep.log(step=1, loss=0.5, eval_accuracy=0.8)
    sweep.log(step=2, loss=float("nan"), eval_accuracy=float("inf"))
    sweep.log(note=3)
    assert capsys.readouterr().out == ""
    records = list(rundir.read_jsonl(tmp_path / rundir.METRICS_HISTORY))
    assert len(records) == 3
    assert [r["step"] for r in records] == [1, 2, None]
    assert (records[0]["loss"], records[0]["eval_accuracy"]) == (0.5, 0.8)
    assert math.isnan(records[1]["loss"]) and records[1]["eval_accuracy"] == math.inf
    assert records[2]["note"] == 3.0
    assert all(isinstance(r["time"], float) for r in records)
    final, step = rundir.final_metrics(tmp_path / rundir.METRICS_HISTORY)
    assert step == 2 and math.isnan(final["loss"]) and final["note"] == 3.0
    assert (tmp_path / rundir.METRICS_HISTORY).read_bytes().count(b"\n") == 3


def test_log_rejects_a_value_that_is_not_a_number():
    with pytest.raises(TypeError, match=r"sweep.log: metric 'acc' must be a number, got 'high'"):
        sweep.log(acc="high")


# ---------------------------------------------------------------- should_stop


@pytest.fixture
def fresh_stop_state(monkeypatch):
    monkeypatch.setattr(track, "_handler_installed", False)
    monkeypatch.setattr(track, "_stop_requested", False)
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_should_stop_is_false_outside_a_sweep(fresh_stop_state):
    before = signal.getsignal(signal.SIGTERM)
    assert sweep.should_stop() is False
    assert signal.getsignal(signal.SIGTERM) is before  # by hand, SIGTERM keeps its meaning


def test_should_stop_follows_the_stop_file(tmp_path, monkeypatch, fresh_stop_state):
    monkeypatch.setenv("SWEEP_RUN_DIR", str(tmp_path))
    assert sweep.should_stop() is False
    (tmp_path / rundir.STOP_FILE).write_text("")
    assert sweep.should_stop() is True


def test_should_stop_turns_sigterm_into_a_request(tmp_path, monkeypatch, fresh_stop_state):
    monkeypatch.setenv("SWEEP_RUN_DIR", str(tmp_path))
    assert sweep.should_stop() is False
    os.kill(os.getpid(), signal.SIGTERM)  # the process lives on: the handler records it
    assert sweep.should_stop() is True


# ---------------------------------------------------------------- import weight


def test_import_sweep_is_light():
    code = ("import json, sys, sweep; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(out.stdout))
    heavy = {"torch", "optuna", "rich", "numpy", "yaml", "typer"} & loaded
    assert heavy == set(), f"import sweep pulled in {sorted(heavy)}"
    assert {"sweep"} <= loaded
