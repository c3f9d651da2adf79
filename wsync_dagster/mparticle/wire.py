"""The base of the typed wire models: validators, enums, the base models and response parsing.

The models themselves are in :mod:`wsync_dagster.mparticle.models`.

Two parsing modes, one set of models:

* **Built by you** (a request): strict. Unknown fields are an error (a typo such as
  ``scheduled_interval`` fails at once), enums, ids and timestamps are validated, and
  :meth:`ResourceModel.request_body` re-checks the finished object before the client sends it.
* **Parsed from the server** (a response, via :func:`parse_response`): unknown fields are ignored,
  so additions on mParticle's side do not break the client.

Secrets (``password``, ``service_account_key``, ``partner_feed_key``) are :class:`pydantic.SecretStr`:
``repr``, ``str`` and ``model_dump`` show them masked; only :meth:`ResourceModel.request_body` reveals
them, for the wire. mParticle masks them in every response as ``"************"``; sending that mask
back would overwrite the real secret, so ``request_body`` refuses it.

Timestamps: schedule and run instants come as ``YYYY-MM-DDTHH:MM:SSZ``; audit fields
(``created_on``…) come without a zone and with 0-3 fraction digits (``2022-10-19T17:08:10.013``) and
are UTC. Both parse to timezone-aware UTC datetimes. ``schedule_start_time``/``schedule_end_time`` are
always sent as ``YYYY-MM-DDTHH:MM:SSZ``.
"""

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    model_validator,
)

from wsync_dagster.mparticle.errors import InvalidRequestError

MASKED_SECRET = "************"
"""How mParticle masks secrets in responses."""

_SLUG_RE = re.compile(r"[A-Za-z0-9_-]+")
_INSTANT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_RESPONSE_CONTEXT = "wsync_response"


# --------------------------------------------------------------------------------------- validators


def check_id(value: str, what: str = "id") -> str:
    """Check that ``value`` is a resource id slug (``^[A-Za-z0-9_-]+$``).

    Args:
        value: The candidate id.
        what: What the id names, for the error message (e.g. ``"pipeline id"``).

    Returns:
        ``value`` unchanged.

    Raises:
        InvalidRequestError: If it is not a non-empty string of letters, digits, ``_`` and ``-``.
    """
    if not isinstance(value, str) or not _SLUG_RE.fullmatch(value):
        raise InvalidRequestError(
            f"{what} must match ^[A-Za-z0-9_-]+$ (letters, digits, '_' and '-'), got {value!r}"
        )
    return value


def to_utc_instant(value: object) -> datetime:
    """Read a timezone-aware instant strictly, as the client accepts it from callers.

    Args:
        value: An aware :class:`~datetime.datetime`, or an ISO-8601 string with seconds and a zone
            (``2023-02-01T00:00:00Z`` or ``...+02:00``).

    Returns:
        The instant as an aware UTC datetime.

    Raises:
        InvalidRequestError: If the value is naive, malformed or of another type.
    """
    if isinstance(value, str):
        if not _INSTANT_RE.fullmatch(value):
            raise InvalidRequestError(
                f"expected an ISO-8601 instant like 2023-02-01T00:00:00Z, got {value!r}"
            )
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise InvalidRequestError(f"expected a datetime or ISO-8601 string, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(
            f"instant {value.isoformat()} has no timezone; pass an aware datetime (UTC)"
        )
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """Render an aware datetime the way mParticle writes instants: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_seconds(value: datetime) -> datetime:
    if value.microsecond:
        raise ValueError(
            f"{value.isoformat()} has fractions of a second; mParticle schedule times are whole "
            "seconds (YYYY-MM-DDTHH:MM:SSZ)"
        )
    return value


def _lenient_utc(value: object) -> object:
    """Server timestamps: any ISO-8601 form; no zone means UTC (the audit-field convention)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value  # let pydantic report it
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def check_time_zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name") from None
    return value


Slug = Annotated[str, AfterValidator(check_id)]
"""A resource id: letters, digits, ``_`` and ``-``."""

ScheduleTime = Annotated[
    datetime,
    BeforeValidator(to_utc_instant),
    AfterValidator(_whole_seconds),
    PlainSerializer(format_instant, return_type=str, when_used="json"),
]
"""An aware UTC instant in whole seconds, serialized as ``YYYY-MM-DDTHH:MM:SSZ``."""

UtcDatetime = Annotated[datetime, BeforeValidator(_lenient_utc)]
"""A server timestamp, parsed to an aware UTC datetime (zone-less values are UTC)."""


# -------------------------------------------------------------------------------------------- enums


class ConnectionType(StrEnum):
    """Warehouse kinds a connection can point at."""

    SNOWFLAKE = "snowflake"
    BIGQUERY = "bigquery"


class DataModelType(StrEnum):
    """Data model kinds (only SQL exists)."""

    SQL = "sql"


class LoadTimestampType(StrEnum):
    """Types of a data model's load-timestamp column (Snowflake and BigQuery values)."""

    TIMESTAMP_LTZ = "timestamp_ltz"
    TIMESTAMP_NTZ = "timestamp_ntz"
    TIMESTAMP_TZ = "timestamp_tz"
    TIMESTAMP = "timestamp"
    DATETIME = "datetime"
    DATE = "date"
    TIMESTAMP_UNIXTIME_MS = "timestamp_unixtime_ms"
    TIMESTAMP_UNIXTIME_S = "timestamp_unixtime_s"


class ScheduleInterval(StrEnum):
    """How often a pipeline runs."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    ON_DEMAND = "on_demand"
    ONCE = "once"


class Environment(StrEnum):
    """mParticle environments."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class RunType(StrEnum):
    """Why a pipeline run was created."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"


class RunState(StrEnum):
    """Pipeline run states (see docs/warehouse-sync-api.md). Anything else is unknown and never treated as success."""

    TRIGGERED = "triggered"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True for ``success`` and ``failed``."""
        return self in (RunState.SUCCESS, RunState.FAILED)

    @classmethod
    def parse(cls, raw: str) -> "RunState | None":
        """The state for ``raw``, or None when the string is not a known state (exact match)."""
        try:
            return cls(raw)
        except ValueError:
            return None


class ProfileField(StrEnum):
    """Profile sections the Profile API can return (its ``fields`` parameter)."""

    DEVICE_IDENTITIES = "device_identities"
    USER_IDENTITIES = "user_identities"
    USER_ATTRIBUTES = "user_attributes"
    AUDIENCE_MEMBERSHIPS = "audience_memberships"
    ATTRIBUTION = "attribution"


class IdentityType(StrEnum):
    """User identity types (Events API ``user_identities`` keys) usable to resolve a profile."""

    CUSTOMER_ID = "customer_id"
    EMAIL = "email"
    OTHER = "other"
    OTHER_ID_2 = "other_id_2"
    OTHER_ID_3 = "other_id_3"
    OTHER_ID_4 = "other_id_4"
    OTHER_ID_5 = "other_id_5"
    OTHER_ID_6 = "other_id_6"
    OTHER_ID_7 = "other_id_7"
    OTHER_ID_8 = "other_id_8"
    OTHER_ID_9 = "other_id_9"
    OTHER_ID_10 = "other_id_10"
    MOBILE_NUMBER = "mobile_number"
    PHONE_NUMBER_2 = "phone_number_2"
    PHONE_NUMBER_3 = "phone_number_3"
    FACEBOOK = "facebook"
    TWITTER = "twitter"
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    YAHOO = "yahoo"
    FACEBOOK_CUSTOM_AUDIENCE_ID = "facebook_custom_audience_id"
    ALIAS = "alias"


# --------------------------------------------------------------------------------------- base model


class WireModel(BaseModel):
    """Base of the wire models: frozen, strict when built in code, tolerant when parsed."""

    # hide_input_in_errors: a rejected value may be a secret (e.g. a password under a misspelled key).
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_response_fields(cls, data: object, info: ValidationInfo) -> object:
        if _is_response(info) and isinstance(data, Mapping):
            known = _accepted_keys(cls)
            return {key: value for key, value in data.items() if key in known}
        return data


class ResourceModel(WireModel):
    """A resource the client creates and updates (connection, data model, pipeline).

    ``workspace_id`` may be left out when building one: the client fills in its own workspace, and
    refuses a model that names a different one.
    """

    _request_fields: ClassVar[tuple[str, ...]]

    id: Slug
    name: str = Field(min_length=1)
    workspace_id: int | None = None
    created_on: UtcDatetime | None = None
    created_by: str | None = None
    last_modified_on: UtcDatetime | None = None
    last_modified_by: str | None = None

    def request_body(self, workspace_id: int) -> dict[str, JsonValue]:
        """The JSON body for a create or update request, secrets revealed.

        Re-validates the object first, so an instance made with ``model_copy(update=...)`` or
        ``model_construct`` cannot smuggle invalid values onto the wire. Response-only fields
        (``is_faulted``, audit fields…) are left out.

        Args:
            workspace_id: The client's workspace; fills a missing ``workspace_id``.

        Returns:
            The body to send as JSON.

        Raises:
            InvalidRequestError: If a field is invalid or missing for this resource, a secret is
                still mParticle's mask, or ``workspace_id`` names another workspace.
        """
        try:
            checked = type(self).model_validate(dict(self))
        except pydantic.ValidationError as error:
            raise InvalidRequestError(
                f"invalid {type(self).__name__}: {describe_validation_error(error)}"
            ) from None
        if checked.workspace_id not in (None, workspace_id):
            raise InvalidRequestError(
                f"{type(self).__name__} {self.id!r} names workspace {checked.workspace_id}, "
                f"but the client is for workspace {workspace_id}"
            )
        fields = checked.wire_fields()
        missing = [
            name for name in checked.required_wire_fields() if getattr(checked, name) is None
        ]
        if missing:
            raise InvalidRequestError(
                f"{type(self).__name__} {self.id!r} is missing required field(s): "
                + ", ".join(missing)
            )
        body = checked.model_dump(mode="json", include=set(fields))
        body["workspace_id"] = workspace_id
        for name in fields:
            value = getattr(checked, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                if secret == MASKED_SECRET:
                    raise InvalidRequestError(
                        f"{type(self).__name__} {self.id!r}: {name} is mParticle's mask "
                        f"{MASKED_SECRET!r} (as returned by a GET); set the real value to send it"
                    )
                body[name] = secret
        return body

    def wire_fields(self) -> tuple[str, ...]:
        """Names of the fields this resource sends in a create/update body."""
        return self._request_fields

    def required_wire_fields(self) -> tuple[str, ...]:
        """Names of the sent fields that must not be None."""
        return ()


def _is_response(info: ValidationInfo) -> bool:
    context: object = info.context
    return isinstance(context, Mapping) and bool(context.get(_RESPONSE_CONTEXT))


@functools.cache
def _accepted_keys(model: type[BaseModel]) -> frozenset[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        if info.alias:
            keys.add(info.alias)
        if isinstance(info.validation_alias, AliasChoices):
            keys.update(
                choice for choice in info.validation_alias.choices if isinstance(choice, str)
            )
        elif isinstance(info.validation_alias, str):
            keys.add(info.validation_alias)
    return frozenset(keys)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """Summarize a pydantic error as ``field: problem; ...`` without echoing input values.

    Input values are left out on purpose: they may be secrets.
    """
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(value)'}: {item['msg']}"
        for item in error.errors(include_url=False, include_input=False)
    )


M = TypeVar("M", bound=BaseModel)


def parse_response(model: type[M], data: object) -> M:
    """Validate server data as ``model`` in response mode (unknown fields ignored).

    Args:
        model: The model class.
        data: Decoded JSON.

    Returns:
        The parsed model.

    Raises:
        pydantic.ValidationError: If the data does not fit the model.
    """
    return model.model_validate(data, context={_RESPONSE_CONTEXT: True})
