"""The cron of an ``on_demand`` sync: ``schedule: {interval: on_demand, cron: "15 * * * *"}``.

A strict reading of the five classic fields (minute, hour, day of month, month, day of week), in
UTC, which Dagster's own schedules accept and tick on identically
(``wsync_dagster_tests/sync/test_cron.py`` compares the two). Pure: no Dagster, no I/O, so the
registry validates a cron when it loads and a test computes any tick with an injected time.

Each field is a list of items separated by ``,``; an item is ``*``, a number, a range ``a-b`` (going
up), each optionally followed by a step ``/n``; a single number with a step, ``a/n``, runs from
``a`` to the field's end. Months take ``jan``-``dec`` and days of the week ``sun``-``sat`` (0 or 7
is Sunday). Refused, each with a message saying what to write instead: another number of fields,
``@hourly``-style aliases, the non-standard ``L``, ``W``, ``#`` and ``?``, and a cron that restricts
both the day of the month and the day of the week (cron fires when *either* matches, which is
rarely what is meant).
"""

import calendar
import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
EXAMPLE = '"15 * * * *" (minute 15 of every hour, UTC)'

# The longest gap between two ticks is found over this many days from a fixed start (two leap-year
# cycles, so a cron on 29 February shows its four-year gap).
GAP_HORIZON_DAYS = 8 * 366
_GAP_START = datetime(2024, 1, 1, tzinfo=UTC)


class CronError(ValueError):
    """A cron the registry cannot use; the message says why and what to write instead."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_from: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES, 1),
    _Field("day of week", 0, 7, DAY_NAMES, 0),
)


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if field.names and lowered in field.names:
        return field.names.index(lowered) + field.names_from
    if re.search(r"[?#lw]", lowered) and lowered not in field.names:
        raise CronError(
            f"{field.name} {text!r}: the non-standard ?, L, W and # are not read; use numbers, "
            "ranges, steps and lists"
        )
    if not text.isdigit():
        named = f" or a name ({', '.join(field.names[:3])}, ...)" if field.names else ""
        raise CronError(f"{field.name} {text!r} is not a number{named}")
    number = int(text)
    if not field.low <= number <= field.high:
        raise CronError(f"{field.name} {number} is outside {field.low}-{field.high}")
    return number


def _item(text: str, field: _Field) -> set[int]:
    base, slash, step_text = text.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{field.name} step {step_text!r} must be a whole number of 1 or more")
        step = int(step_text)
    if base == "*":
        low, high = field.low, field.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _value(first, field), _value(last, field)
        if low > high:
            raise CronError(f"{field.name} range {base!r} must go upwards (write {last}-{first}?)")
    else:
        low = _value(base, field)
        high = field.high if slash else low
    return set(range(low, high + 1, step))


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"{field.name} {text!r} has an empty item between commas")
        values |= _item(item, field)
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron: the values each field allows, and the text it was read from (normalized:
    single spaces, lower case)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # Sunday = 0

    @staticmethod
    def parse(text: str) -> "Cron":
        """The cron ``text`` says, or a :class:`CronError` saying what is wrong and the fix."""
        return _parse(text)

    @staticmethod
    def _read(text: str) -> "Cron":
        normalized = " ".join(text.split()).lower()
        if normalized in ALIASES:
            raise CronError(
                f"write {text.strip()!r} as its five fields, {ALIASES[normalized]!r}: aliases are "
                "not read"
            )
        parts = normalized.split(" ")
        if len(parts) != 5:
            raise CronError(
                f"has {len(parts)} field(s) where a cron has five (minute hour day-of-month "
                "month day-of-week)"
            )
        minutes, hours, days, months, weekdays = (
            _parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)
        )
        if parts[2] != "*" and parts[4] != "*":
            raise CronError(
                "restricts both the day of the month and the day of the week, and cron then "
                "fires on days matching either; keep one of them as *"
            )
        weekdays = frozenset(day % 7 for day in weekdays)  # 7 is Sunday too
        if not any(day <= _longest_month(month) for month in months for day in days):
            raise CronError(
                f"never fires: no month in {parts[3]!r} has a day in {parts[2]!r}; pick a day "
                "that exists"
            )
        return Cron(normalized, minutes, hours, days, months, weekdays)

    def _day_fires(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday = 0; Python from Monday = 0
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def matches(self, when: datetime) -> bool:
        """Whether ``when`` (UTC, any second) is in a minute the cron fires."""
        when = when.astimezone(UTC)
        return self._day_fires(when) and when.hour in self.hours and when.minute in self.minutes

    def next_after(self, when: datetime) -> datetime:
        """The first tick strictly after ``when`` (aware; UTC)."""
        at = when.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = at + timedelta(days=GAP_HORIZON_DAYS)
        while at < limit:
            if at.month not in self.months:
                year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
                at = at.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_fires(at):
                at = at.replace(hour=0, minute=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                return at
        raise CronError(f"{self.text!r} fires nowhere in the {GAP_HORIZON_DAYS} days after {when}")

    def latest_at_or_before(self, when: datetime) -> datetime:
        """The last tick at or before ``when``: the tick a schedule evaluated at ``when`` serves."""
        at = when.astimezone(UTC).replace(second=0, microsecond=0)
        if self.matches(at):
            return at
        # Step back a day at a time, then take the last tick of that day at or before ``when``.
        for back in range(GAP_HORIZON_DAYS + 1):
            day = (at - timedelta(days=back)).replace(hour=0, minute=0)
            if not self._day_fires(day):
                continue
            times = [
                day.replace(hour=h, minute=m)
                for h in sorted(self.hours, reverse=True)
                for m in sorted(self.minutes, reverse=True)
            ]
            earlier = [t for t in times if t <= at]
            if earlier:
                return earlier[0]
        raise CronError(f"{self.text!r} fired nowhere in the {GAP_HORIZON_DAYS} days before {when}")

    def ticks(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every tick in ``start .. end`` (both inclusive)."""
        at = start.astimezone(UTC) - timedelta(minutes=1)
        while (at := self.next_after(at)) <= end:
            yield at

    def longest_gap(self) -> timedelta:
        """The longest time between two consecutive ticks (UTC has no daylight saving, so this is
        exact for any cron whose pattern repeats within :data:`GAP_HORIZON_DAYS`)."""
        return _longest_gap(self)

    def _scan_gaps(self) -> timedelta:
        times = sorted(h * 60 + m for h in self.hours for m in self.minutes)  # minutes of the day
        within = max((b - a for a, b in itertools.pairwise(times)), default=0)
        longest = timedelta(minutes=within)
        last: datetime | None = None
        for offset in range(GAP_HORIZON_DAYS):
            day = _GAP_START + timedelta(days=offset)
            if not self._day_fires(day):
                continue
            first = day + timedelta(minutes=times[0])
            if last is not None:
                longest = max(longest, first - last)
            last = day + timedelta(minutes=times[-1])
        return longest


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Cron:
    return Cron._read(text)


@functools.lru_cache(maxsize=256)
def _longest_gap(cron: Cron) -> timedelta:
    # A scan of GAP_HORIZON_DAYS days: done once per distinct cron, however many syncs share it.
    return cron._scan_gaps()


def _longest_month(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2023, month)[1]


def cron_problem(text: str) -> str | None:
    """Why ``text`` is not a cron the registry reads, with the fix; None when it is one."""
    try:
        Cron.parse(text)
    except CronError as error:
        return str(error)
    return None
