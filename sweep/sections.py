"""A file of named sections, for an index read in part: a JSON header line (the format, this
machine's byte order, each section's size, and whatever the owner keeps there), then each
section's list, parsed only when asked for. Texts are stored one a line (split, where JSON
would parse each string), integers and floats packed (read at once), anything else as JSON;
never pickle: reading a file copied from elsewhere runs no code. Stdlib only.
"""

from __future__ import annotations

import array
import json
import os
import secrets
import sys
from typing import Any

from sweep import rundir

LINES = b"L"
INTS = b"Q"  # 64-bit, this machine's byte order
FLOATS = b"D"  # doubles, NaN and inf included


class Damaged(ValueError):
    """A file that cannot be read as written."""


class SectionFile:
    """A section file opened for reading: ``head``, its header, and ``get`` a section."""

    def __init__(self, path: str, fmt: str) -> None:
        self.fh = rundir.open_regular(path)  # never a FIFO a trial left
        try:
            head = json.loads(self.fh.readline(1 << 26))
            if not isinstance(head, dict) or head.get("format") != fmt or head.get("order") != sys.byteorder:
                raise ValueError("not this format, or another machine's byte order")
            self.head: dict[str, Any] = head
            self.offsets: dict[str, tuple[int, int]] = {}
            at = self.fh.tell()
            for name, size in head.get("sections", []):
                self.offsets[str(name)] = (at, count(size))
                at += count(size)
        except BaseException:
            self.fh.close()
            raise
        self.loaded: dict[str, list[Any]] = {}

    def get(self, name: str, length: int, kind: type | None = None) -> list[Any]:
        """A section's list of ``length`` values (each of ``kind``, if given); ``Damaged`` when
        it is missing or damaged."""
        if name not in self.loaded:
            if name not in self.offsets:
                raise Damaged(f"no section {name}")
            at, size = self.offsets[name]
            try:
                self.fh.seek(at)
                data = _decode(self.fh.read(size), length)
            except (OSError, ValueError) as exc:
                raise Damaged(f"section {name}: {exc}") from None
            if not isinstance(data, list) or len(data) != length or (kind and not set(map(type, data)) <= {kind}):
                raise Damaged(f"damaged section {name}")
            self.loaded[name] = data
        return self.loaded[name]

    def raw(self, name: str, length: int) -> bytes:
        """A section of ``length`` integers as stored: packed, not parsed (to compare)."""
        if name not in self.offsets:
            raise Damaged(f"no section {name}")
        if not length:
            return b""  # written as JSON's []
        at, size = self.offsets[name]
        self.fh.seek(at)
        data = self.fh.read(size)
        if not data.startswith(INTS) or len(data) != 1 + 8 * length:
            raise Damaged(f"damaged section {name}")
        return data[1:]

    def close(self) -> None:
        self.fh.close()


def write_sections(path: str, fmt: str, head: dict[str, Any], sections: dict[str, list[Any]]) -> None:
    """The file, atomically: a temporary file in the same folder, then a rename."""
    parts = {name: _encode(values) for name, values in sections.items()}
    head = {"format": fmt, "order": sys.byteorder, **head, "sections": [[n, len(d)] for n, d in parts.items()]}
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(json.dumps(head, separators=(",", ":")).encode() + b"\n")
            for data in parts.values():
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _encode(values: list[Any]) -> bytes:
    kinds = set(map(type, values))
    if kinds == {str}:
        text = "\n".join(values)
        if text.count("\n") == len(values) - 1 and "\r" not in text:  # no line breaks inside a text
            return LINES + text.encode("utf-8", "surrogatepass")
    if kinds == {int}:
        try:
            return INTS + array.array("q", values).tobytes()
        except OverflowError:  # an inode number past 2**63: JSON holds any
            pass
    if kinds == {float}:
        return FLOATS + array.array("d", values).tobytes()
    return json.dumps(values, separators=(",", ":")).encode()


def _decode(data: bytes, length: int) -> Any:
    if data.startswith(LINES):
        return data[1:].decode("utf-8", "surrogatepass").split("\n") if length else []
    if data.startswith((INTS, FLOATS)):
        numbers = array.array("q" if data.startswith(INTS) else "d")
        numbers.frombytes(data[1:])  # raises ValueError when not a whole number of them
        return numbers.tolist()
    return json.loads(data)


def count(value: Any) -> int:
    """A header's count, checked."""
    if type(value) is not int or value < 0:
        raise ValueError("not a count")
    return value


def names(value: Any) -> list[str]:
    """A header's list of names, checked."""
    if not isinstance(value, list) or not all(type(v) is str for v in value):
        raise ValueError("not a list of names")
    return value
