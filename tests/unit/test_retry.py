"""The one retry policy (reconciler/retry.py): only temporary errors are retried, within a bound
in attempts and in time, and what was tried is said when they are used up."""

from __future__ import annotations

import time

import pytest

from reconciler import errors
from reconciler.retry import DEFAULT_POLICY, NO_RETRY, RetryPolicy

FAST = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0)


def test_retry_policy_retries_only_temporary_errors() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise errors.TemporaryError("SlowDown: Please reduce your request rate")
        return "ok"

    assert FAST.run("S3 PutObject on s3://b/k", flaky) == "ok"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise errors.StoreError("AccessDenied")

    calls.clear()
    with pytest.raises(errors.StoreError, match="AccessDenied"):
        FAST.run("x", broken)
    assert len(calls) == 1

    @RetryPolicy(attempts=2, initial=0, jitter=0)("S3 GetObject on s3://b/k")
    def always() -> None:
        raise errors.TemporaryError("InternalError: boom")

    with pytest.raises(errors.TemporaryError, match=r"^S3 GetObject on s3://b/k failed 2 times: InternalError: boom$"):
        always()


def test_backoff_doubles_up_to_a_cap() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=6, total=60, initial=0.5, max_wait=3, jitter=0, sleep=sleeps.append)

    def fail() -> None:
        raise errors.TemporaryError("503")

    with pytest.raises(errors.TemporaryError, match="failed 6 times: 503"):
        policy.run("x", fail)
    assert sleeps == [0.5, 1.0, 2.0, 3, 3]


def test_the_bound_in_time() -> None:
    policy = RetryPolicy(attempts=1000, total=0.3, initial=0.05, max_wait=0.05, jitter=0)

    def fail() -> None:
        raise errors.TemporaryError("503")

    t0 = time.monotonic()
    with pytest.raises(errors.TemporaryError, match="failed"):
        policy.run("x", fail)
    assert time.monotonic() - t0 < 1


def test_one_attempt_is_once() -> None:
    def fail() -> None:
        raise errors.TemporaryError("503")

    with pytest.raises(errors.TemporaryError, match="^x failed once: 503$"):
        NO_RETRY.run("x", fail)
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)
    assert DEFAULT_POLICY.attempts == 5 and DEFAULT_POLICY.total == 30.0


def test_the_old_import_path_is_the_same_policy() -> None:
    from reconciler.stores import RetryPolicy as from_stores
    from reconciler.stores import retry as old

    assert old.RetryPolicy is RetryPolicy is from_stores
    assert old.DEFAULT_POLICY is DEFAULT_POLICY and old.NO_RETRY is NO_RETRY
