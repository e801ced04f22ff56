"""The bootstrap ``sweep.introspect`` runs in a child python: it runs a training script only up
to the moment the script parses its arguments, writes the script's argparse parsers as JSON,
and exits there, before any training. Stdlib only, and run from its text (``python -c``), so
the child imports nothing the script would not.

Arguments: OUT KIND TARGET ROOT. KIND is ``script`` (TARGET a path) or ``module`` (TARGET a
dotted name, found from ROOT as ``python -m`` finds it from the current folder). OUT gets
``{"parsers": [...]}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import runpy
import sys
from typing import Any, NoReturn

# A script that names none of these, nor any module of its own folder that it imports (the
# parser may live in options/base_options.py), cannot reach an argparse parser: it is not run
# at all, since running it would mean running its training.
ARGPARSE_WORDS = ("argparse", "ArgumentParser", "parse_args", "parse_known_args")
MAX_SCANNED = 200  # files of the script's own folder read to find its parser
PARSE_METHODS = ("parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args")
MAX_CHOICES = 100

# Most specific first: store_true is a kind of store_const.
KINDS = (
    ("boolean_optional", getattr(argparse, "BooleanOptionalAction", ())),
    ("store_true", argparse._StoreTrueAction),
    ("store_false", argparse._StoreFalseAction),
    ("store_const", argparse._StoreConstAction),
    ("store", argparse._StoreAction),
    ("append", argparse._AppendAction),
    ("append_const", argparse._AppendConstAction),
    ("count", argparse._CountAction),
    ("help", argparse._HelpAction),
    ("version", argparse._VersionAction),
    ("subcommands", argparse._SubParsersAction),
)


def finish(out: str, result: dict[str, Any]) -> NoReturn:
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(tmp, out)
    # Straight out: no atexit handler, finally block or thread of the script runs after this.
    os._exit(0)


def plain(value: Any) -> Any:
    """A JSON value: numbers, text, true/false, null and lists of them; anything else
    (``Path("data")``, an enum) as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None if value == argparse.SUPPRESS else value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def describe(parser: argparse.ArgumentParser, action: argparse.Action) -> dict[str, Any]:
    kind = next((name for name, cls in KINDS if cls and isinstance(action, cls)), type(action).__name__)
    hidden = action.help == argparse.SUPPRESS
    text = None
    if action.help and not hidden:
        try:  # expands %(default)s and the like, as --help shows it
            text = parser._get_formatter()._expand_help(action)
        except Exception:
            text = action.help
    choices = action.choices
    if kind == "subcommands":
        choices = list(choices or {})
    elif choices is not None:
        try:
            choices = list(choices)[:MAX_CHOICES + 1]
        except TypeError:
            choices = None
    return {
        "options": list(action.option_strings), "dest": action.dest, "kind": kind,
        "default": plain(action.default), "const": plain(action.const),
        "type": getattr(action.type, "__name__", None if action.type is None else str(action.type)),
        "choices": plain(choices) if choices is not None and len(choices) <= MAX_CHOICES else None,
        "nargs": action.nargs if action.nargs is None or isinstance(action.nargs, (int, str)) else None,
        "required": bool(action.required), "help": text, "hidden": hidden,
    }


def local_imports(path: str, text: str, folder: str) -> list[str]:
    """The files of ``folder`` that the module at ``path`` imports (``import a.b``,
    ``from a import b``, ``from .b import c``)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    names: list[tuple[str, str]] = []  # (a folder the name is relative to, dotted name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(folder, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = folder
            if node.level:
                base = os.path.dirname(path)
                for _ in range(node.level - 1):
                    base = os.path.dirname(base)
            module = node.module or ""
            names += [(base, module)] if module else []
            names += [(base, f"{module}.{a.name}" if module else a.name) for a in node.names]
    files = []
    for base, name in names:
        stem = os.path.join(base, *name.split("."))
        files += [f for f in (stem + ".py", os.path.join(stem, "__init__.py")) if os.path.isfile(f)]
    return files


def mentions_argparse(path: str, folder: str) -> bool:
    """Whether ``path``, or a file of ``folder`` it imports (directly or not), names argparse."""
    todo, seen = [path], set[str]()
    while todo and len(seen) < MAX_SCANNED:
        current = os.path.realpath(todo.pop())
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(current, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if any(word in text for word in ARGPARSE_WORDS):
            return True
        todo += local_imports(current, text, folder)
    return False


def source_of(kind: str, target: str) -> str | None:
    """The file a script or module runs from."""
    if kind == "module":
        found = importlib.util.find_spec(target)
        return found.origin if found and found.origin and os.path.isfile(found.origin) else None
    return target if os.path.isfile(target) else None


def main() -> None:
    out, kind, target, root = sys.argv[1:5]
    made: list[argparse.ArgumentParser] = []
    init = argparse.ArgumentParser.__init__

    def register(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    def dump(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        # Every parser made so far: a script may first parse a small one for a config file
        # (timm's train.py) and the real one after it.
        parsers = made if self in made else [*made, self]
        subcommand = {id(sub): name for p in parsers for a in p._actions
                      if isinstance(a, argparse._SubParsersAction) for name, sub in a.choices.items()}
        finish(out, {"parsers": [{"prog": p.prog, "subcommand": subcommand.get(id(p)),
                                  "options": [describe(p, a) for a in p._actions]} for p in parsers]})

    sys.path[0] = root if kind == "module" else os.path.dirname(os.path.abspath(target))
    try:
        source = source_of(kind, target)
    except Exception as exc:
        finish(out, {"error": f"cannot find it ({type(exc).__name__}: {exc})"})
    if source is None:
        finish(out, {"error": "cannot find its source file"})
    if not mentions_argparse(source, sys.path[0]):
        finish(out, {"error": "it does not use argparse (neither it nor a module of its folder that it "
                              "imports mentions it); the script was not run"})
    argparse.ArgumentParser.__init__ = register  # type: ignore[method-assign]
    for name in PARSE_METHODS:
        setattr(argparse.ArgumentParser, name, dump)
    sys.argv = [target]
    try:
        if kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        finish(out, {"error": f"it exited (status {exc.code}) before parsing its arguments"})
    except BaseException as exc:
        line = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        finish(out, {"error": f"it stopped before parsing its arguments: {line}"})
    finish(out, {"error": "it ended without parsing arguments with argparse"})


if __name__ == "__main__":
    main()
