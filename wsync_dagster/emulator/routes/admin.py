"""The admin API under ``/_emulator/`` (documented in :mod:`wsync_dagster.emulator.app`)."""

from typing import Any

from starlette.routing import Route

from wsync_dagster.emulator.clock import parse_iso_instant
from wsync_dagster.emulator.errors import bad_request
from wsync_dagster.emulator.routes.common import ADMIN_BASE, Call, admin


def config(call: Call) -> Any:
    c = call.backend.config
    return {
        "workspace_id": c.workspace_id,
        "org_id": c.org_id,
        "account_id": c.account_id,
        "client_id": c.client_id,
        "clock": c.clock,
        "run_seconds": c.run_seconds,
        "record_limits": dict(c.record_limits),
        "max_model_columns": c.max_model_columns,
        "max_active_pipelines": c.max_active_pipelines,
    }


def get_clock(call: Call) -> Any:
    return call.backend.admin.clock_json()


def set_clock(call: Call) -> Any:
    """Move the clock to ``now`` or by ``advance_seconds``, settling on the way unless told not to."""
    body = call.body
    if not isinstance(body, dict) or len(set(body) & {"now", "advance_seconds"}) != 1:
        raise bad_request('Send {"now": "<ISO instant>"} or {"advance_seconds": N}.')
    if unknown := sorted(set(body) - {"now", "advance_seconds", "settle"}):
        raise bad_request(f"Unknown field(s): {', '.join(unknown)}.")
    settle = body.get("settle", True)
    if not isinstance(settle, bool):
        raise bad_request("settle must be true or false.")
    if "now" in body:
        try:
            target = parse_iso_instant(str(body["now"]))
        except ValueError:
            raise bad_request("now must be an ISO-8601 instant with a zone.") from None
        executed = call.scheduler.move_clock(target, settle)
    else:
        seconds = body["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise bad_request("advance_seconds must be a number of seconds >= 0.")
        # Measured from the clock when this move's turn comes, so concurrent moves add up.
        executed = call.scheduler.advance_clock(seconds, settle)
    return {**call.backend.admin.clock_json(), "runs_executed": executed}


def settle(call: Call) -> Any:
    executed = call.scheduler.settle()
    return {**call.backend.admin.clock_json(), "runs_executed": executed}


def reset(call: Call) -> Any:
    call.backend.admin.reset()
    return call.backend.admin.clock_json()


def get_faults(call: Call) -> Any:
    return call.backend.admin.faults_json()


def set_faults(call: Call) -> Any:
    return call.backend.admin.update_faults(call.body)


def clear_faults(call: Call) -> Any:
    return call.backend.admin.clear_faults()


def get_requests(call: Call) -> Any:
    return call.backend.admin.request_log()


def clear_requests(call: Call) -> Any:
    call.backend.admin.clear_request_log()


def get_activity(call: Call) -> Any:
    return call.backend.admin.activity_json()


def get_profiles(call: Call) -> Any:
    return call.backend.admin.all_profiles()


def get_limits(call: Call) -> Any:
    return call.backend.admin.limits_json()


def set_limits(call: Call) -> Any:
    return call.backend.admin.set_record_limits(call.body)


ROUTES = [
    Route(ADMIN_BASE + "/config", admin(config), methods=["GET"]),
    Route(ADMIN_BASE + "/clock", admin(get_clock), methods=["GET"]),
    Route(ADMIN_BASE + "/clock", admin(set_clock, body=True), methods=["POST"]),
    Route(ADMIN_BASE + "/settle", admin(settle), methods=["POST"]),
    Route(ADMIN_BASE + "/reset", admin(reset), methods=["POST"]),
    Route(ADMIN_BASE + "/faults", admin(get_faults), methods=["GET"]),
    Route(ADMIN_BASE + "/faults", admin(set_faults, body=True), methods=["POST"]),
    Route(ADMIN_BASE + "/faults", admin(clear_faults), methods=["DELETE"]),
    Route(ADMIN_BASE + "/requests", admin(get_requests), methods=["GET"]),
    Route(ADMIN_BASE + "/requests", admin(clear_requests), methods=["DELETE"]),
    Route(ADMIN_BASE + "/profiles", admin(get_profiles), methods=["GET"]),
    Route(ADMIN_BASE + "/activity", admin(get_activity), methods=["GET"]),
    Route(ADMIN_BASE + "/limits", admin(get_limits), methods=["GET"]),
    Route(ADMIN_BASE + "/limits", admin(set_limits, body=True), methods=["POST"]),
]
