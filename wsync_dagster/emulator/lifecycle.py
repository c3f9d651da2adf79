"""Process helpers for a local server: stop with the parent, bind a socket, announce readiness.

Standard library only, so the local Snowflake stand-in and the launcher in ``wsync_dagster.local``
can share them without importing the emulator's web stack.

A child started with ``EXIT_WITH_PARENT_FLAG`` gets a stdin pipe that its parent never writes to:
when the parent dies, however it dies (even SIGKILL), the pipe closes and the child shuts down
(:func:`exit_when_parent_exits`). No orphaned servers.
"""

import socket
import sys
import threading
from collections.abc import Callable

EXIT_WITH_PARENT_FLAG = "--exit-with-parent"
# What the emulator prints on stdout, followed by its base URL, once it accepts connections.
READY_MARKER = "wsync-emulator ready"


def exit_when_parent_exits(shutdown: Callable[[], None]) -> None:
    """Call ``shutdown`` once stdin reaches end-of-file (the parent closed it or died)."""

    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        shutdown()

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = a free port), ready to hand to uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
