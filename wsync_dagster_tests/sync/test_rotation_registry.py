"""Registry rules of rotation: permanent syncs count for ever, rotating ones need a slot to share."""

from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.factory import build_sync_asset
from wsync_dagster.sync.assets.translator import WarehouseSyncProps
from wsync_dagster.sync.engine.rotation import rotating_pool_limit
from wsync_dagster.sync.registry.specs import load_registry, parse_registry
from wsync_dagster.sync.registry.workspace import Workspace
from wsync_dagster_tests.sync.test_specs import problems, registry, sync

ON_DEMAND = "{interval: on_demand, start: 2026-11-01T00:00:00Z}"


def rotating(name: str, **overrides: str) -> str:
    return sync(name, schedule=ON_DEMAND, rotate="true", **overrides)


def test_any_number_of_rotating_syncs_share_the_free_slots() -> None:
    text = registry(*[sync(f"t{i}") for i in range(4)], *[rotating(f"r{i}") for i in range(30)])
    loaded = parse_registry(text)
    assert len(loaded.syncs) == 34
    assert rotating_pool_limit(Workspace.of([loaded])) == 1


def test_no_slot_left_for_the_rotating_syncs_names_them_and_the_fix() -> None:
    five = [sync(f"t{i}") for i in range(5)]
    assert problems(registry(*five, rotating("r1"), rotating("r2"))) == [
        "registry: the rotating syncs (r1, r2) have no active-pipeline slot to take turns on: "
        "t0, t1, t2, t3, t4 are active for ever and mParticle allows 5. Pause one of them "
        "(paused: true), make an on_demand one rotate (rotate: true), or remove it; if your "
        "workspace's mParticle contract allows more active pipelines, write that number in "
        "limits.max_active_pipelines. Declared at: t0 (test.yaml:11), t1 (test.yaml:17), "
        "t2 (test.yaml:23), t3 (test.yaml:29), t4 (test.yaml:35), r1 (test.yaml:41), "
        "r2 (test.yaml:48)"
    ]
    five[0] = sync("t0", paused="true")
    assert len(parse_registry(registry(*five, rotating("r1"))).syncs) == 6


def test_too_many_permanent_on_demand_syncs_are_told_to_rotate() -> None:
    (found,) = problems(registry(*[sync(f"d{i}", schedule=ON_DEMAND) for i in range(6)]))
    assert found.startswith("registry: 6 active syncs (d0, d1, d2, d3, d4, d5)")
    assert "set rotate: true on the on_demand ones" in found


def test_the_registry_limit_override_gives_rotation_more_room() -> None:
    five = [sync(f"t{i}") for i in range(5)]
    text = registry(*five, rotating("r1")) + "limits: {max_active_pipelines: 7}\n"
    assert rotating_pool_limit(Workspace.of([parse_registry(text)])) == 2
    six = [*five, sync("t5")]
    text = registry(*six, rotating("r1")) + "limits: {max_active_pipelines: 6}\n"
    (found,) = problems(text)
    assert "the registry's limit (limits.max_active_pipelines) allows 6" in found


def test_rotate_is_for_on_demand_syncs_and_not_with_paused() -> None:
    assert problems(registry(sync("daily", rotate="true"))) == [
        "sync 'daily': rotate: true applies to on_demand syncs only (a scheduled pipeline must "
        "stay active to run on its grid): remove it from this daily sync"
    ]
    (found,) = problems(registry(rotating("both", paused="true")))
    assert found.startswith("sync 'both': rotate: true already keeps the pipeline paused")


def test_an_invalid_rotating_sync_still_does_not_count_for_ever() -> None:
    five = [sync(f"t{i}") for i in range(4)]
    found = problems(registry(*five, rotating("r1", description="DROP"), rotating("r2")))
    assert found == ["sync 'r1': description: required but missing; add it"]


def test_rotating_syncs_share_one_pool_and_the_demo_registry_rotates_six() -> None:
    loaded = load_registry(SAMPLE_REGISTRY)
    rotating_specs = [s for s in loaded.syncs if s.rotate]
    assert len(loaded.syncs) >= 8 and len(rotating_specs) >= 6
    assert rotating_pool_limit(Workspace.of([loaded])) == 2
    pools = {s.name: build_sync_asset(WarehouseSyncProps(s, loaded)).op.pool for s in loaded.syncs}
    assert {pools[s.name] for s in rotating_specs} == {naming.ROTATING_POOL}
    assert pools["customer_scores"] == "wsync/wsync-customer-scores"
