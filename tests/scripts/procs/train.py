"""An unmodified training script in the style of many public ones: argparse flags with
underscores, TensorBoard started in the background, an HF-style output directory, progress
printed each epoch and the final metric printed last. Stdlib only; it knows nothing of sweep.

- ``--tensorboard``: how TensorBoard is started, as scripts do it: ``popen`` (a plain
  ``subprocess.Popen``: it stays in the script's process group), ``session`` (``Popen(...,
  start_new_session=True)``), ``nohup`` (``os.system("setsid nohup tensorboard ... &")``: a
  grandchild in its own session whose parent shell exits at once), ``all`` (the three), or
  ``none``. Nothing stops them: the script never waits for them.
- ``--output_dir`` (``$VARS`` expanded) with ``--overwrite_output_dir`` (deleted first, like
  Hugging Face's flag) and ``--save_strategy epoch`` (a checkpoint a epoch, the directory
  made on the first save, as Trainer does).
- ``--prompt``: a text the run is conditioned on (generation scripts take one), echoed in part.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import time


def str2bool(value):
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"Truthy value expected: got {value}")


parser = argparse.ArgumentParser(description="Toy trainer")
parser.add_argument("--learning_rate", type=float, default=1e-3)
parser.add_argument("--num_train_epochs", type=int, default=3)
parser.add_argument("--epoch_seconds", type=float, default=0.0, help="simulated work per epoch")
parser.add_argument("--logging_dir", default="tb_logs")
parser.add_argument("--tensorboard", default="none", choices=["none", "popen", "session", "nohup", "all"])
parser.add_argument("--output_dir", default="checkpoints")
parser.add_argument("--overwrite_output_dir", type=str2bool, nargs="?", const=True, default=False)
parser.add_argument("--save_strategy", default="no", choices=["no", "epoch"])
parser.add_argument("--prompt", default="")
args = parser.parse_args()

output_dir = os.path.expandvars(args.output_dir)
if os.path.isdir(output_dir) and os.listdir(output_dir) and not args.overwrite_output_dir:
    raise ValueError(f"Output directory ({output_dir}) already exists and is not empty. "
                     "Use --overwrite_output_dir to overcome.")
if args.overwrite_output_dir and os.path.isdir(output_dir):
    shutil.rmtree(output_dir)

tb = ["tensorboard", "--logdir", args.logging_dir]
if args.tensorboard in ("popen", "all"):
    subprocess.Popen(tb + ["--port", "6006"])
if args.tensorboard in ("session", "all"):
    subprocess.Popen(tb + ["--port", "6007"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
if args.tensorboard in ("nohup", "all"):
    os.system(f"setsid nohup {' '.join(tb)} --port 6008 > tensorboard.log 2>&1 &")
if args.prompt:
    print(f"prompt: {len(args.prompt)} characters, starting {args.prompt[:20]!r}", flush=True)

for epoch in range(args.num_train_epochs):
    time.sleep(args.epoch_seconds)
    loss = math.exp(-args.learning_rate * (epoch + 1))
    print(f"epoch {epoch}: train_loss={loss:.4f}", flush=True)
    if args.save_strategy == "epoch":
        folder = os.path.join(output_dir, f"checkpoint-{epoch + 1}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "trainer_state.json"), "w") as fh:
            json.dump({"epoch": epoch + 1, "loss": loss}, fh)

print(f"eval_accuracy: {1 - loss:.4f}")
