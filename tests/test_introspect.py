"""Switches without ceremony (issue 10, point 3): a script's argparse parser is read without
running its training, and a true/false flag whose option is a switch is given as the bare
words that set it; where the parser cannot be read, a trial that fails on a boolean says how
to fix the flags file."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from sweep import introspect, spec, trial
from sweep.errors import ScriptError

from helpers import SCRIPTS, flags_of, info, ls_json, project, run_dirs, survivors, sweep_cli, wait_for

HERE = SCRIPTS / "introspect"
CHARLM = SCRIPTS / "names" / "charlm.py"


def _copy(name: str, dest: Path) -> Path:
    source = HERE / name
    if source.is_dir():
        shutil.copytree(source, dest / name)
        return dest / name / "train.py"
    shutil.copy(source, dest / name)
    return dest / name


def _script(dest: Path, text: str, name: str = "train.py") -> Path:
    path = dest / name
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------- reading a parser


@pytest.fixture(scope="module")
def charlm() -> introspect.Parser:
    return introspect.read(CHARLM)


def test_every_option_of_the_parser_is_read(capfd):
    parser = introspect.read(CHARLM)
    options = {o.strings: o for o in parser.options}
    rate = options[("--learning-rate",)]
    assert (rate.dest, rate.kind, rate.default, rate.type, rate.help) == (
        "learning_rate", "store", 0.2, "float", "initial learning rate")
    model = options[("--model",)]
    assert model.choices == ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
    assert model.help == "type of recurrent net (RNN_TANH, RNN_RELU, LSTM, GRU)"  # %(choices)s expanded
    assert options[("--tied",)].kind == "store_true"
    assert options[("--shuffle", "--no-shuffle")].kind == "boolean_optional"
    assert (options[("--no-pin-mem",)].kind, options[("--no-pin-mem",)].dest) == ("store_false", "pin_mem")
    assert options[("--pin-mem",)].default is True  # parser.set_defaults(pin_mem=True)
    # The script printed and read its data file after parse_args: none of it happened.
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("name,words", [
    ("tied", ("--tied", "")),                        # store_true: bare when true
    ("no-cuda", ("--no-cuda", "")),                  # store_true named for what it turns off
    ("shuffle", ("--shuffle", "--no-shuffle")),      # BooleanOptionalAction
    ("no-shuffle", ("--no-shuffle", "--shuffle")),
    ("pin-mem", ("--pin-mem", "--no-pin-mem")),      # a store_true and its store_false sibling (MAE, DeiT)
    ("no-pin-mem", ("--no-pin-mem", "--pin-mem")),
    ("learning-rate", None), ("model", None), ("nope", None),
])
def test_switch_words_give_the_script_the_value_under_the_flags_name(charlm, name, words):
    assert charlm.switch_words(name) == words


def test_a_store_false_flag_named_as_its_dest_is_given_bare_when_false():
    parser = introspect.Parser((introspect.Option(("--augment",), "augment", "store_false", default=True),))
    assert parser.switch_words("augment") == ("", "--augment")


def test_a_config_parser_parsed_first_does_not_hide_the_main_one(tmp_path):
    # timm's train.py parses a --config parser with parse_known_args, then the real one.
    script = _copy("timm_train.py", tmp_path)
    parser = introspect.read(script)
    strings = {s for o in parser.options for s in o.strings}
    assert {"--config", "--model", "--batch-size", "--lr", "--amp", "--no-prefetcher"} <= strings
    assert parser.option("batch-size").help == "Input batch size for training (default: 128)"
    assert parser.option("log-interval").hidden
    assert parser.switch_words("amp") == ("--amp", "")
    assert not (tmp_path / "last.pth.tar").exists()  # main() never got past _parse_args


def test_a_parser_in_an_options_package_is_found(tmp_path):
    # pytorch-CycleGAN-and-pix2pix: train.py never names argparse; options/base_options.py does.
    script = _copy("cyclegan", tmp_path)
    parser = introspect.read(script)
    assert parser.option("netG").choices == ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
    assert parser.option("n_epochs").default == 2
    assert parser.switch_words("no_dropout") == ("--no_dropout", "")
    assert not (script.parent / "latest_net_G.pth").exists()


def test_a_module_run_with_python_m_is_read_from_the_flags_files_folder(tmp_path):
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "__init__.py").write_text("")
    _script(tmp_path / "trainer", """\
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--tied", action="store_true")
        args = parser.parse_args()
        """, name="main.py")
    assert introspect.read(None, "trainer.main", root=tmp_path).switch_words("tied") == ("--tied", "")


def test_a_script_without_argparse_is_never_run(tmp_path):
    # nanoGPT's train.py: globals overridden by an exec'd configurator. Running it is training.
    script = _copy("nanogpt", tmp_path)
    with pytest.raises(ScriptError, match=r"^train.py: it does not use argparse .*the script was not run$"):
        introspect.read(script)
    assert not (script.parent / "ckpt.pt").exists()


def test_what_a_script_does_before_parsing_stays_out_of_the_users_folder(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    script = _script(tmp_path, """\
        import argparse, os
        print("loading config", flush=True)
        os.makedirs("checkpoints", exist_ok=True)
        open("train.log", "w").write("started")
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=10)
        args = parser.parse_args()
        """)
    assert introspect.read(script).option("epochs").default == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("body,why", [
    ("import argparse\nimport apex\n", "train.py: it stopped before parsing its arguments: "
                                       "ModuleNotFoundError: No module named 'apex'"),
    ("import argparse, sys\nsys.exit('CUDA is required')\n",
     "train.py: it exited (status CUDA is required) before parsing its arguments"),
    ("import argparse\nparser = argparse.ArgumentParser()\n",
     "train.py: it ended without parsing arguments with argparse"),
])
def test_a_script_that_does_not_reach_its_parser_says_why(tmp_path, body, why):
    with pytest.raises(ScriptError) as caught:
        introspect.read(_script(tmp_path, body))
    assert str(caught.value) == why


def test_a_script_slow_to_reach_its_parser_is_stopped_with_its_children(tmp_path):
    script = _script(tmp_path, f"""\
        import argparse, os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(tmp_path / "pids")!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
        """)
    with pytest.raises(ScriptError, match=r"^train.py: did not reach its argument parser within 1 s$"):
        introspect.read(script, timeout=1)
    assert wait_for(lambda: (tmp_path / "pids").exists(), timeout=5)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert survivors(pids, within=5) == set()


# ---------------------------------------------------------------- a sweep


def _charlm_project(root: Path, flags: dict, **top) -> Path:
    path = project(root, {"input-file": "data/input.txt", "epochs": 1, **flags}, script=CHARLM,
                   metric="valid_loss", sampler="grid", **top)
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("hello world\n" * 10)
    return path


def test_true_false_flags_of_argparse_switches_just_work(tmp_path):
    flags = _charlm_project(tmp_path / "p", {"tied": [True, False], "shuffle": [True, False],
                                             "no-pin-mem": [True, False]})
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    seen = set()
    for run in run_dirs(runs):
        given = info(run)["command"][4:]
        echo = next(line for line in (run / "output.log").read_text().splitlines() if line.startswith("Namespace("))
        values = flags_of(run)
        tied, shuffle, no_pin = values["tied"], values["shuffle"], values["no-pin-mem"]
        assert given == ["--tied"] * tied + ["--shuffle" if shuffle else "--no-shuffle"] + \
            ["--no-pin-mem" if no_pin else "--pin-mem"]
        assert f"tied={tied}" in echo and f"shuffle={shuffle}" in echo and f"pin_mem={not no_pin}" in echo
        seen.add((tied, shuffle, no_pin))
    assert len(seen) == 8
    assert {r["status"] for r in ls_json(runs)} == {"completed"}


def test_a_dry_run_shows_the_switches(tmp_path):
    flags = _charlm_project(tmp_path / "p", {"tied": [True, False], "shuffle": False})
    result = sweep_cli("run", flags, "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = sorted(line.split(" ", 2)[2] for line in result.stdout.splitlines())
    assert [line.split("charlm.py ")[1] for line in lines] == [
        "--input-file=data/input.txt --epochs=1 --no-shuffle",
        "--input-file=data/input.txt --epochs=1 --tied --no-shuffle"]


def test_flags_without_true_false_values_never_start_the_script(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("read the parser for nothing")

    monkeypatch.setattr(introspect, "read", refuse)
    s = spec.load(_charlm_project(tmp_path / "p", {"learning-rate": [0.1, 0.2]}))
    assert introspect.with_switches(s) is s


def test_where_the_parser_cannot_be_read_a_failed_trial_says_how_to_fix_the_flags_file(tmp_path):
    # The script reads its vocabulary before parsing: only from its own folder, so its parser
    # cannot be read from elsewhere, and sweep falls back to --tied=true, which argparse refuses.
    root = tmp_path / "p"
    root.mkdir()
    (root / "vocab.json").write_text('{"a": 0}')
    _script(root, """\
        import argparse, json
        vocab = json.load(open("vocab.json"))
        parser = argparse.ArgumentParser()
        parser.add_argument("--tied", action="store_true")
        parser.add_argument("--emsize", type=int, default=200)
        args = parser.parse_args()
        print(f"eval_accuracy: {0.5 + 0.1 * args.tied}")
        """)
    (root / "flags.yaml").write_text("script: train.py\nflags:\n  tied: [true]\n  emsize: 100\n")
    runs = tmp_path / "runs"
    result = sweep_cli("run", root / "flags.yaml", "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 1
    [row] = ls_json(runs)
    assert row["status"] == "failed"
    assert row["reason"].endswith("; --tied takes no value: mark it a switch in the flags file "
                                  "(tied: {values: [true, false], switch: true})")


# ---------------------------------------------------------------- the hint alone


@pytest.mark.parametrize("tail", [
    "usage: train.py [-h] [--tied]\ntrain.py: error: argument --tied: ignored explicit argument 'true'",
    "train.py: error: argument --tied/--no-tied: ignored explicit argument 'false'",
    "Usage: train.py [OPTIONS]\nTry 'train.py --help' for help.\n\nError: Option '--tied' does not take a value.",
])
def test_switch_hint_reads_what_parsers_say(tail):
    assert trial.switch_hint(tail, {"tied": True, "emsize": 3}) == (
        "--tied takes no value: mark it a switch in the flags file (tied: {values: [true, false], switch: true})")


def test_switch_hint_for_an_unrecognized_boolean_flag_also_suspects_its_spelling():
    tail = "train.py: error: unrecognized arguments: --emsize=3 --tied=true"
    assert trial.switch_hint(tail, {"tied": True, "emsize": 3}) == (
        "the script has no --tied=VALUE: check the flag's spelling, or if it is a switch, mark it a switch "
        "in the flags file (tied: {values: [true, false], switch: true})")


@pytest.mark.parametrize("tail,flags", [
    ("train.py: error: argument --emsize: invalid int value: 'x'", {"emsize": "x"}),
    ("train.py: error: unrecognized arguments: --emsize=3", {"emsize": 3}),
    ("train.py: error: argument --tied: ignored explicit argument 'yes'", {"tied": "yes"}),  # not a boolean flag
    ("", {"tied": True}),
    (None, {"tied": True}),
])
def test_switch_hint_is_silent_about_other_failures(tail, flags):
    assert trial.switch_hint(tail, flags) is None


def test_dotted_and_dashed_names_are_named_in_the_hint():
    tail = "error: argument --model.use-bias: ignored explicit argument 'True'"
    assert trial.switch_hint(tail, {"model.use-bias": False}).startswith("--model.use-bias takes no value")
