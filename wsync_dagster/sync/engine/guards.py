"""Checks a materialization makes against mParticle's clock before it writes anything there.

They cannot run when the registry is loaded: loading is pure and deterministic (the same file gives
the same result on every machine and at any time), while these depend on mParticle's "now" (the
emulator's clock on the local target).
"""

from datetime import datetime

from wsync_dagster.sync.registry.specs import SyncSpec

_INSTANT = "%Y-%m-%dT%H:%M:%SZ"


def future_start_problem(spec: SyncSpec, now: datetime) -> str | None:
    """Why an ``on_demand`` sync cannot be triggered yet: its start is after mParticle's ``now``.

    mParticle refuses to trigger such a pipeline (there is nothing to sync before its start), and
    only after the connection, data model and pipeline were created; refusing first writes nothing.
    """
    start = spec.schedule.start
    if spec.schedule.interval != "on_demand" or start <= now:
        return None
    return (
        f"Sync '{spec.name}' is on_demand and its schedule.start ({start:{_INSTANT}}) is after "
        f"mParticle's current time ({now:{_INSTANT}}); mParticle does not trigger a pipeline "
        "before its start, since there is nothing to sync yet. Nothing was sent to mParticle. "
        f"Materialize it after {start:{_INSTANT}}, or move schedule.start to {now:{_INSTANT}} or "
        "earlier in the registry."
    )
