"""What every route shares: request parsing, and the wrappers that turn a handler into an endpoint.

A handler is a module-level function of one :class:`Call`: the path and query parameters, the
parsed JSON body, and the emulator's backend and scheduler (from the app's state, set by
:func:`wsync_dagster.emulator.app.create_app`).
"""

import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wsync_dagster.emulator.backend import Backend
from wsync_dagster.emulator.backend.catalog import check_workspace
from wsync_dagster.emulator.errors import ApiError, bad_request
from wsync_dagster.emulator.scheduler import Scheduler

WS_BASE = "/platform/experimental/workspaces/{workspace_id}/inputs/warehouse"
PROFILE_BASE = "/userprofile/v1"
ADMIN_BASE = "/_emulator"

Endpoint = Callable[[Request], Awaitable[Response]]


class DropConnection(Exception):
    """Raised by a handler whose response must never reach the client."""


@dataclass(frozen=True)
class Call:
    """What a handler gets: parameters, the parsed JSON body and the emulator it serves."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    backend: Backend
    scheduler: Scheduler


Handler = Callable[[Call], Any]


def backend_of(request: Request) -> Backend:
    return request.app.state.backend


async def read_body(request: Request, limit: int) -> bytes:
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


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _json_body(request: Request, required: bool | None) -> Any:
    """The request's JSON body: required (True), refused (False) or ignored (None)."""
    raw = await read_body(request, backend_of(request).config.max_body_bytes)
    if required is None:
        return None
    if not raw.strip():
        if required:
            raise bad_request("The request needs a JSON body.")
        return None
    if not required:
        raise bad_request("This request takes no body.")
    if media_type(request) != "application/json":
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


async def _call(
    request: Request, handler: Handler, query: frozenset[str] | None, body: bool | None
) -> Any:
    state = request.app.state
    call = Call(
        {k: str(v) for k, v in request.path_params.items()},
        _query(request, query),
        await _json_body(request, body),
        state.backend,
        state.scheduler,
    )
    return await run_in_threadpool(handler, call)


def api(
    handler: Handler,
    *,
    body: bool | None = False,
    status: int = 200,
    query: frozenset[str] | None = frozenset(),
    workspace: bool = True,
) -> Endpoint:
    """A Warehouse Sync or Profile API endpoint: bearer token, workspace, then ``handler``."""

    async def endpoint(request: Request) -> Response:
        backend = backend_of(request)
        if not backend.auth.token_valid(request.headers.get("authorization")):
            raise ApiError(401, "Missing, malformed or expired bearer token.")
        if workspace:
            check_workspace(backend.store, str(request.path_params["workspace_id"]))
        result = await _call(request, handler, query, body)
        if status == 204:
            return Response(status_code=204)
        return JSONResponse(result, status)

    return endpoint


def admin(handler: Handler, *, body: bool = False) -> Endpoint:
    """An admin endpoint: loopback clients only; a None result is a 204."""

    async def endpoint(request: Request) -> Response:
        if not is_loopback(request):
            raise ApiError(403, "The admin API only answers loopback clients.")
        result = await _call(request, handler, frozenset(), body)
        return Response(status_code=204) if result is None else JSONResponse(result)

    return endpoint
