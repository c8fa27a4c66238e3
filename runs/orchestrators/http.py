"""The one HTTP wrapper the vendor clients share: timeouts, typed errors, retries on reads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from runs.orchestrators.base import (
    BadRequest,
    Conflict,
    NotFound,
    OrchestratorError,
    ProtocolError,
    Unauthorized,
    Unavailable,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Leapwork: 446 not enough disk space, 455 database not responding.
UNAVAILABLE_CODES = frozenset({446, 455})


def make_client(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx.Client with explicit timeouts; `transport` lets tests run an emulator in-process."""
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers=dict(headers or {}),
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        transport=transport,
        follow_redirects=False,
    )


def base_url_problem(base_url: str) -> str:
    """Why requests cannot be sent under this base URL, or "" when they can.

    Django's URL validation accepts hosts that httpx refuses (IDNA 2003 against IDNA 2008,
    full-width letters, a snowman): checked here by parsing it as the clients will.
    """
    try:
        url = httpx.URL(base_url.rstrip("/") + "/")
        host = url.host  # decodes the host's A-labels, which may fail too
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return f"This URL cannot be used for HTTP requests: {exc}."
    if url.scheme not in ("http", "https") or not host:
        return "This URL cannot be used for HTTP requests: give an http:// or https:// URL."
    if url.port is not None and not 0 < url.port < 65536:
        return "This URL cannot be used for HTTP requests: its port is not between 1 and 65535."
    return ""


def header_value_problem(value: str, *, what: str = "credential") -> str:
    """Why `value` cannot be sent in an HTTP header, or "" when it can: headers are ASCII,
    without control characters, and a value does not start or end with a space."""
    if any(not (" " <= char <= "~") for char in value) or value != value.strip():
        return (
            f"The {what} must be printable ASCII without surrounding spaces: "
            "it is sent in an HTTP header."
        )
    return ""


def path_segment(value: str | int) -> str:
    """An id as exactly one path segment, so it never names another endpoint.

    Every reserved character is escaped (a "/" too), and "." or ".." are escaped as well:
    httpx, like any URL resolver, would remove them with the segment before.
    """
    text = str(value).strip()
    if not text:
        raise BadRequest("An empty id cannot be sent.")
    segment = quote(text, safe="")
    return segment.replace(".", "%2E") if not text.strip(".") else segment


def error_message(response: httpx.Response) -> str:
    """The vendor's own message when the body carries one, else the body's start."""
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        return text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "Message", "error", "Error", "detail", "title"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return text[:500] or response.reason_phrase


def raise_for_status(response: httpx.Response) -> None:
    code = response.status_code
    if code < 400:
        return
    message = error_message(response)
    if code == 401 or code == 403:
        raise Unauthorized(message, status_code=code)
    if code == 404:
        raise NotFound(message, status_code=code)
    if code == 409:
        raise Conflict(message, status_code=code)
    if code >= 500 or code in UNAVAILABLE_CODES or code == 429:
        raise Unavailable(message, status_code=code)
    raise BadRequest(message, status_code=code)


class Http:
    """Sends one request, turns every failure into a typed OrchestratorError.

    Reads (`idempotent=True`) retry with backoff while the orchestrator is unavailable;
    writes never retry blindly: a write that timed out may have happened.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        retries: int = 2,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        if idempotent is None:
            idempotent = method.upper() == "GET"
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                return self._send(method, path, params=params, json_body=json_body, headers=headers)
            except Unavailable:
                if attempt + 1 >= attempts:
                    raise
                self.sleep(self.backoff * (2**attempt))
        raise AssertionError("unreachable")

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Any,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body).encode()
            kwargs["headers"] = {"Content-Type": "application/json", **(headers or {})}
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.ConnectTimeout as exc:
            raise Unavailable(f"timed out connecting to {self.client.base_url}") from exc
        except httpx.ConnectError as exc:
            raise Unavailable(f"cannot connect to {self.client.base_url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise Unavailable(
                f"no answer within the timeout ({method} {path})", outcome_unknown=True
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise Unavailable(
                f"connection lost ({method} {path}): {exc}", outcome_unknown=True
            ) from exc
        except httpx.HTTPError as exc:
            raise Unavailable(f"{method} {path} failed: {exc}", outcome_unknown=True) from exc
        except (httpx.InvalidURL, UnicodeError) as exc:
            # Refused before anything left (a URL too long, a header that is not ASCII).
            raise BadRequest(f"The request cannot be sent: {exc}") from exc
        logger.debug("%s %s -> %s", method, path, response.status_code)
        raise_for_status(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return parse_json(response)


def parse_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        # The body is not quoted back: an answer is shown to whoever asked, and it may come
        # from an endpoint that person should not read.
        raise ProtocolError(
            f"expected JSON from {response.request.method} {response.request.url.path}, "
            f"got {len(response.content)} bytes of {response.headers.get('content-type', '?')}",
            status_code=response.status_code,
        ) from exc


def expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """Check the shape of a vendor answer at the boundary; a wrong one is a ProtocolError."""
    if not isinstance(value, kind):
        # The type only, not the value: see parse_json.
        raise ProtocolError(
            f"{what}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}"
        )
    return value


__all__ = [
    "Http",
    "OrchestratorError",
    "base_url_problem",
    "expect",
    "header_value_problem",
    "make_client",
    "parse_json",
    "path_segment",
    "raise_for_status",
]
