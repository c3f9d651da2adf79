"""The one poll loop: call until done or out of time, waiting between calls as a back-off says.

Used by :meth:`WarehouseSyncClient.wait_for_run <wsync_dagster.mparticle.WarehouseSyncClient.wait_for_run>`
and by the sync layer's wait for many windows. The interval schedule is its own small object
(:class:`Backoff`), so a caller can choose the next wait from what is still pending.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


class Backoff(Protocol):
    """Says how long to wait before the next call."""

    def next(self) -> float: ...


@dataclass
class ExponentialBackoff:
    """``first``, then doubling after each wait, never more than ``most``."""

    first: float
    most: float
    _current: float = field(init=False)

    def __post_init__(self) -> None:
        self._current = self.first

    def next(self) -> float:
        wait = self._current
        self._current = min(self._current * 2, self.most)
        return wait


@dataclass(frozen=True)
class Pacing:
    """How a poll loop waits: for at most ``timeout`` seconds of ``clock``, ``backoff`` between
    calls, by calling ``sleep``."""

    timeout: float
    backoff: Backoff
    sleep: Callable[[float], None]
    clock: Callable[[], float]


def poll_each(fetch: Callable[[], T], done: Callable[[T], bool], pacing: Pacing) -> Iterator[T]:
    """Call ``fetch`` until ``done`` says so or the pacing's timeout passes, yielding each result
    as it comes, so a caller can act on it before the next wait.

    Waits ``backoff.next()`` between calls (cut short at the deadline). The last result yielded is
    the one that was done, or the last before the deadline. Closing the generator stops polling.
    """
    deadline = pacing.clock() + pacing.timeout
    while True:
        result = fetch()
        yield result
        if done(result):
            return
        remaining = deadline - pacing.clock()
        if remaining <= 0:
            return
        pacing.sleep(min(pacing.backoff.next(), remaining))


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    backoff: Backoff,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[T, int]:
    """Call ``fetch`` until ``done`` says so or ``timeout`` seconds of ``clock`` pass
    (:func:`poll_each` to the end): returns the last result, done or not, and the number of calls."""
    results = poll_each(fetch, done, Pacing(timeout, backoff, sleep, clock))
    last, polls = next(results), 1
    for last in results:  # noqa: B007 (the last result is the answer)
        polls += 1
    return last, polls
