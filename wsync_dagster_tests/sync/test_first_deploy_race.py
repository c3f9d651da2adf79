"""First materializations that start together, each in a process of its own (a first deploy whose
schedules tick at once), all succeed and leave one connection, one data model and one pipeline each.

The emulator holds every process's last read before its writes (``GET pipelines/{id}``) until all
of them have read, so every process has seen 404s and creates: the race is certain, not likely.
"""

import multiprocessing
from collections import Counter
from typing import Any

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.mparticle import WarehouseSyncClient
from wsync_dagster_tests.sync import race_worker
from wsync_dagster_tests.sync.conftest import mparticle_for
from wsync_dagster_tests.sync.race_worker import race_registry

LAST_READ = r"/pipelines/[^/]+$"
PROCESS_TIMEOUT = 180

# Separate OS processes, forked from a clean server that imported Dagster and the Snowflake
# libraries once (several seconds of CPU each time a process would import them itself).
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload([race_worker.__name__])


def _race(control: EmulatorControl, snowflake: LocalSnowflake, names: list[str]) -> list[Any]:
    """Materialize ``names`` concurrently, one process each; their results, in any order."""
    control.set_faults(
        hold={"count": len(names), "method": "GET", "path": LAST_READ, "seconds": PROCESS_TIMEOUT}
    )
    results = _PROCESSES.Queue()
    processes = [
        _PROCESSES.Process(
            target=race_worker.materialize_one,
            args=(control.base_url, str(snowflake.port), name, results),
        )
        for name in names
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=PROCESS_TIMEOUT) for _ in processes]
    for process in processes:
        process.join(timeout=PROCESS_TIMEOUT)
        assert process.exitcode == 0
    assert control.faults()["hold"]["count"] == 0, "not every process reached the hold"
    return outcomes


def _creates(control: EmulatorControl) -> Counter[tuple[str, int | None]]:
    """(collection, status) of every create sent."""
    return Counter(
        (e["path"].rsplit("/", 1)[-1], e["status"])
        for e in control.request_log()
        if e["method"] == "POST" and e["path"].endswith(("connections", "data-models", "pipelines"))
    )


def _client(control: EmulatorControl) -> WarehouseSyncClient:
    return mparticle_for(control).new_client()


def test_five_first_materializations_in_five_processes_all_succeed(
    control: EmulatorControl, local_snowflake: LocalSnowflake
) -> None:
    races = race_registry()
    names = [spec.name for spec in races.syncs]
    results = _race(control, local_snowflake, names)
    assert [r for r in results if not r["success"]] == []
    client = _client(control)
    assert [c.id for c in client.list_connections()] == [races.connection.id]
    assert sorted(m.id for m in client.list_data_models()) == sorted(
        s.resolved_data_model_id for s in races.syncs
    )
    assert sorted(p.id for p in client.list_pipelines()) == sorted(
        s.resolved_pipeline_id for s in races.syncs
    )
    # Every process created the shared connection; the emulator refused all but one.
    creates = _creates(control)
    assert creates[("connections", 200)] == 1 and creates[("connections", 400)] == 4
    assert creates[("data-models", 200)] == creates[("pipelines", 200)] == 5


def test_two_launches_of_one_sync_in_two_processes_both_succeed(
    control: EmulatorControl, local_snowflake: LocalSnowflake
) -> None:
    spec = race_registry().syncs[0]
    results = _race(control, local_snowflake, [spec.name, spec.name])
    assert [r for r in results if not r["success"]] == []
    client = _client(control)
    assert len(client.list_connections()) == 1
    assert [m.id for m in client.list_data_models()] == [spec.resolved_data_model_id]
    assert [p.id for p in client.list_pipelines()] == [spec.resolved_pipeline_id]
    creates = _creates(control)
    for collection in ("connections", "data-models", "pipelines"):
        assert creates[(collection, 200)] == creates[(collection, 400)] == 1, creates
