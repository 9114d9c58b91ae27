"""ClickHouse through clickhouse-connect, for any DSN (``https://...`` or ``chdb:///path``).

Statements that take long (BACKUP, RESTORE) run ``ASYNC`` and are followed in
``system.backups`` by their deterministic id, so that a crash of the reconciler never loses
track of what ClickHouse is doing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..errors import ClickHouseError, ServiceUnreachable, TemporaryError
from ..model import UTC, Operation, Service
from ..redact import redact
from ..retry import DEFAULT_POLICY, RetryPolicy
from .errortext import error_line
from .sql import operations_sql, quote_string

_CODE = re.compile(r"Code:\s*(\d+)")

# clickhouse-connect logs connection failures itself; the reconciler reports them as one line
# (unreachable_service), so its logger stays quiet; --debug adds tracebacks, not library logs.
logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)


#: ClickHouse error codes that say "try again": TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES,
#: NETWORK_ERROR, SOCKET_TIMEOUT, ALL_CONNECTION_TRIES_FAILED, TOO_MANY_PARTS... kept small on purpose
TRANSIENT_CODES = {159, 202, 209, 210, 279, 425}


def _transient(e: BaseException, code: int | None) -> bool:
    from clickhouse_connect.driver.exceptions import OperationalError

    if code is not None:
        return code in TRANSIENT_CODES
    return isinstance(e, (OperationalError, ConnectionError, TimeoutError))


def _clean_error(e: BaseException) -> tuple[str, int | None]:
    text = redact(str(e)).strip()
    m = _CODE.search(text)
    # clickhouse-connect appends the whole HTTP response, ClickHouse a stack trace: one line is kept
    return error_line(text) or e.__class__.__name__, int(m.group(1)) if m else None


class NoAnswer(ClickHouseError):
    """ClickHouse could not be reached within the retry policy: what a statement did is unknown."""


class OperationGone(ClickHouseError):
    """``system.backups`` no longer has the operation: the server restarted (it forgets it)."""


class ClickHouse:
    """One service. Calls are serialised: the embedded chdb engine is one per process and its
    client is not meant for concurrent statements; ASYNC keeps each statement short."""

    def __init__(self, service: Service, client: Any, retry: RetryPolicy = DEFAULT_POLICY) -> None:
        self.service = service
        self._client = client
        self._lock = threading.Lock()
        self.retry = retry

    def _once(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return [tuple(r) for r in self._client.query(sql).result_rows]
            except Exception as e:  # clickhouse-connect raises its own hierarchy and OSErrors
                msg, code = _clean_error(e)
                if _transient(e, code):
                    raise TemporaryError(msg, where=f"service {self.service.name}") from None
                raise ClickHouseError(msg, code, where=f"service {self.service.name}") from None

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a statement; connection failures, timeouts and ClickHouse's own "try again" errors
        are retried with backoff and jitter within the policy's bound."""
        what = f"ClickHouse query on service {self.service.name}"
        try:
            return self.retry.run(what, lambda: self._once(sql))
        except TemporaryError as e:
            raise NoAnswer(e.message, where=f"service {self.service.name}") from None

    def command(self, sql: str) -> None:
        self.query(sql)

    def version(self) -> str:
        return str(self.query("SELECT version()")[0][0])

    def start(self, sql: str, operation_id: str | None = None) -> str:
        """Run an ``ASYNC`` BACKUP/RESTORE; returns ClickHouse's first status. If a retried start
        finds its own id taken, the first attempt did reach the server: that is success."""
        try:
            rows = self.query(sql)
        except ClickHouseError as e:
            if operation_id and "same ID" in e.message and self.operations([operation_id]):
                return self.operations([operation_id])[operation_id].status
            raise
        return str(rows[0][1]) if rows and len(rows[0]) > 1 else ""

    def operations(self, ids: Sequence[str]) -> dict[str, Operation]:
        if not ids:
            return {}
        out = {}
        for r in self.query(operations_sql(list(ids))):
            op = Operation(
                id=str(r[0]),
                name=redact(str(r[1])),
                status=str(r[2]),
                error=error_line(redact(str(r[3] or ""))),
                start_time=_utc(r[4]),
                end_time=_utc(r[5]),
                num_files=int(r[6] or 0),
                total_size=int(r[7] or 0),
                num_entries=int(r[8]) if len(r) > 8 and r[8] is not None else None,
                stored_bytes=int(r[9]) if len(r) > 9 and r[9] is not None else None,
            )
            out[op.id] = op
        return out

    def wait(
        self,
        operation_id: str,
        on_poll: Callable[[Operation], None] | None = None,
        timeout: float | None = None,
    ) -> Operation:
        """Poll ``system.backups`` until the operation reaches a final status."""
        # short polls first (most statements of a small backup end within a second), then back off
        delay, started = 0.01, time.monotonic()
        while True:
            op = self.operations([operation_id]).get(operation_id)
            if op is None:
                raise OperationGone(
                    f"operation {operation_id} is not in system.backups (was the server restarted?)",
                    where=f"service {self.service.name}",
                )
            if on_poll:
                on_poll(op)
            if op.final:
                return op
            if timeout is not None and time.monotonic() - started > timeout:
                raise ClickHouseError(f"operation {operation_id} still {op.status} after {timeout:.0f}s")
            time.sleep(delay)
            if time.monotonic() - started > 1.0:
                delay = min(delay * 1.5, 2.0)

    def table_rows(self, database: str) -> dict[str, int]:
        """Rows of each table of a database (``total_rows``; 0 for engines that do not know)."""
        rows = self.query(
            f"SELECT name, coalesce(total_rows, 0) FROM system.tables WHERE database = {quote_string(database)}"
        )
        return {str(n): int(c) for n, c in rows}

    def databases(self) -> list[str]:
        return [str(r[0]) for r in self.query("SELECT name FROM system.databases")]


def _utc(v: Any) -> datetime | None:
    if not isinstance(v, datetime) or v.year <= 1970:
        return None
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


_chdb_lock = threading.Lock()
_chdb_clients: dict[str, Any] = {}


def connect(service: Service, connect_timeout: float = 10) -> ClickHouse:
    """A client for the service's DSN. ``chdb:`` DSNs share one embedded engine per data path
    (one path per process: checked on ClickHouse 26.9, chdb 4.4)."""
    import clickhouse_connect

    try:
        if service.is_chdb:
            with _chdb_lock:
                client = _chdb_clients.get(service.dsn)
                if client is None:
                    client = clickhouse_connect.get_client(dsn=service.dsn)
                    _chdb_clients[service.dsn] = client
        else:
            client = clickhouse_connect.get_client(
                dsn=service.dsn, connect_timeout=connect_timeout, send_receive_timeout=300
            )
    except Exception as e:
        msg, _ = _clean_error(e)
        raise ServiceUnreachable(f"cannot connect to service {service.name}: {msg}") from None
    return ClickHouse(service, client)
