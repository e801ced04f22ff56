"""What the CLI imports to start: each command in a fresh python, its modules read back from
``sys.modules`` (never timed here: bench/peers.py times it). Typer would build a pydantic
adapter for every option; ``sweep.cliparams`` takes plain values without it, and leaves the
rest (and the messages about bad values) to typer."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from helpers import project, python_env, sweep_cli


def imported(*args: str, cwd: Path) -> tuple[int, list[str]]:
    """Run ``sweep ARGS`` in a fresh python; its exit status and which heavy modules it loaded."""
    code = (
        "import json, sys\n"
        "from sweep.cli import main\n"
        f"sys.argv = ['sweep', *{list(args)!r}]\n"
        "status = 0\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    status = exc.code or 0\n"
        "heavy = sorted(m for m in ('optuna', 'torch', 'pydantic', 'rich') if m in sys.modules)\n"
        "print('HEAVY', json.dumps([status, heavy]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env(),
                          cwd=cwd, timeout=60)
    status, heavy = json.loads(proc.stderr.strip().splitlines()[-1].removeprefix("HEAVY "))
    return status, heavy


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    return project(tmp_path / "proj", {"lr": {"min": 0.001, "max": 0.1, "log": True}, "epochs": [1, 2]},
                   trials=3)


def test_help_ls_and_a_dry_run_start_without_pydantic(flags_file, tmp_path):
    assert imported("--help", cwd=tmp_path) == (0, [])
    runs = tmp_path / "runs"
    runs.mkdir()
    status, heavy = imported("ls", "--runs-dir", str(runs), cwd=tmp_path)
    assert status == 0 and not {"optuna", "torch", "pydantic"} & set(heavy)
    status, heavy = imported("run", str(flags_file), "--dry-run", "-n", "2", "--runs-dir", str(runs),
                             cwd=tmp_path)
    assert status == 0
    assert "pydantic" not in heavy and "torch" not in heavy


def test_plain_values_are_taken_as_typer_would(flags_file, tmp_path):
    result = sweep_cli("run", flags_file, "--dry-run", "--trials", "2", "--seed", "7", "--runs-dir",
                       tmp_path / "runs", "--set", "epochs=[3]")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert all("--epochs=3" in line for line in result.stdout.splitlines())


@pytest.mark.parametrize("args, words", [
    (["--trials", "0"], "greater than or equal to 1"),
    (["--trials", "two"], "'--trials'"),
    (["--seed", "-1"], "greater than or equal to 0"),
    (["--timeout", "soon"], "'--timeout'"),
])
def test_a_bad_value_still_gets_typers_own_message(flags_file, tmp_path, args, words):
    result = sweep_cli("run", flags_file, "--dry-run", "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 2
    assert words in result.stderr


def test_versions_of_imported_modules_come_from_the_modules(monkeypatch):
    """run.json's versions: what is imported says its own (the installed metadata is looked up,
    a scan of every folder on the path, only for the rest)."""
    from importlib import metadata

    import numpy
    import optuna

    from sweep import rundir

    looked: list[str] = []
    real = metadata.version

    def version(dist: str) -> str:
        looked.append(dist)
        return real(dist)

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    found = rundir.versions()
    assert found["optuna"] == optuna.__version__ and found["numpy"] == numpy.__version__
    assert "optuna" not in looked and "numpy" not in looked and "sweep" not in looked


def test_a_piped_sweep_runs_without_rich(flags_file, tmp_path):
    status, heavy = imported("run", str(flags_file), "-n", "1", "--runs-dir", str(tmp_path / "runs"),
                             cwd=flags_file.parent)
    assert status == 0
    assert "rich" not in heavy and "torch" not in heavy


@pytest.mark.parametrize("text", ["epoch 1\tloss 0.5\t\tok", "50%|#####\r100%|##########",
                                  "bell\x07 back\x08 vt\x0b ff\x0c", "[bold]kept[/] :smile:", "two\nlines\t!"])
def test_plain_lines_are_what_riches_plain_console_writes(capsys, text):
    from rich.console import Console

    from sweep.render import PlainLines

    riches = io.StringIO()
    Console(file=riches, no_color=True, highlight=False, force_terminal=False, soft_wrap=True,
            emoji=False).print(text, markup=False, highlight=False)
    PlainLines().print(text, markup=False, highlight=False)
    assert capsys.readouterr().err == riches.getvalue()


# The command leaves as the interpreter would, less its teardown (freeing optuna's and numpy's
# modules, a tenth of a second a sweep): exit handlers and the exit status are kept.
LEAVE = r"""
import atexit, sys

class Freed:
    def __del__(self):
        print("TEARDOWN", file=sys.stderr)

kept = Freed()  # a module global: freed only by the interpreter's teardown
atexit.register(lambda: print("ATEXIT", file=sys.stderr))
sys.argv = ["sweep", *sys.argv[1:]]
from sweep.cli import entry
entry()
"""


@pytest.mark.parametrize("args, status", [(["ls"], 0), (["run", "missing.yaml"], 2)])
def test_the_command_runs_exit_handlers_but_skips_the_teardown(tmp_path, args, status):
    (tmp_path / "runs").mkdir()
    proc = subprocess.run([sys.executable, "-c", LEAVE, *args, "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, env=python_env(), cwd=tmp_path, timeout=60)
    assert proc.returncode == status, proc.stderr
    assert "ATEXIT" in proc.stderr and "TEARDOWN" not in proc.stderr


# numpy's BLAS starts a pool of spinning threads as it loads: the sweep imports optuna (and so
# numpy) while the launcher's server boots on the other core, and needs no pool.
BLAS_POOL = r"""
import json, os, sys
from sweep import runner
with runner.one_blas_thread():
    import numpy
print(json.dumps([len(os.listdir("/proc/self/task")), os.environ.get("OPENBLAS_NUM_THREADS"),
                  os.environ.get("OMP_NUM_THREADS")]))
"""


def blas_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in python_env().items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                                "OMP_NUM_THREADS")}
    return dict(env, **extra)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads counted in /proc")
def test_optuna_is_imported_without_a_blas_pool_and_the_environment_is_put_back():
    proc = subprocess.run([sys.executable, "-c", BLAS_POOL], capture_output=True, text=True, timeout=60,
                          env=blas_env())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [1, None, None]  # one thread; the trials' environment is the user's


def test_a_blas_pool_size_the_user_set_is_kept():
    proc = subprocess.run([sys.executable, "-c", BLAS_POOL], capture_output=True, text=True, timeout=60,
                          env=blas_env(OMP_NUM_THREADS="3"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[1:] == [None, "3"]


def command_lines() -> list[list[str]]:
    from sweep import cli

    words = [[c.name or typer.main.get_command_name(c.callback.__name__)]
             for c in cli.app.registered_commands if c.callback is not None]
    for group in cli.app.registered_groups:
        assert group.typer_instance is not None and group.name is not None
        words += [[group.name, c.name or typer.main.get_command_name(c.callback.__name__)]
                  for c in group.typer_instance.registered_commands if c.callback is not None]
    return words


@pytest.mark.parametrize("words", command_lines(), ids=" ".join)
def test_a_command_built_alone_reads_as_in_the_whole_app(words):
    """Typer builds only the command named (each command's options cost milliseconds to build),
    and it says the same as in the whole app: its help, and its bad-usage message."""
    from sweep import cli

    alone = cli.only_invoked(words)
    assert list(typer.main.get_command(alone).commands) == words[:1]  # type: ignore[attr-defined]
    for args in ([*words, "--help"], [*words, "--no-such-option"]):
        whole = CliRunner().invoke(cli.app, args, prog_name="sweep")
        one = CliRunner().invoke(alone, args, prog_name="sweep")
        assert (one.exit_code, one.stdout, one.stderr) == (whole.exit_code, whole.stdout, whole.stderr)


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["lss"]])
def test_no_command_named_builds_them_all(args):
    from sweep import cli

    assert cli.only_invoked(args) is cli.app


def test_the_commands_annotations_are_objects_not_text():
    """Typer reads each option from its parameter's annotation; as text (``from __future__
    import annotations``) it evaluates every one, twice, on each start: 10 ms for ``run``."""
    from sweep import cli

    for info in cli.app.registered_commands:
        assert info.callback is not None
        assert not [name for name, kind in info.callback.__annotations__.items() if isinstance(kind, str)], \
            info.callback.__name__
