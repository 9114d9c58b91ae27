"""ClickHouse faults: connection failures and "try again" codes are retried within a bound,
other errors are not, and a retried ASYNC start that finds its own id recognises it.

Unit tests of the retry classification: the client below is a stand-in that fails on purpose
(chdb runs in-process, so no network fault can be injected between it and the reconciler; the
end-to-end behaviour with the real engine is covered elsewhere)."""

from __future__ import annotations

from dataclasses import replace
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


#: as system.backups holds it (chdb 4.4, ClickHouse 26.9): the sentence, then the stack trace
FAILED_RESTORE = (
    "Code: 81. DB::Exception: Database shop_asof does not exist. (UNKNOWN_DATABASE), Stack trace (when "
    "copying this message, always include the lines below):\n\n"
    + "".join(f"{i}. DB::RestorerFromBackup::run() @ 0x000000001d96{i:04x}\n" for i in range(18))
    + " (version 26.9.2.1)"
)


def test_clickhouse_errors_are_one_line_without_stack_trace_and_without_secrets() -> None:
    # an HTTP error: clickhouse-connect's line first, then ClickHouse's words and a stack trace
    http = (
        "HTTPDriver for https://default:pw-secret-1@127.0.0.1:8443 received ClickHouse error code 60\n "
        "Code: 60. DB::Exception: Table shop.nosuch does not exist. (UNKNOWN_TABLE), Stack trace (when "
        "copying this message, always include the lines below):\n\n0. DB::Exception::Exception() @ 0x1\n"
    )
    with pytest.raises(ClickHouseError) as e:
        ch(FlakyClient([DatabaseError(http)], [])).query("BACKUP TABLE shop.nosuch")
    assert e.value.message == "Code: 60. DB::Exception: Table shop.nosuch does not exist. (UNKNOWN_TABLE)"
    assert e.value.code == 60
    # a failed operation's error, as plans, drift, records and sidecars show it
    row = (
        "op-1",
        "S3('u', 'k', 'pw-secret-1')",
        "RESTORE_FAILED",
        FAILED_RESTORE.replace("shop_asof", "s3://k:pw-secret-1@h"),
    )
    op = ch(FlakyClient([], [(*row, None, None, 0, 0)])).operations(["op-1"])["op-1"]
    assert op.error == "Code: 81. DB::Exception: Database s3://k:[HIDDEN]@h does not exist. (UNKNOWN_DATABASE)"
    # a sidecar written before errors were cut reads as one line too
    from reconciler.bucket.sidecar import Sidecar, SidecarState
    from reconciler.model import Scope, parse_iso

    old = Sidecar("a", "d", "b", parse_iso("2026-11-25T03:00:00Z"), "full", None, Scope(), "s3://x/", "op-1")
    raw = Sidecar.decode(replace(old, state=SidecarState.FAILED, error=FAILED_RESTORE).encode())
    assert raw.error == "Code: 81. DB::Exception: Database shop_asof does not exist. (UNKNOWN_DATABASE)"
