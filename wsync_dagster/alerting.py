"""Run-failure alerts to a webhook, for Dagster OSS: optional, off unless configured.

Dagster+ routes alerts itself (``deploy/alerting/alert_policies.yaml``). Open-source Dagster has no
alerting of its own, so this module adds one run-failure sensor, ``wsync_run_failure_webhook``, when
``WSYNC_ALERT_WEBHOOK_URL`` is set: for each failed run of the code location it POSTs one JSON
message naming the job, the run, the partition(s), the assets and each failed step's text (the
``dagster.Failure`` description a sync raises, which says what to fix). A Slack incoming webhook
takes it as is with ``WSYNC_ALERT_WEBHOOK_FORMAT=slack``; any other receiver gets the structured
``json`` form. See docs/alerting.md.

* Loading reads the environment only; the URL is bound through ``dagster.EnvVar`` and resolved
  when the sensor runs.
* The URL is a secret (a Slack webhook's path is its credential): it is masked in the resource's
  repr, and every error names only its scheme and host.
* A delivery is retried within the tick (connection errors, timeouts, 429, 5xx), at most
  :data:`MAX_ATTEMPTS` times with explicit timeouts, so one tick stays well inside Dagster's sensor
  timeout. Dagster's run-status sensor moves past a run whether or not its alert went out, so a
  delivery that still fails fails the tick, with an error naming the run (the daemon logs it too).
"""

import enum
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import dagster as dg
import requests
from pydantic import Field, field_validator

from wsync_dagster.resource_safety import MaskedSecrets, url_fault
from wsync_dagster.sync.assets.metadata import RunTags

WEBHOOK_URL_VAR = "WSYNC_ALERT_WEBHOOK_URL"
WEBHOOK_FORMAT_VAR = "WSYNC_ALERT_WEBHOOK_FORMAT"
WEBSERVER_URL_VAR = "WSYNC_ALERT_WEBSERVER_URL"
SENSOR_NAME = "wsync_run_failure_webhook"
RESOURCE_KEY = "wsync_alert_webhook"
MINIMUM_INTERVAL_SECONDS = 30

MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 7.0
MAX_RETRY_AFTER_SECONDS = 10.0
FAILURES_SHOWN = 5  # failed steps listed in one alert
FAILURE_CHARS = 1500  # characters kept of one step's failure text


class WebhookFormat(enum.StrEnum):
    """What the POST body looks like: ``json`` (structured, plus ``text``) or ``slack`` (``text``
    only, what a Slack incoming webhook reads)."""

    JSON = "json"
    SLACK = "slack"


class AlertSettingsError(ValueError):
    """An alert setting is unusable; the message names the variable and the fix, never the URL."""


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept an alert; the message names only the URL's scheme and host."""


def shown_url(url: str) -> str:
    """The part of a webhook URL that is safe to show: scheme and host (the path is the secret)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/…"


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive alerts, with the fix (without repeating the URL); None if fine."""
    fault = url_fault(url)
    if fault == "not absolute":
        return "is not an absolute URL: write it with its scheme and host (https://...)"
    if fault == "clear text":
        return (
            "uses http://, which would send the webhook's secret path in clear text: use https:// "
            "(plain http:// is accepted only on a loopback host)"
        )
    return None


def alert_setting_problems(environ: Mapping[str, str]) -> list[str]:
    """One line per alert variable that is set to an unusable value (the URL is never repeated)."""
    problems = []
    url = environ.get(WEBHOOK_URL_VAR, "")
    if url and (problem := webhook_url_problem(url)):
        problems.append(f"{WEBHOOK_URL_VAR} ({shown_url(url)}) {problem}")
    fmt = environ.get(WEBHOOK_FORMAT_VAR, "")
    if fmt and fmt not in {f.value for f in WebhookFormat}:
        choices = " or ".join(f.value for f in WebhookFormat)
        problems.append(f"{WEBHOOK_FORMAT_VAR}={fmt!r} is not a format; set it to {choices}")
    base = environ.get(WEBSERVER_URL_VAR, "")
    if base and urlsplit(base).scheme not in ("https", "http"):
        problems.append(
            f"{WEBSERVER_URL_VAR}={base!r} is not an absolute URL: write the Dagster UI's address, "
            "e.g. https://dagster.example.com"
        )
    return problems


class AlertWebhook(MaskedSecrets, dg.ConfigurableResource):
    """Where run-failure alerts go. Bind ``url`` with ``dagster.EnvVar``: it is a secret."""

    secret_fields: ClassVar[tuple[str, ...]] = ("url",)

    url: str = Field(description="the webhook URL (a secret); https://, or http:// on loopback")
    format: str = Field(
        default=WebhookFormat.JSON.value,
        description="json (structured, plus text) or slack (text only)",
    )
    webserver_url: str | None = Field(
        default=None, description="the Dagster UI's address, to link each alert to its run"
    )
    max_attempts: int = Field(default=MAX_ATTEMPTS, description="attempts per alert")

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            WebhookFormat(value)  # a ValueError naming the value (not a secret)
        return value

    # Time, overridable in one place (tests do not sleep).
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def post(self, payload: Mapping[str, Any]) -> None:
        """POST ``payload`` as JSON; retried on connection errors, timeouts, 429 and 5xx."""
        where = shown_url(self.url)
        if problem := webhook_url_problem(self.url):
            raise AlertDeliveryError(f"{WEBHOOK_URL_VAR} ({where}) {problem}")
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            delay = float(2 ** (attempt - 1))
            try:
                response = requests.post(
                    self.url,
                    json=dict(payload),
                    timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                )
            except requests.RequestException as error:
                # The exception's text holds the full URL: keep only its type.
                last = f"{type(error).__name__} (no answer)"
            else:
                if response.ok:
                    return
                last = f"HTTP {response.status_code}{self._said(response)}"
                if response.status_code != 429 and response.status_code < 500:
                    raise AlertDeliveryError(
                        f"The alert webhook {where} refused the alert: {last}. Check "
                        f"{WEBHOOK_URL_VAR} (and {WEBHOOK_FORMAT_VAR} for what the receiver "
                        "expects)."
                    ) from None
                delay = _retry_after(response) or delay
            if attempt < self.max_attempts:
                self.sleep(delay)
        raise AlertDeliveryError(
            f"The alert webhook {where} did not take the alert after {self.max_attempts} "
            f"attempt(s); last: {last}."
        ) from None

    def _said(self, response: requests.Response) -> str:
        """A short, URL-free excerpt of the receiver's answer (Slack says e.g. ``no_service``)."""
        text = response.text.strip().replace(self.url, "…")
        path = urlsplit(self.url).path
        if len(path) > 1:
            text = text.replace(path, "…")
        return f": {text[:200]}" if text else ""


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return None


@dataclass(frozen=True)
class StepFailure:
    step: str
    text: str


@dataclass(frozen=True)
class RunFailureAlert:
    """What one failed run's alert says."""

    job: str
    run_id: str
    partition: str | None
    assets: tuple[str, ...]
    failures: tuple[StepFailure, ...]
    run_message: str | None
    run_url: str | None

    def text(self) -> str:
        head = f"Dagster run failed: {self.job} (run {self.run_id[:8]})"
        if self.partition:
            head += f", partition {self.partition}"
        lines = [head]
        if self.assets:
            lines.append("assets: " + ", ".join(self.assets))
        lines.extend(f"{f.step}: {f.text}" for f in self.failures[:FAILURES_SHOWN])
        if len(self.failures) > FAILURES_SHOWN:
            lines.append(f"... and {len(self.failures) - FAILURES_SHOWN} more failed step(s)")
        if not self.failures and self.run_message:
            lines.append(self.run_message)
        if self.run_url:
            lines.append(self.run_url)
        return "\n".join(lines)

    def payload(self, fmt: WebhookFormat) -> dict[str, Any]:
        if fmt is WebhookFormat.SLACK:
            return {"text": self.text()}
        return {
            "text": self.text(),
            "event": "run_failure",
            "job": self.job,
            "run_id": self.run_id,
            "partition": self.partition,
            "assets": list(self.assets),
            "failures": [{"step": f.step, "text": f.text} for f in self.failures],
            "run_failure": self.run_message,
            "run_url": self.run_url,
        }


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= FAILURE_CHARS else text[:FAILURE_CHARS] + " … (truncated)"


def step_failure_text(event: dg.DagsterEvent) -> str:
    """A failed step's text: the ``dagster.Failure`` description when the step raised one (what a
    sync says to fix), else the error's message without its class path."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return _clip(data.user_failure_data.description)
    error = data.error
    if error is None:
        return "the step failed without an error message"
    message = error.message.strip()
    prefix, _, rest = message.partition(": ")
    if rest and prefix.rsplit(".", 1)[-1] == error.cls_name:
        message = rest
    return _clip(message)


def partition_of(tags: Mapping[str, str]) -> str | None:
    """The run's partition, or its partition range ``first...last``, from Dagster's run tags."""
    if single := tags.get(RunTags.PARTITION):
        return single
    start, end = tags.get(RunTags.RANGE_START), tags.get(RunTags.RANGE_END)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def planned_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[dg.AssetKey]:
    """The assets ``run`` set out to materialize: its asset selection, or (a job run over all of
    its assets has none) the assets its event log says were planned."""
    if run.asset_selection:
        return list(run.asset_selection)
    records = instance.get_records_for_run(
        run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    events = [r.event_log_entry.dagster_event for r in records]
    return [e.asset_key for e in events if e is not None and e.asset_key is not None]


def alert_for(
    run: dg.DagsterRun,
    assets: Iterable[dg.AssetKey],
    run_message: str | None,
    step_failures: Sequence[dg.DagsterEvent],
    webserver_url: str | None = None,
) -> RunFailureAlert:
    """The alert for failed ``run``: its assets, run-failure message and failed steps' texts."""
    shown = sorted({key.to_user_string() for key in assets})
    failures = tuple(
        StepFailure(event.step_key or "run", step_failure_text(event)) for event in step_failures
    )
    base = (webserver_url or "").rstrip("/")
    return RunFailureAlert(
        job=run.job_name,
        run_id=run.run_id,
        partition=partition_of(run.tags),
        assets=tuple(shown),
        failures=failures,
        run_message=run_message,
        run_url=f"{base}/runs/{run.run_id}" if base else None,
    )


def build_failure_webhook_sensor(
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The run-failure sensor; it needs an :class:`AlertWebhook` bound as :data:`RESOURCE_KEY`."""

    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=default_status,
        description=f"POSTs each failed run of this code location to the webhook in "
        f"{WEBHOOK_URL_VAR}: job, run, partition, assets and each failed step's text.",
    )
    def wsync_run_failure_webhook(
        context: dg.RunFailureSensorContext, wsync_alert_webhook: AlertWebhook
    ) -> dg.SkipReason:
        webhook = wsync_alert_webhook
        run = context.dagster_run
        alert = alert_for(
            run,
            planned_assets(context.instance, run),
            context.failure_event.message,
            context.get_step_failure_events(),
            webhook.webserver_url,
        )
        try:
            webhook.post(alert.payload(WebhookFormat(webhook.format)))
        except AlertDeliveryError as error:
            raise AlertDeliveryError(
                f"Run {run.run_id} ({run.job_name}) failed, and its alert was not sent: {error}"
            ) from None
        # Returning ends the tick after this run, so one tick is one delivery (its retries
        # included) and stays inside the sensor timeout; the next run's alert goes next tick.
        return dg.SkipReason(f"alert for run {alert.run_id} sent to {shown_url(webhook.url)}")

    return wsync_run_failure_webhook


def alert_definitions(environ: Mapping[str, str]) -> dg.Definitions:
    """The run-failure webhook sensor and its resource when ``WSYNC_ALERT_WEBHOOK_URL`` is set,
    else nothing. Reads the environment only (no I/O); the URL is bound through ``EnvVar``."""
    if not environ.get(WEBHOOK_URL_VAR):
        return dg.Definitions()
    if problems := alert_setting_problems(environ):
        lines = "\n".join(f"  {p}" for p in problems)
        raise AlertSettingsError(
            f"The run-failure alert webhook is configured but unusable:\n{lines}\n"
            f"Fix them, or unset {WEBHOOK_URL_VAR} to turn the alert sensor off."
        )
    optional: dict[str, Any] = {
        field: dg.EnvVar(name)
        for field, name in (("format", WEBHOOK_FORMAT_VAR), ("webserver_url", WEBSERVER_URL_VAR))
        if environ.get(name)
    }
    webhook = AlertWebhook(url=dg.EnvVar(WEBHOOK_URL_VAR), **optional)
    return dg.Definitions(
        sensors=[build_failure_webhook_sensor()], resources={RESOURCE_KEY: webhook}
    )
