"""Request validation for connections, data models and pipelines (spec §2.2-§2.4, §7 #10/#22).

Fields are kept (and serialized) in the order of the documented examples. Strict on purpose: unknown fields, missing fields, wrong types and values outside the documented
enums are 400s that name every offending field. Response-only fields (audit fields, ``is_faulted``,
``faulted_reason``, ``partner_feed_id``) are accepted and ignored, so a client may send back what it
read.
"""

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wsync_dagster.emulator.clock import parse_schedule_instant
from wsync_dagster.emulator.errors import bad_request
from wsync_dagster.emulator.limits import SCHEDULE_INTERVALS

MASK = "************"
SLUG_RE = re.compile(r"^[A-Za-z0-9_-]+$")
RESPONSE_ONLY_FIELDS = frozenset(
    {
        "is_faulted",
        "faulted_reason",
        "partner_feed_id",
        "created_on",
        "created_by",
        "last_modified_on",
        "last_modified_by",
    }
)

Kind = Literal["str", "slug", "int", "bool", "instant", "time_zone"]


@dataclasses.dataclass(frozen=True)
class Field:
    """One request field: its kind, whether it must be present, may be null, or is an enum."""

    kind: Kind = "str"
    required: bool = True
    nullable: bool = False
    choices: tuple[str, ...] = ()
    secret: bool = False


Schema = Mapping[str, Field]

_OPTIONAL_TEXT = Field(required=False, nullable=True)
COMMON: Schema = {"id": Field("slug"), "name": Field(), "workspace_id": Field("int")}
CONNECTION_TYPES: dict[str, Schema] = {
    "snowflake": {
        "source_account_id": Field(),
        "region": Field(),
        "warehouse": Field(),
        "database": Field(),
        "role": Field(),
        "user": Field(),
        "password": Field(secret=True),
        "snowflake_aws_iam_user_arn": _OPTIONAL_TEXT,
        "snowflake_aws_external_id": _OPTIONAL_TEXT,
    },
    "bigquery": {
        "region": Field(),
        "service_account_id": Field(),
        "service_account_key": Field(secret=True),
        "project_id": Field(),
        "dataset_id": Field(),
    },
}
SNOWFLAKE_TIMESTAMP_TYPES = (
    "timestamp_ltz",
    "timestamp_ntz",
    "timestamp_tz",
    "datetime",
    "date",
    "timestamp_unixtime_ms",
    "timestamp_unixtime_s",
)
BIGQUERY_TIMESTAMP_TYPES = (
    "datetime",
    "date",
    "timestamp",
    "timestamp_unixtime_ms",
    "timestamp_unixtime_s",
)
TIMESTAMP_TYPES = {"snowflake": SNOWFLAKE_TIMESTAMP_TYPES, "bigquery": BIGQUERY_TIMESTAMP_TYPES}
DATA_MODEL: Schema = {
    **COMMON,
    "type": Field(choices=("sql",)),
    "sql_query": Field(),
    "load_timestamp_field_type": Field(
        choices=tuple(dict.fromkeys(SNOWFLAKE_TIMESTAMP_TYPES + BIGQUERY_TIMESTAMP_TYPES))
    ),
    "load_timestamp_field_name": Field(),
    "load_timestamp_field_time_zone": Field("time_zone", required=False, nullable=True),
    "load_timestamp_field_time_offset": Field("int", required=False, nullable=True),
}
# The parameter table's names for the last two fields; every example uses the names above.
DATA_MODEL_ALIASES = {
    "load_timestamp_field_tz": "load_timestamp_field_time_zone",
    "load_timestamp_field_offset_seconds": "load_timestamp_field_time_offset",
}
PIPELINE: Schema = {
    **COMMON,
    "is_active": Field("bool"),
    "is_draft": Field("bool"),
    "connection_id": Field("slug"),
    "data_model_id": Field("slug"),
    "partner_feed_key": Field(secret=True),
    "schedule_start_time": Field("instant", required=False, nullable=True),
    "schedule_end_time": Field("instant", required=False, nullable=True),
    "schedule_interval": Field(choices=SCHEDULE_INTERVALS),
    "environment": Field(choices=("development", "production")),
}


def _problem(name: str, field: Field, value: Any) -> str | None:
    """Why ``value`` is not valid for ``field``, or None."""
    if value is None:
        return None if field.nullable else f"{name} must not be null"
    if field.kind == "bool":
        return None if isinstance(value, bool) else f"{name} must be true or false"
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            return f"{name} must be an integer"
        return (
            None
            if isinstance(value, int) or re.fullmatch(r"-?\d+", value)
            else (f"{name} must be an integer")
        )
    if not isinstance(value, str):
        return f"{name} must be a string"
    if field.choices and value not in field.choices:
        return f"{name} must be one of {', '.join(field.choices)} (got {value!r})"
    if field.kind == "slug" and not SLUG_RE.match(value):
        return f"{name} may only contain letters, digits, '_' and '-' (got {value!r})"
    if field.kind == "str" and not value.strip():
        return f"{name} must not be empty"
    if field.kind == "instant":
        try:
            parse_schedule_instant(value)
        except ValueError:
            return f"{name} must be a UTC instant YYYY-MM-DDTHH:MM:SSZ (got {value!r})"
    if field.kind == "time_zone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{name} must be an IANA time zone such as America/New_York (got {value!r})"
    return None


def validate(body: Any, schema: Schema, aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check a create/replace body against ``schema``; return it in schema order.

    Absent optional fields come back as None, integers as ``int``. Raises a 400 listing every
    problem found.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    body = dict(body)
    problems: list[str] = []
    for alias, name in (aliases or {}).items():
        if alias in body:
            if name in body:
                problems.append(f"Give either {name} or {alias}, not both.")
            body.setdefault(name, body.pop(alias))
    unknown = sorted(set(body) - set(schema) - RESPONSE_ONLY_FIELDS)
    if unknown:
        problems.append(f"Unknown field(s): {', '.join(unknown)}.")
    missing = [name for name, field in schema.items() if field.required and name not in body]
    if missing:
        problems.append(f"Missing required field(s): {', '.join(missing)}.")
    for name, field in schema.items():
        if name in body and (problem := _problem(name, field, body[name])):
            problems.append(problem + ".")
    if problems:
        raise bad_request(*problems)
    return {
        name: int(body[name])
        if field.kind == "int" and body.get(name) is not None
        else body.get(name)
        for name, field in schema.items()
    }


def connection_schema(body: Any) -> Schema:
    """The schema for a connection body, which depends on its ``type``."""
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in CONNECTION_TYPES:
        raise bad_request(
            f"type must be one of {', '.join(CONNECTION_TYPES)} (got {kind!r})."
            if kind is not None
            else "Missing required field(s): type."
        )
    return {**COMMON, "type": Field(choices=tuple(CONNECTION_TYPES)), **CONNECTION_TYPES[kind]}


def masked(fields: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """``fields`` with every secret replaced by the mask mParticle shows."""
    return {
        name: MASK if name in schema and schema[name].secret and value is not None else value
        for name, value in fields.items()
    }
