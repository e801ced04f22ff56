"""A trainer in the style of timm's train.py: a small parser for a YAML config file is parsed
first (parse_known_args), then the main parser, whose defaults the config may change. Dashed
flags, store_true switches. Stdlib only; "training" writes a checkpoint beside the script."""

import argparse
import os

config_parser = parser = argparse.ArgumentParser(description="Training Config", add_help=False)
parser.add_argument("-c", "--config", default="", type=str, metavar="FILE",
                    help="YAML config file specifying default arguments")

parser = argparse.ArgumentParser(description="PyTorch ImageNet Training")
group = parser.add_argument_group("Model parameters")
group.add_argument("--model", default="resnet50", type=str, metavar="MODEL",
                   help='Name of model to train (default: "resnet50")')
group.add_argument("--pretrained", action="store_true", default=False,
                   help="Start with pretrained version of specified network (if avail)")
group.add_argument("-b", "--batch-size", type=int, default=128, metavar="N",
                   help="Input batch size for training (default: %(default)s)")
group = parser.add_argument_group("Optimizer parameters")
group.add_argument("--opt", default="sgd", type=str, metavar="OPTIMIZER",
                   help='Optimizer (default: "sgd")')
group.add_argument("--lr", type=float, default=None, metavar="LR",
                   help="learning rate, overrides lr-base if set (default: None)")
group.add_argument("--weight-decay", type=float, default=2e-5, help="weight decay (default: 2e-5)")
group = parser.add_argument_group("Misc parameters")
group.add_argument("--amp", action="store_true", default=False,
                   help="use NVIDIA Apex AMP or Native AMP for mixed precision training")
group.add_argument("--no-prefetcher", action="store_true", default=False,
                   help="disable fast prefetcher")
group.add_argument("--pin-mem", action="store_true", default=False,
                   help="Pin CPU memory in DataLoader for more efficient (sometimes) transfer to GPU.")
group.add_argument("--output", default="", type=str, metavar="PATH",
                   help="path to output folder (default: none, current dir)")
group.add_argument("--log-interval", type=int, default=50, metavar="N", help=argparse.SUPPRESS)


def _parse_args():
    # Do we have a config file to parse?
    args_config, remaining = config_parser.parse_known_args()
    args = parser.parse_args(remaining)
    return args


def main():
    args = _parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(args.output or here, "last.pth.tar"), "w") as fh:
        fh.write(f"{args.model} {args.lr}\n")
    print(f"Train: 0 [  0/100 (  0%)]  Loss: 6.91 (6.91)  LR: {args.lr or 0.1:.3e}")
    print("*** Best metric: 0.5 (epoch 0)")


if __name__ == "__main__":
    main()
