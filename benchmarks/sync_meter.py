"""What the Dagster side of a benchmark does: Snowflake calls made in this process, time waiting.

Used by ``sync_bench.py``: :data:`METER` counts, :func:`instrument_snowflake` wraps the connector,
:class:`MeteredEmulatorClock` is the emulator-clock resource timing its waits (and recording them
on a :class:`report_lag.Timeline`, so report times can be told in emulator time).
"""

import functools
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from report_lag import Timeline

from wsync_dagster.local.resources import LocalMParticleResource


@dataclass
class Meter:
    """What the Dagster side did: Snowflake calls made from this process, time spent waiting."""

    snowflake_statements: Counter[str] = field(default_factory=Counter)
    snowflake_connections: int = 0
    # windows in the grouped count queries (each window is two COUNT_IFs: rows, rows without identity)
    windows_counted: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    clock_reads: int = 0
    clock_seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)

    def reset(self) -> None:
        self.snowflake_statements = Counter()
        self.snowflake_connections = self.windows_counted = self.waits = self.clock_reads = 0
        self.wait_seconds = self.clock_seconds = 0.0
        self.timeline = Timeline()


METER = Meter()


def instrument_snowflake() -> None:
    """Count every cursor ``execute`` and every connection the Snowflake connector makes here."""
    from snowflake.connector.connection import SnowflakeConnection
    from snowflake.connector.cursor import SnowflakeCursorBase

    execute = SnowflakeCursorBase.execute
    init = SnowflakeConnection.__init__

    @functools.wraps(execute)
    def counted_execute(self: Any, command: str, *args: Any, **kwargs: Any) -> Any:
        METER.snowflake_statements[command.split(None, 1)[0].upper()] += 1
        METER.windows_counted += command.count("COUNT_IF(") // 2
        return execute(self, command, *args, **kwargs)

    @functools.wraps(init)
    def counted_init(self: Any, *args: Any, **kwargs: Any) -> None:
        METER.snowflake_connections += 1
        init(self, *args, **kwargs)

    SnowflakeCursorBase.execute = counted_execute
    SnowflakeConnection.__init__ = counted_init


class MeteredEmulatorClock(LocalMParticleResource):
    """The emulator-clock resource, timing its waits and its clock reads.

    A wait advances the emulator's clock, and the emulator executes the mParticle runs that fall
    due: that is mParticle's work. A clock read is an HTTP call to the emulator here, where in
    production it is ``time.monotonic()``: harness overhead, reported apart.
    """

    def sleep(self, seconds: float) -> None:
        started = time.perf_counter()
        super().sleep(seconds)
        METER.waits += 1
        METER.wait_seconds += time.perf_counter() - started
        METER.timeline.record(seconds)

    def now(self) -> datetime:
        started = time.perf_counter()
        try:
            return super().now()
        finally:
            METER.clock_reads += 1
            METER.clock_seconds += time.perf_counter() - started

    def monotonic(self) -> float:
        return self.now().timestamp()
