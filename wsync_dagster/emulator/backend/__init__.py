"""The emulator's state, split by resource, behind one lock.

* :mod:`.store` — what one emulator remembers, and the lock that guards it;
* :mod:`.auth` — bearer tokens;
* :mod:`.catalog` — the generic collection, connections and data models;
* :mod:`.pipelines` — pipelines, checked against their model on the warehouse;
* :mod:`.runs` — trigger, status, run listing and the scheduling state;
* :mod:`.profile_api` — Profile API lookups;
* :mod:`.admin` — faults, the request log, record limits, reset;
* :mod:`.activity` — when each pipeline entered and left the active-pipeline count.

:class:`Backend` composes them; routes call its parts directly (``backend.runs.trigger``).
"""

from typing import Any

from wsync_dagster.emulator.backend.admin import Admin
from wsync_dagster.emulator.backend.auth import Auth
from wsync_dagster.emulator.backend.catalog import Collection, Connections, DataModels
from wsync_dagster.emulator.backend.pipelines import Pipelines
from wsync_dagster.emulator.backend.profile_api import ProfileApi
from wsync_dagster.emulator.backend.runs import Runs
from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.clock import Clock
from wsync_dagster.emulator.config import EmulatorConfig
from wsync_dagster.emulator.warehouse import Warehouse


class Backend:
    """State of one emulator: its parts over one shared :class:`Store` (thread-safe)."""

    def __init__(self, config: EmulatorConfig, clock: Clock, warehouse: Warehouse) -> None:
        self.config = config
        self.clock = clock
        self.warehouse = warehouse
        self.store = Store(config, clock)
        self.auth = Auth(self.store)
        self.connections = Connections(self.store)
        self.data_models = DataModels(self.store)
        self.pipelines = Pipelines(self.store, self.connections, warehouse)
        # The collections by their URL segment, for the generic resource routes.
        self.collections: dict[str, Collection[Any]] = {
            "connections": self.connections,
            "data-models": self.data_models,
            "pipelines": self.pipelines,
        }
        self.runs = Runs(self.store)
        self.profiles = ProfileApi(self.store)
        self.admin = Admin(self.store)

    def wait(self, timeout: float | None) -> None:
        """Block until the state changes (a run finishes, a pipeline changes) or ``timeout``."""
        self.store.wait(timeout)

    def notify(self) -> None:
        self.store.notify()


__all__ = ["Backend"]
