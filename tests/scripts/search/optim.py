"""An unmodified argparse training script in the style of pytorch/examples: the optimizer is
picked by name and ``--momentum``/``--nesterov-dampening``/``--beta1`` belong to some
optimizers only. Like torch.optim (``SGD(momentum=..)`` rejects nesterov without momentum),
it refuses a setting that does not apply, so a sweep must leave those flags out. The
"accuracy" is a smooth function of the flags: stdlib only, it runs in milliseconds."""

import argparse
import json
import math
import os

parser = argparse.ArgumentParser(description="toy optimizer comparison")
parser.add_argument("--optimizer", default="sgd", choices=["sgd", "momentum", "nesterov", "adam"],
                    help="optimizer (default: sgd)")
parser.add_argument("--lr", type=float, default=0.01, metavar="LR", help="learning rate (default: 0.01)")
parser.add_argument("--momentum", type=float, default=None, metavar="M",
                    help="SGD momentum, for momentum and nesterov only (default: 0.9)")
parser.add_argument("--dampening", type=float, default=None, metavar="D",
                    help="momentum dampening, only with --momentum above 0.8 (default: 0)")
parser.add_argument("--beta1", type=float, default=None, help="Adam beta1, for adam only (default: 0.9)")
parser.add_argument("--epochs", type=int, default=2, metavar="N", help="epochs to train (default: 2)")
args = parser.parse_args()

if args.momentum is not None and args.optimizer not in ("momentum", "nesterov"):
    parser.error(f"--momentum does not apply to {args.optimizer}")
if args.dampening is not None and (args.momentum is None or args.momentum <= 0.8):
    parser.error("--dampening needs --momentum above 0.8")
if args.beta1 is not None and args.optimizer != "adam":
    parser.error(f"--beta1 does not apply to {args.optimizer}")

momentum = 0.9 if args.momentum is None and args.optimizer in ("momentum", "nesterov") else (args.momentum or 0.0)
accuracy = 0.9 - 0.02 * (math.log10(args.lr) + 2) ** 2 + 0.05 * momentum
if args.optimizer == "adam":
    accuracy += 0.03 - abs((args.beta1 or 0.9) - 0.85)
for epoch in range(1, args.epochs + 1):
    print(f"Train Epoch: {epoch}\tLoss: {1 - accuracy * epoch / args.epochs:.6f}")
print(f"eval_accuracy: {accuracy:.6f}")
with open(os.path.join(os.environ.get("SWEEP_RUN_DIR", "."), "config.json"), "w") as fh:
    json.dump(vars(args), fh)
