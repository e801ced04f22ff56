"""What a training script imports, found by reading it (``ast``), never by running it: the
modules the warm launcher's server imports once so that each trial, a fork of it, starts with
them loaded. Only the script's own text and the local modules it imports (files in its folder,
or in its package) are read; anything else it names is a module to preload if this python can
find it. A script that imports nothing heavy gets a server that holds nothing heavy: torch is
imported (and warmed) only for a script that imports it.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

MAX_FILES = 200  # local modules read at most: a script's own helpers, not a whole repository
MAX_BYTES = 2 << 20  # a larger file is not a helper module: it is not read


def preload(script: Path | None, module: str | None, root: Path) -> tuple[str, ...]:
    """The modules to import in the warm server for ``python script`` (or ``python -m module``
    run in ``root``): every module the script and its local modules import, by its full dotted
    name, that is not one of those local modules and that this python can find. Sorted."""
    if script is not None:
        start, folder = script.resolve(), script.resolve().parent
    elif module is not None:
        folder = root.resolve()
        found = _local(folder, module)
        if found is None:
            return ()
        start = found
    else:
        return ()
    names: set[str] = set()
    seen: set[Path] = set()
    todo = [start]
    while todo and len(seen) < MAX_FILES:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(path, folder):
            local = _local(folder, name)
            if local is not None:
                todo.append(local)
            elif name.split(".")[0] != "__main__":
                names.add(name)
    return tuple(sorted(n for n in names if _findable(n.split(".")[0])))


def _imported(path: Path, folder: Path) -> list[str]:
    """The absolute dotted names ``path`` imports (``from a import b``: ``a`` and ``a.b``,
    which may be a module); a relative import is resolved against the file's place in
    ``folder``. An unreadable file, or one that is not Python, names nothing."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    package = _package(path, folder)
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if package is None or node.level > len(package) + 1:
                    continue
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            if not base:
                continue
            out.append(base)
            out += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return out


def _package(path: Path, folder: Path) -> list[str] | None:
    """The dotted package ``path`` belongs to, as parts from ``folder`` (``[]``: a file in
    ``folder`` itself); None outside it."""
    try:
        parts = list(path.relative_to(folder).parts)
    except ValueError:
        return None
    return parts[:-1]


def _local(folder: Path, name: str) -> Path | None:
    """The file of module ``name`` when it lives in ``folder`` (a ``.py`` file, a package's
    ``__init__.py`` or ``__main__.py``); a package folder without either is local too, and
    gives no file to read (``folder`` itself)."""
    parts = name.split(".")
    if not parts[0] or not ((folder / f"{parts[0]}.py").is_file() or (folder / parts[0]).is_dir()):
        return None
    base = folder.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py", base / "__main__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return folder


def _findable(top: str) -> bool:
    """Whether this python can import the top-level module ``top`` (found, not imported)."""
    if top in sys.builtin_module_names or top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
