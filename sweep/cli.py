"""The ``sweep`` command: thin typer commands over the library.

Each command parses its options, calls one function, renders the result, and maps the
library's exceptions to one ``Error: ...`` line and an exit status (0 ok, 1 failure, 2 bad
usage or flags file, 130 interrupted). Heavy imports (optuna, torch, rich) live inside the
commands that need them, so ``sweep ls`` starts fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from sweep import board, render, rundir
from sweep.diagnosis import DEFAULT_GAP
from sweep.errors import RunNotFound, SweepError, UsageError
from sweep.samplers import PRUNERS, SAMPLERS

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Hyperparameter sweeps for PyTorch scripts: random/TPE search, parallel trials, one "
         "directory per run, and a leaderboard.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

RunsDir = Annotated[Path, typer.Option("--runs-dir", "-d", help="Runs directory.", envvar="SWEEP_RUNS_DIR")]
Format = Annotated[str, typer.Option("--format", "-f",
        help=f"{', '.join(render.FORMATS[:-1])} or {render.FORMATS[-1]}.")]
Baseline = Annotated[float | None, typer.Option("--baseline-error",
        help="Bayes/human-level error in percent (default: the flags file's, else 0).")]
Gap = Annotated[float, typer.Option("--gap", help="Points of avoidable bias or variance counted as high.")]
DEFAULT_RUNS = Path("runs")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Map the library's exceptions to one line and an exit status."""
    try:
        yield
    except SweepError as exc:
        err(f"Error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err("Interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


# ---------------------------------------------------------------- run


@app.command()
def run(
    flags_file: Annotated[Path, typer.Argument(help="The flags file (YAML) describing the search space.")],
    trials: Annotated[int | None, typer.Option("--trials", "-n", min=1, help="Number of trials.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the sampler.")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS,
    jobs: Annotated[str | None, typer.Option("--jobs", "-j",
            help="Trials at once: a number or 'auto' (one per core).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help=f"One of: {', '.join(SAMPLERS)}.")] = None,
    pruner: Annotated[str | None, typer.Option("--pruner", help=f"One of: {', '.join(PRUNERS)}.")] = None,
    launcher: Annotated[str | None, typer.Option("--launcher",
            help="fork (warm, default) or spawn (fresh interpreter).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout",
            help="Seconds before a trial is stopped and failed.")] = None,
    max_failures: Annotated[int | None, typer.Option("--max-failures", min=1,
            help="Stop the sweep after this many failed trials.")] = None,
    smoke: Annotated[bool, typer.Option("--smoke",
            help="Apply the flags file's smoke: section (a short CI run).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run",
            help="Print each trial's command; run and write nothing.")] = False,
    resume: Annotated[str | None, typer.Option("--resume",
            help="Continue a sweep: its id, or 'last' (the last sweep of this flags file).")] = None,
    storage: Annotated[str | None, typer.Option("--storage",
            help="Optuna storage URL (e.g. postgresql://...); default: a journal file under the runs dir.")] = None,
    study: Annotated[str | None, typer.Option("--study",
            help="Study name in --storage, to share one study between machines.")] = None,
    gpus: Annotated[str | None, typer.Option("--gpus",
            help="GPU ids, e.g. 0,1: each running trial gets one through CUDA_VISIBLE_DEVICES.")] = None,
    per_gpu: Annotated[int, typer.Option("--per-gpu", min=1, help="Trials packed on one GPU.")] = 1,
    junit_xml: Annotated[Path | None, typer.Option("--junit-xml",
            help="Write a JUnit XML report (one test case per trial).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set",
            help="Override a flag: NAME=VALUE (a value, a [list] or a {min, max} range). Repeatable.")] = None,
    max_output_mb: Annotated[float | None, typer.Option("--max-output-mb", envvar="SWEEP_MAX_OUTPUT_MB",
            help="Stop a trial that prints more than this many MiB (default 64).")] = None,
) -> None:
    """Run a sweep: sample flags, run the script once per trial, print the leaderboard."""
    from sweep import runner

    with errors():
        options = runner.Options(
            trials=trials, seed=seed, jobs=jobs, sampler=sampler, pruner=pruner, launcher=launcher,
            timeout=timeout, max_failures=max_failures, smoke=smoke, dry_run=dry_run, resume=resume,
            storage=storage, study=study, gpus=gpus, per_gpu=per_gpu, junit_xml=junit_xml,
            max_output_mb=max_output_mb, set=set_ or [],
        )
        spec = runner.build_spec(flags_file, options)  # check the flags file before the heavy imports
        runner.check(options)
        if options.dry_run:
            plans = runner.dry_run(spec)
            for i, argv in enumerate(plans):
                sys.stdout.write(f"trial {i}: {shlex.join(argv)}\n")
            err(f"dry run: {len(plans)} trials; nothing was run or written")
            raise typer.Exit(EXIT_OK)
        code = _sweep(spec, runs_dir, options)
    raise typer.Exit(code)


# The board printed after a sweep: a screenful of the best runs, so a sweep of thousands
# neither floods the terminal nor holds every run in memory; `sweep ls` has them all.
LEADERBOARD_ROWS = 50


def _sweep(spec, runs_dir: Path, options) -> int:  # noqa: ANN001 (runner's types: imported lazily)
    from sweep import render, runner

    view = render.SweepView(spec.metric, spec.goal, spec.goal_given)
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
    runs = (rundir.read_run(p) for p in result.runs)
    found, total = board.best(runs, runs_dir, spec.metric, LEADERBOARD_ROWS)
    render.write(dataclasses.replace(found, title=f"sweep {result.sweep}"), "table")
    if total > len(found.rows):
        err(f"the best {len(found.rows)} of {total} runs; all of them: sweep ls --sweep {result.sweep}")
    if options.junit_xml:
        render.write_junit(options.junit_xml, result.sweep, [rundir.read_run(p) for p in result.runs])
    summary = ", ".join(f"{n} {s}" for s, n in result.counts.items() if n)
    err(f"sweep {result.sweep}: {summary or 'no trials'}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.counts.get("failed") or result.stopped:
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------- ls


def _runs(runs_dir: Path) -> list[rundir.Run]:
    if not runs_dir.exists():
        raise UsageError(f"runs directory {runs_dir} does not exist")
    from sweep import index

    return index.list_runs(runs_dir)


@app.command("ls")
def ls(
    runs_dir: RunsDir = DEFAULT_RUNS,
    sort: Annotated[str | None, typer.Option("--sort", "-s",
            help="Column to sort by: a metric or flag_<name>. Best first.")] = None,
    asc: Annotated[bool, typer.Option("--asc", help="Flip the sort order.")] = False,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Only the first N rows.")] = None,
    status: Annotated[list[str] | None, typer.Option("--status",
            help="Only runs with this status (repeat or comma-separate).")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", "-w",
            help="Filter, e.g. 'flag_dropout>=0.3' (repeatable).")] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="Only this sweep: an id, a prefix or 'last'.")] = None,
    fmt: Format = "table",
    baseline_error: Baseline = None,
    gap: Gap = DEFAULT_GAP,
) -> None:
    """List runs, newest first, or best first with --sort."""
    with errors():
        runs = _runs(runs_dir)
        try:
            sweep_id = rundir.find_sweep_id(runs_dir, sweep, runs) if sweep else None
        except RunNotFound as exc:  # a filter that matches nothing is a usage mistake here
            raise UsageError(str(exc)) from None
        found = board.build(runs, runs_dir, baseline_error, gap)
        found = board.sort(board.select(found, where or [], status or [], sweep_id), sort, asc)
        if top:
            found = board.top(found, top)
        render.write(found, fmt)
        _left_alone(runs_dir, runs)


# ---------------------------------------------------------------- show / compare


@app.command()
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or 'last'.")],
    runs_dir: RunsDir = DEFAULT_RUNS,
    baseline_error: Baseline = None,
    gap: Gap = DEFAULT_GAP,
) -> None:
    """One run: flags, metrics, status, command, diagnosis, learning curves, output tail."""
    from sweep import report

    with errors():
        run_ = rundir.resolve(runs_dir, run_ref)
        render.print_show(report.show(run_, baseline_error, gap))


@app.command()
def compare(
    a: Annotated[str, typer.Argument(metavar="A", help="First run.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Second run.")],
    runs_dir: RunsDir = DEFAULT_RUNS,
) -> None:
    """Two runs side by side: flags and metrics, differences marked."""
    from sweep import report

    with errors():
        runs = rundir.list_runs(runs_dir)
        view = report.compare(rundir.resolve(runs_dir, a, runs), rundir.resolve(runs_dir, b, runs))
        render.print_compare(view)


# ---------------------------------------------------------------- clean / purge


@app.command()
def clean(
    run_refs: Annotated[list[str] | None, typer.Argument(metavar="[RUN]...", help="Runs to archive.")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS,
    failed: Annotated[bool, typer.Option("--failed", help="Archive every failed, interrupted or broken run.")] = False,
    all_runs: Annotated[bool, typer.Option("--all", help="Archive every run.")] = False,
) -> None:
    """Move runs to <runs>/archive (like tfruns' clean_runs); purge deletes the archive."""
    from sweep import manage

    with errors():
        moved = manage.clean(runs_dir, run_refs or [], failed=failed, everything=all_runs)
        err(f"archived {len(moved)} run{'s' if len(moved) != 1 else ''} to {runs_dir / rundir.ARCHIVE_DIR}")
        _left_alone(runs_dir)


def _left_alone(runs_dir: Path, runs: list[rundir.Run] | None = None, shown: int = 5) -> None:
    """Name what is in the runs directory but is no run (a TensorBoard folder): ls, clean and
    purge never touch it, and say so rather than leave the user guessing."""
    names = rundir.not_runs(runs_dir, runs)
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
                raise UsageError(f"purge would delete {count} archived runs; pass --yes to confirm")
            if not typer.confirm(f"Delete {count} archived runs in {archive}?"):
                raise typer.Exit(1)
        manage.purge(runs_dir)
        err(f"deleted {count} archived runs")


@app.command()
def importance(
    sweep_ref: Annotated[str, typer.Argument(metavar="[SWEEP]", help="Sweep id, prefix or 'last'.")] = "last",
    runs_dir: RunsDir = DEFAULT_RUNS,
    fmt: Format = "table",
) -> None:
    """Which flags mattered: fANOVA importance over a sweep's completed runs."""
    from sweep import importance as imp

    with errors():
        render.write(imp.importance(runs_dir, sweep_ref), fmt)


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


def main() -> None:
    sys.argv[1:] = normalize_argv(sys.argv[1:])
    try:
        app(prog_name="sweep")
    except KeyboardInterrupt:
        err("Interrupted")
        sys.exit(130)
