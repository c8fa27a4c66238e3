"""The one HTTP wrapper the vendor clients share: timeouts, typed errors, retries on reads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

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
        raise ProtocolError(
            f"expected JSON from {response.request.method} {response.request.url.path}, "
            f"got {response.text[:120]!r}",
            status_code=response.status_code,
        ) from exc


def expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """Check the shape of a vendor answer at the boundary; a wrong one is a ProtocolError."""
    if not isinstance(value, kind):
        raise ProtocolError(
            f"{what}: expected {getattr(kind, '__name__', kind)}, got {value!r:.120}"
        )
    return value


__all__ = ["Http", "OrchestratorError", "expect", "make_client", "parse_json", "raise_for_status"]
