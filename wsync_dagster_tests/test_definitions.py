"""The two code locations: what they load, bind and refuse, from any environment."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from dagster_snowflake import SnowflakeResource

import wsync_dagster.defs
from wsync_dagster.code_location import build_definitions, registry_secrets, sync_components
from wsync_dagster.component import WarehouseSyncComponent
from wsync_dagster.local.definitions import build_local_definitions
from wsync_dagster.local.resources import LocalMParticleResource, LocalSettingsMissing
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY, sample_components
from wsync_dagster.resources import (
    MParticleResource,
    SettingsError,
    SettingsMissing,
    settings_problem,
)
from wsync_dagster.sync.observe.drift import DRIFT_SENSOR_NAME
from wsync_dagster.sync.observe.sensor import SENSOR_NAME

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


PRODUCTION_ENVIRONMENT = {
    "SNOWFLAKE_ACCOUNT": "xy12345",
    "SNOWFLAKE_USER": "svc_wsync",
    "SNOWFLAKE_PASSWORD": "hunter2-DO-NOT-LEAK",
    "MPARTICLE_CLIENT_ID": "id",
    "MPARTICLE_CLIENT_SECRET": "s3cret-DO-NOT-LEAK",
    "MPARTICLE_WORKSPACE_ID": "5328",
}
# What the sample registry names (its connection's password_env, its syncs' feed_key_env).
SAMPLE_SECRETS = {
    "MPARTICLE_SNOWFLAKE_PASSWORD": "pw-DO-NOT-LEAK",
    "MPARTICLE_FEED_KEY_CRM": "us1-crm-DO-NOT-LEAK",
    "MPARTICLE_FEED_KEY_SUPPORT": "us1-support-DO-NOT-LEAK",
}
SETTING_NAMES = ("WSYNC_", "MPARTICLE_", "SNOWFLAKE_")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A process environment without any of the project's settings; set some with ``setenv``."""
    for name in [n for n in os.environ if n.startswith(SETTING_NAMES)]:
        monkeypatch.delenv(name)
    return {}


def _set(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@dg.asset
def needs_both(snowflake: SnowflakeResource, mparticle: MParticleResource) -> None:
    raise AssertionError("must not run")


def refusal_of_a_run(resources: dict[str, object]) -> str:
    """The message a run of an asset needing both resources refuses with, at resource setup."""
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize([needs_both], resources=resources)
    cause = raised.value.__cause__
    assert isinstance(cause, SettingsError), raised.value
    return str(cause)


def test_the_production_defs_folder_ships_no_sync(environment: dict[str, str]) -> None:
    """Nothing can write to a real workspace until a team writes its own registry."""
    assert sync_components() == []
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    assert not list(defs.resolve_all_asset_specs())
    assert not [job for job in defs.resolve_all_job_defs() if job.name != "__ASSET_JOB"]
    assert not list(defs.schedules or ())
    sensor = defs.resolve_sensor_def(SENSOR_NAME)  # over nothing, and running
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING


def test_the_commented_example_is_a_valid_registry(tmp_path: Path) -> None:
    """The production defs folder's example, uncommented, is a registry that loads."""
    example = Path(wsync_dagster.defs.__file__).parent / "example.defs.yaml"
    lines = example.read_text(encoding="utf-8").splitlines()
    start = lines.index("# type: wsync_dagster.WarehouseSyncComponent")
    text = "\n".join(line.removeprefix("#").removeprefix(" ") for line in lines[start:])
    (tmp_path / "defs.yaml").write_text(text + "\n", encoding="utf-8")
    component = WarehouseSyncComponent.from_registry_file(tmp_path / "defs.yaml")
    assert [s.name for s in component.registry.syncs] == ["customer_scores"]


def test_one_refusal_names_every_missing_setting_and_registry_secret(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown_never = {"MPARTICLE_CLIENT_SECRET": "zq-7", "MPARTICLE_FEED_KEY_SUPPORT": "zq-8"}
    _set(monkeypatch, {"SNOWFLAKE_USER": "svc_wsync", **shown_never})
    defs = build_definitions(components=sample_components())  # loading never fails
    resources = dict(defs.resources or {})
    assert all(isinstance(resources[key], SettingsMissing) for key in ("snowflake", "mparticle"))
    message = refusal_of_a_run(resources)
    for missing in (
        "SNOWFLAKE_ACCOUNT", "SNOWFLAKE_PASSWORD", "MPARTICLE_CLIENT_ID", "MPARTICLE_WORKSPACE_ID",
    ):  # fmt: skip
        assert f"\n  {missing} is not set: " in message, message
    assert (
        "MPARTICLE_SNOWFLAKE_PASSWORD is not set: a secret the registry names (password_env of "
        "connection 'wsync-snowflake')" in message
    ), message
    assert (
        "MPARTICLE_FEED_KEY_CRM is not set: a secret the registry names (feed_key_env of syncs "
        "'customer_scores', 'churn_risk_alerts', 'high_value_customers'" in message
    ), message
    assert "6 setting(s) missing or malformed" in message
    assert message.startswith("wsync_dagster.definitions cannot run")
    assert "docs/configuration.md" in message and "python3 dev.py demo" in message
    # What is set is neither listed nor shown; optional settings are not asked for.
    for name in ("SNOWFLAKE_USER", "MPARTICLE_CLIENT_SECRET", "MPARTICLE_FEED_KEY_SUPPORT"):
        assert name not in message
    assert "zq-" not in message
    assert "SNOWFLAKE_ROLE" not in message and "MPARTICLE_ORG_ID" not in message


def test_the_sensor_gets_the_same_message_and_its_resources_set_up(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a run the stand-ins set up quietly, so the runs sensor can skip its tick with the
    run's message (settings_problem) instead of failing it every 30 s."""
    _set(monkeypatch, PRODUCTION_ENVIRONMENT)
    defs = build_definitions(components=sample_components())
    resources = dict(defs.resources or {})
    with dg.build_resources(resources) as built:
        problem = settings_problem(built.snowflake, built.mparticle)
        with pytest.raises(SettingsError) as used:
            built.mparticle.open_client()
    assert problem is not None and problem == str(used.value)
    assert problem == refusal_of_a_run(resources)
    assert "3 setting(s)" in problem and "MPARTICLE_FEED_KEY_CRM is not set" in problem

    # The runs sensor itself skips its tick with that message, reading nothing.
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources=resources) as context,
    ):
        skipped = sensor(context)
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message == problem
    # So does the drift sensor.
    drift = defs.resolve_sensor_def(DRIFT_SENSOR_NAME)
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources=resources) as context,
    ):
        skipped = drift(context)
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message == problem


def test_malformed_settings_are_named_and_secret_values_never_shown(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(monkeypatch, {**PRODUCTION_ENVIRONMENT, "MPARTICLE_WORKSPACE_ID": "ws-1"})
    _set(monkeypatch, {"MPARTICLE_TOKEN_URL": "http://sso.example.com/oauth/token"})
    message = refusal_of_a_run(dict(build_definitions().resources or {}))
    assert "MPARTICLE_WORKSPACE_ID='ws-1' is not a whole number" in message
    assert "MPARTICLE_TOKEN_URL='http://sso.example.com/oauth/token' uses http://" in message
    assert "2 setting(s)" in message
    assert not [v for v in PRODUCTION_ENVIRONMENT.values() if "LEAK" in v and v in message]


def test_complete_settings_bind_the_real_resources_through_env_vars(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(monkeypatch, {**PRODUCTION_ENVIRONMENT, **SAMPLE_SECRETS})
    defs = build_definitions(components=sample_components())
    mparticle = defs.resources["mparticle"]
    assert isinstance(mparticle, MParticleResource)
    assert "s3cret" not in repr(mparticle)
    assert mparticle.client_secret == dg.EnvVar("MPARTICLE_CLIENT_SECRET")
    snowflake = defs.resources["snowflake"]
    assert isinstance(snowflake, SnowflakeResource)
    assert "hunter2" not in repr(snowflake)
    assert snowflake.password == dg.EnvVar("SNOWFLAKE_PASSWORD")
    with dg.build_resources(dict(defs.resources)) as built:
        assert settings_problem(built.snowflake, built.mparticle) is None


def test_wsync_target_is_gone(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The two code locations are the targets: the old variable changes nothing."""
    _set(monkeypatch, {**PRODUCTION_ENVIRONMENT, "WSYNC_TARGET": "local"})
    assert isinstance(build_definitions().resources["mparticle"], MParticleResource)
    local = build_local_definitions({"WSYNC_TARGET": "mparticle"}).resources["mparticle"]
    assert isinstance(local, LocalSettingsMissing)


def test_registry_secrets_say_what_names_each(environment: dict[str, str]) -> None:
    secrets = registry_secrets(c.registry for c in sample_components())
    assert set(secrets) == set(SAMPLE_SECRETS)
    assert secrets["MPARTICLE_SNOWFLAKE_PASSWORD"] == "password_env of connection 'wsync-snowflake'"
    assert secrets["MPARTICLE_FEED_KEY_SUPPORT"].startswith(
        "feed_key_env of syncs 'ticket_activity', 'urgent_ticket_contacts'"
    )


LOCAL_ENVIRONMENT = {
    "WSYNC_LOCAL_SNOWFLAKE_PORT": "4000",
    "WSYNC_LOCAL_EMULATOR_URL": "http://127.0.0.1:4001/",
    "WSYNC_LOCAL_EMULATOR_CLOCK": "manual",
    **SAMPLE_SECRETS,
}


def test_the_local_location_without_its_launcher_says_how_to_start_it(
    environment: dict[str, str],
) -> None:
    defs = build_local_definitions({})  # loads: `dev.py test` validates it from a bare environment
    dg.Definitions.validate_loadable(defs)
    resources = dict(defs.resources or {})
    assert isinstance(resources["mparticle"], LocalSettingsMissing)
    message = refusal_of_a_run(resources)
    assert message.startswith("wsync_dagster.local.definitions cannot run")
    assert "WSYNC_LOCAL_SNOWFLAKE_PORT is not set" in message
    assert "WSYNC_LOCAL_EMULATOR_URL is not set" in message
    assert "`python3 dev.py demo` or `python3 dev.py ui`" in message
    # The sample's assets are there, as the UI shows them, with their source tables.
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert {"mparticle/customer_scores", "snowflake/wsync_demo/crm/customer_scores"} <= keys


def test_the_local_location_names_a_malformed_setting(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(monkeypatch, {**LOCAL_ENVIRONMENT, "WSYNC_LOCAL_SNOWFLAKE_PORT": "http"})
    _set(monkeypatch, {"WSYNC_LOCAL_EMULATOR_CLOCK": "fast"})
    message = refusal_of_a_run(dict(build_local_definitions().resources or {}))
    assert "WSYNC_LOCAL_SNOWFLAKE_PORT='http' is not a whole number" in message
    assert "WSYNC_LOCAL_EMULATOR_CLOCK='fast' is not a clock: use real or manual" in message


def test_the_local_location_binds_the_stand_ins(environment: dict[str, str]) -> None:
    defs = build_local_definitions(LOCAL_ENVIRONMENT)
    mparticle = defs.resources["mparticle"]
    assert isinstance(mparticle, LocalMParticleResource)
    assert mparticle.manual_clock and mparticle.api_root == "http://127.0.0.1:4001"


def test_the_sample_lives_in_the_local_defs_folder() -> None:
    (component,) = sample_components()
    assert component.yaml_path == SAMPLE_REGISTRY
    assert SAMPLE_REGISTRY.parts[-5:] == (
        "wsync_dagster",
        "local",
        "defs",
        "warehouse_sync",
        "defs.yaml",
    )
