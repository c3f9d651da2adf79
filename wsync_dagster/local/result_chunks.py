"""Serve large query results in chunks, the way Snowflake does, from the fakesnow stand-in.

Stock fakesnow answers every query with the whole result inline (one base64 Arrow blob in the JSON
response), so a client's ``fetchmany`` can stream nothing: the connector holds the entire result
before the first row. Snowflake instead sends the first rows inline and lists the rest as chunks the
connector downloads a few at a time. This module does the same for results over ``CHUNK_ROWS`` rows:
the first slice stays inline, the others are served once each from ``GET /wsync-chunks/{id}/{n}``.
"""

import collections
import contextvars
import importlib
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

CHUNK_ROWS = 50_000
# Results whose chunks were never fetched (an abandoned cursor) are dropped beyond this many.
MAX_PENDING_RESULTS = 8

# (row count, Arrow IPC stream) of each chunk after the first, for the query being answered.
_Chunk = tuple[int, bytes]
_overflow: contextvars.ContextVar[list[_Chunk] | None] = contextvars.ContextVar(
    "wsync_result_overflow", default=None
)


class _ChunkStore:
    """Chunks waiting to be downloaded, by result id; each is handed out once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: collections.OrderedDict[str, dict[int, bytes]] = collections.OrderedDict()

    def add(self, chunks: list[_Chunk]) -> str:
        result_id = uuid.uuid4().hex
        with self._lock:
            self._results[result_id] = {n: data for n, (_, data) in enumerate(chunks)}
            while len(self._results) > MAX_PENDING_RESULTS:
                self._results.popitem(last=False)
        return result_id

    def take(self, result_id: str, index: int) -> bytes | None:
        with self._lock:
            chunks = self._results.get(result_id)
            if chunks is None:
                return None
            data = chunks.pop(index, None)
            if not chunks:
                del self._results[result_id]
            return data


def install(app: Any) -> None:
    """Make fakesnow's server ``app`` chunk large results (call once, before serving)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    # The module, not the fakesnow.server() function the package exports under the same name.
    server: Any = importlib.import_module("fakesnow.server")
    store = _ChunkStore()
    to_ipc: Callable[[Any], Any] = server.to_ipc

    def first_chunk_ipc(table: Any) -> Any:
        overflow = _overflow.get()
        if overflow is None or table.num_rows <= CHUNK_ROWS:
            return to_ipc(table)
        for offset in range(CHUNK_ROWS, table.num_rows, CHUNK_ROWS):
            part = table.slice(offset, CHUNK_ROWS)
            overflow.append((part.num_rows, to_ipc(part).to_pybytes()))
        return to_ipc(table.slice(0, CHUNK_ROWS))

    def wrap(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
        async def query_request(request: Request) -> Response:
            overflow: list[_Chunk] = []
            token = _overflow.set(overflow)
            try:
                response = await endpoint(request)
            finally:
                _overflow.reset(token)
            if not overflow:
                return response
            body = json.loads(bytes(response.body))
            result_id = store.add(overflow)
            base = str(request.base_url).rstrip("/")
            body["data"]["chunks"] = [
                {
                    "url": f"{base}/wsync-chunks/{result_id}/{index}",
                    "rowCount": rows,
                    "uncompressedSize": len(data),
                    "compressedSize": len(data),
                }
                for index, (rows, data) in enumerate(overflow)
            ]
            return JSONResponse(body, status_code=response.status_code)

        return query_request

    async def chunk(request: Request) -> Response:
        data = store.take(request.path_params["result_id"], int(request.path_params["index"]))
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="application/octet-stream")

    server.to_ipc = first_chunk_ipc
    routes = app.router.routes
    for index, route in enumerate(routes):
        if getattr(route, "path", None) == "/queries/v1/query-request":
            routes[index] = Route(route.path, wrap(route.endpoint), methods=["POST"])
    routes.append(Route("/wsync-chunks/{result_id}/{index:int}", chunk, methods=["GET"]))
