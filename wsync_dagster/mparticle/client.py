"""``WarehouseSyncClient``: every endpoint of the experimental Warehouse Sync API, plus the Profile API.

Plain Python, no Dagster import. The plumbing every endpoint goes through (session, token, timeout,
retries, parsing) and the CRUD calls shared by connections, data models and pipelines are in
:mod:`wsync_dagster.mparticle.base`; this module states the endpoints.
"""

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from pydantic import JsonValue

from wsync_dagster.mparticle.base import (
    DEFAULT_API_ROOT as DEFAULT_API_ROOT,
)
from wsync_dagster.mparticle.base import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ClientBase,
    deleter,
    enum_value,
    getter,
    lister,
    positive_int,
    writer,
)
from wsync_dagster.mparticle.base import (
    ClientStats as ClientStats,
)
from wsync_dagster.mparticle.errors import (
    BadRequestError,
    InvalidRequestError,
    NotFoundError,
    RunFailedError,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncError,
)
from wsync_dagster.mparticle.models import (
    Connection,
    DataModel,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    Profile,
    RunPage,
    TriggerResult,
)
from wsync_dagster.mparticle.polling import ExponentialBackoff, poll
from wsync_dagster.mparticle.retries import AMBIGUOUS_ERRORS
from wsync_dagster.mparticle.wire import (
    ConnectionType,
    Environment,
    IdentityType,
    ProfileField,
    RunState,
    RunType,
    check_id,
    format_instant,
    to_utc_instant,
)

_log = logging.getLogger("wsync_dagster.mparticle")

ALL_PROFILE_FIELDS: tuple[ProfileField, ...] = tuple(ProfileField)

_ALREADY_IN_PROGRESS = re.compile(r"already in progress", re.IGNORECASE)
_INT64 = range(-(2**63), 2**63)


class WarehouseSyncClient(ClientBase):
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

    # ----------------------------------------------------------------------------- connections

    def list_connections(self, type: ConnectionType | str | None = None) -> list[Connection]:
        """List the workspace's connections (secrets masked by mParticle), optionally only those
        of one warehouse ``type`` (``snowflake`` or ``bigquery``)."""
        params = None if type is None else {"type": enum_value(ConnectionType, type, "type")}
        return self.list_resources(Connection, "connections", params)

    get_connection = getter(Connection, "connections", "Get one connection.")
    create_connection = writer(
        Connection,
        "POST",
        "connections",
        "Create a connection; returns it as stored (is_faulted set).",
    )
    update_connection = writer(
        Connection, "PUT", "connections", "Replace the connection with its id (secrets included)."
    )
    delete_connection = deleter(
        "connections", "Delete a connection (400 while a pipeline uses it)."
    )

    # ----------------------------------------------------------------------------- data models

    list_data_models = lister(DataModel, "data-models", "List the workspace's data models.")
    get_data_model = getter(DataModel, "data-models", "Get one data model.")
    create_data_model = writer(
        DataModel, "POST", "data-models", "Create a data model; returns it as stored."
    )
    update_data_model = writer(
        DataModel, "PUT", "data-models", "Replace the data model with its id."
    )
    delete_data_model = deleter(
        "data-models", "Delete a data model (400 while a pipeline uses it)."
    )

    # ------------------------------------------------------------------------------- pipelines

    list_pipelines = lister(Pipeline, "pipelines", "List the workspace's pipelines.")
    get_pipeline = getter(
        Pipeline, "pipelines", "Get one pipeline (with is_faulted, faulted_reason)."
    )
    create_pipeline = writer(
        Pipeline, "POST", "pipelines", "Create a pipeline (schedule_start_time is sent)."
    )
    update_pipeline = writer(
        Pipeline, "PUT", "pipelines", "Replace the pipeline with its id (e.g. to pause it)."
    )
    delete_pipeline = deleter("pipelines", "Delete a pipeline.")

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
            # A new pipeline's status can be 404 for about a minute: it has no runs yet (see
            # docs/warehouse-sync-api.md). If the pipeline really does not exist, the POST says so.
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

        Pages ``currentPage`` from 1 until a page holds fewer than ``page_size`` runs (see
        docs/warehouse-sync-api.md). Arguments are checked at once, before the first page is requested. A run created while
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
            str(positive_int(run_id, "run id")),
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
        previous: list[str | None] = [None]

        def fetch() -> PipelineRun:
            run = self.get_pipeline_run(pipeline_id, run_id)
            if run.state is None and run.pipeline_run_state != previous[0]:
                _log.warning(
                    "run %d of %s is in unknown state %r; waiting, not assuming success",
                    run_id,
                    pipeline_id,
                    run.pipeline_run_state,
                )
            previous[0] = run.pipeline_run_state
            return run

        run, _ = poll(
            fetch,
            lambda r: r.is_terminal,
            timeout=timeout,
            backoff=ExponentialBackoff(poll_interval, max_poll_interval),
            sleep=self._sleep,
            clock=self._clock,
        )
        if run.state is RunState.SUCCESS:
            return run
        if run.state is RunState.FAILED:
            raise RunFailedError(pipeline_id, run, self._faulted_reason(pipeline_id))
        if run.state is None:
            raise UnknownRunStateError(pipeline_id, run, timeout)
        raise WaitTimeoutError(pipeline_id, run, timeout)

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

        ``identity_type`` is the workspace's immutable identity type (e.g. ``customer_id``),
        ``environment`` is ``development`` or ``production``, and ``fields`` picks the sections as
        in :meth:`get_profile`, which raises the same errors (NotFoundError: no profile has that
        identity).
        """
        kind = enum_value(IdentityType, identity_type, "identity_type")
        if not isinstance(identity_value, str) or not identity_value:
            raise InvalidRequestError("identity_value must be a non-empty string")
        body: dict[str, JsonValue] = {
            "environment_type": enum_value(Environment, environment, "environment"),
            "identity": {"type": kind, "value": identity_value},
        }
        url = self._profile_root(resolve=True)
        params = {"fields": _profile_fields(fields)}
        data = self._request("POST", url, params=params, body=body)
        return self._parse(Profile, data, "POST", url)

    # ------------------------------------------------------------------------------ run helpers

    def _run_query(
        self,
        page: int,
        page_size: int,
        start: datetime | str | None,
        end: datetime | str | None,
    ) -> dict[str, str | int]:
        page = positive_int(page, "page")
        if positive_int(page_size, "page_size") > MAX_PAGE_SIZE:
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


def _profile_fields(fields: Iterable[ProfileField | str]) -> str:
    if isinstance(fields, str):  # "user_attributes" or "user_attributes,user_identities"
        fields = fields.split(",")
    chosen = [enum_value(ProfileField, field, "profile field") for field in fields]
    if not chosen:
        raise InvalidRequestError("fields must name at least one profile section")
    return ",".join(dict.fromkeys(chosen))
