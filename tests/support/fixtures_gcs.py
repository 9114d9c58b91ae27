"""Fixtures for GCS tests: fake-gcs-server (one process for the session) and a fresh bucket.

The bucket carries the emulator's JSON-API endpoint in ``gcs_json_endpoint`` (what a user writes
in the config), so ``open_store(gcs_bucket)`` works as it will for a user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from reconciler.model import Bucket, Credentials, Provider
from tests.support.servers_gcs import FakeGcsServer

#: the HMAC pair ClickHouse would write with (S3-interop); the store itself never uses it
HMAC_KEY = "GOOG1EXAMPLEHMACKEYID0123456789"
HMAC_SECRET = "gcsHmacSecret/EXAMPLE+0123456789abcdefSECRET"


def gcs_bucket_on(server: FakeGcsServer, name: str) -> Bucket:
    """A configured ``model.Bucket`` of an existing bucket ``name`` on ``server``."""
    return Bucket(
        name="primary",
        provider=Provider.GCS,
        bucket=name,
        prefix="clickhouse",
        credentials=Credentials(hmac_key=HMAC_KEY, hmac_secret=HMAC_SECRET),
        gcs_json_endpoint=server.endpoint,
    )


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGcsServer]:
    """fake-gcs-server, started once for the session. Fails (never skips) without its binary."""
    try:
        server = FakeGcsServer()
    except FileNotFoundError as e:
        pytest.fail(f"fake-gcs-server is not available: {e}", pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_bucket(gcs_server: FakeGcsServer) -> Bucket:
    """A fresh, uniquely named bucket on ``gcs_server``, as a configured ``model.Bucket``."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    gcs_server.create_bucket(name)
    return gcs_bucket_on(gcs_server, name)
