"""Run an emulator: uvicorn on a thread of this process (tests), or as the main program.

>>> with EmulatorServer(EmulatorConfig(snowflake_port=sf.port, clock="manual")) as emulator:  # doctest: +SKIP
...     requests.post(emulator.url + "/oauth/token", json={...})
"""

import asyncio
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import uvicorn

from wsync_dagster.emulator.app import create_app
from wsync_dagster.emulator.backend import Backend
from wsync_dagster.emulator.clock import Clock
from wsync_dagster.emulator.config import EmulatorConfig
from wsync_dagster.emulator.lifecycle import READY_MARKER, bind_socket
from wsync_dagster.emulator.scheduler import Scheduler
from wsync_dagster.emulator.state import load, save
from wsync_dagster.emulator.warehouse import Warehouse

__all__ = ["READY_MARKER", "EmulatorServer"]


class _Uvicorn(uvicorn.Server):
    """uvicorn that reports readiness through an event instead of being polled."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._ready.set()

    def install_signal_handlers(self) -> None:
        """Signals belong to the main program, which calls :meth:`EmulatorServer.stop`."""

    async def drop_connection(self, client: tuple[str, int]) -> None:
        """Abort the TCP connection of ``client`` (it sees the connection closed, no response)."""
        for protocol in list(self.server_state.connections):
            if getattr(protocol, "client", None) == client:
                protocol.transport.abort()
        # Let the transport report the loss, so uvicorn does not answer with a 500 instead.
        await asyncio.sleep(0)
        await asyncio.sleep(0)


class EmulatorServer:
    """One emulator: backend, scheduler (with its worker for a real clock) and HTTP server.

    ``start`` binds ``config.host:config.port`` (0 = a free port), serves on a daemon thread and
    returns the base URL once uvicorn accepts connections; ``stop`` shuts the server and the
    worker down and logs out of the warehouse. Also a context manager.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        clock = Clock(self.config.clock, self.config.clock_start)
        warehouse = Warehouse(
            self.config.snowflake_connect_args(),
            is_down=lambda: self.backend.admin.is_warehouse_down(),
        )
        self.backend = Backend(self.config, clock, warehouse)
        self.state_file = Path(self.config.state_file) if self.config.state_file else None
        if self.state_file is not None:
            load(self.backend.store, self.state_file)
        self.scheduler = Scheduler(self.backend, after_runs=self.save_state)
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.url: str | None = None

    def start(self, timeout: float = 30.0) -> str:
        if self._server is not None:
            raise RuntimeError(f"the emulator is already started ({self.url})")
        self._socket = bind_socket(self.config.host, self.config.port)
        host, port = self._socket.getsockname()[:2]
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{url_host}:{port}"
        ready = threading.Event()
        app = create_app(self.backend, self.scheduler, self._drop_connection)
        server = _Uvicorn(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"), ready
        )
        self._server = server
        sock = self._socket
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name="wsync-emulator-http",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(timeout) or not server.started:
            self.stop()
            raise RuntimeError(f"the emulator did not start within {timeout:.0f} s")
        self.scheduler.start()
        return self.url

    def save_state(self) -> None:
        """Write the state file, when there is one (after runs end, and at stop)."""
        if self.state_file is not None:
            save(self.backend.store, self.state_file)

    async def _drop_connection(self, client: tuple[str, int]) -> None:
        if self._server is not None:
            await self._server.drop_connection(client)

    def stop(self) -> None:
        """Stop serving, stop the worker, log out of the warehouse. Idempotent."""
        self.scheduler.stop()
        if self._server is not None:
            self.save_state()
        server, self._server = self._server, None
        if server is not None:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.backend.warehouse.close()

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
