"""The `target` fixture: the same end-to-end test on S3 (moto's server) and on Azure (Azurite),
where ClickHouse (chdb) really writes; with a store to look at what is in the bucket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.model import Bucket
from reconciler.stores import Store, open_store
from tests.support.e2e import s3_bucket_doc


@dataclass
class Target:
    provider: str
    doc: dict[str, Any]  # the config's bucket entry, secrets as ${VAR}
    store: Store  # to look at what is in the bucket


def listing(store: Store, prefix: str = "") -> dict[str, int]:
    return {o.key: o.size for o in store.list(prefix)}


def read_json(store: Store, key: str) -> Any:
    got = store.read(key)
    assert got is not None, key
    return json.loads(got[0])


@pytest.fixture(params=["s3", "azure"])
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, chdb_dsn: str) -> Target:
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket: Bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("TEST_S3_KEY", server.access_key)
        monkeypatch.setenv("TEST_S3_SECRET", server.secret_key)
        return Target("s3", s3_bucket_doc(bucket), open_store(bucket))
    bucket = request.getfixturevalue("azure_bucket")
    monkeypatch.setenv("TEST_AZ_ACCOUNT", bucket.credentials.account_name or "")
    monkeypatch.setenv("TEST_AZ_KEY", bucket.credentials.account_key or "")
    doc = {
        "provider": "azure",
        "bucket": bucket.bucket,
        "prefix": "clickhouse",
        "endpoint": bucket.endpoint,
        "credentials": {"account_name": "${TEST_AZ_ACCOUNT}", "account_key": "${TEST_AZ_KEY}"},
    }
    return Target("azure", doc, open_store(bucket))
