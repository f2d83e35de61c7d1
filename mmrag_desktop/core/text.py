"""Text as people read it: elided strings, file sizes, moments in a video."""

from __future__ import annotations


def elide(text: str, limit: int) -> str:
    """*text* cut to at most *limit* characters, ending in "…" where it was cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def size_text(size: int | None) -> str:
    """A file size for people: ``850 KB``, ``2.4 MB``, ``605 MB``, ``1,234 MB`` (decimal
    units, as file managers)."""
    size = size or 0
    if size >= 1e8:
        return f"{size / 1e6:,.0f} MB"
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(size / 1e3, 1):.0f} KB"


def clock(seconds: float) -> str:
    """A moment as players show it: ``m:ss``, or ``h:mm:ss`` from an hour."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
