"""The one base of the errors the app raises on purpose.

Each error keeps its builtin base (``ValueError``, ``OSError``, ``RuntimeError``) and mixes
in :class:`MmragError`, so no existing ``except`` changes meaning while the CLI can catch
them all in one place and the GUI can tell them from bugs. The pattern is Anki's
``AnkiException`` (``pylib/anki/errors.py``).
"""

from __future__ import annotations


class MmragError(Exception):
    """An error with a message written for people: a missing model, a busy library, a
    photo that cannot be read. The CLI prints ``mmrag: <message>`` and exits with
    :attr:`exit_status`; anything else escaping is a bug."""

    exit_status = 2
