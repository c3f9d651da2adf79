"""The reads a plan makes of mParticle: each resource at most once, by GET or by one listing.

Split out of :mod:`~wsync_dagster.sync.engine.reconcile`, which plans with it; the ``plan`` command,
the drift sensor, rotation and repair use it too.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from wsync_dagster.mparticle import (
    Connection,
    DataModel,
    NotFoundError,
    Pipeline,
    WarehouseSyncClient,
)


def counts_as_active(client: WarehouseSyncClient, pipeline: Pipeline) -> bool:
    """Active and not a draft; a ``once`` pipeline stops counting once its run has ended
    (see docs/warehouse-sync-api.md)."""
    if not pipeline.is_active or pipeline.is_draft:
        return False
    if pipeline.schedule_interval != "once":
        return True
    latest = client.get_pipeline_status(pipeline.id).latest_pipeline_run
    return latest is None or not latest.is_terminal


_Item = TypeVar("_Item", Connection, DataModel, Pipeline)


class Reads:
    """The reads a plan makes of mParticle, each made at most once however many syncs ask.

    A materialization plans one sync with a fresh ``Reads`` (``listed=False``): one GET per
    resource, and the pipeline listing only when a pipeline would become active. A plan of
    many syncs (the ``plan`` command, the drift sensor) passes one ``Reads(client, listed=True)``
    to every :func:`~wsync_dagster.sync.engine.reconcile.plan_sync`: the connections, data models
    and pipelines are then read with one listing each (a listing returns the same objects as the
    GETs, see docs/warehouse-sync-api.md), so the plan costs three calls whatever the number of
    syncs. Such a plan is for reading: a materialization applies a plan made from GETs.
    """

    def __init__(self, client: WarehouseSyncClient, *, listed: bool = False) -> None:
        self.client = client
        self.listed = listed
        self._lock = threading.RLock()
        self._by_kind: dict[str, dict[str, Any]] = {}
        self._pipelines: list[Pipeline] | None = None
        self._active: dict[str, bool] = {}

    def _one(
        self,
        kind: str,
        item_id: str,
        get: Callable[[str], _Item],
        listing: Callable[[], list[_Item]],
    ) -> _Item:
        with self._lock:
            known = self._by_kind.get(kind)
            if known is None and self.listed:
                known = self._by_kind[kind] = {item.id: item for item in listing()}
            if known is not None and item_id in known:
                return known[item_id]
            if self.listed:
                raise NotFoundError(
                    status=404,
                    messages=(f"{kind} {item_id} is not in the workspace's listing",),
                    method="GET",
                    path=f"{self.client.warehouse_base}/{kind}",
                )
        found = get(item_id)
        with self._lock:
            self._by_kind.setdefault(kind, {})[item_id] = found
        return found

    def connection(self, connection_id: str) -> Connection:
        client = self.client
        return self._one(
            "connections", connection_id, client.get_connection, client.list_connections
        )

    def data_model(self, model_id: str) -> DataModel:
        client = self.client
        return self._one("data-models", model_id, client.get_data_model, client.list_data_models)

    def pipeline(self, pipeline_id: str) -> Pipeline:
        return self._one("pipelines", pipeline_id, self.client.get_pipeline, self.pipelines)

    def pipelines(self) -> list[Pipeline]:
        """Every pipeline of the workspace (one listing, made once)."""
        with self._lock:
            if self._pipelines is None:
                self._pipelines = self.client.list_pipelines()
            return list(self._pipelines)

    def counts_as_active(self, pipeline: Pipeline) -> bool:
        """:func:`counts_as_active`, asking mParticle about each ``once`` pipeline once."""
        with self._lock:
            known = self._active.get(pipeline.id)
        if known is None:
            known = counts_as_active(self.client, pipeline)
            with self._lock:
                self._active[pipeline.id] = known
        return known

    def active_ids(self, besides: Sequence[str] = ()) -> list[str]:
        """The ids of the pipelines mParticle counts as active, but ``besides``, sorted."""
        return sorted(
            p.id for p in self.pipelines() if p.id not in besides and self.counts_as_active(p)
        )
