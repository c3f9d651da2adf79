"""The Profile API over the profiles runs produce."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster_tests.conftest import CLOCK_START
from wsync_dagster_tests.emulator.helpers import Api, documented, error_messages, instant

ALL = "device_identities,user_identities,user_attributes,audience_memberships"


@pytest.fixture
def synced(api: Api, control: EmulatorControl, events_pipeline: Callable[..., Any]) -> Api:
    events_pipeline(schedule_start_time=instant(CLOCK_START - timedelta(hours=3)))
    control.settle()
    return api


def profile_path(api: Api, mpid: object, fields: str = ALL) -> str:
    config = api.config
    return f"/userprofile/v1/{config.org_id}/{config.account_id}/{config.workspace_id}/{mpid}?fields={fields}"


def resolve_path(api: Api, fields: str = ALL) -> str:
    config = api.config
    return f"/userprofile/v1/resolve/{config.org_id}/{config.account_id}/{config.workspace_id}?fields={fields}"


def resolve_body(identity_type: str, value: str) -> dict[str, Any]:
    return {
        **documented("profile_resolve_request"),
        "identity": {"type": identity_type, "value": value},
    }


def test_profile_by_mpid_has_the_documented_shape(synced: Api) -> None:
    found = synced.ok("POST", resolve_path(synced), resolve_body("customer_id", "c1"))
    assert list(found) == list(documented("profile"))
    for method in ("GET", "POST"):
        assert synced.ok(method, profile_path(synced, found["mpid"])) == found
    assert found["user_attributes"] == {"SCORE": "99.0", "ACTIVE": "true", "TAGS": ["c"]}
    assert found["audience_memberships"] == [] and found["is_opted_out"] is False
    assert found["last_stored_timestamp_ms"] >= found["created_timestamp_ms"]


def test_fields_filter_the_output(synced: Api) -> None:
    mpid = synced.ok(
        "POST", resolve_path(synced, "user_identities"), resolve_body("email", "c2@example.com")
    )["mpid"]
    only = synced.ok("GET", profile_path(synced, mpid, "user_identities"))
    assert set(only) == {
        "mpid",
        "created_timestamp_ms",
        "last_stored_timestamp_ms",
        "is_opted_out",
        "limit_ad_tracking",
        "user_identities",
    }
    both = synced.ok("GET", profile_path(synced, mpid, "user_attributes,attribution"))
    assert {"user_attributes", "account_userattributes", "attribution"} <= set(both)
    assert "user_identities" not in both


@pytest.mark.parametrize("fields", ["", "nope", "user_identities,nope"])
def test_fields_are_required_and_checked(synced: Api, fields: str) -> None:
    response = synced.get(profile_path(synced, 1, fields))
    assert response.status_code == 400
    assert "fields" in error_messages(response)[0].lower()
    assert synced.get(profile_path(synced, 1).split("?")[0]).status_code == 400


def test_unknown_profiles_are_404(synced: Api) -> None:
    assert error_messages(synced.get(profile_path(synced, 12345))) == [
        "No profile with mpid 12345."
    ]
    assert synced.get(profile_path(synced, "abc")).status_code == 400
    response = synced.post(resolve_path(synced), resolve_body("customer_id", "nobody"))
    assert response.status_code == 404
    # An e-mail that moved to another value no longer resolves.
    assert (
        synced.post(resolve_path(synced), resolve_body("email", "c1@example.com")).status_code
        == 404
    )
    config = synced.config
    other_org = f"/userprofile/v1/1/{config.account_id}/{config.workspace_id}/1?fields={ALL}"
    assert synced.get(other_org).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"identity": {"type": "customer_id", "value": "c1"}},
        {"environment_type": "staging", "identity": {"type": "customer_id", "value": "c1"}},
        {"environment_type": "production", "identity": {"type": "ios_idfv", "value": "c1"}},
        {"environment_type": "production", "identity": {"type": "customer_id"}},
        {"environment_type": "production", "identity": {"type": "customer_id", "value": 1}},
        {**documented("profile_resolve_request"), "extra": 1},
        ["not", "an", "object"],
    ],
)
def test_resolve_validates_its_body(synced: Api, body: Any) -> None:
    assert synced.post(resolve_path(synced), body).status_code == 400


def test_profiles_listing_matches_the_profile_api(synced: Api, control: EmulatorControl) -> None:
    listed = control.profiles()
    assert len(listed) == 5
    for profile in listed:
        assert (
            synced.ok("GET", profile_path(synced, profile["mpid"], ALL + ",attribution")) == profile
        )
