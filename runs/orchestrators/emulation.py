"""The core every vendor emulator shares: a WSGI app with a clock, a seeded estate, a request
log, a fault switch and the `/_emulator/` endpoints, plus a threaded loopback server.

An estate can be kept in a JSON file (`persist`): a later emulator with the same kind and seed
resumes it, so a restarted demo continues the world Runboard's database already mirrors.

An emulator starts only when asked (`manage.py emulate`, `manage.py demo`, tests).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import random
import re
import socketserver
import tempfile
import threading
import time
import types
import typing
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

logger = logging.getLogger(__name__)

SECRET_HEADERS = frozenset({"accesskey", "authorization", "x-authorization", "cookie"})
# Bump when a saved estate can no longer be read by this code: older files then start afresh.
STATE_FORMAT = 1


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


# Saving an estate as plain JSON -----------------------------------------------------------------

# Objects saved by reference: type -> (its key, the object for a key). An estate's runs point at
# its plans or cases; saving those by key keeps one object per plan or case after a resume.
Refs = Mapping[type, tuple[Callable[[Any], Any], Callable[[Any], Any]]]


def to_plain(value: Any, refs: Refs | None = None) -> Any:
    """Dataclasses, datetimes, sets and containers of them as JSON-ready values (a copy)."""
    refs = refs or {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value) in refs:
            return refs[type(value)][0](value)
        return {f.name: to_plain(getattr(value, f.name), refs) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_plain(item, refs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item, refs) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(to_plain(item, refs) for item in value)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_plain(hint: Any, data: Any, refs: Refs | None = None) -> Any:
    """The inverse of `to_plain`, led by the type hint of what was saved."""
    refs = refs or {}
    if data is None or hint is Any:
        return data
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return from_plain(next(arg for arg in args if arg is not type(None)), data, refs)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if hint in refs:
            return refs[hint][1](data)
        hints = _hints(hint)
        values = {
            f.name: from_plain(hints[f.name], data[f.name], refs)
            for f in dataclasses.fields(hint)
            if f.name in data
        }
        return hint(**values)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if hint in (int, float, str, bool):
        return hint(data)  # JSON object keys come back as text
    if origin is list:
        return [from_plain(args[0], item, refs) for item in data]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], item, refs) for item in data)
        return tuple(from_plain(arg, item, refs) for arg, item in zip(args, data, strict=True))
    if origin in (set, frozenset):
        return origin(from_plain(args[0], item, refs) for item in data)
    if origin in (dict, Counter):
        key_hint, value_hint = args if len(args) == 2 else (args[0], int)
        return origin(
            {
                from_plain(key_hint, k, refs): from_plain(value_hint, v, refs)
                for k, v in data.items()
            }
        )
    return data


def write_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`: a reader (or a
    process killed mid-write) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True)
class Resumption:
    """What `persist` found: a saved estate it resumed, or a reason to start a new one."""

    resumed: bool
    message: str

    def __str__(self) -> str:
        return self.message


class EmulatorApp:
    """A vendor emulator: subclasses build an estate from a seed and register routes.

    Subclasses implement `build()` (make the estate from `self.rng`), `advance(now)` (move
    runs along the clock), `authorize(request)` (raise HttpError when refused), `routes()`,
    `state()` and `not_found()` / `method_not_allowed()` in the vendor's error shape. To be
    saved and resumed they name their estate's attributes in `estate_types`, call
    `mark_changed()` when the clock alone makes something new (a run a schedule starts), and
    may override `resumed(now)`.

    What is saved: everything a request or a schedule created (ids, counters, the RNG), not
    what the clock derives from it: an emulator advances a resumed estate to the present.
    """

    kind = "emulator"
    served_at = ""  # the loopback URL once a ServedEmulator serves this app
    # attribute name -> its type, for every attribute that makes up the estate
    estate_types: ClassVar[dict[str, Any]] = {}

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
        self.state_path: Path | None = None
        self._dirty = False
        self._saver: threading.Thread | None = None
        self._stop_saving = threading.Event()
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

    def estate(self) -> dict[str, Any]:
        """The estate as plain JSON values (see `estate_types`)."""
        return {name: to_plain(getattr(self, name)) for name in self.estate_types}

    def restore(self, estate: dict[str, Any]) -> None:
        """Replace the built estate by a saved one."""
        for name, hint in self.estate_types.items():
            setattr(self, name, from_plain(hint, estate[name]))

    def resumed(self, now: datetime) -> None:
        """Called after `restore`: settle what happened while no emulator was running."""

    def describe(self) -> str:
        """A few words on the estate's size, for the line that says it was resumed."""
        return ""

    # The core -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.rng = random.Random(self.seed)
            self.log.clear()
            self.faults.clear()
            self.build()

    def now(self) -> datetime:
        return self.clock.now()

    # Saving and resuming --------------------------------------------------------------------

    def mark_changed(self) -> None:
        """Something was created or changed that the clock alone cannot derive again."""
        self._dirty = True

    def persist(self, path: Path, *, every: float = 2.0) -> Resumption:
        """Resume the estate saved at `path` if it is this emulator's, then keep saving it there
        (after every change, before the answer that reveals it, and every `every` seconds)."""
        with self.lock:
            note = self._resume(path)
            self.state_path = path
            self.save()
        if every > 0 and self._saver is None:
            self._stop_saving.clear()
            self._saver = threading.Thread(
                target=self._save_every, args=(every,), daemon=True, name=f"save-{self.kind}"
            )
            self._saver.start()
        return note

    def _resume(self, path: Path) -> Resumption:
        fresh = f"starting a new {self.kind} estate from seed {self.seed}"
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            return Resumption(False, f"No saved {self.kind} estate at {path}: {fresh}.")
        except (OSError, ValueError) as exc:
            return Resumption(
                False, f"The saved {self.kind} estate at {path} cannot be read ({exc}): {fresh}."
            )
        if not isinstance(saved, dict):
            saved = {}
        found = {key: saved.get(key) for key in ("format", "kind", "seed")}
        wanted = {"format": STATE_FORMAT, "kind": self.kind, "seed": self.seed}
        mismatch = [
            f"{key} {found[key]!r} (not {wanted[key]!r})"
            for key in wanted
            if found[key] != wanted[key]
        ]
        if mismatch:
            return Resumption(
                False, f"The saved estate at {path} has {', '.join(mismatch)}: {fresh}."
            )
        try:
            saved_at = datetime.fromisoformat(saved["saved_at"])
            self.restore(saved["estate"])
            self.rng.setstate(_rng_state(saved["rng"]))
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            self.reset()  # whatever the half-read file left behind goes
            return Resumption(
                False, f"The saved {self.kind} estate at {path} is damaged ({exc!r}): {fresh}."
            )
        # Time never runs backwards for an estate: a stepped clock resumes where it was.
        behind = (saved_at - self.now()).total_seconds()
        if behind > 0:
            self.clock.step(behind)
        self.resumed(self.now())
        self.advance(self.now())
        summary = self.describe()
        return Resumption(
            True,
            f"Resumed the {self.kind} estate saved at {saved['saved_at']} from {path}"
            + (f" ({summary})." if summary else "."),
        )

    def save(self) -> None:
        """Write the estate to `state_path` (if persisting), atomically."""
        with self.lock:
            if self.state_path is None:
                return
            payload = {
                "format": STATE_FORMAT,
                "kind": self.kind,
                "seed": self.seed,
                "saved_at": self.now().isoformat(),
                "options": {"history": self.history, "pace": self.pace, "autorun": self.autorun},
                "rng": self.rng.getstate(),
                "estate": self.estate(),
            }
            # Written under the lock, so a newer save can never be overtaken by an older one.
            write_atomically(self.state_path, json.dumps(payload, separators=(",", ":")).encode())
            self._dirty = False

    def _save_if_changed(self) -> None:
        if self._dirty and self.state_path is not None:
            try:
                self.save()
            except OSError:
                logger.exception("could not save the %s estate to %s", self.kind, self.state_path)

    def _save_every(self, seconds: float) -> None:
        while not self._stop_saving.wait(seconds):
            with self.lock:
                # Let schedules start what is due even when nobody asks, and keep that too.
                self.advance(self.now())
                self._save_if_changed()

    def close(self) -> None:
        """Stop saving in the background, after one last save."""
        self._stop_saving.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
            self._saver = None
        if self.state_path is not None:
            self.save()

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
        if request.method != "GET":
            self.mark_changed()
        # Saved before the answer goes out: whatever a client learns (a new run id) is on disk.
        with self.lock:
            self._save_if_changed()
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


def _rng_state(saved: Any) -> tuple[Any, ...]:
    """random.Random.getstate() comes back from JSON as lists; setstate wants tuples."""
    version, internal, gauss = saved
    return (version, tuple(internal), gauss)


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
