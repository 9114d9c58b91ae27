"""ClickHouse faults: connection failures and "try again" codes are retried within a bound,
other errors are not, and a retried ASYNC start that finds its own id recognises it.

Unit tests of the retry classification: the client below is a stand-in that fails on purpose
(chdb runs in-process, so no network fault can be injected between it and the reconciler; the
end-to-end behaviour with the real engine is covered elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from reconciler.clickhouse import ClickHouse
from reconciler.errors import ClickHouseError
from reconciler.model import Service
from reconciler.retry import RetryPolicy

FAST = RetryPolicy(attempts=4, total=5.0, initial=0.001, max_wait=0.002)


class Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.result_rows = rows


class FlakyClient:
    def __init__(self, failures: list[Exception], rows: list[tuple[Any, ...]]) -> None:
        self.failures, self.rows, self.calls = list(failures), rows, 0

    def query(self, sql: str) -> Result:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return Result(self.rows)


def ch(client: FlakyClient) -> ClickHouse:
    return ClickHouse(Service("svc", "https://default:pw-secret-1@127.0.0.1:8443"), client, retry=FAST)


def test_connection_failures_are_retried() -> None:
    client = FlakyClient([OperationalError("Connection reset by peer"), OperationalError("timed out")], [("26.9",)])
    assert ch(client).version() == "26.9" and client.calls == 3


def test_try_again_codes_are_retried_and_others_are_not() -> None:
    client = FlakyClient([DatabaseError("Code: 202. DB::Exception: Too many simultaneous queries")], [(1,)])
    assert ch(client).query("SELECT 1") == [(1,)] and client.calls == 2
    client = FlakyClient([DatabaseError("Code: 60. DB::Exception: Table x doesn't exist. (UNKNOWN_TABLE)")], [(1,)])
    with pytest.raises(ClickHouseError) as e:
        ch(client).query("SELECT 1")
    assert e.value.code == 60 and client.calls == 1


def test_a_lasting_fault_is_surfaced_with_what_was_tried_and_no_secret() -> None:
    client = FlakyClient([OperationalError("pw-secret-1 Connection refused")] * 10, [])
    with pytest.raises(ClickHouseError) as e:
        ch(client).query("SELECT 1")
    assert client.calls == 4
    assert "failed 4 times" in e.value.message and "service svc" in str(e.value)


def test_a_retried_start_that_finds_its_own_id_is_a_success() -> None:
    class Client(FlakyClient):
        def query(self, sql: str) -> Result:
            self.calls += 1
            if sql.startswith("BACKUP") and self.calls == 1:
                raise OperationalError("Connection reset by peer")  # ...after the server got it
            if sql.startswith("BACKUP"):
                raise DatabaseError(
                    "Code: 36. DB::Exception: Cannot start backup with ID 'op-1' because there is "
                    "another backup with the same ID. (BAD_ARGUMENTS)"
                )
            return Result([("op-1", "n", "CREATING_BACKUP", "", None, None, 0, 0)])

    client = Client([], [])
    assert ch(client).start("BACKUP DATABASE x TO S3('u') SETTINGS id = 'op-1' ASYNC", "op-1") == "CREATING_BACKUP"
