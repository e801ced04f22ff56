"""A python-fire app: each method of the class is a subcommand and its keyword arguments are
the flags (``python fire_app.py net --lr=0.1 --amp=True``); fire reads each value as a Python
literal, so ``True`` is a boolean and ``0.1`` a float."""

import math

import fire


class Experiment:
    """Two models to compare."""

    def net(self, lr=0.01, epochs=3, dropout=0.1, amp=False):
        """Train the small convolutional net."""
        print(f"Experiment.net(lr={lr!r}, epochs={epochs!r}, dropout={dropout!r}, amp={amp!r})")
        for epoch in range(epochs):
            acc = (1 - math.exp(-lr * 50 * (epoch + 1))) * (1 - dropout / 2) + (0.01 if amp is True else 0)
            print(f"epoch {epoch} | val_acc {acc:.4f}")

    def linear(self, lr=0.1, epochs=3):
        """Train the linear baseline."""
        print(f"Experiment.linear(lr={lr!r}, epochs={epochs!r})")
        print("epoch 0 | val_acc 0.5000")


if __name__ == "__main__":
    fire.Fire(Experiment)
