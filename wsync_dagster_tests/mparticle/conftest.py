"""Fixtures for the client tests: a scripted fake mParticle, fake time, and a client factory.

``make_client(api_root, token_url)`` builds a client against any server on 127.0.0.1, so tests
against the live emulator can reuse it with the emulator's URLs.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wsync_dagster.mparticle import ClientCredentials, WarehouseSyncClient, clear_token_cache
from wsync_dagster_tests.mparticle.fake_server import FakeMParticle
from wsync_dagster_tests.mparticle.helpers import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    ORG_ID,
    TEST_POLICY,
    WORKSPACE_ID,
    FakeTime,
)

ClientFactory = Callable[..., WarehouseSyncClient]


@pytest.fixture(autouse=True)
def _isolated_token_cache() -> Iterator[None]:
    """The token cache is process-wide by design; each test starts and ends with it empty."""
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def fake() -> Iterator[FakeMParticle]:
    """A running scripted server; fails the test if a handler raised."""
    with FakeMParticle(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, workspace_id=WORKSPACE_ID
    ) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def fake_time() -> FakeTime:
    """Clock and sleep for the client: nothing in these tests waits for real."""
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Iterator[ClientFactory]:
    """Build clients for any API root and token URL (closed at teardown).

    Keyword arguments override the client's constructor arguments; ``credentials`` replaces the
    default test credentials.
    """
    clients: list[WarehouseSyncClient] = []

    def make(api_root: str, token_url: str, **overrides: Any) -> WarehouseSyncClient:
        credentials = overrides.pop("credentials", None) or ClientCredentials(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_url=token_url
        )
        options: dict[str, Any] = {
            "api_root": api_root,
            "org_id": ORG_ID,
            "account_id": ACCOUNT_ID,
            "retry_policy": TEST_POLICY,
            "sleep": fake_time.sleep,
            "clock": fake_time.monotonic,
            "wall_clock": fake_time.wall,
            **overrides,
        }
        client = WarehouseSyncClient(credentials, WORKSPACE_ID, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(fake: FakeMParticle, make_client: ClientFactory) -> WarehouseSyncClient:
    """A client wired to the scripted server."""
    return make_client(fake.url, fake.token_url)
