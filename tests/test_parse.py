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
from sweep.parse import MAX_LINE, LineReader, Rules, parse_line

# ---------------------------------------------------------------- parse_line


@pytest.mark.parametrize("line,metrics,step", [
    ("eval_accuracy: 0.93", {"eval_accuracy": 0.93}, None),
    ("loss=0.21", {"loss": 0.21}, None),
    ("loss = 3e-2", {"loss": 0.03}, None),
    # lr is configuration here (no step on the line, not a metric's name): not read.
    ("train_loss: 0.5 eval_loss: 0.61, eval_accuracy=0.875; lr=1e-3",
     {"train_loss": 0.5, "eval_loss": 0.61, "eval_accuracy": 0.875}, None),
    ("epoch 3: loss=0.5 acc=.9", {"loss": 0.5, "acc": 0.9}, 3),
    ("Epoch 4/10 - loss: 0.25 - val_loss: 0.3", {"loss": 0.25, "val_loss": 0.3}, 4),
    ("step=7 loss=0.1", {"loss": 0.1}, 7),
    ("epoch: 2 acc: 0.5", {"acc": 0.5}, 2),
    ("step: 2.5 loss=1", {"loss": 1.0}, None),  # not a whole step: neither step nor metric
    ("accuracy: 93%", {}, None),  # a percentage is read only through a metrics: regex
    ("Final loss: 0.25.", {"Final_loss": 0.25}, None),  # a full stop ends the sentence, not the number
    ("reward=-4 score=+2.5", {"reward": -4.0, "score": 2.5}, None),
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
    found, _ = parse_line("loss: nan acc=inf reward=-inf score=Infinity f1=NaN")
    assert math.isnan(found["loss"]) and math.isnan(found["f1"])
    assert found["acc"] == math.inf and found["reward"] == -math.inf and found["score"] == math.inf


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


# ------------------------------------------------ real training scripts, as they print

# Each line exactly as the script prints it (format strings from the scripts' sources), and
# the metrics and step read from it with the default rules (no objective, no flags).
REAL_LINES = [
    # pytorch/examples word_language_model/main.py
    ("| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 45.12 | loss  7.63 | ppl  2064.42",
     {"lr": 20.0, "ms_batch": 45.12, "loss": 7.63, "ppl": 2064.42}, 1),
    ("| end of epoch   1 | time: 36.93s | valid loss  5.53 | valid ppl   252.86",
     {"valid_loss": 5.53, "valid_ppl": 252.86}, 1),
    ("| End of training | test loss  5.43 | test ppl   228.52", {"test_loss": 5.43, "test_ppl": 228.52}, None),
    # pytorch/examples mnist/main.py
    ("Train Epoch: 1 [0/60000 (0%)]\tLoss: 2.295007", {"Loss": 2.295007}, 1),
    ("Test set: Average loss: 0.0001, Accuracy: 9616/10000 (96%)", {"Average_loss": 0.0001}, None),
    # karpathy/nanoGPT train.py
    ("iter 100: loss 2.3456, time 12.34ms, mfu 1.23%", {"loss": 2.3456}, 100),
    ("step 500: train loss 1.2268, val loss 1.5113", {"train_loss": 1.2268, "val_loss": 1.5113}, 500),
    # karpathy/makemore makemore.py
    ("step 0 | loss 3.3124 | step time 12.40ms", {"loss": 3.3124}, 0),
    ("step 500 train loss: 2.31 test loss: 2.40", {"train_loss": 2.31, "test_loss": 2.4}, 500),
    # karpathy/minGPT projects/adder and chargpt
    ("test final score: 146/500 = 29.20% correct", {}, None),
    ("iter_dt 7797.46ms; iter 2: train loss 2.60938", {"train_loss": 2.60938}, 2),
    # tqdm with a postfix, and a Lightning progress bar (its v_num is no metric)
    ("eval: 100%|██████████| 10/10 [00:01<00:00, 9.50it/s, loss=0.21, eval_accuracy=0.93]",
     {"loss": 0.21, "eval_accuracy": 0.93}, None),
    (("Epoch 0: 100%|██████████| 938/938 [00:10<00:00, 90.12it/s, v_num=0, train_loss=0.251, "
      "val_loss=0.198, val_acc=0.942]"), {"train_loss": 0.251, "val_loss": 0.198, "val_acc": 0.942}, 0),
    # Lightning's trainer.test() table (rich) and a ModelCheckpoint message
    ("│         test_acc          │    0.9120000004768372     │", {"test_acc": 0.9120000004768372}, None),
    (("Epoch 3, global step 1000: 'val_loss' reached 0.19800 (best 0.19800), saving model to "
      "'/tmp/lightning_logs/version_0/checkpoints/epoch=3-step=1000.ckpt' as top 1"), {}, 3),
    # HuggingFace Trainer's log dicts (epoch is fractional mid-epoch: no step then)
    ("{'loss': 0.5132, 'grad_norm': 3.21, 'learning_rate': 4e-05, 'epoch': 0.33}",
     {"loss": 0.5132, "grad_norm": 3.21, "learning_rate": 4e-05}, None),
    (("{'eval_loss': 0.3012, 'eval_accuracy': 0.9105, 'eval_runtime': 1.2345, "
      "'eval_samples_per_second': 810.1, 'eval_steps_per_second': 101.3, 'epoch': 1.0}"),
     {"eval_loss": 0.3012, "eval_accuracy": 0.9105, "eval_runtime": 1.2345,
      "eval_samples_per_second": 810.1, "eval_steps_per_second": 101.3}, 1),
    (("{'train_runtime': 60.1, 'train_samples_per_second': 99.8, 'train_steps_per_second': 12.5, "
      "'train_loss': 0.4123, 'epoch': 3.0}"),
     {"train_runtime": 60.1, "train_samples_per_second": 99.8, "train_steps_per_second": 12.5,
      "train_loss": 0.4123}, 3),
    # timm train.py / validate.py
    (("Train: 3 [ 100/1251 (  8%)]  Loss: 6.91 (6.93)  Time: 0.310s, 3300.12/s  (0.315s, 3250.00/s)  "
      "LR: 1.000e-03  Data: 0.012 (0.015)"), {"Loss": 6.91}, None),
    (("Test: [  48/48]  Time: 0.120 (0.150)  Loss:  0.8954 (0.9012)  Acc@1: 78.1250 (77.1200)  "
      "Acc@5: 93.7500 (93.5000)"), {"Loss": 0.8954, "Acc_1": 78.125, "Acc_5": 93.75}, None),
    # Keras-style, and the common "Epoch [1/10], Step [100/600]" tutorial format
    (("1875/1875 [==============================] - 3s 2ms/step - loss: 0.2983 - accuracy: 0.9142 - "
      "val_loss: 0.1432 - val_accuracy: 0.9571"),
     {"loss": 0.2983, "accuracy": 0.9142, "val_loss": 0.1432, "val_accuracy": 0.9571}, None),
    ("Epoch [1/10], Step [100/600], Loss: 0.2231", {"Loss": 0.2231}, 1),
    ("Epoch 00001 | Step 00020 | Loss 2.6650 | Train Acc 0.3400 | Speed (samples/sec) 43672.9658 | GPU 401.2 MB",
     {"Loss": 2.665, "Train_Acc": 0.34}, 1),
    ("train Loss: 2.2328 Top-1 Acc: 37.1459 Top-5 Acc: 71.7266",
     {"train_Loss": 2.2328, "Top_1_Acc": 37.1459, "Top_5_Acc": 71.7266}, None),
    # scripts that print a tensor or a numpy scalar
    ("loss: tensor(0.5000, grad_fn=<NllLossBackward0>)", {"loss": 0.5}, None),
    ("{'loss': np.float64(0.51), 'acc': np.float64(0.9)}", {"loss": 0.51, "acc": 0.9}, None),
]


@pytest.mark.parametrize("line,metrics,step", REAL_LINES)
def test_real_training_script_lines(line, metrics, step):
    assert parse_line(line) == (metrics, step)


@pytest.mark.parametrize("line", [
    "test final score: 146/500 = 29.20% correct",  # a ratio, then a percentage
    "Accuracy: 9616/10000 (96%)",
    "mfu 1.23%", "accuracy: 93 %",
    "time 12.34ms", "step time: 2.1s", "loss_time: 2.1 s", "Acc 9.32%",  # units, glued or not
    "GPU memory: 401.2 MB", "throughput: 9.5it/s", "score: 12 it/s",
    "score: 1,234", "eval_accuracy: 0,93", "loss: 0,5, acc: 0,9",  # digits after a comma
    "score: 12 345", "loss: 0.5 0.6",  # more digits
    "score: 12:30", "elapsed loss 00:01:23",
])
def test_a_number_followed_by_a_ratio_unit_or_more_digits_is_no_value(line):
    assert parse_line(line)[0] == {}


def test_a_regex_reads_what_the_default_rules_leave():
    line = "test final score: 146/500 = 29.20% correct"
    rules = Rules(regexes=[("score", r"final score: \d+/\d+ = ([0-9.]+)%")])
    assert parse_line(line, rules) == ({"score": 29.2}, None)


def test_multi_word_names_are_joined_as_printed():
    assert parse_line("train loss: 2.31 test loss: 2.40")[0] == {"train_loss": 2.31, "test_loss": 2.4}
    assert parse_line("| valid loss  5.87 | valid ppl   355.21")[0] == {"valid_loss": 5.87, "valid_ppl": 355.21}
    # Up to three words: the last three before the number.
    assert parse_line("Epoch 1 done. Saving model, best val loss: 0.45")[0] == {"best_val_loss": 0.45}
    assert parse_line("val/loss=0.3 train/acc=0.9")[0] == {"val_loss": 0.3, "train_acc": 0.9}


def test_a_name_without_colon_must_be_a_whole_field():
    # Prose is not a pair: "has 26724 characters" or "reached 0.198 (best 0.198)".
    assert parse_line("data has 26724 characters, 17 unique.") == ({}, None)
    assert parse_line("loss 0.5 computed over 3 batches")[0] == {}
    # A field ends at a separator, two spaces, a tab, the line's end, or where a pair begins.
    assert parse_line("loss 0.5 acc 0.9")[0] == {"loss": 0.5, "acc": 0.9}
    assert parse_line("loss 0.5\tacc 0.9  f1 0.8")[0] == {"loss": 0.5, "acc": 0.9, "f1": 0.8}


# ------------------------------------------------ echoed configuration is not a metric

CONFIG_ECHOES = [
    # minGPT's CfgNode dump (chargpt.py, adder.py)
    "system:", "    seed: 3407", "    work_dir: ./out/chargpt", "model:", "    model_type: gpt-nano",
    "    vocab_size: 27", "    embd_pdrop: 0.1", "trainer:", "    learning_rate: 0.0005",
    "    betas: (0.9, 0.95)", "    weight_decay: 0.1", "    grad_norm_clip: 1.0",
    "data has 26724 characters, 17 unique.", "number of parameters: 0.09M",
    # makemore
    "number of examples in the dataset: 32033", "max word length: 15",
    "number of unique characters in the vocabulary: 27", "vocab_size=27, block_size=16",
    "dataset=32033", "model #params: 204544",
    # argparse Namespace dumps (word_language_model's fork above prints one), dataclass reprs
    ("Namespace(annealing_loss_improvement_pct=1.0, batch_size=20, bptt=35, clip=0.25, cuda=True, "
     "data='./data/wikitext-2', dropout=0.2, emsize=200, epochs=12, log_interval=200, lr=20, "
     "model='LSTM', nhead=2, nhid=200, nlayers=2, seed=1111, tied=False)"),
    "GPTConfig(block_size=1024, vocab_size=50304, n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True)",
    # config dicts, nanoGPT's configurator, HF's run banner, Lightning's banner
    "{'lr': 0.001, 'batch_size': 32, 'epochs': 10, 'label_smoothing': 0.1, 'loss_weight': 0.5}",
    "Overriding: max_iters = 2000", "Overriding: learning_rate = 0.0003",
    "  Num examples = 1000", "  Num Epochs = 3", "  Total optimization steps = 375",
    "  Number of trainable parameters = 66,955,010",
    "GPU available: False (cuda), used: False", "HPU available: False, using: 0 HPUs",
    "Total Parameters: 124,475,904",
    # a command line echoed back
    "python train.py --lr=0.1 --batch_size=32 --loss_scale=128",
    # config keys that contain a metric's word but say they are settings
    "target_accuracy: 0.95", "loss_scale: 128", "kl_weight: 0.1", "score_threshold: 0.5",
]


@pytest.mark.parametrize("line", CONFIG_ECHOES)
def test_echoed_configuration_is_not_a_metric(line):
    assert parse_line(line)[0] == {}


def test_a_flag_name_is_never_a_metric_even_on_a_step_line():
    rules = Rules("val_loss", flags=["learning-rate", "trainer.weight_decay", "lr", "loss"])
    line = "epoch 2: learning_rate=0.01 weight_decay=0.1 LR=0.3 grad_norm=1.5 loss=0.4 val_loss=0.5"
    assert parse_line(line, rules) == ({"grad_norm": 1.5, "val_loss": 0.5}, 2)


def test_the_objective_is_always_read_under_the_flags_files_spelling():
    # Not a metric's word, no step on the line: still read, because the sweep optimizes it.
    assert parse_line("my_custom_thing: 3.5")[0] == {}
    assert parse_line("my_custom_thing: 3.5", Rules("my_custom_thing"))[0] == {"my_custom_thing": 3.5}
    # Matched ignoring case, spaces and separators.
    assert parse_line("Train Loss: 2.3, Eval-Acc: 0.9", Rules(["train_loss", "eval_acc"]))[0] == \
        {"train_loss": 2.3, "eval_acc": 0.9}
    # Even when a flag has the same name: the objective wins.
    assert parse_line("dice=0.7", Rules("dice", flags=["dice"]))[0] == {"dice": 0.7}
    # But never from inside an object's printout.
    assert parse_line("Namespace(my_custom_thing=3.5)", Rules("my_custom_thing"))[0] == {}


def test_with_metrics_regexes_only_they_are_read():
    rules = Rules("acc", regexes=[("acc", r"Accuracy: (\d+)/")])
    line = "epoch 3: loss=0.5 eval_accuracy=0.9 Accuracy: 9616/10000 (96%)"
    assert parse_line(line, rules) == ({"acc": 9616.0}, 3)  # the step is still read
    # The older call with a list of compiled regexes means the same.
    assert parse_line(line, [("acc", re.compile(r"Accuracy: (\d+)/"))]) == ({"acc": 9616.0}, 3)
    # A switch can keep the default rules beside the regexes.
    both = Rules("acc", regexes=[("acc", r"Accuracy: (\d+)/")], only_regexes=False)
    assert parse_line(line, both)[0] == {"loss": 0.5, "eval_accuracy": 0.9, "acc": 9616.0}


def test_rules_from_a_flags_file(tmp_path):
    from sweep import spec

    (tmp_path / "train.py").write_text("")
    s = spec.parse({"script": "train.py", "metric": "valid_ppl",
                    "flags": {"lr": [1, 20], "seed": 3, "n_layer": [2, 4]}}, tmp_path / "f.yaml")
    rules = Rules.from_spec(s)
    assert rules.objectives == ("valid_ppl",) and not rules.only_regexes
    lines = ["Namespace(lr=20, seed=3, n_layer=4)", "seed: 3", "n_layer: 4",
             "| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 45.12 | loss  7.63 | ppl  2064.42",
             "| end of epoch   1 | time: 36.93s | valid loss  5.53 | valid ppl   252.86"]
    assert [parse_line(line, rules) for line in lines] == [
        ({}, None), ({}, None), ({}, None),
        ({"ms_batch": 45.12, "loss": 7.63, "ppl": 2064.42}, 1),
        ({"valid_loss": 5.53, "valid_ppl": 252.86}, 1)]
    s = spec.parse({"script": "train.py", "flags": {"lr": [1]}, "metrics": {"acc": r"acc (\S+)"}},
                   tmp_path / "f.yaml")
    assert Rules.from_spec(s).only_regexes


def test_a_script_that_prints_its_config_then_trains():
    """A whole run's output, as one of the issue's scripts prints it: config first."""
    output = """\
Namespace(batch_size=64, data='../data/names.txt', epochs=3, learning_rate=0.001, seed=3407)
seed: 3407
vocab_size: 27
dataset=32033
number of examples in the dataset: 32033
epoch 1 train loss: 2.31 test loss: 2.40
epoch 2 train loss: 2.12 test loss: 2.25
epoch 3 train loss: 2.01 test loss: 2.19
"""
    rules = Rules("test_loss", flags=["batch_size", "data", "epochs", "learning_rate", "seed"])
    last: dict[str, float] = {}
    for line in output.splitlines():
        last.update(parse_line(line, rules)[0])
    assert last == {"train_loss": 2.01, "test_loss": 2.19}


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


def _tqdm_stream(n: int) -> bytes:
    """What tqdm writes for a bar of ``n`` steps with a postfix: one ``\r`` redraw per step, no
    newline until it closes (this one never closes: the script was killed, or ended)."""
    out = []
    for i in range(1, n + 1):
        filled = 10 * i // n
        bar = "█" * filled + " " * (10 - filled)
        out.append(f"\reval: {100 * i // n:3d}%|{bar}| {i}/{n} [00:{i // 1000:02d}<00:00, 2450.13it/s, "
                   f"loss={1 - i / n / 2:.4f}, eval_accuracy={0.5 + i / n / 2:.4f}]")
    return "".join(out).encode()


def _read_all(stream: bytes, sizes: tuple[int, ...] = (1, 7, 4096, 65536, 13)) -> list[str]:
    """Feed ``stream`` in uneven chunks (splitting multi-byte characters), then flush."""
    r = LineReader()
    lines, pos, k = [], 0, 0
    while pos < len(stream):
        size = sizes[k % len(sizes)]
        lines += r.feed(stream[pos:pos + size])
        pos, k = pos + size, k + 1
    return lines + r.flush()


def test_a_tqdm_bar_redrawn_5000_times_without_a_newline_yields_its_last_value():
    stream = _tqdm_stream(5000)
    assert len(stream) > 4 * MAX_LINE  # far longer than a line may be: only redraws keep it
    tracemalloc.start()
    try:
        lines = _read_all(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 1
    assert parse_line(lines[0]) == ({"loss": 0.5, "eval_accuracy": 1.0}, None)
    assert peak < 2 * len(stream) // 3, f"peak {peak} bytes for a {len(stream)}-byte stream"
    # The same stream closed as tqdm closes it: a last redraw and a newline.
    closed = stream + b"\reval: 100%|" + "█".encode() * 10 + b"| 5000/5000 [00:02<00:00, 2400.00it/s, " \
        b"loss=0.5000, eval_accuracy=0.9300]\n" + b"done\n"
    lines = _read_all(closed)
    assert lines[-1] == "done" and parse_line(lines[-2])[0] == {"loss": 0.5, "eval_accuracy": 0.93}


def test_a_bar_cleared_at_the_end_keeps_its_last_drawing():
    # tqdm(leave=False) blanks the line when it closes: the last drawing still counts.
    stream = b"\r 67%|######6   | 2/3 [00:00<00:00, 17861.52it/s, loss=0.4]" \
             b"\r100%|##########| 3/3 [00:00<00:00, 15221.94it/s, loss=0.3]\r" + b" " * 58 + b"\r"
    assert [parse_line(line)[0] for line in _read_all(stream)] == [{"loss": 0.3}]
    assert _read_all(stream + b"eval_loss: 0.2\n") == ["eval_loss: 0.2"]


def test_real_tqdm_output_through_the_reader():
    tqdm = pytest.importorskip("tqdm")
    import io

    for leave in (True, False):
        out = io.StringIO()
        bar = tqdm.tqdm(range(3000), file=out, mininterval=0, miniters=1, desc="eval", leave=leave)
        for i in bar:
            bar.set_postfix(loss=f"{1 - i / 3000:.4f}", eval_accuracy=f"{i / 3000:.4f}")
        bar.close()
        lines = _read_all(out.getvalue().encode())
        assert parse_line(lines[-1])[0] == {"loss": 0.0003, "eval_accuracy": 0.9997}, lines[-1]


def test_a_20_mb_burst_then_the_final_metric_line_with_bounded_memory():
    r = LineReader()
    text = b"".join(b"step %d | loss %.4f | tokens/s 123456.7 | " % (i, 1 / (i + 1)) + b"x" * 150 + b"\n"
                    for i in range(300))
    chunk = (text * (64 * 1024 // len(text) + 1))[:64 * 1024]  # lines cut across chunk ends
    junk = _junk(64 * 1024)
    tracemalloc.start()
    try:
        last = None
        for _ in range(160):  # 10 MiB of ordinary lines
            lines = r.feed(chunk)
            last = lines[-1] if lines else last
        for _ in range(160):  # then 10 MiB on one line without a newline
            assert r.feed(junk) == []
        lines = r.feed(b"\n| end of training | test loss  5.43 | eval_accuracy: 0.93")
        lines += r.flush()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parse_line(last)[0]["loss"] > 0
    assert lines == ["| end of training | test loss  5.43 | eval_accuracy: 0.93"]
    assert parse_line(lines[-1])[0] == {"test_loss": 5.43, "eval_accuracy": 0.93}
    assert peak < 1 << 20, f"peak {peak} bytes while reading 20 MiB"


def test_junk_then_a_redraw_is_read_and_a_junk_line_is_dropped():
    r = LineReader()
    assert r.feed(_junk(MAX_LINE + 10) + b"\rloss=0.5\n") == ["loss=0.5"]
    assert r.feed(b"loss=0.1\r" + _junk(MAX_LINE + 10) + b"\nacc=0.9\n") == ["acc=0.9"]


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


@pytest.mark.parametrize("line", ["Loss is nan, stopping training", "the loss is 0.5",
                                  "accuracy of the model: 0.9"])
def test_prose_names_nothing(line):
    """timm's ``sys.exit("Loss is nan, stopping training")`` is no metric ``Loss_is``."""
    assert parse_line(line, Rules("eval_accuracy")) == ({}, None)
