"""Error mapping as data, in the manner of httpx's exception map: what a provider answered → which
error of ``reconciler.errors`` the store raises.

A provider reads its own exceptions into a ``Failure`` (its error code, the HTTP status, a cause in
words); its ``ErrorTable`` then says what that failure is. The first ``Row`` that matches wins; a
row matches when every criterion it gives holds (the code is one of ``codes``, the status one of
``statuses``, the exception one of ``exceptions``, the cause contains ``says``). Nothing matched:
``StoreError``. What the row names decides the rest:

- ``TemporaryError``: may pass, retried under the ``RetryPolicy``;
- ``BucketMissing``, ``ObjectMissing``, ``PreconditionFailed``: permanent, and the store's
  operations give them their meaning (``read`` of a missing object is ``None``, a lost condition
  of ``create`` says the object already exists);
- ``StoreError``: permanent, reported with the provider's code and message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import StoreError, TemporaryError

#: the status of a failure that has none (a connection refused, a stream cut short)
NO_STATUS = 0

#: statuses that every provider answers when it is throttling or failing
TOO_MANY_REQUESTS = frozenset({429})
SERVER_ERRORS = frozenset(range(500, 600))

#: what a row may name: ``TemporaryError``, or ``StoreError`` or one of its kinds
Outcome = type[TemporaryError] | type[StoreError]


@dataclass(frozen=True)
class Failure:
    """What a provider answered, read off its error (or off a part of a batch answer)."""

    code: str = ""  # the provider's error code: "NoSuchBucket", "ContainerNotFound", GCS's reason
    status: int = NO_STATUS  # the HTTP status
    cause: str = ""  # in words, for the message: "SlowDown: Please reduce your request rate"
    error: BaseException | None = field(default=None, compare=False)  # the exception, for class rows


class Refused(Exception):
    """An answer that is an error although the SDK did not raise one (a part of a batch, a batch
    refused as a whole, the memory store's faults): the store maps its failure like any other."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.cause)
        self.failure = failure


@dataclass(frozen=True)
class Row:
    """One line of a table: when a failure is like this, raise ``outcome``."""

    outcome: Outcome
    codes: frozenset[str] = frozenset()
    statuses: frozenset[int] = frozenset()
    exceptions: tuple[type[BaseException], ...] = ()
    says: str = ""  # a fragment of the cause (case-insensitive)

    def matches(self, f: Failure) -> bool:
        if self.codes and f.code not in self.codes:
            return False
        if self.statuses and f.status not in self.statuses:
            return False
        if self.exceptions and not isinstance(f.error, self.exceptions):
            return False
        return not self.says or self.says.lower() in f.cause.lower()


def row(
    outcome: Outcome,
    *,
    codes: Iterable[str] = (),
    statuses: Iterable[int] = (),
    exceptions: tuple[type[BaseException], ...] = (),
    says: str = "",
) -> Row:
    """A ``Row``, taking any iterables (``row(TemporaryError, statuses=SERVER_ERRORS | {408})``)."""
    return Row(outcome, frozenset(codes), frozenset(statuses), exceptions, says)


class ErrorTable:
    """The rows of one provider, in order; ``classify`` finds the first that matches."""

    def __init__(self, *rows: Row) -> None:
        self.rows = rows

    def classify(self, f: Failure) -> Outcome:
        for r in self.rows:
            if r.matches(f):
                return r.outcome
        return StoreError

    def is_temporary(self, f: Failure) -> bool:
        return self.classify(f) is TemporaryError
