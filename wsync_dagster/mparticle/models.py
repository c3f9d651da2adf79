"""Typed wire models of the experimental Warehouse Sync API and the Profile API.

The resources (connections, data models, pipelines), runs and profiles. Their parsing modes (strict
when built by you, lenient when parsed from the server), secrets and timestamps are described in
:mod:`wsync_dagster.mparticle.wire`, which holds the validators, enums and base models they build on.
"""

from collections.abc import Mapping
from typing import Annotated, ClassVar, Self

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    model_validator,
)

from wsync_dagster.mparticle.wire import (
    ConnectionType,
    DataModelType,
    Environment,
    LoadTimestampType,
    ResourceModel,
    RunState,
    RunType,
    ScheduleInterval,
    ScheduleTime,
    Slug,
    UtcDatetime,
    WireModel,
    check_time_zone,
)
from wsync_dagster.mparticle.wire import parse_response as parse_response

# ------------------------------------------------------------------------------------ the resources

_SNOWFLAKE_FIELDS = (
    "source_account_id",
    "region",
    "warehouse",
    "database",
    "role",
    "user",
    "password",
    "snowflake_aws_iam_user_arn",
    "snowflake_aws_external_id",
)
_BIGQUERY_FIELDS = (
    "region",
    "project_id",
    "dataset_id",
    "service_account_id",
    "service_account_key",
)


class Connection(ResourceModel):
    """Where and how mParticle reaches a warehouse (Snowflake or BigQuery).

    Only the fields of ``type`` are sent; for Snowflake all but the two ``snowflake_aws_*`` fields
    are required, for BigQuery all of its fields are.
    """

    _request_fields: ClassVar[tuple[str, ...]] = ("id", "name", "workspace_id", "type")

    type: ConnectionType
    region: str | None = None
    # Snowflake
    source_account_id: str | None = None
    warehouse: str | None = None
    database: str | None = None
    role: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    snowflake_aws_iam_user_arn: str | None = None
    snowflake_aws_external_id: str | None = None
    # BigQuery
    project_id: str | None = None
    dataset_id: str | None = None
    service_account_id: str | None = None
    service_account_key: SecretStr | None = None
    # response only
    is_faulted: bool = False

    def wire_fields(self) -> tuple[str, ...]:
        """Common fields plus those of this connection's warehouse type."""
        return self._request_fields + self._type_fields()

    def required_wire_fields(self) -> tuple[str, ...]:
        """Every type-specific field except Snowflake's optional storage-integration pair."""
        return tuple(name for name in self._type_fields() if not name.startswith("snowflake_aws_"))

    def _type_fields(self) -> tuple[str, ...]:
        return _SNOWFLAKE_FIELDS if self.type is ConnectionType.SNOWFLAKE else _BIGQUERY_FIELDS


def _none_is_zero(value: object) -> object:
    return 0 if value is None else value


class DataModel(ResourceModel):
    """The SQL mParticle runs against the warehouse, and its load-timestamp column.

    ``load_timestamp_field_time_zone``/``_time_offset`` are sent under those (the documented
    examples') names; the parameter table's ``load_timestamp_field_tz`` /
    ``load_timestamp_field_offset_seconds`` are accepted when parsing (see
    docs/warehouse-sync-api.md).
    """

    _request_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "workspace_id",
        "type",
        "sql_query",
        "load_timestamp_field_name",
        "load_timestamp_field_type",
        "load_timestamp_field_time_zone",
        "load_timestamp_field_time_offset",
    )

    type: DataModelType = DataModelType.SQL
    sql_query: str = Field(min_length=1)
    load_timestamp_field_name: str = Field(min_length=1)
    load_timestamp_field_type: LoadTimestampType
    load_timestamp_field_time_zone: Annotated[str | None, AfterValidator(check_time_zone)] = Field(
        default=None,
        validation_alias=AliasChoices("load_timestamp_field_time_zone", "load_timestamp_field_tz"),
    )
    load_timestamp_field_time_offset: Annotated[int, BeforeValidator(_none_is_zero)] = Field(
        default=0,
        validation_alias=AliasChoices(
            "load_timestamp_field_time_offset", "load_timestamp_field_offset_seconds"
        ),
    )


class Pipeline(ResourceModel):
    """Runs a data model against a connection on a schedule, into an input feed.

    ``schedule_start_time`` is required (the client always sends a start; see
    docs/warehouse-sync-api.md);
    ``partner_feed_key`` is required to create or update (responses carry it masked).
    """

    _request_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "workspace_id",
        "is_active",
        "is_draft",
        "connection_id",
        "data_model_id",
        "partner_feed_id",
        "partner_feed_key",
        "schedule_start_time",
        "schedule_end_time",
        "schedule_interval",
        "environment",
    )

    is_active: bool
    is_draft: bool
    connection_id: Slug
    data_model_id: Slug
    partner_feed_id: int | None = None
    partner_feed_key: SecretStr | None = None
    schedule_start_time: ScheduleTime
    schedule_end_time: ScheduleTime | None = None
    schedule_interval: ScheduleInterval
    environment: Environment
    # response only
    is_faulted: bool = False
    faulted_reason: str | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if (
            self.schedule_end_time is not None
            and self.schedule_end_time <= self.schedule_start_time
        ):
            raise ValueError("schedule_end_time must be after schedule_start_time")
        return self

    def wire_fields(self) -> tuple[str, ...]:
        """The create parameters; ``partner_feed_id`` only when set (the server derives it)."""
        fields = self._request_fields
        return (
            fields
            if self.partner_feed_id is not None
            else tuple(name for name in fields if name != "partner_feed_id")
        )

    def required_wire_fields(self) -> tuple[str, ...]:
        """The feed key must be given."""
        return ("partner_feed_key",)


# ------------------------------------------------------------------------------------ runs & status


class PipelineRun(WireModel):
    """One run of a pipeline, as the status and run endpoints report it.

    ``pipeline_run_state`` and ``pipeline_run_type`` keep the raw strings so that a state this
    client does not know still parses; :attr:`state` and :attr:`run_type` give the enum, or None
    for an unknown value. The wire's ``id`` (the *pipeline* id) is :attr:`pipeline_id`.
    """

    pipeline_run_id: int
    pipeline_id: str = Field(alias="id")
    workspace_id: int | None = None
    logical_date: UtcDatetime | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    data_interval_start: UtcDatetime | None = None
    data_interval_end: UtcDatetime | None = None
    pipeline_run_type: str | None = None
    pipeline_run_state: str
    is_externally_triggered: bool = False
    records_extracted: int | None = None
    records_mapped: int | None = None
    event_batches_generated: int | None = None
    created_on: UtcDatetime | None = None
    created_by: str | None = None
    last_modified_on: UtcDatetime | None = None
    last_modified_by: str | None = None

    @property
    def state(self) -> RunState | None:
        """The run state, or None when mParticle reported a state this client does not know."""
        return RunState.parse(self.pipeline_run_state)

    @property
    def run_type(self) -> RunType | None:
        """The run type, or None when absent or unknown."""
        try:
            return RunType(self.pipeline_run_type)
        except ValueError:
            return None

    @property
    def in_progress(self) -> bool:
        """True while the run is triggered, queued or running."""
        state = self.state
        return state is not None and not state.is_terminal

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended (``success`` or ``failed``); never for an unknown state."""
        state = self.state
        return state is not None and state.is_terminal


class PipelineStatus(WireModel):
    """A pipeline's current flags and its latest run (by ``logical_date``), if any."""

    pipeline_id: str
    workspace_id: int | None = None
    is_faulted: bool = False
    is_connection_faulted: bool = False
    is_connection_active: bool = True
    is_active: bool = False
    latest_pipeline_run: PipelineRun | None = None


class RunPage(WireModel):
    """One page of ``GET .../status/runs``."""

    items: list[PipelineRun]


class TriggerResult(WireModel):
    """The outcome of ``trigger_pipeline``.

    Attributes:
        pipeline_run_id: The run to wait for.
        status: ``trigger_requested`` for a new run; the run's state when the result comes from an
            existing run.
        attached: True when the pipeline was already busy and the result names the run in flight
            instead of a new one.
    """

    pipeline_run_id: int
    status: str
    attached: bool = False

    @classmethod
    def for_run(cls, run: PipelineRun, *, attached: bool) -> "TriggerResult":
        """A result naming an existing run."""
        return cls(
            pipeline_run_id=run.pipeline_run_id, status=run.pipeline_run_state, attached=attached
        )


# ------------------------------------------------------------------------------------------ profile


class Identity(WireModel):
    """A user or device identity on a profile."""

    type: str
    value: str
    encoding: str | None = None


class AudienceMembership(WireModel):
    """An audience the profile belongs to."""

    audience_id: int
    audience_name: str | None = None
    expiration_timestamp_ms: int | None = None


AttributeValue = str | list[str] | None


class Profile(WireModel):
    """A user profile as the Profile API returns it. Attribute values are strings or string lists."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    mpid: int
    created_timestamp_ms: int | None = None
    last_stored_timestamp_ms: int | None = None
    is_opted_out: bool | None = None
    limit_ad_tracking: bool | None = None
    device_identities: list[Identity] = Field(default_factory=list)
    user_identities: list[Identity] = Field(default_factory=list)
    account_userattributes: dict[str, AttributeValue] | None = None
    user_attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    audience_memberships: list[AudienceMembership] = Field(default_factory=list)
    attribution: JsonValue = None

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_empty(cls, data: object) -> object:
        if isinstance(data, Mapping):
            defaults = (
                "device_identities",
                "user_identities",
                "user_attributes",
                "audience_memberships",
            )
            return {k: v for k, v in data.items() if not (k in defaults and v is None)}
        return data

    def identity(self, identity_type: str) -> str | None:
        """The value of the first user identity of ``identity_type``, if any."""
        return next((i.value for i in self.user_identities if i.type == identity_type), None)
