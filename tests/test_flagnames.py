"""Flag names as the script spells them (issue 10, point 1): argparse's dashes and config
parsers' dotted keys are passed verbatim as ``--NAME=VALUE``, and the board, ``ls --sort``,
``--where``, ``--set``, ``compare`` and the smoke section take them as they are."""

from __future__ import annotations

from pathlib import Path

from helpers import SCRIPTS, info, ls_json, project, run_dirs, sweep_cli

NAMES = SCRIPTS / "names"


def _charlm(root: Path, flags: dict, **top) -> Path:
    path = project(root, flags, script=NAMES / "charlm.py", metric="valid_loss", **top)
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("to be or not to be, that is the question\n" * 20)
    return path


def test_dashed_argparse_flags_are_passed_and_listed_as_spelled(tmp_path):
    flags = _charlm(tmp_path / "p", {"learning-rate": [0.1, 0.3], "n-layer": 3, "input-file": "data/input.txt"},
                    sampler="grid", smoke={"flags": {"n-layer": 1}})
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    commands = sorted(info(run)["command"][2:] for run in run_dirs(runs))
    assert commands == [["--learning-rate=0.1", "--n-layer=3", "--input-file=data/input.txt"],
                        ["--learning-rate=0.3", "--n-layer=3", "--input-file=data/input.txt"]]

    rows = ls_json(runs, "--sort", "flag_learning-rate")
    assert [r["flag_learning-rate"] for r in rows] == [0.3, 0.1]
    assert all(r["status"] == "completed" and r["flag_n-layer"] == 3 for r in rows)
    assert [r["flag_learning-rate"] for r in ls_json(runs, "--where", "flag_learning-rate<0.2")] == [0.1]
    assert len(ls_json(runs, "--where", "flag_input-file==data/input.txt")) == 2

    compared = sweep_cli("compare", rows[0]["id"], rows[1]["id"], "--runs-dir", runs)
    assert compared.exit_code == 0
    assert "flag_learning-rate" in compared.stdout and "flag_n-layer" in compared.stdout

    # --set and the smoke section name the flag as the file does.
    again = sweep_cli("run", flags, "--runs-dir", runs, "--launcher", "spawn", "--smoke",
                      "--set", "learning-rate=0.05")
    assert again.exit_code == 0, again.stderr
    newest = max(run_dirs(runs, by_trial=False), key=lambda run: info(run)["start"])  # names tie within a second
    assert info(newest)["command"][2:] == ["--learning-rate=0.05", "--n-layer=1", "--input-file=data/input.txt"]


def test_dotted_keys_reach_a_config_parser_that_wants_the_equals_form(tmp_path):
    # minGPT's CfgNode.merge_from_args refuses `--a.b value`: the value must be glued with `=`.
    flags = project(tmp_path / "p", {"trainer.learning_rate": [3e-4, 1e-3], "model.resid_pdrop": 0.0},
                    script=NAMES / "chargpt.py", metric="train_loss", sampler="grid")
    runs = tmp_path / "runs"
    result = sweep_cli("run", flags, "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    for row in ls_json(runs):
        assert row["status"] == "completed"
        assert row["train_loss"] == round(abs(row["flag_trainer.learning_rate"] - 1e-3) * 1000 + 1 / 3, 5)
        log = (Path(row["dir"]) / "output.log").read_text()
        assert f"overwriting config attribute trainer.learning_rate with {row['flag_trainer.learning_rate']}" in log
    assert [r["flag_trainer.learning_rate"] for r in ls_json(runs, "--where", "flag_trainer.learning_rate>0.0005")] \
        == [0.001]


def test_a_script_that_uses_sweep_flags_takes_dashed_names(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import sweep\n"
                      "f = sweep.flags(learning_rate=0.1, n_layer=2)\n"
                      "print(f'eval_accuracy: {f.learning_rate * f.n_layer}')\n")
    (tmp_path / "flags.yaml").write_text("script: train.py\nflags:\n  learning-rate: [0.25]\n  n-layer: 4\n")
    runs = tmp_path / "runs"
    result = sweep_cli("run", tmp_path / "flags.yaml", "--runs-dir", runs, "--launcher", "spawn")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert [r["eval_accuracy"] for r in ls_json(runs)] == [1.0]
