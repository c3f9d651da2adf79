"""What the client's token cache and connection pool buy: N GET calls, our client vs the naive way.

Runs the scripted fake mParticle (a real HTTP server on 127.0.0.1 whose token endpoint answers after a
small delay; mParticle's real one takes 1-3 s) and makes the same N ``GET .../connections/{id}`` calls:

* **client**: ``WarehouseSyncClient.get_connection`` (one cached token, one pooled session);
* **naive**: per call, a token request then ``requests.get`` without a session (what a script that
  "just calls the API" does).

Prints token requests, TCP connections accepted by the server, calls per second, and the ratios.
Asserts nothing.

    .venv/bin/python benchmarks/client_bench.py [--calls N] [--token-delay SECONDS]
"""

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

# The fake server lives with the tests, which are not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsync_dagster.mparticle import (
    ClientCredentials,
    WarehouseSyncClient,
    clear_token_cache,
)
from wsync_dagster_tests.mparticle.fake_server import FakeMParticle, Reply
from wsync_dagster_tests.mparticle.helpers import payload

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"
WORKSPACE_ID = 5328
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


def measure(name: str, fake: FakeMParticle, calls: int, make_calls: Callable[[], None]) -> Result:
    tokens_before, connections_before = len(fake.token_requests), fake.connections
    started = time.perf_counter()
    make_calls()
    seconds = time.perf_counter() - started
    return Result(
        name,
        calls,
        len(fake.token_requests) - tokens_before,
        fake.connections - connections_before,
        seconds,
    )


def run(calls: int, token_delay: float) -> list[Result]:
    credentials_body = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": "https://api.mparticle.com",
        "grant_type": "client_credentials",
    }
    with FakeMParticle(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        workspace_id=WORKSPACE_ID,
        token_delay=token_delay,
    ) as fake:
        path = fake.ws("connections/example-connection")
        fake.on("GET", path, Reply(200, payload("connection_snowflake.json")))
        credentials = ClientCredentials(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_url=fake.token_url
        )

        def with_client() -> None:
            clear_token_cache()
            with WarehouseSyncClient(
                credentials, WORKSPACE_ID, api_root=fake.url, timeout=TIMEOUT
            ) as client:
                for _ in range(calls):
                    client.get_connection("example-connection")

        def naive() -> None:
            for _ in range(calls):
                token = requests.post(fake.token_url, json=credentials_body, timeout=TIMEOUT)
                token.raise_for_status()
                response = requests.get(
                    fake.url + path,
                    headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                    timeout=TIMEOUT,
                )
                response.raise_for_status()

        return [
            measure("wsync client", fake, calls, with_client),
            measure("naive", fake, calls, naive),
        ]


def report(results: list[Result], token_delay: float) -> None:
    client, naive = results
    print(
        f"{client.calls} GET calls against a local fake mParticle "
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
        "\nThe fake serves the token endpoint and the API on one host, so the client's single"
        "\nkept-alive connection carries both; against mParticle (two hosts) it would be two."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="GET calls per variant")
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.05,
        help="seconds the fake token endpoint takes to answer (default 0.05)",
    )
    args = parser.parse_args()
    report(run(args.calls, args.token_delay), args.token_delay)


if __name__ == "__main__":
    main()
