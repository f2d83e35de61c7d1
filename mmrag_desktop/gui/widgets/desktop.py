"""Handing a photo to the rest of the desktop: the default app, the file manager, the
clipboard."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication


def open_with_default_app(path: str) -> bool:
    """Open *path* with the desktop's default application. Returns False if none did."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


PLAYERS = {"mpv": "--start={seconds}", "vlc": "--start-time={seconds}",
           "celluloid": "--mpv-start={seconds}", "iina": "--mpv-start={seconds}"}
"""Video players that take a start time on their command line, tried in this order, and how
(the system's default player takes none)."""


def player_command(path: str, seconds: float) -> list[str] | None:
    """A command line that plays the video *path* from *seconds*, with the first player of
    :data:`PLAYERS` found on ``PATH``; None when there is none."""
    for name, option in PLAYERS.items():
        program = shutil.which(name)
        if program:
            return [program, option.format(seconds=f"{seconds:.2f}"), path]
    return None


def open_media(path: str, at: float | None = None) -> bool:
    """Open a photo, or play a video from *at* seconds where an installed player allows
    (:func:`player_command`; else from its start, with the default app). Returns False if
    nothing could be started."""
    command = player_command(path, at) if at else None
    if command:
        try:
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return True
        except OSError:
            pass
    return open_with_default_app(path)


def open_or_say(path: str, at: float | None, say: Callable[[str], None]) -> None:
    """:func:`open_media`, or *say* why nothing opened and what to do."""
    if not open_media(path, at):
        say(f"No application could open {os.path.basename(path)}: install a photo viewer "
            "or video player, or use Show in folder")


def reveal_in_file_manager(path: str) -> bool:
    """Show *path* selected in the file manager (Finder, Explorer, or the freedesktop
    ``org.freedesktop.FileManager1`` D-Bus service); else open its folder.
    Returns False if nothing could be started."""
    try:
        if sys.platform == "darwin":
            subprocess.Popen(["open", "-R", path])
            return True
        if sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])
            return True
        subprocess.Popen(
            ["dbus-send", "--session", "--dest=org.freedesktop.FileManager1",
             "--type=method_call", "/org/freedesktop/FileManager1",
             "org.freedesktop.FileManager1.ShowItems",
             f"array:string:{QUrl.fromLocalFile(path).toString()}", "string:"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # not waited for: the GUI thread must not block on another process
        return True
    except (OSError, subprocess.SubprocessError):
        return open_with_default_app(os.path.dirname(path))


def copy_paths(paths: list[str]) -> None:
    """Put the paths on the clipboard, one a line."""
    QGuiApplication.clipboard().setText("\n".join(paths))
