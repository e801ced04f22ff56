"""Train a small regression MLP; its hyperparameters come from a W&B sweep through wandb.config.

In the style of W&B's PyTorch sweep examples: defaults handed to wandb.init(config=...), the
run's values read back from wandb.config, one wandb.log per epoch.
"""

import argparse
import json

import torch
import wandb

hyperparameter_defaults = dict(
    learning_rate=0.01,
    epochs=3,
    hidden=8,
    batch_size=32,
    optimizer=dict(name="sgd", momentum=0.0),
)


def build_optimizer(model, config):
    if config.optimizer["name"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    return torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.optimizer["momentum"])


def main():
    # W&B's agent passes the sweep's values as --key=value too; wandb.config is what counts.
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args, _ = parser.parse_known_args()
    torch.manual_seed(args.seed)

    run = wandb.init(project="sweep-demo", config=hyperparameter_defaults)
    config = wandb.config
    with open("wandb_config.json", "w") as fh:
        json.dump({"config": dict(config), "mode": run.settings.mode, "dir": run.dir, "sweep": run.sweep_id}, fh)

    x = torch.linspace(-1, 1, 256).unsqueeze(1)
    y = 3 * x + 0.1 * torch.randn_like(x)
    model = torch.nn.Sequential(torch.nn.Linear(1, config.hidden), torch.nn.ReLU(), torch.nn.Linear(config.hidden, 1))
    optimizer = build_optimizer(model, config)
    for epoch in range(config.epochs):
        for i in range(0, len(x), config.batch_size):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[i:i + config.batch_size]), y[i:i + config.batch_size])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = torch.nn.functional.mse_loss(model(x), y)
        wandb.log({"epoch": epoch, "train/loss": loss.item(), "val_loss": val_loss})
    wandb.finish()


if __name__ == "__main__":
    main()
