"""A local stand-in for the Hugging Face Hub, standard library only, for the tests and
``packaging/smoke.sh`` (run as ``python3 tests/hub_server.py ROOT PORT_FILE``).

It serves the files under ROOT as ``/{owner}/{repo}/resolve/{revision}/{path}`` with the Hub's
headers: a large file (an ``.onnx``, or over 10 kB) answers with a 302 redirect to ``/cdn/…``
that carries ``X-Linked-Size`` and ``X-Linked-Etag`` (its SHA-256), as the Hub's LFS files do;
a small file answers 200 with its size and a git-style ETag. The CDN honours ``Range``.
Faults for the tests: ``drop_after`` (close the connection after N bytes, once per file),
``flipped`` (serve one byte changed while announcing the true hash), ``slow`` (seconds of
pause per 64 kB sent). ``ranges`` records each ``Range`` asked for, by path.
"""

from __future__ import annotations

import hashlib
import http.server
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

LARGE = 10_000  # bytes: files above this are served as the Hub serves LFS files


class Hub(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = root
        self.seen: list[tuple[str, str]] = []  # (method, path)
        self.drop_after: int | None = None
        self.dropped: set[str] = set()
        self.flipped: set[str] = set()  # repository paths served damaged
        self.slow: float = 0.0
        self.ranges: list[tuple[str, str]] = []  # (path, Range header)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up
            super().handle_error(request, client_address)

    def start(self) -> Hub:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Hub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)

    def _file(self, relative: str) -> Path | None:
        path = (self.server.root / relative).resolve()
        root = self.server.root.resolve()
        return path if path.is_file() and root in path.parents else None

    def _answer(self, body: bool) -> None:
        self.server.seen.append((self.command, self.path))
        path = unquote(self.path.split("?")[0])
        if path.startswith("/cdn/"):
            return self._serve(path.removeprefix("/cdn/"), body)
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._status(404)
        repo, relative = "/".join(parts[:2]), "/".join(parts[4:])
        found = self._file(f"{repo}/{relative}")
        if found is None:
            return self._status(404)
        data = found.read_bytes()
        if found.suffix == ".onnx" or len(data) > LARGE:
            self.send_response(302)
            self.send_header("Location", f"/cdn/{repo}/{relative}")
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._serve(f"{repo}/{relative}", body,
                           etag=f'"{hashlib.sha1(data).hexdigest()}"')

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, relative: str, body: bool, etag: str | None = None) -> None:
        found = self._file(relative)
        if found is None:
            return self._status(404)
        data = found.read_bytes()
        if relative.split("/", 2)[-1] in self.server.flipped or relative in self.server.flipped:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged and body:
            self.server.ranges.append((relative, ranged))
        if ranged.startswith("bytes="):
            start = int(ranged.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        if not body:
            return None
        drop = self.server.drop_after
        if drop is not None and relative not in self.server.dropped and len(data) - start > drop:
            self.server.dropped.add(relative)
            self.wfile.write(data[start:start + drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if not self.server.slow:
            self.wfile.write(data[start:])
            return None
        for at in range(start, len(data), 1 << 16):
            self.wfile.write(data[at:at + (1 << 16)])
            time.sleep(self.server.slow)
        return None


if __name__ == "__main__":  # smoke.sh: serve ROOT, write the port to PORT_FILE
    hub = Hub(Path(sys.argv[1]))
    Path(sys.argv[2]).write_text(str(hub.server_port))
    hub.serve_forever()
