"""An unmodified argparse training script: stdlib only, it knows nothing about sweep.

It prints its metrics (``eval_accuracy: X``) the way many scripts do. For the tests it also
writes a probe record (argv, environment, working directory, pid, times) to the directory
named by ``SWEEP_TEST_PROBES`` when that variable is set, and behaves badly on request
(``--mode``): crash, hang, print nothing, print NaN, exit with a status, colour its output.
"""

import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--dropout", type=float, default=0.1)
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--name", default="plain")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--hidden", type=int, default=16)
parser.add_argument("--wide", action="store_true")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--mode", default="ok",
                    choices=["ok", "crash", "silent", "nan", "inf", "hang", "exit3", "colour", "regex"])
args = parser.parse_args()

ENV_KEYS = ("SWEEP_RUN_DIR", "SWEEP_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
probes = os.environ.get("SWEEP_TEST_PROBES")
record = {
    "argv": sys.argv[1:],
    "env": {k: os.environ.get(k) for k in ENV_KEYS},
    "cwd": os.getcwd(),
    "pid": os.getpid(),
    "start": time.time(),
    "preloaded": {m: m in sys.modules for m in ("torch", "numpy")},  # this script imports neither
}


def save_probe():
    if not probes:
        return
    name = os.path.basename(os.environ.get("SWEEP_RUN_DIR") or str(os.getpid()))
    tmp = os.path.join(probes, f".{name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(record, fh)
    os.replace(tmp, os.path.join(probes, f"{name}.json"))


save_probe()

# Every trial writes the same relative file name: parallel trials must not collide.
mine = f"{args.name}|{args.dropout}|{os.getpid()}"
with open("out.txt", "w") as fh:
    fh.write(mine)
if args.mode == "hang":
    time.sleep(120)
time.sleep(args.sleep)
with open("out.txt") as fh:
    record["out_ok"] = fh.read() == mine
# A data file next to the flags file, read by a relative path.
if os.path.exists("data.txt"):
    with open("data.txt") as fh:
        record["data"] = fh.read().strip()
record["end"] = time.time()
save_probe()

accuracy = 0.5 + args.dropout / 2
if args.mode == "crash":
    print("epoch 0 train_loss=0.9", flush=True)
    raise RuntimeError(f"boom at dropout {args.dropout}")
if args.mode == "exit3":
    print("giving up", file=sys.stderr)
    sys.exit(3)
if args.mode == "silent":
    print("training finished; nothing to report")
    sys.exit(0)
if args.mode == "nan":
    print("eval_accuracy: nan")
    sys.exit(0)
if args.mode == "inf":
    print("eval_accuracy: inf")
    sys.exit(0)
if args.mode == "regex":
    print(f"final score is {accuracy}% (of the best)")
    sys.exit(0)
for epoch in range(args.epochs):
    # Earlier values are lower: the last one printed must win.
    value = accuracy * (epoch + 1) / args.epochs
    if args.mode == "colour":
        print(f"\x1b[1m\x1b[32meval_accuracy: {value}\x1b[0m  \x1b[33mloss=\x1b[0m{1 - value}")
    else:
        print(f"epoch {epoch} eval_accuracy: {value} eval_loss={1 - value}")
