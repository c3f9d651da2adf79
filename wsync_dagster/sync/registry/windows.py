"""Sync windows: the span of data one mParticle run covers, and the rows Snowflake holds in it."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Window:
    """One sync window: a partition (key = mParticle logical date) or an on-demand/once range."""

    key: str
    start: datetime
    end: datetime

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ} .. {self.end:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class WindowCount:
    """What the pre-flight counted in a window, by mParticle's own predicate."""

    window: Window
    rows: int
    rows_without_identity: int
