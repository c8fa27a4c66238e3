"""The core every vendor emulator shares: a WSGI app with a clock, a seeded estate, a request
log, a fault switch and the `/_emulator/` endpoints, plus a threaded loopback server.

An emulator starts only when asked (`manage.py emulate`, `manage.py demo`, tests).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

SECRET_HEADERS = frozenset({"accesskey", "authorization", "x-authorization", "cookie"})


class Clock:
    """Real time at a configurable speed; it can be paused and stepped."""

    def __init__(self, *, start: datetime | None = None, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base = start or datetime.now(UTC)
        self._anchor = time.monotonic()
        self.speed = speed
        self.paused = False

    def now(self) -> datetime:
        with self._lock:
            if self.paused:
                return self._base
            elapsed = (time.monotonic() - self._anchor) * self.speed
            return self._base + timedelta(seconds=elapsed)

    def _rebase(self) -> None:
        if not self.paused:
            elapsed = (time.monotonic() - self._anchor) * self.speed
            self._base += timedelta(seconds=elapsed)
        self._anchor = time.monotonic()

    def pause(self) -> None:
        with self._lock:
            self._rebase()
            self.paused = True

    def resume(self) -> None:
        with self._lock:
            self._rebase()
            self.paused = False

    def step(self, seconds: float) -> None:
        with self._lock:
            self._rebase()
            self._base += timedelta(seconds=seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now().isoformat(), "paused": self.paused, "speed": self.speed}


@dataclass
class Fault:
    """Misbehaviour for requests whose path matches `path` (a regex; empty: every path)."""

    path: str = ""
    method: str = ""
    latency: float = 0.0
    error_rate: float = 0.0
    status: int = 500
    timeout: float = 0.0  # hold the request this long, then drop the connection
    malformed: bool = False
    remaining: int | None = None  # None: until cleared

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        known = {name for name in cls.__dataclass_fields__}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        fault = cls(**body)
        if not 0.0 <= fault.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if fault.path:
            re.compile(fault.path)
        return fault


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = environ.get("PATH_INFO", "") or "/"
        self.query_string = environ.get("QUERY_STRING", "")
        self.query_pairs = parse_qsl(self.query_string, keep_blank_values=True)
        self.headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            self.headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length else b""

    @property
    def query(self) -> dict[str, str]:
        """The last value of each query parameter."""
        return dict(self.query_pairs)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The JSON body; raises BadJson when it is not JSON."""
        if not self.body:
            raise BadJson("empty body")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadJson(str(exc)) from exc


class BadJson(ValueError):
    pass


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str -> text/plain, bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", self.headers.get("Content-Type", "text/plain")
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        payload = json.dumps(self.body, default=str).encode()
        return payload, self.headers.get("Content-Type", "application/json; charset=utf-8")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(status=status, body=body)


class HttpError(Exception):
    """Raised by handlers to answer with a vendor error."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[..., Response]


@dataclass
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]


REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    446: "Insufficient Disk Space",
    455: "Database Not Responding",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class EmulatorApp:
    """A vendor emulator: subclasses build an estate from a seed and register routes.

    Subclasses implement `build()` (make the estate from `self.rng`), `advance(now)` (move
    runs along the clock), `authorize(request)` (raise HttpError when refused), `routes()`,
    `state()` and `not_found()` / `method_not_allowed()` in the vendor's error shape.
    """

    kind = "emulator"
    served_at = ""  # the loopback URL once a ServedEmulator serves this app

    def __init__(
        self,
        *,
        seed: int = 1,
        credential: str = "",
        history: int = 20,
        pace: float = 2.0,
        autorun: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.seed = seed
        self.credential = credential
        self.history = history
        self.pace = pace
        # Mean seconds between runs a schedule starts on its own (0: never), for the demo.
        self.autorun = autorun
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.log: deque[dict[str, Any]] = deque(maxlen=5000)
        self.faults: list[Fault] = []
        self._fault_rng = random.Random(seed)
        self._routes: list[Route] = []
        self._register_routes()
        self.reset()

    # To implement ---------------------------------------------------------------------------

    def build(self) -> None:
        raise NotImplementedError

    def advance(self, now: datetime) -> None:
        """Move every run along to `now`."""

    def authorize(self, request: Request) -> None:
        """Raise HttpError when the request's credential is wrong."""

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path regex with named groups, handler) triples."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def banner(self) -> list[str]:
        """Lines `manage.py emulate` prints after the base URL (e.g. Testsigma plan ids)."""
        return []

    def error(self, status: int, message: str) -> Response:
        return json_response({"message": message}, status)

    def malformed_body(self) -> bytes:
        return b'{"Id": "truncated'

    # The core -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.rng = random.Random(self.seed)
            self.log.clear()
            self.faults.clear()
            self.build()

    def now(self) -> datetime:
        return self.clock.now()

    def _register_routes(self) -> None:
        table: dict[str, Route] = {}
        for method, path, handler in self.routes():
            route = table.setdefault(path, Route(re.compile(f"^{path}$"), {}))
            route.methods[method.upper()] = handler
        self._routes = list(table.values())

    def _record(self, request: Request) -> None:
        try:
            body: Any = json.loads(request.body) if request.body else None
        except ValueError:
            body = request.body.decode(errors="replace")
        self.log.append(
            {
                "at": self.now().isoformat(),
                "method": request.method,
                "path": request.path,
                "query": request.query_pairs,
                "headers": {
                    key: ("***" if key in SECRET_HEADERS else value)
                    for key, value in request.headers.items()
                },
                "body": body,
            }
        )

    def requests(self, *, path: str = "") -> list[dict[str, Any]]:
        """The logged vendor requests (not `/_emulator/` ones), oldest first."""
        with self.lock:
            return [entry for entry in self.log if path in entry["path"]]

    def _fault_for(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(request.method, request.path):
                    if fault.remaining is not None:
                        if fault.remaining <= 0:
                            continue
                        fault.remaining -= 1
                    return fault
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        request = Request(environ)
        if request.path.startswith("/_emulator/"):
            response = self._control(request)
        else:
            self._record(request)
            fault = self._fault_for(request)
            response = self._with_fault(request, fault) if fault else self._dispatch(request)
        payload, content_type = response.encode()
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        headers += [(k, v) for k, v in response.headers.items() if k.lower() != "content-type"]
        reason = REASONS.get(response.status, "Unknown")
        start_response(f"{response.status} {reason}", headers)
        return [payload]

    def _with_fault(self, request: Request, fault: Fault) -> Response:
        if fault.latency:
            time.sleep(fault.latency)
        if fault.timeout:
            # Hold the request past the client's timeout; whatever comes after is never read.
            time.sleep(fault.timeout)
            return self.error(504, "Emulated timeout")
        if fault.error_rate and self._fault_rng.random() < fault.error_rate:
            return self.error(fault.status, f"Emulated fault: HTTP {fault.status}")
        response = self._dispatch(request)
        if fault.malformed:
            return Response(
                response.status, self.malformed_body(), {"Content-Type": "application/json"}
            )
        return response

    def _dispatch(self, request: Request) -> Response:
        for route in self._routes:
            match = route.pattern.match(request.path)
            if not match:
                continue
            handler = route.methods.get(request.method)
            if handler is None:
                return self.error(
                    405, f"The requested resource does not support http method '{request.method}'."
                )
            with self.lock:
                try:
                    self.authorize(request)
                    self.advance(self.now())
                    return handler(request, **match.groupdict())
                except HttpError as exc:
                    return exc.response
        return self.error(
            404, f"No HTTP resource was found that matches the request URI '{request.path}'."
        )

    # /_emulator/ ----------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        name = request.path.removeprefix("/_emulator/").strip("/")
        try:
            with self.lock:
                if name == "state" and request.method == "GET":
                    self.advance(self.now())
                    return json_response(
                        {"kind": self.kind, "clock": self.clock.as_dict(), **self.state()}
                    )
                if name == "requests" and request.method == "GET":
                    return json_response(self.requests(path=request.query.get("path", "")))
                if name == "requests" and request.method == "DELETE":
                    self.log.clear()
                    return json_response({"cleared": True})
                if name == "faults" and request.method == "POST":
                    body = request.json() if request.body else {}
                    items = body if isinstance(body, list) else [body]
                    self.faults = [Fault.from_json(item) for item in items if item]
                    return json_response({"faults": [vars(f) for f in self.faults]})
                if name == "faults" and request.method == "GET":
                    return json_response({"faults": [vars(f) for f in self.faults]})
                if name == "faults" and request.method == "DELETE":
                    self.faults = []
                    return json_response({"faults": []})
                if name == "clock" and request.method == "POST":
                    return json_response(self._clock_action(request.json()))
                if name == "reset" and request.method == "POST":
                    self.reset()
                    return json_response({"reset": True})
        except (BadJson, TypeError, ValueError) as exc:
            return json_response({"message": f"bad control request: {exc}"}, 400)
        return json_response(
            {"message": f"no emulator endpoint {request.method} {request.path}"}, 404
        )

    def _clock_action(self, body: dict[str, Any]) -> dict[str, Any]:
        action = body.get("action")
        if action == "pause":
            self.advance(self.now())
            self.clock.pause()
        elif action == "resume":
            self.clock.resume()
        elif action == "step":
            self.clock.step(float(body.get("seconds", 0)))
            self.advance(self.now())
        elif action == "speed":
            self.clock.speed = float(body["speed"])
        else:
            raise ValueError("action must be pause, resume, step or speed")
        return self.clock.as_dict()


# Helpers for vendor emulators ------------------------------------------------------------------


def epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def seeded_uuid(rng: random.Random) -> str:
    """A GUID drawn from the estate's RNG, so the same seed gives the same ids."""
    value = rng.getrandbits(128)
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:32]}"


# Serving over loopback ---------------------------------------------------------------------------


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


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

    def serve_forever(self) -> None:
        self.server.serve_forever()


@contextlib.contextmanager
def served(app: EmulatorApp, port: int = 0) -> Iterator[ServedEmulator]:
    emulator = ServedEmulator(app, port).start()
    try:
        yield emulator
    finally:
        emulator.stop()
