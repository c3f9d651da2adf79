"""Your own tables on the embedded default: a folder of ``.sql`` and ``.csv`` files, loaded after the sample.

:func:`seed_folder` loads every file of a folder into the local Snowflake stand-in, in file-name order
(an optional numeric prefix such as ``01_`` or ``02-`` orders them and is not part of a table name):

``*.sql``
    Snowflake SQL, run statement by statement as written, except ``{{anchor}}``, which becomes the
    sample's anchor as a ``TIMESTAMP_NTZ`` literal (the exclusive upper bound of the sample data, the
    start of the current UTC hour when the stack first started): write
    ``DATEADD(hour, -5, {{anchor}})`` for "five hours before the newest data".
``[NN_][DATABASE.]SCHEMA.TABLE.csv``
    rows for that table (database ``WSYNC_DEMO`` when the name has two parts). The first line names
    the columns, each ``NAME`` or ``NAME:TYPE`` (Snowflake types; quote a type with a comma, e.g.
    ``"AMOUNT:NUMBER(12,2)"``). If the table does not exist yet it is created from that line (untyped
    columns are ``VARCHAR``); if it exists (the sample's, or one a ``.sql`` file created) the rows are
    added to it, the header naming some of its columns in any order and no types. An empty field is
    ``NULL``.

The sample's time anchoring applies to a CSV's ``TIMESTAMP…``/``DATETIME`` columns: all of them move
by the same whole number of days, chosen so that the file's newest timestamp lands in the day before
the anchor, as the sample's newest rows do. Whole days keep every time of day, so rows on an hour or
midnight boundary stay on it, and the gaps between rows are kept. Values are ISO 8601
(``2026-11-30 14:05:00``, ``2026-11-30T14:05:00Z``); a naive one is UTC. ``DATE`` columns and SQL files
are loaded as written (SQL uses ``{{anchor}}`` instead).

Rows are loaded the way the sample is: a CSV file, ``PUT`` to the table's stage, ``COPY INTO``.
Anything that cannot be loaded is a :class:`SeedError` naming the file, the line and the fix.
"""

import csv
import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from snowflake.connector.util_text import split_statements

from wsync_dagster.local.sample_data import DATABASE, copy_csv_into

SEED_SUFFIXES = (".sql", ".csv")
ANCHOR_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_LEADING_COMMENTS = re.compile(r"(\s|--[^\n]*(\n|$)|/\*.*?\*/)*", re.S)
_ORDER_PREFIX = re.compile(r"^\d+[_-]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")
DAY = timedelta(days=1)


class SeedError(ValueError):
    """A seed file that cannot be loaded: the message names the file, the line and the fix."""


@dataclass(frozen=True)
class SeededFile:
    """What one seed file did."""

    path: Path
    table: str | None = None
    """The table a CSV file loaded (``DATABASE.SCHEMA.TABLE``)."""
    rows: int = 0
    """Rows a CSV file loaded."""
    statements: int = 0
    """Statements a SQL file ran."""
    shift: timedelta | None = None
    """How far a CSV file's timestamps moved (None: it has no timestamp column)."""

    def describe(self) -> str:
        if self.table is None:
            return f"ran {self.path.name}: {self.statements} statement(s)"
        moved = ""
        if self.shift is not None:
            moved = f"; timestamps moved {self.shift.days:+d} day(s) to the sample's anchor"
        return f"seeded {self.table} from {self.path.name}: {self.rows:,} rows{moved}"


def seed_files(folder: Path) -> list[Path]:
    """The files :func:`seed_folder` loads, in order; refuses a folder that is not one, and files
    it would not know how to load (hidden files are left alone)."""
    if not folder.is_dir():
        raise SeedError(
            f"{folder}: the seed folder does not exist (or is not a folder); create it, or point "
            "WSYNC_LOCAL_SEED at a folder of .sql and .csv files"
        )
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    unknown = [p.name for p in files if p.suffix.lower() not in SEED_SUFFIXES or not p.is_file()]
    if unknown:
        raise SeedError(
            f"{folder}: cannot seed {', '.join(unknown)}: the seed folder holds only .sql and "
            ".csv files (move the others elsewhere; hidden files are ignored)"
        )
    return files


def seed_folder(connection: Any, folder: Path, anchor: datetime) -> list[SeededFile]:
    """Load every ``.sql`` and ``.csv`` file of ``folder`` through a DB-API Snowflake ``connection``,
    in file-name order, anchored on ``anchor`` (module doc). Stops at the first file that fails,
    with a :class:`SeedError`."""
    if anchor.tzinfo is None:
        raise ValueError("seed_folder: anchor must be timezone-aware (UTC)")
    files = seed_files(folder)  # a wrong folder is refused before anything is loaded
    done: list[SeededFile] = []
    cursor = connection.cursor()
    try:
        with tempfile.TemporaryDirectory(prefix="wsync-seed-") as tmp:
            for path in files:
                if path.suffix.lower() == ".sql":
                    done.append(_run_sql(cursor, path, anchor))
                else:
                    done.append(_load_csv(cursor, path, anchor, Path(tmp)))
    finally:
        cursor.close()
    return done


def anchor_literal(anchor: datetime) -> str:
    """``anchor`` as the SQL ``{{anchor}}`` stands for: a UTC ``TIMESTAMP_NTZ`` literal."""
    naive = anchor.astimezone(UTC).replace(tzinfo=None)
    return f"'{naive.isoformat(sep=' ')}'::TIMESTAMP_NTZ"


def _line_of(text: str, statement: str, start: int) -> tuple[int, int]:
    """The 1-based line where ``statement`` begins in ``text`` (searching from ``start``), and the
    offset to search the next statement from."""
    at = text.find(statement, start)
    if at < 0:
        return 0, start
    leading = _LEADING_COMMENTS.match(statement)
    skipped = leading.group(0).count("\n") if leading else 0
    return text.count("\n", 0, at) + 1 + skipped, at + len(statement)


def _run_sql(cursor: Any, path: Path, anchor: datetime) -> SeededFile:
    text = path.read_text(encoding="utf-8")
    literal = anchor_literal(anchor)
    count, offset = 0, 0
    for statement, _ in split_statements(io.StringIO(text), remove_comments=False):
        line, offset = _line_of(text, statement, offset)
        where = f"{path}:{line}" if line else str(path)
        for name in ANCHOR_PLACEHOLDER.findall(statement):
            if name != "anchor":
                raise SeedError(
                    f"{where}: {{{{{name}}}}} is not a placeholder; the only one is {{{{anchor}}}} "
                    "(the sample's anchor)"
                )
        if not (runnable := _without_comments(statement)):
            continue
        try:
            cursor.execute(ANCHOR_PLACEHOLDER.sub(literal, runnable))
        except Exception as error:  # the connector's ProgrammingError and its kin
            raise SeedError(
                f"{where}: the Snowflake stand-in refused this statement: {error}. Fix the "
                "statement (seed files run in file-name order: is a table it needs created later?)"
            ) from error
        count += 1
    return SeededFile(path, statements=count)


def _without_comments(statement: str) -> str:
    """The statement without its comments (the connector's own splitter knows quoted text), or ""
    for a comment alone. The stand-in refuses a statement followed by a comment."""
    parts = split_statements(io.StringIO(statement), remove_comments=True)
    return " ".join(part for part, _ in parts).strip()


def _table_of(path: Path) -> str:
    stem = _ORDER_PREFIX.sub("", path.name[: -len(path.suffix)])
    parts = stem.split(".")
    if len(parts) == 2:
        parts = [DATABASE, *parts]
    if len(parts) != 3 or not all(_IDENTIFIER.match(p) for p in parts):
        raise SeedError(
            f"{path}: a CSV file is named after its table: [NN_]SCHEMA.TABLE.csv or "
            "[NN_]DATABASE.SCHEMA.TABLE.csv (letters, digits and _), e.g. SALES.ORDERS.csv"
        )
    return ".".join(p.upper() for p in parts)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str | None

    @property
    def is_timestamp(self) -> bool:
        kind = (self.type or "").upper()
        return kind.startswith("TIMESTAMP") or kind.startswith("DATETIME")


def _header(path: Path, row: Sequence[str]) -> list[_Column]:
    columns = []
    for cell in row:
        name, _, kind = (part.strip() for part in cell.partition(":"))
        if not _IDENTIFIER.match(name) or (kind and not _TYPE.match(kind)):
            raise SeedError(
                f"{path}:1: header cell {cell!r}: write NAME or NAME:TYPE, e.g. ORDER_ID or "
                '"AMOUNT:NUMBER(12,2)" (the first line of a seed CSV names its columns)'
            )
        columns.append(_Column(name.upper(), kind.upper() or None))
    names = [c.name for c in columns]
    if duplicated := sorted({n for n in names if names.count(n) > 1}):
        raise SeedError(f"{path}:1: column {', '.join(duplicated)} is named twice in the header")
    return columns


def _existing_columns(cursor: Any, table: str) -> list[_Column]:
    database, schema, name = table.split(".")
    cursor.execute(
        f"SELECT column_name, data_type FROM {database}.information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, name),
    )
    return [_Column(str(n).upper(), str(t).upper()) for n, t in cursor.fetchall()]


def _table_columns(cursor: Any, path: Path, table: str, header: list[_Column]) -> list[_Column]:
    """The table's columns in its own order, creating the table from ``header`` if it is new."""
    database, schema, _ = table.split(".")
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
    existing = _existing_columns(cursor, table)
    if not existing:
        ddl = ", ".join(f"{c.name} {c.type or 'VARCHAR'}" for c in header)
        cursor.execute(f"CREATE TABLE {table} ({ddl})")
        return [_Column(c.name, c.type or "VARCHAR") for c in header]
    if typed := [c.name for c in header if c.type]:
        raise SeedError(
            f"{path}:1: {table} already exists (the sample's, or created by an earlier seed "
            f"file), so the header gives no types: drop the :TYPE of {', '.join(typed)}"
        )
    known = {c.name for c in existing}
    if unknown := [c.name for c in header if c.name not in known]:
        raise SeedError(
            f"{path}:1: {table} has no column {', '.join(unknown)}; its columns are "
            f"{', '.join(c.name for c in existing)}"
        )
    return existing


def _instant(path: Path, line: int, column: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise SeedError(
            f"{path}:{line}: column {column}: {value!r} is not a timestamp; write ISO 8601, e.g. "
            "2026-11-30 14:05:00 or 2026-11-30T14:05:00Z"
        ) from None


def _utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)


def anchor_shift(newest: datetime, anchor: datetime) -> timedelta:
    """The whole days that move ``newest`` into the day before ``anchor``: ``[anchor - 1 day,
    anchor)``."""
    days = -((_utc(newest) - anchor) // DAY) - 1
    return timedelta(days=days)


def _load_csv(cursor: Any, path: Path, anchor: datetime, workdir: Path) -> SeededFile:
    table = _table_of(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise SeedError(f"{path}: the file is empty; its first line must name the columns")
    header = _header(path, rows[0])
    body = rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise SeedError(
                f"{path}:{number}: {len(row)} field(s), the header names {len(header)}; quote "
                'fields that hold a comma ("a, b")'
            )
    columns = _table_columns(cursor, path, table, header)
    stamps = {c.name for c in columns if c.is_timestamp} & {c.name for c in header}
    position = {c.name: i for i, c in enumerate(header)}
    parsed: dict[tuple[int, str], datetime] = {
        (i, name): _instant(path, i + 2, name, row[position[name]])
        for i, row in enumerate(body)
        for name in stamps
        if row[position[name]] != ""
    }
    shift = anchor_shift(max(map(_utc, parsed.values())), anchor) if parsed else None

    def cell(i: int, row: Sequence[str], column: _Column) -> str:
        if column.name not in position:
            return ""
        if (i, column.name) in parsed and shift is not None:
            return (parsed[(i, column.name)] + shift).isoformat(sep=" ")
        return row[position[column.name]]

    staged = workdir / f"{path.stem}.csv"
    with staged.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        for i, row in enumerate(body):
            writer.writerow(cell(i, row, column) for column in columns)
    try:
        copy_csv_into(cursor, table, staged)
    except Exception as error:  # the connector's ProgrammingError and its kin
        raise SeedError(
            f"{path}: the Snowflake stand-in could not load it into {table}: {error}. Check "
            "each value against its column's type"
        ) from error
    return SeededFile(path, table=table, rows=len(body), shift=shift)


__all__ = [
    "SEED_SUFFIXES",
    "SeedError",
    "SeededFile",
    "anchor_literal",
    "anchor_shift",
    "seed_files",
    "seed_folder",
]
