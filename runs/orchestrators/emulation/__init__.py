"""The core every vendor emulator shares: a WSGI app with a clock, a seeded estate, a request
log, a fault switch and the `/_emulator/` endpoints, plus a threaded loopback server.

An estate can be kept in a JSON file (`persist`): a later emulator with the same kind and seed
resumes it, so a restarted demo continues the world Runboard's database already mirrors.

An emulator starts only when asked (`manage.py emulate`, `manage.py demo`, tests).

One module a concern: `app` (the WSGI core and routing), `http` (requests, responses, vendor
errors), `clock`, `faults`, `control` (the `/_emulator/` endpoints), `persistence` and `plain`
(saving and resuming an estate), `ids` (helpers for vendor estates) and `serving` (loopback).
"""

from __future__ import annotations

from runs.orchestrators.emulation.app import ConnectHints, EmulatorApp
from runs.orchestrators.emulation.clock import Clock
from runs.orchestrators.emulation.faults import Fault
from runs.orchestrators.emulation.http import (
    REASONS,
    BadJson,
    Handler,
    HttpError,
    Request,
    Response,
    Route,
    json_response,
)
from runs.orchestrators.emulation.ids import epoch_ms, seeded_uuid
from runs.orchestrators.emulation.persistence import STATE_FORMAT, Resumption, write_atomically
from runs.orchestrators.emulation.plain import Refs, from_plain, to_plain
from runs.orchestrators.emulation.serving import ServedEmulator, served

__all__ = [
    "REASONS",
    "STATE_FORMAT",
    "BadJson",
    "Clock",
    "ConnectHints",
    "EmulatorApp",
    "Fault",
    "Handler",
    "HttpError",
    "Refs",
    "Request",
    "Response",
    "Resumption",
    "Route",
    "ServedEmulator",
    "epoch_ms",
    "from_plain",
    "json_response",
    "seeded_uuid",
    "served",
    "to_plain",
    "write_atomically",
]
