"""Storage URLs: ``redact`` hides every credential a URL can carry and never raises;
``check_storage_url`` refuses a bad URL with one line that never quotes a credential."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.errors import UsageError
from sweep.urls import check_storage_url, redact


@pytest.mark.parametrize("url, expected", [
    # the cases: a token in the query string, a password the old redaction kept
    ("postgresql://db.example.com/study?token=abc123",
     "postgresql://db.example.com/study?token=***"),
    ("postgresql://bob@db:5432/study?password=hunter2&sslmode=require",
     "postgresql://bob@db:5432/study?password=***&sslmode=require"),
    ("postgresql://bob:hunter2@db:5432/study?sslpassword=k3y&sslmode=verify-full",
     "postgresql://bob:***@db:5432/study?sslpassword=***&sslmode=verify-full"),
    # user info: the password goes, the user name stays
    ("mysql+pymysql://alice:pa55@host/db", "mysql+pymysql://alice:***@host/db"),
    ("postgresql://alice@host/db", "postgresql://alice@host/db"),
    ("postgresql://alice:@host/db", "postgresql://alice:@host/db"),  # an empty password hides nothing
    # a port out of range (urllib's .port raises ValueError on it): redacted, no traceback
    ("postgresql://u:pw@h:99999/db?password=x", "postgresql://u:***@h:99999/db?password=***"),
    ("postgresql://u:pw@h:port/db", "postgresql://u:***@h:port/db"),
    # unescaped @ / ? in a password: what urllib or SQLAlchemy would read as the password goes
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:p/ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:p?ss@h/db", "postgresql://u:***@h/db"),
    # malformed URLs urllib refuses to split: still masked, never raised
    ("postgresql://u:pw@[::1/db?token=t", "postgresql://u:***@[::1/db?token=***"),
    ("http://[::1/?api_key=1", "http://[::1/?api_key=***"),
    ("user:pw@host/db", "user:***@host/db"),  # no scheme
    # secret parameters by name, case-insensitive, percent-encoded names, the value to the next &
    ("mysql://h/db?PassWord=1&PWD=2&Api-Key=3&x=1", "mysql://h/db?PassWord=***&PWD=***&Api-Key=***&x=1"),
    ("postgresql://h/db?pass%77ord=z;x=1#f", "postgresql://h/db?pass%77ord=***"),
    ("postgresql://h/db?client_secret=s&db_password=p&refresh_token=r&application_name=a",
     "postgresql://h/db?client_secret=***&db_password=***&refresh_token=***&application_name=a"),
    # nothing to hide
    ("sqlite:///runs/study.db", "sqlite:///runs/study.db"),
    ("postgresql://h:5432/db?sslmode=require&connect_timeout=10",
     "postgresql://h:5432/db?sslmode=require&connect_timeout=10"),
    ("", ""),
    (None, None),
])
def test_redact(url, expected):
    assert redact(url) == expected


@pytest.mark.parametrize("name", [
    "password", "passwd", "pwd", "token", "access_token", "key", "api_key", "apikey", "secret",
    "client_secret", "sslpassword", "auth", "credentials", "PASSWORD", "Token", "SSLPassword",
])
def test_every_secret_parameter_is_hidden(name):
    url = f"postgresql://h/db?sslmode=require&{name}=VALUE&application_name=sweep"
    assert redact(url) == f"postgresql://h/db?sslmode=require&{name}=***&application_name=sweep"


SECRET = "S3CR3T"
PASSWORD_TAIL = st.text(alphabet="abc123@/?#:&;%=+ ", max_size=12)
USER = st.text(alphabet="abcdef-_.%", max_size=8)


@settings(max_examples=300, deadline=None)
@given(user=USER, tail=PASSWORD_TAIL, port=st.integers(-10, 10**6), param=st.sampled_from(
    ["password", "token", "sslpassword", "api_key", "secret"]))
def test_no_password_survives_redaction(user, tail, port, param):
    """Whatever follows it (an unescaped @, /, ?, a port out of range), a password's start is
    never written."""
    for url in (f"postgresql://{user}:{SECRET}{tail}@host:{port}/db",
                f"postgresql://{user}@host:{port}/db?sslmode=x&{param}={SECRET}{tail}",
                f"mysql://host/db?{param}={SECRET}{tail}&x=1"):
        assert SECRET not in redact(url), url


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_redact_never_raises(text):
    assert isinstance(redact(text), str)
    assert isinstance(redact("postgresql://" + text), str)


# ---------------------------------------------------------------- check_storage_url


@pytest.mark.parametrize("url", [
    None, "", "sqlite:///runs/study.db", "sqlite:////abs/study.db", "sqlite://",
    "postgresql://bob:pw@db.example.com:5432/study?sslmode=require",
    "postgresql+psycopg2://bob@db/study", "postgresql://bob@[::1]:5432/study",
    "postgresql:///study?host=/var/run/postgresql", "mysql+pymysql://u:p@h:3306/db",
    "mysql://u@h:65535/db", "postgresql://u:p%40ss@h/db",
])
def test_good_storage_urls_pass(url):
    check_storage_url(url)


@pytest.mark.parametrize("url, message", [
    ("postgresql://u:hunter2@h:99999/db", "--storage: port '99999' is out of range (1-65535)"),
    ("postgresql://h:0/db", "--storage: port '0' is out of range (1-65535)"),
    ("postgresql://h:" + "9" * 5000 + "/db", "--storage: port '99999999999999999...' is out of range (1-65535)"),
    ("postgresql://h:543x/db", "--storage: the port is not a number (1-65535)"),
    ("postgresql://u:hunter2@h:²/db", "--storage: the port is not a number (1-65535)"),
    ("postgres://u:hunter2@h/db", ("--storage: unknown scheme 'postgres'; did you mean postgresql://? "
     "a storage URL starts with one of postgresql://, mysql://, mariadb://, sqlite:///")),
    ("redis://h:6379", ("--storage: unknown scheme 'redis'; a storage URL starts with one of "
     "postgresql://, mysql://, mariadb://, sqlite:///")),
    ("runs/study.db", ("--storage: not a database URL or a journal file path; write one such as "
     "postgresql://user@host:5432/db, sqlite:///study.db or /shared/dir/study.journal")),
    ("/no/such/dir/study.journal", "--storage: the journal's folder /no/such/dir does not exist"),
    ("postgresql:///study", ("--storage: a postgresql URL needs a host (postgresql://user@HOST/db), "
     "or ?host=/socket/dir for a local socket")),
    ("postgresql://u:hunter2@:5432/study", ("--storage: a postgresql URL needs a host "
     "(postgresql://user@HOST/db), or ?host=/socket/dir for a local socket")),
    ("sqlite://host/study.db", ("--storage: a sqlite URL has no host: sqlite:///relative.db or "
     "sqlite:////absolute/path.db")),
    ("postgresql://u:hunter@2@h/db", ("--storage: the user name or password holds '@', '/', '?' or "
     "':'; percent-encode it (e.g. %40 for @)")),
    ("postgresql://u:hunter2@h/db\n", "--storage: the URL contains control characters or a line break"),
])
def test_bad_storage_url_is_one_line_without_the_password(url, message):
    with pytest.raises(UsageError) as info:
        check_storage_url(url)
    text = str(info.value)
    assert text == message
    assert "hunter" not in text and "\n" not in text


# ---------------------------------------------------------------- through `sweep run`


def test_sweep_run_with_a_storage_port_out_of_range_is_one_line(write, tmp_path):
    from typer.testing import CliRunner

    from sweep.cli import app

    path = write("script: train.py\nflags:\n  lr: [0.1]\n")
    result = CliRunner().invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs"),
                                      "--storage", "postgresql://u:hunter2@db:99999/study"],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert result.stderr == "Error: --storage: port '99999' is out of range (1-65535)\n"
    assert not (tmp_path / "runs").exists()
