"""The record's owner, in-process: the run.json schema, the writer that stages and publishes
a run, the one reader of metrics.jsonl, and reads that never block on what a trial left in
its run directory (plus one real sweep whose trial does exactly that)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweep import index, rundir
from sweep.rundir import RunInfo, RunWriter

from helpers import python_env


def writer_run(tmp_path: Path, **info) -> tuple[RunWriter, Path, RunInfo]:
    writer = RunWriter(tmp_path / "runs")
    record = RunInfo(sweep="s1", trial=0, start=1.0, **info)
    path = writer.create(record, {"lr": 0.1}, lambda stage, path: (stage / "work").mkdir())
    return writer, path, record


def test_a_created_run_is_whole_and_reads_back_running(tmp_path):
    _, path, record = writer_run(tmp_path, metric="acc")
    assert record.id == path.name and (path / "work").is_dir() and (path / "output.log").exists()
    run = rundir.read_run(path)
    assert (run.status, run.flags, run.info["metric"], run.info["format"]) == ("running", {"lr": 0.1}, "acc", 1)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(rundir.STAGE_PREFIX)]


def test_a_stage_s_files_are_written_in_place_and_the_run_appears_whole(tmp_path, monkeypatch):
    """Nobody reads a stage: its files are written where they stay, with no temporary name
    renamed into place (issue 17: two renames a trial on the path between trials); the run
    appears, whole, at the one rename of its stage."""
    renamed: list[str] = []
    real_replace, real_rename = os.replace, os.rename
    monkeypatch.setattr(os, "replace", lambda a, b: renamed.append(f"replace {Path(b).name}") or real_replace(a, b))
    monkeypatch.setattr(os, "rename", lambda a, b: renamed.append(f"rename {Path(b).name}") or real_rename(a, b))
    _, path, record = writer_run(tmp_path, metric="eval_accuracy")
    assert renamed == [f"rename {path.name}"]
    run = rundir.read_run(path)
    assert (run.status, run.flags, run.info["id"]) == ("running", {"lr": 0.1}, path.name)
    assert (path / rundir.RUN_MARKER).read_text() == path.name + "\n" and (path / "output.log").read_bytes() == b""
    assert (path / "flags.json").read_text() == '{\n  "lr": 0.1\n}\n'


def test_a_fill_that_fails_leaves_no_run_and_no_stage(tmp_path):
    def fill(stage: Path, path: Path) -> None:
        (stage / "work").mkdir()
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        RunWriter(tmp_path / "runs").create(RunInfo(sweep="s1", trial=0), {}, fill)
    assert list((tmp_path / "runs").iterdir()) == []


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict]] = []

    def ended(self, path: Path, info: RunInfo, metrics: dict[str, float]) -> None:
        self.seen.append((path.name, info.status, metrics))


class Broken:
    def ended(self, path: Path, info: RunInfo, metrics: dict[str, float]) -> None:
        raise ConnectionError("server closed the connection")


def test_end_writes_the_record_then_tells_every_store_and_reports_their_failures(tmp_path):
    writer, path, record = writer_run(tmp_path)
    recorder = Recorder()
    writer.stores = [Broken(), recorder]
    (path / rundir.STOP_FILE).touch()
    record.status, record.exit_code, record.end = "completed", 0, 2.0
    problems = writer.end(path, record, {"acc": 0.9})
    assert problems == ["Broken: ConnectionError: server closed the connection"]
    assert recorder.seen == [(path.name, "completed", {"acc": 0.9})]  # a failing store stops no other
    run = rundir.read_run(path)
    assert (run.status, run.metrics, run.info["exit_code"]) == ("completed", {"acc": 0.9}, 0)
    assert not (path / rundir.STOP_FILE).exists()


@pytest.mark.parametrize("status, metrics, reason", [
    ("completed", {"eval_accuracy": 0.93, "train_loss": 0.21}, None),
    ("failed", {"train_loss": float("nan")}, "train_loss is nan (diverged?)"),
    ("pruned", {"eval_accuracy": 0.5, "steps": 3}, "pruned at step 3"),
])
def test_the_ls_note_of_an_ended_run_is_what_ls_reads_without_reading_it_back(tmp_path, monkeypatch, status,
                                                                               metrics, reason):
    """index.Notes writes the ls row of each ended run from what the writer holds (issue 17:
    reading run.json and metrics.json back was part of every trial's overhead): the row is
    the one a from-scratch ``ls`` reads; only flags.json, which the trial could change, is read."""
    runs = tmp_path / "runs"
    noter = index.Notes(runs, "s1")
    writer = RunWriter(runs, [noter])
    record = RunInfo(sweep="s1", trial=4, start=1.0, metric="eval_accuracy", goal="maximize",
                     objectives=[["eval_accuracy", "maximize"]], baseline_error=0.5)
    path = writer.create(record, {"lr": 0.1, "optimizer": "adamw", "amp": True}, lambda stage, path: None)
    record.status, record.end, record.duration, record.reason, record.steps = status, 2.0, 1.0, reason, 3
    read: list[str] = []
    load = rundir._load_json
    monkeypatch.setattr(rundir, "_load_json", lambda p: read.append(p.name) or load(p))
    assert writer.end(path, record, metrics) == []
    noter.flush(time.time_ns() + 10 * index.RACY_NS)  # noted once past the racy window
    assert read == [rundir.FLAGS_FILE]
    monkeypatch.undo()
    notes = list(rundir.read_jsonl(runs / rundir.STATE_DIR / index.INDEX_NOTES / "s1.jsonl"))
    assert [n["name"] for n in notes] == [path.name]
    expected = json.loads(json.dumps(index._to_cache(rundir.read_run(path))))  # as the note's JSON holds it
    assert notes[0]["row"] == expected and notes[0]["stamp"] == list(index.stamp(str(path)))
    assert json.dumps(notes[0]["row"]) == json.dumps(expected)  # NaN too



def test_a_run_changed_after_its_end_is_noted_as_read_back_or_left_to_ls(tmp_path):
    """A run's folder that changes between its end and its note (the server removing its
    scratch folder, a hand edit) is noted from a read of its files, with the new stamp; one
    that changes too late to be past the racy window is not noted at all (ls reads it)."""
    runs = tmp_path / "runs"
    noter = index.Notes(runs, "s1")
    writer = RunWriter(runs, [noter])
    paths = []
    for trial in range(2):
        record = RunInfo(sweep="s1", trial=trial, start=1.0, metric="acc", goal="maximize")
        path = writer.create(record, {"lr": 0.1}, lambda stage, path: None)
        record.status, record.end, record.duration = "completed", 2.0, 1.0
        writer.end(path, record, {"acc": 0.5})
        paths.append(path)
    rundir.write_json(paths[0] / rundir.METRICS_FILE, {"acc": 0.75})  # after its end, before its note
    noter.flush(time.time_ns() + 10 * index.RACY_NS)
    [note] = [n for n in rundir.read_jsonl(noter.file) if n["name"] == paths[0].name]
    assert note["row"]["metrics"] == {"acc": 0.75} and note["stamp"] == list(index.stamp(str(paths[0])))
    rundir.write_json(paths[1] / rundir.METRICS_FILE, {"acc": 0.25})
    noter.pending.append((paths[1], (0, 0, 0), rundir.read_run(paths[1])))  # ended long ago, changed just now
    noter.flush()
    assert [n["name"] for n in rundir.read_jsonl(noter.file)].count(paths[1].name) == 1  # the first, unchanged note


def test_the_schema_is_the_reader_s_check(tmp_path):
    _, path, record = writer_run(tmp_path)
    assert set(record.to_json()) >= set(rundir.FIELD_TYPES)
    damaged = dict(record.to_json(), trial="three", status="completed")
    rundir.write_json(path / rundir.RUN_FILE, damaged)
    run = rundir.read_run(path)
    assert run.status == "broken" and run.reason == "run.json: trial should be int, not str"
    assert "trial" not in run.info and run.info["sweep"] == "s1"


def test_one_rule_for_every_history_line(tmp_path):
    assert rundir.history_point({"step": 3, "time": 1.0, "loss": 0.5, "source": "stdout"}) == (3, {"loss": 0.5})
    assert rundir.history_point({"step": True, "loss": 1}) == (None, {"loss": 1.0})  # a bool is no step
    assert rundir.history_point({"ok": True, "name": "x", "big": 10**400}) == (None, {"big": float("inf")})
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n[1]\nnot json\n{"step": 2, "loss": 0.25}\n{"step": 3, "lo')
    assert list(rundir.read_history(path)) == [(1, {"loss": 0.5}), (2, {"loss": 0.25})]
    assert rundir.final_metrics(path) == ({"loss": 0.25}, 2)


def test_the_tail_returns_whole_lines_as_they_arrive(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = rundir.HistoryTail(path)
    assert tail.read() == []  # not there yet
    with open(path, "w") as fh:
        fh.write('{"step": 1, "acc": 0.1}\n{"step": 2, "ac')
    assert tail.read() == [(1, {"acc": 0.1})]
    with open(path, "a") as fh:
        fh.write('c": 0.2}\n')
    assert tail.read() == [(2, {"acc": 0.2})]
    assert tail.read() == []


def _no_hang(fn, timeout: float = 5.0):
    """Call ``fn`` in a thread; fail (rather than hang the suite) if it blocks."""
    box: dict[str, object] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn} blocked"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def test_no_read_of_a_run_blocks_on_a_fifo(tmp_path):
    _, path, _ = writer_run(tmp_path)
    os.mkfifo(path / rundir.METRICS_HISTORY)
    run = _no_hang(lambda: rundir.read_run(path))
    assert run.status == "running" and run.metrics == {}
    assert _no_hang(lambda: list(rundir.read_history(path / rundir.METRICS_HISTORY))) == []
    assert _no_hang(lambda: rundir.HistoryTail(path / rundir.METRICS_HISTORY).read()) == []
    with pytest.raises(OSError):  # ENXIO: a FIFO without a reader is refused, never waited on
        _no_hang(lambda: rundir.append_jsonl(path / rundir.METRICS_HISTORY, {"acc": 1.0}))
    os.unlink(path / rundir.RUN_FILE)
    os.mkfifo(path / rundir.RUN_FILE)
    run = _no_hang(lambda: rundir.read_run(path))
    assert run.status == "broken" and "not a regular file" in run.reason


FIFO_TRIAL = """
import os, sys
run = os.environ["SWEEP_RUN_DIR"]
os.mkfifo(os.path.join(run, "metrics.jsonl"))
os.unlink(os.path.join(run, "flags.json"))
os.mkfifo(os.path.join(run, "flags.json"))
print("epoch 1: eval_accuracy=0.75", flush=True)
"""


def test_a_trial_that_turns_its_history_into_a_fifo_cannot_hang_the_sweep(tmp_path):
    (tmp_path / "t.py").write_text(FIFO_TRIAL)
    (tmp_path / "f.yaml").write_text("script: t.py\ntrials: 2\nflags:\n  x: [1, 2]\n")
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(tmp_path / "f.yaml"), "-d", str(runs),
                           "--launcher", "spawn", "--timeout", "20"],
                          env=python_env(), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    dirs = [p for p in runs.iterdir() if rundir.is_run_name(p.name)]
    infos = [json.loads((d / rundir.RUN_FILE).read_text()) for d in dirs]
    assert [i["status"] for i in infos] == ["completed", "completed"]
    assert [json.loads((d / rundir.METRICS_FILE).read_text()) for d in dirs] == [{"eval_accuracy": 0.75}] * 2
    for args in (["ls", "-d", str(runs), "--format", "json"], ["show", "last", "-d", str(runs)]):
        out = subprocess.run([sys.executable, "-m", "sweep", *args], env=python_env(), capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
