"""The one retry policy of every request that may meet a passing failure: the object stores, ClickHouse
and the ClickHouse Cloud API.

A caller wraps each request in ``policy.run(what, attempt)``. ``attempt`` signals a failure
that may pass (throttling, 5xx, a reset connection, a timeout) by raising ``TemporaryError``
whose message is the cause only (``"SlowDown: Please reduce your request rate"``); any other
exception is permanent and propagates at once. The attempts are bounded both in number and in
total time; when they are used up, ``run`` raises ``TemporaryError`` naming what was tried,
how often and the last cause:
``"S3 PutObject on s3://bkt/key failed 5 times: SlowDown: Please reduce your request rate"``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from .errors import TemporaryError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, at most ``attempts`` tries and about ``total`` seconds.

    ``total`` bounds the time spent: no new attempt is started (no sleep is begun) that would
    end after ``total`` seconds from the first one. A single attempt is bounded by the client's
    own connect/read timeouts.
    """

    attempts: int = 5
    total: float = 30.0  # seconds
    initial: float = 0.5  # first backoff, doubled each time
    max_wait: float = 8.0  # longest single backoff
    jitter: float = 0.5  # up to this many seconds added at random to each backoff
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")

    def backoff(self, state: RetryCallState) -> float:
        """Seconds to wait before the next attempt: ``initial * 2**(n-1)``, capped, plus jitter."""
        n = max(state.attempt_number - 1, 0)
        return min(self.max_wait, self.initial * 2.0**n) + random.uniform(0.0, self.jitter)

    def run(self, what: str, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it returns, raises a permanent error, or the bounds are used up."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.total),
            wait=self.backoff,
            retry=retry_if_exception_type(TemporaryError),
            sleep=self.sleep,
            reraise=False,
        )
        try:
            return retrying(attempt)
        except RetryError as e:
            last = e.last_attempt
            cause = last.exception()
            n = last.attempt_number
            detail = cause.message if isinstance(cause, TemporaryError) else str(cause)
            times = "once" if n == 1 else f"{n} times"
            raise TemporaryError(f"{what} failed {times}: {detail}") from cause

    def __call__(self, what: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
        """Decorator form: ``@policy("S3 ListBuckets")`` on a function of no arguments."""

        def decorate(fn: Callable[[], T]) -> Callable[[], T]:
            def wrapped() -> T:
                return self.run(what, fn)

            return wrapped

        return decorate


#: the default: at most 5 attempts, backing off 0.5, 1, 2 and 4 s (+ up to 0.5 s of jitter each),
#: so an outage of up to ~7.5 s is ridden out when every attempt fails at once; attempts that
#: hang until their timeouts are cut off at 30 s in all
DEFAULT_POLICY = RetryPolicy()

#: one attempt only (tests, and callers that do their own retrying)
NO_RETRY = RetryPolicy(attempts=1)
