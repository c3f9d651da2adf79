"""Every retry decision of the client lives here.

Retried: connection failures, request timeouts, 429 and 5xx except 505 — with capped exponential
backoff and jitter, or exactly the server's ``Retry-After`` (capped) when it sent one (429, 503). Never retried:
other 4xx, 505 (the warehouse credentials are wrong; retrying cannot help), malformed responses.
Attempts are bounded by a count and by a total time budget. ``sleep`` and ``clock`` are injected so
tests never wait for real.

Whether a retry is *safe* is the caller's business: idempotent calls use :meth:`Retrier.call`
directly; the trigger POST wraps its attempts so that it looks for the run an ambiguous attempt may
have created before sending again (see ``WarehouseSyncClient.trigger_pipeline``).
"""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from wsync_dagster.mparticle.errors import (
    APIStatusError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    WarehouseSyncError,
)

_log = logging.getLogger("wsync_dagster.mparticle")

T = TypeVar("T")

RETRYABLE_ERRORS: tuple[type[WarehouseSyncError], ...] = (
    TransportError,
    RequestTimeoutError,
    RateLimitedError,
    ServerError,
)
"""Error types worth another attempt. ``ServerError`` excludes 505 by construction."""

AMBIGUOUS_ERRORS: tuple[type[WarehouseSyncError], ...] = (
    TransportError,
    RequestTimeoutError,
    ServerError,
)
"""Retryable errors after which the server may still have acted on the request.

A non-idempotent request (the trigger POST) must check what happened before resending after one of
these; a 429 is not ambiguous (nothing was accepted).
"""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry.

    Attributes:
        max_attempts: Total attempts per call, the first one included.
        base_delay: Backoff before the second attempt, in seconds; doubles each attempt.
        max_delay: Cap on one backoff delay, in seconds.
        max_retry_after: Cap on a server-requested ``Retry-After``, in seconds.
        total_budget: Wall time one call may spend including its retries, in seconds. A retry whose
            delay would end past the budget is not made; the last error is raised instead.
        jitter: Returns a float in [0, 1); scales each backoff delay into [50 %, 100 %) of its
            nominal value so that many clients do not retry in lockstep. Inject a constant in tests.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    total_budget: float = 120.0
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_retry_after, self.total_budget) < 0:
            raise ValueError("retry delays and budget must not be negative")

    def is_retryable(self, error: WarehouseSyncError) -> bool:
        """Whether ``error`` is worth another attempt (if attempts and budget remain).

        Args:
            error: The error the last attempt raised.

        Returns:
            True for connection failures, request timeouts, 429 and 5xx other than 505.
        """
        return isinstance(error, RETRYABLE_ERRORS)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Args:
            attempt: How many attempts have failed so far.
            retry_after: The server's ``Retry-After`` in seconds, if it sent one; it wins over the
                computed backoff, capped at ``max_retry_after``.

        Returns:
            The delay in seconds.
        """
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        nominal = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return nominal * (0.5 + self.jitter() / 2)


class Retrier:
    """Runs a callable under a :class:`RetryPolicy` with injected ``sleep`` and ``clock``.

    Args:
        policy: The retry policy.
        sleep: Called with the delay in seconds between attempts.
        clock: Monotonic clock in seconds (used for the total budget).
        on_retry: Called before each retry sleep with the error, the failed attempt number and the
            delay (for counters and logs).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        on_retry: Callable[[WarehouseSyncError, int, float], None] | None = None,
    ) -> None:
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self._on_retry = on_retry

    def deadline(self) -> float:
        """The clock reading at which a call starting now must stop retrying."""
        return self.clock() + self.policy.total_budget

    def call(self, attempt: Callable[[], T], *, deadline: float | None = None) -> T:
        """Call ``attempt`` until it returns, retrying retryable errors within the policy.

        Args:
            attempt: Performs one attempt; raises a :class:`WarehouseSyncError` on failure.
            deadline: Clock reading after which no retry may end; defaults to now + budget. Pass
                the caller's deadline when calls are nested so they share one budget.

        Returns:
            What ``attempt`` returned.

        Raises:
            WarehouseSyncError: The last attempt's error once it is not retryable, or attempts or
                budget are used up (a note on the exception says which).
        """
        end = self.deadline() if deadline is None else deadline
        failed = 0
        while True:
            try:
                return attempt()
            except WarehouseSyncError as error:
                failed += 1
                if not self.policy.is_retryable(error):
                    raise
                if failed >= self.policy.max_attempts:
                    error.add_note(f"gave up after {failed} attempts (retry policy max_attempts)")
                    raise
                retry_after = error.retry_after if isinstance(error, APIStatusError) else None
                delay = self.policy.delay(failed, retry_after)
                if self.clock() + delay > end:
                    error.add_note(
                        f"gave up after {failed} attempts: waiting {delay:.3g} s more would "
                        "exceed the retry budget"
                    )
                    raise
                _log.debug("retrying after %s (attempt %d) in %.3f s", error, failed, delay)
                if self._on_retry is not None:
                    self._on_retry(error, failed, delay)
                self.sleep(delay)
