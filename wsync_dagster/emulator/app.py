"""HTTP routes of the emulator (Starlette): parse the request, call the backend, serialize.

Served API (spec §1, §2, §5.1 with the decisions of §7):

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
* ``GET /_emulator/limits`` / ``POST /_emulator/limits`` — records per run by
  ``schedule_interval`` (``on_demand`` for triggered runs); ``POST`` overrides some, e.g.
  ``{"hourly": 10}`` (reset restores the documented limits).
"""

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wsync_dagster.emulator.clock import parse_iso_instant
from wsync_dagster.emulator.errors import ApiError, TokenError, bad_request
from wsync_dagster.emulator.scheduler import Scheduler
from wsync_dagster.emulator.state import Backend, parse_fields

log = logging.getLogger("wsync_dagster.emulator")

WS_BASE = "/platform/experimental/workspaces/{workspace_id}/inputs/warehouse"
PROFILE_BASE = "/userprofile/v1"
ADMIN_BASE = "/_emulator"
_FAULTED_PREFIXES = ("/platform/", PROFILE_BASE + "/")

# Closes the TCP connection of the client at (host, port) without a response.
ConnectionDropper = Callable[[tuple[str, int]], Awaitable[None]]


class DropConnection(Exception):
    """Raised by a handler whose response must never reach the client."""


@dataclass(frozen=True)
class Call:
    """What a handler gets: path parameters, query parameters and the parsed JSON body."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any


Handler = Callable[[Call], Any]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(status, message).body(), status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _json_body(request: Request, limit: int, required: bool | None) -> Any:
    """The request's JSON body: required (True), refused (False) or ignored (None)."""
    raw = await _read_body(request, limit)
    if required is None:
        return None
    if not raw.strip():
        if required:
            raise bad_request("The request needs a JSON body.")
        return None
    if not required:
        raise bad_request("This request takes no body.")
    if _media_type(request) != "application/json":
        raise ApiError(415, "Send the body as Content-Type: application/json.")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"The request body is not valid JSON: {error}.") from None


def _query(request: Request, allowed: frozenset[str] | None) -> dict[str, str]:
    """Query parameters; unknown or repeated ones are a 400 (``allowed`` None: checked later)."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise bad_request(f"Repeated query parameter(s): {', '.join(repeated)}.")
    if allowed is not None and (unknown := sorted(set(names) - allowed)):
        raise bad_request(f"Unknown query parameter(s): {', '.join(unknown)}.")
    return dict(pairs)


def is_loopback(request: Request) -> bool:
    """Whether the request comes from this machine (the admin API answers nobody else)."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        authorized = self.backend.token_valid(headers.get("authorization"))
        status: int | None = None

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if path.startswith(_FAULTED_PREFIXES):
                await self.backend.faults.hold.meet(method, path)
            fault = (
                self.backend.take_request_fault(method, path)
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
            self.backend.record_request(method, path, status, authorized)


def create_app(
    backend: Backend, scheduler: Scheduler, drop_connection: ConnectionDropper | None = None
) -> Starlette:
    """The ASGI app of one emulator. ``drop_connection`` is what the server offers to close a
    client's connection (the "drop the next trigger response" fault)."""
    limit = backend.config.max_body_bytes

    def api(
        handler: Handler,
        *,
        body: bool | None = False,
        status: int = 200,
        query: frozenset[str] | None = frozenset(),
        workspace: bool = True,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not backend.token_valid(request.headers.get("authorization")):
                raise ApiError(401, "Missing, malformed or expired bearer token.")
            params = {k: str(v) for k, v in request.path_params.items()}
            if workspace:
                backend.check_workspace(params["workspace_id"])
            call = Call(params, _query(request, query), await _json_body(request, limit, body))
            result = await run_in_threadpool(handler, call)
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(result, status)

        return endpoint

    def admin(handler: Handler, *, body: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not is_loopback(request):
                raise ApiError(403, "The admin API only answers loopback clients.")
            call = Call({}, _query(request, frozenset()), await _json_body(request, limit, body))
            result = await run_in_threadpool(handler, call)
            return Response(status_code=204) if result is None else JSONResponse(result)

        return endpoint

    async def token(request: Request) -> Response:
        try:
            delay = backend.take_token_delay()
            if delay:
                await asyncio.sleep(delay)
            raw = await _read_body(request, limit)
            media = _media_type(request)
            if media == "application/x-www-form-urlencoded":
                payload: Any = dict(parse_qsl(raw.decode("utf-8", "replace")))
            elif media == "application/json":
                try:
                    payload = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise TokenError(400, "invalid_request", "Malformed JSON body.") from None
            else:
                raise TokenError(400, "invalid_request", "Send the body as application/json.")
            result = await run_in_threadpool(backend.issue_token, payload)
        except ApiError as error:  # an oversized body
            raise TokenError(error.status, "invalid_request", str(error)) from None
        return JSONResponse(result, headers={"Cache-Control": "no-store"})

    def trigger(call: Call) -> Any:
        result = backend.trigger(call.params["resource_id"])
        if backend.take_dropped_trigger():
            raise DropConnection
        return result

    def connection_list(call: Call) -> Any:
        kind = call.query.get("type")
        if kind is not None and kind not in ("snowflake", "bigquery"):
            raise bad_request(f"type must be snowflake or bigquery (got {kind!r}).")
        return backend.list_connections(kind)

    def set_clock(call: Call) -> Any:
        body = call.body
        if not isinstance(body, dict) or len(set(body) & {"now", "advance_seconds"}) != 1:
            raise bad_request('Send {"now": "<ISO instant>"} or {"advance_seconds": N}.')
        if unknown := sorted(set(body) - {"now", "advance_seconds", "settle"}):
            raise bad_request(f"Unknown field(s): {', '.join(unknown)}.")
        settle = body.get("settle", True)
        if not isinstance(settle, bool):
            raise bad_request("settle must be true or false.")
        if "now" in body:
            try:
                target = parse_iso_instant(str(body["now"]))
            except ValueError:
                raise bad_request("now must be an ISO-8601 instant with a zone.") from None
        else:
            seconds = body["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise bad_request("advance_seconds must be a number of seconds >= 0.")
            target = backend.clock.now() + timedelta(seconds=seconds)
        executed = scheduler.move_clock(target, settle)
        return {**backend.clock_json(), "runs_executed": executed}

    def settle(_: Call) -> Any:
        return {**backend.clock_json(), "runs_executed": scheduler.settle()}

    def reset(_: Call) -> Any:
        backend.reset()
        return backend.clock_json()

    def config(_: Call) -> Any:
        c = backend.config
        return {
            "workspace_id": c.workspace_id,
            "org_id": c.org_id,
            "account_id": c.account_id,
            "client_id": c.client_id,
            "clock": c.clock,
            "run_seconds": c.run_seconds,
        }

    def collection(
        name: str,
        listing: Handler,
        get: Callable[[str], Any],
        put: Callable[[Any, str | None], Any],
        delete: Callable[[str], None],
        list_query: frozenset[str] = frozenset(),
    ) -> list[Route]:
        """``GET``/``POST`` on ``{base}/{name}``; ``GET``/``PUT``/``DELETE`` on one resource."""
        many, one = f"{WS_BASE}/{name}", f"{WS_BASE}/{name}/{{resource_id}}"
        return [
            Route(many, api(listing, query=list_query), methods=["GET"]),
            Route(many, api(lambda c: put(c.body, None), body=True), methods=["POST"]),
            Route(one, api(lambda c: get(c.params["resource_id"])), methods=["GET"]),
            Route(
                one, api(lambda c: put(c.body, c.params["resource_id"]), body=True), methods=["PUT"]
            ),
            Route(
                one, api(lambda c: delete(c.params["resource_id"]), status=204), methods=["DELETE"]
            ),
        ]

    p = WS_BASE + "/pipelines/{resource_id}"
    routes = [
        Route("/oauth/token", token, methods=["POST"]),
        *collection(
            "connections",
            connection_list,
            backend.get_connection,
            backend.put_connection,
            backend.delete_connection,
            list_query=frozenset({"type"}),
        ),
        *collection(
            "data-models",
            lambda c: backend.list_data_models(),
            backend.get_data_model,
            backend.put_data_model,
            backend.delete_data_model,
        ),
        *collection(
            "pipelines",
            lambda c: backend.list_pipelines(),
            backend.get_pipeline,
            backend.put_pipeline,
            backend.delete_pipeline,
        ),
        Route(p, api(trigger), methods=["POST"]),
        Route(p + "/trigger", api(trigger), methods=["POST"]),
        Route(
            p + "/status",
            api(lambda c: backend.status(c.params["resource_id"])),
            methods=["GET"],
        ),
        Route(
            p + "/status/runs",
            api(lambda c: backend.list_runs(c.params["resource_id"], c.query), query=None),
            methods=["GET"],
        ),
        Route(
            p + "/status/runs/{run_id}",
            api(lambda c: backend.get_run(c.params["resource_id"], c.params["run_id"])),
            methods=["GET"],
        ),
        Route(
            PROFILE_BASE + "/resolve/{org_id}/{account_id}/{workspace_id}",
            api(_resolve(backend), body=True, query=frozenset({"fields"}), workspace=False),
            methods=["POST"],
        ),
        Route(
            PROFILE_BASE + "/{org_id}/{account_id}/{workspace_id}/{mpid}",
            api(_profile(backend), body=None, query=frozenset({"fields"}), workspace=False),
            methods=["GET", "POST"],
        ),
        Route(ADMIN_BASE + "/config", admin(config), methods=["GET"]),
        Route(ADMIN_BASE + "/clock", admin(lambda c: backend.clock_json()), methods=["GET"]),
        Route(ADMIN_BASE + "/clock", admin(set_clock, body=True), methods=["POST"]),
        Route(ADMIN_BASE + "/settle", admin(settle), methods=["POST"]),
        Route(ADMIN_BASE + "/reset", admin(reset), methods=["POST"]),
        Route(ADMIN_BASE + "/faults", admin(lambda c: backend.faults_json()), methods=["GET"]),
        Route(
            ADMIN_BASE + "/faults",
            admin(lambda c: backend.update_faults(c.body), body=True),
            methods=["POST"],
        ),
        Route(ADMIN_BASE + "/faults", admin(lambda c: backend.clear_faults()), methods=["DELETE"]),
        Route(ADMIN_BASE + "/requests", admin(lambda c: backend.request_log()), methods=["GET"]),
        Route(
            ADMIN_BASE + "/requests",
            admin(lambda c: backend.clear_request_log()),
            methods=["DELETE"],
        ),
        Route(ADMIN_BASE + "/profiles", admin(lambda c: backend.all_profiles()), methods=["GET"]),
        Route(ADMIN_BASE + "/limits", admin(lambda c: backend.limits_json()), methods=["GET"]),
        Route(
            ADMIN_BASE + "/limits",
            admin(lambda c: backend.set_record_limits(c.body), body=True),
            methods=["POST"],
        ),
    ]

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    async def token_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, TokenError)
        return JSONResponse(exc.body(), exc.status)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: "No such route.", 405: "Method not allowed on this route."}.get(
            exc.status_code, str(exc.detail)
        )
        return _error(exc.status_code, message, dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"Internal emulator error: {exc!r}")

    return Starlette(
        routes=routes,
        middleware=[Middleware(_RequestLayer, backend=backend, drop_connection=drop_connection)],
        exception_handlers={
            ApiError: api_error,
            TokenError: token_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )


def _profile(backend: Backend) -> Handler:
    def handler(call: Call) -> Any:
        params = call.params
        backend.check_profile_scope(params["org_id"], params["account_id"], params["workspace_id"])
        return backend.profile(params["mpid"], parse_fields(call.query.get("fields")))

    return handler


def _resolve(backend: Backend) -> Handler:
    def handler(call: Call) -> Any:
        params = call.params
        backend.check_profile_scope(params["org_id"], params["account_id"], params["workspace_id"])
        return backend.resolve(call.body, parse_fields(call.query.get("fields")))

    return handler
