"""``sweep export tensorboard``: a real sweep written as a TensorBoard HParams experiment, read
back with TensorBoard's own event reader and its hparams plugin's metadata parser."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sweep import rundir

from helpers import SCRIPTS, project, run_dirs, sweep_cli

pytest.importorskip("tensorboard")  # the tensorboard extra, part of the test extra
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, metadata  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

FLAGS = {"lr": {"min": 0.0001, "max": 1.0, "log": True}, "dropout": [0.0, 0.2, 0.5], "optimizer": ["sgd", "adam"]}


def events(folder: Path) -> list[Any]:
    (path,) = folder.glob("events.out.tfevents.*")
    return [e for e in EventFileLoader(str(path)).Load() if e.HasField("summary")]  # not the file_version event


def plugin(event: Any) -> tuple[str, Any]:
    (value,) = event.summary.value
    assert value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
    content = value.metadata.plugin_data.content
    parse = {metadata.EXPERIMENT_TAG: metadata.parse_experiment_plugin_data,
             metadata.SESSION_START_INFO_TAG: metadata.parse_session_start_info_plugin_data,
             metadata.SESSION_END_INFO_TAG: metadata.parse_session_end_info_plugin_data}[value.tag]
    return value.tag, parse(content)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tb")
    flags = project(root, FLAGS, script=SCRIPTS / "report" / "train.py", trials=5, seed=2, metric="eval_accuracy")
    sweep_cli("run", flags, "--runs-dir", root / "runs")
    result = sweep_cli("export", "tensorboard", root / "tb", "--runs-dir", root / "runs")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.endswith(f"5 sessions; view with: tensorboard --logdir {root / 'tb'}\n")
    return root / "runs", root / "tb"


def test_experiment_holds_each_flag_with_its_domain_and_each_metric(exported: tuple[Path, Path]) -> None:
    runs, tb = exported
    (event,) = events(tb)
    tag, experiment = plugin(event)
    assert tag == metadata.EXPERIMENT_TAG
    infos = {h.name: h for h in experiment.hparam_infos}
    assert list(infos) == ["lr", "dropout", "optimizer"]
    lr = infos["lr"]
    assert lr.type == api_pb2.DATA_TYPE_FLOAT64
    assert (lr.domain_interval.min_value, lr.domain_interval.max_value) == (0.0001, 1.0)
    assert [v.number_value for v in infos["dropout"].domain_discrete.values] == [0.0, 0.2, 0.5]
    assert infos["optimizer"].type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in infos["optimizer"].domain_discrete.values] == ["sgd", "adam"]
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"eval_accuracy", "train_accuracy", "eval_loss", "train_loss"} <= metrics


def test_one_session_per_run_with_its_flags_history_and_end(exported: tuple[Path, Path]) -> None:
    runs, tb = exported
    dirs = run_dirs(runs)
    assert sorted(p.name for p in tb.iterdir() if p.is_dir()) == sorted(p.name for p in dirs)
    status = {"completed": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE}
    for path in dirs:
        run = rundir.read_run(path)
        got = events(tb / path.name)
        tag, start = plugin(got[0])
        assert tag == metadata.SESSION_START_INFO_TAG and start.group_name == path.name
        hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        assert hparams == {k: v for k, v in run.flags.items() if k in FLAGS}
        tag, end = plugin(got[-1])
        assert tag == metadata.SESSION_END_INFO_TAG and end.status == status[run.status]
        scalars = [(e.step, v.tag, float(tensor_util.make_ndarray(v.tensor)))
                   for e in got[1:-1] for v in e.summary.value]
        history = [(step, k, pytest.approx(v, nan_ok=True)) for step, m in rundir.read_history(path / "metrics.jsonl")
                   for k, v in m.items()]
        assert scalars == history


def test_export_into_a_folder_with_files_is_refused(tmp_path: Path, exported: tuple[Path, Path]) -> None:
    runs, _ = exported
    (tmp_path / "keep.txt").write_text("mine")
    result = sweep_cli("export", "tensorboard", tmp_path, "--runs-dir", runs)
    assert (result.exit_code, result.stderr) == (2, f"Error: {tmp_path} exists and is not an empty folder: "
                                                    "give a new one\n")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_export_without_the_extra_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    result = sweep_cli("export", "tensorboard", tmp_path / "tb", "--runs-dir", tmp_path)
    assert (result.exit_code, result.stderr) == (
        1, "Error: sweep export tensorboard needs tensorboard, an optional extra: pip install 'sweep[tensorboard]'\n")
    assert not (tmp_path / "tb").exists()
