"""An unmodified training script in the style of pytorch/examples' mnist/main.py: argparse
flags, a line per epoch, a checkpoint in the working directory. Stdlib only, so that many
workers on two cores stay cheap; SWEEP_TEST_EPOCH_S (a test knob, not a flag) makes an
epoch take that long, like real training would."""

import argparse
import math
import os
import time


def main():
    parser = argparse.ArgumentParser(description="PyTorch MNIST Example")
    parser.add_argument("--batch_size", type=int, default=64, metavar="N",
                        help="input batch size for training (default: 64)")
    parser.add_argument("--epochs", type=int, default=2, metavar="N", help="number of epochs to train (default: 2)")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR", help="learning rate (default: 1.0)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--save-model", action="store_true", default=False, help="For Saving the current Model")
    args = parser.parse_args()

    epoch_s = float(os.environ.get("SWEEP_TEST_EPOCH_S", "0"))
    val_loss = 2.3
    for epoch in range(1, args.epochs + 1):
        time.sleep(epoch_s)
        val_loss = 2.3 * math.exp(-epoch * args.lr) + abs(math.log(args.batch_size / 64)) / 10
        print(f"Train Epoch: {epoch} [60000/60000 (100%)]\tLoss: {val_loss * 1.1:.6f}", flush=True)
        print(f"val_loss: {val_loss:.6f}", flush=True)
    if args.save_model:
        with open("mnist_cnn.pt", "w") as fh:
            fh.write("weights")


if __name__ == "__main__":
    main()
