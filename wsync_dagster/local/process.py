"""Start a local server as a child process, wait until it says it is ready, and stop it cleanly.

Shared by the local Snowflake stand-in and the mParticle emulator. The protocol is one line on the
child's stdout that contains its base URL (``http://127.0.0.1:PORT``); everything else the child writes
goes to a log file, so a failed start can be reported with the child's own last words.

The child's stdin is a pipe that the parent never writes to: when the parent dies, however it dies
(even SIGKILL), the pipe closes, and a child started with ``EXIT_WITH_PARENT_FLAG`` shuts down
(:func:`wsync_dagster.emulator.lifecycle.exit_when_parent_exits`). No orphaned servers.
"""

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from wsync_dagster.emulator.lifecycle import EXIT_WITH_PARENT_FLAG

__all__ = ["EXIT_WITH_PARENT_FLAG", "LocalServiceError", "ServiceProcess"]

_URL_RE = re.compile(r"(https?://[\w.\-\[\]:]+)")


class LocalServiceError(RuntimeError):
    """A local stand-in could not be started or stopped."""


class ServiceProcess:
    """A child process that announces its base URL on stdout.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``stop`` is idempotent and is
    also what ``__exit__`` calls, so an exception inside the ``with`` block never leaks the child.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_marker: str,
        start_timeout: float = 60.0,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_marker = ready_marker
        self.start_timeout = start_timeout
        self.env = env
        self._owned_log = log_path is None
        self.log_path = log_path or Path(
            tempfile.mkstemp(prefix=f"wsync-{name}-", suffix=".log")[1]
        )
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self.url: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the child and return its base URL once it is ready."""
        if self._proc is not None:
            raise LocalServiceError(f"{self.name} is already started ({self.url})")
        log = self.log_path.open("a", encoding="utf-8")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.PIPE,  # never written: closes when we die (see module doc)
                text=True,
                env=self.env,
                # Own process group: a Ctrl-C in the terminal reaches us, and we stop the child.
                start_new_session=True,
            )
        finally:
            log.close()
        self._reader = threading.Thread(
            target=self._pump_stdout, name=f"{self.name}-stdout", daemon=True
        )
        self._reader.start()
        try:
            self.url = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _pump_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_ready(self) -> str:
        while True:
            try:
                line = self._lines.get(timeout=self.start_timeout)
            except queue.Empty:
                raise LocalServiceError(
                    f"{self.name} did not report ready within {self.start_timeout:.0f} s. "
                    f"Its log: {self.log_path}\n{self.log_tail()}"
                ) from None
            if line is None:
                code = self._proc.wait() if self._proc else None
                raise LocalServiceError(
                    f"{self.name} exited with code {code} before it was ready. "
                    f"Its log ({self.log_path}):\n{self.log_tail()}"
                )
            if self.ready_marker in line and (match := _URL_RE.search(line)):
                return match.group(1)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the child: SIGTERM (graceful), then SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                if sys.platform == "win32":
                    proc.terminate()
                else:
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if sys.platform == "win32":
                    proc.kill()
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                proc.wait(timeout=timeout)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        if self._owned_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# How long a foreground tool (``dg dev``) and its children get to stop after SIGINT.
STOP_SECONDS = 30.0


def stop_group(child: subprocess.Popen[Any], stop_signal: int, grace: float) -> None:
    """``stop_signal`` to the process group ``child`` leads, SIGKILL to whatever is left of it after
    ``grace`` seconds; returns once the child is reaped (a zombie leader still counts in its
    group, so it is reaped while waiting)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, stop_signal)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if child.poll() is not None and not group_alive(child.pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member runs as another user: it is still there
        return True
    return True


def run_in_foreground(
    command: Sequence[str], env: dict[str, str], cwd: Path, stop_seconds: float = STOP_SECONDS
) -> int:
    """Run ``command`` in a process group of its own until it exits; if this process is stopped,
    stop that whole group the way a terminal's Ctrl-C does, and wait for it.

    ``dg dev`` starts a webserver, a daemon and a code server, and each stops on SIGINT, which a
    terminal's Ctrl-C sends to every process of the foreground group; ``dg dev`` alone does not stop
    them. So when this process is stopped (Ctrl-C, or SIGTERM, which ``python -m
    wsync_dagster.local`` turns into ``SystemExit``), the group gets SIGINT and ``stop_seconds`` to
    stop, then SIGKILL. ``subprocess.run`` instead SIGKILLed ``dg dev`` alone, and its three servers
    kept running against a stopped stack.
    """
    process = subprocess.Popen(list(command), env=env, cwd=cwd, start_new_session=True)
    try:
        return process.wait()
    except BaseException:
        stop_group(process, signal.SIGINT, stop_seconds)
        raise
