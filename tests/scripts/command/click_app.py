"""A click app with subcommands, as many research repositories write their entry point:
``python click_app.py train --lr 0.001 --epochs 3 --amp``. ``--amp/--no-amp`` is a boolean
flag that takes no value."""

import math

import click


@click.group()
def cli():
    """Train and evaluate the classifier."""


@cli.command()
@click.option("--lr", type=float, default=1e-3, help="Learning rate")
@click.option("--epochs", type=int, default=3, help="Number of epochs to train for")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam")
@click.option("--amp/--no-amp", default=False, help="Mixed precision")
def train(lr, epochs, optimizer, amp):
    """Train a model and save it to disk."""
    click.echo(f"train: lr={lr!r} epochs={epochs!r} optimizer={optimizer!r} amp={amp!r}")
    for epoch in range(epochs):
        loss = math.exp(-lr * 100 * (epoch + 1))
        click.echo(f"Epoch {epoch}: loss {loss:.4f}  accuracy {1 - loss / 2 + (0.01 if amp else 0):.4f}")


@cli.command()
@click.argument("checkpoint")
def evaluate(checkpoint):
    """Evaluate a saved model."""
    click.echo(f"evaluating {checkpoint}")


if __name__ == "__main__":
    cli()
