"""Seeds for repeated runs: which seed a repeat gets, and how a configuration's repeats add up
to one verdict for the study. Stdlib only.

A repeat's seed depends on the sweep's ``seed:`` and the repeat's index only, never on the
configuration: every configuration of a sweep runs with the same seeds, so two of them differ
by their flags and not by their luck (common random numbers). A rerun takes the indices after
its parent's, so its seeds are new.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweep.spec import SweepSpec

SEED_RANGE = 2**31  # fits every seed API (torch, numpy's RandomState, random)


def seed_for(base: int | None, index: int) -> int:
    """The seed of repeat ``index`` in a sweep seeded ``base`` (None: unseeded sweeps share one
    sequence, so a run can be reproduced from its record alone)."""
    digest = hashlib.sha256(f"sweep-repeat:{base if base is not None else ''}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE


def seeded(spec: SweepSpec) -> SweepSpec:
    """The spec with its seed flag as a fixed flag at the end, so the command line passes it
    as it passes any flag (the driver gives each repeat its own value)."""
    if spec.seed_flag is None or any(f.name == spec.seed_flag for f in spec.flags):
        return spec
    from sweep.spec import Flag

    seed_flag = Flag(spec.seed_flag, "fixed", (seed_for(spec.seed, spec.first_repeat),))
    return dataclasses.replace(spec, flags=(*spec.flags, seed_flag))


def flags_for(spec: SweepSpec, flags: dict[str, Any], repeat: int) -> dict[str, Any]:
    """One repeat's flags: the configuration's, with its seed."""
    if spec.seed_flag is None:
        return flags
    return {**flags, spec.seed_flag: seed_for(spec.seed, spec.first_repeat + repeat)}


def verdict(statuses: Sequence[str], values: Sequence[float | None]) -> tuple[str, float | None]:
    """What the study is told of a configuration once its repeats ended: interrupted if any
    was (a resume runs it again), failed if any failed, else completed with the mean (None
    when a repeat has no finite value: the study records it as failed, as a single run)."""
    if "interrupted" in statuses:
        return "interrupted", None
    if "failed" in statuses:
        return "failed", None
    if "pruned" in statuses:
        return "pruned", None
    if any(v is None or not math.isfinite(v) for v in values):
        return "completed", None
    return "completed", sum(v for v in values if v is not None) / len(values)


def mean_metrics(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over a configuration's repeats, for the study's record of it (and,
    told through ``Search.tell``'s metrics, any objective or constraint read from them). A
    metric counts only where every repeat has a finite value."""
    names = set.intersection(*(set(m) for m in runs)) if runs else set()
    out = {}
    for name in sorted(names):
        values = [m[name] for m in runs]
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            out[name] = sum(values) / len(values)
    return out
