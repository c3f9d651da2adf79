import os
import subprocess
import sys
import textwrap

import dagster as dg
import pytest
from dagster_snowflake import SnowflakeResource

from wsync_dagster.code_location import build_definitions
from wsync_dagster.local.definitions import build_local_definitions
from wsync_dagster.local.resources import LocalMParticleResource
from wsync_dagster.resources import MParticleResource, SettingsError

# Runs in a fresh interpreter with an empty environment and every socket operation forbidden.
_IMPORT_OFFLINE = textwrap.dedent(
    """
    import socket, sys

    def forbidden(*args, **kwargs):
        raise AssertionError(f"network access while loading definitions: {args!r}")

    socket.socket.connect = forbidden
    socket.socket.connect_ex = forbidden
    socket.create_connection = forbidden
    socket.getaddrinfo = forbidden

    import dagster as dg
    from wsync_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"fakesnow", "wsync_dagster"})
    stand_ins = ("wsync_dagster.emulator", "wsync_dagster.local", "fakesnow")
    assert not any(m.startswith(stand_ins) for m in loaded), loaded
    print("OK")
    """
)


def test_definitions_load_offline_with_an_empty_environment() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_OFFLINE],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")


REAL_ENVIRONMENT = {
    "WSYNC_TARGET": "mparticle",
    "SNOWFLAKE_ACCOUNT": "xy12345",
    "SNOWFLAKE_USER": "svc_wsync",
    "SNOWFLAKE_PASSWORD": "hunter2",
    "MPARTICLE_CLIENT_ID": "id",
    "MPARTICLE_CLIENT_SECRET": "s3cret",
    "MPARTICLE_WORKSPACE_ID": "5328",
}


def test_real_target_names_every_missing_setting() -> None:
    with pytest.raises(SettingsError) as raised:
        build_definitions({"WSYNC_TARGET": "mparticle", "SNOWFLAKE_USER": "svc_wsync"})
    message = str(raised.value)
    for missing in (
        "SNOWFLAKE_ACCOUNT", "SNOWFLAKE_PASSWORD", "MPARTICLE_CLIENT_ID", "MPARTICLE_CLIENT_SECRET",
        "MPARTICLE_WORKSPACE_ID",
    ):  # fmt: skip
        assert f"{missing} is not set" in message
    assert "needs 5 more setting(s)" in message
    assert "SNOWFLAKE_USER" not in message  # it is set
    assert "SNOWFLAKE_ROLE" not in message and "MPARTICLE_ORG_ID" not in message  # optional


def test_malformed_ids_are_named() -> None:
    with pytest.raises(SettingsError, match=r"MPARTICLE_WORKSPACE_ID='ws-1' is not a whole number"):
        build_definitions({**REAL_ENVIRONMENT, "MPARTICLE_WORKSPACE_ID": "ws-1"})


def test_local_target_needs_the_launchers_settings() -> None:
    with pytest.raises(SettingsError, match="needs 2 more setting") as raised:
        build_local_definitions({"WSYNC_TARGET": "local"})
    assert "WSYNC_LOCAL_SNOWFLAKE_PORT is not set" in str(raised.value)
    assert "WSYNC_LOCAL_EMULATOR_URL is not set" in str(raised.value)
    with pytest.raises(
        SettingsError, match=r"WSYNC_LOCAL_SNOWFLAKE_PORT=.http. is not a whole number"
    ):
        build_local_definitions({"WSYNC_TARGET": "local", "WSYNC_LOCAL_SNOWFLAKE_PORT": "http"})


def test_the_production_location_sends_the_local_target_to_the_local_location() -> None:
    with pytest.raises(SettingsError) as raised:
        build_definitions({"WSYNC_TARGET": "local", "WSYNC_LOCAL_SNOWFLAKE_PORT": "4000"})
    message = str(raised.value)
    assert "wsync_dagster.local.definitions" in message
    assert "python3 dev.py demo" in message and "python3 dev.py ui" in message


def test_the_local_location_refuses_the_real_target() -> None:
    with pytest.raises(SettingsError, match="only serves WSYNC_TARGET=local"):
        build_local_definitions(REAL_ENVIRONMENT)


def test_the_local_location_binds_the_stand_ins() -> None:
    defs = build_local_definitions(
        {
            "WSYNC_TARGET": "local",
            "WSYNC_LOCAL_SNOWFLAKE_PORT": "4000",
            "WSYNC_LOCAL_EMULATOR_URL": "http://127.0.0.1:4001/",
            "WSYNC_LOCAL_EMULATOR_CLOCK": "manual",
        }
    )
    mparticle = defs.resources["mparticle"]
    assert isinstance(mparticle, LocalMParticleResource)
    assert mparticle.manual_clock and mparticle.api_root == "http://127.0.0.1:4001"


def test_an_unknown_target_is_rejected() -> None:
    with pytest.raises(
        SettingsError, match="'staging' is not a target; set it to local or mparticle"
    ):
        build_definitions({"WSYNC_TARGET": "staging"})


def test_real_target_keeps_secrets_in_env_vars() -> None:
    defs = build_definitions(REAL_ENVIRONMENT)
    mparticle = defs.resources["mparticle"]
    assert isinstance(mparticle, MParticleResource)
    assert "s3cret" not in repr(mparticle)
    assert mparticle.client_secret == dg.EnvVar("MPARTICLE_CLIENT_SECRET")
    snowflake = defs.resources["snowflake"]
    assert isinstance(snowflake, SnowflakeResource)
    assert "hunter2" not in repr(snowflake)
    assert snowflake.password == dg.EnvVar("SNOWFLAKE_PASSWORD")


def test_without_a_target_nothing_runs_and_the_error_says_how_to_choose() -> None:
    @dg.asset
    def needs_snowflake(snowflake: SnowflakeResource) -> None:
        raise AssertionError("must not run")

    resources = build_definitions({}).resources
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize([needs_snowflake], resources=resources)
    cause = raised.value.__cause__
    assert isinstance(cause, SettingsError)
    assert "WSYNC_TARGET is not set" in str(cause) and "WSYNC_TARGET=local" in str(cause)
