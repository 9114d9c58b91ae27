"""Error tables: the first row that matches wins; a row matches when all it gives holds."""

from __future__ import annotations

from reconciler import errors
from reconciler.stores.errormap import NO_STATUS, SERVER_ERRORS, ErrorTable, Failure, row

TABLE = ErrorTable(
    row(errors.BucketMissing, codes={"NoSuchBucket"}),
    row(errors.ObjectMissing, statuses={404}, says="no such object"),
    row(errors.BucketMissing, statuses={404}),
    row(errors.TemporaryError, statuses=SERVER_ERRORS),
    row(errors.TemporaryError, exceptions=(ConnectionError,), statuses={NO_STATUS}),
    row(errors.PreconditionFailed, codes={"PreconditionFailed"}, statuses={412}),
)


def test_the_first_matching_row_wins() -> None:
    assert TABLE.classify(Failure("NoSuchBucket", 404)) is errors.BucketMissing
    assert TABLE.classify(Failure("NoSuchBucket", 503)) is errors.BucketMissing  # before the 5xx row


def test_every_criterion_of_a_row_must_hold() -> None:
    assert TABLE.classify(Failure("PreconditionFailed", 412)) is errors.PreconditionFailed
    assert TABLE.classify(Failure("PreconditionFailed", 409)) is errors.StoreError
    assert TABLE.classify(Failure("", 412)) is errors.StoreError
    reset = ConnectionResetError("reset")
    assert TABLE.classify(Failure(cause="reset", error=reset)) is errors.TemporaryError
    assert TABLE.classify(Failure(status=400, cause="reset", error=reset)) is errors.StoreError
    assert TABLE.classify(Failure(cause="odd", error=ValueError("odd"))) is errors.StoreError


def test_says_looks_into_the_cause_without_case() -> None:
    assert TABLE.classify(Failure(status=404, cause="HTTP 404: No such object: b/k")) is errors.ObjectMissing
    assert TABLE.classify(Failure(status=404, cause="HTTP 404: Not Found")) is errors.BucketMissing


def test_nothing_matched_is_a_store_error() -> None:
    assert TABLE.classify(Failure("AccessDenied", 403)) is errors.StoreError
    assert TABLE.is_temporary(Failure(status=502)) and not TABLE.is_temporary(Failure(status=403))
