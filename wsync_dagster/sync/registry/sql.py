"""The SQL of a data model: what mParticle refuses in it, what it reads, and the wrapping mParticle
runs around it, reproduced exactly (see docs/warehouse-sync-api.md, the data model SQL and the window
literals; docs/sql.md for the rules, the source tables and the column lineage).

Pure functions, no I/O. The model is read with sqlglot's Snowflake dialect: its tokens decide the
rules mParticle checks word by word (forbidden words, ``;``, a comment that swallows the wrapping's
closing parenthesis), its syntax tree the statement kind, the tables read and the column lineage.
The pre-flight runs the wrapping functions against Snowflake so that its counts equal what mParticle
will extract (same wrapping, same inclusive ``BETWEEN``, same literals).
"""

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.dialects.snowflake import Snowflake
from sqlglot.errors import SqlglotError, TokenError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

# Statements mParticle refuses inside a model (see docs/warehouse-sync-api.md).
UNSUPPORTED_KEYWORDS = ("WITH", "DELETE", "UPDATE", "DROP", "CREATE", "ALTER")

# Reserved identity columns, compared case-insensitively (see docs/warehouse-sync-api.md).
USER_IDENTITY_COLUMNS = frozenset(
    {
        "mpid", "customerid", "customer_id", "facebook", "twitter", "google", "microsoft", "yahoo",
        "email", "facebook_custom_audience_id", "other", "other_id_2", "other_id_3", "other_id_4",
        "other_id_5", "other_id_6", "other_id_7", "other_id_8", "other_id_9", "other_id_10",
        "mobile_number", "phone_number_2", "phone_number_3",
    }
)  # fmt: skip
DEVICE_IDENTITY_COLUMNS = frozenset(
    {
        "android_uuid", "ios_advertising_id", "push_token", "ios_idfv", "android_advertising_id",
        "amp_id", "roku_advertising_id", "roku_publisher_id", "microsoft_advertising_id",
        "microsoft_publisher_id", "fire_advertising_id", "mp_deviceid",
    }
)  # fmt: skip
IDENTITY_COLUMNS = USER_IDENTITY_COLUMNS | DEVICE_IDENTITY_COLUMNS

# mParticle's load_timestamp_field_type values for Snowflake (docs/warehouse-sync-api.md): the one
# declaration the registry's model and the window literals below both use.
LoadTimestampType = Literal[
    "timestamp_ltz", "timestamp_ntz", "timestamp_tz", "datetime", "date",
    "timestamp_unixtime_ms", "timestamp_unixtime_s",
]  # fmt: skip
LOAD_TIMESTAMP_TYPES: tuple[str, ...] = get_args(LoadTimestampType)

DIALECT = "snowflake"
_WRAPPED = "SELECT ... FROM ( <sql> ) WHERE ..."
# Token types that are text, not words: a forbidden word inside one does not count.
_LITERALS = frozenset(
    {
        TokenType.STRING, TokenType.RAW_STRING, TokenType.NATIONAL_STRING, TokenType.BYTE_STRING,
        TokenType.HEX_STRING, TokenType.BIT_STRING, TokenType.HEREDOC_STRING, TokenType.IDENTIFIER,
    }
)  # fmt: skip
_SIMPLE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class TableName:
    """A table the model reads, each part as Snowflake resolves it: an unquoted part upper-cased, a
    quoted one exactly as written (``"My_DB".Sch.tbl`` is ``My_DB``, ``SCH``, ``TBL``)."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, order=True)
class SourceColumn:
    """One column of a table the model reads."""

    table: TableName
    column: str


@dataclass(frozen=True)
class SqlAnalysis:
    """What sqlglot reads in a model (see :func:`analyze`)."""

    query: bool | None  # a single query (SELECT, a UNION of them, ...); None: could not be parsed
    tables: tuple[TableName, ...]  # every table read, in order of appearance, without repeats
    # each output column (as Snowflake names it) -> the source columns its value is computed from
    lineage: Mapping[str, tuple[SourceColumn, ...]]
    problem: str | None  # why the tables or the lineage are incomplete (sqlglot's words)


@dataclass(frozen=True)
class _Scan:
    tokens: tuple[Token, ...]
    complete: bool  # False: tokenizing stopped at an unclosed quote or comment


@functools.lru_cache(maxsize=1024)
def _scan(sql: str) -> _Scan:
    tokenizer = Snowflake().tokenizer()
    try:
        return _Scan(tuple(tokenizer.tokenize(sql)), complete=True)
    except TokenError:
        return _Scan(tuple(tokenizer.tokens), complete=False)


def _words(scan: _Scan) -> list[str]:
    """The model's words (keywords, names, operators), upper-cased: no literal or quoted name."""
    return [t.text.upper() for t in scan.tokens if t.token_type not in _LITERALS]


def sql_problems(sql: str) -> list[str]:
    """Why mParticle would refuse ``sql`` as a data model, with the fix; empty when it is fine.

    Words are read as sqlglot's Snowflake tokenizer reads them, so nothing inside a string, a
    quoted name or a comment counts. A model sqlglot cannot parse is not refused for that
    (Snowflake's grammar is larger than sqlglot's, and the pre-flight runs the model in Snowflake
    before anything is sent): see :func:`analyze` for what is then unknown.
    """
    problems: list[str] = []
    scan = _scan(sql)
    words = _words(scan)
    # mParticle's rule is a text that starts with SELECT (so a WITH first is refused); a second
    # statement needs a ';', refused below
    first = next((w for w in words if w != "("), None)
    if first != "SELECT":
        problems.append(
            "must be a single SELECT statement (it is run as a subquery: "
            "SELECT ... FROM ( <sql> ) WHERE ...)"
        )
    if found := sorted(set(words) & set(UNSUPPORTED_KEYWORDS)):
        problems.append(
            f"uses {', '.join(found)}, which mParticle does not support in a model "
            "(allowed: SELECT, DISTINCT, FROM, WHERE, JOIN, GROUP BY, ORDER BY, AS, ON, IN); "
            "rewrite a WITH as a subquery or a view"
        )
    if any(t.token_type is TokenType.SEMICOLON for t in scan.tokens):
        problems.append("contains ';': a model is one statement without a trailing semicolon")
    if problem := open_comment_problem(sql):
        problems.append(problem)
    return problems


def open_comment_problem(sql: str) -> str | None:
    """Why a comment in ``sql`` would swallow the closing parenthesis of mParticle's wrapping.

    mParticle runs the model inside ``SELECT ... FROM ( <sql> ) WHERE ...`` on one line, so a line
    comment (``--`` or Snowflake's ``//``) that reaches the end of the text, or a ``/*`` that is never
    closed, comments out the ``)`` and everything after it. Only the text after the last token can
    hold such a comment: it is whitespace and comments (or, when tokenizing stopped early, the
    unclosed quote or comment that stopped it).
    """
    scan = _scan(sql)
    position = scan.tokens[-1].end + 1 if scan.tokens else 0
    while position < len(sql):
        if sql[position].isspace():
            position += 1
            continue
        opened = sql[position : position + 2]
        if opened == "/*":
            closed = sql.find("*/", position + 2)
            if closed < 0:
                return (
                    "opens a /* comment that is never closed, which would swallow the closing "
                    f"parenthesis: mParticle runs the model as a subquery ({_WRAPPED}); close it "
                    "with */ (or remove it) so that it reads /* ... */"
                )
            position = closed + 2
        elif opened in ("--", "//"):
            newline = sql.find("\n", position)
            if newline < 0:
                return (
                    f"ends in a {opened} comment, which would swallow the closing parenthesis: "
                    f"mParticle runs the model as a subquery ({_WRAPPED}); remove the comment or "
                    "write it as /* ... */"
                )
            position = newline + 1
        else:  # an unclosed quote stopped the tokenizer: Snowflake reports that one itself
            return None
    return None


@functools.lru_cache(maxsize=1024)
def analyze(sql: str) -> SqlAnalysis:
    """The model's statement kind, the tables it reads and its column lineage, by sqlglot.

    A model sqlglot cannot parse has no tables and no lineage, and :attr:`SqlAnalysis.problem` says
    why; the registry then needs ``sources`` to place the sync after its tables.
    """
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except SqlglotError as error:
        return SqlAnalysis(None, (), MappingProxyType({}), _first_line(error))
    if len(statements) != 1 or statements[0] is None:
        return SqlAnalysis(None, (), MappingProxyType({}), "not one statement")
    tree = normalize_identifiers(statements[0], dialect=DIALECT)
    if not isinstance(tree, exp.Query):
        return SqlAnalysis(False, (), MappingProxyType({}), None)
    tables = _tables(tree)  # before the lineage, which qualifies the tree in place
    traced, problem = _column_lineage(tree)
    return SqlAnalysis(True, tables, MappingProxyType(traced), problem)


def named_tables(sql: str) -> tuple[TableName, ...]:
    """The tables ``sql`` reads (after FROM and JOIN, in comma joins, unions and subqueries at any
    depth), in order of appearance, without repeats; empty when sqlglot cannot parse it."""
    return analyze(sql).tables


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _table_name(table: exp.Table) -> TableName | None:
    """A named table's parts; None for what only looks like one (``TABLE(FLATTEN(...))``, a stage,
    ``IDENTIFIER($name)``)."""
    parts = table.parts
    if not parts or not all(isinstance(p, exp.Identifier) for p in parts):
        return None
    return TableName(tuple(p.name for p in parts))


def _tables(tree: exp.Expr) -> tuple[TableName, ...]:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    found: list[TableName] = []
    for table in tree.find_all(exp.Table, bfs=False):
        name = _table_name(table)
        if name is not None and not (len(name.parts) == 1 and name.parts[0] in ctes):
            found.append(name)
    return tuple(dict.fromkeys(found))


def _column_lineage(tree: exp.Query) -> tuple[dict[str, tuple[SourceColumn, ...]], str | None]:
    """Each explicitly named output column -> the source table columns it is computed from.

    A column is named by its alias or, bare, by itself (``EMAIL``); Snowflake names any other
    expression after its text, which sqlglot does not reproduce, so those are left out, as are
    ``*`` columns (their names are only known in Snowflake). What cannot be traced to a table is
    left out of a column's sources: an unqualified column in a query over several tables, a column
    taken through a ``*`` over several tables. A column with no traced source (a constant,
    ``COUNT(*)``, or only untraceable reads) is left out. A model with a union whose first branch
    selects ``*`` has no lineage.
    """
    named = {s.alias_or_name for s in tree.selects if isinstance(s, exp.Alias | exp.Column)}
    named.discard("*")
    if any(any(s.is_star for s in u.selects) for u in tree.find_all(exp.SetOperation)):
        # a union's columns are matched by position, and sqlglot guesses the position of a
        # column that a * of its first branch may hold
        return {}, "a UNION (or INTERSECT, EXCEPT) whose first branch selects *: positions unknown"
    try:
        # trim_selects only shortens each step's SQL label, unused here; with it and a copy of
        # the tree (this one is ours) tracing costs twice as much (benchmarks/definition_load.py)
        nodes = lineage(None, tree, schema={}, dialect=DIALECT, trim_selects=False, copy=False)
    except Exception as error:  # sqlglot's tracing is best effort; the model itself is fine
        return {}, f"sqlglot could not trace the columns: {_first_line(error)}"
    traced: dict[str, tuple[SourceColumn, ...]] = {}
    for name, node in nodes.items():
        if name in named and (sources := _sources(node)):
            traced[name] = tuple(sorted(sources))
    return traced, None


def _sources(root: Node) -> set[SourceColumn]:
    """The table columns at the leaves of one output column's lineage tree."""
    found: set[SourceColumn] = set()
    stack: list[tuple[Node, Node | None, Node | None]] = [(root, None, None)]
    while stack:
        node, parent, grandparent = stack.pop()
        stack.extend((child, node, parent) for child in node.downstream)
        if node.downstream or not isinstance(node.expression, exp.Table):
            continue  # an inner step, a constant, or an unresolved column (a Placeholder)
        table = _table_name(node.expression)
        if table is None or parent is None:
            continue
        if not isinstance(parent.expression, exp.Star):
            if column := _leaf_column(node):
                found.add(SourceColumn(table, column))
        elif column := _through_star(parent, grandparent):
            found.add(SourceColumn(table, column))
    return found


def _leaf_column(leaf: Node) -> str | None:
    """The column a table leaf stands for: sqlglot names the leaf with the column's SQL in its
    default dialect (``T.EMAIL``, ``T."Email"``), whose last token is the column's name."""
    tokens = sqlglot.tokenize(leaf.name)
    return tokens[-1].text if tokens else None


def _through_star(star: Node, reader: Node | None) -> str | None:
    """The column a ``SELECT *`` step passes through unchanged, when it reads one table.

    sqlglot names the step ``<derived table>.<column>`` after a column that ``reader``, one level
    up, reads; over several tables (``SELECT *`` of a join) the column's table is unknown."""
    if len(star.downstream) != 1 or reader is None:
        return None
    for column in reader.expression.find_all(exp.Column):
        if f"{column.table}.{column.name}" == star.name:
            return column.name
    return None


def quote_identifier(name: str) -> str:
    """A column reference for ``name`` as it appears in the model's output.

    Snowflake upper-cases unquoted names, so an all-upper simple name is written bare (``UPDATED_AT``);
    anything else (``"customer_id"``, ``"$firstname"``) is quoted to keep its exact spelling.
    """
    if _SIMPLE_IDENTIFIER.match(name) and name == name.upper():
        return name
    return '"' + name.replace('"', '""') + '"'


def render_bound(
    instant: datetime,
    field_type: str,
    time_zone: str | None = None,
    offset_seconds: int = 0,
) -> str:
    """One ``BETWEEN`` bound for a window edge, as mParticle renders it (see the window
    literals in docs/warehouse-sync-api.md).

    The offset is added to the column before comparing, so the bound moves by ``-offset``. With a time
    zone, the column holds wall-clock times of that zone, so the bound is converted and written
    without an offset.
    """
    if instant.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if field_type not in LOAD_TIMESTAMP_TYPES:
        raise ValueError(f"unknown load_timestamp_field_type {field_type!r}")
    shifted = instant.astimezone(UTC) - timedelta(seconds=offset_seconds)
    if field_type == "timestamp_unixtime_ms":
        return str((shifted - _EPOCH) // timedelta(milliseconds=1))
    if field_type == "timestamp_unixtime_s":
        return str((shifted - _EPOCH) // timedelta(seconds=1))
    if time_zone:
        local = shifted.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)
        return f"'{local:%Y-%m-%d}'" if field_type == "date" else f"'{local:%Y-%m-%d %H:%M:%S}'"
    if field_type == "date":
        return f"'{shifted:%Y-%m-%d}'"
    return f"'{shifted:%Y-%m-%d %H:%M:%S}+0000'"


def window_predicate(
    column: str,
    field_type: str,
    start: datetime,
    end: datetime,
    time_zone: str | None = None,
    offset_seconds: int = 0,
) -> str:
    """``<column> BETWEEN <start> AND <end>``: inclusive at both ends, exactly as documented."""
    lo = render_bound(start, field_type, time_zone, offset_seconds)
    hi = render_bound(end, field_type, time_zone, offset_seconds)
    return f"{quote_identifier(column)} BETWEEN {lo} AND {hi}"


def columns_query(sql: str) -> str:
    """mParticle's column discovery query."""
    return f"SELECT * FROM ( {sql} ) LIMIT 0"


def grouped_count_query(
    sql: str,
    predicates: Sequence[str],
    covering_predicate: str,
    identity_columns: Iterable[str] = (),
) -> str:
    """One scan that counts every window (and its rows without any identity value).

    Each window gets its own conditional aggregate, so a row on a shared boundary counts in both
    adjacent windows, as it does in mParticle; a plain ``GROUP BY`` bucket would count it once. The
    result has ``2 * len(predicates)`` columns: all window counts, then all identity-less counts.
    """
    if not predicates:
        raise ValueError("grouped_count_query needs at least one window")
    identities = [quote_identifier(c) for c in identity_columns]
    no_identity = " AND ".join(f"{c} IS NULL" for c in identities) or "TRUE"
    counts = [f"COUNT_IF({p})" for p in predicates]
    identityless = [f"COUNT_IF(({p}) AND {no_identity})" for p in predicates]
    return f"SELECT {', '.join(counts + identityless)} FROM ( {sql} ) WHERE {covering_predicate}"
