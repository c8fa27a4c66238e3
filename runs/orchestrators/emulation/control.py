"""The `/_emulator/` endpoints tests and the demo use: state, request log, requests in flight,
faults, clock, reset."""

from __future__ import annotations

from typing import Any

from runs.orchestrators.emulation.faults import Fault
from runs.orchestrators.emulation.http import (
    BadJson,
    Request,
    Response,
    json_response,
)


class ControlEndpoints:
    """The /_emulator/ endpoints; part of EmulatorApp."""

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
                if name == "in-flight" and request.method == "GET":
                    return json_response({"now": self.in_flight, "peak": self.in_flight_peak})
                if name == "in-flight" and request.method == "DELETE":
                    # The peak starts again from the requests being served now.
                    self.in_flight_peak = self.in_flight
                    return json_response({"now": self.in_flight, "peak": self.in_flight_peak})
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
