"""A script in the style of HuggingFace's example scripts: given one argument ending in .json,
it reads every argument from that file (``python json_args.py args.json``); otherwise from
``--name value`` options. Its metrics are printed as the Trainer logs them, a dict a line."""

import argparse
import dataclasses
import json
import os
import sys


@dataclasses.dataclass
class TrainingArguments:
    learning_rate: float = 5e-5
    num_train_epochs: int = 3
    warmup: bool = False


def parse() -> TrainingArguments:
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        # One argument, the path to a json file: read the arguments from it.
        with open(os.path.abspath(sys.argv[1])) as fh:
            return TrainingArguments(**json.load(fh))
    parser = argparse.ArgumentParser()
    for field in dataclasses.fields(TrainingArguments):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    return TrainingArguments(**vars(parser.parse_args()))


def main():
    args = parse()
    print(f"Training/evaluation parameters {args}")
    for epoch in range(1, args.num_train_epochs + 1):
        loss = 1 / (1 + args.learning_rate * 1000 * epoch)
        print({"eval_loss": round(loss, 4), "eval_accuracy": round(1 - loss / 2, 4), "epoch": float(epoch)})


if __name__ == "__main__":
    main()
