"""bench/seeds.py's training script: argparse with a --seed option, as pytorch/examples' scripts
take it, stdlib only and instant. Its dev accuracy is a known true quality of (lr, dropout)
plus noise from the seed and the configuration (two seeds of one configuration differ by
about as much as two good configurations do, as in real fine-tuning)."""

import argparse
import math
import random


def true_quality(lr: float, dropout: float) -> float:
    """Best (0.9) at lr 3e-3 and dropout 0.2."""
    return 0.9 - 0.1 * math.log10(lr / 3e-3) ** 2 - 0.5 * (dropout - 0.2) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description="noisy objective")
    parser.add_argument("--lr", type=float, default=1e-3, metavar="LR", help="learning rate (default: 1e-3)")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout probability (default: 0.1)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--noise", type=float, default=0.02, help="sd of the seed's effect on accuracy (default: 0.02)")
    args = parser.parse_args()
    rng = random.Random(f"{args.seed}/{args.lr!r}/{args.dropout!r}")  # torch.manual_seed(args.seed)
    accuracy = true_quality(args.lr, args.dropout) + rng.gauss(0.0, args.noise)
    print(f"eval_accuracy: {accuracy!r}")


if __name__ == "__main__":
    main()
