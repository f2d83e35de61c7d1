"""What every table module shares: IN (...) lists cut under SQLite's bound-variable limit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

VARIABLES = 900  # rows per IN (...) list: under SQLite's bound-variable limit


def chunks(items: Sequence, size: int = VARIABLES) -> Iterator[Sequence]:
    """*items* in consecutive slices of at most *size*, for one ``IN (...)`` list each."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def marks(items: Sequence) -> str:
    """``?, ?, ?``: one bound variable per item."""
    return ", ".join("?" * len(items))
