"""The workspace's resources: the generic :class:`Collection`, connections and data models.

Pipelines, which refer to both, live in :mod:`.pipelines`; this module holds what all share.
"""

import zlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.errors import bad_request, not_found
from wsync_dagster.emulator.model import Connection, DataModel, Pipeline
from wsync_dagster.emulator.resources import (
    CONNECTION_TYPES,
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


def check_workspace(store: Store, workspace_id: str) -> None:
    """A 404 unless ``workspace_id`` (from the URL) is the emulator's workspace."""
    if workspace_id != str(store.config.workspace_id):
        raise not_found(f"Workspace {workspace_id} not found.")


def check_body_workspace(store: Store, fields: dict[str, Any]) -> None:
    if fields["workspace_id"] != store.config.workspace_id:
        raise bad_request(
            f"workspace_id {fields['workspace_id']} does not match the workspace of the URL "
            f"({store.config.workspace_id})."
        )


class Collection(Generic[R]):
    """One kind of resource: list, read, create or replace, delete; every call takes the lock."""

    kind = ""  # "Connection": how messages name one of them

    def __init__(self, store: Store) -> None:
        self._store = store

    def _items(self) -> dict[str, R]:
        """The resources by id (looked up on each call: a reset replaces the dict)."""
        raise NotImplementedError

    def listing(self, query: dict[str, str]) -> list[dict[str, Any]]:
        return self._listed(lambda _: True)

    def _listed(self, keep: Callable[[R], bool]) -> list[dict[str, Any]]:
        with self._store.lock:
            return [item.to_json() for item in self._items().values() if keep(item)]

    def get(self, resource_id: str) -> dict[str, Any]:
        with self._store.lock:
            return find(self._items(), self.kind, resource_id).to_json()

    def put(self, body: Any, resource_id: str | None = None) -> dict[str, Any]:
        """Create (``resource_id`` None) or fully replace one resource."""
        raise NotImplementedError

    def delete(self, resource_id: str) -> None:
        raise NotImplementedError

    def _upsert(
        self,
        fields: dict[str, Any],
        resource_id: str | None,
        create: Callable[[], R],
        replace: Callable[[R], None],
    ) -> dict[str, Any]:
        """Create or replace under the lock, once ``fields`` passed every check without it."""
        store = self._store
        with store.lock:
            items = self._items()  # under the lock: a reset replaces the dict
            if resource_id is None:
                check_new_id(items, self.kind, fields["id"])
                resource = items[fields["id"]] = create()
            else:
                resource = find(items, self.kind, resource_id)
                check_same_id(fields, resource_id)
                replace(resource)
                resource.audit.touch(store.clock.now(), store.config.credential_email)
            return resource.to_json()

    def _delete_unused(self, field: str, resource_id: str) -> None:
        """Delete a resource that no pipeline refers to by ``field``."""
        with self._store.lock:
            items = self._items()
            find(items, self.kind, resource_id)
            users = [p.id for p in self._store.pipelines.values() if p.fields[field] == resource_id]
            if users:
                raise bad_request(
                    f"{self.kind} {resource_id} is used by pipeline(s) {', '.join(users)}; "
                    "delete or change them first."
                )
            del items[resource_id]


class Connections(Collection[Connection]):
    kind = "Connection"

    def _items(self) -> dict[str, Connection]:
        return self._store.connections

    def listing(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """Every connection, or those of ``?type=``."""
        kind = query.get("type")
        if kind is not None and kind not in CONNECTION_TYPES:
            raise bad_request(f"type must be snowflake or bigquery (got {kind!r}).")
        return self._listed(lambda c: kind is None or c.fields["type"] == kind)

    def put(self, body: Any, resource_id: str | None = None) -> dict[str, Any]:
        model = connection_body(body)
        fields = validate(body, model)
        check_body_workspace(self._store, fields)

        def replace(connection: Connection) -> None:
            connection.fields, connection.secrets = fields, model.SECRETS
            connection.is_faulted = False

        create = lambda: Connection(fields, model.SECRETS, self._store.audit())  # noqa: E731
        return self._upsert(fields, resource_id, create, replace)

    def delete(self, resource_id: str) -> None:
        self._delete_unused("connection_id", resource_id)

    def set_faulted(self, connection_id: str, faulted: bool) -> None:
        with self._store.lock:
            if (connection := self._store.connections.get(connection_id)) is not None:
                connection.is_faulted = faulted


class DataModels(Collection[DataModel]):
    kind = "Data model"

    def _items(self) -> dict[str, DataModel]:
        return self._store.models

    def put(self, body: Any, resource_id: str | None = None) -> dict[str, Any]:
        fields = validate(body, DataModelBody, DATA_MODEL_ALIASES)
        check_body_workspace(self._store, fields)
        try:
            check_model_sql(fields["sql_query"])
        except ValueError as error:
            raise bad_request(f"{error}.") from None

        def replace(model: DataModel) -> None:
            model.fields = fields

        create = lambda: DataModel(fields, self._store.audit())  # noqa: E731
        return self._upsert(fields, resource_id, create, replace)

    def delete(self, resource_id: str) -> None:
        self._delete_unused("data_model_id", resource_id)
