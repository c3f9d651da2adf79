"""The one poll loop: call until done or out of time, waiting between calls as a back-off says.

Used by :meth:`WarehouseSyncClient.wait_for_run <wsync_dagster.mparticle.WarehouseSyncClient.wait_for_run>`
and by the sync layer's wait for many windows. The interval schedule is its own small object
(:class:`Backoff`), so a caller can choose the next wait from what is still pending.
"""

from collections.abc import Callable
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


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    backoff: Backoff,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[T, int]:
    """Call ``fetch`` until ``done`` says so or ``timeout`` seconds of ``clock`` pass.

    Waits ``backoff.next()`` between calls (cut short at the deadline). Returns the last result,
    done or not, and the number of calls.
    """
    deadline = clock() + timeout
    polls = 0
    while True:
        result = fetch()
        polls += 1
        if done(result):
            return result, polls
        remaining = deadline - clock()
        if remaining <= 0:
            return result, polls
        sleep(min(backoff.next(), remaining))
