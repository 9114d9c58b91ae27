"""The stores the contract runs against, each made the same way: moto's S3 server, Azurite,
fake-gcs-server and the memory store. A ``Kind`` makes a store on a fresh bucket, one on a
bucket that does not exist, and one whose server does not answer (with the secrets it must never
show). The servers are the session fixtures of tests/conftest.py and tests/support/fixtures_*.py; a kind
asks for its own only, so the memory store's tests start no server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from reconciler.model import Bucket, Credentials, Provider
from reconciler.retry import RetryPolicy
from reconciler.stores.azure import AzureStore
from reconciler.stores.base import BaseStore
from reconciler.stores.gcs import GCSStore
from reconciler.stores.memory import MemoryStorage, MemoryStore
from reconciler.stores.s3 import S3Store
from tests.support.fixtures_azure import azure_bucket_for, new_container
from tests.support.fixtures_gcs import HMAC_KEY, HMAC_SECRET, gcs_bucket_on
from tests.support.servers import ServerProcess, free_port
from tests.support.servers_azure import ACCOUNT_KEY

#: a retry policy that gives up quickly
FAST = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0)

#: one that rides out an outage of a few seconds, and the restart of a server on a loaded machine
#: (Azurite, a Node.js program, took over 20 s to come back once under parallel test runs)
PATIENT = RetryPolicy(attempts=400, total=60.0, initial=0.1, max_wait=0.3, jitter=0.0)

#: secrets of the buckets whose server does not answer
S3_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzSECRET"
S3_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0123456789"
MEMORY_SECRET = "memory-secret-EXAMPLE-0123456789"

KINDS = ("s3", "azure", "gcs", "memory")

T = TypeVar("T")


def kind_of(e: Exception) -> type[Exception]:
    """The class of ``reconciler.errors`` an error is (a store may raise a subclass of its own)."""
    return next(c for c in type(e).__mro__ if c.__module__ == "reconciler.errors")


def answered_after_an_outage(server: ServerProcess, call: Callable[[], T]) -> T:
    """Stop ``server``, start ``call`` at once and the server again 0.5 s later, on the same port:
    what ``call`` answers, which must be the server that came back (a store with ``PATIENT``)."""
    server.stop()
    port = server.port

    def come_back() -> None:
        time.sleep(0.5)
        server.start()

    t = threading.Thread(target=come_back)
    t0 = time.monotonic()
    t.start()
    try:
        answer = call()
    finally:
        t.join()
    assert time.monotonic() - t0 >= 0.5 and server.port == port
    return answer


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def s3_closed_port_bucket() -> Bucket:
    return Bucket(
        name="primary",
        provider=Provider.S3,
        bucket="bkt",
        region="us-east-1",
        endpoint=f"http://127.0.0.1:{free_port()}",
        credentials=Credentials(access_key_id="AKIAEXAMPLEKEY", secret_access_key=S3_SECRET, session_token=S3_TOKEN),
    )


def azure_closed_port_bucket(form: str = "account_key") -> Bucket:
    """A bucket on a loopback port that nothing listens on, with real-looking secrets."""
    endpoint = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    if form == "account_key":
        creds = Credentials(account_name="devstoreaccount1", account_key=ACCOUNT_KEY)
    else:
        creds = Credentials(
            connection_string=f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={endpoint};"
        )
    return Bucket(name="primary", provider=Provider.AZURE, bucket="bkt", endpoint=endpoint, credentials=creds)


def gcs_closed_port_bucket() -> tuple[Bucket, str]:
    bucket = Bucket(
        name="primary",
        provider=Provider.GCS,
        bucket="bkt",
        credentials=Credentials(hmac_key=HMAC_KEY, hmac_secret=HMAC_SECRET),
    )
    return bucket, f"http://127.0.0.1:{free_port()}"


@dataclass
class Kind:
    """How to make the stores of one provider for a test."""

    name: str
    cls: type[BaseStore]
    make: Callable[..., BaseStore]  # (**options) -> a store on a fresh bucket
    missing: Callable[..., BaseStore]  # (**options) -> a store on a bucket that does not exist
    unreachable: Callable[[RetryPolicy], BaseStore]  # a store whose server does not answer
    secrets: tuple[str, ...]  # of the unreachable store

    def __repr__(self) -> str:
        return self.name


def kind(request: pytest.FixtureRequest, name: str) -> Kind:
    """The ``Kind`` of ``name``, starting (once per session) only the server it needs."""
    if name == "s3":
        server: Any = request.getfixturevalue("s3_server")

        def s3_bucket(bucket: str) -> Bucket:
            return Bucket(
                name="primary",
                provider=Provider.S3,
                bucket=bucket,
                region=server.region,
                endpoint=server.endpoint,
                credentials=Credentials(access_key_id=server.access_key, secret_access_key=server.secret_key),
            )

        def s3_fresh(**options: Any) -> BaseStore:
            name = unique()
            server.create_bucket(name)
            return S3Store(s3_bucket(name), retry=FAST, **options)

        return Kind(
            "s3",
            S3Store,
            s3_fresh,
            lambda **options: S3Store(s3_bucket("no-such-bucket-here"), retry=FAST, **options),
            lambda retry: S3Store(s3_closed_port_bucket(), retry=retry),
            (S3_SECRET, S3_TOKEN),
        )
    if name == "azure":
        azurite: Any = request.getfixturevalue("azurite_server")
        return Kind(
            "azure",
            AzureStore,
            lambda **options: AzureStore(azure_bucket_for(azurite, new_container(azurite)), retry=FAST, **options),
            lambda **options: AzureStore(azure_bucket_for(azurite, "no-such-container"), retry=FAST, **options),
            lambda retry: AzureStore(azure_closed_port_bucket("connection_string"), retry=retry),
            (ACCOUNT_KEY, azure_closed_port_bucket("connection_string").credentials.connection_string or ""),
        )
    if name == "gcs":
        gcs: Any = request.getfixturevalue("gcs_server")

        def gcs_fresh(**options: Any) -> BaseStore:
            name = unique()
            gcs.create_bucket(name)
            return GCSStore(gcs_bucket_on(gcs, name), retry=FAST, **options)

        def gcs_unreachable(retry: RetryPolicy) -> BaseStore:
            bucket, endpoint = gcs_closed_port_bucket()
            return GCSStore(bucket, retry=retry, json_endpoint_override=endpoint)

        return Kind(
            "gcs",
            GCSStore,
            gcs_fresh,
            lambda **options: GCSStore(gcs_bucket_on(gcs, "no-such-bucket-here"), retry=FAST, **options),
            gcs_unreachable,
            (HMAC_SECRET, HMAC_KEY),
        )
    if name == "memory":
        storage = MemoryStorage(auto_create=False)

        def memory_fresh(**options: Any) -> BaseStore:
            name = unique()
            storage.create_bucket(name)
            return MemoryStore(storage, name, retry=FAST, **options)

        def memory_unreachable(retry: RetryPolicy) -> BaseStore:
            down = MemoryStorage()
            for op in ("HeadBucket", "ListObjects", "GetObject", "PutObject", "DeleteObject", "DeleteObjects"):
                down.fail(op, "ServiceUnavailable", message=f"down (token {MEMORY_SECRET})", times=None)
            bucket = Bucket("primary", Provider.S3, "bkt", credentials=Credentials(secret_access_key=MEMORY_SECRET))
            return MemoryStore(down, bucket, retry=retry)

        return Kind(
            "memory",
            MemoryStore,
            memory_fresh,
            lambda **options: MemoryStore(storage, "no-such-bucket-here", retry=FAST, **options),
            memory_unreachable,
            (MEMORY_SECRET,),
        )
    raise ValueError(name)
