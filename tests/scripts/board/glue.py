"""Fine-tuning on a GLUE task, in the style of HuggingFace's examples/pytorch/text-classification/
run_glue.py: HfArgumentParser's underscore flags, the Trainer's log dictionaries and its
"***** eval metrics *****" block. Stdlib only: the model is a formula of the flags, so a trial
takes milliseconds and every flag moves the metrics.
"""

import argparse
import json
import math
import os

parser = argparse.ArgumentParser()
parser.add_argument("--model_name_or_path", default="bert-base-cased")
parser.add_argument("--task_name", default="mrpc")
parser.add_argument("--output_dir", default="out")
parser.add_argument("--learning_rate", type=float, default=5e-5)
parser.add_argument("--weight_decay", type=float, default=0.0)
parser.add_argument("--warmup_ratio", type=float, default=0.0)
parser.add_argument("--num_train_epochs", type=float, default=3.0)
parser.add_argument("--per_device_train_batch_size", type=int, default=8)
parser.add_argument("--max_seq_length", type=int, default=128)
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()

print("***** Running training *****")
print("  Num examples = 3668")
print(f"  Num Epochs = {args.num_train_epochs:g}")
print(f"  Instantaneous batch size per device = {args.per_device_train_batch_size}")

# How far the learning rate is from a good one, on a log scale: the whole story of the run.
off = abs(math.log10(args.learning_rate / 3e-5))
for epoch in range(1, int(args.num_train_epochs) + 1):
    loss = 0.69 * math.exp(-epoch * (1 - off / 3)) + off / 10 + args.weight_decay
    print({"loss": round(loss, 4), "grad_norm": round(4.2 / epoch, 4),
           "learning_rate": args.learning_rate * (1 - epoch / (args.num_train_epochs + 1)), "epoch": float(epoch)})

accuracy = 0.86 - off / 8 - args.weight_decay / 3 + args.warmup_ratio / 20 + (args.seed % 7) / 1000
metrics = {"eval_loss": 0.3 + off / 5 + args.weight_decay, "eval_accuracy": accuracy,
           "eval_f1": accuracy + 0.04, "eval_runtime": 1.23, "eval_samples": 408, "epoch": args.num_train_epochs}
print("***** eval metrics *****")
shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
shown["eval_runtime"] = "0:00:01.23"  # the Trainer writes a duration as a timedelta
width = max(len(k) for k in shown)
for key in sorted(shown):
    print(f"  {key: <{width}} = {shown[key]:>9}")
os.makedirs(args.output_dir, exist_ok=True)
with open(os.path.join(args.output_dir, "eval_results.json"), "w") as f:
    json.dump(metrics, f, indent=4, sort_keys=True)
