"""Fixtures for the client tests: a scripted mParticle, fake time, and a client factory.

``make_client(api_root, token_url)`` builds a client against any server on 127.0.0.1; ``live_on``
uses it to connect the client to a live emulator (the session one from the top-level conftest, or
one from ``start_emulator``), with the client's time on the emulator's clock.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl, EmulatorServer
from wsync_dagster.mparticle import ClientCredentials, WarehouseSyncClient, clear_token_cache
from wsync_dagster_tests.mparticle.helpers import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    ORG_ID,
    TEST_POLICY,
    WORKSPACE_ID,
    Dropped,
    EmulatorTime,
    FakeTime,
    MParticleStub,
)
from wsync_dagster_tests.mparticle.live import Live, LiveFactory, create_pipeline

ClientFactory = Callable[..., WarehouseSyncClient]


@pytest.fixture(autouse=True)
def _isolated_token_cache() -> Iterator[None]:
    """The token cache is process-wide by design; each test starts and ends with it empty."""
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def fake() -> Iterator[MParticleStub]:
    """A running scripted server; fails the test on an unscripted request or a handler's error."""
    with MParticleStub() as server:
        yield server
    server.check_assertions()
    assert [e for e in server.handler_errors if not isinstance(e, Dropped)] == []


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
            **overrides,
        }
        client = WarehouseSyncClient(credentials, WORKSPACE_ID, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(fake: MParticleStub, make_client: ClientFactory) -> WarehouseSyncClient:
    """A client wired to the scripted server."""
    return make_client(fake.url, fake.token_url)


@pytest.fixture
def live_on(make_client: ClientFactory) -> LiveFactory:
    """Connect a client to ``server`` over 127.0.0.1 with the emulator's credentials and ids.

    The client's sleep advances the emulator clock and its clocks read it. Keyword arguments
    override the client's constructor arguments (``credentials`` too).
    """

    def connect(server: EmulatorServer, **overrides: Any) -> Live:
        assert server.url is not None
        config = server.config
        assert config.workspace_id == WORKSPACE_ID, "make_client builds clients for WORKSPACE_ID"
        control = EmulatorControl(server.url)
        time = EmulatorTime(control)
        token_url = f"{server.url}/oauth/token"
        credentials = ClientCredentials(
            client_id=config.client_id, client_secret=config.client_secret, token_url=token_url
        )
        options: dict[str, Any] = {
            "credentials": credentials,
            "org_id": config.org_id,
            "account_id": config.account_id,
            "sleep": time.sleep,
            "clock": time.monotonic,
            **overrides,
        }
        return Live(make_client(server.url, token_url, **options), control, time, config)

    return connect


@pytest.fixture
def live(emulator: EmulatorServer, live_on: LiveFactory) -> Live:
    """A client on the session emulator, reset (manual clock at ``CLOCK_START``)."""
    return live_on(emulator)


@pytest.fixture
def on_demand(live: Live, events_table: str) -> WarehouseSyncClient:
    """``live``'s client, with the on-demand ``pipeline()`` and its source created."""
    create_pipeline(live)
    return live.client
