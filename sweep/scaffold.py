"""``sweep init SCRIPT``: a starting flags file written from the script's own argparse parser
(read by ``sweep.introspect``, which never runs the training).

Every option a flags file can set becomes a flag fixed at the script's default, with its help
text, type and choices as a comment and a ready list or range to search it; switches are
marked; what a flags file cannot pass (positionals, options taking several values, counters)
is listed as comments. The text is checked by the flags file's own rules before it is given.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sweep import introspect
from sweep import spec as specs
from sweep.errors import ScriptError, UsageError
from sweep.introspect import Option, Parser

SKIPPED = {"help", "version"}
NUMBER_TYPES = {"int": int, "float": float}
HEADER = """\
# Written by `sweep init` from the script's argparse parser (nothing of the script ran but its
# imports). Each flag is fixed at the script's default. To search one, give a list of values
# (lr: [0.01, 0.1]) or a range (lr: {min: 1.0e-4, max: 0.1, log: true}; int: true for whole
# numbers, step: for a grid); each flag's comment suggests one.
"""


@dataclass(frozen=True)
class Entry:
    """One flag of the file: ``value`` is None for a commented-out line, explained by ``note``."""

    name: str
    value: Any
    about: str  # the help text, type and choices
    search: str | None = None  # a list or range to search it
    note: str | None = None


def flags_file(script: Path, output: Path | None = None) -> str:
    """The text of a flags file for ``script``, to be saved as ``output`` (None: in the current
    folder). Raises ``ScriptError`` when the script's parser cannot be read."""
    parser = introspect.read(script, root=script.parent)
    entries, others = _entries(parser)
    if not any(e.value is not None for e in entries):
        raise ScriptError(f"{script.name}: its parser has no option a flags file can set")
    where = (output if output is not None else Path("flags.yaml")).absolute()
    text = _render(os.path.relpath(script.absolute(), where.parent), entries, others)
    specs.parse(yaml.load(text, Loader=specs._Loader), where)  # the file keeps its own rules
    return text


def write(path: Path, text: str, force: bool = False) -> None:
    """Write ``text`` to ``path`` whole or not at all; an existing file only with ``force``."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if a file appeared meanwhile: never clobber it
    except FileExistsError:
        raise UsageError(f"{path} exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- the flags


def _entries(parser: Parser) -> tuple[list[Entry], list[str]]:
    entries: list[Entry] = []
    others: list[str] = []
    dests: set[str] = set()
    main = [o for o in parser.options if o.subcommand is None]
    for option in main:
        if option.kind in SKIPPED or option.hidden:
            continue
        if option.kind == "subcommands":
            others.append(f"subcommands: {', '.join(map(str, option.choices or ()))} "
                          "(give one with command:, and its own options)")
            continue
        if not option.strings:
            others.append(f"positional {option.dest}: {option.help or 'no help'} (give it with command:)")
            continue
        long = next((s for s in option.strings if s.startswith("--")), None)
        if long is None:
            others.append(f"{'/'.join(option.strings)}: a short option only; a flag is passed as --NAME")
            continue
        if option.dest in dests:
            continue  # one flag per value: --pin-mem and --no-pin-mem both set pin_mem
        dests.add(option.dest)
        entries.append(_entry(parser, _named(parser, option, long)))
    return entries, others


def _named(parser: Parser, option: Option, long: str) -> tuple[Option, str]:
    """The option (and its string) a flag should be named after: for switches sharing a dest,
    the one named as the dest (``--pin-mem`` rather than ``--no-pin-mem``)."""
    for o in parser.options:
        for s in o.strings:
            if o.dest == option.dest and s.startswith("--") and s[2:].replace("-", "_") == option.dest:
                return o, s
    return option, long


def _entry(parser: Parser, named: tuple[Option, str]) -> Entry:
    option, word = named
    name = word[2:]
    about = _about(option)
    if option.sets(word) is not None:
        own = name.replace("-", "_") == option.dest
        value = option.default if own else option.default == option.sets(word)
        return Entry(name, {"value": bool(value), "switch": True}, f"{about}; a switch",
                     search=_yaml({"values": [True, False], "switch": True}))
    if option.kind != "store" or option.nargs not in (None, "?"):
        why = {"append": "repeatable", "count": "a counter (-vv)"}.get(
            option.kind, "takes several values" if option.kind == "store" else f"a {option.kind} action")
        return Entry(name, None, about, note=f"{why}: not set by a flags file")
    default = _typed(option.default, option.type)
    if default is None or isinstance(default, list) or (isinstance(default, float) and not math.isfinite(default)):
        need = "required" if option.required else "no default"
        return Entry(name, None, about, note=f"{need}: give a value to pass --{name}")
    return Entry(name, default, about, search=_search(default, option.choices))


def _about(option: Option) -> str:
    parts = [" ".join(option.help.split())] if option.help else []
    if option.type and option.type != "str":
        parts.append(f"({option.type})")
    return " ".join(parts) or option.dest


def _typed(value: Any, kind: str | None) -> Any:
    """A text default of a number option as the number argparse makes of it (``"1e-3"``)."""
    if isinstance(value, str) and kind in NUMBER_TYPES:
        try:
            return NUMBER_TYPES[kind](value)
        except ValueError:
            return value
    return value


def _search(value: Any, choices: tuple[Any, ...] | None) -> str | None:
    if choices:
        return f"one of {_yaml(list(choices))}"
    if isinstance(value, bool):
        return "[true, false]"
    if isinstance(value, int) and value > 0:
        return _yaml({"min": max(1, value // 4), "max": value * 4, "int": True})
    if isinstance(value, float) and value > 0:
        return _yaml({"min": float(f"{value / 10:.3g}"), "max": float(f"{value * 10:.3g}"), "log": True})
    if isinstance(value, float) and value == 0:
        return _yaml({"min": 0.0, "max": 0.5})
    return None


# ---------------------------------------------------------------- the text


def _yaml(value: Any) -> str:
    """One value in YAML's flow style, on one line: ``0.001``, ``'yes'``, ``{min: 1, max: 4}``."""
    return yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=1 << 30)[1:-2]


def _render(script: str, entries: list[Entry], others: list[str]) -> str:
    lines = [HEADER.rstrip("\n"),
             f"script: {_yaml(script)}",
             "trials: 10",
             "metric: eval_accuracy     # what to rank trials by: a name the script prints as 'name: value'",
             "flags:"]
    for e in entries:
        search = f"; search {e.search}" if e.search else ""
        lines.append(f"  # {e.about}{search}")
        if e.value is None:
            lines.append(f"  # {_yaml(e.name)}: ...   ({e.note})")
        else:
            lines.append(f"  {_yaml(e.name)}: {_yaml(e.value)}")
    if others:
        lines += ["# Not flags of this file:"] + [f"#   {line}" for line in others]
    return "\n".join(lines) + "\n"
