"""A script in the style of minGPT/makemore and pytorch/examples: it echoes its configuration
(argparse Namespace, a config dump, dataset sizes) before training, prints a line per epoch
with two-word metric names, and a final score that is a fraction and a percentage."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--seed", type=int, default=3407)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()

print(args)
print("config:")
print(f"seed: {args.seed}")
print("vocab_size: 27")
print("block_size: 16")
print("dataset=32033 words, n_embd=64")
print("number of parameters: 0.20M")
for epoch in range(1, args.epochs + 1):
    train_loss = 2.0 / (epoch * args.lr * 100)
    test_loss = train_loss + 0.1
    print(f"epoch {epoch} | train loss: {train_loss:.4f} test loss: {test_loss:.4f} | time 12.3ms")
print("test final score: 146/500 = 29.20% correct")
print(f"eval_accuracy: {round(1 - test_loss / 10, 4)}")
