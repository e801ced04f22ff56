"""``sweep rerun --top K --seeds N [SWEEP]``: the K best configurations of a sweep, each run
again with N new seeds, as a new sweep that names its parent. Pure planning: it reads the
parent's record and runs and returns the new sweep's spec; ``runner`` runs it.

The new sweep is ranked by its own runs only. The parent's values picked these
configurations for being high, so they are biased upward (the winner's curse): counting
them again would favour the configuration that was luckiest, which is what a rerun is for
finding out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sweep import board, groups, rundir, seeds
from sweep import spec as specs
from sweep.errors import RunNotFound, UsageError


def plan(runs_dir: Path, ref: str, top: int, repeats: int, seed_flag: str | None = None) -> specs.SweepSpec:
    """The spec of the rerun of sweep ``ref``. Raises UsageError (exit 2) when the sweep, its
    flags file or its seed flag cannot be found, or it has no completed run."""
    try:
        record = rundir.find_sweep(runs_dir, ref)
    except RunNotFound as exc:
        raise UsageError(f"{exc}: nothing to rerun") from None
    parent = specs.load(record.flags_file)
    runs = [r for r in rundir.list_runs(runs_dir) if r.sweep == record.id]
    name = seed_flag or parent.seed_flag or next(
        (r.info["seed_flag"] for r in runs if isinstance(r.info.get("seed_flag"), str)), None)
    if name is None:
        raise UsageError(f"sweep {record.id} has no seed_flag: name the script's seed option with "
                         "--seed-flag NAME (e.g. --seed-flag seed)")
    if not specs.FLAG_NAME_RE.match(name):
        raise UsageError(f"--seed-flag {name!r}: {specs.FLAG_NAME_RULE}")
    searched = {f.name for f in parent.flags if f.kind != "fixed"}
    if name in searched:
        raise UsageError(f"--seed-flag {name}: sweep {record.id} searches {name} as a flag; "
                         "a seed flag must be one the sweep does not search")
    rows = board.build(runs, runs_dir).rows
    for row in rows:  # the parent's seed, fixed or per repeat, is not part of the configuration
        row["_seed_flag"] = name
    found = groups.ranked(groups.configs(rows, parent.metric), parent.goal)
    best = [c for c in found if c.mean is not None][:top]
    if not best:
        raise UsageError(f"sweep {record.id} has no completed run with {parent.metric}: nothing to rerun")
    flags, configs = _space(parent, [c.flags for c in best], name)
    used = {str(r.flags.get(name)) for r in runs}
    first = 1 + max((r.info["repeat"] for r in runs if isinstance(r.info.get("repeat"), int)), default=-1)
    while any(str(seeds.seed_for(parent.seed, first + i)) in used for i in range(repeats)):
        first += 1  # never a seed the parent ran with
    return dataclasses.replace(
        parent, flags=flags, trials=len(best), sampler="random", repeats=repeats, seed_flag=name,
        first_repeat=first, rerun_of=record.id, enqueue=tuple(configs), target=None, pruner=specs.Pruner(),
        smoke={}, max_failures=None,
    )


def _space(parent: specs.SweepSpec, chosen: list[dict[str, Any]],
           seed_flag: str) -> tuple[tuple[specs.Flag, ...], list[dict[str, Any]]]:
    """The flags of the rerun, in the parent's order: a flag with one value among the chosen
    configurations is fixed, one with several is a list of them; and each configuration as
    the study is asked it (its listed flags)."""
    names = list(dict.fromkeys([f.name for f in parent.flags] + [n for c in chosen for n in c]))
    declared = {f.name: f for f in parent.flags}
    flags: list[specs.Flag] = []
    for name in names:
        if name == seed_flag:
            continue
        values = list(dict.fromkeys((type(c[name]), c[name]) for c in chosen if name in c))
        if not values:
            continue
        base = declared.get(name, specs.Flag(name, "fixed"))
        kind = "fixed" if len(values) == 1 else "choice"
        flags.append(specs.Flag(name, kind, tuple(v for _, v in values), switch=base.switch, words=base.words))
    listed = [f.name for f in flags if f.kind == "choice"]
    return tuple(flags), [{n: c[n] for n in listed if n in c} for c in chosen]
