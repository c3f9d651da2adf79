"""Bad requests get 4xx JSON (never a 500 or a hang); concurrency; clean start and stop."""

import itertools
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from starlette.requests import Request

from wsync_dagster.emulator import READY_MARKER, EmulatorControl, EmulatorServer
from wsync_dagster.emulator.app import is_loopback
from wsync_dagster.local.process import ServiceProcess
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster_tests.emulator.helpers import (
    TIMEOUT,
    Api,
    clients,
    connection_body,
    error_messages,
)


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"data": b'{"id": "x"}', "headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
        ({"data": b'{"id": "x"}'}, 415, "application/json"),
        ({}, 400, "needs a JSON body"),
        ({"json": [1, 2]}, 400, "must be a JSON object"),
        ({"json": "text"}, 400, "must be a JSON object"),
        ({"data": b"x" * (1024 * 1024 + 1), "headers": {"Content-Type": "application/json"}}, 413, "larger than"),
    ],
)  # fmt: skip
def test_bad_bodies_are_4xx_json(
    api: Api, kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = api.request("POST", "data-models", **kwargs)
    assert response.status_code == status
    assert message in error_messages(response)[0]


def test_chunked_oversized_bodies_are_413(api: Api) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 65536

    response = api.request(
        "POST", "connections", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "nope", 404),
        ("GET", "/", 404),
        ("GET", "/platform/experimental/workspaces", 404),
        ("PATCH", "pipelines/x", 405),
        ("DELETE", "pipelines", 405),
        ("PUT", "connections", 405),
        ("GET", "/oauth/token", 405),
        ("GET", "/_emulator/nope", 404),
        ("PUT", "/_emulator/clock", 405),
    ],
)
def test_unknown_routes_and_methods_are_json(api: Api, method: str, path: str, status: int) -> None:
    response = api.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert error_messages(response)


def test_repeated_or_unknown_query_parameters_are_400(api: Api) -> None:
    assert api.get("connections?type=snowflake&type=bigquery").status_code == 400
    assert api.get("pipelines?x=1").status_code == 400


def test_admin_bodies_are_validated(emulator: EmulatorServer) -> None:
    for body in ({}, {"now": "x"}, {"advance_seconds": -1}, {"advance_seconds": 1, "now": "x"},
                 {"advance_seconds": 1, "settle": "no"}, {"advance_seconds": 1, "x": 1}):  # fmt: skip
        response = requests.post(f"{emulator.url}/_emulator/clock", json=body, timeout=TIMEOUT)
        assert response.status_code == 400, body
    for body in ({"yearly": 1}, {"hourly": 0}, {"hourly": "1"}, []):
        response = requests.post(f"{emulator.url}/_emulator/limits", json=body, timeout=TIMEOUT)
        assert response.status_code == 400, body


def test_concurrent_clients(
    api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]
) -> None:
    events_pipeline(schedule_interval="on_demand", schedule_start_time="2026-11-28T09:00:00Z")

    def client(n: int) -> list[int]:
        mine = Api(api.url, api.config)
        statuses = [mine.post("connections", connection_body(api.config, id=f"c{n}")).status_code]
        for _ in range(10):
            statuses.append(mine.get("connections").status_code)
            statuses.append(mine.get("pipelines/pipe/status").status_code)
        statuses.append(mine.post("pipelines/pipe").status_code)
        control.settle()
        return statuses

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client, range(8)))
    flat = [s for statuses in results for s in statuses]
    assert set(flat) <= {200, 400}  # 400 only for "already in progress"
    assert len(api.ok("GET", "connections")) == 9
    runs = api.runs("pipe")
    assert {r["pipeline_run_state"] for r in runs} == {"success"}
    windows = sorted((r["data_interval_start"], r["data_interval_end"]) for r in runs)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))


def _port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` again (TIME_WAIT leftovers do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_stop_leaves_no_thread_or_port_behind(
    start_emulator: Callable[..., EmulatorServer], events_table: str
) -> None:
    before = set(threading.enumerate())
    server = start_emulator(clock="real")
    assert server.url is not None
    port = int(server.url.rsplit(":", 1)[1])
    api, _ = clients(server)
    api.create_source(f"SELECT * FROM {events_table}")
    api.create_pipeline(schedule_interval="on_demand")
    names = {t.name for t in threading.enumerate()}
    assert {"wsync-emulator-http", "wsync-emulator-worker"} <= names
    server.stop()
    server.stop()  # idempotent
    leftover = [
        t for t in set(threading.enumerate()) - before if t.name.startswith("wsync-emulator")
    ]
    assert leftover == []
    assert _port_is_free(port)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/_emulator/clock", timeout=TIMEOUT)


def test_the_command_line_emulator_starts_and_stops_on_sigterm(
    local_snowflake: LocalSnowflake,
) -> None:
    argv = [
        sys.executable, "-m", "wsync_dagster.emulator", "--port", "0",
        "--snowflake-host", local_snowflake.host, "--snowflake-port", str(local_snowflake.port),
        "--clock", "manual", "--clock-start", "2026-11-28T12:00:00Z", "--workspace-id", "77",
    ]  # fmt: skip
    process = ServiceProcess("emulator", argv, ready_marker=READY_MARKER)
    url = process.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        control = EmulatorControl(url)
        assert control.config()["workspace_id"] == 77
        assert control.clock().isoformat() == "2026-11-28T12:00:00+00:00"
        proc = process._proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        process.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_emulator/clock", timeout=TIMEOUT)


def test_the_command_line_needs_a_warehouse() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsync_dagster.emulator"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--snowflake-port" in result.stderr


@pytest.mark.parametrize(
    ("client", "allowed"),
    [(("127.0.0.1", 1), True), (("127.8.9.10", 1), True), (("::1", 1), True),
     (("10.1.2.3", 1), False), (("192.168.0.5", 1), False), (None, False)],
)  # fmt: skip
def test_the_admin_api_only_answers_loopback_clients(
    client: tuple[str, int] | None, allowed: bool
) -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": client}
    assert is_loopback(Request(scope)) is allowed
