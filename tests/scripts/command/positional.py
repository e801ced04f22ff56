"""An argparse script in the style of pytorch/examples' imagenet/main.py: the dataset folder is
a positional argument (``python positional.py --lr=0.1 DIR``) and the top-1 accuracy is printed
as `` * Acc@1 75.000 Acc@5 92.000``, read by a regex in the flags file."""

import argparse
import os

parser = argparse.ArgumentParser(description="PyTorch ImageNet Training")
parser.add_argument("data", metavar="DIR", nargs="?", default="imagenet", help="path to dataset")
parser.add_argument("-a", "--arch", metavar="ARCH", default="resnet18", help="model architecture")
parser.add_argument("--epochs", default=90, type=int, metavar="N", help="number of total epochs to run")
parser.add_argument("--lr", "--learning-rate", default=0.1, type=float, metavar="LR", dest="lr")


def main():
    args = parser.parse_args()
    print(f"=> creating model '{args.arch}' on data '{args.data}'")
    with open(os.path.join(args.data, "train.csv")) as fh:
        rows = sum(1 for _ in fh)
    for epoch in range(args.epochs):
        top1 = min(100.0, rows * args.lr * (epoch + 1))
        print(f"Epoch: [{epoch}]\tLoss 1.2345")
        print(f" * Acc@1 {top1:.3f} Acc@5 {min(100.0, top1 * 1.5):.3f}")


if __name__ == "__main__":
    main()
