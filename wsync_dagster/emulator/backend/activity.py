"""When each pipeline started and stopped counting toward the active-pipeline limit.

Every change that can move a pipeline in or out of the count (a create or PUT, a delete, a ``once``
run ending) calls :meth:`Activity.observe` under the store's lock, so each recorded count is one the
workspace really had, and ``peak_active`` is the most pipelines that were ever active at once. Served
by ``GET /_emulator/activity`` (docs/warehouse-sync-api.md#emulator-admin-api).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from wsync_dagster.emulator.clock import format_instant
from wsync_dagster.emulator.model import Pipeline, Run


def counts_as_active(pipeline: Pipeline, runs: Sequence[Run]) -> bool:
    """Active and not a draft; a ``once`` pipeline stops counting once its run has ended."""
    if not pipeline.runs_on_schedule:
        return False
    if pipeline.interval == "once":
        return not any(not r.in_progress for r in runs)
    return True


class Activity:
    """The transitions in and out of the active count, and the highest count seen."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.active: set[str] = set()
        self.peak = 0

    def observe(
        self, pipelines: Mapping[str, Pipeline], runs: Mapping[str, Sequence[Run]], now: datetime
    ) -> None:
        """Record every pipeline whose membership in the active count changed since last time."""
        current = {p.id for p in pipelines.values() if counts_as_active(p, runs.get(p.id, ()))}
        # Pauses first: a PUT that swaps one pipeline for another never counts both at once.
        for pipeline_id, active in sorted(
            [(i, False) for i in self.active - current]
            + [(i, True) for i in current - self.active],
            key=lambda change: change[1],
        ):
            if active:
                self.active.add(pipeline_id)
            else:
                self.active.discard(pipeline_id)
            self.events.append(
                {
                    "seq": len(self.events) + 1,
                    "at": format_instant(now),
                    "pipeline_id": pipeline_id,
                    "active": active,
                    "active_count": len(self.active),
                }
            )
            self.peak = max(self.peak, len(self.active))

    def to_json(self) -> dict[str, Any]:
        return {
            "events": list(self.events),
            "active": sorted(self.active),
            "peak_active": self.peak,
        }
