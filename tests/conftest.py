"""Shared fixtures. Server processes run on loopback (see servers.py)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# the project root, so that `reconciler` and `tests.support` import without an install
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from reconciler import clickhouse  # noqa: E402
from reconciler.model import (  # noqa: E402
    Bucket,
    Credentials,
    Provider,
    Service,  # noqa: E402
)
from tests.support.e2e import one_schedule_config, small_source  # noqa: E402
from tests.support.servers import MotoServer  # noqa: E402

pytest_plugins = [
    "tests.support.fixtures_azure",
    "tests.support.fixtures_gcs",
    "tests.support.fixtures_cloud",
    "tests.support.fixtures_targets",
    "tests.support.fixtures_clickhouse",
]

# boto3 must never probe the instance metadata service, nor pick up a developer's AWS setup
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server, started once for the session."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: MotoServer) -> Bucket:
    """A fresh, uniquely named bucket on ``s3_server``, as a configured ``model.Bucket``."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(name)
    return Bucket(
        name="primary",
        provider=Provider.S3,
        bucket=name,
        prefix="clickhouse",
        region=s3_server.region,
        endpoint=s3_server.endpoint,
        credentials=Credentials(access_key_id=s3_server.access_key, secret_access_key=s3_server.secret_key),
    )


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The one embedded ClickHouse engine of this test process (one chdb path per process)."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="session")
def ch(chdb_dsn: str) -> clickhouse.ClickHouse:
    """The same client the reconciler uses in this process."""
    return clickhouse.connect(Service("test", chdb_dsn))


@pytest.fixture
def one_schedule(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: MotoServer,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
) -> Callable[..., str]:
    """Makes the usual end-to-end config: a small fresh database on the session's chdb engine,
    the test's S3 bucket and one schedule of that database (keys as in
    ``tests.support.e2e.one_schedule_config``); returns the config's path."""

    def make(db_prefix: str = "src", **schedule: Any) -> str:
        db = small_source(monkeypatch, s3_server, chdb_dsn, ch, db_prefix)
        return one_schedule_config(tmp_path / "c.yaml", s3_bucket, db, **schedule)

    return make
