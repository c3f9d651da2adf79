"""The plumbing of :class:`~wsync_dagster.mparticle.WarehouseSyncClient`: one ``requests.Session``,
the bearer token (refetched once on a 401), the timeout and the retry policy, response parsing, and
the create/read/update/delete calls every collection shares (:func:`lister`, :func:`getter`,
:func:`writer`, :func:`deleter`, which state each endpoint once for the client's typed methods).
No Dagster import.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit

import pydantic
import requests
from pydantic import BaseModel, JsonValue

from wsync_dagster.mparticle.auth import ClientCredentials, TokenProvider
from wsync_dagster.mparticle.errors import (
    InvalidRequestError,
    MalformedResponseError,
    WarehouseSyncError,
)
from wsync_dagster.mparticle.retries import Retrier, RetryPolicy
from wsync_dagster.mparticle.transport import HttpTransport, Timeout, read_json
from wsync_dagster.mparticle.wire import (
    ResourceModel,
    check_id,
    describe_validation_error,
    parse_response,
)

_log = logging.getLogger("wsync_dagster.mparticle")

DEFAULT_API_ROOT = "https://api.mparticle.com"
DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_HEADERS = {"Accept": "application/json", "User-Agent": "wsync-dagster-mparticle/0.1"}

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


class ClientBase:
    """What every endpoint goes through; see :class:`~wsync_dagster.mparticle.WarehouseSyncClient`
    for the arguments."""

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
        self.workspace_id = positive_int(workspace_id, "workspace_id")
        self.org_id = None if org_id is None else positive_int(org_id, "org_id")
        self.account_id = None if account_id is None else positive_int(account_id, "account_id")
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

    def authenticate(self) -> None:
        """Get a token for the credential (the cached one if it is still valid), under the retry
        policy: proves the client id and secret without an API call.

        Raises:
            AuthenticationError: The token endpoint rejected the credential.
            WarehouseSyncError: The token endpoint could not be reached or kept failing.
        """
        self._retrier.call(self._tokens.get_token)

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

    def list_resources(
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

    def get_resource(self, model: type[M], collection: str, resource_id: str) -> M:
        url = self._warehouse_url(collection, check_id(resource_id, f"id in {collection}"))
        return self._parse(model, self._request("GET", url), "GET", url)

    def write_resource(self, method: str, collection: str, resource: R) -> R:
        body = resource.request_body(self.workspace_id)
        segments = (collection,) if method == "POST" else (collection, resource.id)
        url = self._warehouse_url(*segments)
        return self._parse(type(resource), self._request(method, url, body=body), method, url)

    def delete_resource(self, collection: str, resource_id: str) -> None:
        url = self._warehouse_url(collection, check_id(resource_id, f"id in {collection}"))
        self._request("DELETE", url)


def positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{what} must be a positive integer, got {value!r}")
    return value


def enum_value(kind: type[E], value: E | str, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidRequestError(f"{what} must be one of {allowed}; got {value!r}") from None


# ------------------------------------------------------------------------ CRUD, stated once


def lister(model: type[R], collection: str, doc: str) -> Callable[["ClientBase"], list[R]]:
    """A client method listing ``collection`` as ``model`` objects."""

    def list_all(self: "ClientBase") -> list[R]:
        return self.list_resources(model, collection)

    list_all.__doc__ = doc
    return list_all


def getter(model: type[R], collection: str, doc: str) -> Callable[["ClientBase", str], R]:
    """A client method reading one resource of ``collection`` by id (NotFoundError if absent)."""

    def get(self: "ClientBase", resource_id: str) -> R:
        return self.get_resource(model, collection, resource_id)

    get.__doc__ = doc
    return get


def writer(
    model: type[R], method: str, collection: str, doc: str
) -> Callable[["ClientBase", R], R]:
    """A client method creating (``POST``) or replacing (``PUT``) a ``model`` of ``collection``."""

    def write(self: "ClientBase", resource: R) -> R:
        return self.write_resource(method, collection, resource)

    write.__doc__ = doc
    return write


def deleter(collection: str, doc: str) -> Callable[["ClientBase", str], None]:
    """A client method deleting one resource of ``collection`` by id."""

    def delete(self: "ClientBase", resource_id: str) -> None:
        self.delete_resource(collection, resource_id)

    delete.__doc__ = doc
    return delete
