"""Run a program we do not own (PostgreSQL, Dagster's processes) so that it never outlives us.

``python -m wsync_dagster.local.deploy.guard [options] -- PROGRAM ARGS...`` starts ``PROGRAM`` in a
process group of its own, waits until it is ready (a TCP port accepts connections, or an HTTP URL
answers), then prints one line ``wsync-guard ready <url> pid=<pid>`` so that
:class:`~wsync_dagster.local.process.ServiceProcess` can start it like any local server.

The guard stops the whole group (the program and everything it spawned, e.g. Dagster run workers):
with ``--stop-signal`` (default SIGTERM), then SIGKILL after ``--grace`` seconds, when

* its own stdin reaches end-of-file (the parent closed it or died, even by SIGKILL),
* it receives SIGTERM or SIGINT,
* the program exits on its own (leftover children are stopped too).

It exits with the program's exit code. Standard library only, so it starts in a fraction of a second.
"""

import argparse
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from wsync_dagster.emulator.lifecycle import exit_when_parent_exits
from wsync_dagster.local.process import stop_group

READY_MARKER = "wsync-guard ready"


def _answers(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    if parts.path in ("", "/") and not parts.query:
        try:
            with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def as_user(user: str | None) -> dict[str, Any]:
    """``subprocess.Popen`` options that run a program as ``user`` with only its own group."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    exit_when_parent_exits(stop.set)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    child = subprocess.Popen(
        args.program,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,  # the program's output goes to the log; our stdout is the protocol
        start_new_session=True,
        **as_user(args.user),
    )
    announced = False
    deadline = time.monotonic() + args.ready_timeout
    while child.poll() is None and not stop.is_set():
        if not announced:
            if args.ready_url is None or _answers(args.ready_url):
                sys.stdout.write(f"{READY_MARKER} {args.announce} pid={child.pid}\n")
                sys.stdout.flush()
                announced = True
            elif time.monotonic() > deadline:
                sys.stderr.write(f"{args.ready_url} did not answer in {args.ready_timeout:.0f} s\n")
                break
        stop.wait(0.2 if announced else 0.1)
    stop_group(child, getattr(signal, args.stop_signal), args.grace)
    return child.returncode if child.returncode is not None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsync_dagster.local.deploy.guard")
    parser.add_argument("--ready-url", help="ready once this answers (bare host:port: TCP connect)")
    parser.add_argument("--announce", default="http://127.0.0.1", help="URL printed when ready")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--stop-signal", default="SIGTERM", choices=("SIGTERM", "SIGINT"))
    parser.add_argument("--grace", type=float, default=20.0, help="seconds before SIGKILL")
    parser.add_argument("--user", help="run the program as this user (needs root)")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.program[:1] == ["--"]:
        args.program = args.program[1:]
    if not args.program:
        parser.error("no program given")
    return run(args)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: the stdin watcher thread is blocked in a read, and interpreter shutdown with a
    # thread inside a buffered read aborts ("could not acquire lock for <stdin>").
    os._exit(code)
