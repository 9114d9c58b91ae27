"""Seed the quickstart: a `shop` database with sample rows in the chdb engine, and the bucket.

Run by examples/quickstart.sh with the QUICKSTART_* variables set.
"""

from __future__ import annotations

import os

import boto3
import clickhouse_connect


def main() -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["QUICKSTART_S3_ENDPOINT"],
        aws_access_key_id=os.environ["QUICKSTART_S3_KEY_ID"],
        aws_secret_access_key=os.environ["QUICKSTART_S3_SECRET"],
        region_name="us-east-1",
    )
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if "quickstart-backups" not in existing:
        s3.create_bucket(Bucket="quickstart-backups")

    ch = clickhouse_connect.get_client(dsn=os.environ["QUICKSTART_DSN"])
    ch.command("CREATE DATABASE IF NOT EXISTS shop")
    ch.command(
        "CREATE TABLE IF NOT EXISTS shop.customers (id UInt32, name String, country LowCardinality(String)) "
        "ENGINE = MergeTree ORDER BY id"
    )
    ch.command(
        "CREATE TABLE IF NOT EXISTS shop.orders (id UInt64, customer_id UInt32, amount Decimal(10, 2), "
        "created DateTime) ENGINE = MergeTree ORDER BY (created, id)"
    )
    if ch.query("SELECT count() FROM shop.customers").result_rows[0][0] == 0:
        ch.command(
            "INSERT INTO shop.customers SELECT number, concat('customer-', toString(number)), "
            "['DE', 'FR', 'US', 'JP'][number % 4 + 1] FROM numbers(1000)"
        )
        ch.command(
            "INSERT INTO shop.orders SELECT number, number % 1000, (number % 10000) / 100, "
            "toDateTime('2026-01-01 00:00:00') + number * 60 FROM numbers(100000)"
        )
    rows = {t: ch.query(f"SELECT count() FROM shop.{t}").result_rows[0][0] for t in ("customers", "orders")}
    print(f"seeded shop: {rows['customers']} customers, {rows['orders']} orders; bucket quickstart-backups ready")


if __name__ == "__main__":
    main()
