"""Settings of one emulator instance (what the command line and ``EmulatorServer`` accept)."""

import dataclasses
from datetime import datetime
from typing import Any, Literal

from wsync_dagster.emulator.limits import (
    DEFAULT_RECORD_LIMITS,
    MAX_ACTIVE_PIPELINES,
    MAX_MODEL_COLUMNS,
)

ClockMode = Literal["real", "manual"]


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator needs to start.

    The Snowflake endpoint is where every connection's SQL runs (the local stand-in); a connection
    whose ``user``/``password`` differ from ``snowflake_user``/``snowflake_password`` is treated as
    "credentials rejected" (505), like a real warehouse would.
    """

    host: str = "127.0.0.1"
    port: int = 0
    snowflake_host: str = "127.0.0.1"
    snowflake_port: int = 0
    # The local stand-in accepts any account; this one makes the arguments look like a real one's.
    snowflake_account: str = "fakesnow"
    snowflake_user: str = "fake"
    snowflake_password: str = "snow"
    snowflake_protocol: str = "http"
    # Seconds the Snowflake connector keeps retrying an unreachable warehouse before giving up.
    snowflake_login_timeout: int = 10
    # Seconds one warehouse request may take (a stand-in's internal error is retried until then).
    snowflake_network_timeout: int = 60
    client_id: str = "local-client"
    client_secret: str = "local-secret"
    # The e-mail of the credential's owner, shown in every created_by/last_modified_by.
    credential_email: str = "developer@mparticle.com"
    workspace_id: int = 5328
    org_id: int = 1000
    account_id: int = 2000
    token_ttl: int = 28800
    # Simulated duration of a run on the emulator clock: a run stays running until start + this.
    run_seconds: float = 0.0
    clock: ClockMode = "real"
    # Start of a manual clock (and of a reset one); None = the wall clock when the emulator starts.
    clock_start: datetime | None = None
    # Seed of the MPID generator: the same seed gives the same MPIDs for the same rows after a reset.
    seed: int = 5328
    max_body_bytes: int = 1024 * 1024
    # Rows fetched from the warehouse per batch while a run extracts its window.
    fetch_batch_rows: int = 5000
    # JSON file the state is loaded from at start and saved to as runs end and at stop; None: the
    # state lives only as long as the process (see :mod:`wsync_dagster.emulator.state`).
    state_file: str | None = None
    record_limits: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_RECORD_LIMITS)
    )
    # Columns a data model may return, and pipelines a workspace may have active (a contracted
    # workspace may have other numbers than the documented ones).
    max_model_columns: int = MAX_MODEL_COLUMNS
    max_active_pipelines: int = MAX_ACTIVE_PIPELINES

    def snowflake_connect_args(self) -> dict[str, Any]:
        """Arguments for ``snowflake.connector.connect`` that reach the configured warehouse."""
        return {
            "account": self.snowflake_account,
            "user": self.snowflake_user,
            "password": self.snowflake_password,
            "host": self.snowflake_host,
            "port": self.snowflake_port,
            "protocol": self.snowflake_protocol,
            # The connector's out-of-band telemetry would try to reach Snowflake's servers.
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "login_timeout": self.snowflake_login_timeout,
            "network_timeout": self.snowflake_network_timeout,
        }
