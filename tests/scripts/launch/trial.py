"""A trial script for the launcher tests: it records what it was given and does what its
plan says.

``--plan`` holds one entry a trial, separated by commas (entry number ``SWEEP_TRIAL``); an
entry is actions joined by ``+``. With ``SWEEP_TEST_PROBES`` naming a folder, the trial
writes ``<trial>.json`` there: its argv, ``__name__``, cwd, environment, pids, whether torch
was already imported, the parent's (and grandparent's) thread count, random draws, and
anything its actions add. Prints ``eval_accuracy: X`` last unless an action ends it first.
"""

import argparse
import gc
import json
import os
import random
import sys
import time

RECORD = {
    "name": __name__,
    "file": __file__,
    "argv": list(sys.argv),
    "torch_preloaded": "torch" in sys.modules,
    "gc_frozen": gc.get_freeze_count(),  # objects the process had before the script: not its collector's
    "start": time.time(),
}

parser = argparse.ArgumentParser()
parser.add_argument("--plan", default="ok")
parser.add_argument("--x", type=float, default=0.5)
args = parser.parse_args()

PROBES = os.environ.get("SWEEP_TEST_PROBES")
TRIAL = int(os.environ.get("SWEEP_TRIAL", "0"))
entries = args.plan.split(",")
ACTIONS = entries[TRIAL % len(entries)].split("+")
ENV_KEYS = ("SWEEP_RUN_DIR", "SWEEP_FLAGS", "SWEEP_TRIAL", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "CUDA_VISIBLE_DEVICES", "SWEEP_TEST_LEAK")


def status_of(pid):
    """``{"Threads": ..., "PPid": ..., "cmdline": ...}`` of a process, from /proc."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("Threads", "PPid"):
                    out[key] = int(value.split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            out["cmdline"] = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        pass
    return out


def save():
    if not PROBES:
        return
    tmp = os.path.join(PROBES, f".{TRIAL}.tmp")
    with open(tmp, "w") as fh:
        json.dump(RECORD, fh)
    os.replace(tmp, os.path.join(PROBES, f"{TRIAL}.json"))


def mark(kind):
    """An empty marker file in the probe folder: start-N / end-N, named with our GPU."""
    if PROBES:
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "none") or "empty"
        open(os.path.join(PROBES, f"{kind}-{TRIAL}-{gpu}"), "w").close()


def markers(kind):
    return sorted(n for n in os.listdir(PROBES) if n.startswith(kind + "-")) if PROBES else []


RECORD.update(
    trial=TRIAL, actions=ACTIONS, cwd=os.getcwd(), pid=os.getpid(), ppid=os.getppid(),
    env={k: os.environ.get(k) for k in ENV_KEYS}, cores=len(os.sched_getaffinity(0)),
    parent=status_of(os.getppid()), random=random.random(),
)
RECORD["grandparent"] = status_of(RECORD["parent"].get("PPid", 0)) if RECORD["parent"] else {}
# What earlier trials may have left in shared modules (none of it must be seen).
import sweep  # noqa: E402  (torch-free)

RECORD["leaks"] = {
    "json": getattr(json, "sweep_test_leak", None),
    "sweep": getattr(sweep, "sweep_test_leak", None),
    "sys.modules": "sweep_test_leak" in sys.modules,
    "sys.path": any("sweep-test-leak" in p for p in sys.path),
}

if "torch" in ACTIONS:
    import numpy
    import torch

    # Before this script touches CUDA: the warm server must not have initialised it.
    RECORD["cuda_initialized"] = torch.cuda.is_initialized()
    RECORD["torch_threads"] = torch.get_num_threads()
    RECORD["numpy"] = float(numpy.random.rand())
    RECORD["torch"] = float(torch.rand(1).item())
    RECORD["dtype"] = str(torch.get_default_dtype())
    RECORD["leaks"]["torch"] = getattr(torch, "sweep_test_leak", None)

mark("start")
save()

if "pollute" in ACTIONS:
    json.sweep_test_leak = TRIAL
    sweep.sweep_test_leak = TRIAL
    sys.modules["sweep_test_leak"] = sweep
    sys.path.insert(0, "/sweep-test-leak")
    os.environ["SWEEP_TEST_LEAK"] = "1"
    random.seed(0)
    seeded = {"random": random.random()}
    if "torch" in ACTIONS:
        torch.sweep_test_leak = TRIAL
        torch.set_num_threads(7)
        torch.set_default_dtype(torch.float64)
        numpy.random.seed(0)
        torch.manual_seed(0)
        seeded.update(numpy=float(numpy.random.rand()), torch=float(torch.rand(1).item()))
    RECORD["seeded"] = seeded
    os.chdir("/")
    save()

for action in ACTIONS:
    if action.startswith("wait="):  # a barrier: wait (at most 60 s) for N trials to have started
        want, deadline = int(action[5:]), time.time() + 60
        while len(markers("start")) < want and time.time() < deadline:
            time.sleep(0.02)
        RECORD["met"] = len(markers("start")) >= want
    elif action.startswith("sleep="):
        time.sleep(float(action[6:]))

if "running" in ACTIONS:  # the trials running now (started, not ended), with their GPUs
    ended = {n.split("-")[1] for n in markers("end")}
    RECORD["running"] = [n for n in markers("start") if n.split("-")[1] not in ended]

RECORD["end"] = time.time()
save()
mark("end")

if "segv" in ACTIONS:
    import ctypes

    ctypes.string_at(0)
if "hang" in ACTIONS:
    import subprocess

    child = subprocess.Popen(["sleep", "300"])
    RECORD["grandchild"] = child.pid
    save()
    time.sleep(300)
if "raise" in ACTIONS:
    raise RuntimeError(f"boom in trial {TRIAL}")
if "atexit" in ACTIONS:
    # As in a fresh interpreter: non-daemon threads are joined, then exit handlers run.
    import atexit
    import threading

    def late():
        time.sleep(0.3)
        print("thread_done: 1", flush=True)

    class Resource:
        pass

    import weakref

    kept = Resource()  # a module global: alive until exit, so only the exit pass finalizes it
    weakref.finalize(kept, print, "finalized: 1", flush=True)
    threading.Thread(target=late).start()
    atexit.register(lambda: print(f"eval_accuracy: {args.x}", flush=True))
else:
    print(f"eval_accuracy: {args.x}", flush=True)
    if "exit0" in ACTIONS:
        sys.exit(0)
        print("never")
    if "exit3" in ACTIONS:
        sys.exit(3)
