"""Execute one pipeline run against the warehouse (see ``docs/warehouse-sync-api.md``).

The count query comes first and uses the same window predicate as the extraction, so the count is
what the run would extract; over the record limit, the run fails without extracting anything.
Otherwise the extraction is streamed in ``fetchmany`` batches, mapped, and handed to ``ingest``
batch by batch, so memory does not grow with the window.
"""

import dataclasses
from collections.abc import Callable

from wsync_dagster.emulator.mapping import MappedRow, RowMapper
from wsync_dagster.emulator.warehouse import (
    Credentials,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """Everything needed to execute one run, copied out of the backend under its lock."""

    run_id: int
    generation: int
    pipeline_id: str
    limit_name: str
    record_limit: int
    credentials: Credentials | None  # None: a warehouse the emulator cannot reach (BigQuery)
    sql: str
    timestamp_field: str
    predicate: str
    window: str
    forced_failure: str | None = None


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a run ended: counts so far, and why it failed if it did."""

    extracted: int = 0
    mapped: int = 0
    failure: str | None = None
    warehouse_unavailable: bool = False


Ingest = Callable[[list[MappedRow]], bool]


def execute_run(plan: RunPlan, warehouse: Warehouse, ingest: Ingest, batch_rows: int) -> RunOutcome:
    """Count, check the limit, then stream, map and ``ingest`` the window's rows.

    ``ingest`` returns False when the run no longer exists (state was reset or the pipeline was
    deleted); the run then stops where it is, and the backend ignores its outcome.
    """
    if plan.forced_failure is not None:
        return RunOutcome(failure=plan.forced_failure)
    if plan.credentials is None:
        return RunOutcome(
            failure="Could not connect to the warehouse: the emulator only reaches Snowflake.",
            warehouse_unavailable=True,
        )
    extracted = mapped = 0
    try:
        count = warehouse.count(plan.credentials, plan.sql, plan.predicate)
        if count > plan.record_limit:
            return RunOutcome(
                failure=(
                    f"The window {plan.window} holds {count:,} records, more than the "
                    f"{plan.limit_name} limit of {plan.record_limit:,} records per run; "
                    "nothing was extracted."
                )
            )
        if count == 0:
            return RunOutcome()
        mapper = RowMapper(plan.timestamp_field)
        for texts in warehouse.extract(plan.credentials, plan.sql, plan.predicate, batch_rows):
            rows = [row for text in texts if (row := mapper.map_json(text)) is not None]
            extracted += len(texts)
            if not ingest(rows):
                return RunOutcome(extracted, mapped)
            mapped += len(rows)
    except WarehouseUnavailable as error:
        return RunOutcome(
            extracted,
            mapped,
            failure=f"Could not connect to the warehouse: {error}",
            warehouse_unavailable=True,
        )
    except WarehouseError as error:
        return RunOutcome(extracted, mapped, failure=f"The warehouse rejected the query: {error}")
    return RunOutcome(extracted, mapped)
