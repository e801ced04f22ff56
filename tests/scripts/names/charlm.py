"""A character-level language model trainer, in the style of pytorch/examples'
word_language_model/main.py: dashed argparse flags, a text file as input, switches, and
progress printed as `| epoch ... | valid loss ... |` lines. Stdlib only, so a trial is quick:
the "model" is a smoothed bigram table whose loss the flags shape in a fixed way."""

import argparse
import math
import sys

parser = argparse.ArgumentParser(description="Character-level language model")
parser.add_argument("--input-file", type=str, default="data/input.txt",
                    help="location of the training text")
parser.add_argument("--learning-rate", type=float, default=0.2, help="initial learning rate")
parser.add_argument("--n-layer", type=int, default=2, help="number of layers")
parser.add_argument("--model", type=str, default="LSTM", choices=["RNN_TANH", "RNN_RELU", "LSTM", "GRU"],
                    help="type of recurrent net (%(choices)s)")
parser.add_argument("--epochs", type=int, default=3, help="upper epoch limit")
parser.add_argument("--tied", action="store_true", help="tie the word embedding and softmax weights")
parser.add_argument("--no-cuda", action="store_true", default=False, help="disables CUDA training")
parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True,
                    help="shuffle the batches")
parser.add_argument("--pin-mem", action="store_true", help="pin CPU memory in the data loader")
parser.add_argument("--no-pin-mem", action="store_false", dest="pin_mem")
parser.set_defaults(pin_mem=True)
parser.add_argument("--save", type=str, default="model.pt", help="path to save the final model")
args = parser.parse_args()
print(args)  # echoed configuration, as many scripts do: never a metric

with open(args.input_file) as fh:
    text = fh.read()
if not text:
    sys.exit(f"{args.input_file} is empty")
vocab = sorted(set(text))
print(f"| corpus of {len(text)} characters, vocabulary of {len(vocab)}")

# How good the run is depends on the flags, the same way every time.
best = abs(math.log10(args.learning_rate) + 1) + 0.1 * abs(args.n_layer - 3)
best += 0.0 if args.tied else 0.05
best -= 0.01 if args.shuffle else 0.0
for epoch in range(1, args.epochs + 1):
    val_loss = math.log(len(vocab)) * (best + 1.0 / epoch)
    print("-" * 89)
    print(f"| end of epoch {epoch:3d} | time: {0.01:5.2f}s | valid loss {val_loss:5.2f} | "
          f"valid ppl {math.exp(val_loss):8.2f}")
print("=" * 89)
with open(args.save, "w") as fh:
    fh.write(f"{args.model} {args.n_layer} tied={args.tied} shuffle={args.shuffle} pin_mem={args.pin_mem}\n")
