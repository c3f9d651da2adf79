"""``WarehouseSyncClient``: every endpoint of the experimental Warehouse Sync API, plus the Profile API.

Plain Python over one ``requests.Session`` (connection pooling); no Dagster import. Every endpoint
goes through :meth:`WarehouseSyncClient._request`, which adds the bearer token (refetched once on a
401), applies the timeout and the retry policy, and turns failures into the errors of
:mod:`wsync_dagster.mparticle.errors`.
"""

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit

import pydantic
import requests
from pydantic import BaseModel, JsonValue

from wsync_dagster.mparticle.auth import ClientCredentials, TokenProvider
from wsync_dagster.mparticle.errors import (
    BadRequestError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RunFailedError,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncError,
)
from wsync_dagster.mparticle.models import (
    Connection,
    ConnectionType,
    DataModel,
    Environment,
    IdentityType,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    Profile,
    ProfileField,
    ResourceModel,
    RunPage,
    RunState,
    RunType,
    TriggerResult,
    check_id,
    describe_validation_error,
    format_instant,
    parse_response,
    to_utc_instant,
)
from wsync_dagster.mparticle.retries import AMBIGUOUS_ERRORS, Retrier, RetryPolicy
from wsync_dagster.mparticle.transport import HttpTransport, Timeout, read_json

_log = logging.getLogger("wsync_dagster.mparticle")

DEFAULT_API_ROOT = "https://api.mparticle.com"
DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
ALL_PROFILE_FIELDS: tuple[ProfileField, ...] = tuple(ProfileField)

_ALREADY_IN_PROGRESS = re.compile(r"already in progress", re.IGNORECASE)
_HEADERS = {"Accept": "application/json", "User-Agent": "wsync-dagster-mparticle/0.1"}
_INT64 = range(-(2**63), 2**63)

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=ResourceModel)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class ClientStats:
    """Counters of one client, for logs, metadata and benchmarks.

    Attributes:
        requests: HTTP requests sent to the API (retries and 401 re-sends included).
        retries: Retry sleeps taken (API and token requests).
        token_requests: Requests this client sent to the token endpoint.
    """

    requests: int
    retries: int
    token_requests: int


class WarehouseSyncClient:
    """Client for mParticle's experimental Warehouse Sync API and the Profile API.

    Warehouse Sync calls go to ``{api_root}/platform/experimental/workspaces/{workspace_id}/inputs/
    warehouse``; Profile API calls to ``{api_root}/userprofile/v1/...``, which also need the org and
    account ids (constructor arguments, since they are fixed per credential). Use as a context
    manager, or call :meth:`close`.

    Args:
        credentials: The API credential; its token is shared with every client in the process that
            has the same (token URL, client id, audience).
        workspace_id: The mParticle workspace.
        api_root: Scheme and host of the API (mParticle's by default; the emulator's locally).
        org_id: mParticle org id (Profile API only).
        account_id: mParticle account id (Profile API only).
        timeout: Seconds per HTTP request: one value, or ``(connect, read)``.
        retry_policy: How to retry transient failures; the default policy if None.
        session: A ``requests.Session`` to send through; the client makes (and closes) its own if
            None. An injected session is not closed by :meth:`close`.
        sleep: Called to wait between retries and polls (inject a fake in tests).
        clock: Monotonic clock in seconds, for retry budgets, waits and token expiry.

    Raises:
        InvalidRequestError: If ``workspace_id``, ``org_id``, ``account_id`` or ``api_root`` is
            invalid.
    """

    def __init__(
        self,
        credentials: ClientCredentials,
        workspace_id: int,
        *,
        api_root: str = DEFAULT_API_ROOT,
        org_id: int | None = None,
        account_id: int | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspace_id = _positive_int(workspace_id, "workspace_id")
        self.org_id = None if org_id is None else _positive_int(org_id, "org_id")
        self.account_id = None if account_id is None else _positive_int(account_id, "account_id")
        parts = urlsplit(api_root)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidRequestError(f"api_root must be an http(s) URL, got {api_root!r}")
        self.api_root = api_root.rstrip("/")
        self.warehouse_base = (
            f"{self.api_root}/platform/experimental/workspaces/{self.workspace_id}/inputs/warehouse"
        )
        self._owns_session = session is None
        self._session = requests.Session() if session is None else session
        self._sleep = sleep
        self._clock = clock
        self._transport = HttpTransport(self._session, timeout)
        self._retrier = Retrier(
            retry_policy or RetryPolicy(), sleep=sleep, clock=clock, on_retry=self._count_retry
        )
        self._tokens = TokenProvider(credentials, self._transport, clock=clock)
        self._counter_lock = threading.Lock()
        self._requests = 0
        self._retries = 0

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def stats(self) -> ClientStats:
        """A snapshot of this client's request, retry and token-request counters."""
        with self._counter_lock:
            return ClientStats(self._requests, self._retries, self._tokens.token_requests)

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self._tokens.credentials.client_id!r}, "
            f"workspace_id={self.workspace_id}, api_root={self.api_root!r})"
        )

    # ----------------------------------------------------------------------------- connections

    def list_connections(self, type: ConnectionType | str | None = None) -> list[Connection]:
        """List the workspace's connections.

        Args:
            type: Only connections of this warehouse type (``snowflake`` or ``bigquery``).

        Returns:
            The connections (secrets masked by mParticle).
        """
        params = None if type is None else {"type": _enum(ConnectionType, type, "type")}
        return self._list(Connection, "connections", params)

    def get_connection(self, connection_id: str) -> Connection:
        """Get one connection.

        Raises:
            NotFoundError: No connection has that id.
        """
        return self._get(Connection, "connections", connection_id)

    def create_connection(self, connection: Connection) -> Connection:
        """Create a connection; returns it as stored (``is_faulted`` and audit fields set)."""
        return self._write("POST", "connections", connection)

    def update_connection(self, connection: Connection) -> Connection:
        """Replace the connection with ``connection.id`` (full replace, secrets included)."""
        return self._write("PUT", "connections", connection)

    def delete_connection(self, connection_id: str) -> None:
        """Delete a connection (a 400 if a pipeline still uses it)."""
        self._delete("connections", connection_id)

    # ----------------------------------------------------------------------------- data models

    def list_data_models(self) -> list[DataModel]:
        """List the workspace's data models."""
        return self._list(DataModel, "data-models")

    def get_data_model(self, data_model_id: str) -> DataModel:
        """Get one data model.

        Raises:
            NotFoundError: No data model has that id.
        """
        return self._get(DataModel, "data-models", data_model_id)

    def create_data_model(self, data_model: DataModel) -> DataModel:
        """Create a data model; returns it as stored."""
        return self._write("POST", "data-models", data_model)

    def update_data_model(self, data_model: DataModel) -> DataModel:
        """Replace the data model with ``data_model.id``."""
        return self._write("PUT", "data-models", data_model)

    def delete_data_model(self, data_model_id: str) -> None:
        """Delete a data model (a 400 if a pipeline still uses it)."""
        self._delete("data-models", data_model_id)

    # ------------------------------------------------------------------------------- pipelines

    def list_pipelines(self) -> list[Pipeline]:
        """List the workspace's pipelines."""
        return self._list(Pipeline, "pipelines")

    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        """Get one pipeline (including ``is_faulted`` and ``faulted_reason``).

        Raises:
            NotFoundError: No pipeline has that id.
        """
        return self._get(Pipeline, "pipelines", pipeline_id)

    def create_pipeline(self, pipeline: Pipeline) -> Pipeline:
        """Create a pipeline; ``schedule_start_time`` is always sent."""
        return self._write("POST", "pipelines", pipeline)

    def update_pipeline(self, pipeline: Pipeline) -> Pipeline:
        """Replace the pipeline with ``pipeline.id`` (e.g. to pause it with ``is_active=False``)."""
        return self._write("PUT", "pipelines", pipeline)

    def delete_pipeline(self, pipeline_id: str) -> None:
        """Delete a pipeline."""
        self._delete("pipelines", pipeline_id)

    def trigger_pipeline(self, pipeline_id: str) -> TriggerResult:
        """Start an on-demand run, without ever starting two.

        The trigger POST is not retried blindly. Before it, the ids of the pipeline's newest runs
        are read. After an ambiguous failure (the connection broke or timed out after sending, or
        a 5xx), the newest runs are read again: a run in progress or a manual run that was not
        there before is the one the lost attempt created, and is returned. Only when there is none
        is the trigger sent again (within the retry policy). Run ids are compared, not clocks, so
        a run triggered moments before this call is never taken for this call's. A 429 is retried
        directly (nothing was accepted). If the pipeline is already busy (400 "already in
        progress"), the run in flight is returned with ``attached=True`` instead of an error.

        Args:
            pipeline_id: The on-demand pipeline.

        Returns:
            The run to wait for.

        Raises:
            BadRequestError: mParticle refused the trigger (e.g. not on-demand, inactive, draft).
        """
        url = self._warehouse_url("pipelines", check_id(pipeline_id, "pipeline id"))
        deadline = self._retrier.deadline()
        try:
            existing = {run.pipeline_run_id for run in self._recent_runs(pipeline_id, deadline)}
        except NotFoundError:
            # A new pipeline's status can be 404 for about a minute (spec §2.5): it has no runs
            # yet. If the pipeline really does not exist, the POST says so.
            existing = set[int]()
        ambiguous = False

        def attempt() -> TriggerResult:
            nonlocal ambiguous
            if ambiguous:
                earlier = self._new_run(pipeline_id, existing, deadline)
                if earlier is not None:
                    _log.info(
                        "trigger of %s: the lost attempt created run %d; not triggering again",
                        pipeline_id,
                        earlier.pipeline_run_id,
                    )
                    return TriggerResult.for_run(earlier, attached=False)
            # Authorize first: failing to get a token is retryable but not ambiguous (nothing was
            # sent), and _request below then finds the token cached.
            self._tokens.get_token()
            try:
                data = self._request("POST", url, retry=False)
            except BadRequestError as error:
                if not _ALREADY_IN_PROGRESS.search(" ".join(error.messages)):
                    raise
                in_flight = self._run_in_flight(pipeline_id, deadline)
                if in_flight is None:
                    raise
                return TriggerResult.for_run(in_flight, attached=True)
            except AMBIGUOUS_ERRORS:
                ambiguous = True
                raise
            return self._parse(TriggerResult, data, "POST", url)

        return self._retrier.call(attempt, deadline=deadline)

    # ------------------------------------------------------------------------------ status, runs

    def get_pipeline_status(self, pipeline_id: str) -> PipelineStatus:
        """The pipeline's flags and its latest run.

        Raises:
            NotFoundError: Unknown pipeline (or one created less than about a minute ago).
        """
        url = self._warehouse_url("pipelines", check_id(pipeline_id, "pipeline id"), "status")
        return self._parse(PipelineStatus, self._request("GET", url), "GET", url)

    def list_pipeline_runs(
        self,
        pipeline_id: str,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> list[PipelineRun]:
        """One page of the pipeline's runs, newest ``logical_date`` first.

        Args:
            pipeline_id: The pipeline.
            page: 1-based page number (``currentPage``).
            page_size: Runs per page (``pageSize``, 1-500).
            start: Earliest ``logical_date`` (inclusive), an aware datetime or ``...Z`` string.
            end: Latest ``logical_date`` (inclusive).

        Returns:
            The runs on that page; fewer than ``page_size`` means it is the last page.
        """
        return self._runs_page(pipeline_id, self._run_query(page, page_size, start, end))

    def iter_pipeline_runs(
        self,
        pipeline_id: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[PipelineRun]:
        """Every run of the pipeline in the range, newest first, fetching pages as needed.

        Pages ``currentPage`` from 1 until a page holds fewer than ``page_size`` runs (spec §7 #15).
        Arguments are checked at once, before the first page is requested. A run created while
        paging pushes the later pages down by one; a run that was already yielded is not yielded
        again (runs newer than the first page are not picked up).

        Args:
            pipeline_id: The pipeline.
            start: Earliest ``logical_date`` (inclusive).
            end: Latest ``logical_date`` (inclusive).
            page_size: Runs per request (1-500).

        Returns:
            An iterator over the runs.
        """
        check_id(pipeline_id, "pipeline id")
        first = self._run_query(1, page_size, start, end)
        return self._iter_pages(pipeline_id, first, page_size)

    def get_pipeline_run(self, pipeline_id: str, run_id: int) -> PipelineRun:
        """One run of the pipeline.

        Raises:
            NotFoundError: Unknown pipeline or run.
        """
        url = self._warehouse_url(
            "pipelines",
            check_id(pipeline_id, "pipeline id"),
            "status",
            "runs",
            str(_positive_int(run_id, "run id")),
        )
        return self._parse(PipelineRun, self._request("GET", url), "GET", url)

    def wait_for_run(
        self,
        pipeline_id: str,
        run_id: int,
        *,
        timeout: float = 3600.0,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
    ) -> PipelineRun:
        """Poll a run until it ends, with backoff between polls.

        Args:
            pipeline_id: The pipeline.
            run_id: The run (e.g. from :meth:`trigger_pipeline`).
            timeout: Seconds to wait in total.
            poll_interval: Seconds before the second poll; doubles after each poll.
            max_poll_interval: Upper bound on the interval between polls.

        Returns:
            The run, once it is ``success``.

        Raises:
            RunFailedError: The run ended ``failed``; carries the pipeline's ``faulted_reason``.
            UnknownRunStateError: The run was in a state this client does not know when the
                timeout ran out (unknown states are never taken for success).
            WaitTimeoutError: The run was still triggered/queued/running when the timeout ran out.
        """
        if timeout < 0 or poll_interval <= 0 or max_poll_interval < poll_interval:
            raise InvalidRequestError(
                "wait_for_run needs timeout >= 0 and 0 < poll_interval <= max_poll_interval"
            )
        deadline = self._clock() + timeout
        interval = poll_interval
        previous = None
        while True:
            run = self.get_pipeline_run(pipeline_id, run_id)
            state = run.state
            if state is RunState.SUCCESS:
                return run
            if state is RunState.FAILED:
                raise RunFailedError(pipeline_id, run, self._faulted_reason(pipeline_id))
            if state is None and run.pipeline_run_state != previous:
                _log.warning(
                    "run %d of %s is in unknown state %r; waiting, not assuming success",
                    run_id,
                    pipeline_id,
                    run.pipeline_run_state,
                )
            previous = run.pipeline_run_state
            remaining = deadline - self._clock()
            if remaining <= 0:
                if state is None:
                    raise UnknownRunStateError(pipeline_id, run, timeout)
                raise WaitTimeoutError(pipeline_id, run, timeout)
            self._sleep(min(interval, remaining))
            interval = min(interval * 2, max_poll_interval)

    # ---------------------------------------------------------------------------------- profiles

    def get_profile(
        self, mpid: int, fields: Iterable[ProfileField | str] = ALL_PROFILE_FIELDS
    ) -> Profile:
        """Read a user profile by MPID (``GET /userprofile/v1/{org}/{account}/{workspace}/{mpid}``).

        Args:
            mpid: The profile's mParticle id (signed 64-bit).
            fields: Which sections to return; all by default.

        Returns:
            The profile.

        Raises:
            InvalidRequestError: ``org_id``/``account_id`` were not given to the client, or an
                argument is invalid.
            NotFoundError: No such profile.
        """
        if isinstance(mpid, bool) or not isinstance(mpid, int) or mpid not in _INT64:
            raise InvalidRequestError(f"mpid must be a signed 64-bit integer, got {mpid!r}")
        url = f"{self._profile_root()}/{mpid}"
        params = {"fields": _profile_fields(fields)}
        return self._parse(Profile, self._request("GET", url, params=params), "GET", url)

    def resolve_profile(
        self,
        identity_type: IdentityType | str,
        identity_value: str,
        environment: Environment | str,
        fields: Iterable[ProfileField | str] = ALL_PROFILE_FIELDS,
    ) -> Profile:
        """Find a profile by its immutable identity (``POST /userprofile/v1/resolve/...``).

        Args:
            identity_type: The workspace's immutable identity type, e.g. ``customer_id``.
            identity_value: The identity's value.
            environment: ``development`` or ``production``.
            fields: Which sections to return; all by default.

        Returns:
            The profile.

        Raises:
            InvalidRequestError: ``org_id``/``account_id`` were not given to the client, or an
                argument is invalid.
            NotFoundError: No profile has that identity.
        """
        kind = _enum(IdentityType, identity_type, "identity_type")
        if not isinstance(identity_value, str) or not identity_value:
            raise InvalidRequestError("identity_value must be a non-empty string")
        body: dict[str, JsonValue] = {
            "environment_type": _enum(Environment, environment, "environment"),
            "identity": {"type": kind, "value": identity_value},
        }
        url = self._profile_root(resolve=True)
        params = {"fields": _profile_fields(fields)}
        data = self._request("POST", url, params=params, body=body)
        return self._parse(Profile, data, "POST", url)

    # -------------------------------------------------------------------------- request plumbing

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: JsonValue = None,
        retry: bool = True,
        deadline: float | None = None,
    ) -> JsonValue:
        """Send one authorized API call; the single path every endpoint uses.

        Args:
            method: HTTP method.
            url: Absolute URL.
            params: Query parameters.
            body: JSON body.
            retry: Retry transient failures under the policy (False for the trigger POST, which
                makes its own, safer decision).
            deadline: Shared retry deadline when called from inside another retried operation.

        Returns:
            The decoded JSON body (None when empty).
        """

        def attempt() -> JsonValue:
            token = self._tokens.get_token()
            response = self._send(method, url, token, params, body)
            if response.status_code != 401:
                return read_json(response)
            # A stale or revoked token: replace it once and resend; a second 401 is final.
            _log.debug("%s %s -> 401; fetching a new token and retrying once", method, url)
            self._tokens.invalidate(token)
            response = self._send(method, url, self._tokens.get_token(), params, body)
            return read_json(
                response,
                detail=f"after refreshing the token of client id "
                f"{self._tokens.credentials.client_id!r}",
            )

        return self._retrier.call(attempt, deadline=deadline) if retry else attempt()

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, str | int] | None,
        body: JsonValue,
    ) -> requests.Response:
        with self._counter_lock:
            self._requests += 1
        headers = {**_HEADERS, "Authorization": f"Bearer {token}"}
        return self._transport.send(method, url, params=params, json=body, headers=headers)

    def _count_retry(self, error: WarehouseSyncError, attempt: int, delay: float) -> None:
        with self._counter_lock:
            self._retries += 1

    def _parse(self, model: type[M], data: JsonValue, method: str, url: str) -> M:
        try:
            return parse_response(model, data)
        except pydantic.ValidationError as error:
            raise MalformedResponseError(
                f"response does not match {model.__name__}: {describe_validation_error(error)}",
                status=None,
                method=method,
                path=urlsplit(url).path,
            ) from None

    def _warehouse_url(self, *segments: str) -> str:
        return "/".join((self.warehouse_base, *segments))

    def _profile_root(self, *, resolve: bool = False) -> str:
        if self.org_id is None or self.account_id is None:
            raise InvalidRequestError(
                "the Profile API needs org_id and account_id; pass them to WarehouseSyncClient"
            )
        scope = f"{self.org_id}/{self.account_id}/{self.workspace_id}"
        return f"{self.api_root}/userprofile/v1/{'resolve/' if resolve else ''}{scope}"

    def _list(
        self, model: type[M], collection: str, params: Mapping[str, str] | None = None
    ) -> list[M]:
        url = self._warehouse_url(collection)
        data = self._request("GET", url, params=params)
        if not isinstance(data, list):
            raise MalformedResponseError(
                f"expected a JSON array, got {type(data).__name__}",
                status=None,
                method="GET",
                path=urlsplit(url).path,
            )
        return [self._parse(model, item, "GET", url) for item in data]

    def _get(self, model: type[M], collection: str, resource_id: str) -> M:
        url = self._warehouse_url(collection, check_id(resource_id, f"id in {collection}"))
        return self._parse(model, self._request("GET", url), "GET", url)

    def _write(self, method: str, collection: str, resource: R) -> R:
        body = resource.request_body(self.workspace_id)
        segments = (collection,) if method == "POST" else (collection, resource.id)
        url = self._warehouse_url(*segments)
        return self._parse(type(resource), self._request(method, url, body=body), method, url)

    def _delete(self, collection: str, resource_id: str) -> None:
        url = self._warehouse_url(collection, check_id(resource_id, f"id in {collection}"))
        self._request("DELETE", url)

    # ------------------------------------------------------------------------------ run helpers

    def _run_query(
        self,
        page: int,
        page_size: int,
        start: datetime | str | None,
        end: datetime | str | None,
    ) -> dict[str, str | int]:
        page = _positive_int(page, "page")
        if _positive_int(page_size, "page_size") > MAX_PAGE_SIZE:
            raise InvalidRequestError(f"page_size must be at most {MAX_PAGE_SIZE}, got {page_size}")
        query: dict[str, str | int] = {"currentPage": page, "pageSize": page_size}
        bounds = {"startDate": start, "endDate": end}
        instants = {
            key: to_utc_instant(value) for key, value in bounds.items() if value is not None
        }
        if len(instants) == 2 and instants["startDate"] > instants["endDate"]:
            raise InvalidRequestError("start must not be after end")
        query.update({key: format_instant(value) for key, value in instants.items()})
        return query

    def _runs_page(
        self, pipeline_id: str, query: Mapping[str, str | int], deadline: float | None = None
    ) -> list[PipelineRun]:
        url = self._warehouse_url(
            "pipelines", check_id(pipeline_id, "pipeline id"), "status", "runs"
        )
        data = self._request("GET", url, params=query, deadline=deadline)
        return self._parse(RunPage, data, "GET", url).items

    def _iter_pages(
        self, pipeline_id: str, query: dict[str, str | int], page_size: int
    ) -> Iterator[PipelineRun]:
        page = 1
        seen: set[int] = set()
        while True:
            runs = self._runs_page(pipeline_id, {**query, "currentPage": page})
            for run in runs:
                if run.pipeline_run_id not in seen:
                    seen.add(run.pipeline_run_id)
                    yield run
            if len(runs) < page_size:
                return
            page += 1

    def _recent_runs(self, pipeline_id: str, deadline: float) -> list[PipelineRun]:
        query = {"currentPage": 1, "pageSize": DEFAULT_PAGE_SIZE}
        return self._runs_page(pipeline_id, query, deadline)

    def _new_run(self, pipeline_id: str, existing: set[int], deadline: float) -> PipelineRun | None:
        """The run a lost trigger attempt created: in progress or manual, and not in ``existing``
        (the ids of the newest runs before the first attempt)."""
        for run in self._recent_runs(pipeline_id, deadline):
            manual = run.is_externally_triggered or run.run_type is RunType.MANUAL
            if run.pipeline_run_id not in existing and (run.in_progress or manual):
                return run
        return None

    def _run_in_flight(self, pipeline_id: str, deadline: float) -> PipelineRun | None:
        """The run that made a trigger fail with "already in progress" (or the newest, if it just
        ended)."""
        runs = self._recent_runs(pipeline_id, deadline)
        return next((run for run in runs if run.in_progress), runs[0] if runs else None)

    def _faulted_reason(self, pipeline_id: str) -> str | None:
        try:
            return self.get_pipeline(pipeline_id).faulted_reason
        except WarehouseSyncError as error:
            _log.warning("could not read faulted_reason of %s: %s", pipeline_id, error)
            return None


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{what} must be a positive integer, got {value!r}")
    return value


def _enum(kind: type[E], value: E | str, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidRequestError(f"{what} must be one of {allowed}; got {value!r}") from None


def _profile_fields(fields: Iterable[ProfileField | str]) -> str:
    if isinstance(fields, str):  # "user_attributes" or "user_attributes,user_identities"
        fields = fields.split(",")
    chosen = [_enum(ProfileField, field, "profile field") for field in fields]
    if not chosen:
        raise InvalidRequestError("fields must name at least one profile section")
    return ",".join(dict.fromkeys(chosen))
