"""A real sync's failure, as the run-failure webhook (wsync_dagster/alerting.py) reports it.

The emulator fails mParticle's run of a window; the Dagster run that waited for it fails with the
run's reason; the sensor's next tick POSTs that text to a loopback webhook.
"""

import json
from typing import Any

import dagster as dg
from pytest_httpserver import HTTPServer

from wsync_dagster.alerting import RESOURCE_KEY, AlertWebhook, build_failure_webhook_sensor
from wsync_dagster_tests.sync.conftest import failure_message, materialize

REASON = "Snowflake role MPARTICLE_SYNC lost SELECT on WSYNC_DEMO.SUPPORT.TICKET_ACTIVITY"


def test_a_failed_mparticle_run_reaches_the_webhook_with_its_reason(
    registry, resources, control, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook/secret", method="POST").respond_with_data("ok")
    webhook = AlertWebhook(url=httpserver.url_for("/hook/secret"))
    sensor = build_failure_webhook_sensor()
    first_key = registry.sync("ticket_activity").schedule.start.strftime("%Y-%m-%d-%H:%M")
    control.fail_next_run(REASON, "wsync-ticket-activity")

    with dg.DagsterInstance.ephemeral() as instance:

        def tick(cursor: str | None) -> Any:  # SensorExecutionData
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={RESOURCE_KEY: webhook}
            ) as context:
                return sensor.evaluate_tick(context)

        cursor = tick(None).cursor
        result = materialize(registry, resources, "ticket_activity", [first_key], instance)
        assert not result.success
        tick(cursor)

    [(request, _)] = httpserver.log
    body = json.loads(request.get_data())
    assert body["run_id"] == result.run_id and body["partition"] == first_key
    assert body["assets"] == ["mparticle/ticket_activity"]
    [failure] = body["failures"]
    assert failure["text"].startswith("1 of 1 partition(s) of 'ticket_activity' did not sync")
    assert failure["text"] in failure_message(result)
    assert f"{first_key}: mParticle run" in failure["text"] and REASON in failure["text"]
