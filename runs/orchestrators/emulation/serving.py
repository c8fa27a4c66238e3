"""Serving an emulator on loopback with a threaded server in a background thread."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from runs.orchestrators.emulation.app import EmulatorApp


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections waiting to be accepted, as a web server's listen backlog (socketserver's own
    # is 5): a sync opens a dozen at once, and a connection beyond the backlog waits a second
    # for its SYN to be sent again, longer than a short client timeout.
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            super().handle()


class ServedEmulator:
    """An emulator served on 127.0.0.1 by a threaded server in a background thread."""

    def __init__(self, app: EmulatorApp, port: int = 0, host: str = "127.0.0.1") -> None:
        self.app = app
        self.server = make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.host, self.port = self.server.server_address[:2]
        # So an app's banner() can print the full base URL its clients use.
        app.served_at = self.base_url
        # A short poll interval: stop() (every test's teardown) waits for one poll.
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"emulator-{app.kind}",
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServedEmulator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.app.close()

    def serve_forever(self) -> None:
        self.server.serve_forever()


@contextlib.contextmanager
def served(app: EmulatorApp, port: int = 0) -> Iterator[ServedEmulator]:
    emulator = ServedEmulator(app, port).start()
    try:
        yield emulator
    finally:
        emulator.stop()
