"""Request bodies of connections, data models and pipelines, as pydantic models.

``docs/warehouse-sync-api.md`` describes the fields. Strict on purpose: unknown fields, missing
fields, wrong types and values outside the documented enums are 400s that name every offending
field, in the emulator's own words (not pydantic's). Response-only fields (audit fields,
``is_faulted``, ``faulted_reason``, ``partner_feed_id``) are accepted and ignored, so a client may
send back what it read. Fields are kept (and serialized) in the order of the documented examples.
"""

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

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
CONNECTION_TYPES = ("snowflake", "bigquery")

# ------------------------------------------------------------------------------- field kinds
# Each check gets the raw JSON value and returns it (an integer converted) or raises an error
# whose text follows the field's name: "<name> must be true or false".


def _invalid(detail: str) -> PydanticCustomError:
    return PydanticCustomError("emulator", "{detail}", {"detail": detail})


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid("must be a string")
    return value


def _text(value: Any) -> str:
    if not _string(value).strip():
        raise _invalid("must not be empty")
    return value


def _slug(value: Any) -> str:
    if not SLUG_RE.match(_string(value)):
        raise _invalid(f"may only contain letters, digits, '_' and '-' (got {value!r})")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _invalid("must be an integer")
    if isinstance(value, str) and not re.fullmatch(r"-?\d+", value):
        raise _invalid("must be an integer")
    return int(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid("must be true or false")
    return value


def _instant(value: Any) -> str:
    _string(value)
    try:
        parse_schedule_instant(value)
    except ValueError:
        raise _invalid(f"must be a UTC instant YYYY-MM-DDTHH:MM:SSZ (got {value!r})") from None
    return value


def _time_zone(value: Any) -> str:
    _string(value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(
            f"must be an IANA time zone such as America/New_York (got {value!r})"
        ) from None
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if _string(value) not in choices:
            raise _invalid(f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    return check


def _required(check: Callable[[Any], Any]) -> BeforeValidator:
    def run(value: Any) -> Any:
        if value is None:
            raise _invalid("must not be null")
        return check(value)

    return BeforeValidator(run)


def _nullable(check: Callable[[Any], Any]) -> BeforeValidator:
    return BeforeValidator(lambda value: None if value is None else check(value))


Text = Annotated[str, _required(_text)]
OptionalText = Annotated[str | None, _nullable(_text)]
Slug = Annotated[str, _required(_slug)]
Integer = Annotated[int, _required(_integer)]
Flag = Annotated[bool, _required(_flag)]
OptionalInstant = Annotated[str | None, _nullable(_instant)]

# ------------------------------------------------------------------------------------ bodies


class Body(BaseModel):
    """Fields every resource has. ``SECRETS`` are masked whenever the resource is served."""

    model_config = ConfigDict(extra="forbid")
    SECRETS: ClassVar[frozenset[str]] = frozenset()

    id: Slug
    name: Text
    workspace_id: Integer


class ConnectionBody(Body):
    """A warehouse connection; its other fields depend on ``type``."""

    type: Annotated[str, _required(_one_of(*CONNECTION_TYPES))]


class SnowflakeConnection(ConnectionBody):
    source_account_id: Text
    region: Text
    warehouse: Text
    database: Text
    role: Text
    user: Text
    password: Text
    snowflake_aws_iam_user_arn: OptionalText = None
    snowflake_aws_external_id: OptionalText = None

    SECRETS: ClassVar[frozenset[str]] = frozenset({"password"})


class BigQueryConnection(ConnectionBody):
    """Accepted and served; the emulator cannot reach BigQuery (a pipeline on it gets a 505)."""

    region: Text
    service_account_id: Text
    service_account_key: Text
    project_id: Text
    dataset_id: Text

    SECRETS: ClassVar[frozenset[str]] = frozenset({"service_account_key"})


CONNECTION_BODIES: dict[str, type[ConnectionBody]] = {
    "snowflake": SnowflakeConnection,
    "bigquery": BigQueryConnection,
}


class DataModelBody(Body):
    type: Annotated[str, _required(_one_of("sql"))]
    sql_query: Text
    load_timestamp_field_type: Annotated[
        str,
        _required(_one_of(*dict.fromkeys(SNOWFLAKE_TIMESTAMP_TYPES + BIGQUERY_TIMESTAMP_TYPES))),
    ]
    load_timestamp_field_name: Text
    load_timestamp_field_time_zone: Annotated[str | None, _nullable(_time_zone)] = None
    load_timestamp_field_time_offset: Annotated[int | None, _nullable(_integer)] = None


# The parameter table's names for the last two fields; every example uses the names above.
DATA_MODEL_ALIASES = {
    "load_timestamp_field_tz": "load_timestamp_field_time_zone",
    "load_timestamp_field_offset_seconds": "load_timestamp_field_time_offset",
}


class PipelineBody(Body):
    SECRETS: ClassVar[frozenset[str]] = frozenset({"partner_feed_key"})

    is_active: Flag
    is_draft: Flag
    connection_id: Slug
    data_model_id: Slug
    partner_feed_key: Text
    schedule_start_time: OptionalInstant = None
    schedule_end_time: OptionalInstant = None
    schedule_interval: Annotated[str, _required(_one_of(*SCHEDULE_INTERVALS))]
    environment: Annotated[str, _required(_one_of("development", "production"))]


# ------------------------------------------------------------------------------- validation


def _unaliased(
    body: dict[str, Any], aliases: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    body = dict(body)
    problems: list[str] = []
    for alias, name in aliases.items():
        if alias in body:
            if name in body:
                problems.append(f"Give either {name} or {alias}, not both.")
            body.setdefault(name, body.pop(alias))
    return body, problems


def _messages(error: ValidationError, model: type[Body]) -> list[str]:
    """Pydantic's errors in the emulator's words: unknown, then missing, then each field's."""
    unknown: list[str] = []
    missing: list[str] = []
    invalid: dict[str, str] = {}
    for item in error.errors():
        name = str(item["loc"][0])
        if item["type"] == "extra_forbidden":
            unknown.append(name)
        elif item["type"] == "missing":
            missing.append(name)
        else:
            invalid.setdefault(name, f"{name} {item['msg']}.")
    problems = [f"Unknown field(s): {', '.join(sorted(unknown))}."] if unknown else []
    if missing:
        ordered = [name for name in model.model_fields if name in missing]
        problems.append(f"Missing required field(s): {', '.join(ordered)}.")
    return problems + [invalid[name] for name in model.model_fields if name in invalid]


def validate(
    body: Any, model: type[Body], aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check a create/replace body against ``model``; return its fields in the model's order.

    Absent optional fields come back as None, integers as ``int``. Raises a 400 listing every
    problem found.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    body, problems = _unaliased(body, aliases or {})
    for name in RESPONSE_ONLY_FIELDS:
        body.pop(name, None)
    try:
        fields = model.model_validate(body).model_dump()
    except ValidationError as error:
        raise bad_request(*problems, *_messages(error, model)) from None
    if problems:
        raise bad_request(*problems)
    return fields


def connection_body(body: Any) -> type[ConnectionBody]:
    """The model for a connection body, which depends on its ``type``."""
    kind = body.get("type") if isinstance(body, dict) else None
    if not isinstance(kind, str) or kind not in CONNECTION_BODIES:
        raise bad_request(
            f"type must be one of {', '.join(CONNECTION_TYPES)} (got {kind!r})."
            if kind is not None
            else "Missing required field(s): type."
        )
    return CONNECTION_BODIES[kind]


def masked(fields: Mapping[str, Any], secrets: frozenset[str]) -> dict[str, Any]:
    """``fields`` with every secret replaced by the mask mParticle shows."""
    return {
        name: MASK if name in secrets and value is not None else value
        for name, value in fields.items()
    }
