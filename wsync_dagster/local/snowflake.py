"""Start, reach and stop the local Snowflake stand-in (see :mod:`.snowflake_server`)."""

import sys
from typing import Any
from urllib.parse import urlsplit

import requests

from wsync_dagster.local.process import EXIT_WITH_PARENT_FLAG, ServiceProcess
from wsync_dagster.local.snowflake_server import READY_MARKER, STATS_PATH

# fakesnow accepts any credentials; these make the connection arguments look like a real account's.
LOCAL_ACCOUNT = "fakesnow"
LOCAL_USER = "fake"
LOCAL_PASSWORD = "snow"


def local_connect_args(host: str, port: int) -> dict[str, Any]:
    """Arguments for ``snowflake.connector.connect`` that reach a stand-in at ``host:port``."""
    return {
        "account": LOCAL_ACCOUNT,
        "user": LOCAL_USER,
        "password": LOCAL_PASSWORD,
        "host": host,
        "port": port,
        "protocol": "http",
        # The connector's out-of-band telemetry would try to reach Snowflake's servers.
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        # A fakesnow internal error is an HTTP 500, which the connector retries until this runs out.
        "login_timeout": 30,
        "network_timeout": 60,
    }


class LocalSnowflake(ServiceProcess):
    """The fakesnow stand-in as a child process on loopback.

    >>> with LocalSnowflake() as sf:                    # doctest: +SKIP
    ...     conn = snowflake.connector.connect(**sf.connect_args())
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 60.0) -> None:
        super().__init__(
            "snowflake-stand-in",
            [
                sys.executable,
                "-m",
                "wsync_dagster.local.snowflake_server",
                "--host",
                host,
                "--port",
                str(port),
                EXIT_WITH_PARENT_FLAG,
            ],
            ready_marker=READY_MARKER,
            start_timeout=start_timeout,
        )

    @property
    def host(self) -> str:
        return self._address()[0]

    @property
    def port(self) -> int:
        return self._address()[1]

    def _address(self) -> tuple[str, int]:
        if self.url is None:
            raise RuntimeError("the local Snowflake stand-in is not started")
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port

    def connect_args(self, **overrides: Any) -> dict[str, Any]:
        """A fresh dict of connection arguments (callers may mutate it)."""
        return {**local_connect_args(self.host, self.port), **overrides}

    def connect(self, **overrides: Any) -> Any:
        import snowflake.connector

        return snowflake.connector.connect(**self.connect_args(**overrides))

    def query_count(self) -> int:
        """How many queries the stand-in has answered since it started."""
        response = requests.get(f"{self.url}{STATS_PATH}", timeout=30)
        response.raise_for_status()
        return int(response.json()["queries"])
