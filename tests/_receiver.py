"""An HTTP receiver on 127.0.0.1 that records what it is sent: a stand-in for healthchecks.io
and for a webhook endpoint, shared by the notify, webhook and end-to-end alert tests.

Paths choose the answer: `/down…` is 500, `/gone…` is 404, `/flaky…` is 503 for its first
request and 200 after, `/held…` waits for `release` before it answers 200; anything else 200.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Received", "Receiver", "closed_port_url"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Use as a context manager; `url` is its base, `received` every request so far."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.release = threading.Event()  # lets /held… requests answer
        self.arrived = threading.Event()  # set on every request
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                with lock:
                    receiver.received.append(Received("POST", self.path, body, dict(self.headers)))
                    seen = sum(1 for r in receiver.received if r.path == self.path)
                receiver.arrived.set()
                self._answer(receiver._status(self.path, seen))

            def do_GET(self) -> None:
                with lock:
                    receiver.received.append(Received("GET", self.path, "", dict(self.headers)))
                receiver.arrived.set()
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _status(self, path: str, seen: int) -> int:
        if path.startswith("/down"):
            return 500
        if path.startswith("/gone"):
            return 404
        if path.startswith("/flaky"):
            return 503 if seen == 1 else 200
        if path.startswith("/held"):
            self.release.wait(timeout=30)
        return 200

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def closed_port_url() -> str:
    """A URL nothing listens on (the port was just bound and released): connection refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"
