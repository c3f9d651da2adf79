"""The resolved resources never show a secret, and production never sends one in clear text."""

from typing import Any

import dagster as dg
import pytest
from dagster_snowflake import SnowflakeResource

from wsync_dagster.definitions import build_definitions
from wsync_dagster.local.resources import (
    LOCAL_MPARTICLE,
    emulator_mparticle,
    local_snowflake_resource,
)
from wsync_dagster.local.snowflake import LOCAL_PASSWORD
from wsync_dagster.mparticle import MASKED_SECRET
from wsync_dagster.resource_safety import MaskedSnowflakeResource
from wsync_dagster.resources import (
    MParticleResource,
    SettingsMissing,
    mparticle_resource,
    production_problems,
    production_refusal,
    snowflake_resource,
)

CLIENT_SECRET = "cs-7f3a9e-DO-NOT-LEAK"
PASSWORD = "pw-41b2c8-DO-NOT-LEAK"
REAL_ENV = {
    "SNOWFLAKE_ACCOUNT": "xy12345",
    "SNOWFLAKE_USER": "svc_wsync",
    "SNOWFLAKE_PASSWORD": PASSWORD,
    "MPARTICLE_CLIENT_ID": "client-id",
    "MPARTICLE_CLIENT_SECRET": CLIENT_SECRET,
    "MPARTICLE_WORKSPACE_ID": "5328",
}


def assert_masked(resource: object, *secrets: str) -> None:
    for shown in (repr(resource), str(resource), f"{resource}", f"{resource!r}"):
        for secret in secrets:
            assert secret not in shown, shown
        assert MASKED_SECRET in shown, shown


def test_resources_built_with_literal_secrets_mask_them() -> None:
    mparticle = MParticleResource(client_id="id", client_secret=CLIENT_SECRET, workspace_id=1)
    assert_masked(mparticle, CLIENT_SECRET)
    assert mparticle.client_secret == CLIENT_SECRET  # masked when shown, not when used
    local = emulator_mparticle("http://127.0.0.1:1", manual_clock=False)
    assert_masked(local, LOCAL_MPARTICLE.client_secret)
    snowflake = local_snowflake_resource("127.0.0.1", 1)
    assert isinstance(snowflake, SnowflakeResource)
    assert_masked(snowflake, f"password={LOCAL_PASSWORD!r}")  # a short word: match it as written
    literal = MaskedSnowflakeResource(account="xy12345", user="u", password=PASSWORD)
    assert_masked(literal, PASSWORD)
    key = MaskedSnowflakeResource(
        account="a", user="u", private_key=PASSWORD, private_key_password="k-pw-1"
    )
    assert_masked(key, PASSWORD, "k-pw-1")


def test_resources_resolved_from_env_vars_mask_the_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in REAL_ENV.items():
        monkeypatch.setenv(name, value)
    snowflake = snowflake_resource(REAL_ENV)
    mparticle = mparticle_resource(REAL_ENV)
    assert "EnvVar('SNOWFLAKE_PASSWORD')" in repr(snowflake)  # unresolved: names the variable
    resolved_snowflake = snowflake.process_config_and_initialize()
    with mparticle.process_config_and_initialize_cm() as resolved_mparticle:
        assert resolved_mparticle.client_secret == CLIENT_SECRET
        assert_masked(resolved_mparticle, CLIENT_SECRET)
    assert resolved_snowflake.password == PASSWORD
    assert_masked(resolved_snowflake, PASSWORD)


def test_the_resources_an_asset_receives_mask_the_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in REAL_ENV.items():
        monkeypatch.setenv(name, value)
    shown: dict[str, Any] = {}

    @dg.asset
    def shows(snowflake: SnowflakeResource, mparticle: MParticleResource) -> None:
        shown.update(snowflake=snowflake, mparticle=mparticle)

    defs = build_definitions(REAL_ENV)
    assert dg.materialize([shows], resources=defs.resources).success
    assert shown["mparticle"].client_secret == CLIENT_SECRET
    assert_masked(shown["snowflake"], PASSWORD)
    assert_masked(shown["mparticle"], CLIENT_SECRET)


def _mparticle(**urls: str) -> MParticleResource:
    return MParticleResource(client_id="id", client_secret=CLIENT_SECRET, workspace_id=1, **urls)


@pytest.mark.parametrize(
    ("field", "url", "expected"),
    [
        ("token_url", "http://sso.auth.mparticle.com/oauth/token", "clear text"),
        ("api_root", "http://api.mparticle.com", "clear text"),
        ("token_url", "sso.auth.mparticle.com/oauth/token", "not an absolute URL"),
        ("api_root", "api.mparticle.com:443", "not an absolute URL"),
        ("api_root", "ftp://api.mparticle.com", "not an absolute URL"),
        ("api_root", "https://", "not an absolute URL"),
        ("token_url", "http://127.0.0.1.example.com/oauth/token", "clear text"),
        ("token_url", "http://localhost.example.com/oauth/token", "clear text"),
    ],
)
def test_the_resource_refuses_urls_that_would_expose_the_secret(
    field: str, url: str, expected: str
) -> None:
    variable = {"token_url": "MPARTICLE_TOKEN_URL", "api_root": "MPARTICLE_API_ROOT"}[field]
    with pytest.raises(Exception) as raised:  # pydantic's ValidationError, as dagster raises it
        _mparticle(**{field: url})
    message = str(raised.value)
    assert expected in message and f"{field} ({variable})" in message and "https://" in message
    assert CLIENT_SECRET not in message


@pytest.mark.parametrize(
    "url",
    [
        "https://sso.auth.mparticle.com/oauth/token",
        "https://api.mparticle.com",
        "http://127.0.0.1:8080/oauth/token",
        "http://127.3.4.5",
        "http://[::1]:9000",
        "http://localhost:1234",
        "http://LOCALHOST",
    ],
)
def test_https_and_loopback_urls_are_accepted(url: str) -> None:
    resource = _mparticle(token_url=url, api_root=url)
    assert resource.token_url == resource.api_root == url


def test_an_insecure_url_bound_through_an_env_var_is_refused_when_resolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**REAL_ENV, "MPARTICLE_TOKEN_URL": "http://sso.example.com/oauth/token"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    resource = mparticle_resource(env)
    with (
        pytest.raises(Exception, match=r"token_url \(MPARTICLE_TOKEN_URL\).*clear text"),
        resource.process_config_and_initialize_cm(),
    ):
        pass


def test_the_settings_check_names_the_variable_and_the_fix() -> None:
    env = {
        **REAL_ENV,
        "MPARTICLE_TOKEN_URL": "http://sso.auth.mparticle.com/oauth/token",
        "MPARTICLE_API_ROOT": "api.mparticle.com",
    }
    found = production_problems(env)
    assert len(found) == 2, found
    assert found[0].startswith("MPARTICLE_API_ROOT='api.mparticle.com' is not an absolute URL")
    assert found[1].startswith("MPARTICLE_TOKEN_URL='http://sso.auth.mparticle.com/oauth/token'")
    assert "clear text" in found[1] and "https://" in found[1]
    refusal = production_refusal(env)
    assert refusal is not None and found[1] in refusal and CLIENT_SECRET not in refusal
    assert isinstance(build_definitions(env).resources["mparticle"], SettingsMissing)
    loopback = {**REAL_ENV, "MPARTICLE_TOKEN_URL": "http://127.0.0.1:9/oauth/token"}
    assert production_problems(loopback) == []
