"""The `ch_server` fixture: a ClickHouse server for the tests (tests/support/clickhouse_server.py),
one per test module, with a password; and `seed_shop`, a small database of real shape on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clickhouse_server import ClickHouseServer

PASSWORD = "s3cr3t-Pw"


@pytest.fixture(scope="module")
def ch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """One server for the module (it starts in about 2 s and holds ~300 MB): tests keep to
    their own databases and buckets."""
    server = ClickHouseServer(tmp_path_factory.mktemp("ch-server"), PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def seed_shop(client: Any, rows: int = 3000) -> str:
    """A database ``shop_<hex>`` with two MergeTree tables (orders: ``rows``, customers: a third)."""
    db = f"shop_{uuid.uuid4().hex[:6]}"
    client.command(f"CREATE DATABASE {db}")
    client.command(
        f"CREATE TABLE {db}.orders (id UInt64, customer UInt32, amount Decimal(12, 2), note String, "
        "at DateTime) ENGINE = MergeTree ORDER BY id"
    )
    client.command(
        f"INSERT INTO {db}.orders SELECT number, number % 97, number / 7, randomPrintableASCII(40), "
        f"toDateTime('2026-11-01 00:00:00') + number FROM numbers({rows})"
    )
    client.command(f"CREATE TABLE {db}.customers (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    client.command(f"INSERT INTO {db}.customers SELECT number, concat('c', toString(number)) FROM numbers({rows // 3})")
    return db
