"""fANOVA importance scored in a second process, beside the report's other work.

Optuna's fANOVA needs scikit-learn, whose import alone takes 1 to 3 s on a busy machine, and
then fits a random forest: the longest part of ``sweep report``. A forked worker starts both
at once, while the report reads its runs and draws the other figures; the report asks for the
scores only when it lays out the importance, slice and contour figures. Where fork is not
safe (not Linux), the scores are computed in this process instead, when asked for.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from sweep import importance
from sweep.errors import SweepError

if TYPE_CHECKING:
    import optuna

Scores = dict[str, float]
# Half of Optuna's 64 trees: half the fit's time; on 100 runs of a made-up objective (4 flags,
# low and high noise) no flag's score moved by more than 0.01 from the full forest's.
TREES = 32
Reply = tuple[int, bool, Any]  # job, whether it went well, the scores or the error's text


def score(trials: list[Any], direction: optuna.study.StudyDirection) -> Scores:
    """fANOVA scores of a study made of ``trials`` (FrozenTrial)."""
    import optuna

    from sweep import search

    search.quiet()
    study = optuna.create_study(direction=direction)
    study.add_trials(trials)
    return importance.scores(study, TREES)


def _warm() -> None:
    try:
        import optuna.importance

        optuna.importance.FanovaImportanceEvaluator()  # imports scikit-learn
    except ImportError:
        pass  # the job says so, in importance.scores' own words


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends this process
    # Import in a thread while this one takes jobs off the pipe: a job larger than the pipe's
    # buffer would otherwise hold the report up until the import is done.
    warm = threading.Thread(target=_warm, daemon=True)
    warm.start()
    while True:
        try:
            job, trials, direction = conn.recv()
        except (EOFError, OSError):  # the report is done, or gone
            return
        warm.join()
        try:
            reply: Reply = (job, True, score(trials, direction))
        except SweepError as exc:
            reply = (job, False, str(exc))
        except Exception as exc:  # noqa: BLE001 (any failure of the forest becomes that figure's note)
            reply = (job, False, f"fANOVA failed: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class Scorer:
    """Sends studies to the worker (``submit``) and collects their scores (``result``) in any
    order. Use as a context manager: leaving it ends the worker, done or not."""

    def __init__(self) -> None:
        self._replies: dict[int, Reply] = {}
        self._jobs: dict[int, tuple[list[Any], optuna.study.StudyDirection]] = {}
        self._conn: Connection | None = None
        self._proc: Any = None
        self._gone = False  # the worker died before it answered
        if sys.platform == "linux":
            ctx = multiprocessing.get_context("fork")
            self._conn, child = ctx.Pipe()
            self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="sweep-fanova")
            self._proc.start()
            child.close()

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, study: optuna.Study) -> int:
        job = len(self._jobs)
        trials, direction = study.trials, study.direction
        self._jobs[job] = (trials, direction)
        if self._conn is not None and not self._gone:
            try:
                self._conn.send((job, trials, direction))
            except OSError:  # the worker died (killed, out of memory): result() says so
                self._gone = True
        return job

    def result(self, job: int) -> Scores:
        """The scores of a submitted study; SweepError when they cannot be had."""
        if self._conn is None:
            return score(*self._jobs[job])
        while job not in self._replies:
            try:
                if self._gone:
                    raise EOFError
                reply: Reply = self._conn.recv()
            except (EOFError, OSError):
                self._gone = True
                raise SweepError("the fANOVA worker process ended before it scored the runs") from None
            self._replies[reply[0]] = reply
        _, ok, value = self._replies.pop(job)
        if not ok:
            raise SweepError(value)
        return dict(value)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.kill()  # it may be fitting a forest nobody will read
            self._proc.join()
            self._proc = None
