"""A trial's command line: the flags file's ``command:`` (a list of words with W&B's agent macros)
or the default ``${interpreter} ${program} ${args}``, filled in with one trial's flags; and
which launcher can run it. ``sweep.spec`` checks the words against ``MACROS``.

The macros mean what W&B's sweep agent makes of them, so a W&B user's ``command:`` runs as it
did there: a value is written as Python's ``str`` gives it (``True``, ``0.001``, ``1e-05``), and
a macro is a whole word (``--config=${args_json_file}`` is passed as it is written)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep import rundir

if TYPE_CHECKING:
    from sweep.spec import Flag, SweepSpec

ARGS_FILE = "args.json"  # ${args_json_file}: the trial's flags as JSON, in its run directory
MACRO_RE = re.compile(r"\$\{([^{}]*)\}\Z")
# W&B's agent fills ${envvar:NAME} anywhere in a word, from the environment, and leaves NAME
# itself when the variable is unset (wandb/sdk/launch/sweeps/utils.py create_sweep_command).
ENVVAR_RE = re.compile(r"\$\{envvar:([A-Z0-9_]*)\}")


@dataclass(frozen=True)
class Fill:
    """What the macros are filled from: the sweep's spec, one trial's flags, its run directory."""

    spec: SweepSpec
    values: dict[str, Any]
    run_dir: Path
    program: Path | None = None  # the script as the trial runs it (its copy, in a mirror)

    def pairs(self) -> list[tuple[Flag, Any]]:
        # A flag absent from the trial (a condition left it out) is not passed at all.
        return [(f, self.values[f.name]) for f in self.spec.flags if f.name in self.values]

    def flags(self) -> dict[str, Any]:
        return {f.name: v for f, v in self.pairs()}


def text(value: Any) -> str:
    """A flag value as W&B's agent writes it on a command line: Python's ``str``."""
    return str(value)


def option(flag: Flag, value: Any, equals: bool = True) -> list[str]:
    """The words that pass one flag as an option: ``--name=value`` (``--name value`` without
    ``equals``). A switch is given bare when true and left out when false: the one place
    where a flag's being a switch changes its words."""
    if flag.switch:
        return flag.switch_words(value)
    return [f"--{flag.name}={text(value)}"] if equals else [f"--{flag.name}", text(value)]


def _args(fill: Fill) -> list[str]:
    return [word for flag, value in fill.pairs() for word in option(flag, value)]


def _args_no_equals(fill: Fill) -> list[str]:
    return [word for flag, value in fill.pairs() for word in option(flag, value, equals=False)]


def _args_no_hyphens(fill: Fill) -> list[str]:
    return [f"{flag.name}={text(value)}" for flag, value in fill.pairs()]


def _args_no_boolean_flags(fill: Fill) -> list[str]:
    words = []
    for flag, value in fill.pairs():
        if isinstance(value, bool) and not flag.switch:  # a switch's words are option()'s to say
            words += [f"--{flag.name}"] if value else []
        else:
            words += option(flag, value)
    return words


def _program(fill: Fill) -> list[str]:
    assert fill.spec.script is not None  # the flags file's check: ${program} needs script:
    return [str(fill.program or fill.spec.script)]


# The table of macros: its names are what spec accepts, what --help and README list.
MACROS: dict[str, Callable[[Fill], list[str]]] = {
    "interpreter": lambda fill: [sys.executable],  # the python running sweep
    "program": _program,
    "args": _args,
    "args_no_equals": _args_no_equals,
    "args_no_hyphens": _args_no_hyphens,
    "args_no_boolean_flags": _args_no_boolean_flags,
    "args_json": lambda fill: [json.dumps(fill.flags())],
    # Absolute: the trial runs in <run>/work, and the runs directory may be given relative.
    "args_json_file": lambda fill: [str(fill.run_dir.resolve() / ARGS_FILE)],
    # W&B's /usr/bin/env finds a python on PATH; ${interpreter} is already the absolute one.
    "env": lambda fill: [],
    # W&B's agent's Hydra forms: +k=v appends a key to the config, ++k=v adds or overrides it.
    "args_append_hydra": lambda fill: [f"+{word}" for word in _args_no_hyphens(fill)],
    "args_override_hydra": lambda fill: [f"++{word}" for word in _args_no_hyphens(fill)],
}


def macro(word: str) -> str | None:
    """The macro's name when ``word`` is one whole ``${...}``, else None (a fixed word)."""
    match = MACRO_RE.match(word)
    return match.group(1) if match and not ENVVAR_RE.match(word) else None


def envvars(word: str, env: Mapping[str, str] | None = None) -> str:
    """``word`` with each ``${envvar:NAME}`` replaced as W&B's agent replaces it."""
    env = os.environ if env is None else env
    return ENVVAR_RE.sub(lambda m: env.get(m.group(1), m.group(1)), word)


def template(spec: SweepSpec) -> tuple[str, ...]:
    """The sweep's command before its flags are filled in."""
    if spec.command is not None:
        return spec.command
    if spec.module is not None:
        return ("${interpreter}", "-m", spec.module, "${args}")
    return ("${interpreter}", "${program}", "${args}")


def argv(spec: SweepSpec, values: dict[str, Any], run_dir: Path, program: Path | None = None) -> list[str]:
    """One trial's command line: every macro replaced by its words, fixed words as they are.
    ``program`` stands for the script where the trial runs another copy of it."""
    fill = Fill(spec, values, run_dir, program)
    words: list[str] = []
    for word in template(spec):
        name = macro(word)
        words += [envvars(word)] if name is None else MACROS[name](fill)
    return words


def write_inputs(stage: Path, spec: SweepSpec, values: dict[str, Any]) -> None:
    """Write into a staged run directory the files its command names (``${args_json_file}``)."""
    if any(macro(word) == "args_json_file" for word in template(spec)):
        rundir.write_json(stage / ARGS_FILE, Fill(spec, values, stage).flags())


def launcher(spec: SweepSpec) -> str:
    """The launcher that runs the sweep's trials: the flags file's, except that only a python
    command can run warm (forked from a server running this python); any other is spawned."""
    return spec.launcher if spec.launcher != "fork" or warm(template(spec)) else "spawn"


def preload(spec: SweepSpec) -> tuple[str, ...]:
    """What the warm launcher's server imports for this sweep: what its script imports."""
    from sweep import imports

    return imports.preload(spec.script, spec.module, spec.root) if launcher(spec) == "fork" else ()


def warm(words: Sequence[str]) -> bool:
    """Whether the warm launcher can run this command: this python (``${interpreter}``, or a
    ``python`` that is this one) running a script or ``-m module``, with no interpreter
    options before it (``-u``, ``-X dev`` and ``-c`` need a fresh interpreter)."""
    words = [w for w in words if macro(w) != "env"]
    if len(words) < 2 or not (macro(words[0]) == "interpreter" or same_python(words[0])):
        return False
    if words[1] == "-m":
        return len(words) > 2 and macro(words[2]) is None and not words[2].startswith("-")
    return macro(words[1]) == "program" or (macro(words[1]) is None and not words[1].startswith("-"))


def same_python(word: str) -> bool:
    """Whether the program ``word`` names is the python running sweep, with the same packages:
    the same binary, in the same folder (a virtual environment's python is a link to its
    base's, which lacks the environment's packages)."""
    if macro(word) is not None:
        return False
    found = shutil.which(word)
    if found is None:
        return False
    found, ours = os.path.abspath(found), os.path.abspath(sys.executable)
    return os.path.dirname(found) == os.path.dirname(ours) and os.path.realpath(found) == os.path.realpath(ours)
