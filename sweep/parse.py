"""Metrics from what a script prints: ``eval_accuracy: 0.93``, ``loss=0.21`` and the flags
file's own regexes. ANSI colours are stripped first; a ``step`` or ``epoch`` on the same line
is the step of the other values."""

from __future__ import annotations

import math
import re
from typing import Iterable

from sweep.rundir import strip_ansi

NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf|infinity|Infinity)"
# After the number: no letter or digit, and no ".digit" (1.2.3 is a version), but a full stop
# may end the sentence ("loss: 0.25.").
PAIR_RE = re.compile(rf"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*[:=]\s*({NUMBER})(?!\w|\.\w)")
STEP_KEYS = ("step", "epoch")
STEP_WORD_RE = re.compile(r"(?<![\w.])(?:step|epoch)\s+(\d+)\b", re.IGNORECASE)
MAX_LINE = 64 * 1024


def parse_line(line: str, regexes: Iterable[tuple[str, re.Pattern[str]]] = ()) -> tuple[dict[str, float], int | None]:
    """Metrics on one line of output, and the step named on it (if any)."""
    line = strip_ansi(line)
    found: dict[str, float] = {}
    word = STEP_WORD_RE.search(line)
    step = int(word.group(1)) if word else None
    for name, value in PAIR_RE.findall(line):
        number = float(value)
        if name.lower() in STEP_KEYS:
            if math.isfinite(number) and number == int(number):
                step = int(number)
            continue
        found[name] = number
    for name, pattern in regexes:
        match = pattern.search(line)
        if match:
            try:
                found[name] = float(match.group(1))
            except (TypeError, ValueError):
                pass
    return found, step


class LineReader:
    """Incrementally split a growing byte stream into lines, with bounded memory: a line
    longer than ``MAX_LINE`` (binary junk, a progress bar without newlines) is dropped."""

    def __init__(self) -> None:
        self._partial = b""
        self._overlong = False

    def feed(self, data: bytes) -> list[str]:
        lines = []
        data = self._partial + data
        parts = data.split(b"\n")
        self._partial = parts.pop()
        for raw in parts:
            if self._overlong:
                self._overlong = False
                continue
            if len(raw) > MAX_LINE:  # whole in one chunk, but still junk
                continue
            lines.append(_decode(raw))
        if len(self._partial) > MAX_LINE:
            self._partial = b""
            self._overlong = True
        return lines

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        if self._overlong or not rest:
            self._overlong = False
            return []
        return [_decode(rest)] if len(rest) <= MAX_LINE else []


def _decode(raw: bytes) -> str:
    """One line as text. A carriage return redraws the line (progress bars): keep what was
    drawn last; a CRLF ending is just an ending."""
    raw = raw.rstrip(b"\r")
    if b"\r" in raw:
        raw = raw.rsplit(b"\r", 1)[-1]
    return raw.decode("utf-8", errors="replace")
