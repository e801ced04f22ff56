"""The model's configuration, as in nanoGPT's model.py (without torch)."""

from dataclasses import dataclass


@dataclass
class GPTConfig:
    block_size: int = 1024
    n_layer: int = 12
    dropout: float = 0.0
