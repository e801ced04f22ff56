"""``sweep run``: the flags file and options -> a sweep, its leaderboard and exit status."""

from __future__ import annotations

import dataclasses
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep import board, rundir, spec as specs
from sweep.errors import SpecError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# The board printed after a sweep: a screenful of the best runs, so a sweep of thousands
# neither floods the terminal nor holds every run in memory; `sweep ls` has them all.
LEADERBOARD_ROWS = 50


@dataclass
class Options:
    trials: int | None = None
    seed: int | None = None
    jobs: str | None = None
    sampler: str | None = None
    pruner: str | None = None
    launcher: str | None = None
    timeout: float | None = None
    max_failures: int | None = None
    smoke: bool = False
    dry_run: bool = False
    resume: str | None = None
    storage: str | None = None
    study: str | None = None
    gpus: str | None = None
    per_gpu: int = 1
    junit_xml: Path | None = None
    set: list[str] = dataclasses.field(default_factory=list)


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UsageError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def build_spec(flags_file: Path, opts: Options) -> specs.SweepSpec:
    """The flags file with --smoke and the command-line options applied (options win)."""
    spec = specs.load(flags_file)
    if opts.smoke:
        spec = spec.with_smoke()
    changes: dict[str, Any] = {}
    if opts.trials is not None:
        changes["trials"] = opts.trials
    if opts.seed is not None:
        changes["seed"] = opts.seed
    if opts.jobs is not None:
        if opts.jobs == "auto":
            changes["jobs"] = "auto"
        elif opts.jobs.isdigit() and int(opts.jobs) >= 1:
            changes["jobs"] = int(opts.jobs)
        else:
            raise UsageError(f"--jobs must be a whole number of at least 1 or 'auto'; got {opts.jobs!r}")
    if opts.sampler is not None:
        changes["sampler"] = _choice("--sampler", opts.sampler, specs.SAMPLERS)
    if opts.pruner is not None:
        # Only the name: the file's settings (warm-up, resources) still apply.
        changes["pruner"] = dataclasses.replace(spec.pruner, name=_choice("--pruner", opts.pruner, specs.PRUNERS))
    if opts.launcher is not None:
        changes["launcher"] = _choice("--launcher", opts.launcher, specs.LAUNCHERS)
    if opts.timeout is not None:
        if opts.timeout <= 0:
            raise UsageError(f"--timeout must be greater than 0; got {opts.timeout:g}")
        changes["timeout"] = opts.timeout
    if opts.max_failures is not None:
        changes["max_failures"] = opts.max_failures
    for assignment in opts.set:
        spec = specs.override(spec, assignment)
    if spec.sampler == "grid" and (opts.smoke or opts.trials is not None) and "sampler" not in changes:
        # A grid cut short: random over a space of lists is the grid in seeded random order,
        # without repeats, stopping after the trials asked for.
        changes["sampler"] = "random"
    spec = dataclasses.replace(spec, **changes)
    if spec.sampler == "grid" and spec.combinations() is None:
        raise SpecError(f"{spec.path}: sampler: grid needs every flag to be a list, a fixed value "
                        "or an integer range without log")
    return spec


def parse_gpus(text: str | None) -> list[str]:
    if not text:
        return []
    ids = [g.strip() for g in text.split(",") if g.strip()]
    if not ids or not all(g.isdigit() or g.startswith(("GPU-", "MIG-")) for g in ids):
        raise UsageError(f"--gpus takes GPU ids separated by commas, e.g. 0,1; got {text!r}")
    return ids


def run(flags_file: Path, runs_dir: Path, opts: Options) -> int:
    spec = build_spec(flags_file, opts)  # check the flags file before the heavy imports
    gpus = parse_gpus(opts.gpus)
    from sweep.driver import Driver, SweepFinished

    if opts.dry_run:
        return dry_run(spec, runs_dir)
    if opts.resume is not None:
        rundir.check_ref(opts.resume)
    if gpus:
        jobs = spec.jobs if spec.jobs != "auto" else len(gpus) * opts.per_gpu
        spec = dataclasses.replace(spec, jobs=jobs)
    from sweep.render import SweepView, print_table, write_junit

    view = SweepView(spec.metric, spec.goal)
    driver = Driver(spec, runs_dir, on_event=view, storage=opts.storage, study=opts.study,
                    resume=opts.resume, gpus=gpus, per_gpu=opts.per_gpu)
    previous = {sig: signal.signal(sig, lambda *_: driver.interrupt()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = driver.run()
    except SweepFinished as done:
        sys.stderr.write(f"{done}\n")
        return EXIT_OK
    finally:
        view.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    runs = (rundir.read_run(p) for p in result.runs)
    table, columns, total = board.best_rows(runs, runs_dir, spec.metric, LEADERBOARD_ROWS)
    print_table(table, board.used_columns(table, columns), title=f"sweep {result.sweep}")
    if total > len(table):
        sys.stderr.write(f"the best {len(table)} of {total} runs; all of them: sweep ls --sweep {result.sweep}\n")
    if opts.junit_xml:
        write_junit(opts.junit_xml, result.sweep, [rundir.read_run(p) for p in result.runs])
    counts = result.counts
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    sys.stderr.write(f"sweep {result.sweep}: {summary or 'no trials'}\n")
    if result.interrupted:
        return EXIT_INTERRUPTED
    if counts.get("failed") or result.stopped:
        return EXIT_FAILED
    return EXIT_OK


def dry_run(spec: specs.SweepSpec, runs_dir: Path) -> int:
    from sweep import launch
    from sweep.driver import Driver, arguments

    driver = Driver(spec, runs_dir)
    plans = driver.plan()
    for i, flags in enumerate(plans):
        argv = launch.command(spec.script, spec.module, arguments(spec, flags))
        sys.stdout.write(f"trial {i}: {shlex.join(argv)}\n")
    sys.stderr.write(f"dry run: {len(plans)} trials; nothing was run or written\n")
    return EXIT_OK
