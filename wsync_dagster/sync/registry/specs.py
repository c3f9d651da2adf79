"""The registry of synced tables, validated before anything else happens.

The registry is the ``attributes`` of a ``WarehouseSyncComponent`` in a ``defs.yaml`` (the sample:
``wsync_dagster/local/defs/warehouse_sync/defs.yaml``); :func:`load_registry` also reads a bare registry
file. A bad registry fails definition loading with one line per problem, each naming the table, the
field and the fix, prefixed with ``file:line`` when the YAML's positions are known. Everything here
is pure: reading the file is the only I/O.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from wsync_dagster.sync.registry import limits
from wsync_dagster.sync.registry.cadences import CadenceName, cadence
from wsync_dagster.sync.registry.cron import EXAMPLE as CRON_EXAMPLE
from wsync_dagster.sync.registry.cron import Cron, CronError
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.sql import LOAD_TIMESTAMP_TYPES, sql_problems
from wsync_dagster.sync.registry.strict_yaml import DuplicateKey, load_strict

SLUG = re.compile(r"^[A-Za-z0-9_-]+$")
ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SYNC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

Environment = Literal["development", "production"]
LoadTimestampType = Literal[
    "timestamp_ltz", "timestamp_ntz", "timestamp_tz", "datetime", "date",
    "timestamp_unixtime_ms", "timestamp_unixtime_s",
]  # fmt: skip
assert set(LoadTimestampType.__args__) == set(LOAD_TIMESTAMP_TYPES)


class RegistryError(ValueError):
    """The registry cannot be used. ``problems`` holds one line per problem; ``lines`` the line of
    each in ``source`` where known (the message then says ``source:line`` before the problem)."""

    def __init__(
        self, source: str, problems: list[str], lines: Sequence[int | None] | None = None
    ) -> None:
        self.source = source
        self.problems = problems
        self.lines = list(lines or [None] * len(problems))
        where = [f"{source}:{line}: " if line else "" for line in self.lines]
        text = "\n".join(f"  - {w}{p}" for w, p in zip(where, problems, strict=True))
        super().__init__(f"{source}: {len(problems)} problem(s) in the sync registry:\n{text}")


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


UtcMinute = Annotated[datetime, AfterValidator(_utc_instant)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("may only contain letters, digits, '_' and '-'")
    return value


def _env_var_name(value: str) -> str:
    if not ENV_VAR_NAME.match(value):
        raise ValueError("must be an environment variable name such as MPARTICLE_FEED_KEY")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
EnvVarName = Annotated[str, AfterValidator(_env_var_name)]


class ConnectionSettings(_Strict):
    """The Snowflake connection mParticle itself uses (not Dagster's pre-flight connection)."""

    id: Slug = "wsync-snowflake"
    name: str = "Snowflake (wsync_dagster)"
    source_account_id: str = Field(description="Snowflake account locator, e.g. gd1234")
    region: str = Field(description="Snowflake region, e.g. us-central1.gcp")
    warehouse: str
    database: str
    role: str
    user: str
    password_env: EnvVarName = Field(description="env var holding that user's password")
    snowflake_aws_iam_user_arn: str | None = None
    snowflake_aws_external_id: str | None = None


class LoadTimestamp(_Strict):
    column: str = Field(min_length=1, description="the model column that says when a row changed")
    type: LoadTimestampType = "timestamp_ntz"
    time_zone: str | None = None
    offset_seconds: int = 0

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not an IANA time zone (e.g. America/New_York)"
                ) from None
        return value


class Schedule(_Strict):
    interval: CadenceName
    start: UtcMinute = Field(
        description="schedule_start_time: first instant of data and anchor of the interval grid"
    )
    end: UtcMinute | None = Field(
        default=None, description="schedule_end_time: no interval ending after it runs"
    )
    cron: str | None = Field(
        default=None,
        description="on_demand only: when Dagster materializes the sync (five cron fields, UTC, "
        'e.g. "15 * * * *"); one schedule per distinct cron, see docs/scale.md',
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return Cron.parse(value).text
        except CronError as error:
            raise ValueError(
                f"{value!r} is not a cron the registry reads: {error}. Write five fields in UTC "
                f"(minute hour day-of-month month day-of-week), e.g. {CRON_EXAMPLE}"
            ) from None

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
        if self.interval == "on_demand" and self.end is not None:
            raise ValueError(
                "schedule.end does not apply to on_demand (each trigger syncs up to now): remove it"
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

    name: str = Field(description="snake_case name; the asset is mparticle/<name>")
    description: str = Field(min_length=1)
    owners: tuple[str, ...] = ()
    sql: str = Field(min_length=1, description="the data model SQL (a SELECT, run as a subquery)")
    load_timestamp: LoadTimestamp
    schedule: Schedule
    environment: Environment = "development"
    feed_key_env: EnvVarName = Field(
        description="env var holding the input feed's server-to-server key"
    )
    paused: bool = Field(
        default=False, description="create the pipeline inactive (is_active false)"
    )
    rotate: bool = Field(
        default=False,
        description="on_demand only: keep the pipeline paused and hold an active-pipeline slot "
        "only while a materialization runs it (see wsync_dagster/sync/engine/rotation.py)",
    )
    group: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    pipeline_id: Slug | None = None
    data_model_id: Slug | None = None
    deps: tuple[str, ...] = Field(
        default=(),
        description="asset keys (a/b) whose materializations make an on_demand sync run again",
    )
    sources: tuple[str, ...] | None = Field(
        default=None,
        description="the Snowflake tables the SQL reads, as DATABASE.SCHEMA.TABLE; default: the "
        "tables named after FROM and JOIN in the SQL",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SYNC_NAME.match(value):
            raise ValueError(
                "must be snake_case: a lowercase letter, then lowercase letters, digits or '_' "
                "(at most 63 characters)"
            )
        return value

    @field_validator("sql")
    @classmethod
    def _sql(cls, value: str) -> str:
        if problems := sql_problems(value):
            raise ValueError("; ".join(problems))
        return value

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


class Registry(_Strict):
    connection: ConnectionSettings
    default_group: str = "mparticle_sync"
    syncs: tuple[SyncSpec, ...]
    limits: Limits = Field(
        default_factory=Limits, description="contracted limits overriding mParticle's"
    )

    def sync(self, name: str) -> SyncSpec:
        for spec in self.syncs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def group_of(self, spec: SyncSpec) -> str:
        return spec.group or self.default_group


def _sync_label(spec: SyncSpec) -> str:
    return f"sync '{spec.name}'"


def cross_sync_problems(
    registry: Registry, label: Callable[[SyncSpec], str] = _sync_label
) -> list[str]:
    """Problems no single sync has on its own: shared names or ids, too many active pipelines.

    ``label`` names a sync in the messages (e.g. with the file that declares it, when the syncs of a
    code location come from several files).
    """
    problems: list[str] = []
    if not registry.syncs:
        problems.append("registry: syncs: declares no sync; add at least one")
    owner: dict[tuple[str, str], str] = {}
    for spec in registry.syncs:
        for kind, value in (
            ("name", spec.name),
            ("pipeline id", spec.resolved_pipeline_id),
            ("data model id", spec.resolved_data_model_id),
        ):
            if (kind, value) in owner:
                problems.append(
                    f"{label(spec)}: {kind} '{value}' is already used by "
                    f"{owner[kind, value]}; give each sync its own"
                )
            owner.setdefault((kind, value), label(spec))
    problems += _slot_problems(registry)
    return problems


def _is_on_demand(spec: SyncSpec) -> bool:
    schedule = getattr(spec, "schedule", None)  # a salvaged invalid sync may have none
    return getattr(schedule, "interval", None) == "on_demand"


def _slot_problems(registry: Registry) -> list[str]:
    """Syncs active for ever must fit the workspace's limit and, when some syncs rotate, leave them
    at least one slot to take turns on."""
    active = [s.name for s in registry.syncs if s.active]
    rotating = [s.name for s in registry.syncs if s.rotate]
    allowed = registry.limits.max_active_pipelines
    owner = registry.limits.active_owner()
    if len(active) > allowed:
        fix = (
            "set rotate: true on the on_demand ones (they then take a slot only while they run), "
            if any(_is_on_demand(s) for s in registry.syncs if s.active)
            else ""
        )
        return [
            f"registry: {len(active)} active syncs ({', '.join(active)}) but {owner} allows "
            f"{allowed} active pipelines: {fix}set paused: true on {len(active) - allowed} of "
            "them or remove them"
        ]
    if rotating and len(active) >= allowed:
        return [
            f"registry: the rotating syncs ({', '.join(rotating)}) have no active-pipeline slot to "
            f"take turns on: {', '.join(active)} are active for ever and {owner} allows "
            f"{allowed}. Pause one of them (paused: true), make an on_demand one rotate "
            "(rotate: true), or remove it"
        ]
    return []


Locate = Callable[[Sequence[str | int]], int | None]
"""The line (1-based) of the registry value at a location such as ``("syncs", 0, "sql")``."""

_SECRET_WORDS = ("password", "secret", "token", "key", "private")


def _unknown_key(field: str) -> str:
    name = field.rsplit(".", 1)[-1].lower()
    if any(word in name for word in _SECRET_WORDS) and not name.endswith("_env"):
        return (
            "unknown key, and secrets never go in the registry: put the value in an environment "
            "variable and write that variable's name in the *_env field (password_env, feed_key_env)"
        )
    return "unknown key; remove it or check its spelling"


def _salvaged_spec(raw: Any) -> SyncSpec | None:
    """A sync as far as the cross-sync rules need it: validated, or else what it still declares.

    An invalid sync keeps its raw name and those of its ids, ``paused`` and ``rotate`` that are valid
    on their own (an invalid ``paused`` or ``rotate`` counts as active for ever, the default);
    without a string name it is left out.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        return None
    try:
        return SyncSpec.model_validate(raw)
    except ValidationError:
        pass
    declared: dict[str, Any] = {
        field: value.strip()
        for field in ("pipeline_id", "data_model_id")
        if isinstance(value := raw.get(field), str) and SLUG.match(value.strip())
    }
    declared["name"] = raw["name"].strip()
    declared["paused"] = raw.get("paused") is True
    declared["rotate"] = raw.get("rotate") is True
    return SyncSpec.model_construct(**declared)


def _salvaged_cross_sync_problems(document: Mapping[str, Any]) -> list[str]:
    """The cross-sync rules over an invalid registry's syncs, so that a field error does not hide
    them: the syncs that validate, plus the names, ids and ``paused`` of those that do not."""
    syncs = document.get("syncs")
    if not isinstance(syncs, list):
        return []
    salvaged = tuple(spec for raw in syncs if (spec := _salvaged_spec(raw)) is not None)
    return cross_sync_problems(Registry.model_construct(syncs=salvaged))


def _describe(error: ErrorDetails, document: Any) -> str:
    """One problem as 'where: what; fix', naming the sync when the error is inside one."""
    loc = list(error["loc"])
    where = "registry"
    if len(loc) >= 2 and loc[0] == "syncs" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        syncs = document.get("syncs") if isinstance(document, Mapping) else None
        if isinstance(syncs, list) and index < len(syncs) and isinstance(syncs[index], Mapping):
            name = syncs[index].get("name")
        where = f"sync '{name}'" if name else f"syncs[{index}]"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        message = _unknown_key(field)
    elif kind == "missing":
        message = "required but missing; add it"
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"{error['input']!r} is not allowed; use one of {expected}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {field}: {message}" if field else f"{where}: {message}"


def _load_yaml(text: str) -> tuple[Any, list[DuplicateKey]]:
    try:
        return load_strict(text)
    except yaml.YAMLError:
        # The pure-Python parser describes a syntax error better (it quotes the line and points at
        # the column); rerun it for the message.
        return load_strict(text, fast=False)


def yaml_line_locator(text: str, prefix: Sequence[str | int] = ()) -> Locate:
    """Lines of the values in YAML ``text`` (registry locations under ``prefix``); the nearest
    enclosing value's line when the location itself does not exist (a missing key)."""
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    def locate(loc: Sequence[str | int]) -> int | None:
        node = root
        line = node.start_mark.line + 1 if node is not None else None
        for part in (*prefix, *loc):
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                node = None
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    return locate


def validate_registry(
    document: Any, source: str = "<registry>", locate: Locate | None = None
) -> Registry:
    """The registry ``document`` (parsed YAML) declares, or a :class:`RegistryError` listing every
    problem, each on its line when ``locate`` knows where the values are."""
    if not isinstance(document, Mapping):
        raise RegistryError(source, ["must be a mapping with 'connection' and 'syncs'"])
    try:
        registry = Registry.model_validate(document)
    except ValidationError as error:
        details = error.errors()
        found = [_describe(d, document) for d in details]
        lines = [locate(list(d["loc"])) if locate else None for d in details]
        across = _salvaged_cross_sync_problems(document)
        raise RegistryError(source, found + across, lines + [None] * len(across)) from None
    if problems := cross_sync_problems(registry):
        raise RegistryError(source, problems)
    return registry


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    """A registry from YAML ``text``: a bare registry, or a component file (``type`` and
    ``attributes``) whose attributes are one."""
    try:
        document, duplicates = _load_yaml(text)
    except yaml.YAMLError as error:
        raise RegistryError(source, [f"not valid YAML: {error}"]) from None
    if duplicates:
        raise RegistryError(source, [d.describe() for d in duplicates])
    prefix: tuple[str, ...] = ()
    if isinstance(document, Mapping) and "type" in document and "attributes" in document:
        document, prefix = document["attributes"], ("attributes",)
    try:
        return validate_registry(document, source)
    except RegistryError:
        # Only a bad registry pays for a second parse that keeps the lines.
        return validate_registry(document, source, yaml_line_locator(text, prefix))


def load_registry(path: Path) -> Registry:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(str(path), [f"cannot read the registry ({error.strerror})"]) from None
    return parse_registry(text, str(path))
