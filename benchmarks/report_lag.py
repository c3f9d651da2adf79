"""When a backfill's partitions are reported, in mParticle's (the emulator's) time.

On the emulator's manual clock, mParticle's time moves only when the resource waits, so the
emulator time of any moment of a run is the clock at its start plus every wait made before that
moment. :class:`Timeline` records the waits; :func:`report_timing` reads, from Dagster's event log,
the wall time each partition's materialization was stored, turns it into emulator time, and compares
it with the end of that partition's mParticle run (the runs' own ``end_date``).
"""

import bisect
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

from wsync_dagster.mparticle import PipelineRun, RunState


@dataclass
class Timeline:
    """Emulator seconds waited so far, by wall time (one entry after each wait)."""

    walls: list[float] = field(default_factory=list)
    waited: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.walls.clear()
        self.waited.clear()

    def record(self, seconds: float) -> None:
        self.walls.append(time.time())
        self.waited.append((self.waited[-1] if self.waited else 0.0) + seconds)

    def waited_at(self, wall: float) -> float:
        """Emulator seconds waited before wall time ``wall``."""
        i = bisect.bisect_right(self.walls, wall)
        return self.waited[i - 1] if i else 0.0


@dataclass(frozen=True)
class ReportTiming:
    partitions: int
    first_report_s: float | None  # emulator seconds from the start to the first partition reported
    first_report_wall_s: float | None  # wall seconds, the same
    max_lag_s: float | None  # longest emulator time from a run's end to its partition's report
    mean_lag_s: float | None


def report_timing(
    instance: dg.DagsterInstance,
    run_ids: Iterable[str],
    runs: Iterable[PipelineRun],
    timeline: Timeline,
    clock_start: datetime,
    wall_start: float,
) -> ReportTiming:
    """How soon, and how long after its mParticle run ended, each partition was reported."""
    ended = {
        f"{r.logical_date:%Y-%m-%d-%H:%M}": r.end_date
        for r in runs
        if r.state is RunState.SUCCESS and r.logical_date and r.end_date
    }
    reported: dict[str, float] = {}
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            event = entry.dagster_event
            partition = event.partition if event is not None else None
            if partition is not None and partition not in reported:
                reported[partition] = entry.timestamp
    if not reported:
        return ReportTiming(0, None, None, None, None)
    lags = [
        timeline.waited_at(wall) - (ended[key] - clock_start).total_seconds()
        for key, wall in reported.items()
        if key in ended
    ]
    first = min(reported.values())
    return ReportTiming(
        partitions=len(reported),
        first_report_s=timeline.waited_at(first),
        first_report_wall_s=first - wall_start,
        max_lag_s=max(lags) if lags else None,
        mean_lag_s=sum(lags) / len(lags) if lags else None,
    )
