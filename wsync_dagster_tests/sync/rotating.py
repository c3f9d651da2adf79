"""Helpers of the rotation tests: registries with many rotating syncs, and a resource whose waits can
change the workspace (another team pausing its pipeline while a sync waits for a slot)."""

from collections.abc import Callable
from typing import Any

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.resources import LocalMParticleResource, emulator_clock_mparticle
from wsync_dagster.mparticle import TriggerResult, WarehouseSyncClient
from wsync_dagster.sync.engine.reconcile import desired_pipeline, reconcile
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR

# Called (then forgotten) at the next wait of any HookedSleepResource.
ON_NEXT_SLEEP: list[Callable[[], None]] = []


class HookedSleepResource(LocalMParticleResource):
    """The manual-clock resource; its next wait first runs the ``ON_NEXT_SLEEP`` hooks."""

    def sleep(self, seconds: float) -> None:
        while ON_NEXT_SLEEP:
            ON_NEXT_SLEEP.pop(0)()
        super().sleep(seconds)


def hooked_mparticle(control: EmulatorControl, **overrides: Any) -> HookedSleepResource:
    resource = emulator_clock_mparticle(control.base_url, cls=HookedSleepResource, **overrides)
    assert isinstance(resource, HookedSleepResource)
    return resource


def with_rotating(registry: Registry, count: int, keep: tuple[str, ...]) -> Registry:
    """``keep`` from ``registry`` plus ``count`` rotating copies of high_value_customers."""
    template = registry.sync("high_value_customers")
    rotating = tuple(
        template.model_copy(update={"name": f"rotating_{i:02d}"}) for i in range(1, count + 1)
    )
    kept = tuple(registry.sync(name) for name in keep)
    return registry.model_copy(update={"syncs": kept + rotating})


def set_active(
    client: WarehouseSyncClient, registry: Registry, spec: SyncSpec, active: bool
) -> None:
    """What a materialization that then crashed would have done: write ``is_active``."""
    desired = desired_pipeline(spec, registry, client.workspace_id, with_secret=True)
    client.update_pipeline(desired.model_copy(update={"is_active": active}))


def crashed_after_trigger(
    client: WarehouseSyncClient, registry: Registry, spec: SyncSpec
) -> TriggerResult:
    """A materialization that created, activated and triggered ``spec``, then died: its run."""
    reconcile(client, registry, spec, SAMPLE_ANCHOR)
    set_active(client, registry, spec, True)
    return client.trigger_pipeline(spec.resolved_pipeline_id)


def is_active(client: WarehouseSyncClient, spec: SyncSpec) -> bool:
    return client.get_pipeline(spec.resolved_pipeline_id).is_active
