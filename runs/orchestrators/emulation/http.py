"""The emulators' HTTP vocabulary: a parsed request, a response, a vendor error to raise,
a route, and the reason phrases of the status codes they answer with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


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
