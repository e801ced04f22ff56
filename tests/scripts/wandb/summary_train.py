"""Fine-tune a toy classifier, in the style of W&B's sweep examples: defaults handed to
wandb.init(config=...), one wandb.log per epoch, the best validation accuracy kept in the run
summary (W&B's own docstring example: ``wandb.run.summary["best_accuracy"] = ...``), and the
test results written to the summary at the end. The run is started online, as a script
written for W&B's cloud is."""

import argparse
import random

import wandb

defaults = dict(learning_rate=0.1, epochs=3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", default="mode", choices=["mode", "settings", "anonymous"])
    args, _ = parser.parse_known_args()
    if args.start == "mode":
        run = wandb.init(project="summary-demo", config=defaults, mode="online")
    elif args.start == "settings":
        run = wandb.init(project="summary-demo", config=defaults, settings=wandb.Settings(mode="online"))
    else:
        run = wandb.init(project="summary-demo", config=defaults, anonymous="must")
    config = wandb.config
    rng = random.Random(0)
    best = 0.0
    for epoch in range(config.epochs):
        val_acc = min(1.0, 0.5 + config.learning_rate * epoch + rng.random() * 0.01)
        wandb.log({"epoch": epoch, "val_acc": val_acc})
        if val_acc > best:
            best = val_acc
            wandb.run.summary["best_val_acc"] = best
    wandb.summary["epochs_run"] = config.epochs
    run.summary.update({"test": {"acc": best - 0.05}})
    wandb.finish()


if __name__ == "__main__":
    main()
