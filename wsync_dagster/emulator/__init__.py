"""The local mParticle emulator: a stateful Warehouse Sync, SSO token and Profile API server.

It speaks the API described in ``docs/warehouse-sync-api.md`` on its own, runs pipelines' SQL
against a Snowflake endpoint (the local stand-in), and keeps the resulting profiles. Routes and the
admin API are documented in :mod:`wsync_dagster.emulator.app`.

A leaf: nothing here imports the rest of ``wsync_dagster``. The public names below load lazily, so
importing a light submodule (``wsync_dagster.emulator.lifecycle``) does not start the web stack.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsync_dagster.emulator.config import EmulatorConfig
    from wsync_dagster.emulator.control import EmulatorControl
    from wsync_dagster.emulator.lifecycle import READY_MARKER
    from wsync_dagster.emulator.server import EmulatorServer

__all__ = ["READY_MARKER", "EmulatorConfig", "EmulatorControl", "EmulatorServer"]

_HOMES = {
    "EmulatorConfig": "wsync_dagster.emulator.config",
    "EmulatorControl": "wsync_dagster.emulator.control",
    "EmulatorServer": "wsync_dagster.emulator.server",
    "READY_MARKER": "wsync_dagster.emulator.lifecycle",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
