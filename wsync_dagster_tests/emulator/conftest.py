"""Emulator fixtures: plain-``requests`` access to the session emulator.

The emulator itself (``emulator``, ``control``, ``start_emulator``), its configuration and the
``EMU.PUBLIC.EVENTS`` table come from the top-level ``wsync_dagster_tests/conftest.py``, which the
client's live tests share. Tests here talk to the emulator over real HTTP with plain ``requests``.
"""

from collections.abc import Callable
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorServer
from wsync_dagster_tests.emulator.helpers import Api


@pytest.fixture
def api(emulator: EmulatorServer) -> Api:
    assert emulator.url is not None
    return Api(emulator.url, emulator.config)


@pytest.fixture
def events_pipeline(api: Api, events_table: str) -> Callable[..., dict[str, Any]]:
    """Create connection + model over the events table + a pipeline (overrides go to the pipeline)."""

    def create(**overrides: Any) -> dict[str, Any]:
        api.create_source(f"SELECT * FROM {events_table}")
        return api.create_pipeline(**overrides)

    return create
