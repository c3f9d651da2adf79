"""The local mParticle emulator: a stateful Warehouse Sync, SSO token and Profile API server.

It speaks the spec (``shared/spec/warehouse-sync-api.md`` §1, §2, §3, §5.1 with the decisions of §7) on
its own, runs pipelines' SQL against a Snowflake endpoint (the local stand-in), and keeps the
resulting profiles. Routes and the admin API are documented in :mod:`wsync_dagster.emulator.app`.
"""

from wsync_dagster.emulator.config import EmulatorConfig
from wsync_dagster.emulator.control import EmulatorControl
from wsync_dagster.emulator.server import READY_MARKER, EmulatorServer

__all__ = ["READY_MARKER", "EmulatorConfig", "EmulatorControl", "EmulatorServer"]
