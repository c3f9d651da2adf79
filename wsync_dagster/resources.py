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
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource
from pydantic import Field

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
TARGET_SETTINGS: dict[Target, tuple[Setting, ...]] = {
    Target.MPARTICLE: SNOWFLAKE_SETTINGS,
    Target.LOCAL: LOCAL_SNOWFLAKE_SETTINGS,
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


def missing_settings(target: Target, environ: Mapping[str, str] | None = None) -> list[Setting]:
    environ = os.environ if environ is None else environ
    return [s for s in TARGET_SETTINGS[target] if s.required and not environ.get(s.name)]


def require_settings(target: Target, environ: Mapping[str, str] | None = None) -> None:
    """Raise one SettingsError naming every required variable of ``target`` that is not set."""
    if missing := missing_settings(target, environ):
        lines = "\n".join(f"  {s.name}: {s.meaning}" for s in missing)
        hint = (
            "Start the local stack with `python3 dev.py demo` or `python3 dev.py ui`, which set them."
            if target is Target.LOCAL
            else f"Set them, or use {TARGET_VAR}=local for the embedded default."
        )
        raise SettingsError(
            f"{TARGET_VAR}={target.value} needs {len(missing)} setting(s) that are not set:\n"
            f"{lines}\n{hint}"
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
    """The Snowflake resource for ``target``; call :func:`require_settings` first."""
    environ = os.environ if environ is None else environ
    if target is Target.LOCAL:
        from wsync_dagster.local.snowflake import LOCAL_ACCOUNT, LOCAL_PASSWORD, LOCAL_USER

        host, port = (setting_value(s, environ) for s in LOCAL_SNOWFLAKE_SETTINGS)
        if not (port or "").isdigit():
            raise SettingsError(f"WSYNC_LOCAL_SNOWFLAKE_PORT={port!r} is not a port number.")
        connect_args: dict[str, Any] = {
            "host": host,
            "port": int(port or 0),
            "protocol": "http",
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        }
        return SnowflakeResource(
            account=LOCAL_ACCOUNT,
            user=LOCAL_USER,
            password=LOCAL_PASSWORD,
            login_timeout=30,
            network_timeout=120,
            additional_snowflake_connection_args=connect_args,
        )
    return SnowflakeResource(
        account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
        user=dg.EnvVar("SNOWFLAKE_USER"),
        password=dg.EnvVar("SNOWFLAKE_PASSWORD"),
        login_timeout=60,
        network_timeout=300,
        role=dg.EnvVar("SNOWFLAKE_ROLE") if environ.get("SNOWFLAKE_ROLE") else None,
        warehouse=dg.EnvVar("SNOWFLAKE_WAREHOUSE") if environ.get("SNOWFLAKE_WAREHOUSE") else None,
    )
