"""The sweep's own Optuna journal (``sweep.journal``): one fsync an ask and one a tell, every
append readable at once, the file Optuna's own backend reads."""

from __future__ import annotations

import os

from optuna.storages.journal import JournalFileBackend

from sweep import journal, search, spec

FLAGS = """\
script: train.py
metric: eval_accuracy
flags:
  lr: {min: 0.0001, max: 0.1, log: true}
  hidden: [16, 32, 64]
"""


def open_search(tmp_path) -> search.Search:
    (tmp_path / "train.py").write_text("print('eval_accuracy: 0.5')\n")
    (tmp_path / "flags.yaml").write_text(FLAGS)
    s = spec.load(tmp_path / "flags.yaml")
    return search.Search.open(s, None, tmp_path / "state", "s1", "s1")


def counting_fsync(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_trial_costs_one_fsync_made_by_its_ask(tmp_path, monkeypatch):
    found = open_search(tmp_path)
    calls = counting_fsync(monkeypatch)
    ask = found.ask()  # the trial and its two parameters: fsync'd before the run is published
    assert ask is not None
    assert len(calls) == 1
    found.tell(ask, "completed", 0.9, {"run_id": "r1", "run_dir": "/runs/r1", "metrics": {"eval_accuracy": 0.9}})
    assert len(calls) == 1  # three user attributes and the state: fsync'd with the next ask
    second = found.ask()
    assert second is not None
    assert len(calls) == 2
    found.tell(second, "completed", 0.8, {"run_id": "r2"})
    journal.sync()  # the last tell: the loop syncs it once the next trial started, or at the end
    assert len(calls) == 3
    journal.sync()
    assert len(calls) == 3  # nothing new to keep


def test_what_is_written_in_a_batch_is_read_at_once_and_by_optuna_itself(tmp_path):
    found = open_search(tmp_path)
    ask = found.ask()
    assert ask is not None
    found.tell(ask, "completed", 0.75, {"run_id": "r1"})
    path = tmp_path / "state" / "s1.journal"
    backend = journal.OwnJournal(str(path))
    with backend.batch(durable=False):
        backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "other", "directions": [1]}])
        assert len(list(JournalFileBackend(str(path)).read_logs(0))) == len(list(backend.read_logs(0)))
    reread = search.Search.open(spec.load(tmp_path / "flags.yaml"), None, tmp_path / "state", "s1", "s1")
    (trial,) = reread.study.get_trials()
    assert trial.value == 0.75 and trial.user_attrs["run_id"] == "r1"
    assert set(trial.params) == {"lr", "hidden"}
    assert not (tmp_path / "state" / "s1.journal.lock").exists()


def test_the_study_reads_its_own_appends_from_memory_and_another_writer_s_from_the_file(tmp_path, monkeypatch):
    """Optuna reads the journal back after every append (six a trial) and before each look at
    the study: what this process appended is handed back from memory (issue 17: those reads
    were part of each trial's overhead). A log appended by anyone else is read from the file."""
    found = open_search(tmp_path)
    path = str(tmp_path / "state" / "s1.journal")
    reads: list[str] = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if str(file) == path and (args[:1] or [kwargs.get("mode", "r")])[0] == "rb":
            reads.append(path)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    for value in (0.9, 0.8):
        ask = found.ask()
        assert ask is not None
        found.tell(ask, "completed", value, {"run_id": f"r{value}"})
    assert reads == []
    assert [t.value for t in found.study.get_trials()] == [0.9, 0.8]
    outsider = JournalFileBackend(path)  # another process's writer: optuna-dashboard's note, say
    study_id = found.study._study_id
    outsider.append_logs([{"op_code": 2, "worker_id": "dashboard", "study_id": study_id,
                           "user_attr": {"note": "look at trial 1"}}])
    assert found.study.user_attrs == {"note": "look at trial 1"}
    assert reads == [path]
    ask = found.ask()
    assert ask is not None and ask.number == 2
    found.tell(ask, "completed", 0.7, {"run_id": "r3"})
    assert len(reads) == 1
    monkeypatch.undo()
    reread = search.Search.open(spec.load(tmp_path / "flags.yaml"), None, tmp_path / "state", "s1", "s1")
    assert [t.value for t in reread.study.get_trials()] == [0.9, 0.8, 0.7]
    assert reread.study.user_attrs == {"note": "look at trial 1"}
