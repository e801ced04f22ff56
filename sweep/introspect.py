"""What a script's argparse parser says about its flags, found without running its training.

``read`` runs the script in a child python under a small bootstrap (``sweep/argdump.py``) that
stops it the moment it parses its arguments and hands back every option: its strings, dest,
default, type, choices, nargs, help and action. The child runs in an empty temporary folder
with its output discarded, under a timeout; a script whose own text never mentions argparse is
not run at all. Nothing is cached: each sweep (and ``sweep init``) reads the parser afresh.

``with_switches`` feeds that to a sweep: a flag whose values are true/false and whose option is
an argparse switch (``store_true``, ``store_false``, ``BooleanOptionalAction``) is given as the
bare words that set it, instead of ``--name=true`` (which argparse refuses).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep import launch
from sweep.errors import ScriptError
from sweep.spec import SweepSpec

TIMEOUT_S = 30.0  # a script importing torch and transformers gets to its parser in a few seconds
BOOTSTRAP = (Path(__file__).parent / "argdump.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Option:
    """One argparse action, as the bootstrap described it. ``kind``: store, store_true,
    store_false, store_const, boolean_optional, append, count, help, version, subcommands, or
    the class name of a custom action."""

    strings: tuple[str, ...]
    dest: str
    kind: str
    default: Any = None
    const: Any = None
    type: str | None = None
    choices: tuple[Any, ...] | None = None
    nargs: int | str | None = None
    required: bool = False
    help: str | None = None
    hidden: bool = False
    subcommand: str | None = None  # the subcommand whose parser has it; None: the main parser

    @classmethod
    def of(cls, raw: dict[str, Any], subcommand: str | None) -> Option:
        choices = raw.get("choices")
        return cls(tuple(raw.get("options") or ()), str(raw.get("dest")), str(raw.get("kind")),
                   raw.get("default"), raw.get("const"), raw.get("type"),
                   None if choices is None else tuple(choices), raw.get("nargs"),
                   bool(raw.get("required")), raw.get("help"), bool(raw.get("hidden")), subcommand)

    def sets(self, word: str) -> bool | None:
        """The value giving ``word`` bare stores in ``dest``, for a boolean switch; else None."""
        if self.kind == "store_true":
            return True
        if self.kind == "store_false":
            return False
        if self.kind == "store_const" and isinstance(self.const, bool):
            return self.const
        if self.kind == "boolean_optional":
            return not word.startswith("--no-")
        return None


@dataclass(frozen=True)
class Parser:
    """Every option of the parsers a script made before it parsed its arguments."""

    options: tuple[Option, ...]

    def option(self, name: str) -> Option | None:
        """The option a flag named ``name`` is passed to (``--name``)."""
        word = f"--{name}"
        return next((o for o in self.options if word in o.strings), None)

    def switch_words(self, name: str) -> tuple[str, str] | None:
        """What to give for a boolean flag ``name``, when true and when false ("" for nothing),
        or None when ``--name`` is not a switch.

        The value is what the script ends up with under the flag's name: ``tied: true`` gives
        ``--tied`` (store_true), ``augment: false`` gives ``--augment`` (store_false, dest
        augment), ``shuffle: false`` gives ``--no-shuffle`` (BooleanOptionalAction). A flag
        named after an option whose dest has another name (``no_pin_mem``, store_false, dest
        pin_mem) means that option: true gives it. A value the dest already has by default
        gives nothing, unless the flag's own option or a sibling sets it (``--pin_mem`` and
        ``--no_pin_mem`` share dest pin_mem: each value gets its own word)."""
        word = f"--{name}"
        option = self.option(name)
        sets = option.sets(word) if option else None
        if option is None or sets is None:
            return None
        own = name.replace("-", "_") == option.dest
        return self._word(option, word, True if own else sets), self._word(option, word, False if own else not sets)

    def _word(self, option: Option, word: str, value: bool) -> str:
        """The word that stores ``value`` in ``option``'s dest: ``word`` itself if it does, else
        a sibling's (same dest), else "" (leave it out: the default, or no option can)."""
        siblings = [(o, w) for o in self.options if o.dest == option.dest for w in o.strings if w.startswith("--")]
        return next((w for o, w in [(option, word), *siblings] if o.sets(w) is value), "")


def read(script: Path | None, module: str | None = None, root: Path | None = None,
         timeout: float = TIMEOUT_S) -> Parser:
    """The parser of ``script`` (or of ``python -m module``, found from ``root``), read by running
    it only up to its ``parse_args``. Raises ``ScriptError`` saying why it cannot be read."""
    kind, target = ("script", os.path.abspath(script)) if script is not None else ("module", str(module))
    name = Path(target).name if script is not None else target
    if script is not None and not script.is_file():
        raise ScriptError(f"{script}: no such script")
    folder = str(root if root is not None else Path.cwd())
    with tempfile.TemporaryDirectory(prefix="sweep-introspect-") as tmp:
        out = Path(tmp) / "parser.json"
        work = Path(tmp) / "work"  # whatever the script writes before parsing lands here
        work.mkdir()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in [launch.PKG_ROOT, os.environ.get("PYTHONPATH", "")] if p))
        cmd = [sys.executable, "-c", BOOTSTRAP, str(out), kind, target, folder]
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ScriptError(f"{name}: did not reach its argument parser within {timeout:g} s") from None
        finally:
            _end_group(proc)
        try:
            result = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ScriptError(f"{name}: could not be read (the python running it ended with status "
                              f"{proc.returncode})") from None
    if "error" in result:
        raise ScriptError(f"{name}: {result['error']}")
    options = tuple(Option.of(raw, parser.get("subcommand"))
                    for parser in result.get("parsers", []) for raw in parser.get("options", []))
    return Parser(options)


def _end_group(proc: subprocess.Popen) -> None:
    """Kill the child and anything it started (it exits at its parse_args, but a script may
    have started a process before that). The group's id cannot be reused while it has members."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def with_switches(spec: SweepSpec, timeout: float = TIMEOUT_S) -> SweepSpec:
    """``spec`` with each true/false flag whose option is an argparse switch given as bare
    words. The parser is read only when some flag has true/false values; where it cannot be
    read (not argparse, an error before parsing, a timeout) the spec is returned as it is."""
    boolean = [f.name for f in spec.flags
               if f.kind != "range" and f.values and all(isinstance(v, bool) for v in f.values)]
    if not boolean:
        return spec
    try:
        parser = read(spec.script, spec.module, spec.root, timeout)
    except ScriptError:
        return spec
    flags = []
    for flag in spec.flags:
        words = parser.switch_words(flag.name) if flag.name in boolean else None
        flags.append(dataclasses.replace(flag, switch=True, words=words) if words else flag)
    return dataclasses.replace(spec, flags=tuple(flags))
