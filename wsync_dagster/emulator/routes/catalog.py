"""Connections, data models and pipelines: list, create, read, replace, delete.

The three collections share one set of handlers; each route names its collection by the URL
segment (``connections``, ``data-models``, ``pipelines``), bound with :func:`functools.partial`.
"""

from functools import partial
from typing import Any

from starlette.routing import Route

from wsync_dagster.emulator.routes.common import WS_BASE, Call, api


def list_resources(collection: str, call: Call) -> Any:
    return call.backend.collections[collection].listing(call.query)


def create_resource(collection: str, call: Call) -> Any:
    return call.backend.collections[collection].put(call.body, None)


def get_resource(collection: str, call: Call) -> Any:
    return call.backend.collections[collection].get(call.params["resource_id"])


def replace_resource(collection: str, call: Call) -> Any:
    return call.backend.collections[collection].put(call.body, call.params["resource_id"])


def delete_resource(collection: str, call: Call) -> Any:
    call.backend.collections[collection].delete(call.params["resource_id"])


def _routes(collection: str, list_query: frozenset[str] = frozenset()) -> list[Route]:
    """``GET``/``POST`` on the collection; ``GET``/``PUT``/``DELETE`` on one resource."""
    many = f"{WS_BASE}/{collection}"
    one = many + "/{resource_id}"
    return [
        Route(many, api(partial(list_resources, collection), query=list_query), methods=["GET"]),
        Route(many, api(partial(create_resource, collection), body=True), methods=["POST"]),
        Route(one, api(partial(get_resource, collection)), methods=["GET"]),
        Route(one, api(partial(replace_resource, collection), body=True), methods=["PUT"]),
        Route(one, api(partial(delete_resource, collection), status=204), methods=["DELETE"]),
    ]


ROUTES = [
    *_routes("connections", list_query=frozenset({"type"})),
    *_routes("data-models"),
    *_routes("pipelines"),
]
