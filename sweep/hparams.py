"""``sweep export tensorboard DIR``: a sweep as a TensorBoard HParams experiment, written in
TensorBoard's own format with its protobufs (no TensorFlow, no ``SummaryWriter.add_hparams``,
which makes a run folder per call).

``DIR`` gets the experiment (each searched flag with its domain, each metric) in its own
event file, and one folder per run: the session's start (its flags), its history as scalars
per step, and its end (completed, failed, pruned or still running). ``DIR`` is written beside
itself and renamed into place: a failed export leaves nothing half written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sweep import board, importance, rundir
from sweep.errors import SweepError, UsageError

EXTRA = "sweep export tensorboard needs tensorboard, an optional extra: pip install 'sweep[tensorboard]'"


def export(runs_dir: Path, ref: str, out: Path) -> tuple[str, int]:
    """Write the sweep ``ref`` to ``out``; returns the sweep id and the sessions written."""
    try:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: F401
    except ImportError:
        raise SweepError(EXTRA) from None
    if not runs_dir.is_dir():
        raise UsageError(f"runs directory {runs_dir} does not exist")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty folder: give a new one")
    runs = rundir.list_runs(runs_dir)
    sweep_id = rundir.find_sweep_id(runs_dir, ref, runs)
    mine = sorted((r for r in runs if r.sweep == sweep_id and r.status != "broken"),
                  key=lambda r: r.info.get("trial", 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(stage, sweep_id, mine)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return sweep_id, len(mine)


def _write(folder: Path, sweep_id: str, runs: list[rundir.Run]) -> None:
    from tensorboard.plugins.hparams import api_pb2

    try:
        space: dict[str, Any] | None = importance.search_space(sweep_id, runs[:5])
    except SweepError:
        space = None  # no flags file: the flags that took more than one value, their values seen
    names = list(space) if space else sorted({k for r in runs for k in r.flags
                                              if len({board.cell(x.flags.get(k)) for x in runs}) > 1})
    metrics = sorted({m for r in runs for m in r.metrics})
    experiment = api_pb2.Experiment(
        name=sweep_id, time_created_secs=min((r.start or 0.0 for r in runs), default=0.0),
        hparam_infos=[_hparam_info(n, (space or {}).get(n), [r.flags.get(n) for r in runs]) for n in names],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m), display_name=m) for m in metrics])
    _events(folder, [(0, 0.0, _plugin_value("experiment", experiment))])
    for run in runs:
        _session(folder / run.path.name, run, names)


def _plugin_value(kind: str, message: Any) -> Any:
    """A summary value carrying one HParams plugin message (what TensorBoard reads)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    tag = {"experiment": metadata.EXPERIMENT_TAG, "session_start_info": metadata.SESSION_START_INFO_TAG,
           "session_end_info": metadata.SESSION_END_INFO_TAG}[kind]
    data = plugin_data_pb2.HParamsPluginData(**{kind: message})
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                     tensor=metadata.NULL_TENSOR)


def _hparam_info(name: str, dist: Any, seen: list[Any]) -> Any:
    from google.protobuf import struct_pb2
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, display_name=name)
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = float(dist.low), float(dist.high)
        return info
    values = list(dist.choices) if isinstance(dist, CategoricalDistribution) else \
        list({board.cell(v): v for v in seen if v is not None}.values())
    if all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
    elif all(board.is_number(v) for v in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64
    else:  # TensorBoard wants one type per flag: a mixed list is shown as text
        info.type = api_pb2.DATA_TYPE_STRING
        values = [board.cell(v) for v in values]
    info.domain_discrete.CopyFrom(struct_pb2.ListValue(values=[_value(v, info.type) for v in values]))
    return info


def _value(value: Any, kind: int | None = None) -> Any:
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2

    if kind == api_pb2.DATA_TYPE_STRING:
        return struct_pb2.Value(string_value=board.cell(value))
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if board.is_number(value):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=board.cell(value))


END_STATUS = {"completed": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "pruned": "STATUS_ABORTED",
              "interrupted": "STATUS_ABORTED", "running": "STATUS_RUNNING"}


def _session(folder: Path, run: rundir.Run, names: list[str]) -> None:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    start = run.start or 0.0
    started = plugin_data_pb2.SessionStartInfo(group_name=run.path.name, start_time_secs=start)
    for name in names:
        if name in run.flags:
            started.hparams[name].CopyFrom(_value(run.flags[name]))
    events: list[tuple[int, float, Any]] = [(0, start, _plugin_value("session_start_info", started))]
    steps = 0
    for i, (step, metrics) in enumerate(rundir.read_history(run.path / rundir.METRICS_HISTORY)):
        at = step if step is not None else i
        steps = max(steps, at)
        events += [(at, start, summary_pb2.Summary.Value(tag=k, simple_value=v)) for k, v in metrics.items()]
    if len(events) == 1:  # no history: the final metrics, at step 0
        events += [(0, start, summary_pb2.Summary.Value(tag=k, simple_value=v)) for k, v in run.metrics.items()]
    end = start + float(run.info.get("duration") or 0.0)
    ended = plugin_data_pb2.SessionEndInfo(status=getattr(api_pb2, END_STATUS[run.status]), end_time_secs=end)
    events.append((steps, end, _plugin_value("session_end_info", ended)))
    _events(folder, events)


def _events(folder: Path, values: list[tuple[int, float, Any]]) -> None:
    """One event file in ``folder``: each (step, wall time, summary value) an event."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder))
    try:
        for step, wall, value in values:
            writer.add_event(event_pb2.Event(step=step, wall_time=wall, summary=summary_pb2.Summary(value=[value])))
    finally:
        writer.close()
