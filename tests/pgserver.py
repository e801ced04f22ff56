"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary folder,
pg_ctl on a free port of 127.0.0.1, stopped and deleted afterwards. PostgreSQL refuses to run
as root, so as root the server runs as the ``postgres`` user (Debian's package creates it)
or, failing that, a user made here. Connections from 127.0.0.1 need a password (scram), so
the tests can check that it never lands in a file."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "sweep"  # the database superuser initdb creates
PASSWORD = "s3cret-pw-never-written"
SERVICE_USERS = ("postgres", "sweeptest")


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl live: Debian keeps them out of PATH, under its versioned folder."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_user() -> str | None:
    """None when not root (the server runs as us); else a user without privileges to run it."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USERS[-1]], check=True)
    return SERVICE_USERS[-1]


class Server:
    """``with Server() as pg: pg.url("db")``. ``stop()``/``start()`` restart it in place."""

    def __init__(self) -> None:
        folder = bin_dir()
        if folder is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = folder
        self.port = free_port()
        self.user = _service_user()
        self.root = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
        self.data = self.root / "data"

    def _run(self, *argv: str) -> None:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def __enter__(self) -> Server:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                  "--auth-local=trust", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        self.start()
        return self

    def start(self) -> None:
        # Only 127.0.0.1, a socket in our folder, and fsync off: a test server, not a store.
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (with the password)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
