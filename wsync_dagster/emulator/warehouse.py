"""The warehouse side of a pipeline: SQL rules, the documented wrapping, and running it.

The rules and the wrapping are described in ``docs/warehouse-sync-api.md``.

Every query goes to one Snowflake endpoint (the local stand-in) through ``snowflake.connector``.
Connections are pooled per credential, since a login costs more than a query.
"""

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import snowflake.connector
import snowflake.connector.errors

UNSUPPORTED_KEYWORDS = ("WITH", "DELETE", "UPDATE", "DROP", "CREATE", "ALTER")
# String literals, quoted identifiers and comments: keywords inside them do not count.
_NOT_CODE = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_FIRST_WORD = re.compile(r"^[\s(]*([A-Za-z_]\w*)")
_UNSUPPORTED_RE = re.compile(rf"\b({'|'.join(UNSUPPORTED_KEYWORDS)})\b", re.IGNORECASE)


def check_model_sql(sql: str) -> None:
    """Raise ``ValueError`` naming what is wrong when ``sql`` cannot be a Warehouse Sync model.

    The query must be one ``SELECT`` that works as a subquery: no trailing ``;`` and none of
    ``WITH``, ``DELETE``, ``UPDATE``, ``DROP``, ``CREATE``, ``ALTER`` outside quotes and comments.
    """
    code = _NOT_CODE.sub(" ", sql)
    first = _FIRST_WORD.match(code)
    if first is None:
        raise ValueError("sql_query must be a SELECT statement")
    if first.group(1).upper() != "SELECT":
        raise ValueError(f"sql_query must start with SELECT, not {first.group(1).upper()}")
    if ";" in code:
        raise ValueError("sql_query must be a single query without ';' (it runs as a subquery)")
    found = sorted({match.upper() for match in _UNSUPPORTED_RE.findall(code)})
    if found:
        raise ValueError(
            f"sql_query uses unsupported SQL: {', '.join(found)} "
            f"(not supported: {', '.join(UNSUPPORTED_KEYWORDS)})"
        )


def window_literals(
    start: datetime,
    end: datetime,
    field_type: str,
    time_zone: str | None = None,
    offset_seconds: int = 0,
) -> tuple[str, str]:
    """The two ``BETWEEN`` bounds for a window, rendered for the timestamp column's type.

    The offset is added to the column, so the bounds move by ``-offset_seconds``; with a time zone
    the bounds become that zone's wall-clock time without an offset.
    """
    shift = timedelta(seconds=-offset_seconds)
    start, end = start + shift, end + shift
    render: Callable[[datetime], str]
    if field_type == "timestamp_unixtime_ms":
        render = lambda b: str(round(b.timestamp() * 1000))  # noqa: E731
    elif field_type == "timestamp_unixtime_s":
        render = lambda b: str(int(b.timestamp()))  # noqa: E731
    else:
        if time_zone:
            zone = ZoneInfo(time_zone)
            start, end = start.astimezone(zone), end.astimezone(zone)
        pattern = "%Y-%m-%d" if field_type == "date" else "%Y-%m-%d %H:%M:%S"
        suffix = "" if time_zone or field_type == "date" else "+0000"
        render = lambda b: f"'{b.strftime(pattern)}{suffix}'"  # noqa: E731
    return render(start), render(end)


def window_predicate(timestamp_field: str, bounds: tuple[str, str]) -> str:
    return f"{timestamp_field} BETWEEN {bounds[0]} AND {bounds[1]}"


def describe_sql(sql: str) -> str:
    return f"SELECT * FROM ( {sql} ) LIMIT 0"


def count_sql(sql: str, predicate: str) -> str:
    return f"SELECT COUNT(*) FROM ( {sql} ) WHERE {predicate}"


def extract_sql(sql: str, predicate: str) -> str:
    return f"SELECT OBJECT_CONSTRUCT_KEEP_NULL(*) FROM ( {sql} ) WHERE {predicate}"


class WarehouseError(Exception):
    """The warehouse ran the query and rejected it (bad SQL); the message is the warehouse's."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse could not be reached, or it rejected the connection's credentials."""


@dataclass(frozen=True)
class Credentials:
    """What a Warehouse Sync connection logs in with (``database`` becomes the session's)."""

    account: str
    user: str
    password: str
    database: str | None = None


def _message(error: snowflake.connector.errors.Error) -> str:
    return (error.msg or str(error)).strip()


class Warehouse:
    """Runs model SQL on the configured Snowflake endpoint for a connection's credentials.

    ``connect_args`` reach the endpoint; its ``user`` and ``password`` are the only credentials the
    warehouse accepts. ``is_down`` is asked before every login and query: the emulator's "warehouse
    unreachable" fault.
    """

    def __init__(self, connect_args: Mapping[str, Any], *, is_down: Callable[[], bool]) -> None:
        self._args = dict(connect_args)
        self._host = self._args["host"]
        self._port = self._args["port"]
        self._is_down = is_down
        self._lock = threading.Lock()
        self._idle: dict[Credentials, list[snowflake.connector.SnowflakeConnection]] = {}

    def _login(self, credentials: Credentials) -> snowflake.connector.SnowflakeConnection:
        if (credentials.user, credentials.password) != (self._args["user"], self._args["password"]):
            raise WarehouseUnavailable(
                f"Snowflake rejected the credentials of user {credentials.user!r} "
                f"(incorrect username or password)"
            )
        args = dict(self._args)
        args.update(
            account=credentials.account or args["account"],
            user=credentials.user,
            password=credentials.password,
            # Download one result chunk ahead while the run maps the current one: memory stays
            # bounded by two chunks, however large the window.
            client_prefetch_threads=1,
        )
        if credentials.database:
            args["database"] = credentials.database
        try:
            return snowflake.connector.connect(**args)
        except snowflake.connector.errors.Error as error:
            raise WarehouseUnavailable(
                f"could not connect to Snowflake at {self._host}:{self._port}: {_message(error)}"
            ) from error

    @contextlib.contextmanager
    def _cursor(
        self, credentials: Credentials
    ) -> Iterator[snowflake.connector.cursor.SnowflakeCursor]:
        if self._is_down():
            raise WarehouseUnavailable(
                f"could not connect to Snowflake at {self._host}:{self._port}: warehouse unreachable"
            )
        with self._lock:
            pool = self._idle.setdefault(credentials, [])
            connection = pool.pop() if pool else None
        if connection is None:
            connection = self._login(credentials)
        healthy = False
        try:
            with connection.cursor() as cursor:
                try:
                    yield cursor
                except snowflake.connector.errors.ProgrammingError as error:
                    healthy = True
                    raise WarehouseError(_message(error)) from error
                except snowflake.connector.errors.Error as error:
                    raise WarehouseUnavailable(
                        f"lost the connection to Snowflake: {_message(error)}"
                    ) from error
                healthy = True
        finally:
            if healthy:
                with self._lock:
                    self._idle.setdefault(credentials, []).append(connection)
            else:
                with contextlib.suppress(Exception):
                    connection.close()

    def columns(self, credentials: Credentials, sql: str) -> list[str]:
        """The model's column names, from ``SELECT * FROM ( sql ) LIMIT 0``."""
        with self._cursor(credentials) as cursor:
            cursor.execute(describe_sql(sql))
            return [column.name for column in cursor.description]

    def count(self, credentials: Credentials, sql: str, predicate: str) -> int:
        """Rows of the model in a window: the documented pre-flight count."""
        with self._cursor(credentials) as cursor:
            cursor.execute(count_sql(sql, predicate))
            row = cursor.fetchone()
            assert row is not None
            return int(row[0])

    def extract(
        self, credentials: Credentials, sql: str, predicate: str, batch_rows: int
    ) -> Iterator[list[str]]:
        """Stream the window's rows as ``OBJECT_CONSTRUCT_KEEP_NULL`` JSON texts, in batches."""
        with self._cursor(credentials) as cursor:
            cursor.execute(extract_sql(sql, predicate))
            while batch := cursor.fetchmany(batch_rows):
                yield [row[0] for row in batch]

    def close(self) -> None:
        """Log out every pooled connection."""
        with self._lock:
            connections = [c for pool in self._idle.values() for c in pool]
            self._idle.clear()
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()
