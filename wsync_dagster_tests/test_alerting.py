"""The optional run-failure webhook (wsync_dagster/alerting.py), against a loopback HTTP server.

Failed runs are real Dagster runs on an ephemeral instance, and the sensor is evaluated the way the
daemon evaluates it (``evaluate_tick``): a first tick sets the cursor, the run fails, the next tick
sends its alert. Nothing sleeps: the webhook's waits between attempts are recorded instead.
"""

import json
import socket
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from wsync_dagster.alerting import (
    RESOURCE_KEY,
    SENSOR_NAME,
    WEBHOOK_FORMAT_VAR,
    WEBHOOK_URL_VAR,
    WEBSERVER_URL_VAR,
    AlertDeliveryError,
    AlertSettingsError,
    AlertWebhook,
    alert_definitions,
    build_failure_webhook_sensor,
)
from wsync_dagster.code_location import build_definitions

SECRET_PATH = "/services/T0001/B0002/s3cr3t-t0k3n"
DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-01")
FAILURE_TEXT = (
    "Window 2026-11-27 of sync 'customer_scores' holds 24,000,001 rows; the daily limit is "
    "24,000,000. Split the model or raise limits.records_per_request; nothing was sent to mParticle."
)


class RecordedWaits(AlertWebhook):
    """The webhook with its waits recorded instead of slept."""

    def sleep(self, seconds: float) -> None:
        WAITS.append(seconds)


WAITS: list[float] = []


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    WAITS.clear()
    yield
    WAITS.clear()


@dg.asset(partitions_def=DAILY, key=["mparticle", "customer_scores"])
def refused_sync() -> None:
    raise dg.Failure(description=FAILURE_TEXT, allow_retries=False)


@dg.asset(
    key=["mparticle", "ticket_activity"],
    check_specs=[
        dg.AssetCheckSpec(
            "preflight_count_matches_records_extracted",
            asset=["mparticle", "ticket_activity"],
            blocking=True,
        )
    ],
)
def mismatched_sync() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="preflight_count_matches_records_extracted",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
            )
        ]
    )


JOBS = [
    dg.define_asset_job("wsync_daily_job", selection=[refused_sync]),
    dg.define_asset_job("wsync_on_demand_job", selection=[mismatched_sync]),
]
DEFS = dg.Definitions(assets=[refused_sync, mismatched_sync], jobs=JOBS)


def _webhook(url: str, **fields: Any) -> AlertWebhook:
    return RecordedWaits(url=url, **fields)


def _tick(
    instance: dg.DagsterInstance, webhook: AlertWebhook, cursor: str | None
) -> Any:  # SensorExecutionData
    sensor = build_failure_webhook_sensor()
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={RESOURCE_KEY: webhook}
    ) as context:
        return sensor.evaluate_tick(context)


def _fail(instance: dg.DagsterInstance, job: str, partition: str | None = None) -> str:
    result = DEFS.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False
    )
    assert not result.success
    return result.run_id


def _alert_after_failure(
    webhook: AlertWebhook, job: str, partition: str | None = None
) -> tuple[str, Any]:
    """Run ``job`` to failure between two ticks; the run id and the second tick's outcome."""
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(instance, webhook, None)
        assert first.skip_message and "Initiating" in first.skip_message
        run_id = _fail(instance, job, partition)
        return run_id, _tick(instance, webhook, first.cursor)


def _bodies(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def test_a_failed_sync_run_posts_the_failure_text_job_run_and_partition(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("ok")
    webhook = _webhook(
        httpserver.url_for(SECRET_PATH), webserver_url="https://dagster.example.com/"
    )
    run_id, tick = _alert_after_failure(webhook, "wsync_daily_job", "2026-11-27")

    [body] = _bodies(httpserver)
    assert body["event"] == "run_failure"
    assert body["job"] == "wsync_daily_job" and body["run_id"] == run_id
    assert body["partition"] == "2026-11-27"
    assert body["assets"] == ["mparticle/customer_scores"]
    assert body["failures"] == [{"step": "mparticle__customer_scores", "text": FAILURE_TEXT}]
    assert body["run_url"] == f"https://dagster.example.com/runs/{run_id}"
    assert FAILURE_TEXT in body["text"] and "wsync_daily_job" in body["text"]
    assert (
        tick.skip_message == f"alert for run {run_id} sent to http://localhost:{httpserver.port}/…"
    )
    assert WAITS == []


def test_a_failed_blocking_parity_check_reaches_the_alert_by_name(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("ok")
    _alert_after_failure(_webhook(httpserver.url_for(SECRET_PATH)), "wsync_on_demand_job")

    [body] = _bodies(httpserver)
    [failure] = body["failures"]
    assert failure["text"].startswith("1 blocking asset check failed with ERROR severity")
    assert "mparticle/ticket_activity: preflight_count_matches_records_extracted" in failure["text"]
    assert body["partition"] is None and body["run_url"] is None


def test_slack_format_sends_only_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("ok")
    webhook = _webhook(httpserver.url_for(SECRET_PATH), format="slack")
    _alert_after_failure(webhook, "wsync_daily_job", "2026-11-27")

    [body] = _bodies(httpserver)
    assert list(body) == ["text"] and FAILURE_TEXT in body["text"]


def test_throttling_and_server_errors_are_retried_with_bounded_waits(
    httpserver: HTTPServer,
) -> None:
    answers = iter(
        [
            Response("slow down", status=429, headers={"Retry-After": "120"}),
            Response("oops", status=503),
            Response("ok", status=200),
        ]
    )

    def handler(request: Request) -> Response:
        return next(answers)

    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_handler(handler)
    webhook = _webhook(httpserver.url_for(SECRET_PATH))
    webhook.post({"text": "hello"})
    assert len(httpserver.log) == 3
    assert WAITS == [10.0, 2.0]  # Retry-After capped at 10 s; then the doubling back-off


def test_a_refusal_is_not_retried_and_names_the_host_not_the_secret(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data(
        f"no_service for {SECRET_PATH}", status=404
    )
    webhook = _webhook(httpserver.url_for(SECRET_PATH))
    with pytest.raises(AlertDeliveryError) as raised:
        webhook.post({"text": "hello"})
    message = str(raised.value)
    assert "HTTP 404: no_service" in message and f"localhost:{httpserver.port}" in message
    assert "s3cr3t" not in message and len(httpserver.log) == 1 and WAITS == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_webhook_fails_the_tick_without_showing_the_secret() -> None:
    webhook = _webhook(f"http://127.0.0.1:{_closed_port()}{SECRET_PATH}")
    run_id, tick = _alert_after_failure(webhook, "wsync_daily_job", "2026-11-27")

    [reaction] = tick.dagster_run_reactions
    assert reaction.dagster_run.run_id == run_id and reaction.error is not None
    shown = reaction.error.to_string()
    assert f"Run {run_id} (wsync_daily_job) failed, and its alert was not sent" in shown
    assert "did not take the alert after 3 attempt(s)" in shown and "ConnectionError" in shown
    assert "s3cr3t" not in shown and "B0002" not in shown
    assert WAITS == [1.0, 2.0]


def test_nothing_is_added_until_the_url_is_set() -> None:
    empty = alert_definitions({})
    assert not empty.sensors and not empty.resources
    defs = build_definitions({})
    assert SENSOR_NAME not in {s.name for s in defs.sensors or ()}
    assert RESOURCE_KEY not in (defs.resources or {})


def test_the_url_is_bound_through_envvar_and_masked() -> None:
    url = f"https://hooks.example.com{SECRET_PATH}"
    defs = build_definitions(
        {WEBHOOK_URL_VAR: url, WEBHOOK_FORMAT_VAR: "slack", WEBSERVER_URL_VAR: "https://d.example"}
    )
    assert SENSOR_NAME in {s.name for s in defs.sensors or ()}
    webhook = (defs.resources or {})[RESOURCE_KEY]
    assert isinstance(webhook, AlertWebhook)
    assert "s3cr3t" not in repr(webhook) and f"EnvVar('{WEBHOOK_URL_VAR}')" in repr(webhook)
    assert "s3cr3t" not in repr(AlertWebhook(url=url)) and "************" in repr(
        AlertWebhook(url=url)
    )
    dg.Definitions.validate_loadable(defs)


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        (
            {WEBHOOK_URL_VAR: f"http://hooks.example.com{SECRET_PATH}"},
            f"{WEBHOOK_URL_VAR} (http://hooks.example.com/…) uses http://",
        ),
        ({WEBHOOK_URL_VAR: "hooks.example.com/x/y"}, "is not an absolute URL"),
        (
            {WEBHOOK_URL_VAR: f"https://hooks.example.com{SECRET_PATH}", WEBHOOK_FORMAT_VAR: "xml"},
            f"{WEBHOOK_FORMAT_VAR}='xml' is not a format; set it to json or slack",
        ),
        (
            {WEBHOOK_URL_VAR: f"https://h.example{SECRET_PATH}", WEBSERVER_URL_VAR: "dagster:3000"},
            f"{WEBSERVER_URL_VAR}='dagster:3000' is not an absolute URL",
        ),
    ],
)
def test_unusable_settings_fail_the_load_naming_the_variable(
    environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(AlertSettingsError) as raised:
        alert_definitions(environ)
    assert fragment in str(raised.value)
    assert "s3cr3t" not in str(raised.value)
    assert f"unset {WEBHOOK_URL_VAR}" in str(raised.value)
