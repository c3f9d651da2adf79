"""A pipeline's runs: trigger, status, the run listing and one run."""

from typing import Any

from starlette.routing import Route

from wsync_dagster.emulator.routes.common import WS_BASE, Call, DropConnection, api


def trigger(call: Call) -> Any:
    """Create an on-demand run; the drop-trigger-response fault closes the connection after."""
    result = call.backend.runs.trigger(call.params["resource_id"])
    if call.backend.admin.take_dropped_trigger():
        raise DropConnection
    return result


def status(call: Call) -> Any:
    return call.backend.runs.status(call.params["resource_id"])


def list_runs(call: Call) -> Any:
    return call.backend.runs.list_runs(call.params["resource_id"], call.query)


def get_run(call: Call) -> Any:
    return call.backend.runs.get_run(call.params["resource_id"], call.params["run_id"])


_PIPELINE = WS_BASE + "/pipelines/{resource_id}"

ROUTES = [
    Route(_PIPELINE, api(trigger), methods=["POST"]),
    Route(_PIPELINE + "/trigger", api(trigger), methods=["POST"]),
    Route(_PIPELINE + "/status", api(status), methods=["GET"]),
    # The run listing checks its own query parameters (``RUN_QUERY_PARAMS``).
    Route(_PIPELINE + "/status/runs", api(list_runs, query=None), methods=["GET"]),
    Route(_PIPELINE + "/status/runs/{run_id}", api(get_run), methods=["GET"]),
]
