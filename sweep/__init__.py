"""sweep: hyperparameter sweeps for PyTorch training scripts.

Training scripts import this package for its small, torch-free API::

    import sweep
    f = sweep.flags(dropout=0.2, lr=1e-3, activation="relu")
    ...
    sweep.log(step=epoch, eval_accuracy=acc)

Nothing here imports torch, optuna or rich: the tool itself lives in submodules.
"""

from sweep.track import FlagError, flags, log, should_stop

__version__ = "0.1.0"
__all__ = ["FlagError", "flags", "log", "should_stop", "__version__"]
