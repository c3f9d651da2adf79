"""One HTTP exchange over a ``requests.Session``: timeouts, error mapping, JSON decoding, debug log.

Used for both the API and the token endpoint, so the two behave alike (and a local emulator can
serve both). Retries are not done here; see :mod:`wsync_dagster.mparticle.retries`.
"""

import logging
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests
from pydantic import JsonValue

from wsync_dagster.mparticle.errors import (
    MalformedResponseError,
    RequestTimeoutError,
    TransportError,
    error_for_status,
    parse_retry_after,
)

_log = logging.getLogger("wsync_dagster.mparticle")

Timeout = float | tuple[float, float]
"""Seconds: one value for connect and read, or a ``(connect, read)`` pair."""

_MAX_REASON = 300


class HttpTransport:
    """Sends single requests with an explicit timeout and maps failures to the client's errors.

    Args:
        session: The session (connection pool) to send through.
        timeout: Timeout applied to every request.
    """

    def __init__(self, session: requests.Session, timeout: Timeout) -> None:
        self.session = session
        self.timeout = timeout

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: JsonValue = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request and return the response, whatever its status.

        Args:
            method: HTTP method.
            url: Absolute URL.
            params: Query parameters.
            json: JSON body (None sends no body).
            headers: Extra headers.

        Returns:
            The response (any status).

        Raises:
            RequestTimeoutError: The connect or read timeout elapsed.
            TransportError: The connection failed, was reset or was closed without a response.
        """
        path = urlsplit(url).path
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.Timeout as error:
            _log.debug("%s %s timed out after %.1f ms", method, path, _ms_since(started))
            raise RequestTimeoutError(
                f"no response within the timeout ({_describe_timeout(self.timeout)}): "
                f"{_reason(error)}",
                method=method,
                path=path,
            ) from None
        except requests.RequestException as error:
            _log.debug("%s %s failed after %.1f ms", method, path, _ms_since(started))
            raise TransportError(_reason(error), method=method, path=path) from None
        _log.debug("%s %s -> %d in %.1f ms", method, path, response.status_code, _ms_since(started))
        return response


def read_json(response: requests.Response, *, detail: str | None = None) -> JsonValue:
    """Decode a response: the JSON body of a success, or the typed error of a failure.

    Args:
        response: The response to read.
        detail: Context put in front of an error's message.

    Returns:
        The decoded JSON, or None for an empty body (e.g. 204 No Content).

    Raises:
        APIStatusError: The status is 400 or above (the subclass matching the status).
        MalformedResponseError: A success whose body is not JSON.
    """
    method = response.request.method or "?"
    path = urlsplit(response.url).path
    if response.status_code >= 400:
        raise error_for_status(
            response.status_code,
            response.text,
            method=method,
            path=path,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            detail=detail,
        )
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        snippet = response.text[:_MAX_REASON]
        raise MalformedResponseError(
            f"expected JSON, got {snippet!r}", status=response.status_code, method=method, path=path
        ) from None


def _reason(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "…"


def _describe_timeout(timeout: Timeout) -> str:
    if isinstance(timeout, tuple):
        return f"connect {timeout[0]:g} s, read {timeout[1]:g} s"
    return f"{timeout:g} s"


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
