"""What the sync engine works with, and how it says that a sync cannot go on. No Dagster here.

The engine (pre-flight, reconcile, runs, rotation, repair) takes the mParticle client, a Snowflake
cursor, a clock and a log. The Dagster layer (``sync/assets/``) builds one :class:`EngineContext` per
materialization from its resources and turns a :class:`SyncFailure` into a ``dagster.Failure``
(``sync/assets/steps.py``), so the engine can be driven from anything: a Dagster run, the runs
sensor, the ``plan`` command, a test.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from wsync_dagster.sync.engine.runs import WaitSettings
from wsync_dagster.sync.registry.specs import Registry, SyncSpec
from wsync_dagster.sync.registry.workspace import Workspace


class Log(Protocol):
    """The logging calls the engine makes (a ``logging.Logger`` and Dagster's run log both fit)."""

    def info(self, msg: str, /) -> Any: ...
    def warning(self, msg: str, /) -> Any: ...
    def error(self, msg: str, /) -> Any: ...


class SyncFailure(Exception):
    """The sync cannot go on, and retrying as it is would not help: the message says what to change.

    ``metadata`` travels with it to the Dagster failure (e.g. how many partitions failed).
    """

    def __init__(self, message: str, **metadata: Any) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata


def first_line(error: BaseException) -> str:
    """The first line of an error's text (at most 300 characters), or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


@dataclass(frozen=True)
class EngineContext:
    """One sync as the engine acts on it.

    Attributes:
        registry: The registry that declares the sync (its connection and limits).
        spec: The sync.
        wait: How long and how often to poll mParticle, with the clock and sleep to do it with.
        log: Where progress and decisions go.
        now: mParticle's current time (the emulator's clock on the local target).
        workspace: Every sync of the code location, each with its own registry: what a rotating
            sync's sweep pauses when a crash left it active, whichever component declares it.
    """

    registry: Registry
    spec: SyncSpec
    wait: WaitSettings
    log: Log
    now: Callable[[], datetime]
    workspace: Workspace
