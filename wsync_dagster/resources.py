"""Dagster resources and the explicit choice of target.

``WSYNC_TARGET`` says which services the code location talks to:

``local``
    the embedded default: the local Snowflake stand-in and the local mParticle emulator, whose addresses
    the local launcher (``python dev.py demo`` / ``python dev.py ui``) puts in ``WSYNC_LOCAL_*``.
``mparticle``
    a real Snowflake account and the real mParticle API; credentials come from ``dagster.EnvVar`` so
    they are resolved at launch and never shown in the UI.

Nothing falls back silently. With ``WSYNC_TARGET`` unset the definitions still load (so
``dagster definitions validate`` and the UI work anywhere), but every resource refuses to run and says
how to choose. With a target chosen but settings missing, loading fails with one message that lists
every missing variable.
"""

import enum
import functools
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import dagster as dg
from dagster_snowflake import SnowflakeResource
from pydantic import Field, ValidationInfo, field_validator

from wsync_dagster.mparticle import ClientCredentials, RetryPolicy, WarehouseSyncClient
from wsync_dagster.mparticle.auth import DEFAULT_AUDIENCE, DEFAULT_TOKEN_URL
from wsync_dagster.mparticle.client import DEFAULT_API_ROOT
from wsync_dagster.resource_safety import (
    MaskedSecrets,
    MaskedSnowflakeResource,
    checked_url,
    url_setting_problems,
)

TARGET_VAR = "WSYNC_TARGET"


class Target(enum.StrEnum):
    LOCAL = "local"
    MPARTICLE = "mparticle"


@dataclass(frozen=True)
class Setting:
    """One environment variable the code location reads."""

    name: str
    meaning: str
    required: bool = True
    default: str | None = None
    secret: bool = False


# Snowflake as Dagster sees it (pre-flight counts and checks), for the real target.
SNOWFLAKE_SETTINGS = (
    Setting("SNOWFLAKE_ACCOUNT", "Snowflake account identifier, e.g. xy12345.us-east-1"),
    Setting("SNOWFLAKE_USER", "Snowflake user for pre-flight queries"),
    Setting("SNOWFLAKE_PASSWORD", "that user's password", secret=True),
    Setting("SNOWFLAKE_ROLE", "role for pre-flight queries", required=False),
    Setting("SNOWFLAKE_WAREHOUSE", "virtual warehouse for pre-flight queries", required=False),
)
LOCAL_SNOWFLAKE_SETTINGS = (
    Setting(
        "WSYNC_LOCAL_SNOWFLAKE_HOST", "host of the local Snowflake stand-in", False, "127.0.0.1"
    ),
    Setting(
        "WSYNC_LOCAL_SNOWFLAKE_PORT", "port of the local Snowflake stand-in (set by the launcher)"
    ),
)
# mParticle, for the real target.
MPARTICLE_SETTINGS = (
    Setting(
        "MPARTICLE_CLIENT_ID", "client id of an mParticle API credential (Platform API, Admin)"
    ),
    Setting("MPARTICLE_CLIENT_SECRET", "that credential's client secret", secret=True),
    Setting("MPARTICLE_WORKSPACE_ID", "the mParticle workspace id (a whole number)"),
    Setting("MPARTICLE_ORG_ID", "org id, for reading profiles back (Profile API)", required=False),
    Setting("MPARTICLE_ACCOUNT_ID", "account id, for reading profiles back", required=False),
    Setting("MPARTICLE_API_ROOT", "API root", required=False, default=DEFAULT_API_ROOT),
    Setting(
        "MPARTICLE_TOKEN_URL", "OAuth token endpoint", required=False, default=DEFAULT_TOKEN_URL
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
INTEGER_SETTINGS = (
    "WSYNC_LOCAL_SNOWFLAKE_PORT", "MPARTICLE_WORKSPACE_ID", "MPARTICLE_ORG_ID", "MPARTICLE_ACCOUNT_ID",
)  # fmt: skip
TARGET_SETTINGS: dict[Target, tuple[Setting, ...]] = {
    Target.MPARTICLE: SNOWFLAKE_SETTINGS + MPARTICLE_SETTINGS,
    Target.LOCAL: LOCAL_SNOWFLAKE_SETTINGS + LOCAL_MPARTICLE_SETTINGS,
}


class SettingsError(ValueError):
    """The environment does not describe a usable target. The message says what to set."""


def selected_target(environ: Mapping[str, str] | None = None) -> Target | None:
    """The target named by ``WSYNC_TARGET``, None when unset; a bad value raises SettingsError."""
    environ = os.environ if environ is None else environ
    raw = environ.get(TARGET_VAR, "").strip()
    if not raw:
        return None
    try:
        return Target(raw.lower())
    except ValueError:
        choices = " or ".join(t.value for t in Target)
        raise SettingsError(f"{TARGET_VAR}={raw!r} is not a target; set it to {choices}.") from None


def settings_problems(target: Target, environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per required setting of ``target`` that is missing or malformed."""
    environ = os.environ if environ is None else environ
    problems = [
        f"{s.name} is not set: {s.meaning}"
        for s in TARGET_SETTINGS[target]
        if s.required and not environ.get(s.name)
    ]
    problems += [
        f"{name}={environ[name]!r} is not a whole number"
        for name in INTEGER_SETTINGS
        if environ.get(name) and not environ[name].isdigit()
    ]
    if target is Target.MPARTICLE:
        problems += url_setting_problems(environ)
    return problems


def require_settings(target: Target, environ: Mapping[str, str] | None = None) -> None:
    """Raise one SettingsError naming every required variable of ``target`` that is not usable."""
    if problems := settings_problems(target, environ):
        lines = "\n".join(f"  {p}" for p in problems)
        hint = (
            "Start the local stack with `python3 dev.py demo` or `python3 dev.py ui`, which set them."
            if target is Target.LOCAL
            else f"Set them, or use {TARGET_VAR}=local for the embedded default."
        )
        raise SettingsError(
            f"{TARGET_VAR}={target.value} needs {len(problems)} more setting(s):\n{lines}\n{hint}"
        )


def setting_value(setting: Setting, environ: Mapping[str, str]) -> str | None:
    return environ.get(setting.name) or setting.default


class TargetNotSelected(dg.ConfigurableResource):
    """Bound in place of every resource while ``WSYNC_TARGET`` is unset: refuses to run, says why."""

    resource_name: str = Field(description="the resource key this stands in for")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        raise SettingsError(
            f"Resource '{self.resource_name}' cannot run: {TARGET_VAR} is not set. Set "
            f"{TARGET_VAR}=local for the embedded default (started by `python3 dev.py demo` or "
            f"`python3 dev.py ui`), or {TARGET_VAR}=mparticle for a real Snowflake account and "
            "mParticle workspace (see the README's configuration table)."
        )


def snowflake_resource(
    target: Target, environ: Mapping[str, str] | None = None
) -> SnowflakeResource:
    """The Snowflake resource for ``target``; call :func:`require_settings` first.

    The pre-flight only reads, so the session is in autocommit mode (a login parameter, not a
    statement): dagster-snowflake's ``get_connection`` otherwise sends a ``COMMIT`` on every close,
    one round trip per materialization that commits nothing.
    """
    environ = os.environ if environ is None else environ
    if target is Target.LOCAL:
        from wsync_dagster.local.snowflake import LOCAL_ACCOUNT, LOCAL_PASSWORD, LOCAL_USER

        host, port = (setting_value(s, environ) for s in LOCAL_SNOWFLAKE_SETTINGS)
        connect_args: dict[str, Any] = {
            "host": host,
            "port": int(port or 0),
            "protocol": "http",
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        }
        return MaskedSnowflakeResource(
            account=LOCAL_ACCOUNT,
            user=LOCAL_USER,
            password=LOCAL_PASSWORD,
            login_timeout=30,
            network_timeout=120,
            autocommit=True,
            additional_snowflake_connection_args=connect_args,
        )
    return MaskedSnowflakeResource(
        account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
        user=dg.EnvVar("SNOWFLAKE_USER"),
        password=dg.EnvVar("SNOWFLAKE_PASSWORD"),
        login_timeout=60,
        network_timeout=300,
        autocommit=True,
        role=dg.EnvVar("SNOWFLAKE_ROLE") if environ.get("SNOWFLAKE_ROLE") else None,
        warehouse=dg.EnvVar("SNOWFLAKE_WAREHOUSE") if environ.get("SNOWFLAKE_WAREHOUSE") else None,
    )


# One client per process and configuration: its HTTP session (connection pool) and the process-wide
# token cache are shared by every asset and every thread of the run.
_CLIENTS: dict[tuple[Any, ...], WarehouseSyncClient] = {}
_CLIENTS_LOCK = threading.Lock()


class MParticleResource(MaskedSecrets, dg.ConfigurableResource):
    """An mParticle API credential and workspace; :meth:`get_client` returns the typed client.

    Holds configuration only; :class:`~wsync_dagster.mparticle.WarehouseSyncClient` does the HTTP.
    Bind secrets with ``dagster.EnvVar`` so they are resolved at launch and never shown in the UI;
    ``repr`` and ``str`` mask the client secret however it was bound, and the token URL and API root
    must be ``https://`` (``http://`` only on loopback) so that the secret never travels in clear.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret",)

    client_id: str = Field(description="client id of an API credential with Platform API access")
    client_secret: str = Field(description="the credential's secret; bind with dagster.EnvVar")
    workspace_id: int = Field(description="mParticle workspace id")
    org_id: int | None = Field(default=None, description="org id (Profile API only)")
    account_id: int | None = Field(default=None, description="account id (Profile API only)")
    api_root: str = Field(default=DEFAULT_API_ROOT, description="scheme and host of the API")
    token_url: str = Field(default=DEFAULT_TOKEN_URL, description="OAuth token endpoint")
    audience: str = Field(default=DEFAULT_AUDIENCE, description="OAuth audience")
    request_timeout_seconds: float = Field(default=30.0, description="read timeout per request")
    retry_budget_seconds: float = Field(
        default=300.0,
        description="total time one call may spend retrying 429/5xx/connection errors",
    )
    max_attempts: int = Field(
        default=10, description="attempts per call (first try included) within that time budget"
    )
    run_timeout_seconds: float = Field(
        default=3600.0, description="how long a materialization waits for mParticle's runs to end"
    )
    poll_interval_seconds: float = Field(default=5.0, description="first wait between run polls")
    max_poll_interval_seconds: float = Field(
        default=60.0, description="longest wait between run polls (polls back off up to this)"
    )

    @field_validator("api_root", "token_url", mode="before")
    @classmethod
    def _secure_url(cls, value: Any, info: ValidationInfo) -> Any:
        # Before pydantic's own parsing, to tell an unresolved EnvVar from a value: checked once
        # the EnvVar is resolved, when dagster validates the resource again with the real value.
        return checked_url(value, str(info.field_name))

    # Time, overridable in one place (tests drive the emulator's clock instead of sleeping).
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        """mParticle's notion of now, for catch-up checks and on-demand windows."""
        return datetime.now(UTC)

    def _cache_key(self) -> tuple[Any, ...]:
        return (type(self), *(getattr(self, name) for name in type(self).model_fields))

    def get_client(self) -> WarehouseSyncClient:
        """The process's client for this configuration (created on first use, then shared)."""
        key = self._cache_key()
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                credentials = ClientCredentials(
                    client_id=self.client_id,
                    client_secret=self.client_secret,  # pyright: ignore[reportArgumentType]
                    token_url=self.token_url,
                    audience=self.audience,
                )
                client = WarehouseSyncClient(
                    credentials,
                    self.workspace_id,
                    api_root=self.api_root,
                    org_id=self.org_id,
                    account_id=self.account_id,
                    timeout=(10.0, self.request_timeout_seconds),
                    retry_policy=RetryPolicy(
                        max_attempts=self.max_attempts, total_budget=self.retry_budget_seconds
                    ),
                    sleep=self.sleep,
                    clock=self.monotonic,
                )
                _CLIENTS[key] = client
            return client


@functools.cache
def _emulator_control(emulator_url: str) -> Any:
    """One admin client (one kept-alive HTTP session) per emulator: its clock is read often."""
    # Imported at run time only: loading the definitions never imports the emulator.
    from wsync_dagster.emulator import EmulatorControl

    return EmulatorControl(emulator_url)


# On a manual emulator clock, waiting costs nothing: poll in big steps of emulator time.
MANUAL_CLOCK_POLLING: dict[str, Any] = {
    "poll_interval_seconds": 30.0,
    "max_poll_interval_seconds": 600.0,
    "run_timeout_seconds": 4 * 3600.0,
}
REAL_CLOCK_POLLING: dict[str, Any] = {
    "poll_interval_seconds": 0.2,
    "max_poll_interval_seconds": 2.0,
    "run_timeout_seconds": 600.0,
}


class LocalMParticleResource(MParticleResource):
    """The local target's mParticle: the emulator, whose clock is mParticle's "now".

    With a manual emulator clock, waiting advances that clock (which runs whatever falls due) instead
    of sleeping, so a local run is deterministic and instant.
    """

    emulator_url: str = Field(description="base URL of the local emulator")
    manual_clock: bool = Field(
        default=False, description="the emulator's clock only moves when told"
    )

    def _control(self) -> Any:
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


def mparticle_resource(
    target: Target, environ: Mapping[str, str] | None = None
) -> MParticleResource:
    """The mParticle resource for ``target``; call :func:`require_settings` first."""
    environ = os.environ if environ is None else environ
    if target is Target.LOCAL:
        from wsync_dagster.local.stack import LOCAL_MPARTICLE

        url = environ["WSYNC_LOCAL_EMULATOR_URL"].rstrip("/")
        clock = environ.get("WSYNC_LOCAL_EMULATOR_CLOCK", "real")
        if clock not in ("real", "manual"):
            raise SettingsError(f"WSYNC_LOCAL_EMULATOR_CLOCK={clock!r}: use real or manual.")
        return LocalMParticleResource(
            emulator_url=url,
            manual_clock=clock == "manual",
            client_id=LOCAL_MPARTICLE.client_id,
            client_secret=LOCAL_MPARTICLE.client_secret,
            workspace_id=LOCAL_MPARTICLE.workspace_id,
            org_id=LOCAL_MPARTICLE.org_id,
            account_id=LOCAL_MPARTICLE.account_id,
            api_root=url,
            token_url=f"{url}/oauth/token",
            **(MANUAL_CLOCK_POLLING if clock == "manual" else REAL_CLOCK_POLLING),
        )
    optional: dict[str, Any] = {
        field: dg.EnvVar.int(name) if field.endswith("_id") else dg.EnvVar(name)
        for field, name in (
            ("org_id", "MPARTICLE_ORG_ID"),
            ("account_id", "MPARTICLE_ACCOUNT_ID"),
            ("api_root", "MPARTICLE_API_ROOT"),
            ("token_url", "MPARTICLE_TOKEN_URL"),
        )
        if environ.get(name)
    }
    return MParticleResource(
        client_id=dg.EnvVar("MPARTICLE_CLIENT_ID"),
        client_secret=dg.EnvVar("MPARTICLE_CLIENT_SECRET"),
        workspace_id=dg.EnvVar.int("MPARTICLE_WORKSPACE_ID"),
        **optional,
    )
