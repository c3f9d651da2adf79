"""Connections, data models and pipelines: list, create, read, replace, delete."""

from typing import Any

from starlette.routing import Route

from wsync_dagster.emulator.errors import bad_request
from wsync_dagster.emulator.routes.common import WS_BASE, Call, api

CONNECTION_TYPES = ("snowflake", "bigquery")


def list_connections(call: Call) -> Any:
    kind = call.query.get("type")
    if kind is not None and kind not in CONNECTION_TYPES:
        raise bad_request(f"type must be snowflake or bigquery (got {kind!r}).")
    return call.backend.catalog.list_connections(kind)


def create_connection(call: Call) -> Any:
    return call.backend.catalog.put_connection(call.body, None)


def get_connection(call: Call) -> Any:
    return call.backend.catalog.get_connection(call.params["resource_id"])


def replace_connection(call: Call) -> Any:
    return call.backend.catalog.put_connection(call.body, call.params["resource_id"])


def delete_connection(call: Call) -> Any:
    call.backend.catalog.delete_connection(call.params["resource_id"])


def list_data_models(call: Call) -> Any:
    return call.backend.catalog.list_data_models()


def create_data_model(call: Call) -> Any:
    return call.backend.catalog.put_data_model(call.body, None)


def get_data_model(call: Call) -> Any:
    return call.backend.catalog.get_data_model(call.params["resource_id"])


def replace_data_model(call: Call) -> Any:
    return call.backend.catalog.put_data_model(call.body, call.params["resource_id"])


def delete_data_model(call: Call) -> Any:
    call.backend.catalog.delete_data_model(call.params["resource_id"])


def list_pipelines(call: Call) -> Any:
    return call.backend.pipelines.list_pipelines()


def create_pipeline(call: Call) -> Any:
    return call.backend.pipelines.put_pipeline(call.body, None)


def get_pipeline(call: Call) -> Any:
    return call.backend.pipelines.get_pipeline(call.params["resource_id"])


def replace_pipeline(call: Call) -> Any:
    return call.backend.pipelines.put_pipeline(call.body, call.params["resource_id"])


def delete_pipeline(call: Call) -> Any:
    call.backend.pipelines.delete_pipeline(call.params["resource_id"])


_CONNECTIONS = f"{WS_BASE}/connections"
_DATA_MODELS = f"{WS_BASE}/data-models"
_PIPELINES = f"{WS_BASE}/pipelines"
_ONE = "/{resource_id}"

ROUTES = [
    Route(_CONNECTIONS, api(list_connections, query=frozenset({"type"})), methods=["GET"]),
    Route(_CONNECTIONS, api(create_connection, body=True), methods=["POST"]),
    Route(_CONNECTIONS + _ONE, api(get_connection), methods=["GET"]),
    Route(_CONNECTIONS + _ONE, api(replace_connection, body=True), methods=["PUT"]),
    Route(_CONNECTIONS + _ONE, api(delete_connection, status=204), methods=["DELETE"]),
    Route(_DATA_MODELS, api(list_data_models), methods=["GET"]),
    Route(_DATA_MODELS, api(create_data_model, body=True), methods=["POST"]),
    Route(_DATA_MODELS + _ONE, api(get_data_model), methods=["GET"]),
    Route(_DATA_MODELS + _ONE, api(replace_data_model, body=True), methods=["PUT"]),
    Route(_DATA_MODELS + _ONE, api(delete_data_model, status=204), methods=["DELETE"]),
    Route(_PIPELINES, api(list_pipelines), methods=["GET"]),
    Route(_PIPELINES, api(create_pipeline, body=True), methods=["POST"]),
    Route(_PIPELINES + _ONE, api(get_pipeline), methods=["GET"]),
    Route(_PIPELINES + _ONE, api(replace_pipeline, body=True), methods=["PUT"]),
    Route(_PIPELINES + _ONE, api(delete_pipeline, status=204), methods=["DELETE"]),
]
