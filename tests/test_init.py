"""``sweep init SCRIPT`` (issue 10, point 4): a starting flags file from the script's own
argparse parser, without running its training."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml

from sweep import spec

from helpers import SCRIPTS, one_error_line, sweep_cli

CHARLM = SCRIPTS / "names" / "charlm.py"


def _init(*args) -> str:
    result = sweep_cli("init", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_every_flag_with_its_default_type_choices_and_help(tmp_path, monkeypatch):
    shutil.copy(CHARLM, tmp_path / "charlm.py")
    monkeypatch.chdir(tmp_path)
    text = _init("charlm.py")
    data = yaml.safe_load(text)
    assert data["script"] == "charlm.py"
    assert data["flags"] == {
        "input-file": "data/input.txt", "learning-rate": 0.2, "n-layer": 2, "model": "LSTM", "epochs": 3,
        "tied": {"value": False, "switch": True}, "no-cuda": {"value": False, "switch": True},
        "shuffle": {"value": True, "switch": True},  # BooleanOptionalAction, default true
        "pin-mem": {"value": True, "switch": True},  # --pin-mem and --no-pin-mem: one flag
        "save": "model.pt",
    }
    lines = text.splitlines()
    assert "  # initial learning rate (float); search {min: 0.02, max: 2.0, log: true}" in lines
    assert "  # number of layers (int); search {min: 1, max: 8, int: true}" in lines
    assert ("  # type of recurrent net (RNN_TANH, RNN_RELU, LSTM, GRU); "
            "search one of [RNN_TANH, RNN_RELU, LSTM, GRU]") in lines
    assert ("  # tie the word embedding and softmax weights; a switch; "
            "search {values: [true, false], switch: true}") in lines
    # The training never ran: it would have failed on the missing data file, or saved a model.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["charlm.py"]


def test_the_file_it_writes_is_a_flags_file_that_runs(tmp_path):
    shutil.copy(CHARLM, tmp_path / "charlm.py")
    out = tmp_path / "sweeps" / "flags.yaml"
    out.parent.mkdir()
    result = sweep_cli("init", tmp_path / "charlm.py", "-o", out)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"wrote {out}\n")
    assert spec.load(out).script == tmp_path / "charlm.py"  # relative to the flags file: ../charlm.py
    planned = sweep_cli("run", out, "--dry-run", "--trials", "1")
    assert planned.exit_code == 0, planned.stderr
    assert planned.stdout.split("charlm.py ", 1)[1].split() == [
        "--input-file=data/input.txt", "--learning-rate=0.2", "--n-layer=2", "--model=LSTM", "--epochs=3",
        "--shuffle", "--pin-mem", "--save=model.pt"]


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    out = tmp_path / "flags.yaml"
    out.write_text("mine\n")
    line = one_error_line(sweep_cli("init", CHARLM, "-o", out), 2)
    assert line == f"Error: {out} exists; pass --force to overwrite it"
    assert out.read_text() == "mine\n"
    assert sweep_cli("init", CHARLM, "-o", out, "--force").exit_code == 0
    assert "learning-rate: 0.2" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml"]  # no temporary file left


def test_what_a_flags_file_cannot_set_is_listed_as_comments(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""\
        import argparse
        parser = argparse.ArgumentParser(description="PyTorch ImageNet Training")
        parser.add_argument("data", metavar="DIR", help="path to dataset")
        parser.add_argument("-j", type=int, default=4, help="data loading workers")
        parser.add_argument("--lr", "--learning-rate", default=0.1, type=float, dest="lr", help="initial learning rate")
        parser.add_argument("--resume", default="", type=str, help="path to latest checkpoint (default: none)")
        parser.add_argument("--seed", default=None, type=int, help="seed for initializing training")
        parser.add_argument("--milestones", type=int, nargs="+", default=[30, 60], help="epochs to decay the lr")
        parser.add_argument("-v", "--verbose", action="count", default=0)
        parser.add_argument("--world-size", default=-1, type=int, help=argparse.SUPPRESS)
        args = parser.parse_args()
        """))
    text = _init(script)
    assert yaml.safe_load(text)["flags"] == {"lr": 0.1, "resume": ""}
    lines = text.splitlines()
    assert "  # seed: ...   (no default: give a value to pass --seed)" in lines
    assert "  # milestones: ...   (takes several values: not set by a flags file)" in lines
    assert "  # verbose: ...   (a counter (-vv): not set by a flags file)" in lines
    assert "#   positional data: path to dataset (give it with command:)" in lines
    assert "#   -j: a short option only; a flag is passed as --NAME" in lines
    assert "world-size" not in text  # hidden from --help, so from the file too


def test_a_script_it_cannot_read_gets_one_line_saying_why(tmp_path):
    shutil.copytree(SCRIPTS / "introspect" / "nanogpt", tmp_path / "nanogpt")
    line = one_error_line(sweep_cli("init", tmp_path / "nanogpt" / "train.py"), 2)
    assert line == ("Error: train.py: it does not use argparse (neither it nor a module of its folder that it "
                    "imports mentions it); the script was not run")
    assert not (tmp_path / "nanogpt" / "ckpt.pt").exists()

    broken = tmp_path / "broken.py"
    broken.write_text("import argparse\nimport apex  # NVIDIA's mixed precision\n")
    line = one_error_line(sweep_cli("init", broken, "-o", tmp_path / "flags.yaml"), 2)
    assert line == ("Error: broken.py: it stopped before parsing its arguments: "
                    "ModuleNotFoundError: No module named 'apex'")
    assert not (tmp_path / "flags.yaml").exists()

    line = one_error_line(sweep_cli("init", tmp_path / "missing.py"), 2)
    assert line == f"Error: {tmp_path / 'missing.py'}: no such script"

    empty = tmp_path / "empty.py"
    empty.write_text("import argparse\nargparse.ArgumentParser().parse_args()\n")
    assert one_error_line(sweep_cli("init", empty), 2) == (
        "Error: empty.py: its parser has no option a flags file can set")


def test_a_folder_of_its_own_is_written_relative_to_the_output(tmp_path):
    script = Path(shutil.copytree(SCRIPTS / "introspect" / "cyclegan", tmp_path / "cyclegan")) / "train.py"
    out = tmp_path / "flags" / "cyclegan.yaml"
    out.parent.mkdir()
    assert sweep_cli("init", script, "-o", out).exit_code == 0
    data = yaml.safe_load(out.read_text())
    assert data["script"] == "../cyclegan/train.py"
    assert data["flags"]["netG"] == "resnet_9blocks" and data["flags"]["gpu_ids"] == "0"
    assert not (script.parent / "latest_net_G.pth").exists()
