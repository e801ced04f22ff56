"""Words in messages: a count with its noun, ``1 trial`` and ``2 trials``. Stdlib only."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (``plural`` for nouns not made with -s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
