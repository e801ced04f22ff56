"""A script that reports through the torch-free sweep API (sweep.flags / sweep.log)."""

import sweep

f = sweep.flags(dropout=0.1, epochs=3)
for step in range(f.epochs):
    value = (0.5 + f.dropout / 2) * (step + 1) / f.epochs
    sweep.log(step=step, eval_accuracy=value, train_loss=1 - value)
print("done")
