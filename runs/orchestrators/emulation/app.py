"""The vendor emulator core: a WSGI app with a clock, a seeded estate, a request log and
faults, routing each request to the vendor's handler.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from runs.orchestrators.emulation.clock import Clock
from runs.orchestrators.emulation.control import ControlEndpoints
from runs.orchestrators.emulation.faults import Fault
from runs.orchestrators.emulation.http import (
    REASONS,
    Handler,
    HttpError,
    Request,
    Response,
    Route,
    json_response,
)
from runs.orchestrators.emulation.persistence import (
    EstatePersistence,
)
from runs.orchestrators.emulation.plain import from_plain, to_plain

SECRET_HEADERS = frozenset({"accesskey", "authorization", "x-authorization", "cookie"})


@dataclass(frozen=True)
class ConnectHints:
    """What connecting Runboard to a served emulator takes (the demo asks each emulator)."""

    base_url: str
    credential: str
    test_plan_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()


class EmulatorApp(EstatePersistence, ControlEndpoints):
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
        # Vendor requests being served now, and the most at once (GET /_emulator/in-flight).
        self.in_flight = 0
        self.in_flight_peak = 0
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

    def connect_hints(self) -> ConnectHints:
        """How a client connects to this app where it is served (`served_at`)."""
        return ConnectHints(base_url=self.served_at, credential=self.credential)

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
            self.in_flight_peak = self.in_flight
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
            with self._counted():
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

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        """Count a vendor request in flight while it is served (latency faults included)."""
        with self.lock:
            self.in_flight += 1
            self.in_flight_peak = max(self.in_flight_peak, self.in_flight)
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= 1

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
