"""Connections and data models: create, replace, read, list and delete.

Pipelines, which refer to both, live in :mod:`.pipelines`; this module holds what both share.
"""

import zlib
from collections.abc import Callable
from typing import Any, TypeVar

from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.errors import bad_request, not_found
from wsync_dagster.emulator.model import Connection, DataModel, Pipeline
from wsync_dagster.emulator.resources import (
    DATA_MODEL_ALIASES,
    DataModelBody,
    connection_body,
    validate,
)
from wsync_dagster.emulator.warehouse import Credentials, check_model_sql

R = TypeVar("R", Connection, DataModel, Pipeline)


def partner_feed_id(key: str) -> int:
    """A stable feed id derived from the feed's server-to-server key."""
    return 1000 + zlib.crc32(key.encode()) % 9000


def credentials_of(connection: Connection) -> Credentials | None:
    """What the emulator logs in to the warehouse with; None for a warehouse it cannot reach."""
    if connection.fields["type"] != "snowflake":
        return None
    fields = connection.fields
    return Credentials(
        fields["source_account_id"], fields["user"], fields["password"], fields["database"]
    )


def find(collection: dict[str, R], kind: str, resource_id: str) -> R:
    """The resource ``resource_id`` of ``collection``, or a 404 naming it."""
    found = collection.get(resource_id)
    if found is None:
        raise not_found(f"{kind} {resource_id} not found.")
    return found


def check_new_id(collection: dict[str, Any], kind: str, resource_id: str) -> None:
    if resource_id in collection:
        raise bad_request(f"{kind} {resource_id} already exists.")


def check_same_id(fields: dict[str, Any], resource_id: str) -> None:
    if fields["id"] != resource_id:
        raise bad_request(
            f"The body's id {fields['id']!r} does not match the URL's id {resource_id!r}."
        )


def check_body_workspace(store: Store, fields: dict[str, Any]) -> None:
    if fields["workspace_id"] != store.config.workspace_id:
        raise bad_request(
            f"workspace_id {fields['workspace_id']} does not match the workspace of the URL "
            f"({store.config.workspace_id})."
        )


class Catalog:
    """Connections and data models of the one workspace."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def check_workspace(self, workspace_id: str) -> None:
        if workspace_id != str(self._store.config.workspace_id):
            raise not_found(f"Workspace {workspace_id} not found.")

    def _upsert(
        self,
        collection: dict[str, R],
        kind: str,
        fields: dict[str, Any],
        resource_id: str | None,
        create: Callable[[], R],
        replace: Callable[[R], None],
    ) -> dict[str, Any]:
        """Create (``resource_id`` None) or fully replace one resource, under the lock."""
        store = self._store
        with store.lock:
            if resource_id is None:
                check_new_id(collection, kind, fields["id"])
                resource = collection[fields["id"]] = create()
            else:
                resource = find(collection, kind, resource_id)
                check_same_id(fields, resource_id)
                replace(resource)
                resource.audit.touch(store.clock.now(), store.config.credential_email)
            return resource.to_json()

    def _delete_unused(
        self, collection: dict[str, R], kind: str, field: str, resource_id: str
    ) -> None:
        """Delete a connection or data model that no pipeline refers to by ``field``."""
        with self._store.lock:
            find(collection, kind, resource_id)
            users = [p.id for p in self._store.pipelines.values() if p.fields[field] == resource_id]
            if users:
                raise bad_request(
                    f"{kind} {resource_id} is used by pipeline(s) {', '.join(users)}; "
                    "delete or change them first."
                )
            del collection[resource_id]

    # connections

    def list_connections(self, kind: str | None) -> list[dict[str, Any]]:
        with self._store.lock:
            return [
                c.to_json()
                for c in self._store.connections.values()
                if kind is None or c.fields["type"] == kind
            ]

    def get_connection(self, connection_id: str) -> dict[str, Any]:
        with self._store.lock:
            return find(self._store.connections, "Connection", connection_id).to_json()

    def put_connection(self, body: Any, connection_id: str | None = None) -> dict[str, Any]:
        """Create (``connection_id`` None) or fully replace a connection."""
        model = connection_body(body)
        fields = validate(body, model)
        check_body_workspace(self._store, fields)

        def replace(connection: Connection) -> None:
            connection.fields, connection.secrets = fields, model.SECRETS
            connection.is_faulted = False

        return self._upsert(
            self._store.connections,
            "Connection",
            fields,
            connection_id,
            lambda: Connection(fields, model.SECRETS, self._store.audit()),
            replace,
        )

    def delete_connection(self, connection_id: str) -> None:
        self._delete_unused(self._store.connections, "Connection", "connection_id", connection_id)

    def set_connection_faulted(self, connection_id: str, faulted: bool) -> None:
        with self._store.lock:
            if (connection := self._store.connections.get(connection_id)) is not None:
                connection.is_faulted = faulted

    # data models

    def list_data_models(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [m.to_json() for m in self._store.models.values()]

    def get_data_model(self, model_id: str) -> dict[str, Any]:
        with self._store.lock:
            return find(self._store.models, "Data model", model_id).to_json()

    def put_data_model(self, body: Any, model_id: str | None = None) -> dict[str, Any]:
        """Create (``model_id`` None) or fully replace a data model."""
        fields = validate(body, DataModelBody, DATA_MODEL_ALIASES)
        check_body_workspace(self._store, fields)
        try:
            check_model_sql(fields["sql_query"])
        except ValueError as error:
            raise bad_request(f"{error}.") from None

        def replace(model: DataModel) -> None:
            model.fields = fields

        return self._upsert(
            self._store.models,
            "Data model",
            fields,
            model_id,
            lambda: DataModel(fields, self._store.audit()),
            replace,
        )

    def delete_data_model(self, model_id: str) -> None:
        self._delete_unused(self._store.models, "Data model", "data_model_id", model_id)
