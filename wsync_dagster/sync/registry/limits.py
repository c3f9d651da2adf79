"""mParticle's documented Warehouse Sync limits, and the registry's ``limits:`` block overriding them.

The constants are mParticle's published defaults (the Warehouse Sync overview's limits table and the
default service limits guide list the same numbers; see docs/warehouse-sync-api.md); the limits that
differ per cadence (catch-up, records per request) live in :mod:`wsync_dagster.sync.registry.cadences`.
A workspace may have contracted other numbers: :class:`Limits` is what a registry declares, and
everything that refuses a request before it is sent (the pre-flight, the registry's and the
reconcile's active-pipeline rule) and the local emulator read the effective numbers from it.
"""

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from wsync_dagster.sync.registry.cadences import CADENCES, CadenceName, record_limit

MAX_ACTIVE_PIPELINES = 5
MAX_COLUMNS = 100
# Monthly schedules repeat on the start's day of month; days 29-31 don't exist in every month.
MAX_MONTHLY_START_DAY = 28


def _positive(value: Any, default: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        example = f"{default:,}".replace(",", "_") if default else "1_000_000"
        raise ValueError(
            f"{value!r} is not a positive whole number; write your contracted limit, e.g. "
            f"{example}, or remove the key to use mParticle's default"
        )
    return value


def _default_max_columns(value: Any) -> int:
    return _positive(value, MAX_COLUMNS)


def _default_max_active(value: Any) -> int:
    return _positive(value, MAX_ACTIVE_PIPELINES)


class Limits(BaseModel):
    """The registry's optional ``limits:`` block: a team's contracted limits, else mParticle's.

    Attributes:
        records_per_request: Rows one run (one window) may extract, by cadence; cadences left out
            keep mParticle's default (see :data:`cadences.CADENCES`).
        max_columns: Columns a data model may return.
        max_active_pipelines: Active pipelines a workspace may have.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    records_per_request: dict[CadenceName, int] = Field(
        default_factory=dict,
        description="rows one run (one window) may extract, by cadence, e.g. {hourly: 2_000_000}; "
        "cadences left out keep mParticle's limit",
    )
    max_columns: Annotated[int, BeforeValidator(_default_max_columns)] = Field(
        default=MAX_COLUMNS, description="columns a data model may return (mParticle: 100)"
    )
    max_active_pipelines: Annotated[int, BeforeValidator(_default_max_active)] = Field(
        default=MAX_ACTIVE_PIPELINES,
        description="active pipelines the mParticle workspace may have (mParticle: 5)",
    )

    @field_validator("records_per_request", mode="before")
    @classmethod
    def _known_cadences(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(
                "must map cadence names to records per request, e.g. {hourly: 2_000_000}"
            )
        problems = []
        for name, records in value.items():
            if name not in CADENCES:
                problems.append(f"{name!r} is not a cadence; use one of {', '.join(CADENCES)}")
                continue
            try:
                _positive(records, CADENCES[name].records_per_request)
            except ValueError as error:
                problems.append(f"{name}: {error}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def record_limit(self, name: CadenceName) -> int:
        """Rows one window of cadence ``name`` may hold."""
        return record_limit(name, self.records_per_request)

    def effective_records(self) -> dict[CadenceName, int]:
        """Records per request for every cadence, overrides applied."""
        return {name: self.record_limit(name) for name in CADENCES}

    def records_text(self, name: CadenceName) -> str:
        """The record limit of ``name`` as a message says it, naming who set it."""
        limit = self.record_limit(name)
        if limit == CADENCES[name].records_per_request:
            return f"mParticle's {name} limit is {limit:,} per request"
        return f"the registry's {name} limit is {limit:,} per request (limits.records_per_request.{name})"

    def columns_owner(self) -> str:
        """Who sets the column limit, for messages: "<who> allows N"."""
        return _owner("max_columns", self.max_columns != MAX_COLUMNS)

    def active_owner(self) -> str:
        """Who sets the active-pipeline limit, for messages: "<who> allows N"."""
        return _owner("max_active_pipelines", self.max_active_pipelines != MAX_ACTIVE_PIPELINES)


def _owner(field: str, declared: bool) -> str:
    return f"the registry's limit (limits.{field})" if declared else "mParticle"
