"""One app per library: the first window listens on a local socket (``QLocalServer``) named
after the library folder and the user; a second launch for the same library hands its
arguments (a photo to search by, a folder to add) to that window and exits, instead of
opening a second window, model helper, watcher and OCR pass on the same library."""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_MS = 500
"""How long a launch waits to reach a running window before it opens its own."""


def server_name(library: Path) -> str:
    """The socket name for *library* (its folder, resolved) and this user."""
    digest = hashlib.sha256(str(Path(library).resolve()).encode()).hexdigest()[:16]
    return f"mmrag-desktop-{getpass.getuser()}-{digest}"


def hand_over(library: Path, argv: list[str]) -> bool:
    """Give *argv* (paths made absolute) to the window already open on *library*; True when
    one took them (this launch should then exit), False when none is running."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(library))
    if not socket.waitForConnected(CONNECT_MS):
        return False
    args = [str(Path(a).resolve()) if Path(a).exists() else a for a in argv]
    socket.write(json.dumps(args).encode() + b"\n")
    socket.flush()
    delivered = socket.waitForBytesWritten(CONNECT_MS) or socket.bytesToWrite() == 0
    socket.waitForReadyRead(CONNECT_MS)  # the window's "ok": it has read them
    socket.disconnectFromServer()
    return delivered


class InstanceServer(QObject):
    """Listens for later launches on *library*; emits ``received(argv)`` for each. A name
    left by a crashed app is taken over."""

    received = Signal(list)

    def __init__(self, library: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        name = server_name(library)
        if not self.server.listen(name):
            QLocalServer.removeServer(name)  # stale: no window answered on it
            self.server.listen(name)
        self.server.newConnection.connect(self._accept)

    @property
    def listening(self) -> bool:
        return self.server.isListening()

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._read(s))

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine():
            return
        try:
            argv = json.loads(bytes(socket.readLine()).decode())
        except ValueError:
            argv = None
        socket.write(b"ok\n")
        socket.flush()
        socket.disconnectFromServer()
        if isinstance(argv, list):
            self.received.emit([str(a) for a in argv])

    def close(self) -> None:
        self.server.close()
