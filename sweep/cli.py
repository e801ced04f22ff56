"""The ``sweep`` command: thin typer commands over the library.

Each command parses its options, calls one function, renders the result, and maps the
library's exceptions to one ``Error: ...`` line and an exit status (0 ok, 1 failure, 2 bad
usage or flags file, 130 interrupted). Heavy imports (optuna, torch, rich) live inside the
commands that need them, so ``sweep ls`` starts fast.
"""

# No ``from __future__ import annotations`` here: typer reads each option from its annotation,
# and would evaluate every one as text (twice) on each start.
import contextlib
import copy
import dataclasses
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from sweep import board, cliparams, render, rundir, words
from sweep.diagnosis import DEFAULT_GAP
from sweep.errors import RunNotFound, SweepError, UsageError
from sweep.samplers import PRUNERS, SAMPLERS

cliparams.install()  # plain option values without pydantic: a tenth of a second of every start

# Plain help, as click writes it: rich's would read "[list]" in a help text as markup and give
# switches a "<bool>" value they do not take.
app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Hyperparameter sweeps for PyTorch scripts: random/TPE search, parallel trials, one "
         "directory per run, and a leaderboard.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

RunsDir = Annotated[Path, typer.Option("--runs-dir", "-d", metavar="DIR", help="Runs directory.",
        envvar="SWEEP_RUNS_DIR")]
Format = Annotated[str, typer.Option("--format", "-f", metavar="FORMAT",
        help=f"{', '.join(render.FORMATS[:-1])} or {render.FORMATS[-1]}.")]
Columns = Annotated[str | None, typer.Option("--columns", "-c", metavar="A,B,...",
        help="The board's columns, in this order (default: those that fit the terminal).")]
Baseline = Annotated[float | None, typer.Option("--baseline-error", metavar="PERCENT",
        help="Bayes/human-level error in percent (default: the flags file's, else 0).")]
Gap = Annotated[float, typer.Option("--gap", metavar="POINTS",
        help="Points of avoidable bias or variance counted as high.")]
DEFAULT_RUNS = Path("runs")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")


def _version(value: bool) -> None:
    if value:
        from sweep import __version__

        sys.stdout.write(f"sweep {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
            help="Print the version and exit.")] = False,
) -> None:
    """Hyperparameter sweeps for PyTorch scripts."""


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Map the library's exceptions to one line and an exit status."""
    try:
        yield
    except SweepError as exc:
        err(f"Error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:  # the system refused (disk full, read-only, gone): one line, exit 1
        name = exc.filename2 if exc.filename2 is not None else exc.filename  # a rename's target
        err(f"Error: {os.fsdecode(name) + ': ' if name is not None else ''}{exc.strerror or exc}")
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        err("Interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


# ---------------------------------------------------------------- run


@app.command()
def run(
    flags_file: Annotated[Path, typer.Argument(metavar="FLAGS_FILE",
            help="The flags file (YAML) describing the search space.")],
    trials: Annotated[int | None, typer.Option("--trials", "-n", min=1, metavar="N", help="Number of trials.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=2**32 - 1, metavar="N",
            help="Seed of the sampler.")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS,
    jobs: Annotated[str | None, typer.Option("--jobs", "-j", metavar="N|auto",
            help="Trials at once: a number or 'auto' (one per core).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", metavar="NAME",
            help=f"One of: {', '.join(SAMPLERS)}.")] = None,
    pruner: Annotated[str | None, typer.Option("--pruner", metavar="NAME",
            help=f"One of: {', '.join(PRUNERS)}.")] = None,
    launcher: Annotated[str | None, typer.Option("--launcher", metavar="NAME",
            help="fork (warm, default) or spawn (fresh interpreter).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS",
            help="Seconds before a trial is stopped and failed.")] = None,
    max_failures: Annotated[int | None, typer.Option("--max-failures", min=1, metavar="N",
            help="Stop the sweep after this many failed trials.")] = None,
    smoke: Annotated[bool, typer.Option("--smoke",
            help="Apply the flags file's smoke: section (a short CI run).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run",
            help="Print each trial's command; run and write nothing.")] = False,
    resume: Annotated[str | None, typer.Option("--resume", metavar="[SWEEP]",
            help="Continue a sweep: its id, or 'last' (the default: the last sweep of this flags file).")] = None,
    storage: Annotated[str | None, typer.Option("--storage", metavar="URL",
            help="Optuna storage URL (e.g. postgresql://...); default: a journal file under the runs dir.")] = None,
    study: Annotated[str | None, typer.Option("--study", metavar="NAME",
            help="Study name in --storage, to share one study between machines.")] = None,
    gpus: Annotated[str | None, typer.Option("--gpus", metavar="IDS",
            help="GPU ids, e.g. 0,1: each running trial gets one through CUDA_VISIBLE_DEVICES.")] = None,
    per_gpu: Annotated[int, typer.Option("--per-gpu", min=1, metavar="K", help="Trials packed on one GPU.")] = 1,
    junit_xml: Annotated[Path | None, typer.Option("--junit-xml", metavar="FILE",
            help="Write a JUnit XML report (one test case per trial).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="NAME=VALUE",
            help="Override a flag: a value, a [list] or a {min: .., max: ..} range. Repeatable.")] = None,
    max_output_mb: Annotated[float | None, typer.Option("--max-output-mb", envvar="SWEEP_MAX_OUTPUT_MB",
            metavar="MIB", help="Stop a trial that prints more than this many MiB (default 64).")] = None,
    columns: Columns = None,
    warm_start: Annotated[list[str] | None, typer.Option("--warm-start", metavar="SWEEP",
            help="Start the study from an earlier sweep's completed runs that fit this space. Repeatable.")] = None,
) -> None:
    """Run a sweep: sample flags, run the script once per trial, print the leaderboard."""
    from sweep import runner

    with errors():
        options = runner.Options(
            trials=trials, seed=seed, jobs=jobs, sampler=sampler, pruner=pruner, launcher=launcher,
            timeout=timeout, max_failures=max_failures, smoke=smoke, dry_run=dry_run, resume=resume,
            storage=storage, study=study, gpus=gpus, per_gpu=per_gpu, junit_xml=junit_xml,
            max_output_mb=max_output_mb, set=set_ or [], warm_start=warm_start or [],
        )
        spec = runner.build_spec(flags_file, options)  # check the flags file before the heavy imports
        from sweep.wbsweep import NO_RUN_CAP

        for note in spec.notes:  # a W&B file: what runs differently here, said once
            if trials is None or not note.startswith(NO_RUN_CAP):
                err(f"note: {note}")
        runner.check(options)
        if columns is not None:
            _check_columns(columns, spec)
        if options.dry_run:
            runner.warm_runs(runs_dir, options.warm_start)  # a bad --warm-start is caught here too
            plans = runner.dry_run(spec, runs_dir)
            for i, argv in enumerate(plans):
                sys.stdout.write(f"trial {i}: {shlex.join(argv)}\n")
            err(f"dry run: {words.count(len(plans), 'trial')}; nothing was run or written")
            raise typer.Exit(EXIT_OK)
        code = _sweep(spec, runs_dir, options, columns)
    raise typer.Exit(code)


# The board printed after a sweep: a screenful of the best runs, so a sweep of thousands
# neither floods the terminal nor holds every run in memory; `sweep ls` has them all.
LEADERBOARD_ROWS = 50


def _check_columns(columns: str, spec) -> None:  # noqa: ANN001 (spec's type: imported lazily)
    """What can be known of ``--columns`` before the sweep runs: ``flag_<name>`` names a flag."""
    flags = {f"flag_{f.name}" for f in spec.flags}
    for name in board.column_names([columns]):
        if name.startswith("flag_") and name not in flags:
            raise UsageError(f"unknown column {name!r} in --columns: {spec.path} has no flag {name[5:]!r}")


def _sweep(spec, runs_dir: Path, options, columns: str | None = None) -> int:  # noqa: ANN001 (lazy types)
    from sweep import render, runner

    view = render.SweepView(spec.metric, spec.goal, spec.goal_given, spec.objectives, spec.constraints,
                            spec.goal_note)
    session = runner.SweepRun(spec, runs_dir, options, on_event=view)
    previous = {sig: signal.signal(sig, lambda *_: session.interrupt()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = session.run()
    finally:
        view.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if result.note:
        err(result.note)
        return EXIT_OK
    # The whole sweep, a resumed one's earlier sessions too: its board, totals and report.
    paths = [*result.earlier, *result.runs]
    counts: dict[str, int] = dict.fromkeys(TOTALS, 0)

    def tally(run: rundir.Run) -> rundir.Run:
        again = run.status == "interrupted" and run.info.get("resumed") is True
        key = RUN_AGAIN if again else run.status
        counts[key] = counts.get(key, 0) + 1
        return run

    every = (tally(rundir.read_run(p)) for p in paths)
    if spec.repeats > 1 or spec.rerun_of:  # one row per configuration: its mean over the seeds
        found, total = _by_config(list(every), runs_dir, spec.metric)
        found = dataclasses.replace(found, title=f"sweep {result.sweep}", keep=(spec.metric,))
    elif spec.objectives or spec.constraints:
        found, total = board.leaderboard(every, runs_dir, spec.metric, LEADERBOARD_ROWS)
        found = dataclasses.replace(found, title=f"sweep {result.sweep}")
    else:  # one objective, or none (newest first)
        found, total = board.best(every, runs_dir, spec.metric or None, LEADERBOARD_ROWS)
        found = dataclasses.replace(found, title=f"sweep {result.sweep}", keep=(spec.metric,) if spec.metric else ())
    if result.warm and not (spec.repeats > 1 or spec.rerun_of):  # a board by configuration has no run rows
        found = board.with_earlier(found, map(rundir.read_run, result.warm), runs_dir, spec.metric, LEADERBOARD_ROWS)
    more = f"sweep ls --sweep {result.sweep}"
    shared_board = _study_board(options.storage, options.study, spec.metric)
    if shared_board is not None:  # a shared study: every worker's runs
        found, total = shared_board
        found = dataclasses.replace(found, keep=(spec.metric,))
        more = f"sweep ls --storage URL --study {options.study}"
    if columns is not None:
        found, missing = board.pick(found, [columns], strict=False)
        if missing:
            err(f"no column {', '.join(map(repr, missing))} on the board: no run of the sweep reported it")
    render.write(found, "table")
    if total > len(found.rows):
        what = "configurations" if spec.repeats > 1 or spec.rerun_of else "runs"
        err(f"the best {len(found.rows)} of {total} {what}; all of them: {more}" + (" --group" * (what != "runs")))
    if options.junit_xml:
        runs = sorted((rundir.read_run(p) for p in paths), key=lambda r: r.info.get("trial", -1))
        render.write_junit(options.junit_xml, result.sweep, runs)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    err(f"sweep {result.sweep}: {summary or 'no trials'}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    if counts.get("failed") or result.stopped:
        return EXIT_FAILED
    return EXIT_OK


def _by_config(runs: list[rundir.Run], runs_dir: Path, metric: str) -> tuple[board.Board, int]:
    """A sweep's best configurations, each its mean over its seeds, and how many there were."""
    from sweep import groups

    found = groups.grouped(board.build(runs, runs_dir), metric)
    return board.top(found, LEADERBOARD_ROWS), len(found.rows)


TOTALS = ("completed", "failed", "pruned", "interrupted")  # the order of the sweep's totals
RUN_AGAIN = "interrupted and run again"  # a resumed sweep's interrupted trials: they ran again


def _study_board(storage: str | None, study: str | None, metric: str | None) -> tuple[board.Board, int] | None:
    """The best rows of a shared study and its number of runs; None when the sweep has no
    shared study, or the study cannot be read now (the worker's own board is shown then)."""
    if not storage or not study:
        return None
    from sweep import shared

    try:
        found = shared.leaderboard(shared.list_runs(storage, study))
    except SweepError as exc:
        err(f"the study's board is not available ({exc}); this worker's runs:")
        return None
    found = board.sort(found, metric if metric in found.columns else None)
    return dataclasses.replace(board.top(found, LEADERBOARD_ROWS), title=f"study {study}"), len(found.rows)


@app.command()
def rerun(
    sweep_ref: Annotated[str, typer.Argument(metavar="[SWEEP]", help="Sweep id, prefix or 'last'.")] = "last",
    top: Annotated[int, typer.Option("--top", "-k", min=1, metavar="K",
            help="Configurations to rerun, best first.")] = 5,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=1000, metavar="N", help="New seeds for each.")] = 3,
    seed_flag: Annotated[str | None, typer.Option("--seed-flag", metavar="NAME",
            help="The script's seed option (default: the sweep's seed_flag:).")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS,
    jobs: Annotated[str | None, typer.Option("--jobs", "-j", metavar="N|auto", help="Runs at once.")] = None,
    columns: Columns = None,
) -> None:
    """Rerun a sweep's K best configurations with N new seeds each; rank them by their mean."""
    from sweep import rerun as reruns
    from sweep import runner

    with errors():
        options = runner.Options(jobs=jobs)
        spec = reruns.plan(runs_dir, sweep_ref, top, seeds, seed_flag)
        if jobs is not None:
            spec = dataclasses.replace(spec, jobs=runner.build_jobs(jobs))
        runner.check(options)
        err(f"rerun of sweep {spec.rerun_of}: {words.count(spec.trials, 'configuration')} x "
            f"{words.count(seeds, 'new seed')} ({spec.seed_flag})")
        code = _sweep(spec, runs_dir, options, columns)
    raise typer.Exit(code)


# ---------------------------------------------------------------- ls


def _runs(runs_dir: Path) -> list[rundir.Run]:
    if not runs_dir.exists():
        raise UsageError(f"runs directory {runs_dir} does not exist")
    from sweep import index

    return index.list_runs(runs_dir)


@app.command("ls")
def ls(
    runs_dir: RunsDir = DEFAULT_RUNS,
    sort: Annotated[str | None, typer.Option("--sort", "-s", metavar="COLUMN",
            help="Column to sort by: a metric or flag_<name>. Best first.")] = None,
    asc: Annotated[bool, typer.Option("--asc", help="Flip the sort order.")] = False,
    top: Annotated[int | None, typer.Option("--top", min=1, metavar="N", help="Only the first N rows.")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", metavar="STATUS",
            help="Only runs with this status (repeat or comma-separate).")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", "-w", metavar="EXPR",
            help="Filter, e.g. 'flag_dropout>=0.3' (repeatable).")] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", metavar="SWEEP",
            help="Only this sweep: an id, a prefix or 'last'.")] = None,
    fmt: Format = "table",
    columns: Columns = None,
    baseline_error: Baseline = None,
    gap: Gap = DEFAULT_GAP,
    storage: Annotated[str | None, typer.Option("--storage",
            help="A shared study's storage (URL or journal path): list every worker's runs from it.")] = None,
    study: Annotated[str | None, typer.Option("--study", help="The shared study's name (with --storage).")] = None,
    pareto: Annotated[bool, typer.Option("--pareto",
            help="Only the Pareto-optimal runs of a sweep with several objectives (after the filters).")] = False,
    group: Annotated[bool, typer.Option("--group", "-g",
            help="One row per configuration (its runs over seeds): mean, std and n of the objective "
                 "(or --sort's metric), best mean first; 'noise' marks those within noise of the best.")] = False,
) -> None:
    """List runs, newest first, or best first with --sort."""
    with errors():
        if storage or study:
            if pareto:
                raise UsageError("--pareto reads the run directories; it does not work with --storage")
            if group:
                raise UsageError("--group reads the run directories; it does not work with --storage")
            _ls_study(storage, study, sort, asc, top, status, where, fmt, baseline_error, gap)
            return
        if not (where or status or sweep or group or pareto or columns is not None or baseline_error is not None
                or gap != DEFAULT_GAP or sort == board.PARETO) and _ls_plain(runs_dir, sort, asc, top, fmt):
            return
        runs = _runs(runs_dir)
        try:
            sweep_id = rundir.find_sweep_id(runs_dir, sweep, runs) if sweep else None
        except RunNotFound as exc:  # a filter that matches nothing is a usage mistake here
            raise UsageError(str(exc)) from None
        found = board.build(runs, runs_dir, baseline_error, gap)
        early, late = board.ranking_filters(where or [])
        found = board.select(board.pareto(board.select(found, early, status or [], sweep_id), of=found.rows), late)
        if group:
            from sweep import groups

            found = groups.grouped(found, sort, asc)
        else:
            if pareto:
                found = board.front(found)
            if sort or not pareto:  # the front comes in rank order already
                found = board.sort(found, sort, asc)
        if top:
            found = board.top(found, top)
        found = board.objectives(found, sort)
        if columns is not None:
            found, _ = board.pick(found, [columns])
        render.write(found, fmt)
        _left_alone(runs_dir, runs)


def _ls_plain(runs_dir: Path, sort: str | None, asc: bool, top: int | None, fmt: str) -> bool:
    """A plain ``ls`` (sorted, cut, in any format) from the rows the index keeps written out:
    no board of dicts, no value formatted. False when the board needs more (ranks, say).
    The text is made while the run folders are being stat, and written if they hold."""
    if not runs_dir.exists():
        raise UsageError(f"runs directory {runs_dir} does not exist")
    from sweep import index

    def ordered(found: index.Listing) -> list[int]:
        board.check_sort(sort, found.columns)
        if sort is None:
            order = board.start_order(found.raw("_start"), found.raw("start"), found.names, asc)
        else:
            goal = board.goal_for(found.goals(), sort)
            values = found.dirs(range(len(found.names))) if sort == "dir" else found.raw(sort)
            broke = list(map(bool, found.raw(board.INFEASIBLE))) if board.INFEASIBLE in found.columns else None
            order = board.value_order(values, (goal != "minimize") != asc, broke)
        return order[:top] if top else order

    width, plain = render.terminal_width(sys.stdout), render.plain(sys.stdout)
    order_by = (f"raw:{sort}",) if sort else ("raw:_start", "raw:start")
    found = index.listing(runs_dir, want=order_by + render.LISTING_SECTIONS.get(fmt, ()),
                          ahead=lambda found: render.listing_text(found, ordered(found), sort, fmt, width, plain))
    if found is None:
        return False
    try:
        made = found.ahead
        if made is None:  # reads all it needs, then writes
            render.write_listing(found, ordered(found), sort, fmt, sys.stdout)
        else:
            text, note = made
            if note:
                err(note)
            sys.stdout.write(text)
    except index.Damaged:
        index.forget(runs_dir)
        return False
    _say_left_alone(sorted(found.others))
    return True


def _ls_study(storage: str | None, study: str | None, sort: str | None, asc: bool, top: int | None,
              status: list[str] | None, where: list[str] | None, fmt: str, baseline_error: float | None,
              gap: float) -> None:
    """``ls --storage URL --study NAME``: the whole shared study, from its storage alone."""
    from sweep import shared

    url, name = _shared_study("ls", storage, study)
    found = shared.leaderboard(shared.list_runs(url, name), baseline_error, gap)
    found = board.sort(board.select(found, where or [], status or [], None), sort, asc)
    render.write(board.top(found, top) if top else found, fmt)


def _shared_study(command: str, storage: str | None, study: str | None) -> tuple[str, str]:
    """``--storage URL --study NAME``, checked: a shared study is named by both."""
    from sweep import urls

    if not storage or not study:
        raise UsageError(f"{command}: --storage and --study go together (the shared study to read)")
    urls.check_storage_url(storage)
    urls.check_driver(storage)
    return storage, study


Storage = Annotated[str | None, typer.Option("--storage", metavar="URL",
        help="A shared study's storage (URL or journal path): read the run from it.")]
Study = Annotated[str | None, typer.Option("--study", metavar="NAME", help="The shared study's name (with --storage).")]


# ---------------------------------------------------------------- show / compare


REF_HELP = ("A run: its id, a unique prefix of it, 'last' (the newest), 'last~N' (the N-th before it) "
            "or 'best' (the last sweep's best by its objective). Archived runs are found too.")


@app.command()
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help=REF_HELP)],
    runs_dir: RunsDir = DEFAULT_RUNS,
    baseline_error: Baseline = None,
    gap: Gap = DEFAULT_GAP,
    storage: Storage = None,
    study: Study = None,
) -> None:
    """One run: flags, metrics, status, command, diagnosis, learning curves, output tail."""
    from sweep import report

    with errors():
        if storage or study:
            from sweep import shared

            url, name = _shared_study("show", storage, study)
            render.print_show(report.show_in_study(shared.resolve(url, name, run_ref), baseline_error, gap))
            return
        run_ = rundir.resolve(runs_dir, run_ref, archive=True)
        render.print_show(report.show(run_, baseline_error, gap))


@app.command()
def compare(
    a: Annotated[str, typer.Argument(metavar="A", help="First run (as for show: an id, 'best', 'last~1'...).")],
    b: Annotated[str, typer.Argument(metavar="B", help="Second run.")],
    runs_dir: RunsDir = DEFAULT_RUNS,
) -> None:
    """Two runs side by side: flags and metrics, differences marked."""
    from sweep import report

    with errors():
        runs = rundir.list_runs(runs_dir)
        view = report.compare(rundir.resolve(runs_dir, a, runs, archive=True),
                              rundir.resolve(runs_dir, b, runs, archive=True))
        render.print_compare(view)


# ---------------------------------------------------------------- clean / purge


@app.command()
def clean(
    run_refs: Annotated[list[str] | None, typer.Argument(metavar="RUN", help="Runs to archive.")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS,
    failed: Annotated[bool, typer.Option("--failed", help="Archive every failed, interrupted or broken run.")] = False,
    all_runs: Annotated[bool, typer.Option("--all", help="Archive every run.")] = False,
) -> None:
    """Move runs to <runs>/archive (like tfruns' clean_runs); purge deletes the archive."""
    from sweep import manage

    with errors():
        moved = manage.clean(runs_dir, run_refs or [], failed=failed, everything=all_runs)
        err(f"archived {words.count(len(moved), 'run')} to {runs_dir / rundir.ARCHIVE_DIR}")
        _left_alone(runs_dir)


def _left_alone(runs_dir: Path, runs: list[rundir.Run] | None = None) -> None:
    """Name what is in the runs directory but is no run (a TensorBoard folder): ls, clean and
    purge never touch it, and say so rather than leave the user guessing."""
    _say_left_alone(rundir.not_runs(runs_dir, runs))


def _say_left_alone(names: list[str], shown: int = 5) -> None:
    if names:
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        err(f"not runs, left alone: {', '.join(names[:shown])}{more}")


@app.command()
def purge(
    runs_dir: RunsDir = DEFAULT_RUNS,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete the archived runs for good."""
    from sweep import manage

    with errors():
        archive = runs_dir / rundir.ARCHIVE_DIR
        count = manage.archived(runs_dir)
        if count == 0:
            manage.finish_purges(runs_dir)  # a purge killed midway left its trash: delete it
            err(f"nothing to purge in {archive}")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"purge would delete {words.count(count, 'archived run')}; pass --yes to confirm")
            if not typer.confirm(f"Delete {words.count(count, 'archived run')} in {archive}?"):
                raise typer.Exit(1)
        manage.purge(runs_dir)
        err(f"deleted {words.count(count, 'archived run')}")


@app.command()
def importance(
    sweep_ref: Annotated[str, typer.Argument(metavar="SWEEP", help="Sweep id, prefix or 'last'.")] = "last",
    runs_dir: RunsDir = DEFAULT_RUNS,
    fmt: Format = "table",
    storage: Storage = None,
    study: Study = None,
) -> None:
    """Which flags mattered: fANOVA importance over a sweep's completed runs."""
    from sweep import importance as imp

    with errors():
        if storage or study:
            render.write(imp.in_study(*_shared_study("importance", storage, study)), fmt)
            return
        render.write(imp.importance(runs_dir, sweep_ref), fmt)


@app.command()
def init(
    script: Annotated[Path, typer.Argument(help="The training script (argparse).")],
    output: Annotated[Path | None, typer.Option("--output", "-o",
            help="Write the flags file here instead of to stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
) -> None:
    """Write a starting flags file from the script's argparse parser; its training is not run."""
    from sweep import scaffold

    with errors():
        if output is not None and output.exists() and not force:
            raise UsageError(f"{output} exists; pass --force to overwrite it")
        text = scaffold.flags_file(script, output)
        if output is None:
            sys.stdout.write(text)
        else:
            scaffold.write(output, text, force)
            err(f"wrote {output}")


@app.command()
def convert(
    wandb_file: Annotated[Path, typer.Argument(metavar="WANDB_FILE", help="A W&B sweep configuration (YAML).")],
) -> None:
    """Print the flags file equivalent to a W&B sweep configuration, its comments kept."""
    from sweep import convert as converter

    with errors():
        sys.stdout.write(converter.convert(wandb_file))


def normalize_argv(argv: list[str]) -> list[str]:
    """``--resume`` may stand alone (meaning the last sweep of the flags file)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--resume":
            nxt = out[i + 1] if i + 1 < len(out) else None
            if nxt is None or nxt.startswith("-") or nxt.endswith((".yaml", ".yml")) or os.path.isfile(nxt):
                out.insert(i + 1, "last")
            break
    return out


def only_invoked(argv: list[str]) -> typer.Typer:
    """The app with only the command ``argv`` names (``run``, ``export``), or the whole app when
    it names none (``--help``, a typo: those list every command). Typer builds each command's
    options from its annotations before it reads argv: all of them took 35 ms of CPU on every
    start, one takes a few."""
    word = argv[0] if argv else None
    commands = [c for c in app.registered_commands
                if c.callback is not None and (c.name or typer.main.get_command_name(c.callback.__name__)) == word]
    groups = [g for g in app.registered_groups if g.name == word]
    if not commands and not groups:
        return app
    one = copy.copy(app)
    one.registered_commands, one.registered_groups = commands, groups
    return one


def main() -> None:
    sys.argv[1:] = normalize_argv(sys.argv[1:])
    try:
        only_invoked(sys.argv[1:])(prog_name="sweep")
    except KeyboardInterrupt:
        err("Interrupted")
        sys.exit(130)


def entry() -> None:
    """The ``sweep`` command (and ``python -m sweep``): ``main``, then out the way the
    interpreter leaves, less its teardown. Freeing every module optuna and numpy brought costs a
    tenth of a second at the end of each sweep, and nothing of ours needs it: our files are
    written and closed before this, and what does need the end (exit handlers: the journal's
    fsync, logging's flush; non-daemon threads) still runs."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message to print: the interpreter does that, and exits 1
        code = exc.code or 0
    import atexit
    import threading

    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter waits for first
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the interpreter would exit 120
            code = code or 120
    os._exit(code)


# ---------------------------------------------------------------- report


@app.command("report")
def report_(
    sweep_refs: Annotated[list[str] | None, typer.Argument(metavar="[SWEEP]...",
            help="Sweep ids, prefixes or 'last' (default: the last).")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS,
    out: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    all_sweeps: Annotated[bool, typer.Option("--all", help="Every run of every sweep.")] = False,
    baseline_error: Baseline = None,
    gap: Gap = DEFAULT_GAP,
    storage: Annotated[str | None, typer.Option("--storage", metavar="URL",
            help="A shared study's storage (URL or journal path): report every worker's runs from it.")] = None,
    study: Annotated[str | None, typer.Option("--study", metavar="NAME",
            help="The shared study's name (with --storage).")] = None,
) -> None:
    """One self-contained HTML file: summary, leaderboard, and figures of a sweep."""
    from sweep import html

    with errors():
        if all_sweeps and sweep_refs:
            raise UsageError("give sweeps or --all, not both")
        source: Path | html.Study = runs_dir
        if storage or study:
            if not storage or not study:
                raise UsageError("report: --storage and --study go together (the shared study to report)")
            if all_sweeps or sweep_refs:
                raise UsageError("report: give sweeps, --all or --storage with --study, not more than one")
            source = html.Study(storage, study)
        page = html.write(source, sweep_refs or [], all_sweeps, out, baseline_error, gap)
        err(f"wrote {out}: {page.title}, {len(page.rows)} runs")


@app.command()
def dashboard(
    sweep_ref: Annotated[str, typer.Argument(metavar="[SWEEP]", help="Sweep id, prefix or 'last'.")] = "last",
    runs_dir: RunsDir = DEFAULT_RUNS,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8080,
    storage: Annotated[str | None, typer.Option("--storage",
            help="The study's storage URL, when the sweep ran on a shared database.")] = None,
) -> None:
    """Start optuna-dashboard on a sweep's study, on 127.0.0.1 (Ctrl-C stops it)."""
    from sweep import dashboard as board_app

    def ready(sweep_id: str, address: str) -> None:
        err(f"optuna-dashboard for sweep {sweep_id} at {address} (Ctrl-C stops it)")

    with errors():
        board_app.serve(runs_dir, sweep_ref, storage, "127.0.0.1", port, ready)


export_app = typer.Typer(no_args_is_help=True, help="Write a sweep in another tool's format.")
app.add_typer(export_app, name="export")


@export_app.command("tensorboard")
def export_tensorboard(
    out: Annotated[Path, typer.Argument(metavar="DIR", help="A new (or empty) folder for TensorBoard's logdir.")],
    sweep_ref: Annotated[str, typer.Option("--sweep", help="Sweep id, prefix or 'last'.")] = "last",
    runs_dir: RunsDir = DEFAULT_RUNS,
) -> None:
    """A sweep as a TensorBoard HParams experiment: tensorboard --logdir DIR."""
    from sweep import hparams

    with errors():
        sweep_id, sessions = hparams.export(runs_dir, sweep_ref, out)
        err(f"wrote sweep {sweep_id} to {out}: {sessions} sessions; view with: tensorboard --logdir {out}")
