"""The emulator's ASGI app (Starlette): the route table, the request layer and the error shapes.

Handlers live in :mod:`wsync_dagster.emulator.routes`, one module per resource; they parse the
request, call one part of the backend (:mod:`wsync_dagster.emulator.backend`) and return what it
returns. The API below is the one ``docs/warehouse-sync-api.md`` describes.

Served API:

* ``POST /oauth/token`` — client-credentials grant (JSON or form body).
* Warehouse Sync, under ``/platform/experimental/workspaces/{workspaceId}/inputs/warehouse``
  (bearer token required): ``connections`` (``GET`` with optional ``?type=``, ``POST``),
  ``connections/{id}`` (``GET``, ``PUT``, ``DELETE``), the same for ``data-models`` and
  ``pipelines``, ``POST pipelines/{id}`` and ``POST pipelines/{id}/trigger`` (trigger),
  ``GET pipelines/{id}/status``, ``GET pipelines/{id}/status/runs`` (``currentPage``,
  ``pageSize``, ``startDate``, ``endDate``) and ``GET pipelines/{id}/status/runs/{runId}``.
* Profile API (bearer token required): ``GET`` or ``POST``
  ``/userprofile/v1/{orgId}/{accountId}/{workspaceId}/{mpid}?fields=...`` and
  ``POST /userprofile/v1/resolve/{orgId}/{accountId}/{workspaceId}?fields=...``.

Errors use ``{"statusCode": N, "errors": [{"message": "..."}]}`` (the token endpoint uses the Auth0
shape ``{"error": ..., "error_description": ...}``); unknown routes are 404, wrong methods 405,
bodies over the size limit 413, non-JSON content types 415 — always JSON, never a 500.

Admin API under ``/_emulator/`` (no token; loopback clients only; never logged, never faulted):

* ``GET /_emulator/config`` — ``workspace_id``, ``org_id``, ``account_id``, ``client_id``,
  ``clock`` mode and ``run_seconds``.
* ``GET /_emulator/clock`` — ``{"now": "...Z", "epoch_ms": N, "mode": "real"|"manual"}``.
* ``POST /_emulator/clock`` — ``{"now": "<ISO instant>"}`` or ``{"advance_seconds": N}``, plus
  ``"settle": true|false`` (default true: every run that falls due on the way is created and
  executed before the response; a manual clock steps through each due instant). Returns the
  clock plus ``runs_executed``.
* ``POST /_emulator/settle`` — create every due run and execute every runnable run now; returns
  the clock plus ``runs_executed``.
* ``POST /_emulator/reset`` — forget all resources, runs, profiles, tokens, faults, the request
  log and record-limit overrides; the clock goes back to where it started.
* ``GET /_emulator/faults`` / ``POST /_emulator/faults`` / ``DELETE /_emulator/faults`` — read,
  set, clear injected faults. ``POST`` takes any of:
  ``{"throttle": {"count", "retry_after", "method", "path"}}`` (429 + ``Retry-After`` for the next
  ``count`` Warehouse Sync/Profile calls, optionally only those with that method / whose path
  matches the regex), ``{"server_error": {"count", "status", "method", "path"}}`` (a 5xx instead),
  ``{"hold": {"count", "seconds", "method", "path"}}`` (the next ``count`` matching calls each wait
  until all ``count`` have arrived, then proceed together — at most ``seconds``, default 30 — so
  that concurrent clients meet there; ``GET`` shows how many are ``waiting``),
  ``{"latency": {"seconds", "method", "path"}}`` (every matching call waits ``seconds`` before it
  is answered, concurrently with the others, until cleared: a real service's round trip),
  ``{"token_delay": {"seconds", "count"}}`` (slow token endpoint; ``count`` null = until cleared),
  ``{"token_failure": {"count"}}`` (next token calls 500), ``{"warehouse_unreachable": bool}``,
  ``{"run_failure": {"reason", "pipeline_id"}}`` (the next run, of that pipeline or of any, fails
  with ``reason``; repeatable), ``{"drop_trigger_response": {"count"}}`` (the next trigger creates
  its run, then the connection is closed without a response) and
  ``{"unknown_run_state": {"count", "state"}}`` (the next run objects served carry ``state``).
* ``GET /_emulator/requests`` / ``DELETE /_emulator/requests`` — the request log:
  ``[{"method", "path", "status", "authorized"}]`` for every non-admin request, token requests
  included (``status`` null when the response was dropped).
* ``GET /_emulator/profiles`` — every stored profile with all fields.
* ``GET /_emulator/activity`` — when each pipeline started and stopped counting toward the
  active-pipeline limit: ``{"events": [{"seq", "at", "pipeline_id", "active", "active_count"}],
  "active": [ids], "peak_active": N}``, recorded under the state lock by every create, PUT, delete
  and ``once`` run end (pauses before activations within one change), so ``peak_active`` is the
  most pipelines ever active at once since the last reset. The limit itself is enforced on a
  ``PUT`` with ``is_active: true`` as on a create (400).
* ``GET /_emulator/limits`` / ``POST /_emulator/limits`` — records per run by
  ``schedule_interval`` (``on_demand`` for triggered runs); ``POST`` overrides some, e.g.
  ``{"hourly": 10}`` (reset restores the documented limits).
"""

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wsync_dagster.emulator.backend import Backend
from wsync_dagster.emulator.errors import ApiError, TokenError
from wsync_dagster.emulator.routes import ROUTES
from wsync_dagster.emulator.routes.common import (
    ADMIN_BASE,
    PROFILE_BASE,
    DropConnection,
    is_loopback,
)
from wsync_dagster.emulator.scheduler import Scheduler

__all__ = ["ConnectionDropper", "create_app", "is_loopback"]

log = logging.getLogger("wsync_dagster.emulator")

_FAULTED_PREFIXES = ("/platform/", PROFILE_BASE + "/")

# Closes the TCP connection of the client at (host, port) without a response.
ConnectionDropper = Callable[[tuple[str, int]], Awaitable[None]]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(status, message).body(), status, headers=headers)


class _RequestLayer:
    """Faults and the request log for every non-admin request (pure ASGI, inside Starlette's
    error middleware so that nothing escapes as a bare 500)."""

    def __init__(
        self, app: ASGIApp, backend: Backend, drop_connection: ConnectionDropper | None
    ) -> None:
        self.app = app
        self.backend = backend
        self.drop_connection = drop_connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_BASE + "/") or path == ADMIN_BASE:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        authorized = self.backend.auth.token_valid(headers.get("authorization"))
        status: int | None = None

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if path.startswith(_FAULTED_PREFIXES):
                await self.backend.admin.delay(method, path)
                await self.backend.admin.hold(method, path)
            fault = (
                self.backend.admin.take_request_fault(method, path)
                if path.startswith(_FAULTED_PREFIXES)
                else None
            )
            if fault is not None:
                response = JSONResponse(fault.body(), fault.status, headers=fault.headers)
                await response(scope, receive, send_logged)
            else:
                await self.app(scope, receive, send_logged)
        except DropConnection:
            client = scope.get("client")
            if self.drop_connection is None or client is None:
                raise
            await self.drop_connection((client[0], client[1]))
        finally:
            self.backend.admin.record_request(method, path, status, authorized)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), exc.status, headers=exc.headers)


async def _token_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, TokenError)
    return JSONResponse(exc.body(), exc.status)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "No such route.", 405: "Method not allowed on this route."}.get(
        exc.status_code, str(exc.detail)
    )
    return _error(exc.status_code, message, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, f"Internal emulator error: {exc!r}")


def create_app(
    backend: Backend, scheduler: Scheduler, drop_connection: ConnectionDropper | None = None
) -> Starlette:
    """The ASGI app of one emulator. ``drop_connection`` is what the server offers to close a
    client's connection (the "drop the next trigger response" fault)."""
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(_RequestLayer, backend=backend, drop_connection=drop_connection)],
        exception_handlers={
            ApiError: _api_error,
            TokenError: _token_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    # What the handlers reach the emulator through (routes.common.Call).
    app.state.backend = backend
    app.state.scheduler = scheduler
    return app
