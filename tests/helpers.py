"""Reading run directories back in tests: the files, as a user's own script would read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def info(run: Path) -> dict[str, Any]:
    return json.loads((run / "run.json").read_text())


def flags_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "flags.json").read_text())


def metrics_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "metrics.json").read_text())


def run_dirs(runs: Path) -> list[Path]:
    """The run directories, in trial order."""
    if not runs.is_dir():
        return []
    dirs = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "archive"]
    return sorted(dirs, key=lambda p: info(p)["trial"])
