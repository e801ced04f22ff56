"""A stdlib argparse training script for the reliability tests: it knows nothing about sweep.

It writes its pid to ``$SWEEP_RUN_DIR/trial.pid`` and its argv to ``argv.json`` there (so a
test can check that no trial outlives its sweep, and what reached it), then behaves as
``--mode`` says: a good trial, or one that crashes, hangs, ignores SIGTERM, floods its
output, prints binary junk, reports NaN/inf, reports nothing, or logs a 400-digit integer.
"""

import argparse
import json
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.5)
parser.add_argument("--a", type=int, default=1)
parser.add_argument("--b", default="p")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--text", default="")
parser.add_argument("--mode", default="ok")
args = parser.parse_args()

run_dir = os.environ.get("SWEEP_RUN_DIR", ".")


def save(name, data):
    tmp = os.path.join(run_dir, f".{name}.tmp")
    with open(tmp, "w") as fh:
        fh.write(data)
    os.replace(tmp, os.path.join(run_dir, name))


save("trial.pid", str(os.getpid()))
save("argv.json", json.dumps(sys.argv[1:]))


def on_term(signum, frame):
    print("got SIGTERM, ignoring it", flush=True)


mode = args.mode
if mode == "late_hang" and int(os.environ.get("SWEEP_TRIAL", "0")) >= 2:
    mode = "hang"
if mode == "stubborn":
    signal.signal(signal.SIGTERM, on_term)
    print("started", flush=True)
    for _ in range(600):
        time.sleep(0.1)
    sys.exit(0)
if mode == "hang":
    print("started", flush=True)
    time.sleep(600)
time.sleep(args.sleep)
value = 0.5 + args.x / 2 + args.a / 100

if mode == "crash":
    print("epoch 0 train_loss=0.9", flush=True)
    raise RuntimeError("boom: the model exploded")
if mode == "segv":
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSEGV)
if mode == "flood":  # a gigabyte, one MiB at a time, unless stopped first
    chunk = ("eval_accuracy: 0.1 " * 52428 + "\n").encode()
    for _ in range(1024):
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        time.sleep(0.05)
    sys.exit(0)
if mode == "junk":
    rnd = os.urandom(300_000)  # binary, with long stretches and no newline at all
    sys.stdout.buffer.write(rnd + b"\xff\xfe\x00\x1b[31m" + b"\x00" * 100_000 + b"\n")
    sys.stdout.buffer.write(b"\x1b[32meval_accuracy: 0.7\x1b[0m\n")
    sys.stdout.flush()
    sys.exit(0)
if mode in ("nan", "inf", "neginf"):
    print(f"eval_accuracy: {dict(nan='nan', inf='inf', neginf='-inf')[mode]}")
    print(f"eval_loss: {dict(nan='nan', inf='inf', neginf='-inf')[mode]}")
    sys.exit(0)
if mode == "silent":
    print("training finished; nothing to report")
    sys.exit(0)
if mode == "hugeint":  # through the sweep.log file: a number no float can hold, and junk
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as fh:
        fh.write("[" * 50_000 + "\n")
        fh.write(json.dumps({"step": 1, "eval_accuracy": 10 ** 400}) + "\n")
    sys.exit(0)
if mode == "secret":
    print("my secret is", os.environ.get("AWS_SECRET_ACCESS_KEY"))
print(f"eval_accuracy: {value}")
print(f"eval_loss: {1 - value}")
