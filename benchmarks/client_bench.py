"""What the client's token cache and connection pool buy: N GET calls, our client vs the naive way.

Starts the package's emulator in this process (HTTP on 127.0.0.1), slows its token endpoint with the
``token_delay`` fault (mParticle's real one takes 1-3 s), and makes the same N
``GET .../connections/{id}`` calls:

* **client**: ``WarehouseSyncClient.get_connection`` (one cached token, one pooled session);
* **naive**: per call, a token request then ``requests.get`` without a session (what a script that
  "just calls the API" does).

Prints the token requests the emulator logged, the TCP connections the calls opened (counted with
Python's ``socket.connect`` audit event), calls per second, and the ratios. Asserts nothing.

    .venv/bin/python benchmarks/client_bench.py [--calls N] [--token-delay SECONDS]
"""

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import SecretStr

from wsync_dagster.emulator import EmulatorConfig, EmulatorControl, EmulatorServer
from wsync_dagster.mparticle import (
    ClientCredentials,
    Connection,
    ConnectionType,
    WarehouseSyncClient,
    clear_token_cache,
)

CONNECTION_ID = "bench-connection"
TIMEOUT = (5.0, 30.0)


@dataclass(frozen=True)
class Result:
    """What one way of making the calls cost."""

    name: str
    calls: int
    token_requests: int
    connections: int
    seconds: float

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds


class ConnectCounter:
    """Counts the process's TCP connects to one port (an audit hook), while ``counting`` is set."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.counting = False
        self.count = 0
        sys.addaudithook(self)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.counting and event == "socket.connect" and tuple(args[1])[1:2] == (self.port,):
            self.count += 1


def measure(
    name: str,
    calls: int,
    control: EmulatorControl,
    connects: ConnectCounter,
    make_calls: Callable[[], None],
) -> Result:
    control.clear_request_log()
    connects.count, connects.counting = 0, True
    started = time.perf_counter()
    make_calls()
    seconds = time.perf_counter() - started
    connects.counting = False
    tokens = sum(entry["path"] == "/oauth/token" for entry in control.request_log())
    return Result(name, calls, tokens, connects.count, seconds)


def run(calls: int, token_delay: float) -> list[Result]:
    with EmulatorServer(EmulatorConfig()) as emulator:
        assert emulator.url is not None
        url, config = emulator.url, emulator.config
        control = EmulatorControl(url)
        token_url = f"{url}/oauth/token"
        credentials = ClientCredentials(
            client_id=config.client_id,
            client_secret=SecretStr(config.client_secret),
            token_url=token_url,
        )
        with WarehouseSyncClient(credentials, config.workspace_id, api_root=url) as client:
            created = client.create_connection(bench_connection(config))
        control.slow_token(token_delay)
        connects = ConnectCounter(int(url.rsplit(":", 1)[1]))

        def with_client() -> None:
            clear_token_cache()
            with WarehouseSyncClient(
                credentials, config.workspace_id, api_root=url, timeout=TIMEOUT
            ) as client:
                for _ in range(calls):
                    client.get_connection(CONNECTION_ID)

        def naive() -> None:
            body = {
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "audience": credentials.audience,
                "grant_type": "client_credentials",
            }
            for _ in range(calls):
                token = requests.post(token_url, json=body, timeout=TIMEOUT)
                token.raise_for_status()
                response = requests.get(
                    f"{client.warehouse_base}/connections/{created.id}",
                    headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                    timeout=TIMEOUT,
                )
                response.raise_for_status()

        return [
            measure("wsync client", calls, control, connects, with_client),
            measure("naive", calls, control, connects, naive),
        ]


def bench_connection(config: EmulatorConfig) -> Connection:
    """A Snowflake connection to read back (creating it does not reach the warehouse)."""
    return Connection(
        id=CONNECTION_ID,
        name="Benchmark connection",
        type=ConnectionType.SNOWFLAKE,
        source_account_id="bench",
        region="us-central1.gcp",
        warehouse="compute_wh",
        database="bench",
        role="bench_role",
        user=config.snowflake_user,
        password=SecretStr(config.snowflake_password),
    )


def report(results: list[Result], token_delay: float) -> None:
    client, naive = results
    print(
        f"{client.calls} GET calls against the local emulator "
        f"(token endpoint delay {token_delay * 1000:.0f} ms)\n"
    )
    print(f"{'':28}{'token requests':>16}{'TCP connections':>17}{'calls/s':>10}{'seconds':>9}")
    for r in results:
        print(
            f"{r.name:28}{r.token_requests:>16}{r.connections:>17}"
            f"{r.calls_per_second:>10.0f}{r.seconds:>9.2f}"
        )
    print(
        f"{'ratio naive / client':28}"
        f"{naive.token_requests / max(client.token_requests, 1):>15.0f}x"
        f"{naive.connections / max(client.connections, 1):>16.0f}x"
        f"{client.calls_per_second / naive.calls_per_second:>9.1f}x"
        "  (calls/s: client / naive)"
    )
    print(
        "\nThe emulator serves the token endpoint and the API on one host, so the client's single"
        "\nkept-alive connection carries both; against mParticle (two hosts) it would be two."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="GET calls per variant")
    parser.add_argument("--token-delay", type=float, default=0.05, help="token endpoint seconds")
    args = parser.parse_args()
    report(run(args.calls, args.token_delay), args.token_delay)


if __name__ == "__main__":
    main()
