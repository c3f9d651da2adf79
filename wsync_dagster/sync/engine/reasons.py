"""Why each failed run failed, as far as mParticle lets anyone know.

The run object carries no reason (docs/warehouse-sync-api.md#run-object): a failed run only sets its
pipeline's ``faulted_reason``, which the next failed run overwrites (#faults). So a reason read from the
pipeline belongs to one run only if that run is the last one of the pipeline to have failed when the
reason was read. :func:`attribute` reads the reason first and then lists the runs that could have
failed after it (every run ends after the runs with older logical dates, as a pipeline executes one
run at a time, oldest first: #interval-grid): if none failed after the run, the reason is that run's.
Otherwise, or for runs seen failing together, it says plainly that the reason can't be told apart.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from wsync_dagster.mparticle import (
    MAX_PAGE_SIZE,
    PipelineRun,
    RunState,
    WarehouseSyncClient,
    WarehouseSyncError,
)

_EPOCH = datetime.min.replace(tzinfo=UTC)


def _ended(run: PipelineRun) -> datetime:
    return run.end_date or _EPOCH


def _pipeline_reason(client: WarehouseSyncClient, pipeline_id: str) -> str:
    try:
        pipeline = client.get_pipeline(pipeline_id)
    except WarehouseSyncError as error:
        return f"(could not read the pipeline's faulted_reason: {error})"
    if not pipeline.is_faulted or not pipeline.faulted_reason:
        return "(no reason: the pipeline's fault has been cleared since)"
    return pipeline.faulted_reason


def _failed_later(client: WarehouseSyncClient, pipeline_id: str, run: PipelineRun) -> bool:
    """Whether another run of the pipeline failed at or after ``run``'s end."""
    try:
        later = client.iter_pipeline_runs(
            pipeline_id, start=run.logical_date, page_size=MAX_PAGE_SIZE
        )
        return any(
            other.state is RunState.FAILED
            and other.pipeline_run_id != run.pipeline_run_id
            and _ended(other) >= _ended(run)
            for other in later
        )
    except WarehouseSyncError:
        return True  # unknown: never claim a reason that may belong to another run


def attribute(
    client: WarehouseSyncClient, pipeline_id: str, newly_failed: Sequence[PipelineRun]
) -> dict[int, str]:
    """Reasons (by run id) for the runs first seen failed in one poll; costs two reads."""
    if not newly_failed:
        return {}
    reason = _pipeline_reason(client, pipeline_id)
    ordered = sorted(newly_failed, key=_ended)
    last = ordered[-1]
    together = [r for r in ordered[:-1] if _ended(r) == _ended(last)]
    found: dict[int, str] = {}
    if not together and not _failed_later(client, pipeline_id, last):
        found[last.pipeline_run_id] = reason
    for run in ordered:
        found.setdefault(
            run.pipeline_run_id,
            "reason not known for this run alone (several runs failed between two looks, and "
            f"mParticle keeps only the pipeline's latest fault: {reason})",
        )
    return found


def failed_before(client: WarehouseSyncClient, pipeline_id: str) -> str:
    """What can be said of a run that had already failed when this materialization began."""
    return (
        "it had already failed when this materialization began, so its own reason is not known "
        f"(the pipeline's latest fault: {_pipeline_reason(client, pipeline_id)})"
    )


class ReasonLog:
    """Reasons collected while polling: each failed run's, attributed when first seen failed."""

    def __init__(self, client: WarehouseSyncClient, pipeline_id: str) -> None:
        self.client = client
        self.pipeline_id = pipeline_id
        self.reasons: dict[int, str] = {}
        self.seen_failed: set[int] = set()
        self.preexisting: set[int] = set()
        self.looks = 0

    def observe(self, runs: Mapping[str, PipelineRun]) -> None:
        """Call after each look at the runs; the first look's failures are pre-existing."""
        new = [
            r
            for r in runs.values()
            if r.state is RunState.FAILED and r.pipeline_run_id not in self.seen_failed
        ]
        self.seen_failed.update(r.pipeline_run_id for r in new)
        if self.looks == 0:
            self.preexisting.update(r.pipeline_run_id for r in new)
        elif new:
            self.reasons.update(attribute(self.client, self.pipeline_id, new))
        self.looks += 1

    def reason(self, run: PipelineRun) -> str:
        if run.pipeline_run_id in self.reasons:
            return self.reasons[run.pipeline_run_id]
        return failed_before(self.client, self.pipeline_id)
