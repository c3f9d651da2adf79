"""The registry's models: what a ``WarehouseSyncComponent``'s ``attributes`` may say, typed and described.

These pydantic models are the component's attributes: ``dg`` shows their JSON schema
(:func:`~wsync_dagster.sync.registry.schema.document_json_schema`), and the one loader (:mod:`wsync_dagster.sync.registry.specs`)
validates every registry with them, whether it comes from a ``defs.yaml`` or a bare file. Pure: no
Dagster, no I/O.

Adding a field to a sync means one annotated, described field on :class:`SyncSpec` (plus its rule, in
a validator here): the ``defaults:`` block, the per-entry schema and the JSON schema are derived from
:class:`SyncSpec`, and ``docs/registry.md`` lists every field (a test checks it does).
"""

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from wsync_dagster.sync.registry import limits
from wsync_dagster.sync.registry.cadences import CadenceName, cadence
from wsync_dagster.sync.registry.cron import EXAMPLE as CRON_EXAMPLE
from wsync_dagster.sync.registry.cron import Cron, CronError
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.sql import LoadTimestampType, sql_problems

SLUG = re.compile(r"^[A-Za-z0-9_-]+$")
ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SYNC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Late-row recount (SyncSpec.recount_windows): one day of hourly windows by default, and at most
# what one grouped count query holds beside the windows being synced.
DEFAULT_HOURLY_RECOUNT = 24
MAX_RECOUNT_WINDOWS = 200

Environment = Literal["development", "production"]


def _utc_instant(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs an explicit UTC time zone, e.g. 2026-01-01T00:00:00Z")
    if value.utcoffset() != UTC.utcoffset(None):
        raise ValueError(
            "mParticle schedules are in UTC; write it with a Z, e.g. 2026-01-01T00:00:00Z"
        )
    if value.second or value.microsecond:
        raise ValueError("must be a whole minute (mParticle's grid has minute resolution)")
    return value.astimezone(UTC)


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("may only contain letters, digits, '_' and '-'")
    return value


def _env_var_name(value: str) -> str:
    if not ENV_VAR_NAME.match(value):
        raise ValueError("must be an environment variable name such as MPARTICLE_FEED_KEY")
    return value


def _sync_name(value: str) -> str:
    if not SYNC_NAME.match(value):
        raise ValueError(
            "must be snake_case: a lowercase letter, then lowercase letters, digits or '_' "
            "(at most 63 characters)"
        )
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/New_York)") from None
    return value


def _sql(value: str) -> str:
    if problems := sql_problems(value):
        raise ValueError("; ".join(problems))
    return value


# The patterns also go into the JSON schema, so editors flag a bad value as it is typed; the
# validators give the registry's own messages.
UtcMinute = Annotated[datetime, AfterValidator(_utc_instant)]


def _cron_text(value: str) -> str:
    try:
        return Cron.parse(value).text
    except CronError as error:
        raise ValueError(
            f"{value!r} is not a cron the registry reads: {error}. Write five fields in UTC "
            f"(minute hour day-of-month month day-of-week), e.g. {CRON_EXAMPLE}"
        ) from None


CronText = Annotated[str, AfterValidator(_cron_text)]
Slug = Annotated[str, AfterValidator(_slug), Field(json_schema_extra={"pattern": SLUG.pattern})]
EnvVarName = Annotated[
    str,
    AfterValidator(_env_var_name),
    Field(json_schema_extra={"pattern": ENV_VAR_NAME.pattern}),
]
SyncName = Annotated[
    str, AfterValidator(_sync_name), Field(json_schema_extra={"pattern": SYNC_NAME.pattern})
]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
ModelSql = Annotated[str, AfterValidator(_sql)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ConnectionSettings(_Strict):
    """The Snowflake connection mParticle itself uses (not Dagster's pre-flight connection)."""

    id: Slug = Field(
        default="wsync-snowflake",
        description="mParticle's id of the connection; every sync of this registry uses it",
    )
    name: str = Field(
        default="Snowflake (wsync_dagster)", description="the connection's name in mParticle's UI"
    )
    source_account_id: str = Field(description="Snowflake account locator, e.g. gd1234")
    region: str = Field(description="Snowflake region, e.g. us-central1.gcp")
    warehouse: str = Field(description="the Snowflake warehouse mParticle's queries run on")
    database: str = Field(
        description="the database mParticle connects to; a SCHEMA.TABLE in a sync's SQL is read "
        "from it"
    )
    role: str = Field(description="the Snowflake role mParticle's user takes")
    user: str = Field(description="the Snowflake user mParticle logs in as")
    password_env: EnvVarName = Field(
        description="name of the environment variable holding that user's password (never the "
        "password itself, and never a template)"
    )
    snowflake_aws_iam_user_arn: str | None = Field(
        default=None, description="the AWS IAM user of the Snowflake storage integration, if any"
    )
    snowflake_aws_external_id: str | None = Field(
        default=None, description="the external id of the Snowflake storage integration, if any"
    )


class LoadTimestamp(_Strict):
    """The column that says when a row changed; each run selects the rows of its window by it."""

    column: str = Field(min_length=1, description="the model column that says when a row changed")
    type: LoadTimestampType = Field(
        default="timestamp_ntz", description="the column's Snowflake type, as mParticle names it"
    )
    time_zone: TimeZoneName | None = Field(
        default=None,
        description="IANA time zone whose wall-clock times the column holds (default: UTC)",
    )
    offset_seconds: int = Field(
        default=0, description="seconds added to the column before comparing it to a window"
    )


class Schedule(_Strict):
    """When the pipeline runs: an interval grid, on demand, or once."""

    interval: CadenceName = Field(
        description="hourly, daily, weekly or monthly (a grid from start), on_demand (each "
        "materialization syncs up to now) or once (start..end, one run)"
    )
    start: UtcMinute = Field(
        description="schedule_start_time: first instant of data and anchor of the interval grid "
        "(UTC, whole minutes, e.g. 2026-01-01T00:00:00Z)"
    )
    end: UtcMinute | None = Field(
        default=None,
        description="schedule_end_time: no interval ending after it runs (required for once; not "
        "for on_demand)",
    )
    cron: CronText | None = Field(
        default=None,
        description="on_demand only: when Dagster materializes the sync, as five cron fields in "
        'UTC, e.g. "15 * * * *"; one stopped schedule per distinct cron (docs/scale.md)',
    )

    @model_validator(mode="after")
    def _coherent(self) -> "Schedule":
        if self.end is not None and self.end <= self.start:
            raise ValueError(
                f"end ({self.end:%Y-%m-%dT%H:%M:%SZ}) must be after start "
                f"({self.start:%Y-%m-%dT%H:%M:%SZ})"
            )
        if self.interval == "monthly" and self.start.day > limits.MAX_MONTHLY_START_DAY:
            raise ValueError(
                f"a monthly schedule repeats on its start's day of month; day {self.start.day} does "
                f"not exist in every month: start on day 1-{limits.MAX_MONTHLY_START_DAY}"
            )
        if self.interval == "once" and self.end is None:
            raise ValueError("a once schedule loads start..end: set schedule.end")
        if self.interval == "on_demand" and self.end is not None:
            raise ValueError(
                "schedule.end does not apply to on_demand (each trigger syncs up to now): remove it"
            )
        if self.cron is not None and self.interval != "on_demand":
            why = (
                "a once pipeline runs once, over start..end"
                if self.interval == "once"
                else f"mParticle runs {self.interval} pipelines on their own grid"
            )
            raise ValueError(
                f"cron applies to on_demand syncs only ({why}): remove cron, or make the sync "
                "on_demand"
            )
        return self

    @property
    def is_interval(self) -> bool:
        return cadence(self.interval).is_interval

    @property
    def parsed_cron(self) -> Cron | None:
        """The cron Dagster materializes this on_demand sync on, if it has one."""
        return Cron.parse(self.cron) if self.cron is not None else None


class SyncSpec(_Strict):
    """One synced table: a data model plus a pipeline, and one Dagster asset."""

    name: SyncName = Field(description="snake_case name; the asset is mparticle/<name>")
    description: str = Field(
        min_length=1,
        description="what the table adds to profiles and who relies on it (required; the asset's "
        "description)",
    )
    owners: tuple[str, ...] = Field(
        default=(), description="the asset's owners: e-mail addresses or team:<name>"
    )
    sql: ModelSql = Field(
        min_length=1,
        description="the data model SQL: one SELECT, run by mParticle as a subquery (no WITH, no "
        "trailing ';' or -- comment)",
    )
    load_timestamp: LoadTimestamp = Field(
        description="the column that says when a row changed, and its type"
    )
    schedule: Schedule = Field(description="when the pipeline runs")
    environment: Environment = Field(
        default="development", description="the mParticle environment the profiles go to"
    )
    feed_key_env: EnvVarName = Field(
        description="name of the environment variable holding the input feed's server-to-server "
        "key (never the key itself, and never a template)"
    )
    paused: bool = Field(
        default=False,
        description="create the pipeline inactive: mParticle runs nothing for it, and a "
        "materialization fails saying so, until this is false",
    )
    rotate: bool = Field(
        default=False,
        description="on_demand only: keep the pipeline paused and hold an active-pipeline slot "
        "only while a materialization runs it (see wsync_dagster/sync/engine/rotation.py)",
    )
    group: str | None = Field(
        default=None, description="the asset's group (default: the registry's default_group)"
    )
    tags: dict[str, str] = Field(default_factory=dict, description="the asset's tags")
    pipeline_id: Slug | None = Field(
        default=None, description="mParticle's pipeline id (default: wsync-<name with dashes>)"
    )
    data_model_id: Slug | None = Field(
        default=None,
        description="mParticle's data model id (default: wsync-<name with dashes>-model)",
    )
    deps: tuple[str, ...] = Field(
        default=(),
        description="asset keys (a/b) whose materializations make an on_demand sync run again",
    )
    sources: tuple[str, ...] | None = Field(
        default=None,
        description="the Snowflake tables the SQL reads, as DATABASE.SCHEMA.TABLE; default: the "
        "tables the SQL reads, as sqlglot finds them (see docs/sql.md)",
    )
    recount_windows: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RECOUNT_WINDOWS,
        description="interval syncs: how many windows before the ones being synced each "
        "materialization's grouped count (and the runs sensor's) recounts, in the same query, to "
        "find rows stamped into a window after it ran (the late_rows check); default one day of "
        "windows (hourly 24, daily, weekly and monthly 1); 0 turns the recount off",
    )

    @model_validator(mode="after")
    def _deps_only_on_demand(self) -> "SyncSpec":
        if self.deps and self.schedule.interval != "on_demand":
            raise ValueError(
                "deps make a sync run when upstream assets change, which only on_demand syncs do; "
                f"remove deps from this {self.schedule.interval} sync"
            )
        return self

    @model_validator(mode="after")
    def _rotation(self) -> "SyncSpec":
        """``rotate`` only where a pipeline may be paused between runs, and not with ``paused``."""
        if not self.rotate:
            return self
        interval = self.schedule.interval
        wrong = {
            interval != "on_demand": "rotate: true applies to on_demand syncs only (a scheduled "
            f"pipeline must stay active to run on its grid): remove it from this {interval} sync",
            self.paused: "rotate: true already keeps the pipeline paused between "
            "materializations, and paused: true stops it from running at all: remove one of them",
        }
        if True in wrong:
            raise ValueError(wrong[True])
        return self

    @model_validator(mode="after")
    def _recount_only_on_intervals(self) -> "SyncSpec":
        if self.recount_windows is not None and not self.schedule.is_interval:
            raise ValueError(
                "recount_windows applies to interval syncs (hourly, daily, weekly, monthly) only; "
                f"a {self.schedule.interval} sync has no earlier windows to recount: remove it"
            )
        return self

    @property
    def late_row_windows(self) -> int:
        """How many windows before the ones being synced are recounted for late rows: the
        registry's ``recount_windows``, else one day of windows (none for on_demand and once)."""
        if self.recount_windows is not None:
            return self.recount_windows
        if not self.schedule.is_interval:
            return 0
        return DEFAULT_HOURLY_RECOUNT if self.schedule.interval == "hourly" else 1

    @property
    def resolved_pipeline_id(self) -> str:
        return self.pipeline_id or f"wsync-{self.name.replace('_', '-')}"

    @property
    def resolved_data_model_id(self) -> str:
        return self.data_model_id or f"wsync-{self.name.replace('_', '-')}-model"

    @property
    def active(self) -> bool:
        """Whether the pipeline is active for ever, and so takes one of the workspace's active-
        pipeline slots for ever (a rotating sync takes one only while it runs)."""
        return not self.paused and not self.rotate


class Translation(_Strict):
    """Asset attributes for every sync of the registry, written as templates that see the sync.

    Rendered once per sync when the assets are built, with ``{{ sync.<field> }}`` (the sync's entry,
    e.g. ``sync.name``, ``sync.schedule.interval``, ``sync.tags.domain``), ``{{ spec.<attribute> }}``
    (the asset spec before the translation, e.g. ``spec.group_name``) and ``{{ env.X }}`` in scope.
    Applied on top of the Python translator (``WarehouseSyncTranslator``): ``tags`` and ``metadata``
    are merged into the spec's, every other field replaces its value.
    """

    key: str | None = Field(
        default=None,
        description="the asset key, '/'-separated, e.g. 'crm/{{ sync.name }}'; must stay unique",
    )
    key_prefix: str | list[str] | None = Field(
        default=None, description="prefixed to the key, e.g. 'activation' or [team, crm]"
    )
    group_name: str | None = Field(
        default=None, description="the asset's group, e.g. '{{ sync.tags.domain }}_sync'"
    )
    description: str | None = Field(default=None, description="the asset's description")
    owners: list[str] | None = Field(
        default=None, description="the asset's owners (replace the sync's owners)"
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="tags merged into the asset's, e.g. {cadence: ...}"
    )
    kinds: list[str] | None = Field(
        default=None, description="the asset's kinds (replace snowflake and mparticle)"
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="metadata merged into the asset's"
    )


class Registry(_Strict):
    """A validated registry: the shared connection and every sync (``defaults:`` already applied)."""

    connection: ConnectionSettings = Field(
        description="the Snowflake connection mParticle uses for every sync of this registry"
    )
    default_group: str = Field(
        default="mparticle_sync", description="the group of the sync assets that set no group"
    )
    syncs: tuple[SyncSpec, ...] = Field(description="one entry per synced table")
    limits: Limits = Field(
        default_factory=Limits,
        description="the workspace's contracted limits, overriding mParticle's documented ones; "
        "every registry of a code location must declare the same",
    )
    translation: Translation | None = Field(
        default=None,
        description="asset attributes for every sync, templated per sync ({{ sync.name }})",
    )

    def sync(self, name: str) -> SyncSpec:
        for spec in self.syncs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def group_of(self, spec: SyncSpec) -> str:
        return spec.group or self.default_group


# What a sync may inherit from ``defaults:``: everything but what names the sync (name, ids), says
# what it is (description) or what it reads (sql), which are each sync's own.
OWN_FIELDS = frozenset({"name", "description", "sql", "pipeline_id", "data_model_id"})


def optional_model(model: type[BaseModel], name: str, keep: frozenset[str] = frozenset()) -> Any:
    """``model`` with every field optional (``None``), nested models alike, keeping each field's
    type, validators and description; ``keep`` stays required, and the other ``OWN_FIELDS`` are
    dropped. Model validators (rules across fields) are not copied: they hold on the merged sync."""
    fields: dict[str, Any] = {}
    for field, info in model.model_fields.items():
        if field in OWN_FIELDS and field not in keep:
            continue
        annotation = info.rebuild_annotation()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            annotation = _optional_model(info.annotation)
        description = info.description or ""
        if field in keep:
            fields[field] = (annotation, Field(description=description))
            continue
        if info.is_required():
            description += " (required: in each sync or in defaults)"
        fields[field] = (Optional[annotation], Field(default=None, description=description))  # noqa: UP045
    return create_model(name, __config__=_Strict.model_config, __doc__=model.__doc__, **fields)


@functools.cache
def _optional_model(model: type[BaseModel]) -> Any:
    return optional_model(model, f"{model.__name__}Defaults")


SyncDefaults: type[BaseModel] = optional_model(SyncSpec, "SyncDefaults")
SyncDefaults.__doc__ = (
    "Fields every sync inherits unless it sets them; mappings (schedule, load_timestamp, tags) "
    "merge key by key, everything else is replaced."
)
