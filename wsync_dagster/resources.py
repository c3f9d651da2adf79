"""Dagster resources of the production code location, and the settings they need.

:mod:`wsync_dagster.definitions` binds the real Snowflake and mParticle, with every setting and secret
bound through ``dagster.EnvVar``: resolved when a run starts, never shown in the UI. The local
stand-ins are another code location (``wsync_dagster.local.definitions``), never reached from here.

Loading never fails for a missing setting, so ``dg check defs`` and the UI work anywhere. Dagster
resolves an ``EnvVar`` field before a resource's ``setup_for_execution`` runs, and an unset one fails
the run with one Dagster error per field, and no word about the registry's secrets. So
:func:`production_resources` checks the environment the code location loads in (a run worker and
the code server that evaluates sensors each load the code location themselves, so they check their
own environment): every required setting, every malformed one, and every registry secret the code
location's syncs name (``password_env``, ``feed_key_env``). When one is missing, each resource key is
bound to :class:`SettingsMissing` instead: a run then refuses when its resources are set up, with one
message naming every problem (names, never a secret's value), and the runs sensor skips its tick with
that same message (:func:`settings_problem`).
"""

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn

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

PRODUCTION_CODE_LOCATION = "wsync_dagster.definitions"
LOCAL_CODE_LOCATION = "wsync_dagster.local.definitions"
RESOURCE_KEYS = ("snowflake", "mparticle")


@dataclass(frozen=True)
class Setting:
    """One environment variable a code location reads."""

    name: str
    meaning: str
    required: bool = True
    default: str | None = None
    secret: bool = False
    integer: bool = False


# Snowflake as Dagster sees it (pre-flight counts and checks).
SNOWFLAKE_SETTINGS = (
    Setting("SNOWFLAKE_ACCOUNT", "Snowflake account identifier, e.g. xy12345.us-east-1"),
    Setting("SNOWFLAKE_USER", "Snowflake user for pre-flight queries"),
    Setting("SNOWFLAKE_PASSWORD", "that user's password", secret=True),
    Setting("SNOWFLAKE_ROLE", "role for pre-flight queries", required=False),
    Setting("SNOWFLAKE_WAREHOUSE", "virtual warehouse for pre-flight queries", required=False),
)
# mParticle.
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
PRODUCTION_SETTINGS = SNOWFLAKE_SETTINGS + MPARTICLE_SETTINGS


class SettingsError(ValueError):
    """The environment does not give a code location what it needs. The message says what to set."""


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
        if s.integer and not s.secret and environ.get(s.name) and not environ[s.name].isdigit()
    ]
    return missing + malformed


def secret_problems(
    secrets: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One line per registry secret (variable name -> what names it) that is not set."""
    environ = os.environ if environ is None else environ
    return [
        f"{name} is not set: a secret the registry names ({used_by})"
        for name, used_by in secrets.items()
        if not environ.get(name)
    ]


def production_problems(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
) -> list[str]:
    """Every problem of the production code location's environment: missing or malformed
    settings, URLs that would send the client secret in clear text, and registry secrets (variable
    name -> what names it) that are not set."""
    environ = os.environ if environ is None else environ
    return [
        *settings_problems(PRODUCTION_SETTINGS, environ),
        *url_setting_problems(environ),
        *secret_problems(secrets or {}, environ),
    ]


def refusal(location: str, problems: list[str], fix: str) -> str:
    """The one message a code location refuses to run with: every problem, then the fix."""
    lines = "\n".join(f"  {p}" for p in problems)
    return (
        f"{location} cannot run: {len(problems)} setting(s) missing or malformed (values are "
        f"never shown):\n{lines}\n{fix}"
    )


def production_refusal(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
) -> str | None:
    """The production code location's refusal for ``environ``, or None when nothing is missing."""
    problems = production_problems(environ, secrets)
    if not problems:
        return None
    return refusal(
        PRODUCTION_CODE_LOCATION,
        problems,
        "Set them in the environment of the code server and of its runs (docs/configuration.md), "
        "then reload the code location. To try the project without credentials, run the embedded "
        f"default instead ({LOCAL_CODE_LOCATION}): `python3 dev.py demo` or `python3 dev.py ui`.",
    )


def setting_value(setting: Setting, environ: Mapping[str, str]) -> str | None:
    return environ.get(setting.name) or setting.default


class RefusingResource(dg.ConfigurableResource):
    """Bound in place of a resource whose settings were not usable when the code location loaded.

    A run refuses when its resources are set up, with :meth:`problem`: one message naming every
    missing or malformed setting and secret. Outside a run (a sensor's tick) setting it up succeeds,
    so that the sensor can skip its tick with the same message (:func:`settings_problem`); using it
    there refuses too.
    """

    resource_name: str = Field(description="the resource key this stands in for")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="the secrets the code location's registries name: variable -> what names it",
    )

    def problem(self) -> str:
        """The message this resource refuses with (what the environment lacks now)."""
        raise NotImplementedError

    def _refuse(self) -> NoReturn:
        raise SettingsError(self.problem())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is not None:
            self._refuse()

    # What the real resources offer, refused with the same message.
    def get_client(self) -> NoReturn:
        self._refuse()

    def open_client(self) -> NoReturn:
        self._refuse()

    def get_connection(self) -> NoReturn:
        self._refuse()


class SettingsMissing(RefusingResource):
    """The production code location's stand-in while its settings or secrets are incomplete."""

    def problem(self) -> str:
        return production_refusal(os.environ, self.secrets) or (
            f"{PRODUCTION_CODE_LOCATION} cannot run: its settings were incomplete when it loaded, "
            "and are complete now; reload the code location."
        )


def settings_problem(*resources: object) -> str | None:
    """Why the bound ``resources`` cannot run, or None when they can.

    For the runs sensor: with its resources in hand, it skips the tick with this message (the one a
    run refuses with) instead of failing every tick."""
    for resource in resources:
        if isinstance(resource, RefusingResource):
            return resource.problem()
    return None


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
    """The production Snowflake resource, settings bound with ``dagster.EnvVar``.

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
    """The production mParticle resource, settings bound with ``dagster.EnvVar``."""
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


def production_resources(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The production code location's resources: the real Snowflake and mParticle, bound through
    ``dagster.EnvVar``, when ``environ`` holds every setting and every registry secret in
    ``secrets`` (variable name -> what names it); :class:`SettingsMissing` for each key otherwise.
    Never raises: a code location always loads."""
    environ = os.environ if environ is None else environ
    secrets = dict(secrets or {})
    if production_problems(environ, secrets):
        return {key: SettingsMissing(resource_name=key, secrets=secrets) for key in RESOURCE_KEYS}
    return {"snowflake": snowflake_resource(environ), "mparticle": mparticle_resource(environ)}
