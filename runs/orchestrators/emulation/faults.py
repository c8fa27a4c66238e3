"""Misbehaviour on demand: latency, errors, timeouts and malformed bodies for matching requests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


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
