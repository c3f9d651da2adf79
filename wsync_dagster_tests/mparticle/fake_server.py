"""A scripted stand-in for mParticle over real HTTP on 127.0.0.1, for client tests and benchmarks.

Not the emulator: it has no behaviour of its own beyond an Auth0-like token endpoint and a bearer
check. Each test scripts the replies it needs, per (method, path), and then reads what the client
actually sent. It speaks HTTP/1.1 with keep-alive and counts accepted TCP connections, so connection
reuse is observable.

    with FakeMParticle() as fake:
        fake.on("GET", fake.ws("connections/c1"), Reply(500), Reply(200, {"id": "c1", ...}))
        ...
        assert [r.method for r in fake.requests] == ["GET", "GET"]

A scripted action is a :class:`Reply`, a :class:`Drop` (close the connection without answering,
optionally with a TCP reset), or a callable taking the :class:`Recorded` request and returning one
of those. Actions are used in order; the last one repeats.
"""

import json
import socket
import struct
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

WS_PREFIX = "/platform/experimental/workspaces/{workspace_id}/inputs/warehouse"
TOKEN_PATH = "/oauth/token"


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    @property
    def bearer(self) -> str | None:
        """The bearer token sent, if any."""
        value = self.headers.get("authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


@dataclass(frozen=True)
class Reply:
    """Answer with ``status`` and ``body`` (JSON-encoded unless it is ``bytes``).

    ``delay`` holds the answer back that many seconds (cut short when the server stops), e.g. to
    outlast a client's read timeout.
    """

    status: int = 200
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict[str, str])
    delay: float = 0.0

    def encoded(self) -> bytes:
        """The body bytes."""
        if isinstance(self.body, bytes):
            return self.body
        return b"" if self.body is None else json.dumps(self.body).encode()


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering; ``reset`` sends a TCP RST instead of a FIN."""

    reset: bool = False


Action = Reply | Drop
Handler = Callable[[Recorded], Action]


def ws_error(status: int, message: str) -> Reply:
    """A reply in the Warehouse Sync error shape."""
    return Reply(status, {"statusCode": status, "errors": [{"message": message}]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: "FakeMParticle") -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn = super().get_request()
        with self.fake.lock:
            self.fake.connections += 1
        return conn

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            self.fake.errors.append(repr(error))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY each reply waits ~40 ms for the
    # client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        recorded = Recorded(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        action = self.server.fake.handle(recorded)
        if isinstance(action, Drop):
            self.close_connection = True
            if action.reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        if action.delay:
            self.server.fake.stopping.wait(action.delay)
        payload = action.encoded()
        self.send_response(action.status)
        for name, value in action.headers.items():
            self.send_header(name, value)
        if payload and not any(k.lower() == "content-type" for k in action.headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeMParticle:
    """Scripted HTTP server: token endpoint + whatever routes a test declares.

    Args:
        client_id: The only client id the token endpoint accepts.
        client_secret: Its secret.
        audience: The audience the token endpoint requires.
        workspace_id: Workspace used by :meth:`ws`.
        token_delay: Seconds the token endpoint takes to answer (the real one takes 1-3 s).
        token_ttl: ``expires_in`` of issued tokens.
        check_bearer: Answer 401 to API requests without a currently valid issued token.
    """

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret-DO-NOT-LEAK",
        audience: str = "https://api.mparticle.com",
        workspace_id: int = 5328,
        token_delay: float = 0.0,
        token_ttl: int = 28800,
        check_bearer: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.workspace_id = workspace_id
        self.token_delay = token_delay
        self.token_ttl = token_ttl
        self.check_bearer = check_bearer
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        """API requests (everything but the token endpoint), in arrival order."""
        self.token_requests: list[Recorded] = []
        self.connections = 0
        """TCP connections accepted."""
        self.errors: list[str] = []
        """Unexpected exceptions inside the server (a test should end with none)."""
        self.issued: list[str] = []
        self._valid: set[str] = set()
        self._scripts: dict[tuple[str, str], list[Action | Handler]] = {}
        self.stopping = threading.Event()
        """Set when the server stops; delays wait on it so that stopping is never held up."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.on("POST", TOKEN_PATH, self.issue_token)

    # lifecycle

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use as the client's ``api_root``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        """The token endpoint's URL."""
        return self.url + TOKEN_PATH

    def start(self) -> Self:
        """Serve in a daemon thread (the socket already listens)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # scripting

    def ws(self, path: str = "") -> str:
        """The Warehouse Sync path for ``path`` (relative to the workspace's base)."""
        base = WS_PREFIX.format(workspace_id=self.workspace_id)
        return f"{base}/{path}" if path else base

    def on(self, method: str, path: str, *actions: Action | Handler) -> None:
        """Script the replies to ``method path`` (used in order; the last repeats)."""
        if not actions:
            raise ValueError("script at least one action")
        with self.lock:
            self._scripts[(method, path)] = list(actions)

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (as if it had expired server-side)."""
        with self.lock:
            self._valid.clear()

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """Recorded API requests matching ``method`` and ``path`` exactly."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # serving

    def handle(self, request: Recorded) -> Action:
        """Record ``request`` and produce the scripted action for it."""
        is_token = request.path == TOKEN_PATH
        with self.lock:
            (self.token_requests if is_token else self.requests).append(request)
            if not is_token and self.check_bearer and request.bearer not in self._valid:
                return ws_error(401, "Unauthorized: missing, malformed or expired bearer token")
            script = self._scripts.get((request.method, request.path))
            step = None if script is None else (script.pop(0) if len(script) > 1 else script[0])
        if step is None:
            return ws_error(404, f"no scripted reply for {request.method} {request.path}")
        return step(request) if callable(step) else step

    def issue_token(self, request: Recorded) -> Action:
        """The default token handler: Auth0-style errors (spec §7 #19), else a fresh token."""
        try:
            body = request.json()
        except ValueError:
            body = None
        fields = ("client_id", "client_secret", "audience", "grant_type")
        if not isinstance(body, dict) or any(not isinstance(body.get(f), str) for f in fields):
            return _auth0_error(400, "invalid_request", "Missing required parameter")
        if body["grant_type"] != "client_credentials" or body["audience"] != self.audience:
            return _auth0_error(400, "invalid_request", "Invalid audience or grant_type")
        if (body["client_id"], body["client_secret"]) != (self.client_id, self.client_secret):
            return _auth0_error(401, "access_denied", "Unauthorized")
        if self.token_delay:
            self.stopping.wait(self.token_delay)
        with self.lock:
            token = f"tok-{len(self.issued) + 1}-{self.workspace_id}"
            self.issued.append(token)
            self._valid.add(token)
        return Reply(
            200, {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}
        )


def _auth0_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description})
