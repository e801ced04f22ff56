"""``sweep run`` as a library call: the flags file and options -> a checked spec, then a
sweep that returns its result. It never prints and never exits: the CLI renders the events
and the result and picks the exit status."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep import command, introspect, launch, rundir, samplers, seeds, urls, workdir
from sweep import spec as specs
from sweep.errors import RunNotFound, SpecError, UsageError

if TYPE_CHECKING:
    from sweep.driver import Driver, Event, Result


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
    max_output_mb: float | None = None  # a trial printing more is stopped (default 64 MiB)
    set: list[str] = dataclasses.field(default_factory=list)
    warm_start: list[str] = dataclasses.field(default_factory=list)  # earlier sweeps TPE learns from


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UsageError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def build_jobs(text: str) -> int | str:
    """``--jobs N|auto``, checked."""
    if text == "auto":
        return "auto"
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--jobs must be a whole number of at least 1 or 'auto'; got {text!r}")


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
        changes["jobs"] = build_jobs(opts.jobs)
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
    if (opts.smoke or opts.trials is not None) and "sampler" not in changes:
        changes["sampler"] = samplers.cut_short(spec)
    spec = dataclasses.replace(spec, **changes)
    if spec.repeats > 1 and spec.pruner.name != "none":
        raise UsageError(f"--pruner {spec.pruner.name}: {spec.path} has repeats: {spec.repeats}, and a "
                         "configuration's score is the mean of its repeats, known only once they all end")
    problem = samplers.grid_problem(spec)
    if problem:
        raise SpecError(f"{spec.path}: sampler: {problem}")
    return spec


def warm_runs(runs_dir: Path, refs: list[str]) -> list[rundir.Run]:
    """The runs of the sweeps ``--warm-start`` names (an id, a unique prefix, ``last``), each
    sweep once. A name that matches no sweep is bad usage: found before anything is written."""
    if not refs:
        return []
    runs = rundir.list_runs(runs_dir)
    wanted: set[str] = set()
    for ref in refs:
        try:
            wanted.add(rundir.find_sweep_id(runs_dir, ref, runs))
        except RunNotFound as exc:
            raise UsageError(f"--warm-start {ref}: {exc}") from None
    # In the order they ran: TPE weighs older trials less, so the same sweeps warm alike each time
    found = [r for r in runs if r.sweep in wanted]
    return sorted(found, key=lambda r: (r.start or 0.0, str(r.sweep), r.info.get("trial") or 0))


def parse_gpus(text: str | None) -> list[str]:
    if not text:
        return []
    ids = [g.strip() for g in text.split(",") if g.strip()]
    if not ids or not all(g.isdigit() or g.startswith(("GPU-", "MIG-")) for g in ids):
        raise UsageError(f"--gpus takes GPU ids separated by commas, e.g. 0,1; got {text!r}")
    return ids


def check(opts: Options) -> None:
    """The options that need no flags file, checked before anything heavy is imported."""
    parse_gpus(opts.gpus)
    urls.check_storage_url(opts.storage)
    urls.check_driver(opts.storage)
    if opts.resume is not None:
        from sweep import rundir

        rundir.check_ref(opts.resume)
    if opts.max_output_mb is not None and not opts.max_output_mb > 0:
        raise UsageError(f"--max-output-mb must be greater than 0; got {opts.max_output_mb:g}")


def resume_command(spec: specs.SweepSpec, runs_dir: Path, opts: Options) -> str:
    """``sweep run`` with the options that find this sweep's runs and search space again
    (``--resume ID`` goes after it)."""
    words = ["sweep", "run", str(spec.path)]
    if runs_dir != Path("runs"):
        words += ["--runs-dir", str(runs_dir)]
    for assignment in opts.set:
        words += ["--set", assignment]
    if opts.storage:
        words += ["--storage", urls.redact(opts.storage) or opts.storage]
    if opts.study:
        words += ["--study", opts.study]
    return shlex.join(words)


class SweepRun:
    """One ``sweep run``: build it, then ``run()`` it; ``interrupt()`` is safe to call from a
    signal handler (the first stops starting trials and asks running ones to end, the
    second kills them)."""

    def __init__(self, spec: specs.SweepSpec, runs_dir: Path, opts: Options,
                 on_event: Callable[[Event], None] = lambda e: None) -> None:
        check(opts)
        gpus = parse_gpus(opts.gpus)
        if gpus:
            jobs = spec.jobs if spec.jobs != "auto" else len(gpus) * opts.per_gpu
            spec = dataclasses.replace(spec, jobs=jobs)
        self.spec = spec
        self.runs_dir = runs_dir
        self.opts = opts
        self.gpus = gpus
        self.warm = warm_runs(runs_dir, opts.warm_start)
        self.on_event = on_event
        self._driver: Driver | None = None
        self._interrupts = 0

    def interrupt(self) -> None:
        self._interrupts += 1
        if self._driver is not None:
            self._driver.interrupt()

    def run(self) -> Result:
        # The launcher's server first: it starts (and imports what the script needs) in its own
        # process while this one imports optuna and reads the script's parser.
        launcher = launch.make(command.launcher(self.spec), command.preload(self.spec))
        try:
            # And whether trials can have an overlay: probed in a child, collected by the driver.
            workdir.probe_ahead(self.spec.root, self.spec.script, self.runs_dir, self.spec.workdir)
            with one_blas_thread():
                from sweep import search
                from sweep.driver import Driver

            search.quiet()
            launch.single_thread()  # a pool the user asked for (their own *_NUM_THREADS) still ends
            # Which true/false flags are switches, from the script's parser: while the warm
            # launcher starts, before the first trial.
            self.spec = introspect.with_switches(self.spec)
            max_output = None if self.opts.max_output_mb is None else int(self.opts.max_output_mb * (1 << 20))
            driver = Driver(self.spec, self.runs_dir, launcher, on_event=self.on_event,
                            storage=self.opts.storage, study=self.opts.study, resume=self.opts.resume,
                            gpus=self.gpus, per_gpu=self.opts.per_gpu, max_output=max_output,
                            warm=self.warm, again=resume_command(self.spec, self.runs_dir, self.opts))
            for _ in range(self._interrupts):  # a Ctrl-C during the imports still counts
                driver.interrupt()
            self._driver = driver
            return driver.run()
        finally:
            workdir.settle()
            launcher.close()


# What each BLAS build numpy may load reads for its pool size (OpenBLAS, MKL, OpenMP builds).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Import numpy (optuna's) with a BLAS pool of one thread. Its library starts the pool as it
    loads, one thread a core, and they spin: 50-100 ms of the other core while the launcher's
    server boots there, for a process that never multiplies a matrix worth a thread. The
    variables are read once, as the library loads; they are put back after, so the trials'
    environments (built from this one) never carry them. A variable the user set is left as it is."""
    unset = [name for name in BLAS_THREADS if name not in os.environ]
    os.environ.update(dict.fromkeys(unset, "1"))
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)


def dry_run(spec: specs.SweepSpec, runs_dir: Path = Path("runs")) -> list[list[str]]:
    """The command line of each trial the sweep would run; nothing is run or written. A run
    directory's name is known only once it is made: here it reads ``<run>``."""
    with one_blas_thread():
        from sweep import search

    search.quiet()
    spec = seeds.seeded(introspect.with_switches(spec))
    return [command.argv(spec, seeds.flags_for(spec, flags, repeat), runs_dir / "<run>")
            for flags in search.plan(spec) for repeat in range(spec.repeats)]

