"""The SQL mParticle runs around a data model, reproduced exactly (see docs/warehouse-sync-api.md,
the data model SQL and the window literals).

Pure text functions, no I/O: the pre-flight uses them against Snowflake so that its counts equal what
mParticle will extract (same wrapping, same inclusive ``BETWEEN``, same literals).
"""

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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

TIMESTAMP_TYPES = ("timestamp_ntz", "timestamp_ltz", "timestamp_tz", "datetime")
LOAD_TIMESTAMP_TYPES = (*TIMESTAMP_TYPES, "date", "timestamp_unixtime_ms", "timestamp_unixtime_s")

_QUOTED_OR_COMMENT = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|//[^\n]*", re.DOTALL
)
# Each token that can hide a closing parenthesis, closed (string, identifier, comment that ends);
# the named group catches one that runs to the end of the text instead.
_CLOSED_OR_OPEN = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$|--[^\n]*\n|//[^\n]*\n|/\*.*?\*/"
    r"|(?P<open>--|//|/\*|'|\"|\$\$)",
    re.DOTALL,
)
_WRAPPED = "SELECT ... FROM ( <sql> ) WHERE ..."
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_SIMPLE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# FROM or JOIN, then a dotted name of unquoted parts (a "(" instead starts a subquery).
_NAMED_TABLE = re.compile(
    r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_$]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_$]*){0,2})",
    re.IGNORECASE,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def strip_literals(sql: str) -> str:
    """``sql`` with string literals, quoted identifiers and comments blanked out."""
    return _QUOTED_OR_COMMENT.sub(" ", sql)


def sql_problems(sql: str) -> list[str]:
    """Why mParticle would refuse ``sql`` as a data model, with the fix; empty when it is fine."""
    problems: list[str] = []
    bare = strip_literals(sql)
    words = [w.upper() for w in _WORD.findall(bare)]
    if not words or words[0] != "SELECT":
        problems.append(
            "must be a single SELECT statement (it is run as a subquery: "
            "SELECT ... FROM ( <sql> ) WHERE ...)"
        )
    if found := sorted({w for w in words if w in UNSUPPORTED_KEYWORDS}):
        problems.append(
            f"uses {', '.join(found)}, which mParticle does not support in a model "
            "(allowed: SELECT, DISTINCT, FROM, WHERE, JOIN, GROUP BY, ORDER BY, AS, ON, IN); "
            "rewrite a WITH as a subquery or a view"
        )
    if bare.rstrip().endswith(";") or ";" in bare:
        problems.append("contains ';': a model is one statement without a trailing semicolon")
    if problem := open_comment_problem(sql):
        problems.append(problem)
    return problems


def named_tables(sql: str) -> tuple[str, ...]:
    """The tables ``sql`` names after FROM and JOIN, as written (upper-cased, as Snowflake resolves
    unquoted names), in order, without repeats.

    A model cannot use WITH (see :func:`sql_problems`), so every name after FROM or JOIN is a table
    or view. Quoted names and comma joins are not recognised; a registry lists those in ``sources``.
    """
    found = (
        re.sub(r"\s+", "", m.group(1)).upper() for m in _NAMED_TABLE.finditer(strip_literals(sql))
    )
    return tuple(dict.fromkeys(found))


def open_comment_problem(sql: str) -> str | None:
    """Why a comment in ``sql`` would swallow the closing parenthesis of mParticle's wrapping.

    mParticle runs the model inside ``SELECT ... FROM ( <sql> ) WHERE ...`` on one line, so a line
    comment (``--`` or Snowflake's ``//``) that reaches the end of the text, or a ``/*`` that is never
    closed, comments out the ``)`` and everything after it.
    """
    for token in _CLOSED_OR_OPEN.finditer(sql):
        opened = token.group("open")
        if opened in ("--", "//"):
            return (
                f"ends in a {opened} comment, which would swallow the closing parenthesis: "
                f"mParticle runs the model as a subquery ({_WRAPPED}); remove the comment or "
                "write it as /* ... */"
            )
        if opened == "/*":
            return (
                "opens a /* comment that is never closed, which would swallow the closing "
                f"parenthesis: mParticle runs the model as a subquery ({_WRAPPED}); close it with */ "
                "(or remove it) so that it reads /* ... */"
            )
        if opened:  # an unclosed quote: Snowflake reports that one itself
            return None
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


def count_query(sql: str, predicate: str) -> str:
    """mParticle's row count query for one window."""
    return f"SELECT COUNT(*) FROM ( {sql} ) WHERE {predicate}"


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
