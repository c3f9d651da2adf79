"""The documented limits of Warehouse Sync and the schedule vocabulary.

The emulator's own copy (see ``docs/warehouse-sync-api.md``): it speaks the API alone and imports
nothing of the client or the sync.
"""

from datetime import timedelta

INTERVAL_SCHEDULES = ("hourly", "daily", "weekly", "monthly")
SCHEDULE_INTERVALS = (*INTERVAL_SCHEDULES, "on_demand", "once")

MAX_ACTIVE_PIPELINES = 5
MAX_MODEL_COLUMNS = 100

# How far back a new (or re-activated) interval pipeline may start, as (months, timedelta).
CATCH_UP_LIMITS: dict[str, tuple[int, timedelta]] = {
    "hourly": (0, timedelta(days=7)),
    "daily": (6, timedelta()),
    "weekly": (36, timedelta()),
    "monthly": (60, timedelta()),
}
CATCH_UP_WORDS = {
    "hourly": "7 days",
    "daily": "6 months",
    "weekly": "3 years",
    "monthly": "5 years",
}

# Records one run may extract, by schedule_interval.
DEFAULT_RECORD_LIMITS: dict[str, int] = {
    "hourly": 1_000_000,
    "daily": 24_000_000,
    "weekly": 40_000_000,
    "monthly": 40_000_000,
    "once": 40_000_000,
    "on_demand": 24_000_000,
}
