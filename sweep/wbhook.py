"""wandb, offline, inside a trial: a script that calls ``wandb.init``/``wandb.log`` runs
unchanged with no account and no network. Stdlib only, and nothing happens until the trial
imports wandb, so a trial that does not pays one entry on ``sys.meta_path``.

When wandb is imported, the trial's environment is set as W&B's agent sets it for a run
(wandb/wandb_agent.py): the flags in a config file named by ``WANDB_SWEEP_PARAM_PATH``, which
``wandb.init`` reads over the script's own defaults, and the run's and the sweep's ids; plus offline mode and
``WANDB_DIR`` in the run directory, so wandb's own files stay there. Each ``Run.log`` call
then also goes to the run's ``metrics.jsonl`` (``sweep.log``) at the step W&B gives it, so
the leaderboard and the pruner see it.

The warm launcher calls ``install`` in each forked trial; a spawned trial gets it from the
``sitecustomize`` in ``SITE_DIR``, which the trial's ``PYTHONPATH`` starts with.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from typing import Any

SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_wbsite")
CONFIG_FILE = "wandb-sweep-config.yaml"  # W&B's agent: wandb/sweep-<id>/config-<run>.yaml
FINISHING = "wandb-finishing"  # in the run directory while wandb.finish runs: the training is over
GROUPS_VAR = "SWEEP_WANDB_GROUPS"  # W&B nested parameters: flags "group.name" nest in wandb.config


def install() -> None:
    """Arm the hook for this trial (a no-op outside a sweep's trial)."""
    if not os.environ.get("SWEEP_RUN_DIR"):
        return
    if "wandb" in sys.modules:  # imported already (a warm server's preload)
        prepare_env()
        patch(sys.modules["wandb"])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the first ``import wandb`` it prepares the environment and
    wraps wandb's loader so that the module is patched once it has run."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "wandb":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("wandb")
        if spec is None or spec.loader is None:
            return None
        prepare_env()
        spec.loader = _Loader(spec.loader)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        patch(module)


def prepare_env() -> None:
    """What W&B's agent gives a run, offline, with wandb's files in the run directory."""
    env = os.environ
    run_dir = env["SWEEP_RUN_DIR"]
    if env.get("WANDB_MODE") != "disabled":
        env["WANDB_MODE"] = "offline"  # never the network, whatever the user's shell says
    env["WANDB_DIR"] = run_dir
    env.setdefault("WANDB_CONSOLE", "off")  # the trial's output is already captured
    # Quiet: wandb's closing "Run summary" table would be read back as printed metrics.
    env.setdefault("WANDB_QUIET", "true")
    env.setdefault("WANDB_RUN_ID", os.path.basename(run_dir.rstrip(os.sep)))
    if env.get("SWEEP_ID"):  # scripts test for it to know they run in a sweep
        env.setdefault("WANDB_SWEEP_ID", env["SWEEP_ID"])
    flags = _flags(run_dir)
    if flags is None:
        return
    path = os.path.join(run_dir, CONFIG_FILE)
    groups = [g for g in env.get(GROUPS_VAR, "").split(",") if g]
    try:
        # JSON is YAML: wandb's config reader takes it, and no yaml import here.
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"wandb_version": 1, **{k: {"value": v} for k, v in nest(flags, groups).items()}}, fh)
    except OSError:
        return
    env["WANDB_SWEEP_PARAM_PATH"] = path


def _flags(run_dir: str) -> dict[str, Any] | None:
    raw = os.environ.get("SWEEP_FLAGS")
    try:
        if raw is None:
            with open(os.path.join(run_dir, "flags.json"), encoding="utf-8") as fh:
                raw = fh.read()
        flags = json.loads(raw)
    except (OSError, ValueError):
        return None
    return flags if isinstance(flags, dict) else None


def nest(flags: dict[str, Any], groups: list[str]) -> dict[str, Any]:
    """Flags as wandb.config holds them: ``optimizer.lr`` inside ``optimizer`` when
    ``optimizer`` was a nested parameter of the W&B file; other names as they are."""
    out: dict[str, Any] = {}
    for name, value in flags.items():
        head, dot, rest = name.partition(".")
        if dot and head in groups:
            node = out.setdefault(head, {})
            *middle, last = rest.split(".")
            for part in middle:
                node = node.setdefault(part, {})
            node[last] = value
        else:
            out[name] = value
    return out


_steps: dict[int, int] = {}  # each run's next step (a wandb Run takes no new attributes)


def patch(wandb: Any) -> None:
    """Wrap ``Run.log`` (``wandb.log`` is the run's own ``log`` once ``wandb.init`` ran), and
    the log of the do-nothing run ``WANDB_MODE=disabled`` gives."""
    try:
        from wandb.sdk.wandb_run import Run
    except Exception:  # another wandb than the one this knows: leave it be
        return
    _offline_init(wandb)
    _wrap(Run)
    _wrap_finish(Run)
    try:
        from wandb.sdk.wandb_summary import Summary
    except Exception:  # summary writes go unseen; wandb.log still counts
        pass
    else:
        _wrap_summary(Summary)
    try:
        from wandb.sdk.lib.noop_run import NoopRun
    except Exception:
        return
    _wrap(NoopRun)


def _offline_init(wandb: Any) -> None:
    """Wrap ``wandb.init``: its ``mode=``/``settings=`` outrank WANDB_MODE, so a script's
    ``mode="online"`` would reach for the network. Every run is offline here, unless the
    script (or the user's shell) asks for none at all: ``disabled`` stays."""
    original = getattr(wandb, "init", None)
    if original is None or getattr(original, "_sweep_wrapped", False):
        return

    def init(*args: Any, **kw: Any) -> Any:
        settings = kw.get("settings")
        asked = [kw.get("mode"), os.environ.get("WANDB_MODE"),
                 settings.get("mode") if isinstance(settings, dict) else getattr(settings, "mode", None)]
        kw["mode"] = "disabled" if "disabled" in asked else "offline"
        return original(*args, **kw)

    init._sweep_wrapped = True  # type: ignore[attr-defined]
    init.__doc__, init.__name__, init.__wrapped__ = original.__doc__, "init", original  # type: ignore[attr-defined]
    wandb.init = init


def _wrap(cls: Any) -> None:
    original = cls.__dict__.get("log")
    if original is None or getattr(original, "_sweep_wrapped", False):
        return

    def log(self: Any, data: Any, step: int | None = None, commit: bool | None = None, *args: Any, **kw: Any) -> Any:
        result = original(self, data, step, commit, *args, **kw)
        # W&B's step: the one given, else its own counter, which a commit moves on by one.
        current = max(_steps.get(id(self), 0), step if step is not None else 0)
        try:
            record(data, step if step is not None else current)
        finally:
            _steps[id(self)] = current + 1 if (step is None and commit is None) or commit else current
        return result

    log._sweep_wrapped = True  # type: ignore[attr-defined]
    log.__doc__, log.__name__ = original.__doc__, "log"
    cls.log = log


def _wrap_finish(cls: Any) -> None:
    """Mark the run directory while ``Run.finish`` runs: a pruner's verdict read only then
    (the trial logged its last steps faster than they were read) comes after the training,
    and killing the trial would only lose wandb's files (sweep.trial keeps it running)."""
    original = cls.__dict__.get("finish")
    if original is None or getattr(original, "_sweep_wrapped", False):
        return

    def finish(self: Any, *args: Any, **kw: Any) -> Any:
        mark = os.path.join(os.environ.get("SWEEP_RUN_DIR") or os.curdir, FINISHING)
        try:
            open(mark, "w").close()
        except OSError:
            pass
        try:
            return original(self, *args, **kw)
        finally:
            try:
                os.remove(mark)
            except OSError:
                pass

    finish._sweep_wrapped = True  # type: ignore[attr-defined]
    finish.__doc__, finish.__name__ = original.__doc__, "finish"
    cls.finish = finish


def _wrap_summary(cls: Any) -> None:
    """Wrap ``Summary._update``, which every summary write goes through (``summary[k] = v``,
    ``summary.k = v``, ``summary.update({...})``, a nested key): W&B's sweep reads its metric
    from the summary, where such a write overrides the last logged value."""
    original = cls.__dict__.get("_update")
    if original is None or getattr(original, "_sweep_wrapped", False):
        return

    def _update(self: Any, record: Any) -> Any:
        result = original(self, record)
        try:
            items = {".".join(map(str, item.key)): item.value for item in getattr(record, "update", ())}
        except Exception:  # another wandb's record: the write stands, only we miss it
            items = {}
        summary(items)
        return result

    _update._sweep_wrapped = True  # type: ignore[attr-defined]
    cls._update = _update


def summary(data: dict[str, Any]) -> None:
    """The numbers of a summary write, with no step: the run's final value of each."""
    values = numbers(data)
    run_dir = os.environ.get("SWEEP_RUN_DIR")
    if values and run_dir:
        import time

        from sweep import rundir

        rundir.append_jsonl(os.path.join(run_dir, rundir.METRICS_HISTORY),
                            {"step": None, "time": time.time(), **values, "source": "wandb.summary"})


def record(data: Any, step: int) -> None:
    """The numbers of one ``wandb.log`` call, at ``step``, into the run's history."""
    values = numbers(data)
    if values:
        from sweep import track

        track.log(step=step, **values)


def numbers(data: Any, prefix: str = "") -> dict[str, float]:
    """The scalar numbers of a logged mapping (a nested mapping as ``outer.inner``); media,
    tables, histograms and text are W&B's alone."""
    out: dict[str, float] = {}
    if not isinstance(data, dict):
        return out
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numbers(value, f"{name}."))
            continue
        if isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)):
            item = getattr(value, "item", None)  # numpy and torch scalars
            if item is None or getattr(value, "ndim", 0) != 0:
                continue
            try:
                value = item()
            except Exception:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
        out[name] = float(value)
    return out
