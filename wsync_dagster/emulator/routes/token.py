"""``POST /oauth/token``: the client-credentials grant (errors in the Auth0 shape)."""

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wsync_dagster.emulator.errors import ApiError, TokenError
from wsync_dagster.emulator.routes.common import backend_of, media_type, read_body


def _payload(raw: bytes, media: str) -> Any:
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    if media == "application/json":
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise TokenError(400, "invalid_request", "Malformed JSON body.") from None
    raise TokenError(400, "invalid_request", "Send the body as application/json.")


async def token(request: Request) -> Response:
    backend = backend_of(request)
    try:
        delay = backend.admin.take_token_delay()
        if delay:
            await asyncio.sleep(delay)
        raw = await read_body(request, backend.config.max_body_bytes)
        payload = _payload(raw, media_type(request))
        result = await run_in_threadpool(backend.auth.issue_token, payload)
    except ApiError as error:  # an oversized body
        raise TokenError(error.status, "invalid_request", str(error)) from None
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


ROUTES = [Route("/oauth/token", token, methods=["POST"])]
