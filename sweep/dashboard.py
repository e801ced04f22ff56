"""``sweep dashboard``: optuna-dashboard (an optional extra) on a sweep's own study storage.

The study is the sweep's: its journal under ``<runs>/.sweep/`` or the shared database it ran
on. Each trial a sweep ends carries its run id, run directory and final metrics as user
attributes (``driver.run_attrs``), which the dashboard shows beside its flags and value.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from sweep import rundir, search
from sweep.errors import SweepError, UsageError
from sweep.urls import REDACTED

EXTRA = "sweep dashboard needs optuna-dashboard, an optional extra: pip install 'sweep[dashboard]'"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per request would bury the address the user needs


def serve(runs_dir: Path, ref: str, storage: str | None, host: str, port: int,
          ready: Callable[[str, str], None]) -> None:
    """Serve the dashboard until interrupted; ``ready`` gets the sweep id and the address once it
    listens."""
    try:
        import optuna_dashboard
    except ImportError:
        raise SweepError(EXTRA) from None
    if not runs_dir.is_dir():
        raise UsageError(f"runs directory {runs_dir} does not exist")
    record = rundir.find_sweep(runs_dir, ref)
    url = storage or record.storage
    if url and REDACTED in url:
        raise UsageError(f"sweep {record.id} uses a storage with a password, which is not saved: "
                         "pass --storage again")
    app = optuna_dashboard.wsgi(search.storage(url, runs_dir / rundir.STATE_DIR, record.id))
    try:
        server = make_server(host, port, app, handler_class=_Quiet)
    except OSError as exc:
        raise SweepError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    with server:
        ready(record.id, f"http://{host}:{server.server_port}/dashboard/")
        server.serve_forever()
