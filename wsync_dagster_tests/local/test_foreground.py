"""`dev.py ui` stopped with SIGTERM stops `dg dev` the way `dg dev` expects (SIGINT), so its
webserver, daemon and code server are not orphaned (local/process.py: run_in_foreground)."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

WAIT = 60.0  # seconds before a test fails (never reached on success)

# Stands in for `dg dev`: starts a server of its own (a child that writes its marker on SIGINT),
# says it is ready, and on SIGINT writes its marker and exits without stopping that child, as
# `dg dev` does (a terminal's Ctrl-C reaches the child directly).
TOOL = textwrap.dedent(
    """
    import signal, subprocess, sys, threading
    SERVER = (
        "import signal, sys, threading\\n"
        "done = threading.Event()\\n"
        "def stop(*_):\\n"
        "    open(sys.argv[1], 'w').write('server stopped on SIGINT'); done.set()\\n"
        "signal.signal(signal.SIGINT, stop)\\n"
        "print('server ready', flush=True)\\n"
        "done.wait()\\n"
    )
    server = subprocess.Popen([sys.executable, "-c", SERVER, sys.argv[1] + ".server"],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "server ready"
    stopped = threading.Event()
    def on_sigint(*_):
        open(sys.argv[1], "w").write("stopped on SIGINT")
        stopped.set()
    signal.signal(signal.SIGINT, on_sigint)
    print("tool ready", flush=True)
    stopped.wait()
    """
)

# Stands in for `python -m wsync_dagster.local ui`: SIGTERM becomes SystemExit, as there.
RUNNER = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    from wsync_dagster.local.process import run_in_foreground
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_in_foreground([sys.executable, "-c", sys.argv[1], sys.argv[2]], {}, Path.cwd(), 20)
    """
)


def test_sigterm_gives_the_foreground_tool_sigint_and_waits_for_it(tmp_path: Path) -> None:
    marker = tmp_path / "stopped.txt"
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, TOOL, str(marker)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "tool ready"  # the tool shares the pipe
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=WAIT) == 143
        assert marker.read_text() == "stopped on SIGINT"  # not SIGKILLed
        # and its server got SIGINT too, as from a terminal's Ctrl-C (not orphaned)
        assert Path(f"{marker}.server").read_text() == "server stopped on SIGINT"
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
