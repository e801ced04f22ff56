"""Run at the start of a spawned trial's interpreter (its PYTHONPATH starts with this folder):
arm sweep's offline wandb hook, then run the sitecustomize this one shadows, if any."""

import importlib.machinery
import importlib.util
import os
import sys

try:
    # By its path, not ``from sweep import``: the package's __init__ would cost every trial.
    _spec = importlib.util.spec_from_file_location(
        "_sweep_wbhook", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "wbhook.py"))
    _hook = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
    _spec.loader.exec_module(_hook)  # type: ignore[union-attr]
    _hook.install()
except Exception:  # another python, a broken install: the trial runs without the hook
    pass


def _next() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_next()
