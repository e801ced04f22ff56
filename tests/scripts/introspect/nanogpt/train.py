"""A trainer in the style of nanoGPT's train.py: module-level defaults that configurator.py,
exec'd, overrides from `--key=value` arguments. There is no parser to read; running this file
means training, so introspection must not run it."""

import os

from model import GPTConfig

out_dir = "out"
batch_size = 12
learning_rate = 6e-4
max_iters = 3
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "configurator.py")).read())

config = GPTConfig(n_layer=2)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ckpt.pt"), "w") as fh:
    fh.write(str(config))
for iter_num in range(max_iters):
    print(f"iter {iter_num}: loss 4.2000, time 12.00ms, mfu -100.00%")
