"""The local Snowflake stand-in: a fakesnow server on loopback, started as its own process.

``python -m wsync_dagster.local.snowflake_server --host 127.0.0.1 --port 0`` binds the port (0 = a free
one), then prints ``wsync-snowflake ready http://HOST:PORT`` on stdout once it accepts connections. The
real ``snowflake-connector-python`` reaches it with ``host``, ``port`` and ``protocol="http"``; every
connection shares one in-memory DuckDB, so several processes see the same tables.

Two fixes over stock fakesnow 0.12:

* mParticle's reserved attributes are produced by quoted aliases that start with ``$``
  (``first_name AS "$firstname"``). fakesnow substitutes session variables with a regular expression over
  the raw SQL, quoted identifiers and string literals included, and rejects those aliases as unknown
  variables. :func:`inline_variables_outside_quotes` applies the same substitution only outside quotes.
* Internal stages (``PUT`` + ``COPY INTO``) live in a directory this process owns and deletes on exit,
  instead of a temporary directory that outlives it.
* Large results come in chunks, as from Snowflake (:mod:`.result_chunks`), so ``fetchmany`` streams.
"""

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from typing import Any

from wsync_dagster.emulator.lifecycle import (
    EXIT_WITH_PARENT_FLAG,
    bind_socket,
    exit_when_parent_exits,
)

# Quoted identifiers ("a""b") and string literals ('it''s', 'a\'b'), which variables never occur in.
_QUOTED = re.compile(r"(\"(?:[^\"]|\"\")*\"|'(?:[^'\\]|\\.|'')*')", re.DOTALL)
# A session variable reference: $name, but not $1 (positional) and not part of a $$ or a word.
_VARIABLE = re.compile(r"(?<![\$\w])\$(?!\d+)\w+")

READY_MARKER = "wsync-snowflake ready"


def inline_variables_outside_quotes(variables: dict[str, str], sql: str) -> str:
    """Substitute ``$name`` session variables in ``sql``, leaving quoted text untouched.

    Raises the same ``ProgrammingError`` as Snowflake for a variable that was never set.
    """
    import snowflake.connector.errors

    parts = _QUOTED.split(sql)
    # re.split with one capturing group alternates: unquoted, quoted, unquoted, ...
    for index in range(0, len(parts), 2):
        chunk = parts[index]
        for name, value in variables.items():
            chunk = re.sub(
                rf"(?<![\$\w])\${re.escape(name)}\b", lambda _m, v=value: v, chunk, flags=re.I
            )
        if missing := _VARIABLE.search(chunk):
            raise snowflake.connector.errors.ProgrammingError(
                msg=f"Session variable '{missing.group().upper()}' does not exist"
            )
        parts[index] = chunk
    return "".join(parts)


def _patch_fakesnow(stage_dir: str) -> None:
    from fakesnow import variables
    from fakesnow.transforms import stage

    def inline_variables(self: Any, sql: str) -> str:
        return inline_variables_outside_quotes(self._variables, sql)

    variables.Variables.inline_variables = inline_variables
    shutil.rmtree(stage.LOCAL_BUCKET_PATH, ignore_errors=True)
    stage.LOCAL_BUCKET_PATH = stage_dir


QUERY_PATH = "/queries/v1/query-request"
STATS_PATH = "/wsync-stats"


def count_queries(app: Any) -> None:
    """Count the queries the stand-in answers; ``GET /wsync-stats`` says how many (benchmarks read
    it: every Snowflake query of a deployment, the runs sensor's included)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    counted = {"queries": 0}
    lock = threading.Lock()
    routes = app.router.routes
    for index, route in enumerate(routes):
        if getattr(route, "path", None) == QUERY_PATH:
            endpoint = route.endpoint

            async def query_request(request: Request, endpoint: Any = endpoint) -> Response:
                with lock:
                    counted["queries"] += 1
                return await endpoint(request)

            routes[index] = Route(route.path, query_request, methods=["POST"])

    async def stats(_request: Request) -> Response:
        with lock:
            return JSONResponse(dict(counted))

    routes.append(Route(STATS_PATH, stats, methods=["GET"]))


def serve(host: str, port: int, exit_with_parent: bool = False) -> None:
    import uvicorn

    stage_dir = tempfile.mkdtemp(prefix="wsync-snowflake-stages-")
    try:
        _patch_fakesnow(stage_dir)
        import fakesnow.server

        from wsync_dagster.local import result_chunks

        result_chunks.install(fakesnow.server.app)
        count_queries(fakesnow.server.app)

        sock = bind_socket(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        ready_line = f"{READY_MARKER} http://{bound_host}:{bound_port}\n"

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    # The readiness protocol of wsync_dagster.local.process, not a log line.
                    sys.stdout.write(ready_line)
                    sys.stdout.flush()

        config = uvicorn.Config(
            fakesnow.server.app, log_level="warning", access_log=False, lifespan="off"
        )
        server = _Server(config)
        if exit_with_parent:
            exit_when_parent_exits(lambda: setattr(server, "should_exit", True))
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wsync_dagster.local.snowflake_server",
        description="Local Snowflake stand-in (fakesnow) for wsync_dagster.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        EXIT_WITH_PARENT_FLAG, action="store_true", help="stop when stdin closes (parent gone)"
    )
    args = parser.parse_args(argv)
    # uvicorn turns SIGTERM into a graceful shutdown; make SIGINT do the same when run by hand.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.host, args.port, args.exit_with_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
