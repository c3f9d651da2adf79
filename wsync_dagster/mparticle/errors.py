"""The client's one error tree.

Everything the client raises on purpose is a :class:`WarehouseSyncError`::

    WarehouseSyncError
    ├── InvalidRequestError        bad input, caught before anything is sent (also a ValueError)
    ├── TransportError             the connection failed or was cut (nothing usable came back)
    ├── WarehouseSyncTimeoutError  also the builtin TimeoutError
    │   ├── RequestTimeoutError    one HTTP request exceeded its timeout
    │   └── WaitTimeoutError       wait_for_run gave up while the run was still in progress
    ├── MalformedResponseError     the server answered, but not with what the API documents
    ├── APIStatusError             the server answered with an error status
    │   ├── BadRequestError               400
    │   ├── AuthenticationError           401, and any rejection by the token endpoint
    │   ├── PermissionDeniedError         403
    │   ├── NotFoundError                 404
    │   ├── RateLimitedError              429 (carries retry_after)
    │   ├── WarehouseUnreachableError     505 (never retried: credentials or account are wrong)
    │   └── ServerError                   other 5xx
    ├── RunFailedError             the run ended ``failed`` (carries the run and faulted_reason)
    └── UnknownRunStateError       the run reported a state this client does not know (fails closed)

No error ever carries a secret: messages are built from the method, the URL path, the status and the
server's own error messages, never from request headers or bodies.
"""

import builtins
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # models imports this module, so the run type is only named in annotations
    from wsync_dagster.mparticle.models import PipelineRun

_MAX_BODY_SNIPPET = 300


class WarehouseSyncError(Exception):
    """Base class of every error the mParticle client raises on purpose."""


class InvalidRequestError(WarehouseSyncError, ValueError):
    """An argument or model is invalid; raised before any request is sent."""


class TransportError(WarehouseSyncError):
    """The HTTP exchange failed at the connection level (refused, reset, dropped).

    Attributes:
        method: HTTP method of the failed request.
        path: URL path of the failed request (no query string, no host credentials).
    """

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {message}")
        self.method = method
        self.path = path


# Subclasses the builtin, so `except TimeoutError` catches the client's timeouts too.
class WarehouseSyncTimeoutError(WarehouseSyncError, builtins.TimeoutError):
    """Base class of the client's timeouts; also catchable as the builtin ``TimeoutError``."""


class RequestTimeoutError(WarehouseSyncTimeoutError):
    """One HTTP request did not complete within its timeout.

    Attributes:
        method: HTTP method of the request.
        path: URL path of the request.
    """

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {message}")
        self.method = method
        self.path = path


class WaitTimeoutError(WarehouseSyncTimeoutError):
    """``wait_for_run`` reached its timeout while the run was still in a known, non-terminal state.

    Attributes:
        pipeline_id: The pipeline whose run was awaited.
        run: The last observed run.
        timeout: The timeout that elapsed, in seconds.
    """

    def __init__(self, pipeline_id: str, run: "PipelineRun", timeout: float) -> None:
        super().__init__(
            f"run {run.pipeline_run_id} of pipeline {pipeline_id!r} was still "
            f"{run.pipeline_run_state!r} after {timeout:g} s"
        )
        self.pipeline_id = pipeline_id
        self.run = run
        self.timeout = timeout


class MalformedResponseError(WarehouseSyncError):
    """The server's answer could not be read as the documented JSON shape.

    Attributes:
        status: HTTP status of the response, when the body could not even be decoded.
        method: HTTP method of the request.
        path: URL path of the request.
    """

    def __init__(self, message: str, *, status: int | None, method: str, path: str) -> None:
        arrow = f" -> {status}" if status is not None else ""
        super().__init__(f"{method} {path}{arrow}: {message}")
        self.status = status
        self.method = method
        self.path = path


class APIStatusError(WarehouseSyncError):
    """The server answered with an error status.

    Attributes:
        status: HTTP status code.
        messages: The server's error messages, in order (may be empty).
        method: HTTP method of the request.
        path: URL path of the request (for token requests: the token URL).
        retry_after: Seconds the server asked us to wait (``Retry-After``), if it said.
    """

    def __init__(
        self,
        *,
        status: int,
        messages: tuple[str, ...],
        method: str,
        path: str,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        text = "; ".join(messages) or "(no error message in the response)"
        prefix = f"{detail}: " if detail else ""
        super().__init__(f"{prefix}{method} {path} -> {status}: {text}")
        self.status = status
        self.messages = messages
        self.method = method
        self.path = path
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the request is invalid or the resource is in an unprocessable state."""


class AuthenticationError(APIStatusError):
    """401 from the API after one token refresh, or any rejection by the token endpoint."""


class PermissionDeniedError(APIStatusError):
    """403: the credential may not call this method on this resource."""


class NotFoundError(APIStatusError):
    """404: the resource does not exist (or, right after creation, is still being provisioned)."""


class RateLimitedError(APIStatusError):
    """429: throttled; ``retry_after`` says for how long, when the server said."""


class WarehouseUnreachableError(APIStatusError):
    """505: mParticle could not connect to the warehouse (check the connection's settings)."""


class ServerError(APIStatusError):
    """A 5xx other than 505."""


class RunFailedError(WarehouseSyncError):
    """A pipeline run ended in state ``failed``.

    Attributes:
        pipeline_id: The pipeline the run belongs to.
        run: The failed run.
        faulted_reason: The pipeline's ``faulted_reason`` when the failure was observed, if any.
    """

    def __init__(self, pipeline_id: str, run: "PipelineRun", faulted_reason: str | None) -> None:
        reason = faulted_reason or "mParticle gave no faulted_reason"
        super().__init__(f"run {run.pipeline_run_id} of pipeline {pipeline_id!r} failed: {reason}")
        self.pipeline_id = pipeline_id
        self.run = run
        self.faulted_reason = faulted_reason


class UnknownRunStateError(WarehouseSyncError):
    """A run stayed in a state this client does not know until the wait timed out.

    The client never guesses what an unknown state means (it could be a renamed success or a
    renamed failure), so it fails closed.

    Attributes:
        pipeline_id: The pipeline the run belongs to.
        run: The last observed run.
        state: The unknown ``pipeline_run_state`` string.
    """

    def __init__(self, pipeline_id: str, run: "PipelineRun", timeout: float) -> None:
        super().__init__(
            f"run {run.pipeline_run_id} of pipeline {pipeline_id!r} reported unknown state "
            f"{run.pipeline_run_state!r} until the {timeout:g} s wait ran out; not treating it "
            "as success"
        )
        self.pipeline_id = pipeline_id
        self.run = run
        self.state = run.pipeline_run_state


_STATUS_ERRORS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
    505: WarehouseUnreachableError,
}


def server_messages(body: str) -> tuple[str, ...]:
    """Extract the error messages from an error response body.

    Understands the Warehouse Sync shape ``{"statusCode": N, "errors": [{"message": ...}]}`` (also
    used, with a ``code``, by the older Platform API and the Events API) and the Auth0 shape
    ``{"error": ..., "error_description": ...}`` of the token endpoint. Anything else is returned as
    a truncated snippet of the raw body.

    Args:
        body: The response body as text.

    Returns:
        The messages, in order; empty when the body is empty.
    """
    text = body.strip()
    if not text:
        return ()
    try:
        data: object = json.loads(text)
    except ValueError:
        return (_snippet(text),)
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list):
            messages = tuple(_error_item_message(item) for item in errors)
            if messages:
                return messages
        if isinstance(error := data.get("error"), str):
            description = data.get("error_description")
            return (f"{error}: {description}" if isinstance(description, str) else error,)
    return (_snippet(text),)


def _error_item_message(item: object) -> str:
    if isinstance(item, dict):
        message, code = item.get("message"), item.get("code")
        if isinstance(message, str):
            return f"{code}: {message}" if isinstance(code, str) else message
    return _snippet(json.dumps(item))


def _snippet(text: str) -> str:
    return text if len(text) <= _MAX_BODY_SNIPPET else text[:_MAX_BODY_SNIPPET] + "…"


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds (the form mParticle documents).

    Args:
        value: The header value, or None when absent.

    Returns:
        The delay in seconds, or None when absent or not a non-negative number.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_for_status(
    status: int,
    body: str,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
    detail: str | None = None,
) -> APIStatusError:
    """Build the typed error for an error response.

    Args:
        status: HTTP status code (>= 400).
        body: Response body as text.
        method: HTTP method of the request.
        path: URL path of the request.
        retry_after: Parsed ``Retry-After`` seconds (429 and 503 carry it).
        detail: Optional context put in front of the message (e.g. which client id asked).

    Returns:
        An instance of the :class:`APIStatusError` subclass for that status.
    """
    cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
    return cls(
        status=status,
        messages=server_messages(body),
        method=method,
        path=path,
        detail=detail,
        retry_after=retry_after,
    )
