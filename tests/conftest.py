"""Shared fixtures: small and generic."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TRAIN = "print('eval_accuracy: 0.5')\n"


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """``write(yaml_text, name="flags.yaml", script="train.py")``: write a flags file (text is
    dedented) and, unless ``script`` is None, a tiny script beside it, into tmp_path."""

    def _write(text: str, name: str = "flags.yaml", script: str | None = "train.py",
               script_text: str = TRAIN) -> Path:
        if script is not None:
            path = tmp_path / script
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(script_text)
        flags = tmp_path / name
        flags.parent.mkdir(parents=True, exist_ok=True)
        flags.write_text(textwrap.dedent(text))
        return flags

    return _write


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    """A folder where test scripts record what each trial saw."""
    folder = tmp_path / "probes"
    folder.mkdir()
    return folder
