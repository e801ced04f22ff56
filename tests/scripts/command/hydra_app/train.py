"""A Hydra app written the way Hydra's docs and templates write one: a config.yaml beside it,
``key=value`` overrides on the command line, the config logged at the start, progress through
``logging`` (Hydra sends it to the console and to ``<output dir>/train.py.log``) and a checkpoint
written by a relative path into Hydra's output directory (``hydra.job.chdir: true``)."""

import logging
import math
import os

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    log.info("Config:\n%s", OmegaConf.to_yaml(cfg))
    log.info("Working directory: %s", os.getcwd())
    accuracy = 0.0
    for epoch in range(cfg.trainer.epochs):
        loss = math.exp(-cfg.lr * (epoch + 1) * 10) + (0.1 if cfg.optimizer == "sgd" else 0.0)
        accuracy = (1 - loss / 2) * (0.9 if cfg.use_amp else 1.0)
        log.info(f"epoch {epoch} train_loss={loss:.4f} val_accuracy={accuracy:.4f}")
    with open("checkpoint.txt", "w") as fh:  # relative: lands in Hydra's output directory
        fh.write(f"lr={cfg.lr} optimizer={cfg.optimizer} use_amp={cfg.use_amp!r}\n")


if __name__ == "__main__":
    main()
