"""materialize_partitions leaves nothing behind for another thread to clean up."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from wsync_dagster.local.materialize import materialize_partitions


@dg.asset
def tiny() -> int:
    return 1


def test_the_ephemeral_instance_of_a_run_is_disposed_in_the_thread_that_ran_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Left to the garbage collector, an ephemeral instance's in-memory SQLite connection was closed
    from whichever thread collected it, which SQLite refuses: dozens of 'SQLite objects created in
    a thread' tracebacks per concurrent test run, and once a CPython SystemError when a collection
    fell inside ast.parse. Each run's own instance is now disposed where it ran."""
    made: list[tuple[dg.DagsterInstance, list[bool]]] = []
    ephemeral = dg.DagsterInstance.ephemeral

    def tracked(*args: object, **kwargs: object) -> dg.DagsterInstance:
        instance = ephemeral(*args, **kwargs)  # type: ignore[arg-type]
        disposed: list[bool] = []
        real_dispose = instance.dispose
        monkeypatch.setattr(instance, "dispose", lambda: (disposed.append(True), real_dispose()))
        made.append((instance, disposed))
        return instance

    monkeypatch.setattr(dg.DagsterInstance, "ephemeral", staticmethod(tracked))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: materialize_partitions([tiny]), range(2)))
    assert all(result.success for result in results)
    assert len(made) == 2 and all(disposed for _, disposed in made)
