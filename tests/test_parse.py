"""Metrics read from what a script prints, the line splitter that feeds them, and the atomic
run-directory files they end up in."""

from __future__ import annotations

import json
import math
import os
import re
import tracemalloc

import pytest

from sweep import rundir
from sweep.parse import MAX_LINE, LineReader, parse_line

# ---------------------------------------------------------------- parse_line


@pytest.mark.parametrize("line,metrics,step", [
    ("eval_accuracy: 0.93", {"eval_accuracy": 0.93}, None),
    ("loss=0.21", {"loss": 0.21}, None),
    ("loss = 3e-2", {"loss": 0.03}, None),
    ("train_loss: 0.5 eval_loss: 0.61, eval_accuracy=0.875; lr=1e-3",
     {"train_loss": 0.5, "eval_loss": 0.61, "eval_accuracy": 0.875, "lr": 0.001}, None),
    ("epoch 3: loss=0.5 acc=.9", {"loss": 0.5, "acc": 0.9}, 3),
    ("Epoch 4/10 - loss: 0.25 - val_loss: 0.3", {"loss": 0.25, "val_loss": 0.3}, 4),
    ("step=7 loss=0.1", {"loss": 0.1}, 7),
    ("epoch: 2 acc: 0.5", {"acc": 0.5}, 2),
    ("step: 2.5 loss=1", {"loss": 1.0}, None),  # not a whole step: neither step nor metric
    ("accuracy: 93%", {"accuracy": 93.0}, None),
    ("Final loss: 0.25.", {"loss": 0.25}, None),  # a full stop ends the sentence, not the number
    ("delta=-4 gain=+2.5", {"delta": -4.0, "gain": 2.5}, None),
    ("version=1.2.3 x=1.2.y", {}, None),  # not numbers
    ("time 12:30:45", {}, None),
    ("no metrics here", {}, None),
    ("", {}, None),
])
def test_parse_line(line, metrics, step):
    assert parse_line(line) == (metrics, step)


def test_ansi_colours_are_stripped():
    line = "\x1b[1;32mtrain_loss\x1b[0m=\x1b[33m0.125\x1b[0m \x1b[2Kepoch \x1b[36m5\x1b[0m"
    assert parse_line(line) == ({"train_loss": 0.125}, 5)


def test_nan_and_inf_are_kept():
    found, _ = parse_line("loss: nan acc=inf gap=-inf z=Infinity w=NaN")
    assert math.isnan(found["loss"]) and math.isnan(found["w"])
    assert found["acc"] == math.inf and found["gap"] == -math.inf and found["z"] == math.inf


def test_flags_file_regexes_with_a_capture_group():
    regexes = [("acc", re.compile(r"Accuracy = ([0-9.]+)%")), ("ppl", re.compile(r"perplexity (\S+)")),
               ("opt", re.compile(r"best (\d+)?!"))]
    found, step = parse_line("Accuracy = 93.5% perplexity nan (epoch 2)", regexes)
    assert found["acc"] == 93.5 and math.isnan(found["ppl"]) and step == 2
    assert "opt" not in found
    # A match that is not a number, or an optional group that did not take part, is no value.
    assert parse_line("perplexity high best !", regexes) == ({}, None)


def test_regex_runs_on_the_uncoloured_line():
    found, _ = parse_line("\x1b[31mAccuracy = 88%\x1b[0m", [("acc", re.compile(r"^Accuracy = (\d+)%$"))])
    assert found["acc"] == 88.0


def test_last_value_on_a_line_wins():
    assert parse_line("loss=1 loss=2")[0] == {"loss": 2.0}


# ---------------------------------------------------------------- LineReader


def test_lines_split_across_chunk_boundaries():
    r = LineReader()
    assert r.feed(b"eval_acc") == []
    assert r.feed(b"uracy: 0.9") == []
    assert r.feed(b"3\nloss=0.2") == ["eval_accuracy: 0.93"]
    assert r.feed(b"1\n\nstep=2\nta") == ["loss=0.21", "", "step=2"]
    assert r.flush() == ["ta"]
    assert r.flush() == []


def test_multibyte_characters_split_across_chunks():
    data = "température=21.5 ✓\n".encode()
    r = LineReader()
    out = []
    for i in range(len(data)):
        out += r.feed(data[i:i + 1])
    assert out == ["température=21.5 ✓"]


def test_carriage_returns_keep_the_last_drawing_and_crlf_is_an_ending():
    r = LineReader()
    assert r.feed(b"10%\r50%\r100% loss=0.5\nacc: 0.9\r\nx\r\r\n") == ["100% loss=0.5", "acc: 0.9", "x"]


def test_invalid_utf8_is_replaced_not_fatal():
    assert LineReader().feed(b"loss=0.5 \xff\xfe\n") == ["loss=0.5 \ufffd\ufffd"]


def _junk(n: int) -> bytes:
    return os.urandom(n).replace(b"\n", b"x").replace(b"\r", b"y")


def test_an_over_long_line_of_junk_is_dropped_without_growing_memory():
    chunk = _junk(64 * 1024)
    r = LineReader()
    tracemalloc.start()
    try:
        out = []
        for _ in range(256):  # 16 MiB without a newline
            out += r.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out == []
    assert peak < 1 << 20, f"peak {peak} bytes while reading 16 MiB of junk"
    # The rest of the junk line is dropped too; the next line is read as usual.
    assert r.feed(b"junk-end\nloss=0.5\n") == ["loss=0.5"]
    assert r.flush() == []


def test_an_over_long_line_in_one_chunk_is_dropped():
    r = LineReader()
    assert r.feed(b"acc=0.1\n" + _junk(MAX_LINE + 1) + b"\nloss=0.5\n") == ["acc=0.1", "loss=0.5"]


def test_a_line_of_exactly_max_line_is_kept():
    line = b"a" * MAX_LINE
    assert LineReader().feed(line + b"\n") == [line.decode()]


def test_flush_drops_an_over_long_tail():
    r = LineReader()
    r.feed(b"ok\n" + _junk(MAX_LINE * 2))
    assert r.flush() == []


# ---------------------------------------------------------------- run-directory files


def test_write_json_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run.json"
    rundir.write_json(path, {"status": "running", "n": 1})
    rundir.write_json(path, {"status": "completed", "value": math.nan})
    assert os.listdir(tmp_path) == ["run.json"]
    text = path.read_text()
    assert text.endswith("\n")
    data = json.loads(text)
    assert data["status"] == "completed" and math.isnan(data["value"])


def test_write_json_that_fails_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    rundir.write_json(path, {"status": "running"})

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space left"):
        rundir.write_json(path, {"status": "completed"})
    assert os.listdir(tmp_path) == ["run.json"]
    assert json.loads(path.read_text()) == {"status": "running"}


def test_read_jsonl_skips_a_torn_last_line_and_junk(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rundir.append_jsonl(path, {"step": 1, "loss": 0.5})
    with open(path, "ab") as fh:
        fh.write(b"not json\n[1, 2]\n\xff\xfe\n")
    rundir.append_jsonl(path, {"step": 2, "loss": math.nan})
    with open(path, "ab") as fh:
        fh.write(b'{"step": 3, "lo')  # the writer died here
    records = list(rundir.read_jsonl(path))
    assert [r["step"] for r in records] == [1, 2]
    assert math.isnan(records[1]["loss"])


def test_read_jsonl_of_a_missing_file_is_empty(tmp_path):
    assert list(rundir.read_jsonl(tmp_path / "nope.jsonl")) == []
