"""Reconcile when another process creates the same resource between our read (404) and our create.

A rival client creates the resource just before ours does (the create method is wrapped), so the
emulator answers our create with its duplicate-id 400. Reconcile must then adopt what exists:
leave it when it matches, update it when it drifted, and never swallow a 400 that created nothing.
"""

from collections.abc import Callable
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.mparticle import BadRequestError, WarehouseSyncClient
from wsync_dagster.sync.engine.reconcile import (
    desired_connection,
    desired_data_model,
    desired_pipeline,
    reconcile,
)
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import mparticle_for

SYNC = "churn_risk_alerts"
KINDS = {"connection": "connection", "data model": "data_model", "pipeline": "pipeline"}


def _rival_client(control: EmulatorControl) -> WarehouseSyncClient:
    """Another client (the process shares one client per configuration, so configure it apart)."""
    return mparticle_for(control, max_attempts=1).new_client()


def _rival(registry: Registry, spec: SyncSpec, kind: str, workspace: int) -> Any:
    """What a concurrent first materialization of ``spec`` would create (secrets included)."""
    if kind == "connection":
        return desired_connection(registry, workspace, True)
    if kind == "data model":
        return desired_data_model(spec, workspace)
    return desired_pipeline(spec, registry, workspace, True)


def _drifted(kind: str, resource: Any) -> tuple[Any, str]:
    """``resource`` with one compared field changed, and that field's name."""
    field, value = {
        "connection": ("warehouse", "OTHER_WH"),
        "data model": ("name", "renamed by an older deploy"),
        "pipeline": ("environment", "production"),
    }[kind]
    return resource.model_copy(update={field: value}), field


def _created_first_by(
    monkeypatch: pytest.MonkeyPatch, client: WarehouseSyncClient, rival: WarehouseSyncClient
) -> Callable[[str, Any], None]:
    """Arm ``client``'s create of one kind so that ``rival`` creates ``resource`` just before."""

    def arm(kind: str, resource: Any) -> None:
        name = f"create_{KINDS[kind]}"
        ours = getattr(client, name)

        def create(desired: Any) -> Any:
            getattr(rival, name)(resource)
            return ours(desired)

        monkeypatch.setattr(client, name, create)

    return arm


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("drift", [False, True], ids=["same", "drifted"])
def test_a_resource_created_concurrently_is_adopted(
    registry: Registry,
    control: EmulatorControl,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    drift: bool,
) -> None:
    spec = registry.sync(SYNC)
    client = mparticle_for(control).new_client()
    rival = _rival_client(control)
    resource = _rival(registry, spec, kind, client.workspace_id)
    field = None
    if drift:
        resource, field = _drifted(kind, resource)
    _created_first_by(monkeypatch, client, rival)(kind, resource)

    result = reconcile(client, registry, spec, SAMPLE_ANCHOR)

    changes = {c.kind: c for c in result.changes}
    assert changes[kind].action == ("updated" if drift else "unchanged")
    assert changes[kind].fields == ((field,) if field else ())
    assert all(c.action == "created" for k, c in changes.items() if k != kind)
    again = reconcile(client, registry, spec, SAMPLE_ANCHOR)  # what exists now matches the spec
    assert [c.action for c in again.changes] == ["unchanged"] * 3
    assert len(client.list_connections()) == 1
    assert [m.id for m in client.list_data_models()] == [spec.resolved_data_model_id]
    assert [p.id for p in client.list_pipelines()] == [spec.resolved_pipeline_id]


def test_a_refused_create_that_made_nothing_is_not_swallowed(
    registry: Registry, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pass the local '6th active pipeline' check; mParticle refuses the later create."""
    spec = registry.sync(SYNC)
    client = mparticle_for(control).new_client()
    rival = _rival_client(control)
    others = [
        desired_pipeline(spec, registry, client.workspace_id, True).model_copy(
            update={"id": f"other-{n}", "name": f"other {n}"}
        )
        for n in range(5)
    ]
    ours = client.create_pipeline

    def create(desired: Any) -> Any:
        for other in others:  # five other first deploys took every active slot meanwhile
            rival.create_pipeline(other)
        return ours(desired)

    monkeypatch.setattr(client, "create_pipeline", create)
    with pytest.raises(BadRequestError, match="the limit is 5"):
        reconcile(client, registry, spec, SAMPLE_ANCHOR)
    assert sorted(p.id for p in client.list_pipelines()) == [o.id for o in others]
