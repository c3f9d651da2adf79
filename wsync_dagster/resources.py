"""Dagster resources of the production code location and the explicit choice of target.

``WSYNC_TARGET`` says which services the code location talks to:

``mparticle``
    a real Snowflake account and the real mParticle API; credentials come from ``dagster.EnvVar`` so
    they are resolved at launch and never shown in the UI.
``local``
    the embedded default (Snowflake stand-in and mParticle emulator). It is served by its own code
    location, ``wsync_dagster.local.definitions`` (``python3 dev.py demo`` / ``python3 dev.py ui``);
    this module refuses it rather than importing the stand-ins.

Nothing falls back silently. With ``WSYNC_TARGET`` unset the definitions still load (so
``dagster definitions validate`` and the UI work anywhere), but every resource refuses to run and says
how to choose. With a target chosen but settings missing, loading fails with one message that lists
every missing variable.
"""

import contextlib
import enum
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import dagster as dg
from dagster_snowflake import SnowflakeResource
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator

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
LOCAL_CODE_LOCATION = "wsync_dagster.local.definitions"


class Target(enum.StrEnum):
    LOCAL = "local"
    MPARTICLE = "mparticle"


@dataclass(frozen=True)
class Setting:
    """One environment variable a code location reads."""

    name: str
    meaning: str
    required: bool = True
    default: str | None = None
    secret: bool = False
    integer: bool = False


# Snowflake as Dagster sees it (pre-flight counts and checks), for the real target.
SNOWFLAKE_SETTINGS = (
    Setting("SNOWFLAKE_ACCOUNT", "Snowflake account identifier, e.g. xy12345.us-east-1"),
    Setting("SNOWFLAKE_USER", "Snowflake user for pre-flight queries"),
    Setting("SNOWFLAKE_PASSWORD", "that user's password", secret=True),
    Setting("SNOWFLAKE_ROLE", "role for pre-flight queries", required=False),
    Setting("SNOWFLAKE_WAREHOUSE", "virtual warehouse for pre-flight queries", required=False),
)
# mParticle, for the real target.
MPARTICLE_SETTINGS = (
    Setting(
        "MPARTICLE_CLIENT_ID", "client id of an mParticle API credential (Platform API, Admin)"
    ),
    Setting("MPARTICLE_CLIENT_SECRET", "that credential's client secret", secret=True),
    Setting("MPARTICLE_WORKSPACE_ID", "the mParticle workspace id (a whole number)", integer=True),
    Setting(
        "MPARTICLE_ORG_ID", "org id, for reading profiles back (Profile API)", False, integer=True
    ),
    Setting("MPARTICLE_ACCOUNT_ID", "account id, for reading profiles back", False, integer=True),
    Setting("MPARTICLE_API_ROOT", "API root", required=False, default=DEFAULT_API_ROOT),
    Setting(
        "MPARTICLE_TOKEN_URL", "OAuth token endpoint", required=False, default=DEFAULT_TOKEN_URL
    ),
)
REAL_SETTINGS = SNOWFLAKE_SETTINGS + MPARTICLE_SETTINGS


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


def settings_problems(
    settings: tuple[Setting, ...], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One line per setting of ``settings`` that is required but missing, or malformed."""
    environ = os.environ if environ is None else environ
    missing = [
        f"{s.name} is not set: {s.meaning}"
        for s in settings
        if s.required and not environ.get(s.name)
    ]
    malformed = [
        f"{s.name}={environ[s.name]!r} is not a whole number"
        for s in settings
        if s.integer and environ.get(s.name) and not environ[s.name].isdigit()
    ]
    return missing + malformed


def require_settings(
    target: Target,
    settings: tuple[Setting, ...],
    environ: Mapping[str, str],
    hint: str,
    more_problems: tuple[str, ...] | list[str] = (),
) -> None:
    """Raise one SettingsError naming every setting of ``settings`` that is not usable (and
    ``more_problems``, found by checks of the caller's own)."""
    if problems := [*settings_problems(settings, environ), *more_problems]:
        lines = "\n".join(f"  {p}" for p in problems)
        raise SettingsError(
            f"{TARGET_VAR}={target.value} needs {len(problems)} more setting(s):\n{lines}\n{hint}"
        )


def real_target_problems(environ: Mapping[str, str]) -> list[str]:
    """Every problem of the real target's settings: missing or malformed variables, and URLs that
    would send the client secret in clear text."""
    return [*settings_problems(REAL_SETTINGS, environ), *url_setting_problems(environ)]


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


def unselected_resources() -> dict[str, object]:
    """What every resource key is bound to while no target is chosen."""
    return {key: TargetNotSelected(resource_name=key) for key in ("snowflake", "mparticle")}


class MParticleResource(MaskedSecrets, dg.ConfigurableResource):
    """An mParticle API credential and workspace; :meth:`get_client` returns the typed client.

    Holds configuration; :class:`~wsync_dagster.mparticle.WarehouseSyncClient` does the HTTP. The
    resource owns its client: Dagster's ``setup_for_execution`` opens one per run (shared by every
    partition and thread of the run) and ``teardown_after_execution`` closes it. Outside a run, use
    ``with resource.open_client() as client:``. Tokens are cached per credential per process (see
    :mod:`wsync_dagster.mparticle.auth`), so a new client does not mean a new token.
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
    backfill_max_poll_interval_seconds: float = Field(
        default=600.0,
        description="longest wait between run listings while several partitions of one run are "
        "pending: each partition is reported at most this long after its mParticle run ends",
    )

    _client: WarehouseSyncClient | None = PrivateAttr(default=None)

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

    def new_client(self) -> WarehouseSyncClient:
        """A new client for this configuration; the caller closes it."""
        credentials = ClientCredentials(
            client_id=self.client_id,
            client_secret=self.client_secret,  # pyright: ignore[reportArgumentType]
            token_url=self.token_url,
            audience=self.audience,
        )
        return WarehouseSyncClient(
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

    @contextlib.contextmanager
    def open_client(self) -> Iterator[WarehouseSyncClient]:
        """A client for use outside a Dagster run, closed when the block ends."""
        with self.new_client() as client:
            yield client

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = self.new_client()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get_client(self) -> WarehouseSyncClient:
        """The run's client (opened when the run set this resource up)."""
        if self._client is None:
            raise RuntimeError(
                "MParticleResource.get_client() is only available during a Dagster run; "
                "outside one, use `with resource.open_client() as client:`"
            )
        return self._client


def snowflake_resource(environ: Mapping[str, str] | None = None) -> SnowflakeResource:
    """The real target's Snowflake resource, secrets bound with ``dagster.EnvVar``.

    The pre-flight only reads, so the session is in autocommit mode (a login parameter, not a
    statement): dagster-snowflake's ``get_connection`` otherwise sends a ``COMMIT`` on every close,
    one round trip per materialization that commits nothing.
    """
    environ = os.environ if environ is None else environ
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


def mparticle_resource(environ: Mapping[str, str] | None = None) -> MParticleResource:
    """The real target's mParticle resource, secrets bound with ``dagster.EnvVar``."""
    environ = os.environ if environ is None else environ
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


def production_resources(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The resources of the production code location for the target ``environ`` chooses."""
    environ = os.environ if environ is None else environ
    target = selected_target(environ)
    if target is None:
        return unselected_resources()
    if target is Target.LOCAL:
        raise SettingsError(
            f"{TARGET_VAR}=local is served by the local code location {LOCAL_CODE_LOCATION}, not "
            "by wsync_dagster.definitions; start it with `python3 dev.py demo` or "
            f"`python3 dev.py ui`, or set {TARGET_VAR}=mparticle for a real workspace."
        )
    require_settings(
        target,
        REAL_SETTINGS,
        environ,
        f"Set them, or run the embedded default with `python3 dev.py demo` ({LOCAL_CODE_LOCATION}).",
        url_setting_problems(environ),
    )
    return {"snowflake": snowflake_resource(environ), "mparticle": mparticle_resource(environ)}
