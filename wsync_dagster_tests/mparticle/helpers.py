"""Shared test data (documented payloads, fake time, builders for runs and resources) and
:class:`MParticleStub`, a scripted mParticle on pytest-httpserver."""

import copy
import json
import os
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.mparticle import Connection, DataModel, Pipeline, RetryPolicy

WORKSPACE_ID = 5328
ORG_ID = 1001
ACCOUNT_ID = 2002
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret-DO-NOT-LEAK"
PASSWORD = "snowflake-password-DO-NOT-LEAK"
FEED_KEY = "us1-feed-key-DO-NOT-LEAK"
SERVICE_ACCOUNT_KEY = '{"private_key": "bq-key-DO-NOT-LEAK"}'

PAYLOADS = Path(__file__).parent / "payloads"

TEST_POLICY = RetryPolicy(jitter=lambda: 0.0)
"""The default policy without randomness: each backoff is exactly half its nominal value."""


def payload(name: str) -> Any:
    """A documented example from ``payloads/`` (a fresh copy each call)."""
    return json.loads((PAYLOADS / name).read_text())


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that advance only when slept or moved."""

    def __init__(self, wall_start: datetime = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = 1000.0
        self._start = self.now
        self._wall_start = wall_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self._wall_start + timedelta(seconds=self.now - self._start)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class EmulatorTime:
    """The client's sleep and clock on a live emulator's (manual) clock.

    Sleeping advances the emulator clock, which runs whatever falls due on the way; reading the
    clock asks the emulator. Nothing waits for real. ``sleeps`` records every requested sleep.
    """

    def __init__(self, control: EmulatorControl) -> None:
        self.control = control
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.control.clock().timestamp()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.control.advance(seconds)


def audit_time(moment: datetime) -> str:
    """``moment`` in mParticle's audit format (no zone, milliseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def run_json(
    run_id: int,
    state: str = "running",
    *,
    pipeline_id: str = "p1",
    created_on: datetime | None = None,
    manual: bool = True,
) -> dict[str, Any]:
    """A run object shaped like the documented one, with the given id, state and origin."""
    run = copy.deepcopy(payload("pipeline_run.json"))
    created = created_on or datetime(2024, 1, 1, tzinfo=UTC)
    run.update(
        pipeline_run_id=run_id,
        id=pipeline_id,
        pipeline_run_state=state,
        pipeline_run_type="manual" if manual else "scheduled",
        is_externally_triggered=manual,
        logical_date=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        created_on=audit_time(created),
    )
    return run


# Complete resources to send; the builders below apply a test's changes to them.
EXAMPLES: dict[str, dict[str, Any]] = {
    "snowflake": {
        "id": "sf-connection",
        "name": "Snowflake connection",
        "type": "snowflake",
        "source_account_id": "gd1234",
        "region": "us-central1.gcp",
        "warehouse": "compute_wh",
        "database": "mp",
        "role": "mp_role",
        "user": "mp_user",
        "password": PASSWORD,
    },
    "bigquery": {
        "id": "bq-connection",
        "name": "BigQuery connection",
        "type": "bigquery",
        "region": "us-east4",
        "project_id": "mp-project",
        "dataset_id": "mp-dataset",
        "service_account_id": "mp_service",
        "service_account_key": SERVICE_ACCOUNT_KEY,
    },
    "data_model": {
        "id": "orders-model",
        "name": "Orders model",
        "sql_query": "SELECT customer_id, email, updated_at FROM db.sch.orders",
        "load_timestamp_field_name": "UPDATED_AT",
        "load_timestamp_field_type": "timestamp_ntz",
    },
    "pipeline": {
        "id": "p1",
        "name": "Orders pipeline",
        "is_active": True,
        "is_draft": False,
        "connection_id": "sf-connection",
        "data_model_id": "orders-model",
        "partner_feed_key": FEED_KEY,
        "schedule_start_time": datetime(2024, 1, 1, tzinfo=UTC),
        "schedule_interval": "on_demand",
        "environment": "development",
    },
}


def snowflake_connection(**changes: Any) -> Connection:
    """A complete Snowflake connection to send."""
    return Connection(**{**EXAMPLES["snowflake"], **changes})


def bigquery_connection(**changes: Any) -> Connection:
    """A complete BigQuery connection to send."""
    return Connection(**{**EXAMPLES["bigquery"], **changes})


def data_model(**changes: Any) -> DataModel:
    """A complete data model to send."""
    return DataModel(**{**EXAMPLES["data_model"], **changes})


def pipeline(**changes: Any) -> Pipeline:
    """A complete on-demand pipeline to send."""
    return Pipeline(**{**EXAMPLES["pipeline"], **changes})


# ------------------------------------------------------- a scripted mParticle on pytest-httpserver

WS_PREFIX = f"/platform/experimental/workspaces/{WORKSPACE_ID}/inputs/warehouse"
TOKEN_PATH = "/oauth/token"
AUDIENCE = "https://api.mparticle.com"

Handler = Callable[[Request], Response]
Step = Response | Handler
"""One scripted answer: a response, or a handler that makes one from the request."""


def reply(
    status: int = 200, body: object = None, headers: Mapping[str, str] | None = None
) -> Response:
    """A response carrying ``body`` JSON-encoded (``bytes`` go as they are)."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    headers = dict(headers or {})
    if data and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    return Response(data, status, headers)


def ws_error(status: int, message: str) -> Response:
    """A reply in the Warehouse Sync error shape."""
    return reply(status, {"statusCode": status, "errors": [{"message": message}]})


def answer(step: Step, request: Request) -> Response:
    """What ``step`` answers to ``request``."""
    return step if isinstance(step, Response) else step(request)


def bearer(request: Request) -> str | None:
    """The bearer token ``request`` carries, if any."""
    auth = request.authorization
    return auth.token if auth is not None and auth.type == "bearer" else None


class Dropped(ConnectionAbortedError):
    """Raised by :func:`drop`: werkzeug takes a ``ConnectionError`` for a lost client, writes nothing."""


def drop(reset: bool = False) -> Handler:
    """A handler that ends the connection without an answer: a plain close, or a TCP reset."""

    def handler(request: Request) -> Response:
        sock: socket.socket = request.environ["werkzeug.socket"]
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Put a dead socketpair end in place of the TCP socket's descriptor: the TCP socket
            # loses its last descriptor and sends RST, and werkzeug reads EOF from the stand-in.
            dead, peer = socket.socketpair()
            peer.close()
            os.dup2(dead.fileno(), sock.fileno())
            dead.close()
        else:
            sock.shutdown(socket.SHUT_RDWR)
        raise Dropped

    return handler


class MParticleStub(HTTPServer):
    """pytest-httpserver as mParticle for one workspace: an Auth0-like token endpoint, a bearer check
    on every other route, answers scripted per route, and every request kept in arrival order.

    The server is threaded (concurrent clients); werkzeug closes each connection after its answer.
    """

    def __init__(self) -> None:
        super().__init__(host="127.0.0.1", threaded=True)
        self.audience = AUDIENCE
        self.token_ttl = 28800
        self.token_delay = 0.0
        """Seconds the token endpoint takes to answer (the real one takes 1-3 s)."""
        self.requests: list[Request] = []
        """API requests (all but the token endpoint's), dropped ones too."""
        self.token_requests: list[Request] = []
        self.issued: list[str] = []
        self._valid: set[str] = set()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.on("POST", TOKEN_PATH, self.issue_token)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (the client's ``api_root``)."""
        return self.url_for("/").removesuffix("/")

    @property
    def token_url(self) -> str:
        return self.url_for(TOKEN_PATH)

    def ws(self, path: str = "") -> str:
        """The Warehouse Sync path of ``path`` (relative to the workspace's base)."""
        return f"{WS_PREFIX}/{path}" if path else WS_PREFIX

    def on(self, method: str, path: str, *steps: Step) -> None:
        """Script the answers to ``method path``, replacing earlier ones: in order, the last repeats."""
        *first, last = steps
        for handlers in (self.oneshot_handlers, self.handlers):
            handlers[:] = [
                h for h in handlers if (h.matcher.method, h.matcher.uri) != (method, path)
            ]
        for step in first:
            self.expect_oneshot_request(path, method).respond_with_handler(partial(answer, step))
        self.expect_request(path, method).respond_with_handler(partial(answer, last))

    def held(self, response: Response) -> Handler:
        """A handler that keeps ``response`` back until the server stops (outlasting any timeout)."""

        def handler(request: Request) -> Response:
            self._released.wait()
            return response

        return handler

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (as if it had expired server-side)."""
        with self._lock:
            self._valid.clear()

    def dispatch(self, request: Request) -> Response:
        is_token = request.path == TOKEN_PATH
        with self._lock:
            (self.token_requests if is_token else self.requests).append(request)
            authorized = is_token or bearer(request) in self._valid
        if not authorized:
            return ws_error(401, "Unauthorized: missing, malformed or expired bearer token")
        return super().dispatch(request)

    def issue_token(self, request: Request) -> Response:
        """Auth0-style errors (see docs/warehouse-sync-api.md), else a fresh token."""
        body = request.get_json(silent=True)
        fields = ("client_id", "client_secret", "audience", "grant_type")
        if not isinstance(body, dict) or any(not isinstance(body.get(f), str) for f in fields):
            return auth0_error(400, "invalid_request", "Missing required parameter")
        if body["grant_type"] != "client_credentials" or body["audience"] != self.audience:
            return auth0_error(400, "invalid_request", "Invalid audience or grant_type")
        if (body["client_id"], body["client_secret"]) != (CLIENT_ID, CLIENT_SECRET):
            return auth0_error(401, "access_denied", "Unauthorized")
        self._released.wait(self.token_delay)
        with self._lock:
            token = f"tok-{len(self.issued) + 1}-{WORKSPACE_ID}"
            self.issued.append(token)
            self._valid.add(token)
        return reply(
            200, {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}
        )

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.01)  # stop in 10 ms, not the default 500 ms

    def stop(self) -> None:
        self._released.set()
        super().stop()


def auth0_error(status: int, error: str, description: str) -> Response:
    return reply(status, {"error": error, "error_description": description})
