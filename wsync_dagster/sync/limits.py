"""mParticle's documented Warehouse Sync limits that do not depend on the cadence, as data.

Everything that refuses a request before it is sent reads its numbers from here or, for the limits
that differ per cadence (catch-up, records per request), from :mod:`wsync_dagster.sync.cadences`.
Sources: the Warehouse Sync overview's limits table and the default service limits guide (both list the
same numbers; see docs/warehouse-sync-api.md).
"""

MAX_ACTIVE_PIPELINES = 5
MAX_COLUMNS = 100
# Monthly schedules repeat on the start's day of month; days 29-31 don't exist in every month.
MAX_MONTHLY_START_DAY = 28
