"""``sweep convert``: a W&B sweep configuration -> the equivalent flags file, as text, with the
W&B file's comments kept beside the keys they were written by. Pure: the caller prints.

The flags file is built from the ``SweepSpec`` the W&B file gives (so it means exactly what
running the W&B file means), and reading it back gives the same search space. Values are
written as JSON, which is YAML (a flags file reads ``1e-05`` as a number).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from sweep import dists
from sweep import spec as specs
from sweep.errors import SpecError

KEY_RE = re.compile(r"""^(\s*)(?:-\s+)?("[^"]*"|'[^']*'|[^\s:#'"][^:#]*?)\s*:(?:\s|$)""")
# Where each W&B key's comments go in the flags file.
TOP = {"program": "script", "command": "command", "method": "sampler", "metric": "metric",
       "run_cap": "trials", "early_terminate": "pruner", "name": "description",
       "description": "description"}


def convert(path: str | Path) -> str:
    """The flags file equivalent to the W&B sweep file at ``path``."""
    path = Path(path).absolute()
    data = specs.read_yaml(path)
    from sweep import wbsweep

    if not wbsweep.is_wandb(data):
        raise SpecError(f"{path}: not a W&B sweep configuration (it needs 'parameters:' and no 'flags:')")
    spec = wbsweep.parse(data, path)
    notes = Comments(path.read_text(encoding="utf-8"))
    out = Writer(notes)
    out.lines += notes.header
    out.lines.append(f"# Converted from the W&B sweep file {path.name} by `sweep convert`.")
    for note in spec.notes:
        out.lines.append(f"# W&B: {note}")
    if spec.folder is not None:
        out.lines.append(f"# W&B runs each trial from the folder it is started in ({spec.folder}); a flags file "
                         "runs them from its own folder: keep this file there")
    if spec.script is not None:
        out.key("script", _relative(spec.script, path.parent), "program")
    if spec.command is not None:
        out.comments("command")
        out.lines.append("command:")
        out.lines += [f"  - {json.dumps(word)}" for word in spec.command]
    out.key("sampler", spec.sampler, "method")
    if "metric" in data:
        out.key("metric", spec.metric, "metric")
        out.key("goal", spec.goal)
    else:
        out.lines.append("# No objective (W&B's random and grid need no metric): a trial completes when it exits 0")
        out.key("metric", None)
    if spec.sampler != "grid":  # a grid runs every point
        out.key("trials", spec.trials, "run_cap")
    if spec.pruner.name != "none":
        p = spec.pruner
        out.key("pruner", {"name": p.name, "min_resource": p.min_resource, "max_resource": p.max_resource,
                           "reduction_factor": p.reduction_factor, "count": p.count}, "early_terminate")
    if spec.description is not None:
        out.key("description", spec.description, "name", "description")
    if spec.target is not None:
        out.key("target", spec.target)
    if spec.wandb_groups:
        out.lines.append(f"# Nested parameters ({', '.join(spec.wandb_groups)}) become dotted flags; "
                         "wandb.config holds them flat here")
    out.comments("parameters", deep=False)
    out.lines.append("flags:")
    for flag in spec.flags:
        groups = [".parameters.".join(["parameters", *flag.name.split(".")[:i]])
                  for i in range(1, flag.name.count(".") + 1)]
        out.comments(*groups, indent="  ", deep=False)
        out.comments(*_param_paths(flag.name), indent="  ", inline=True)
        out.lines.append(f"  {flag.name}: "
                         f"{_dump(flag_yaml(flag))}{notes.inline(*_param_paths(flag.name))}")
    return "\n".join(out.lines) + "\n"


def flag_yaml(flag: specs.Flag) -> Any:
    """A flag as a flags file writes it: a list, a range mapping, a scalar, or W&B's own
    ``distribution:`` mapping for what a flags file has no other words for."""
    if flag.dist is not None:
        d = flag.dist
        out: dict[str, Any] = {"distribution": d.name}
        if d.name in ("categorical", "categorical_w_probabilities"):
            out["values"] = list(flag.values)
            if d.probabilities:
                out["probabilities"] = list(d.probabilities)
        elif d.name in dists.PERCENTILE:
            out.update({"a": d.a, "b": d.b} if "beta" in d.name else {"mu": d.mu, "sigma": d.sigma})
        else:
            out.update({"min": d.low, "max": d.high})
        if d.name in dists.QUANTIZED:
            out["q"] = d.q
        return out
    if flag.kind == "choice":
        return list(flag.values)
    if flag.kind == "fixed":
        value = flag.values[0]
        plain = isinstance(value, (bool, int, float, str))
        return value if plain else {"distribution": "constant", "value": value}
    out = {"min": flag.low, "max": flag.high}
    if flag.is_int:
        out = {"min": int(flag.low), "max": int(flag.high), "int": True}
    if flag.log:
        out["log"] = True
    if flag.step is not None:
        out["step"] = flag.step
    return out


def _dump(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_dump(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _relative(script: Path, root: Path) -> str:
    return os.path.relpath(script, root.resolve())


def _param_paths(name: str) -> list[str]:
    """The W&B key paths whose comments belong to flag ``name`` (nested: a.parameters.b)."""
    parts = name.split(".")
    nested = "parameters." + ".parameters.".join(parts)
    return [f"parameters.{name}", nested] if len(parts) > 1 else [f"parameters.{name}"]


class Comments:
    """The comments of a YAML text, by the dotted path of the key they sit above (or on the
    line of). A comment above nothing but the end of the file goes to the header."""

    def __init__(self, text: str) -> None:
        self.above: dict[str, list[str]] = {}
        self.after: dict[str, list[str]] = {}
        self.header: list[str] = []
        stack: list[tuple[int, str]] = []
        pending: list[str] = []
        seen_key = False
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                pending.append(stripped)
                continue
            if not stripped:
                if not seen_key and pending:  # a comment block before the first key, then a blank
                    self.header += pending
                    pending = []
                continue
            match = KEY_RE.match(line)
            inline = _inline(line)
            if match is None:  # a list item or a continuation: its comments go with its key
                if stack:
                    self.after.setdefault(stack[-1][1], []).extend(pending + ([inline] if inline else []))
                pending = []
                continue
            indent, key = len(match.group(1)), match.group(2).strip("'\"")
            while stack and stack[-1][0] >= indent:
                stack.pop()
            dotted = f"{stack[-1][1]}.{key}" if stack else key
            stack.append((indent, dotted))
            seen_key = True
            self.above.setdefault(dotted, []).extend(pending)
            pending = []
            if inline:
                self.after.setdefault(dotted, []).append(inline)
        self.header += pending

    def own(self, path: str) -> list[str]:
        """The comments above ``path``'s key and any after it but the first (that one stays
        on the key's line: ``inline``)."""
        return self.above.get(path, []) + self.after.get(path, [])[1:]

    def below(self, path: str) -> list[str]:
        """Every comment of the keys under ``path``, in the file's order."""
        out = []
        for dotted in dict.fromkeys([*self.above, *self.after]):
            if dotted.startswith(path + "."):
                out += self.above.get(dotted, []) + self.after.get(dotted, [])
        return out

    def inline(self, *paths: str) -> str:
        found = [self.after[p][0] for p in paths if self.after.get(p)]
        return f"  {found[0]}" if found else ""


def _inline(line: str) -> str:
    """The ``# comment`` ending a YAML line (outside quotes), or ''."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i:].strip()
    return ""


class Writer:
    def __init__(self, notes: Comments) -> None:
        self.notes = notes
        self.lines: list[str] = []
        self.used: set[str] = set()

    def comments(self, *paths: str, indent: str = "", deep: bool = True, inline: bool = False) -> None:
        """The comments of W&B keys ``paths`` (and, ``deep``, of the keys under them), once
        each; with ``inline`` the first comment on a key's own line is left for that line."""
        for p in paths:
            if p in self.used:
                continue
            self.used.add(p)
            mine = self.notes.own(p) if inline else self.notes.above.get(p, []) + self.notes.after.get(p, [])
            self.lines += [indent + c for c in mine + (self.notes.below(p) if deep else [])]

    def key(self, name: str, value: Any, *sources: str) -> None:
        self.comments(*sources)
        self.lines.append(f"{name}: {_dump(value)}")
