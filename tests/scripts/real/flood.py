"""Prints a burst of output (or calls sweep.log many times), then its final metric: the value
printed last must be the one recorded."""

import argparse
import sys

import sweep

parser = argparse.ArgumentParser()
parser.add_argument("--mb", type=int, default=0)
parser.add_argument("--logs", type=int, default=0)
args = parser.parse_args()

line = "x" * 1023 + "\n"
chunk = line * 1024
for _ in range(args.mb):
    sys.stdout.write(chunk)
for i in range(args.logs):
    sweep.log(step=i, eval_accuracy=0.001)
if args.logs:
    sweep.log(step=args.logs, eval_accuracy=0.777)
else:
    print("eval_accuracy: 0.777", flush=True)
