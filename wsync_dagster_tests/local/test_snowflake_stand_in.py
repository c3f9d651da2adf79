import os
import select
import socket
import subprocess
import sys
import textwrap

import pytest
import snowflake.connector.errors

from wsync_dagster.local.process import LocalServiceError, ServiceProcess
from wsync_dagster.local.snowflake import LocalSnowflake
from wsync_dagster.local.snowflake_server import inline_variables_outside_quotes
from wsync_dagster_tests.conftest import create_table


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_is_free(host: str, port: int) -> bool:
    """Nobody listens there: a connection is refused and the port can be bound again.

    SO_REUSEADDR because the closed connections of the test linger in TIME_WAIT, which is not a leak.
    """
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def test_starts_on_loopback_answers_and_stops_without_leaks() -> None:
    stand_in = LocalSnowflake()
    stand_in.start()
    pid, host, port = stand_in.pid, stand_in.host, stand_in.port
    assert pid is not None
    try:
        assert host == "127.0.0.1"
        assert not _port_is_free(host, port)
        connection = stand_in.connect()
        assert connection.cursor().execute("SELECT 40 + 2").fetchone() == (42,)
        connection.close()
    finally:
        stand_in.stop()
    assert not _process_exists(pid)
    assert _port_is_free(host, port)
    stand_in.stop()  # idempotent


def test_a_failed_start_reports_the_childs_own_words() -> None:
    child = ServiceProcess(
        "doomed",
        [sys.executable, "-c", "import sys; sys.stderr.write('port is on fire\\n'); sys.exit(3)"],
        ready_marker="never",
    )
    with pytest.raises(LocalServiceError, match=r"exited with code 3[\s\S]*port is on fire"):
        child.start()
    assert not child.running


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(LocalServiceError, match="Address already in use"):
            LocalSnowflake(port=busy).start()


def test_two_processes_see_the_same_rows(local_snowflake: LocalSnowflake) -> None:
    connection = local_snowflake.connect()
    cursor = connection.cursor()
    create_table(cursor, "SHARED_TEST.NOTES_SCHEMA.NOTES", "ID INTEGER, WHO VARCHAR")
    cursor.execute("INSERT INTO SHARED_TEST.NOTES_SCHEMA.NOTES VALUES (1, 'parent'), (2, 'parent')")
    other_process = textwrap.dedent(
        f"""
        import snowflake.connector
        conn = snowflake.connector.connect(**{local_snowflake.connect_args()!r})
        cur = conn.cursor()
        print(cur.execute("SELECT COUNT(*) FROM SHARED_TEST.NOTES_SCHEMA.NOTES").fetchone()[0])
        cur.execute("INSERT INTO SHARED_TEST.NOTES_SCHEMA.NOTES VALUES (3, 'child')")
        conn.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", other_process], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    rows = cursor.execute(
        "SELECT ID, WHO FROM SHARED_TEST.NOTES_SCHEMA.NOTES ORDER BY ID"
    ).fetchall()
    assert rows == [(1, "parent"), (2, "parent"), (3, "child")]
    connection.close()


def test_quoted_dollar_aliases_are_accepted(snowflake_cursor) -> None:
    snowflake_cursor.execute(
        """SELECT 'Ann' AS "$firstname", '$literal' AS PLAIN, 1 AS "odd""$name" """
    )
    assert [d.name for d in snowflake_cursor.description] == ["$firstname", "PLAIN", 'odd"$name']
    assert snowflake_cursor.fetchall() == [("Ann", "$literal", 1)]


def test_session_variables_still_work_and_unknown_ones_still_fail(snowflake_cursor) -> None:
    snowflake_cursor.execute("SET answer = 42")
    assert snowflake_cursor.execute("SELECT $answer, '$answer'").fetchone() == (42, "$answer")
    with pytest.raises(snowflake.connector.errors.ProgrammingError, match=r"\$MISSING"):
        snowflake_cursor.execute("SELECT $missing")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT x AS "$firstname"', 'SELECT x AS "$firstname"'),
        ("SELECT '$v' , $v", "SELECT '$v' , 7"),
        ("SELECT 'it''s $v', $V", "SELECT 'it''s $v', 7"),
        ('SELECT "a""$v" FROM t WHERE c = $v', 'SELECT "a""$v" FROM t WHERE c = 7'),
        ("SELECT $1, $$text$$", "SELECT $1, $$text$$"),
        ("SELECT $vv2", None),
    ],
)
def test_variable_substitution_skips_quoted_text(sql: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(snowflake.connector.errors.ProgrammingError, match=r"\$VV2"):
            inline_variables_outside_quotes({"v": "7"}, sql)
    else:
        assert inline_variables_outside_quotes({"v": "7"}, sql) == expected


def test_the_stand_in_stops_when_its_parent_is_killed() -> None:
    """Even a SIGKILLed parent leaves no server behind: the child watches its stdin pipe."""
    script = (
        "import threading\n"
        "from wsync_dagster.local.snowflake import LocalSnowflake\n"
        "stand_in = LocalSnowflake()\n"
        "stand_in.start()\n"
        "print(stand_in.pid, flush=True)\n"
        "threading.Event().wait()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    exited = os.pidfd_open(child)  # readable once the process has exited
    try:
        parent.kill()
        parent.wait()
        readable, _, _ = select.select([exited], [], [], 60)
        assert readable, f"stand-in {child} outlived its killed parent"
    finally:
        os.close(exited)
        parent.stdout.close()


def test_the_stand_in_counts_the_queries_it_answers() -> None:
    with LocalSnowflake() as stand_in:  # its own: nothing else queries it meanwhile
        connection = stand_in.connect()
        try:
            before = stand_in.query_count()
            connection.cursor().execute("SELECT 1")
            connection.cursor().execute("SELECT 2")
            assert stand_in.query_count() - before == 2
        finally:
            connection.close()
