"""The Profile API: one profile by MPID, or resolved from one identity."""

from typing import Any

from starlette.routing import Route

from wsync_dagster.emulator.backend.profile_api import parse_fields
from wsync_dagster.emulator.routes.common import PROFILE_BASE, Call, api


def _check_scope(call: Call) -> None:
    params = call.params
    call.backend.profiles.check_profile_scope(
        params["org_id"], params["account_id"], params["workspace_id"]
    )


def profile(call: Call) -> Any:
    _check_scope(call)
    return call.backend.profiles.profile(
        call.params["mpid"], parse_fields(call.query.get("fields"))
    )


def resolve(call: Call) -> Any:
    _check_scope(call)
    return call.backend.profiles.resolve(call.body, parse_fields(call.query.get("fields")))


_FIELDS = frozenset({"fields"})

ROUTES = [
    Route(
        PROFILE_BASE + "/resolve/{org_id}/{account_id}/{workspace_id}",
        api(resolve, body=True, query=_FIELDS, workspace=False),
        methods=["POST"],
    ),
    Route(
        PROFILE_BASE + "/{org_id}/{account_id}/{workspace_id}/{mpid}",
        api(profile, body=None, query=_FIELDS, workspace=False),
        methods=["GET", "POST"],
    ),
]
