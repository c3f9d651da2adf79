"""The local code location's resources: the Snowflake stand-in and the mParticle emulator.

The launcher (``python3 dev.py demo`` / ``python3 dev.py ui``, see :mod:`wsync_dagster.local.stack`)
puts the stand-ins' addresses in ``WSYNC_LOCAL_*``; :func:`local_resources` turns them into the
resources the local code location (:mod:`wsync_dagster.local.definitions`) binds. Without them (the
location loaded by hand, or validated), each key is bound to :class:`LocalSettingsMissing`, which
refuses every run and says to start the stack. Production never imports this module.
"""

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagster_snowflake import SnowflakeResource
from pydantic import Field

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.snowflake import LOCAL_ACCOUNT, LOCAL_PASSWORD, LOCAL_USER
from wsync_dagster.resource_safety import MaskedSnowflakeResource
from wsync_dagster.resources import (
    LOCAL_CODE_LOCATION,
    RESOURCE_KEYS,
    MParticleResource,
    RefusingResource,
    Setting,
    refusal,
    secret_problems,
    setting_value,
    settings_problems,
)

LOCAL_SNOWFLAKE_SETTINGS = (
    Setting(
        "WSYNC_LOCAL_SNOWFLAKE_HOST", "host of the local Snowflake stand-in", False, "127.0.0.1"
    ),
    Setting(
        "WSYNC_LOCAL_SNOWFLAKE_PORT",
        "port of the local Snowflake stand-in (set by the launcher)",
        integer=True,
    ),
)
LOCAL_MPARTICLE_SETTINGS = (
    Setting(
        "WSYNC_LOCAL_EMULATOR_URL", "base URL of the local mParticle emulator (set by the launcher)"
    ),
    Setting(
        "WSYNC_LOCAL_EMULATOR_CLOCK",
        "the emulator's clock: real, or manual (waiting advances it instead of sleeping)",
        required=False,
        default="real",
    ),
)
LOCAL_SETTINGS = LOCAL_SNOWFLAKE_SETTINGS + LOCAL_MPARTICLE_SETTINGS

# On a manual emulator clock, waiting costs nothing: poll in big steps of emulator time.
MANUAL_CLOCK_POLLING: dict[str, Any] = {
    "poll_interval_seconds": 30.0,
    "max_poll_interval_seconds": 600.0,
    "backfill_max_poll_interval_seconds": 600.0,
    "run_timeout_seconds": 4 * 3600.0,
}
REAL_CLOCK_POLLING: dict[str, Any] = {
    "poll_interval_seconds": 0.2,
    "max_poll_interval_seconds": 2.0,
    "backfill_max_poll_interval_seconds": 2.0,
    "run_timeout_seconds": 600.0,
}


@dataclass(frozen=True)
class LocalMParticle:
    """The emulator's credential and ids (nothing secret: it only exists on loopback)."""

    client_id: str = "local-client"
    client_secret: str = "local-secret"
    workspace_id: int = 5328
    org_id: int = 1000
    account_id: int = 2000
    feed_key: str = "us1-local-feed-key"


LOCAL_MPARTICLE = LocalMParticle()


@functools.cache
def _emulator_control(emulator_url: str) -> EmulatorControl:
    """One admin client (one kept-alive HTTP session) per emulator: its clock is read often."""
    return EmulatorControl(emulator_url)


class LocalMParticleResource(MParticleResource):
    """The local code location's mParticle: the emulator, whose clock is mParticle's "now".

    With a manual emulator clock, waiting advances that clock (which runs whatever falls due) instead
    of sleeping, so a local run is deterministic and instant.
    """

    emulator_url: str = Field(description="base URL of the local emulator")
    manual_clock: bool = Field(
        default=False, description="the emulator's clock only moves when told"
    )

    def _control(self) -> EmulatorControl:
        return _emulator_control(self.emulator_url)

    def sleep(self, seconds: float) -> None:
        if self.manual_clock:
            self._control().advance(seconds)
        else:
            time.sleep(seconds)

    def monotonic(self) -> float:
        return self._control().clock().timestamp() if self.manual_clock else time.monotonic()

    def now(self) -> datetime:
        return self._control().clock()


def emulator_mparticle(
    emulator_url: str,
    *,
    manual_clock: bool,
    cls: type[LocalMParticleResource] = LocalMParticleResource,
    **overrides: Any,
) -> LocalMParticleResource:
    """The local credential against the emulator at ``emulator_url``."""
    url = emulator_url.rstrip("/")
    settings: dict[str, Any] = {
        "client_id": LOCAL_MPARTICLE.client_id,
        "client_secret": LOCAL_MPARTICLE.client_secret,
        "workspace_id": LOCAL_MPARTICLE.workspace_id,
        "org_id": LOCAL_MPARTICLE.org_id,
        "account_id": LOCAL_MPARTICLE.account_id,
        "api_root": url,
        "token_url": f"{url}/oauth/token",
        "emulator_url": url,
        "manual_clock": manual_clock,
        **(MANUAL_CLOCK_POLLING if manual_clock else REAL_CLOCK_POLLING),
    }
    return cls(**(settings | overrides))


def emulator_clock_mparticle(
    emulator_url: str, cls: type[LocalMParticleResource] = LocalMParticleResource, **overrides: Any
) -> LocalMParticleResource:
    """The local credential on the emulator's manual clock, retrying for 120 s (tests, benchmarks)."""
    return emulator_mparticle(
        emulator_url, manual_clock=True, cls=cls, **({"retry_budget_seconds": 120.0} | overrides)
    )


def local_snowflake_resource(host: str, port: int) -> SnowflakeResource:
    """The Snowflake resource on the stand-in at ``host:port``, in autocommit mode like production's
    (the pre-flight only reads)."""
    return MaskedSnowflakeResource(
        account=LOCAL_ACCOUNT,
        user=LOCAL_USER,
        password=LOCAL_PASSWORD,
        login_timeout=30,
        network_timeout=120,
        autocommit=True,
        additional_snowflake_connection_args={
            "host": host,
            "port": port,
            "protocol": "http",
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        },
    )


WITHOUT_LAUNCHER = (
    "Start the embedded default with `python3 dev.py demo` or `python3 dev.py ui` (or "
    "`python3 dev.py deploy`): they start the stand-ins and set these. To run `dg launch` on it, "
    "use `python3 dev.py launch ...`, which uses a running `python3 dev.py ui`."
)


def local_problems(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
) -> list[str]:
    """Every ``WSYNC_LOCAL_*`` setting that is missing or malformed, and every registry secret
    (variable name -> what names it) the launcher has not set."""
    environ = os.environ if environ is None else environ
    problems = settings_problems(LOCAL_SETTINGS, environ)
    clock = setting_value(LOCAL_MPARTICLE_SETTINGS[1], environ)
    if clock not in ("real", "manual"):
        problems.append(f"WSYNC_LOCAL_EMULATOR_CLOCK={clock!r} is not a clock: use real or manual")
    return [*problems, *secret_problems(secrets or {}, environ)]


class LocalSettingsMissing(RefusingResource):
    """The local code location's stand-in while the launcher's settings are missing."""

    def problem(self) -> str:
        problems = local_problems(os.environ, self.secrets) or [
            "the WSYNC_LOCAL_* settings were missing when the code location loaded; reload it"
        ]
        return refusal(LOCAL_CODE_LOCATION, problems, WITHOUT_LAUNCHER)


def local_resources(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The local code location's resources, from the ``WSYNC_LOCAL_*`` settings in ``environ``.

    The stand-ins when every setting (and every registry secret in ``secrets``, variable name ->
    what names it) is there; :class:`LocalSettingsMissing` for each key otherwise. Never raises."""
    environ = os.environ if environ is None else environ
    secrets = dict(secrets or {})
    if local_problems(environ, secrets):
        return {
            key: LocalSettingsMissing(resource_name=key, secrets=secrets) for key in RESOURCE_KEYS
        }
    host, port, url, clock = (setting_value(s, environ) for s in LOCAL_SETTINGS)
    return {
        "snowflake": local_snowflake_resource(host or "127.0.0.1", int(port or 0)),
        "mparticle": emulator_mparticle(url or "", manual_clock=clock == "manual"),
    }
