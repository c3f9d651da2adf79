"""Everything one emulator remembers, and the one lock that guards all of it.

The parts of the backend (:mod:`.auth`, :mod:`.catalog`, :mod:`.runs`, :mod:`.admin`,
:mod:`.profile_api`) share one :class:`Store`. Every read or write of its collections happens with
``store.lock`` held (a re-entrant lock, so one part may call another under it). Warehouse queries
never run under the lock: a method that needs one validates and snapshots under the lock, queries,
then re-validates and commits under the lock.
"""

import collections
import threading
from datetime import datetime
from typing import Any

from wsync_dagster.emulator.backend.activity import Activity
from wsync_dagster.emulator.clock import Clock, epoch_ms, format_instant
from wsync_dagster.emulator.config import EmulatorConfig
from wsync_dagster.emulator.faults import Faults
from wsync_dagster.emulator.model import Audit, Connection, DataModel, Pipeline, Run
from wsync_dagster.emulator.profiles import ProfileStore

REQUEST_LOG_SIZE = 100_000


class Store:
    """Resources, runs, tokens, faults, the request log, limits and profiles of one emulator."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        # Notified whenever the scheduler may have something new to do.
        self.changed = threading.Condition(self.lock)
        # Bumped by every reset, so a run executed across a reset cannot write into the new state.
        self.generation = 0
        self.profiles = ProfileStore(config.seed)
        self.reset()

    def reset(self) -> None:
        """Forget everything: resources, runs, profiles, tokens, faults, log, activity, limits, clock."""
        with self.lock:
            self.generation += 1
            self.connections: dict[str, Connection] = {}
            self.models: dict[str, DataModel] = {}
            self.pipelines: dict[str, Pipeline] = {}
            self.runs: dict[str, list[Run]] = {}
            self.next_run_id = 1
            self.tokens: dict[str, datetime] = {}
            self.faults = Faults()
            self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_SIZE)
            self.record_limits = dict(self.config.record_limits)
            self.activity = Activity()
            self.profiles.reset()
            self.clock.reset()
            self.changed.notify_all()

    def audit(self) -> Audit:
        """The audit fields of something created now by the credential's owner."""
        return Audit(self.clock.now(), self.config.credential_email)

    def clock_json(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": format_instant(now), "epoch_ms": epoch_ms(now), "mode": self.clock.mode}

    def observe_activity(self) -> None:
        """Record pipelines that started or stopped counting as active (call with the lock held)."""
        self.activity.observe(self.pipelines, self.runs, self.clock.now())

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, timeout: float | None) -> None:
        """Block until the state changes (a run finishes, a pipeline changes) or ``timeout``."""
        with self.changed:
            self.changed.wait(timeout)
