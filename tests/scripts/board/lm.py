"""Word-level language model training, in the style of pytorch/examples' word_language_model/main.py:
the same argparse flags and the same log lines. Stdlib only: the network is replaced by a simulated
loss curve, so a trial takes milliseconds. A learning rate that is too high makes the loss diverge,
and ``math.exp(cur_loss)`` then raises ``OverflowError: math range error``, as the real script does.
"""

import argparse
import math
import random
import time

parser = argparse.ArgumentParser(description="PyTorch Wikitext-2 RNN/LSTM/GRU/Transformer Language Model")
parser.add_argument("--data", type=str, default="./data/wikitext-2", help="location of the data corpus")
parser.add_argument("--model", type=str, default="LSTM",
                    help="type of network (RNN_TANH, RNN_RELU, LSTM, GRU, Transformer)")
parser.add_argument("--emsize", type=int, default=200, help="size of word embeddings")
parser.add_argument("--nhid", type=int, default=200, help="number of hidden units per layer")
parser.add_argument("--lr", type=float, default=20, help="initial learning rate")
parser.add_argument("--clip", type=float, default=0.25, help="gradient clipping")
parser.add_argument("--epochs", type=int, default=2, help="upper epoch limit")
parser.add_argument("--batch_size", type=int, default=20, metavar="N", help="batch size")
parser.add_argument("--dropout", type=float, default=0.2, help="dropout applied to layers (0 = no dropout)")
parser.add_argument("--seed", type=int, default=1111, help="random seed")
parser.add_argument("--log-interval", type=int, default=200, metavar="N", help="report interval")
parser.add_argument("--save", type=str, default="model.pt", help="path to save the final model")
args = parser.parse_args()

random.seed(args.seed)
n_batches = 600


def batch_loss(epoch, batch):
    """What the model's loss would be: it settles for a sane learning rate, explodes for a wild one."""
    step = (epoch - 1) * n_batches + batch
    if args.lr > 40:
        return 7.6 * 1.02 ** step
    return 5.2 + 2.4 * math.exp(-step / (150 * args.lr / 20)) + args.dropout / 4 + random.gauss(0, 0.01)


def train(epoch):
    total_loss = 0.0
    start_time = time.time()
    for batch in range(1, n_batches + 1):
        total_loss += batch_loss(epoch, batch)
        if batch % args.log_interval == 0:
            cur_loss = total_loss / args.log_interval
            ms_per_batch = (time.time() - start_time) * 1000 / args.log_interval
            print(f"| epoch {epoch:3d} | {batch:5d}/{n_batches:5d} batches | lr {args.lr:02.2f} | "
                  f"ms/batch {ms_per_batch:5.2f} | loss {cur_loss:5.2f} | ppl {math.exp(cur_loss):8.2f}")
            total_loss = 0
            start_time = time.time()


best_val_loss = None
for epoch in range(1, args.epochs + 1):
    epoch_start_time = time.time()
    train(epoch)
    val_loss = 5.0 + args.dropout / 4 + 1.5 / epoch * (20 / args.lr) ** 0.5
    print("-" * 89)
    print(f"| end of epoch {epoch:3d} | time: {time.time() - epoch_start_time:5.2f}s | valid loss {val_loss:5.2f} | "
          f"valid ppl {math.exp(val_loss):8.2f}")
    print("-" * 89)
    if not best_val_loss or val_loss < best_val_loss:
        best_val_loss = val_loss

print("=" * 89)
print(f"| End of training | test loss {best_val_loss:5.2f} | test ppl {math.exp(best_val_loss):8.2f}")
print("=" * 89)
