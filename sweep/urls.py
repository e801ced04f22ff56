"""Storage URLs: hide their credentials before one is written or printed, and check one up
front so a bad URL is one line, not a traceback from deep inside a database driver.

Stdlib only, and pure string work: nothing here parses a port number into an ``int`` behind
the caller's back (``urllib``'s ``.port`` raises on 99999), so ``redact`` never raises.

The consumer of a storage URL is SQLAlchemy (Optuna's ``RDBStorage``), whose parser differs
from ``urllib.parse`` where a password holds an unescaped ``@``, ``/`` or ``?``. ``redact``
hides what *either* parser would take as the password, and ``check_storage_url`` reads the
host and port the way SQLAlchemy will.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, unquote_plus

from sweep.errors import UsageError

REDACTED = "***"

# Query parameters that carry a secret: these names (case-insensitive, "-" read as "_"), and
# any name containing one of the fragments (db_password, refresh_token, client_secret, ...).
SECRET_PARAMS = frozenset({
    "password", "passwd", "pwd", "pass", "token", "access_token", "key", "api_key", "apikey",
    "secret", "client_secret", "sslpassword", "auth", "credentials",
})
SECRET_FRAGMENTS = ("password", "passwd", "pwd", "secret", "token", "credential", "apikey",
                    "api_key", "auth")

# The storages a URL may name: dialect -> whether it is a server (needs a host) or a local file.
# One table, read by the check and its error message alike.
STORAGES = {"postgresql": "server", "mysql": "server", "mariadb": "server", "sqlite": "file"}
# Query parameters that point a server dialect at a local socket instead of a host.
SOCKET_PARAMS = ("host", "unix_socket")
HINTS = {"postgres": "postgresql", "pg": "postgresql", "psql": "postgresql",
         "sqlite3": "sqlite", "file": "sqlite"}
EXAMPLE = "postgresql://user@host:5432/db, sqlite:///study.db or /shared/dir/study.journal"
# A path with this ending (no scheme) names a journal file, shared by workers on one filesystem.
JOURNAL_SUFFIX = ".journal"

# SQLAlchemy's own URL grammar (sqlalchemy.engine.url._parse_url), which is what reads --storage.
_SQLA_URL = re.compile(
    r"""(?P<scheme>[\w+]+)://
        (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
        (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
        (?:/(?P<database>[^?]*))?
        (?:\?(?P<query>.*))?""",
    re.VERBOSE | re.DOTALL,
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def is_secret_param(name: str) -> bool:
    key = unquote_plus(name).strip().lower().replace("-", "_")
    return key in SECRET_PARAMS or any(f in key for f in SECRET_FRAGMENTS)


def redact(url: str | None) -> str | None:
    """``url`` with every credential it carries replaced by ``***``: the password in the user
    info (the user name stays) and the value of each query parameter named like a secret
    (``password``, ``token``, ``key``, ``secret``, ``sslpassword``, ...). Never raises; a
    malformed URL is masked as much as either parser could read into it."""
    if not url:
        return url
    scheme = _SCHEME.match(url)
    # The user info follows "scheme://"; without the slashes ("user:pw@host", "x:u:pw@h")
    # read the whole text as if it began there: masking too much is safe, too little is not.
    start = scheme.end() + 2 if scheme and url.startswith("//", scheme.end()) else 0
    # urllib: the authority ends at the first / ? #, and the user info at its last @.
    authority_end = len(url)
    for ch in "/?#":
        i = url.find(ch, start)
        if i != -1:
            authority_end = min(authority_end, i)
    at = url.rfind("@", start, authority_end)
    # SQLAlchemy: a user name without : or /, then ":", then the password up to the first @.
    colon = url.find(":", start)
    slash = url.find("/", start)
    rest = start
    if colon != -1 and (slash == -1 or colon < slash):
        first_at = url.find("@", colon)
        ends = [i for i in (at if at > colon else -1, first_at) if i != -1]
        if ends:
            end = max(ends)
            if end > colon + 1:
                url = url[:colon + 1] + REDACTED + url[end:]
                end = colon + 1 + len(REDACTED)
            rest = end
    elif at != -1:
        rest = at
    # The query: from the first ? after the user info (a fragment is not split off: SQLAlchemy
    # reads "#..." as part of the last value, so it is masked with it).
    q = url.find("?", rest)
    if q == -1:
        return url
    return url[:q + 1] + _redact_query(url[q + 1:])


def _redact_query(text: str) -> str:
    """Mask the value of every secret-named ``name=value`` pair, split on ``&`` only (a ``;``
    or ``#`` inside a secret value stays masked with it)."""
    pairs = text.split("&")
    for i, pair in enumerate(pairs):
        name, eq, value = pair.partition("=")
        if eq and value and is_secret_param(name):
            pairs[i] = f"{name}={REDACTED}"
    return "&".join(pairs)


def check_storage_url(url: str | None) -> None:
    """Raise ``UsageError`` (one line, never echoing a credential) unless ``url`` is a storage
    URL a sweep can use: a known scheme, a port in 1..65535, a host for a database server (or
    ``?host=`` naming a local socket) and none for SQLite. ``None`` or empty: the default
    journal, nothing to check."""
    if not url:
        return
    if not url.isprintable():
        raise UsageError("--storage: the URL contains control characters or a line break")
    scheme = _SCHEME.match(url)
    if "://" not in url and url.endswith(JOURNAL_SUFFIX):
        _check_journal(url)
        return
    if scheme is None or not url.startswith("//", scheme.end()):
        raise UsageError(f"--storage: not a database URL or a journal file path; write one such as {EXAMPLE}")
    name = scheme.group(1)
    dialect = name.split("+", 1)[0]
    if dialect not in STORAGES:
        known = HINTS.get(dialect.lower(), dialect.lower())
        hint = f"did you mean {_prefix(known)}? " if known in STORAGES else ""
        raise UsageError(f"--storage: unknown scheme {_show(name)}; {hint}a storage URL starts "
                         f"with one of {', '.join(map(_prefix, STORAGES))}")
    m = _SQLA_URL.fullmatch(url)
    if m is None:
        raise UsageError(f"--storage: cannot read the {dialect} URL; write one such as {EXAMPLE}")
    host, port = m.group("ipv6host") or m.group("ipv4host"), m.group("port")
    if "@" in (host or "") + (port or ""):  # SQLAlchemy ends the password at the first @
        raise UsageError("--storage: the user name or password holds '@', '/', '?' or ':'; "
                         "percent-encode it (e.g. %40 for @)")
    if port:  # quoted only when it is digits: text there may be a piece of a password
        if not (port.isascii() and port.isdigit()):
            raise UsageError("--storage: the port is not a number (1-65535)")
        if len(port) > 5 or not 1 <= int(port) <= 65535:
            raise UsageError(f"--storage: port {_show(port)} is out of range (1-65535)")
    query = {k for k, _ in parse_qsl(m.group("query") or "", keep_blank_values=True)}
    if STORAGES[dialect] == "server" and not host and not query & set(SOCKET_PARAMS):
        raise UsageError(f"--storage: a {dialect} URL needs a host ({dialect}://user@HOST/db), or "
                         "?host=/socket/dir for a local socket")
    if STORAGES[dialect] == "file" and (host or port):
        raise UsageError("--storage: a sqlite URL has no host: sqlite:///relative.db or "
                         "sqlite:////absolute/path.db")


POSTGRES_EXTRA = "pip install -e '.[postgres]' (psycopg 3)"


def check_driver(url: str | None) -> None:
    """Raise ``UsageError`` when a postgresql URL has no driver to use it (the optional extra):
    checked up front, before anything is started or written."""
    if not url or not url.startswith("postgresql"):
        return
    from importlib.util import find_spec

    wanted = {"postgresql": ("psycopg", "psycopg2"), "postgresql+psycopg": ("psycopg",)}
    names = wanted.get(url.partition("://")[0], ())
    if names and all(find_spec(n) is None for n in names):
        raise UsageError(f"--storage: a postgresql URL needs the postgres extra: {POSTGRES_EXTRA}")


def _check_journal(path: str) -> None:
    """A journal file path: its folder must exist (a worker never creates a shared folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--storage: the journal's folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"--storage: {path} is a folder; name the journal file in it")


def _prefix(dialect: str) -> str:
    return dialect + ("://" if STORAGES[dialect] == "server" else ":///")


def _show(text: str) -> str:
    """A short quotation of part of a (printable) URL for an error message."""
    return repr(text if len(text) <= 20 else text[:17] + "...")
