"""The registry's cron: what it reads, what it refuses (naming the sync and the fix), and that
Dagster's schedules tick on exactly the instants the registry computes."""

from datetime import UTC, datetime, timedelta

import pytest

from wsync_dagster import compat
from wsync_dagster.sync.registry.cron import Cron, CronError, cron_problem
from wsync_dagster_tests.sync.test_specs import problems, registry, sync

READ = [
    "15 * * * *",
    "0 * * * *",
    "*/20 * * * *",
    "5,35 */2 * * *",
    "0 9-17 * * mon-fri",
    "*/15 9-17 * * 1-5",
    "30 6 * * sun",
    "0 0 * * 7",
    "0 0 1 * *",
    "0 12 15 jan,jul *",
    "10/20 3 * * *",
    "0 0 29 2 *",
    "0 0 31 * *",
    "0 4 * 2 1",
    "* * * * *",
]


@pytest.mark.parametrize("text", READ)
def test_every_cron_the_registry_reads_ticks_where_dagster_ticks(text: str) -> None:
    cron = Cron.parse(text)
    assert compat.is_valid_cron_string(cron.text)
    for after in (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 27, 23, 59, tzinfo=UTC),
        datetime(2027, 12, 31, 23, 30, 20, tzinfo=UTC),
    ):
        ours, at = [], after
        for _ in range(12):
            at = cron.next_after(at)
            ours.append(at)
        assert ours == compat.cron_ticks(cron.text, after, 12), (text, after)


@pytest.mark.parametrize(
    ("text", "gap"),
    [
        ("15 * * * *", timedelta(hours=1)),
        ("5,35 */2 * * *", timedelta(minutes=90)),
        ("*/15 9-17 * * mon-fri", timedelta(days=2, hours=15, minutes=15)),  # Fri 17:45 -> Mon 9:00
        ("0 0 1 * *", timedelta(days=31)),
        ("0 0 29 2 *", timedelta(days=4 * 365 + 1)),
        ("* * * * *", timedelta(minutes=1)),
    ],
)
def test_the_longest_gap_between_ticks(text: str, gap: timedelta) -> None:
    assert Cron.parse(text).longest_gap() == gap


def test_the_tick_a_time_belongs_to_and_the_ticks_in_a_span() -> None:
    cron = Cron.parse("15 */6 * * *")
    at = datetime(2026, 3, 1, 13, 2, 30, tzinfo=UTC)
    assert cron.latest_at_or_before(at) == datetime(2026, 3, 1, 12, 15, tzinfo=UTC)
    assert cron.latest_at_or_before(datetime(2026, 3, 1, 12, 15, tzinfo=UTC)) == datetime(
        2026, 3, 1, 12, 15, tzinfo=UTC
    )
    assert cron.latest_at_or_before(datetime(2026, 3, 1, 0, 10, tzinfo=UTC)) == datetime(
        2026, 2, 28, 18, 15, tzinfo=UTC
    )
    assert list(cron.ticks(at, at + timedelta(hours=12))) == [
        datetime(2026, 3, 1, 18, 15, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 15, tzinfo=UTC),
    ]


def test_a_cron_is_read_in_any_case_and_spacing() -> None:
    assert Cron.parse("  0  9-17 * *   MON-FRI ").text == "0 9-17 * * mon-fri"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@hourly", "write '@hourly' as its five fields, '0 * * * *'"),
        ("15 * * *", "has 4 field(s) where a cron has five"),
        ("0 * * * * *", "has 6 field(s)"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("0 24 * * *", "hour 24 is outside 0-23"),
        ("0 0 0 * *", "day of month 0 is outside 1-31"),
        ("0 0 * 13 *", "month 13 is outside 1-12"),
        ("0 0 * * 8", "day of week 8 is outside 0-7"),
        ("0 0 * * fri-mon", "range 'fri-mon' must go upwards"),
        ("*/0 * * * *", "step '0' must be a whole number of 1 or more"),
        ("1,,2 * * * *", "empty item between commas"),
        ("x * * * *", "minute 'x' is not a number"),
        ("0 0 * foo *", "month 'foo' is not a number or a name (jan, feb, mar, ...)"),
        ("0 0 L * *", "the non-standard ?, L, W and # are not read"),
        ("0 0 * * 5#3", "the non-standard ?, L, W and # are not read"),
        ("0 0 ? * 1", "the non-standard ?, L, W and # are not read"),
        ("0 0 1 * 1", "restricts both the day of the month and the day of the week"),
        ("0 0 30 2 *", "never fires: no month in '2' has a day in '30'"),
    ],
)
def test_a_malformed_cron_says_what_is_wrong(text: str, expected: str) -> None:
    problem = cron_problem(text)
    assert problem is not None and expected in problem
    with pytest.raises(CronError):
        Cron.parse(text)


def test_the_registry_reads_a_cron_on_an_on_demand_sync() -> None:
    from wsync_dagster.sync.registry.specs import parse_registry

    text = registry(
        sync(schedule='{interval: on_demand, start: 2026-11-01T00:00:00Z, cron: "15  * * * *"}')
    )
    schedule = parse_registry(text).syncs[0].schedule
    assert schedule.cron == "15 * * * *"
    assert schedule.parsed_cron == Cron.parse("15 * * * *")


def test_a_malformed_cron_is_a_load_error_naming_the_sync_and_the_fix() -> None:
    text = registry(
        sync(schedule='{interval: on_demand, start: 2026-11-01T00:00:00Z, cron: "15 * * *"}')
    )
    assert problems(text) == [
        "sync 'orders': schedule.cron: '15 * * *' is not a cron the registry reads: has 4 "
        "field(s) where a cron has five (minute hour day-of-month month day-of-week). Write five "
        'fields in UTC (minute hour day-of-month month day-of-week), e.g. "15 * * * *" (minute '
        "15 of every hour, UTC)"
    ]


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        (
            '{interval: hourly, start: 2026-11-01T00:00:00Z, cron: "15 * * * *"}',
            "mParticle runs hourly pipelines on their own grid",
        ),
        (
            '{interval: daily, start: 2026-11-01T00:00:00Z, cron: "15 * * * *"}',
            "mParticle runs daily pipelines on their own grid",
        ),
        (
            "{interval: once, start: 2026-11-01T00:00:00Z, end: 2026-11-02T00:00:00Z, "
            'cron: "15 * * * *"}',
            "a once pipeline runs once, over start..end",
        ),
    ],
)
def test_a_cron_is_refused_on_interval_and_once_syncs(schedule: str, why: str) -> None:
    assert problems(registry(sync(schedule=schedule))) == [
        f"sync 'orders': schedule: cron applies to on_demand syncs only ({why}): remove cron, or "
        "make the sync on_demand"
    ]


def test_a_cron_leaves_the_code_version_alone() -> None:
    from wsync_dagster.sync.assets.translator import code_version
    from wsync_dagster.sync.registry.specs import parse_registry

    plain, timed = (
        parse_registry(registry(sync(schedule=schedule))).syncs[0]
        for schedule in (
            "{interval: on_demand, start: 2026-11-01T00:00:00Z}",
            '{interval: on_demand, start: 2026-11-01T00:00:00Z, cron: "15 * * * *"}',
        )
    )
    assert code_version(plain) == code_version(timed)


@pytest.mark.parametrize(
    ("cron", "warn", "fail"),
    [
        # one gap of the cron plus a grace of max(15 min, gap / 10); two gaps to fail
        ("15 * * * *", timedelta(hours=1, minutes=15), timedelta(hours=2, minutes=15)),
        # Friday 17:00 to Monday 9:00 is 64 h; the grace is 6.4 h
        ("0 9-17 * * mon-fri", timedelta(hours=70.4), timedelta(hours=134.4)),
        (None, None, None),  # no clock to be late against
    ],
)
def test_a_cron_sync_warns_after_one_missed_tick_and_fails_after_two(
    cron: str | None, warn: timedelta | None, fail: timedelta | None
) -> None:
    from wsync_dagster.sync.assets.translator import freshness_policy
    from wsync_dagster.sync.registry.specs import parse_registry

    timed = f', cron: "{cron}"' if cron else ""
    schedule = f"{{interval: on_demand, start: 2026-11-01T00:00:00Z{timed}}}"
    policy = freshness_policy(parse_registry(registry(sync(schedule=schedule))).syncs[0])
    if warn is None:
        assert policy is None
        return
    assert policy is not None
    windows = policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()  # pyright: ignore[reportAttributeAccessIssue]
    assert windows == (warn, fail)
